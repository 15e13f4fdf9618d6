//! Structured logging into the host's log, tagged by the host with the
//! plugin name and event id. The host caps message size and rate.
//!
//! On native targets messages go to the [`crate::testing`] double instead.

pub use crate::bindings::wasmhook::plugin::log::Level;

/// Write `message` to the host's log at `level`.
pub fn log(level: Level, message: impl AsRef<str>) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::wasmhook::plugin::log::log(level, message.as_ref());
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::record_log(level, message.as_ref());
}

/// Log `message` at [`Level::Trace`].
pub fn trace(message: impl AsRef<str>) {
    log(Level::Trace, message);
}

/// Log `message` at [`Level::Debug`].
pub fn debug(message: impl AsRef<str>) {
    log(Level::Debug, message);
}

/// Log `message` at [`Level::Info`].
pub fn info(message: impl AsRef<str>) {
    log(Level::Info, message);
}

/// Log `message` at [`Level::Warn`].
pub fn warn(message: impl AsRef<str>) {
    log(Level::Warn, message);
}

/// Log `message` at [`Level::Error`].
pub fn error(message: impl AsRef<str>) {
    log(Level::Error, message);
}
