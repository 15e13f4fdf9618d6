//! Routing: method + path → handler, with authentication and body limits
//! applied before any handler runs.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::auth::{Audience, Refusal};
use super::ingest;
use super::reply::{self, Body};
use crate::api::{self, DeliveryListParams};
use crate::app::App;
use crate::metrics::Depth;

/// Bodies of management requests (dry-run events, bulk retry filters).
const ADMIN_BODY_LIMIT: usize = 1024 * 1024;

/// The path's segments, each percent-decoded after splitting, so an event
/// id holding `/`, `%`, a space or any non-ASCII text is one segment
/// (`/v1/events/a%2Fb` names the event `a/b`). `None` if a segment does
/// not decode to UTF-8.
fn path_segments(path: &str) -> Option<Vec<String>> {
    path.trim_matches('/')
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(std::borrow::Cow::into_owned)
        })
        .collect()
}

/// Handle one request. Never fails: every error is a JSON response.
pub(super) async fn handle(app: &App, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let Some(decoded) = path_segments(req.uri().path()) else {
        return reply::error(
            StatusCode::BAD_REQUEST,
            "the request path is not UTF-8 once percent-decoded",
        );
    };
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    match (&method, segments.as_slice()) {
        (&Method::GET, ["healthz"]) => reply::json(StatusCode::OK, &json!({"status": "ok"})),
        (&Method::GET, ["readyz"]) => match api::readiness(app).await {
            Ok(v) => reply::json(StatusCode::OK, &v),
            Err(e) => reply::api_error(e),
        },
        (_, ["v1", "events"]) if method == Method::POST => ingest_route(app, req).await,
        (_, ["v1", "events"]) if method == Method::GET => {
            admin_route(app, req, &method, &segments).await
        }
        (_, ["v1", "events"]) => method_not_allowed("GET, POST"),
        (_, ["healthz" | "readyz"]) => method_not_allowed("GET"),
        _ => admin_route(app, req, &method, &segments).await,
    }
}

fn method_not_allowed(allowed: &'static str) -> Response<Body> {
    let mut resp = reply::error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method not allowed; use {allowed}"),
    );
    resp.headers_mut().insert(
        hyper::header::ALLOW,
        hyper::header::HeaderValue::from_static(allowed),
    );
    resp
}

fn unauthorized(refusal: Refusal, audience: Audience) -> Response<Body> {
    let which = match audience {
        Audience::Ingest => "an ingest token",
        Audience::Admin => "an admin token",
        Audience::Read => "a read or admin token",
    };
    let msg = match refusal {
        Refusal::Missing => {
            format!("missing credentials: send `authorization: Bearer <token>` with {which}")
        }
        Refusal::Wrong => format!("invalid token: this endpoint needs {which}"),
    };
    let mut resp = reply::error(StatusCode::UNAUTHORIZED, msg);
    resp.headers_mut().insert(
        hyper::header::WWW_AUTHENTICATE,
        hyper::header::HeaderValue::from_static("Bearer"),
    );
    resp
}

/// The 401 response when the request lacks a valid token for `audience`.
fn authorize(app: &App, req: &Request<Incoming>, audience: Audience) -> Option<Response<Body>> {
    let header = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    app.tokens
        .load()
        .check(header, audience)
        .err()
        .map(|r| unauthorized(r, audience))
}

