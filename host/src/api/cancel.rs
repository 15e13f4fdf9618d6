//! `POST /v1/deliveries/{id}/cancel` and `POST /v1/deliveries/cancel`:
//! give up on pending deliveries (a plugin built bad requests, a
//! destination is gone for good), typically while the plugin is paused.

use serde_json::{Value, json};

use super::ApiError;
use crate::app::App;
use crate::ingest::now_ms;
use crate::store::{CancelFilter, CancelResult};

/// Cancel one pending delivery.
pub async fn cancel_one(app: &App, id: &str) -> Result<Value, ApiError> {
    match app.store.cancel_delivery(id, now_ms()).await? {
        CancelResult::Cancelled => {
            app.metrics.deliveries_cancelled(1);
            tracing::info!(delivery = id, "delivery cancelled by the operator");
            Ok(json!({"id": id, "status": "failed"}))
        }
        CancelResult::NotFound => Err(ApiError::NotFound(format!("no delivery with id {id:?}"))),
        CancelResult::NotPending => Err(ApiError::Conflict(format!(
            "delivery {id} is not pending (it already succeeded or failed)"
        ))),
    }
}

/// Body `{"plugin", "from_ms"?, "to_ms"?}`: cancel the plugin's pending
/// deliveries created in that range. The plugin is required, so that no
/// body cancels everything.
pub async fn cancel_bulk(app: &App, body: &[u8]) -> Result<Value, ApiError> {
    let filter = parse(body)?;
    let plugin = filter.plugin.clone();
    let cancelled = app.store.cancel_deliveries(filter, now_ms()).await?;
    if cancelled > 0 {
        app.metrics.deliveries_cancelled(cancelled);
        tracing::info!(plugin, cancelled, "deliveries cancelled by the operator");
    }
    Ok(json!({ "cancelled": cancelled }))
}

fn parse(body: &[u8]) -> Result<CancelFilter, ApiError> {
    let obj = super::json_object(body, false)?;
    let (mut plugin, mut from_ms, mut to_ms) = (None, None, None);
    for (k, v) in obj {
        match (k.as_str(), v) {
            ("plugin", Value::String(s)) => plugin = Some(s),
            ("from_ms", Value::Number(n)) if n.is_u64() => from_ms = n.as_u64(),
            ("to_ms", Value::Number(n)) if n.is_u64() => to_ms = n.as_u64(),
            ("plugin", _) => {
                return Err(ApiError::BadRequest("`plugin` must be a string".into()));
            }
            (k @ ("from_ms" | "to_ms"), _) => {
                return Err(ApiError::BadRequest(format!(
                    "`{k}` must be a non-negative integer (ms since 1970)"
                )));
            }
            (other, _) => {
                return Err(ApiError::BadRequest(format!(
                    "unknown field `{other}` (expected plugin, from_ms, to_ms)"
                )));
            }
        }
    }
    let plugin = plugin.ok_or_else(|| {
        ApiError::BadRequest("`plugin` is required: whose deliveries to cancel".into())
    })?;
    super::check_time_range(from_ms, to_ms)?;
    Ok(CancelFilter {
        plugin,
        from_ms,
        to_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plugin_is_required_and_fields_are_checked() {
        let f =
            parse(br#"{"plugin":"crm","from_ms":1700000000001,"to_ms":1700000000002}"#).unwrap();
        assert_eq!(
            (f.plugin.as_str(), f.from_ms, f.to_ms),
            ("crm", Some(1_700_000_000_001), Some(1_700_000_000_002))
        );
        let bad = |body: &str| match parse(body.as_bytes()) {
            Err(ApiError::BadRequest(m)) => m,
            other => panic!("{body}: {other:?}"),
        };
        assert!(bad("{}").starts_with("`plugin` is required"));
        assert!(bad("").starts_with("invalid JSON body"));
        assert!(bad(r#"{"plugin":1}"#).starts_with("`plugin` must be a string"));
        assert!(bad(r#"{"plugin":"p","to_ms":-1}"#).starts_with("`to_ms`"));
        assert!(bad(r#"{"plugin":"p","status":"failed"}"#).starts_with("unknown field `status`"));
        assert!(bad(r#"{"plugin":"p","from_ms":1700000000}"#).contains("not seconds"));
        assert!(
            bad(r#"{"plugin":"p","from_ms":1700000000002,"to_ms":1700000000001}"#)
                .contains("is empty")
        );
        assert!(bad(r#"{"plugin":"a","plugin":"b"}"#).contains("duplicate key"));
        assert!(
            bad(r#"{"plugin":"p","from_ms":1700000000001,"to_ms":1700000000001}"#)
                .contains("is empty")
        );
        assert!(bad(r#"{"plugin":"p","to_ms":0}"#).contains("is empty"));
        // 0 is the start of time, not seconds.
        assert!(parse(br#"{"plugin":"p","from_ms":0}"#).is_ok());
    }
}
