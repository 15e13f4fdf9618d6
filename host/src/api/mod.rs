//! The management API: event status, deliveries, replay, plugins, their
//! kv stores and dry-run, as functions from requests to JSON values.
//!
//! Handlers here know the store's records and the app state, not HTTP:
//! they return [`ApiError`], which the HTTP edge (`server/`) maps to a
//! status code. No SQL, no wasmtime.

mod cancel;
mod events;
mod handlers;
mod hold;
mod kv;
mod replay;
pub mod views;

pub use cancel::{cancel_bulk, cancel_one};
pub use events::list_events;
pub use handlers::{
    DeliveryListParams, ReadinessCache, dry_run, get_delivery, get_event, list_deliveries,
    list_plugins, readiness, retry_bulk, retry_one,
};
pub use hold::{pause, resume};
pub use kv::{clear_kv, list_kv};
pub use replay::replay;

/// Why a management request failed. Messages are safe to show to the
/// caller (no internal detail, no secrets).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed; the message names the parameter.
    #[error("{0}")]
    BadRequest(String),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// The service cannot answer right now (store unavailable, shutting down).
    #[error("{0}")]
    Unavailable(String),
}

/// Below this a `*_ms` time is in 1973 or earlier: seconds, most likely.
const EARLIEST_MS: u64 = 100_000_000_000;

/// Check a `[from_ms, to_ms)` filter: times in milliseconds (0 allowed,
/// for "from the start"), and not a range that is empty by mistake.
fn check_time_range(from_ms: Option<u64>, to_ms: Option<u64>) -> Result<(), ApiError> {
    for (key, ms) in [("from_ms", from_ms), ("to_ms", to_ms)] {
        if let Some(ms) = ms.filter(|&ms| ms > 0 && ms < EARLIEST_MS) {
            return Err(ApiError::BadRequest(format!(
                "`{key}` is {ms}, a time in 1973 or earlier if in milliseconds: \
                 give milliseconds since 1970, not seconds"
            )));
        }
    }
    match (from_ms, to_ms) {
        (_, Some(0)) => Err(ApiError::BadRequest(
            "`to_ms` is 0: the range [from_ms, 0) is empty".into(),
        )),
        (Some(from), Some(to)) if from >= to => Err(ApiError::BadRequest(format!(
            "`from_ms` ({from}) is not before `to_ms` ({to}): the range [from_ms, to_ms) is empty"
        ))),
        _ => Ok(()),
    }
}

/// A request body that must be a JSON object; an empty body is `{}` when
/// `empty_ok` (every field optional), an error otherwise.
fn json_object(
    body: &[u8],
    empty_ok: bool,
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    if empty_ok && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Map::new());
    }
    // Strict: `{"plugin":"a","plugin":"b"}` must not cancel b's
    // deliveries because the last key won.
    match crate::ingest::strict_json::from_slice(body) {
        Ok(serde_json::Value::Object(obj)) => Ok(obj),
        Ok(_) => Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        )),
        Err(e) => Err(ApiError::BadRequest(format!("invalid JSON body: {e}"))),
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::InvalidCursor => {
                ApiError::BadRequest("invalid cursor".into())
            }
            other => {
                tracing::error!(error = %other, "store error in the management API");
                ApiError::Unavailable("the store is unavailable; try again".into())
            }
        }
    }
}