/// Read the body, refusing more than `limit` bytes (413) and a body slower
/// than [`super::BODY_READ_TIMEOUT`] (408). A body at most
/// [`MAX_DRAIN_BYTES`] over the limit is read to its end first, so the
/// client gets the answer; a larger one (announced or sent) is cut off and
/// the connection closed.
async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, Response<Body>> {
    let too_large = |drained: bool| {
        let mut resp = reply::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than the {limit}-byte limit"),
        );
        if !drained {
            // The rest of the body is still coming: this connection is done.
            resp.headers_mut().insert(
                hyper::header::CONNECTION,
                hyper::header::HeaderValue::from_static("close"),
            );
        }
        resp
    };
    // Past the limit, up to this much more is read and thrown away before
    // answering: a client that sent a body slightly too large then reads
    // the 413 instead of a connection reset (closing a socket with unread
    // data resets it). Larger bodies are cut off at once.
    let drain_cap = limit as u64 + MAX_DRAIN_BYTES;
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > drain_cap) {
        return Err(too_large(false));
    }
    let mut body = req.into_body();
    let read = async {
        let mut kept = Vec::new();
        let mut seen: u64 = 0;
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return Err(reply::error(
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read",
                ));
            };
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            seen += data.len() as u64;
            if seen > drain_cap {
                return Err(too_large(false));
            }
            if seen <= limit as u64 {
                kept.extend_from_slice(&data);
            }
        }
        if seen > limit as u64 {
            Err(too_large(true))
        } else {
            Ok(Bytes::from(kept))
        }
    };
    match tokio::time::timeout(super::BODY_READ_TIMEOUT, read).await {
        Ok(result) => result,
        Err(_) => Err(body_timeout()),
    }
}

/// How much of a too-large body is read and discarded before the 413.
const MAX_DRAIN_BYTES: u64 = 1024 * 1024;

/// 408 for a body that did not arrive in time; the connection is closed,
/// since the rest of the body may still be on its way.
fn body_timeout() -> Response<Body> {
    let mut resp = reply::error(
        StatusCode::REQUEST_TIMEOUT,
        format!(
            "the request body did not arrive within {} s",
            super::BODY_READ_TIMEOUT.as_secs()
        ),
    );
    resp.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    resp
}

async fn ingest_route(app: &App, req: Request<Incoming>) -> Response<Body> {
    let header = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let holder = match app.tokens.load().holder(header, Audience::Ingest) {
        Ok(holder) => holder,
        Err(refusal) => return unauthorized(refusal, Audience::Ingest),
    };
    if app.is_shutting_down() {
        return reply::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down; retry against another instance",
        );
    }
    let content_type = req.headers().get(hyper::header::CONTENT_TYPE).map(|v| {
        v.to_str()
            .map(str::to_owned)
            .unwrap_or_else(|_| "<invalid>".into())
    });
    let mut headers: Vec<(String, String)> = Vec::new();
    for (name, value) in req.headers() {
        if !name.as_str().starts_with("ce-") {
            continue;
        }
        // A CloudEvents attribute that is not text is refused, not dropped
        // (dropping it would report the attribute as missing).
        let Ok(value) = std::str::from_utf8(value.as_bytes()) else {
            return reply::error(
                StatusCode::BAD_REQUEST,
                format!("header `{name}` is not valid UTF-8"),
            );
        };
        headers.push((name.as_str().to_owned(), value.to_owned()));
    }
    let body = match read_body(req, app.limits.max_body_bytes).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    ingest::accept(app, holder, &headers, content_type.as_deref(), &body).await
}

