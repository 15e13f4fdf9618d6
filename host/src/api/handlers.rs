//! The management endpoints as plain async functions over [`App`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::ApiError;
use super::views;
use crate::app::App;
use crate::ingest::now_ms;
use crate::model::Decision;
use crate::store::{DeliveryQuery, DeliveryStatus, OverlayKv, RetryFilter, RetryResult};

/// Largest page of `GET /v1/deliveries`.
const MAX_PAGE: usize = 500;

/// `GET /v1/events/{id}`: the event, each plugin's decision, and every
/// delivery with its attempts.
pub async fn get_event(app: &App, id: &str) -> Result<Value, ApiError> {
    let detail = app
        .store
        .get_event(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event with id {id:?}")))?;
    Ok(json!({
        "event": views::event(&detail.event),
        "received_ms": detail.received_ms,
        "plugins": detail.invocations.iter().map(views::invocation).collect::<Vec<_>>(),
        "deliveries": detail.deliveries.iter().map(views::delivery).collect::<Vec<_>>(),
    }))
}

/// `GET /v1/deliveries/{id}`: one delivery with every attempt.
pub async fn get_delivery(app: &App, id: &str) -> Result<Value, ApiError> {
    let delivery = app
        .store
        .get_delivery(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no delivery with id {id:?}")))?;
    Ok(views::delivery(&delivery))
}

/// Query parameters of `GET /v1/deliveries`.
#[derive(Debug, Default)]
pub struct DeliveryListParams {
    /// `status=pending|succeeded|failed`
    pub status: Option<String>,
    /// `plugin=NAME`
    pub plugin: Option<String>,
    /// `limit=N` (1..=500, default 50)
    pub limit: Option<String>,
    /// `cursor=…` from a previous page's `next_cursor`
    pub cursor: Option<String>,
}

impl DeliveryListParams {
    /// Parse a query string, refusing unknown parameters.
    pub fn from_query(query: Option<&str>) -> Result<Self, ApiError> {
        let mut p = DeliveryListParams::default();
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let slot = match k.as_ref() {
                "status" => &mut p.status,
                "plugin" => &mut p.plugin,
                "limit" => &mut p.limit,
                "cursor" => &mut p.cursor,
                other => {
                    return Err(ApiError::BadRequest(format!(
                        "unknown query parameter {other:?} (expected status, plugin, limit, cursor)"
                    )));
                }
            };
            if slot.replace(v.into_owned()).is_some() {
                return Err(ApiError::BadRequest(format!(
                    "query parameter {k:?} is given twice"
                )));
            }
        }
        Ok(p)
    }
}

fn parse_status(s: &str) -> Result<DeliveryStatus, ApiError> {
    DeliveryStatus::parse(s).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "status must be pending, succeeded or failed, not {s:?}"
        ))
    })
}

/// `GET /v1/deliveries?status=&plugin=&limit=&cursor=`.
pub async fn list_deliveries(app: &App, params: DeliveryListParams) -> Result<Value, ApiError> {
    let limit = match params.limit.as_deref() {
        None => 50,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "limit must be an integer from 1 to {MAX_PAGE}, not {l:?}"
                ))
            })?,
    };
    let status = params.status.as_deref().map(parse_status).transpose()?;
    let page = app
        .store
        .list_deliveries(DeliveryQuery {
            status,
            plugin: params.plugin,
            limit,
            cursor: params.cursor,
        })
        .await?;
    Ok(json!({
        "deliveries": page.items.iter().map(views::delivery).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    }))
}

/// `POST /v1/deliveries/{id}/retry`.
pub async fn retry_one(app: &App, id: &str) -> Result<Value, ApiError> {
    match app.store.retry_delivery(id, now_ms()).await? {
        RetryResult::Requeued => {
            app.deliveries_ready.notify_one();
            Ok(json!({"id": id, "status": "pending"}))
        }
        RetryResult::NotFound => Err(ApiError::NotFound(format!("no delivery with id {id:?}"))),
        RetryResult::AlreadyPending => Err(ApiError::Conflict(format!(
            "delivery {id} is already pending"
        ))),
    }
}

