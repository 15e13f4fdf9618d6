//! `POST /v1/plugins/{name}/replay`: run a plugin's past decisions again,
//! typically after deploying a fix for the errors it made.

use serde_json::{Value, json};

use super::ApiError;
use crate::app::App;
use crate::ingest::now_ms;
use crate::store::ReplayFilter;

/// Invocations one store write of a replay looks at.
const SCAN: usize = 10_000;

/// Body `{"decisions"? (["error"] by default; "error" and/or "skip"),
/// "event_id"?, "from_ms"?, "to_ms"?}`: the plugin's matching decisions
/// become pending again and run on the plugin as it is now. Answers how
/// many were requeued.
pub async fn replay(app: &App, name: &str, body: &[u8]) -> Result<Value, ApiError> {
    if app.plugins().get(name).is_none() {
        return Err(ApiError::NotFound(format!("no plugin named {name:?}")));
    }
    let filter = parse(name, body)?;
    let now = now_ms();
    let (mut requeued, mut cursor) = (0, None::<String>);
    loop {
        let page = app
            .store
            .replay_invocations(&filter, cursor.as_deref(), SCAN, now)
            .await?;
        requeued += page.requeued;
        if page.requeued > 0 {
            app.invocations_ready.notify_one();
        }
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    if requeued > 0 {
        app.metrics.invocations_replayed(name, requeued);
        tracing::info!(plugin = name, requeued, "decisions replayed");
    }
    Ok(json!({ "plugin": name, "requeued": requeued }))
}

fn parse(name: &str, body: &[u8]) -> Result<ReplayFilter, ApiError> {
    let obj = super::json_object(body, true)?;
    let mut filter = ReplayFilter {
        plugin: name.to_owned(),
        errors: true,
        skips: false,
        event_id: None,
        from_ms: None,
        to_ms: None,
    };
    for (k, v) in obj {
        match (k.as_str(), v) {
            ("decisions", Value::Array(items)) => {
                (filter.errors, filter.skips) = decisions(&items)?;
            }
            ("event_id", Value::String(s)) => filter.event_id = Some(s),
            ("from_ms", Value::Number(n)) if n.is_u64() => filter.from_ms = n.as_u64(),
            ("to_ms", Value::Number(n)) if n.is_u64() => filter.to_ms = n.as_u64(),
            ("decisions", _) => {
                return Err(ApiError::BadRequest(
                    "`decisions` must be an array of \"error\" and \"skip\"".into(),
                ));
            }
            ("event_id", _) => {
                return Err(ApiError::BadRequest("`event_id` must be a string".into()));
            }
            (k @ ("from_ms" | "to_ms"), _) => {
                return Err(ApiError::BadRequest(format!(
                    "`{k}` must be a non-negative integer (ms since 1970)"
                )));
            }
            (other, _) => {
                return Err(ApiError::BadRequest(format!(
                    "unknown field `{other}` (expected decisions, event_id, from_ms, to_ms)"
                )));
            }
        }
    }
    super::check_time_range(filter.from_ms, filter.to_ms)?;
    Ok(filter)
}

/// (errors, skips) from the `decisions` array.
fn decisions(items: &[Value]) -> Result<(bool, bool), ApiError> {
    if items.is_empty() {
        return Err(ApiError::BadRequest(
            "`decisions` must name at least one of \"error\" and \"skip\"".into(),
        ));
    }
    let (mut errors, mut skips) = (false, false);
    for (i, item) in items.iter().enumerate() {
        match item.as_str() {
            Some("error") => errors = true,
            Some("skip") => skips = true,
            Some("fire") => {
                return Err(ApiError::BadRequest(format!(
                    "decisions[{i}]: \"fire\" decisions cannot be replayed: their requests were \
                     sent; retry their deliveries instead (POST /v1/deliveries/retry)"
                )));
            }
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "decisions[{i}]: expected \"error\" or \"skip\", got {item}"
                )));
            }
        }
    }
    Ok((errors, skips))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> String {
        match parse("p", body.as_bytes()) {
            Err(ApiError::BadRequest(m)) => m,
            other => panic!("expected a bad request for {body}, got {other:?}"),
        }
    }

    #[test]
    fn the_body_defaults_to_errors_and_names_what_is_wrong() {
        let f = parse("p", b"").unwrap();
        assert_eq!((f.plugin.as_str(), f.errors, f.skips), ("p", true, false));
        let f = parse(
            "p",
            br#"{"decisions":["skip","error"],"event_id":"e1","from_ms":1700000000005,"to_ms":1700000000009}"#,
        )
        .unwrap();
        assert_eq!((f.errors, f.skips), (true, true));
        assert_eq!(
            (f.event_id.as_deref(), f.from_ms, f.to_ms),
            (Some("e1"), Some(1_700_000_000_005), Some(1_700_000_000_009))
        );
        assert!(err(r#"{"to_ms":1700000000}"#).contains("not seconds"));
        assert!(err(r#"{"decisions":["error","fire"]}"#).starts_with("decisions[1]: \"fire\""));
        assert!(err(r#"{"decisions":["nope"]}"#).starts_with("decisions[0]: expected"));
        assert!(err(r#"{"decisions":[]}"#).contains("at least one"));
        assert!(err(r#"{"decisions":"error"}"#).contains("must be an array"));
        assert!(err(r#"{"from_ms":-1}"#).starts_with("`from_ms`"));
        assert!(err(r#"{"event_id":7}"#).starts_with("`event_id`"));
        assert!(err(r#"{"plugin":"x"}"#).starts_with("unknown field `plugin`"));
        assert!(err("[1]").contains("JSON object"));
        assert!(err("{").starts_with("invalid JSON body"));
    }
}
