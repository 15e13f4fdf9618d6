//! The one `bindgen!` of the host: Rust types for `wit/wasmhook.wit`.
//!
//! Generated types stay inside `runtime/`; `output.rs` converts them into
//! `crate::model` types before anything else sees them.

wasmtime::component::bindgen!({
    world: "transformer",
    path: "../wit",
    imports: { default: trappable },
});

pub(crate) use self::wasmhook::plugin::{config, kv, log, types};
