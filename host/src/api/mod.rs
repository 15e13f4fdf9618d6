//! The management API: event status, deliveries, replay, plugins and
//! dry-run, as functions from requests to JSON values.
//!
//! Handlers here know the store's records and the app state, not HTTP:
//! they return [`ApiError`], which the HTTP edge (`server/`) maps to a
//! status code. No SQL, no wasmtime.

mod cancel;
mod events;
mod handlers;
mod hold;
mod replay;
pub mod views;

pub use cancel::{cancel_bulk, cancel_one};
pub use events::list_events;
pub use handlers::{
    DeliveryListParams, dry_run, get_event, list_deliveries, list_plugins, readiness, retry_bulk,
    retry_one,
};
pub use hold::{pause, resume};
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
