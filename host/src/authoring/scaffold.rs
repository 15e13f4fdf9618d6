//! `wasmhook new NAME --lang L`: copy `plugins/templates/L/` into a new
//! directory, filling in `{{name}}` and `{{sdk_path}}`.

use std::path::{Path, PathBuf};

use super::Lang;

/// Why a plugin could not be scaffolded.
#[derive(Debug, thiserror::Error)]
pub enum NewError {
    /// The name is not a valid plugin name.
    #[error(
        "invalid plugin name {0:?}: use lower-case letters, digits and '-', starting with a letter"
    )]
    InvalidName(String),
    /// The destination exists.
    #[error("{0} already exists; choose another name or directory")]
    Exists(PathBuf),
    /// No template for the language.
    #[error("no template for {lang} at {path}")]
    NoTemplate {
        /// The language.
        lang: Lang,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// Reading the template or writing the plugin failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> NewError + '_ {
    move |source| NewError::Io {
        path: path.to_owned(),
        source,
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && name.len() <= 64
}

/// Create `parent/name` from the template of `lang`; returns the new
/// directory and the files written.
pub fn new_plugin(
    home: &Path,
    name: &str,
    lang: Lang,
    parent: &Path,
) -> Result<(PathBuf, Vec<PathBuf>), NewError> {
    if !valid_name(name) {
        return Err(NewError::InvalidName(name.to_owned()));
    }
    let template = home.join("plugins/templates").join(lang.as_str());
    if !template.is_dir() {
        return Err(NewError::NoTemplate {
            lang,
            path: template,
        });
    }
    let dest = parent.join(name);
    if dest.exists() {
        return Err(NewError::Exists(dest));
    }
    let sdk_path = home.join("plugins/sdk/rust");
    let mut written = Vec::new();
    copy_dir(
        &template,
        &dest,
        &|text: &str| {
            text.replace("{{name}}", name)
                .replace("{{sdk_path}}", &sdk_path.display().to_string())
        },
        &mut written,
    )?;
    Ok((dest, written))
}

fn copy_dir(
    from: &Path,
    to: &Path,
    fill: &dyn Fn(&str) -> String,
    written: &mut Vec<PathBuf>,
) -> Result<(), NewError> {
    std::fs::create_dir_all(to).map_err(io(to))?;
    let mut entries: Vec<_> = std::fs::read_dir(from)
        .map_err(io(from))?
        .collect::<Result<_, _>>()
        .map_err(io(from))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let src = entry.path();
        let dst = to.join(entry.file_name());
        if src.is_dir() {
            copy_dir(&src, &dst, fill, written)?;
            continue;
        }
        let bytes = std::fs::read(&src).map_err(io(&src))?;
        let out = match String::from_utf8(bytes) {
            Ok(text) => fill(&text).into_bytes(),
            Err(e) => e.into_bytes(),
        };
        std::fs::write(&dst, out).map_err(io(&dst))?;
        written.push(dst);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "crm-sync", "x2"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "A", "2x", "a_b", "a-", "a b", "../x"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn scaffold_fills_placeholders_and_refuses_to_overwrite() {
        let home = tempfile::tempdir().unwrap();
        let tpl = home.path().join("plugins/templates/js");
        std::fs::create_dir_all(tpl.join("sub")).unwrap();
        std::fs::write(
            tpl.join("plugin.js"),
            "// {{name}} keeps {{secret:TOKEN}}\n",
        )
        .unwrap();
        std::fs::write(tpl.join("sub/x.txt"), "{{sdk_path}}").unwrap();
        let out = tempfile::tempdir().unwrap();
        let (dir, files) = new_plugin(home.path(), "demo", Lang::Js, out.path()).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(
            std::fs::read_to_string(dir.join("plugin.js")).unwrap(),
            "// demo keeps {{secret:TOKEN}}\n"
        );
        assert!(
            std::fs::read_to_string(dir.join("sub/x.txt"))
                .unwrap()
                .ends_with("plugins/sdk/rust")
        );
        assert!(matches!(
            new_plugin(home.path(), "demo", Lang::Js, out.path()),
            Err(NewError::Exists(_))
        ));
        assert!(matches!(
            new_plugin(home.path(), "demo2", Lang::Zig, out.path()),
            Err(NewError::NoTemplate { .. })
        ));
    }
}
