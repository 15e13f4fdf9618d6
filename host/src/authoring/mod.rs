//! Plugin authoring: `wasmhook new` (scaffold a plugin from the templates in
//! `plugins/templates/<lang>/`) and `wasmhook build` (detect the language of
//! a plugin directory and build it into a component with the project's
//! per-language script, then check it).
//!
//! Both work inside a wasmhook checkout, where the templates, SDKs and
//! build scripts live: `$WASMHOOK_HOME`, else the checkout this binary was
//! built from. Nothing here knows about wasmtime; checking the result is
//! the caller's job (the CLI runs `check`).

mod build;
mod lang;
mod scaffold;

use std::path::PathBuf;

pub use build::{BuildError, build, prerequisites};
pub use lang::Lang;
pub use scaffold::{NewError, new_plugin};

/// The wasmhook checkout holding `plugins/templates`, the SDKs and
/// `scripts/plugins/`.
pub fn home() -> Option<PathBuf> {
    let candidates = std::env::var_os("WASMHOOK_HOME")
        .map(PathBuf::from)
        .into_iter()
        .chain(std::iter::once(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."),
        ));
    candidates
        .filter(|p| p.join("plugins/templates").is_dir() && p.join("scripts/plugins").is_dir())
        .map(|p| p.canonicalize().unwrap_or(p))
        .next()
}
