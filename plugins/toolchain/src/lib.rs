//! Build tooling for wasmhook plugins written in languages without their own
//! component toolchain (C first).
//!
//! Two steps turn a C file into a plugin:
//!
//! 1. [`generate_c_bindings`] writes the C bindings of the plugin contract
//!    (`transformer.h`, `transformer.c` and `transformer_component_type.o`),
//!    exactly what the `wit-bindgen c` command line would produce.
//! 2. After clang has compiled the plugin into a wasm32-wasi (preview1) core
//!    module, [`componentize`] wraps it into a component, adapting WASI
//!    preview1 to preview2 with the reactor adapter of the host's wasmtime.
//!
//! [`component_imports`] lists what a finished component imports, so that a
//! build can check a plugin asks for nothing the host refuses.
//!
//! This crate only transforms files and bytes: it never runs a plugin and
//! knows nothing about the host's runtime. The `wasmhook-toolchain` binary is
//! a thin shell over these functions; the host's `wasmhook build` calls them
//! directly.
//!
//! Layout: `wit.rs` loads a world, `bindgen.rs` writes C bindings,
//! `componentize.rs` builds and inspects components, `error.rs` holds the
//! one error type.

mod bindgen;
mod componentize;
mod error;
mod wit;

pub use bindgen::generate_c_bindings;
pub use componentize::{component_imports, componentize};
pub use error::ToolchainError;

/// The world every wasmhook plugin implements, used when none is given.
pub const DEFAULT_WORLD: &str = "transformer";
