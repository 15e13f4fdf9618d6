//! Responses of the HTTP edge: JSON bodies, and the one place where errors
//! become status codes.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use crate::api::ApiError;
use crate::ingest::BodyError;
use crate::store::StoreError;

/// The response body type of every route.
pub(crate) type Body = Full<Bytes>;

/// A JSON response.
pub(crate) fn json(status: StatusCode, value: &Value) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(value.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// A plain-text response (metrics).
pub(crate) fn text(status: StatusCode, body: String, content_type: &'static str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    resp
}

/// `{"error": message}` with a status.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    json(status, &json!({ "error": message.into() }))
}

/// Map a management-API error to its status.
pub(crate) fn api_error(e: ApiError) -> Response<Body> {
    let status = match &e {
        ApiError::NotFound(_) => StatusCode::NOT_FOUND,
        ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
        ApiError::Conflict(_) => StatusCode::CONFLICT,
        ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    error(status, e.to_string())
}

/// Map an ingest body error to its status.
pub(crate) fn body_error(e: BodyError) -> Response<Body> {
    let status = match &e {
        BodyError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        BodyError::TooManyEvents { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        BodyError::Invalid(_) => StatusCode::BAD_REQUEST,
    };
    error(status, e.to_string())
}

/// 429 with `message` and `Retry-After` (whole seconds, at least 1).
pub(crate) fn too_many(message: String, wait: std::time::Duration) -> Response<Body> {
    let mut resp = error(StatusCode::TOO_MANY_REQUESTS, message);
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    resp.headers_mut().insert(
        hyper::header::RETRY_AFTER,
        hyper::header::HeaderValue::from(secs.max(1)),
    );
    resp
}

/// Map a failure to store accepted events to its status: 503 with the
/// reason when the storage is unavailable (disk full, read-only) or
/// closing, so the sender retries; 500 for corrupt data or a bug. Nothing
/// was accepted either way. The detail is logged, never sent.
pub(crate) fn ingest_store_error(e: &StoreError) -> Response<Body> {
    if !matches!(e, StoreError::IdTaken { .. }) {
        tracing::error!(error = %e, "committing events failed");
    }
    let (status, why) = match e {
        StoreError::Unavailable { reason } => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("storage unavailable: {reason}"),
        ),
        StoreError::Closed => (
            StatusCode::SERVICE_UNAVAILABLE,
            "storage unavailable: shutting down".to_owned(),
        ),
        StoreError::Backend(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "storage unavailable".to_owned(),
        ),
        StoreError::Corrupt(_) | StoreError::InvalidCursor => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "storage error".to_owned(),
        ),
        StoreError::IdTaken {
            index,
            id,
            taken_by,
        } => {
            return error(
                StatusCode::CONFLICT,
                format!(
                    "events[{index}]: id {id:?} was already accepted from {}; events are told apart by id alone here, so ids must be unique across sources (use UUIDs); nothing of this request was accepted",
                    crate::store::shown_source(taken_by.as_deref())
                ),
            );
        }
    };
    error(
        status,
        format!("{why}; the events were not stored and nothing was accepted, retry later"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_map_to_statuses_with_the_public_reason_only() {
        let cases = [
            (
                StoreError::Unavailable {
                    reason: "disk full",
                },
                503,
                "storage unavailable: disk full",
            ),
            (
                StoreError::Closed,
                503,
                "storage unavailable: shutting down",
            ),
            (
                StoreError::Backend("no such table: secret_detail".into()),
                503,
                "storage unavailable;",
            ),
            (
                StoreError::Corrupt("row 7: secret_detail".into()),
                500,
                "storage error;",
            ),
        ];
        for (e, status, starts) in cases {
            let resp = ingest_store_error(&e);
            assert_eq!(resp.status().as_u16(), status, "{e:?}");
            let body = format!("{:?}", resp.body());
            assert!(body.contains(starts), "{e:?}: {body}");
            assert!(!body.contains("secret_detail"), "{body}");
        }
    }
}
