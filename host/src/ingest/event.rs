//! The native JSON event format:
//! `{"id"?: str, "name": str, "user_id"?: str, "time"?: RFC 3339 | "timestamp_ms"?: int, "properties"?: object}`.
//!
//! A missing `id` is generated (UUID v7, time-ordered); a missing time is
//! now. Unknown fields are refused so that typos do not silently drop data.

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::model::Event;

/// Longest accepted `id`, `name` or `user_id`, in bytes.
pub const MAX_FIELD_BYTES: usize = 256;

/// Latest accepted event time: 9999-12-31T23:59:59.999Z, the last instant
/// RFC 3339 can write. Larger `timestamp_ms` values are refused rather
/// than stored as something else.
pub const MAX_TIMESTAMP_MS: u64 = 253_402_300_799_999;

/// Identifiers (`id`, `name`, user id) hold no control characters: they
/// end up in log lines, where a line break would forge one.
pub(super) fn check_text(label: &str, s: &str) -> Result<(), IngestError> {
    match s.char_indices().find(|(_, c)| c.is_control()) {
        None => Ok(()),
        Some((at, c)) => Err(invalid(format!(
            "{label} contains a control character (U+{:04X} at byte {at})",
            u32::from(c)
        ))),
    }
}

/// Why an event was refused. Messages name the offending field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IngestError {
    /// The text is not JSON.
    #[error("invalid JSON at line {line} column {column}: {message}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A field is missing, of the wrong type or out of range.
    #[error("{0}")]
    Invalid(String),
}