async fn admin_route(
    app: &App,
    req: Request<Incoming>,
    method: &Method,
    segments: &[&str],
) -> Response<Body> {
    let known = matches!(
        segments,
        ["metrics"]
            | ["v1", "events"]
            | ["v1", "events", _]
            | ["v1", "deliveries"]
            // One delivery; also `retry` and `cancel`, the bulk routes.
            | ["v1", "deliveries", _]
            | ["v1", "deliveries", _, "retry"]
            | ["v1", "deliveries", _, "cancel"]
            | ["v1", "plugins"]
            | ["v1", "plugins", _, "dry-run"]
            | ["v1", "plugins", _, "replay"]
            | ["v1", "plugins", _, "pause"]
            | ["v1", "plugins", _, "resume"]
            | ["v1", "plugins", _, "kv"]
    );
    if !known {
        return reply::error(
            StatusCode::NOT_FOUND,
            format!("no route for {} {}", method, req.uri().path()),
        );
    }
    // Reads (and metrics) open to read tokens; everything else, admin.
    let audience = if method == Method::GET {
        Audience::Read
    } else {
        Audience::Admin
    };
    if let Some(resp) = authorize(app, &req, audience) {
        return resp;
    }
    let query = req.uri().query().map(str::to_owned);
    let result = match (method, segments) {
        (&Method::GET, ["metrics"]) => {
            let depth = app
                .store
                .queue_depth(crate::ingest::now_ms())
                .await
                .unwrap_or_default();
            let plugins = app.plugins();
            let stats = app.store.plugin_stats().await.unwrap_or_default();
            let text = app.metrics.render(Depth {
                invocations_pending: depth.invocations_pending,
                deliveries_pending: depth.deliveries_pending,
                paused_by_operator: plugins
                    .plugins
                    .values()
                    .map(|p| (p.name.clone(), p.hold.is_held()))
                    .collect(),
                destinations_in_flight: plugins.destinations.in_flight(),
                tokens: plugins.token_stats(),
                kv: plugins
                    .plugins
                    .values()
                    .map(|p| {
                        let bytes = stats.get(&p.name).map_or(0, |s| s.kv.bytes);
                        (p.name.clone(), bytes, p.plugin.limits().kv_max_bytes)
                    })
                    .collect(),
            });
            return reply::text(StatusCode::OK, text, "text/plain; version=0.0.4");
        }
        (&Method::GET, ["v1", "events"]) => api::list_events(app, query.as_deref()).await,
        (&Method::GET, ["v1", "events", id]) => api::get_event(app, id).await,
        (&Method::GET, ["v1", "deliveries"]) => {
            match DeliveryListParams::from_query(query.as_deref()) {
                Ok(params) => api::list_deliveries(app, params).await,
                Err(e) => Err(e),
            }
        }
        (&Method::GET, ["v1", "deliveries", id]) => api::get_delivery(app, id).await,
        (&Method::POST, ["v1", "deliveries", "retry"]) => {
            match read_body(req, ADMIN_BODY_LIMIT).await {
                Ok(body) => api::retry_bulk(app, &body).await,
                Err(resp) => return resp,
            }
        }
        (&Method::POST, ["v1", "deliveries", id, "retry"]) => api::retry_one(app, id).await,
        (&Method::POST, ["v1", "deliveries", "cancel"]) => {
            match read_body(req, ADMIN_BODY_LIMIT).await {
                Ok(body) => api::cancel_bulk(app, &body).await,
                Err(resp) => return resp,
            }
        }
        (&Method::POST, ["v1", "deliveries", id, "cancel"]) => api::cancel_one(app, id).await,
        (&Method::GET, ["v1", "plugins"]) => api::list_plugins(app).await,
        (&Method::POST, ["v1", "plugins", name, "dry-run"]) => {
            let name = (*name).to_owned();
            match read_body(req, ADMIN_BODY_LIMIT).await {
                Ok(body) => api::dry_run(app, &name, &body).await,
                Err(resp) => return resp,
            }
        }
        (&Method::POST, ["v1", "plugins", name, "pause"]) => {
            let name = (*name).to_owned();
            match read_body(req, ADMIN_BODY_LIMIT).await {
                Ok(body) => api::pause(app, &name, &body).await,
                Err(resp) => return resp,
            }
        }
        (&Method::POST, ["v1", "plugins", name, "resume"]) => api::resume(app, name).await,
        (&Method::GET, ["v1", "plugins", name, "kv"]) => {
            api::list_kv(app, name, query.as_deref()).await
        }
        (&Method::DELETE, ["v1", "plugins", name, "kv"]) => {
            api::clear_kv(app, name, query.as_deref()).await
        }
        (&Method::POST, ["v1", "plugins", name, "replay"]) => {
            let name = (*name).to_owned();
            match read_body(req, ADMIN_BODY_LIMIT).await {
                Ok(body) => api::replay(app, &name, &body).await,
                Err(resp) => return resp,
            }
        }
        _ => {
            return reply::error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method {method} not allowed here"),
            );
        }
    };
    match result {
        Ok(v) => reply::json(StatusCode::OK, &v),
        Err(e) => reply::api_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::path_segments;

    #[test]
    fn segments_are_decoded_after_splitting() {
        assert_eq!(
            path_segments("/v1/events/a%20b%2F%C3%A9/").unwrap(),
            ["v1", "events", "a b/é"]
        );
        assert_eq!(path_segments("/metrics").unwrap(), ["metrics"]);
        assert!(path_segments("/v1/events/%FF").is_none());
    }
}
