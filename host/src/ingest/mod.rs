//! Ingest: turning what senders send into [`crate::model::Event`]s.
//!
//! Wire-format parsing (the native JSON event format shared by
//! `wasmhook run --event` and the HTTP API, and CloudEvents 1.0 in
//! structured, batch and binary modes). It knows nothing of WebAssembly,
//! storage or retries, and nothing of HTTP status codes: the HTTP edge maps
//! [`BodyError`] variants to statuses.

mod batch;
mod cloudevents;
mod event;
pub(crate) mod strict_json;

pub use batch::{BodyError, BodyFormat, Incoming, body_format, parse_body};
pub use cloudevents::{CloudEvent, MAX_SOURCE_BYTES, parse_binary, parse_structured};
pub(crate) use event::now_ms;
pub use event::{IngestError, MAX_FIELD_BYTES, MAX_TIMESTAMP_MS, parse_event, parse_event_value};