/// Parse one event from JSON text (an object repeating a key is refused).
pub fn parse_event(text: &str) -> Result<Event, IngestError> {
    let value: Value = super::strict_json::from_str(text).map_err(|e| IngestError::Json {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    parse_event_value(value)
}

fn invalid(msg: impl Into<String>) -> IngestError {
    IngestError::Invalid(msg.into())
}

fn bounded_string(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, IngestError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => {
            Err(invalid(format!("field `{field}` must not be empty")))
        }
        Some(Value::String(s)) if s.len() > MAX_FIELD_BYTES => Err(invalid(format!(
            "field `{field}` is {} bytes long; the limit is {MAX_FIELD_BYTES}",
            s.len()
        ))),
        Some(Value::String(s)) => {
            check_text(&format!("field `{field}`"), s)?;
            Ok(Some(s.clone()))
        }
        Some(other) => Err(invalid(format!(
            "field `{field}` must be a string, not {}",
            type_name(other)
        ))),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parse one event from an already-parsed JSON value.
pub fn parse_event_value(value: Value) -> Result<Event, IngestError> {
    let Value::Object(mut obj) = value else {
        return Err(invalid(format!(
            "an event must be a JSON object, not {}",
            type_name(&value)
        )));
    };
    if let Some(unknown) = obj.keys().find(|k| {
        !matches!(
            k.as_str(),
            "id" | "name" | "user_id" | "time" | "timestamp_ms" | "properties"
        )
    }) {
        return Err(invalid(format!(
            "unknown field `{unknown}` (expected id, name, user_id, time, timestamp_ms, properties)"
        )));
    }
    let name = bounded_string(&obj, "name")?.ok_or_else(|| invalid("field `name` is required"))?;
    let id = bounded_string(&obj, "id")?.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let user_id = bounded_string(&obj, "user_id")?;
    let timestamp_ms = match (obj.get("time"), obj.get("timestamp_ms")) {
        (Some(_), Some(_)) => {
            return Err(invalid("give either `time` or `timestamp_ms`, not both"));
        }
        (Some(Value::String(t)), None) => {
            let at = OffsetDateTime::parse(t, &Rfc3339).map_err(|e| {
                invalid(format!(
                    "field `time` is not an RFC 3339 timestamp ({t:?}): {e}"
                ))
            })?;
            let ms = at.unix_timestamp_nanos() / 1_000_000;
            u64::try_from(ms).map_err(|_| invalid("field `time` is before 1970"))?
        }
        (Some(other), None) => {
            return Err(invalid(format!(
                "field `time` must be an RFC 3339 string, not {}",
                type_name(other)
            )));
        }
        (None, Some(v)) => v
            .as_u64()
            .filter(|ms| *ms <= MAX_TIMESTAMP_MS)
            .ok_or_else(|| {
                invalid(format!(
                    "field `timestamp_ms` must be an integer from 0 (1970) to {MAX_TIMESTAMP_MS} (year 9999), in milliseconds"
                ))
            })?,
        (None, None) => now_ms(),
    };
    let properties = match obj.remove("properties") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(invalid(format!(
                "field `properties` must be an object, not {}",
                type_name(&other)
            )));
        }
    };
    Ok(Event {
        id,
        name,
        user_id,
        timestamp_ms,
        properties,
    })
}

/// Now, in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    u64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_event_parses() {
        let e = parse_event(
            r#"{"id":"e-1","name":"email.unsubscribed","user_id":"u-1","time":"2026-11-29T12:00:00Z","properties":{"email":"a@b.co"}}"#,
        )
        .unwrap();
        assert_eq!(e.id, "e-1");
        assert_eq!(e.name, "email.unsubscribed");
        assert_eq!(e.user_id.as_deref(), Some("u-1"));
        assert_eq!(e.timestamp_ms, 1_795_953_600_000);
        assert_eq!(e.properties["email"], "a@b.co");
    }

    #[test]
    fn defaults_fill_id_time_and_properties() {
        let before = now_ms();
        let e = parse_event(r#"{"name":"x"}"#).unwrap();
        assert_eq!(e.id.len(), 36);
        assert!(e.timestamp_ms >= before);
        assert!(e.properties.is_empty());
        let other = parse_event(r#"{"name":"x"}"#).unwrap();
        assert_ne!(e.id, other.id);
    }

    #[test]
    fn timestamp_ms_is_accepted() {
        let e = parse_event(r#"{"name":"x","timestamp_ms":42}"#).unwrap();
        assert_eq!(e.timestamp_ms, 42);
    }

    #[test]
    fn the_last_millisecond_of_year_9999_is_accepted() {
        let e = parse_event(r#"{"name":"x","timestamp_ms":253402300799999}"#).unwrap();
        assert_eq!(e.timestamp_ms, MAX_TIMESTAMP_MS);
        let e = parse_event(r#"{"name":"x","time":"9999-12-31T23:59:59.999Z"}"#).unwrap();
        assert_eq!(e.timestamp_ms, MAX_TIMESTAMP_MS);
    }

    #[test]
    fn errors_name_the_field() {
        for (input, needle) in [
            (r#"{"user_id":"u"}"#, "`name` is required"),
            (r#"{"name":5}"#, "`name` must be a string, not a number"),
            (r#"{"name":""}"#, "`name` must not be empty"),
            (
                r#"{"name":"x","properties":[1]}"#,
                "`properties` must be an object, not an array",
            ),
            (
                r#"{"name":"x","time":"yesterday"}"#,
                "`time` is not an RFC 3339",
            ),
            (
                r#"{"name":"x","timestamp_ms":-1}"#,
                "`timestamp_ms` must be an integer from 0",
            ),
            (
                r#"{"name":"x","timestamp_ms":18446744073709551615}"#,
                "(year 9999)",
            ),
            (
                r#"{"name":"x","timestamp_ms":253402300800000}"#,
                "(year 9999)",
            ),
            (
                r#"{"name":"x","id":"e1\n2026-01-01 ERROR forged"}"#,
                "field `id` contains a control character (U+000A at byte 2)",
            ),
            (
                r#"{"name":"x\u001b[2J"}"#,
                "field `name` contains a control character (U+001B at byte 1)",
            ),
            (
                r#"{"name":"x","user_id":"u\r"}"#,
                "field `user_id` contains a control character (U+000D",
            ),
            (
                r#"{"name":"x","time":"2026-01-01T00:00:00Z","timestamp_ms":1}"#,
                "not both",
            ),
            (
                r#"{"name":"x","propertes":{}}"#,
                "unknown field `propertes`",
            ),
            (r#"[1]"#, "must be a JSON object, not an array"),
        ] {
            let err = parse_event(input).unwrap_err().to_string();
            assert!(err.contains(needle), "{input}: {err}");
        }
        let long = format!(r#"{{"name":"{}"}}"#, "n".repeat(300));
        assert!(
            parse_event(&long)
                .unwrap_err()
                .to_string()
                .contains("limit is 256")
        );
    }

    #[test]
    fn json_errors_give_line_and_column() {
        match parse_event("{\n  \"name\": \"x\",\n}") {
            Err(IngestError::Json { line, .. }) => assert_eq!(line, 3),
            other => panic!("{other:?}"),
        }
    }
}
