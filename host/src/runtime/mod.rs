//! The WebAssembly runtime: compiles plugin components, enforces their
//! sandbox, and turns one event into one validated decision.
//!
//! This module owns everything wasmtime: the `Engine` (pooling allocator,
//! epoch deadlines, optional fuel), the on-disk compile cache, the one
//! `bindgen!`, per-instance `Store` state and limits, and the host side of
//! the `log`/`config`/`kv` imports. No wasmtime type leaves it: callers see
//! [`Runtime`], [`Plugin`], and plain `crate::model` values. It knows
//! nothing of HTTP status codes or SQL.

mod bindings;
mod cache;
mod cache_trim;
mod clock;
mod engine;
mod error;
mod host_imports;
mod inspect;
mod limits;
mod log_forward;
mod output;
mod plugin;
mod state;
mod stdio;

pub use cache::{DEFAULT_CACHE_MAX_MB, default_cache_dir};
pub use engine::{Runtime, RuntimeConfig};
pub use error::{ErrorKind, LoadError, PluginError};
pub use inspect::ComponentInfo;
pub use limits::PluginLimits;
pub use output::{MAX_HEADER_BYTES, MAX_REASON_BYTES};
pub use plugin::{ASSETS_GUEST_PATH, Invocation, Plugin, PluginSpec};