/// `POST /v1/deliveries/retry` with `{"plugin"?, "status"? (default failed),
/// "from_ms"?, "to_ms"?}`.
pub async fn retry_bulk(app: &App, body: &[u8]) -> Result<Value, ApiError> {
    let obj = super::json_object(body, true)?;
    let mut filter = RetryFilter::default();
    for (k, v) in obj {
        match (k.as_str(), v) {
            ("plugin", Value::String(s)) => filter.plugin = Some(s),
            ("status", Value::String(s)) => filter.status = parse_status(&s)?,
            ("from_ms", Value::Number(n)) if n.is_u64() => filter.from_ms = n.as_u64(),
            ("to_ms", Value::Number(n)) if n.is_u64() => filter.to_ms = n.as_u64(),
            (k @ ("plugin" | "status"), _) => {
                return Err(ApiError::BadRequest(format!("`{k}` must be a string")));
            }
            (k @ ("from_ms" | "to_ms"), _) => {
                return Err(ApiError::BadRequest(format!(
                    "`{k}` must be a non-negative integer (ms since 1970)"
                )));
            }
            (other, _) => {
                return Err(ApiError::BadRequest(format!(
                    "unknown field `{other}` (expected plugin, status, from_ms, to_ms)"
                )));
            }
        }
    }
    super::check_time_range(filter.from_ms, filter.to_ms)?;
    if filter.status == crate::store::DeliveryStatus::Pending {
        return Err(ApiError::BadRequest(
            "`status` \"pending\": pending deliveries are queued already; retry takes \"failed\" (the default) or \"succeeded\"".into(),
        ));
    }
    let requeued = app.store.retry_deliveries(filter, now_ms()).await?;
    if requeued > 0 {
        app.deliveries_ready.notify_one();
    }
    Ok(json!({ "requeued": requeued }))
}

