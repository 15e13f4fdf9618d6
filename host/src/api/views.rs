//! JSON views of domain values and store records, shared by the management
//! API and the CLI. Requests are shown in placeholder form: no secret value
//! ever reaches these functions.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::breaker::Health;
use crate::model::{Event, LogLine, OutboundRequest};
use crate::store::{Attempt, DeliveryRecord, InvocationRecord, Verdict};

/// An outbound request: `body` when UTF-8, else `body_base64`.
pub fn request(r: &OutboundRequest) -> Value {
    let mut obj = json!({
        "method": r.method.as_str(),
        "url": r.url,
        "headers": r.headers.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
    });
    match std::str::from_utf8(&r.body) {
        Ok(text) => obj["body"] = json!(text),
        Err(_) => {
            obj["body_base64"] = json!(base64::engine::general_purpose::STANDARD.encode(&r.body))
        }
    }
    obj
}

/// A captured plugin log line.
pub fn log_line(line: &LogLine) -> Value {
    json!({"level": line.level.as_str(), "source": line.source.as_str(), "message": line.message})
}

/// An event in the native ingest format.
pub fn event(e: &Event) -> Value {
    json!({
        "id": e.id,
        "name": e.name,
        "user_id": e.user_id,
        "timestamp_ms": e.timestamp_ms,
        "properties": Value::Object(e.properties.clone()),
    })
}

/// One plugin invocation (decision) of an event.
pub fn invocation(r: &InvocationRecord) -> Value {
    let mut v = json!({
        "plugin": r.plugin,
        "status": r.status.as_str(),
        "attempts": r.attempts,
        "completed_ms": r.completed_ms,
    });
    if let Some(outcome) = &r.outcome {
        v["decision"] = json!(outcome.verdict.as_str());
        v["duration_us"] = json!(outcome.duration_us);
        if let Some(fuel) = outcome.fuel {
            v["fuel"] = json!(fuel);
        }
        match &outcome.verdict {
            Verdict::Fire => {}
            Verdict::Skip { reason } => v["reason"] = json!(reason),
            Verdict::Error { kind, message } => {
                v["error_kind"] = json!(kind.as_str());
                v["error"] = json!(message);
            }
        }
    }
    v
}

/// One attempt of a delivery.
pub fn attempt(a: &Attempt) -> Value {
    json!({
        "started_ms": a.started_ms,
        "duration_ms": a.duration_ms,
        "status_code": a.status_code,
        "outcome": a.outcome.as_str(),
        "error": a.error,
        "response": a.response,
    })
}

/// A delivery with its attempts.
pub fn delivery(d: &DeliveryRecord) -> Value {
    json!({
        "id": d.id,
        "plugin": d.plugin,
        "event_id": d.event_id,
        "status": d.status.as_str(),
        "request": request(&d.request),
        "attempts": d.attempts.iter().map(attempt).collect::<Vec<_>>(),
        "next_attempt_ms": d.next_attempt_ms,
        // Set while an attempt is in flight (or was, until then, when the
        // host holding it stopped).
        "leased_until_ms": d.leased_until,
        "failure": d.failure,
        "created_ms": d.created_ms,
        "updated_ms": d.updated_ms,
    })
}

/// A breaker's state for one plugin or destination: `healthy`, `failing`
/// (with the count of consecutive failures), `paused` (with the time left
/// and the pause's length), or `probing`.
pub fn breaker_health(h: Health) -> Value {
    match h {
        Health::Healthy => json!({"state": "healthy"}),
        Health::Failing { failures } => {
            json!({"state": "failing", "consecutive_failures": failures})
        }
        Health::Paused {
            resume_in,
            cooldown,
        } => json!({
            "state": "paused",
            "resume_in_ms": u64::try_from(resume_in.as_millis()).unwrap_or(u64::MAX),
            "pause_ms": u64::try_from(cooldown.as_millis()).unwrap_or(u64::MAX),
        }),
        Health::ProbeDue | Health::Probing => json!({"state": "probing"}),
    }
}
