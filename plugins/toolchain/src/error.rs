//! The toolchain's one error type. Causes from the underlying wasm-tools
//! crates are flattened into text (with their whole context chain) so that
//! no `anyhow::Error` crosses this crate's boundary.

use std::path::PathBuf;

/// Everything that can go wrong while generating bindings or building a
/// component.
#[derive(Debug, thiserror::Error)]
pub enum ToolchainError {
    /// The WIT directory could not be read or parsed.
    #[error("cannot load WIT from {path}: {detail}")]
    Wit {
        /// The directory that was given.
        path: PathBuf,
        /// What the WIT parser reported.
        detail: String,
    },
    /// The WIT package has no such world.
    #[error("cannot select world `{world}`: {detail}")]
    World {
        /// The world that was asked for.
        world: String,
        /// What the WIT parser reported.
        detail: String,
    },
    /// The C binding generator failed.
    #[error("C binding generation failed: {0}")]
    Bindgen(String),
    /// A file or directory could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The path that was being written.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The input is not a valid core WebAssembly module.
    #[error("not a core WebAssembly module: {0}")]
    NotCoreModule(String),
    /// The module lacks a function export the world requires.
    #[error("the module does not export `{name}`, which world `{world}` requires")]
    MissingExport {
        /// The missing function, as named in the world.
        name: String,
        /// The world being built.
        world: String,
    },
    /// The world's type metadata could not be embedded into the module.
    #[error("cannot embed the world's type metadata: {0}")]
    Embed(String),
    /// `wit-component` refused to build the component.
    #[error("cannot build the component: {0}")]
    Encode(String),
    /// The bytes given are not a valid component.
    #[error("not a WebAssembly component: {0}")]
    NotComponent(String),
}
