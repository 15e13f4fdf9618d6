//! `wasmhook build [DIR]`: detect the language, check that its toolchain is
//! there (and say exactly how to install it when it is not), then run
//! `scripts/plugins/<lang>.sh build DIR -o OUT`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::Lang;

/// Why a build could not run or failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// DIR holds no recognised plugin.
    #[error(
        "{0}: no plugin found (expected Cargo.toml, plugin.js, app.py, plugin.c or plugin.zig)"
    )]
    UnknownLanguage(PathBuf),
    /// A toolchain piece is missing.
    #[error("the {lang} toolchain is incomplete: {what}\n  install it with:\n    {install}")]
    MissingToolchain {
        /// The language.
        lang: Lang,
        /// What is missing.
        what: String,
        /// The exact command that installs it.
        install: String,
    },
    /// The build script failed.
    #[error("building {dir} failed ({status}); see the output above")]
    Failed {
        /// The plugin directory.
        dir: PathBuf,
        /// The script's exit status.
        status: String,
    },
    /// The script could not be started.
    #[error("cannot run {script}: {source}")]
    Spawn {
        /// The script.
        script: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn found(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn missing(lang: Lang, what: &str, install: String) -> Result<(), BuildError> {
    Err(BuildError::MissingToolchain {
        lang,
        what: what.to_owned(),
        install,
    })
}

/// Check the toolchain of `lang`, naming the exact install command of the
/// first missing piece.
pub fn prerequisites(home: &Path, lang: Lang) -> Result<(), BuildError> {
    let h = home.display();
    match lang {
        Lang::Rust => {
            if !found("cargo", &["--version"]) {
                return missing(lang, "cargo is not on PATH", "install rustup (https://rustup.rs or your distribution's rustup package), then: rustup target add wasm32-wasip2".into());
            }
            let targets = Command::new("rustup")
                .args(["target", "list", "--installed"])
                .output();
            let has = targets.is_ok_and(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| l.trim() == "wasm32-wasip2")
            });
            if !has {
                return missing(
                    lang,
                    "the wasm32-wasip2 target is not installed",
                    "rustup target add wasm32-wasip2".into(),
                );
            }
        }
        Lang::Js => {
            if !found("node", &["--version"]) {
                return missing(
                    lang,
                    "node is not on PATH",
                    "apt-get install -y nodejs npm".into(),
                );
            }
            if !home
                .join("plugins/sdk/js/node_modules/@bytecodealliance/componentize-js")
                .is_dir()
            {
                return missing(
                    lang,
                    "componentize-js is not installed",
                    format!("npm ci --prefix {h}/plugins/sdk/js"),
                );
            }
        }
        Lang::Python => {
            if !home.join("target/venv-py/bin/componentize-py").is_file() {
                return missing(
                    lang,
                    "componentize-py is not installed",
                    format!(
                        "python3 -m venv {h}/target/venv-py && {h}/target/venv-py/bin/pip install -r {h}/plugins/sdk/python/requirements.txt"
                    ),
                );
            }
        }
        Lang::C => {
            if !found("clang-14", &["--version"])
                || !Path::new("/usr/include/wasm32-wasi/stdlib.h").is_file()
            {
                return missing(
                    lang,
                    "clang-14 with the wasm32-wasi sysroot is not installed",
                    "apt-get install -y --no-install-recommends clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32".into(),
                );
            }
        }
        Lang::Zig => {
            let ok = Command::new(home.join("target/venv-zig/bin/python"))
                .args(["-m", "ziglang", "version"])
                .output()
                .is_ok_and(|o| o.status.success());
            if !ok {
                return missing(
                    lang,
                    "the Zig compiler (PyPI ziglang) is not installed",
                    format!(
                        "python3 -m venv {h}/target/venv-zig && {h}/target/venv-zig/bin/pip install -r {h}/plugins/sdk/zig/requirements.txt"
                    ),
                );
            }
        }
    }
    Ok(())
}

/// Build the plugin in `dir` into `out`. Returns its language.
pub fn build(home: &Path, dir: &Path, out: &Path) -> Result<Lang, BuildError> {
    let lang = Lang::detect(dir).ok_or_else(|| BuildError::UnknownLanguage(dir.to_owned()))?;
    prerequisites(home, lang)?;
    let script = home
        .join("scripts/plugins")
        .join(format!("{}.sh", lang.as_str()));
    let status = Command::new("bash")
        .arg(&script)
        .arg("build")
        .arg(dir)
        .arg("-o")
        .arg(out)
        .status()
        .map_err(|source| BuildError::Spawn {
            script: script.clone(),
            source,
        })?;
    if !status.success() {
        return Err(BuildError::Failed {
            dir: dir.to_owned(),
            status: status.to_string(),
        });
    }
    Ok(lang)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_toolchains_name_the_install_command() {
        let home = tempfile::tempdir().unwrap();
        let err = prerequisites(home.path(), Lang::Python)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("pip install -r") && err.contains("plugins/sdk/python/requirements.txt"),
            "{err}"
        );
        let err = prerequisites(home.path(), Lang::Zig)
            .unwrap_err()
            .to_string();
        assert!(err.contains("target/venv-zig"), "{err}");
        let err = prerequisites(home.path(), Lang::Js)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("npm ci --prefix") || err.contains("apt-get install -y nodejs"),
            "{err}"
        );
    }

    #[test]
    fn detection_by_marker_file() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(Lang::detect(d.path()), None);
        std::fs::write(d.path().join("app.py"), "").unwrap();
        assert_eq!(Lang::detect(d.path()), Some(Lang::Python));
        assert!(matches!(
            build(
                d.path(),
                &d.path().join("nothing"),
                Path::new("/tmp/x.wasm")
            ),
            Err(BuildError::UnknownLanguage(_))
        ));
    }
}
