//! `POST /v1/events`: parse, route to subscribed plugins, commit durably,
//! then answer 202 with the ids.

use hyper::StatusCode;
use serde_json::json;

use super::reply::{self, Body};
use crate::app::App;
use crate::ingest::{body_format, now_ms, parse_body};
use crate::store::NewEvent;
use crate::worker;

/// Handle an ingest request whose body was already read within limits.
pub(super) async fn accept(
    app: &App,
    holder: [u8; 32],
    headers: &[(String, String)],
    content_type: Option<&str>,
    body: &[u8],
) -> hyper::Response<Body> {
    // Any `ce-*` header means a binary-mode CloudEvent, so one that lacks
    // `ce-specversion` is told so instead of being read as a native event.
    let has_ce = headers.iter().any(|(k, _)| k.starts_with("ce-"));
    let format = match body_format(content_type, has_ce) {
        Ok(f) => f,
        Err(e) => return reply::body_error(e),
    };
    let events = match parse_body(
        format,
        headers,
        content_type,
        body,
        app.limits.max_batch_events,
    ) {
        Ok(events) => events,
        Err(e) => return reply::body_error(e),
    };
    if let Some(rate) = &app.ingest_rate
        && let Err(wait) = rate.take(holder, events.len(), std::time::Instant::now())
    {
        app.metrics.events_rate_limited(events.len() as u64);
        return reply::too_many(
            format!(
                "ingest rate limit: at most {} events a second per ingest token ([server] ingest_events_per_second); nothing of this request was accepted, retry after {:.1} s",
                rate.per_second(),
                wait.as_secs_f64()
            ),
            wait,
        );
    }
    let plugins = app.plugins();
    let received_ms = now_ms();
    let now = std::time::Instant::now();
    let ids: Vec<String> = events.iter().map(|e| e.event.id.clone()).collect();
    let batch = events
        .into_iter()
        .map(|incoming| {
            let (running, paused) = plugins.route(&incoming.event.name, now);
            NewEvent {
                plugins: running,
                parked: paused,
                event: incoming.event,
                received_ms,
                source: incoming.source,
            }
        })
        .collect();
    match worker::insert_events(app, batch).await {
        Ok(results) => {
            let new = results.iter().filter(|r| r.is_new()).count() as u64;
            app.metrics.events(new, results.len() as u64 - new);
            reply::json(StatusCode::ACCEPTED, &json!({ "ids": ids }))
        }
        Err(e) => reply::ingest_store_error(&e),
    }
}
