//! `POST /v1/plugins/{name}/pause` and `/resume`: an operator stops a
//! plugin (nothing of it runs or is sent; its events wait) and lets it go
//! again. See [`crate::plugin_hold`].

use serde_json::{Value, json};

use super::ApiError;
use crate::app::App;
use crate::store::PluginHold;

/// Body `{"reason"?: "…"}`: hold the plugin until resumed. Answers the
/// hold; pausing a held plugin keeps its start time.
pub async fn pause(app: &App, name: &str, body: &[u8]) -> Result<Value, ApiError> {
    let loaded = app
        .plugins()
        .get(name)
        .ok_or_else(|| ApiError::NotFound(format!("no plugin named {name:?}")))?;
    let reason = parse_reason(body)?;
    let hold = crate::worker::hold_plugin(app, &loaded, reason).await?;
    Ok(view(name, Some(&hold)))
}

/// Let the plugin run again; answers how many waiting jobs were made due.
pub async fn resume(app: &App, name: &str) -> Result<Value, ApiError> {
    let loaded = app
        .plugins()
        .get(name)
        .ok_or_else(|| ApiError::NotFound(format!("no plugin named {name:?}")))?;
    let resumed = crate::worker::resume_plugin(app, &loaded).await?;
    let mut v = view(name, None);
    v["resumed_jobs"] = json!(resumed);
    Ok(v)
}

/// The hold as `GET /v1/plugins` and these endpoints show it.
pub fn hold_view(hold: Option<&PluginHold>) -> Value {
    match hold {
        Some(h) => json!({"since_ms": h.since_ms, "reason": h.reason}),
        None => Value::Null,
    }
}

fn view(name: &str, hold: Option<&PluginHold>) -> Value {
    json!({"plugin": name, "paused_by_operator": hold_view(hold)})
}

fn parse_reason(body: &[u8]) -> Result<Option<String>, ApiError> {
    let obj = super::json_object(body, true)?;
    let mut reason = None;
    for (k, v) in obj {
        match (k.as_str(), v) {
            ("reason", Value::String(s)) if s.len() <= 1024 => reason = Some(s),
            ("reason", Value::String(_)) => {
                return Err(ApiError::BadRequest(
                    "`reason` must be at most 1024 bytes".into(),
                ));
            }
            ("reason", _) => {
                return Err(ApiError::BadRequest("`reason` must be a string".into()));
            }
            (other, _) => {
                return Err(ApiError::BadRequest(format!(
                    "unknown field `{other}` (expected reason)"
                )));
            }
        }
    }
    Ok(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_is_optional_and_checked() {
        assert_eq!(parse_reason(b"").unwrap(), None);
        assert_eq!(parse_reason(b"{}").unwrap(), None);
        assert_eq!(
            parse_reason(br#"{"reason":"CRM migration"}"#).unwrap(),
            Some("CRM migration".into())
        );
        let bad = |body: &str| match parse_reason(body.as_bytes()) {
            Err(ApiError::BadRequest(m)) => m,
            other => panic!("{body}: {other:?}"),
        };
        assert!(bad(r#"{"reason":5}"#).starts_with("`reason` must be a string"));
        assert!(bad(&format!(r#"{{"reason":"{}"}}"#, "x".repeat(1025))).contains("1024"));
        assert!(bad(r#"{"why":"x"}"#).starts_with("unknown field `why`"));
        assert!(bad("[]").contains("JSON object"));
    }
}
