//! The code `wit-bindgen` generates for the `transformer` world of
//! `wit/wasmhook.wit`, and nothing else.
//!
//! Plugin authors should not need this module: the crate root re-exports the
//! types, and `log`, `config` and `kv` wrap the imports so that they can be
//! replaced by a test double on native targets. It is public only because
//! the export macro generated here has to name it from the plugin's crate.

#![allow(missing_docs, unsafe_code, clippy::all)]

wit_bindgen::generate!({
    world: "transformer",
    path: "../../../wit",
    additional_derives: [PartialEq, Eq],
    pub_export_macro: true,
    default_bindings_module: "wasmhook_plugin::bindings",
});
