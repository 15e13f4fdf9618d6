//! The plugin languages and how to recognise them.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// A language wasmhook can scaffold and build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Rust on the SDK in `plugins/sdk/rust` (`Cargo.toml`).
    Rust,
    /// JavaScript via componentize-js (`plugin.js`).
    Js,
    /// Python via componentize-py (`app.py`).
    Python,
    /// C via clang + wasi-libc (`plugin.c`).
    C,
    /// Zig via the `ziglang` wheel (`plugin.zig`).
    Zig,
}

impl Lang {
    /// Every language.
    pub const ALL: [Lang; 5] = [Lang::Rust, Lang::Js, Lang::Python, Lang::C, Lang::Zig];

    /// The name used on the command line, in `plugins/templates/<name>` and
    /// `scripts/plugins/<name>.sh`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Js => "js",
            Lang::Python => "python",
            Lang::C => "c",
            Lang::Zig => "zig",
        }
    }

    /// The file that marks a plugin directory of this language.
    pub fn marker(self) -> &'static str {
        match self {
            Lang::Rust => "Cargo.toml",
            Lang::Js => "plugin.js",
            Lang::Python => "app.py",
            Lang::C => "plugin.c",
            Lang::Zig => "plugin.zig",
        }
    }

    /// The language of a plugin directory, by its marker file.
    pub fn detect(dir: &Path) -> Option<Lang> {
        Lang::ALL
            .into_iter()
            .find(|l| dir.join(l.marker()).is_file())
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Lang {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Lang::ALL
            .into_iter()
            .find(|l| l.as_str() == s || (s == "javascript" && *l == Lang::Js))
            .ok_or_else(|| {
                format!("unknown language {s:?}; expected one of rust, js, python, c, zig")
            })
    }
}
