//! The error type of config loading, and the key paths it names.
//!
//! Every problem found in a config file is reported as one [`ConfigError`]
//! naming the file, the line and column, and the key (`plugins[0].timeout_ms`).
//! This module knows nothing about TOML spans; `locate` turns them into lines.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("{}: cannot read the config file: {cause}", path.display())]
    Read {
        /// The path as given.
        path: PathBuf,
        /// What the operating system said.
        cause: std::io::Error,
    },
    /// The file was read but something in it is wrong.
    #[error("{}:{line}:{column}: {}{message}", file.display(), key_prefix(key))]
    Invalid {
        /// The config file, as given to the loader.
        file: PathBuf,
        /// 1-based line of the offending value (or of its table header when
        /// the value is missing).
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// Key path of the offending value, e.g. `plugins[0].timeout_ms`;
        /// empty for TOML syntax errors and whole-document problems.
        key: String,
        /// What is wrong, for a human. Never contains a secret value.
        message: String,
    },
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}

/// One step of a [`KeyPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// Where a value lives in the document: `plugins[0].secrets.TOKEN.env`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct KeyPath(pub(crate) Vec<Segment>);

impl KeyPath {
    /// The document root.
    pub(crate) fn root() -> Self {
        Self::default()
    }

    /// This path followed by a table key.
    pub(crate) fn key(&self, key: impl Into<String>) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Key(key.into()));
        next
    }

    /// This path followed by an array index.
    pub(crate) fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Index(index));
        next
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Index(n) => write!(f, "[{n}]")?,
                Segment::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    let bare = !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if bare {
                        f.write_str(k)?;
                    } else {
                        write!(f, "{k:?}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A problem found before it has been turned into a [`ConfigError`]: the
/// key it concerns and, when known, the exact byte span in the file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Issue {
    /// Key path of the offending value.
    pub(crate) path: KeyPath,
    /// Byte range in the file; `None` to locate the key path instead.
    pub(crate) span: Option<Range<usize>>,
    /// Human-readable message, without the key.
    pub(crate) message: String,
}

impl Issue {
    /// A problem with the value at `path`, located through the path.
    pub(crate) fn at(path: KeyPath, message: impl Into<String>) -> Self {
        Self {
            path,
            span: None,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_print_like_toml_accessors() {
        let cases = [
            (KeyPath::root(), ""),
            (KeyPath::root().key("auth"), "auth"),
            (
                KeyPath::root().key("plugins").index(0).key("timeout_ms"),
                "plugins[0].timeout_ms",
            ),
            (
                KeyPath::root()
                    .key("plugins")
                    .index(2)
                    .key("config")
                    .key("a.b"),
                "plugins[2].config.\"a.b\"",
            ),
        ];
        for (path, want) in cases {
            assert_eq!(path.to_string(), want);
        }
    }

    #[test]
    fn errors_print_file_line_column_and_key() {
        let err = ConfigError::Invalid {
            file: "examples/bad.toml".into(),
            line: 14,
            column: 1,
            key: "plugins[0].timeout_ms".into(),
            message: "invalid type".into(),
        };
        assert_eq!(
            err.to_string(),
            "examples/bad.toml:14:1: plugins[0].timeout_ms: invalid type"
        );
        let err = ConfigError::Invalid {
            file: "a.toml".into(),
            line: 2,
            column: 3,
            key: String::new(),
            message: "syntax".into(),
        };
        assert_eq!(err.to_string(), "a.toml:2:3: syntax");
    }
}
