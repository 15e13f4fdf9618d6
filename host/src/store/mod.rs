//! Persistence: the plugin key-value store (and, with the pipeline, the
//! durable event queue and delivery log).
//!
//! Backends implement the traits here; nothing in this module knows about
//! HTTP or WebAssembly.

mod kv;

pub use kv::{KvStore, MemoryKv};

/// A storage backend failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend is unavailable or returned an error.
    #[error("storage backend error: {0}")]
    Backend(String),
}
