//! `GET /v1/events?name=&user_id=&limit=&cursor=`: recent events, newest
//! first, with where each one's work stands (to find "what happened to
//! user u-1's events"; `GET /v1/events/{id}` has the whole story).

use serde_json::{Value, json};

use super::ApiError;
use crate::app::App;
use crate::store::{EventQuery, EventSummary};

/// Largest page.
const MAX_PAGE: usize = 500;
/// Page size when none is asked for.
const DEFAULT_PAGE: usize = 50;

/// List events; the query string is parsed here, unknown parameters
/// refused.
pub async fn list_events(app: &App, query: Option<&str>) -> Result<Value, ApiError> {
    let query = parse(query)?;
    let page = app.store.list_events(query).await?;
    Ok(json!({
        "events": page.items.iter().map(summary).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    }))
}

fn summary(s: &EventSummary) -> Value {
    json!({
        "id": s.event.id,
        "name": s.event.name,
        "user_id": s.event.user_id,
        "timestamp_ms": s.event.timestamp_ms,
        "received_ms": s.received_ms,
        "status": if s.pending { "pending" } else { "done" },
        "deliveries": {
            "pending": s.deliveries.pending,
            "succeeded": s.deliveries.succeeded,
            "failed": s.deliveries.failed,
        },
    })
}

fn parse(query: Option<&str>) -> Result<EventQuery, ApiError> {
    let mut q = EventQuery {
        limit: DEFAULT_PAGE,
        ..EventQuery::default()
    };
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "name" => q.name = Some(v.into_owned()),
            "user_id" => q.user_id = Some(v.into_owned()),
            "cursor" => q.cursor = Some(v.into_owned()),
            "limit" => {
                q.limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        ApiError::BadRequest(format!(
                            "limit must be an integer from 1 to {MAX_PAGE}, not {v:?}"
                        ))
                    })?;
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {other:?} (expected name, user_id, limit, cursor)"
                )));
            }
        }
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_is_checked() {
        let q = parse(Some("name=order.paid&user_id=u%2D1&limit=7&cursor=42")).unwrap();
        assert_eq!(
            (
                q.name.as_deref(),
                q.user_id.as_deref(),
                q.limit,
                q.cursor.as_deref()
            ),
            (Some("order.paid"), Some("u-1"), 7, Some("42"))
        );
        assert_eq!(parse(None).unwrap().limit, DEFAULT_PAGE);
        for bad in ["limit=0", "limit=501", "limit=x", "status=pending"] {
            assert!(
                matches!(parse(Some(bad)), Err(ApiError::BadRequest(_))),
                "{bad}"
            );
        }
    }
}
