//! Ingest: turning what senders send into [`crate::model::Event`]s.
//!
//! Only wire-format parsing lives here so far (the native JSON event format
//! shared by `wasmhook run --event` and the HTTP API). It knows nothing of
//! WebAssembly or retries.

mod event;

pub use event::{IngestError, parse_event, parse_event_value};
