//! wasmhook: an event-driven webhook host whose plugins are WebAssembly
//! components.
//!
//! # Layout
//! - [`model`]: domain types (`Event`, `OutboundRequest`, `Decision`).
//! - [`ingest`]: parsing events from the wire formats.
//! - [`runtime`]: wasmtime, the plugin sandbox, and output validation.
//! - [`store`]: persistence (the plugin key-value store).
//! - [`cli`]: the `wasmhook` command line (`check`, `run`).

pub mod cli;
pub mod config;
pub mod delivery;
pub mod ingest;
pub mod model;
pub mod policy;
pub mod runtime;
pub mod store;