/// `GET /v1/plugins`: name, component hash, events, counts by outcome,
/// whether the plugin is paused by its breaker, which of its destinations
/// are paused by theirs, and the state of its OAuth2 tokens; then the
/// `[[destinations]]` paused by their breaker, shared by all plugins.
pub async fn list_plugins(app: &App) -> Result<Value, ApiError> {
    let stats = app.store.plugin_stats().await?;
    let set = app.plugins();
    let now = Instant::now();
    let plugins: Vec<Value> = set
        .plugins
        .values()
        .map(|p| {
            let s = stats.get(&p.name).cloned().unwrap_or_default();
            json!({
                "name": p.name,
                "component_sha256": p.plugin.info().hash,
                "component_size": p.plugin.info().size,
                "events": p.events,
                "invocations": {"pending": s.invocations.pending, "parked": s.invocations.parked, "fire": s.invocations.fire, "skip": s.invocations.skip, "error": s.invocations.error, "expired": s.invocations.expired},
                "deliveries": {"pending": s.deliveries.pending, "succeeded": s.deliveries.succeeded, "failed": s.deliveries.failed},
                "kv": {"keys": s.kv.keys, "bytes": s.kv.bytes, "max_bytes": p.plugin.limits().kv_max_bytes},
                "paused_by_operator": super::hold::hold_view(p.hold.get().as_ref()),
                "breaker": views::breaker_health(p.runs.health(now)),
                "unhealthy_destinations": unhealthy_view(p.health.unhealthy(now)),
                "oauth2_tokens": p.tokens.iter().map(|(secret, source)| {
                    let s = source.stats();
                    json!({
                        "secret": secret,
                        "valid": s.valid,
                        "expires_in_s": s.expires_in.map(|d| d.as_secs()),
                        "fetches_ok": s.fetches_ok,
                        "fetches_failed": s.fetches_failed,
                        "last_error": s.last_error,
                    })
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    // `[[destinations]]` have one breaker for all plugins.
    let shared = unhealthy_view(set.destinations.unhealthy(now));
    Ok(json!({ "plugins": plugins, "unhealthy_destinations": shared }))
}

/// Paused or probing destinations, each with its breaker's state.
fn unhealthy_view(list: Vec<(String, crate::breaker::Health)>) -> Vec<Value> {
    list.into_iter()
        .map(|(destination, health)| {
            let mut v = views::breaker_health(health);
            v["destination"] = json!(destination);
            v
        })
        .collect()
}

/// `POST /v1/plugins/{name}/dry-run` with an event: the decision and the
/// requests as they would be sent (after the policy check, with secrets
/// masked), nothing sent, nothing stored (kv writes go to an overlay).
pub async fn dry_run(app: &App, name: &str, body: &[u8]) -> Result<Value, ApiError> {
    let loaded = app
        .plugins()
        .get(name)
        .ok_or_else(|| ApiError::NotFound(format!("no plugin named {name:?}")))?;
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::BadRequest("body is not valid UTF-8".into()))?;
    let event =
        crate::ingest::parse_event(text).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let overlay: Arc<dyn crate::store::KvStore> = Arc::new(OverlayKv::new(app.store.kv()));
    let plugin = loaded.plugin.clone();
    let ev = event.clone();
    let inv = tokio::task::spawn_blocking(move || plugin.invoke_with_kv(&ev, Some(overlay)))
        .await
        .map_err(|_| ApiError::Unavailable("the plugin could not be run".into()))?;
    let logs: Vec<Value> = inv.logs.iter().map(views::log_line).collect();
    let elapsed_us = inv.elapsed.as_micros() as u64;
    let mut out = match inv.outcome {
        Ok(Decision::Skip { reason }) => json!({"decision": "skip", "reason": reason}),
        Ok(Decision::Fire { requests }) => {
            let reqs: Vec<Value> = requests
                .iter()
                .map(|r| match loaded.policy.check_request(r).and_then(|d| loaded.policy.mask_secrets(r, &d)) {
                    Ok(masked) => json!({"allowed": true, "request": views::request(&masked)}),
                    Err(denied) => json!({"allowed": false, "denied": denied.to_string(), "request": views::request(r)}),
                })
                .collect();
            json!({"decision": "fire", "requests": reqs})
        }
        Err(e) => json!({"decision": "error", "kind": e.kind().as_str(), "error": e.to_string()}),
    };
    out["event_id"] = json!(event.id);
    out["logs"] = json!(logs);
    out["elapsed_us"] = json!(elapsed_us);
    Ok(out)
}

/// How long one probe of the store answers `/readyz`.
const READINESS_TTL: Duration = Duration::from_secs(1);

/// The last probe's answer and when it was taken.
#[derive(Default)]
pub struct ReadinessCache(tokio::sync::Mutex<Option<(Instant, Result<Value, ApiError>)>>);

/// `GET /readyz`: the store answers and shutdown has not begun. One probe
/// (a count and a write) answers every call of the next second, however
/// many arrive: the route needs no token.
pub async fn readiness(app: &App) -> Result<Value, ApiError> {
    if app.is_shutting_down() {
        return Err(ApiError::Unavailable("shutting down".into()));
    }
    // Held across the probe: calls arriving meanwhile wait for its answer
    // instead of probing too.
    let mut last = app.readiness.0.lock().await;
    // Shutdown may have begun while this call waited for the probe.
    if app.is_shutting_down() {
        return Err(ApiError::Unavailable("shutting down".into()));
    }
    if let Some((at, answer)) = last.as_ref()
        && at.elapsed() < READINESS_TTL
    {
        return answer.clone();
    }
    let answer = probe(app).await;
    *last = Some((Instant::now(), answer.clone()));
    answer
}

async fn probe(app: &App) -> Result<Value, ApiError> {
    let depth = app.store.queue_depth(now_ms()).await?;
    // Not ready while the store cannot write (disk full, read-only file):
    // ingest would answer 503. The reason is public ("disk full").
    if let Err(e) = app.store.check_writable().await {
        return Err(match e {
            crate::store::StoreError::Unavailable { .. } => ApiError::Unavailable(e.to_string()),
            other => other.into(),
        });
    }
    Ok(json!({
        "status": "ready",
        "plugins": app.plugins().plugins.len(),
        "invocations_pending": depth.invocations_pending,
        "deliveries_pending": depth.deliveries_pending,
    }))
}
