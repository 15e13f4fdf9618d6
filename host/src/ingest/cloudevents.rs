//! CloudEvents 1.0 → [`Event`]: structured mode (one JSON object), batch
//! mode (a JSON array of them) and binary mode (`ce-*` headers, the body is
//! `data`). Mapping: `type` → name, `subject` → user id, `time`, `id`,
//! `data` → properties (a JSON object; absent or null → `{}`).

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::IngestError;
use super::event::{MAX_FIELD_BYTES, check_text, now_ms};
use crate::model::Event;

fn invalid(msg: impl Into<String>) -> IngestError {
    IngestError::Invalid(msg.into())
}

fn required<'a>(obj: &'a Map<String, Value>, attr: &str) -> Result<&'a str, IngestError> {
    match obj.get(attr) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err(invalid(format!(
            "CloudEvents attribute `{attr}` must not be empty"
        ))),
        Some(_) => Err(invalid(format!(
            "CloudEvents attribute `{attr}` must be a string"
        ))),
        None => Err(invalid(format!(
            "CloudEvents attribute `{attr}` is required"
        ))),
    }
}

fn bounded(attr: &str, s: &str) -> Result<String, IngestError> {
    if s.len() > MAX_FIELD_BYTES {
        return Err(invalid(format!(
            "CloudEvents attribute `{attr}` is {} bytes long; the limit is {MAX_FIELD_BYTES}",
            s.len()
        )));
    }
    check_text(&format!("CloudEvents attribute `{attr}`"), s)?;
    Ok(s.to_owned())
}

fn parse_time(t: &str) -> Result<u64, IngestError> {
    let at = OffsetDateTime::parse(t, &Rfc3339).map_err(|e| {
        invalid(format!(
            "CloudEvents attribute `time` is not RFC 3339 ({t:?}): {e}"
        ))
    })?;
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| invalid("CloudEvents attribute `time` is before 1970"))
}

fn data_object(data: Option<Value>) -> Result<Map<String, Value>, IngestError> {
    match data {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(invalid(
            "CloudEvents `data` must be a JSON object (it becomes the event's properties)",
        )),
    }
}

/// Longest accepted `source` (a URI reference), in bytes.
pub const MAX_SOURCE_BYTES: usize = 2048;

/// A CloudEvent: the event, and the `source` that, with its `id`, makes
/// it unique.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudEvent {
    /// The event as plugins see it.
    pub event: Event,
    /// The `source` attribute.
    pub source: String,
}

/// One structured-mode CloudEvent.
pub fn parse_structured(value: Value) -> Result<CloudEvent, IngestError> {
    let Value::Object(mut obj) = value else {
        return Err(invalid("a CloudEvent must be a JSON object"));
    };
    let spec = required(&obj, "specversion")?;
    if spec != "1.0" {
        return Err(invalid(format!(
            "unsupported CloudEvents specversion {spec:?}; expected \"1.0\""
        )));
    }
    let id = bounded("id", required(&obj, "id")?)?;
    let source = required(&obj, "source")?;
    if source.len() > MAX_SOURCE_BYTES {
        return Err(invalid(format!(
            "CloudEvents attribute `source` is {} bytes long; the limit is {MAX_SOURCE_BYTES}",
            source.len()
        )));
    }
    check_text("CloudEvents attribute `source`", source)?;
    let source = source.to_owned();
    let name = bounded("type", required(&obj, "type")?)?;
    let user_id = match obj.get("subject") {
        None | Some(Value::Null) => None,
        // The spec requires a non-empty subject; an empty one would become
        // an empty user id, which the native format refuses.
        Some(Value::String(s)) if s.is_empty() => {
            return Err(invalid("CloudEvents attribute `subject` must not be empty"));
        }
        Some(Value::String(s)) => Some(bounded("subject", s)?),
        Some(_) => return Err(invalid("CloudEvents attribute `subject` must be a string")),
    };
    let timestamp_ms = match obj.get("time") {
        None | Some(Value::Null) => now_ms(),
        Some(Value::String(t)) => parse_time(t)?,
        Some(_) => return Err(invalid("CloudEvents attribute `time` must be a string")),
    };
    if obj.contains_key("data_base64") {
        return Err(invalid(
            "CloudEvents `data_base64` is not supported: send `data` as a JSON object",
        ));
    }
    if let Some(ct) = obj.get("datacontenttype").and_then(Value::as_str)
        && !is_json(ct)
    {
        return Err(invalid(format!(
            "CloudEvents datacontenttype {ct:?} is not supported: use application/json"
        )));
    }
    let properties = data_object(obj.remove("data"))?;
    Ok(CloudEvent {
        event: Event {
            id,
            name,
            user_id,
            timestamp_ms,
            properties,
        },
        source,
    })
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

/// A `ce-*` header's value, percent-decoded as the HTTP binding requires
/// (senders encode spaces, `"`, `%` and everything outside printable
/// ASCII).
fn header_value(attr: &str, value: &str) -> Result<String, IngestError> {
    percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .map(|v| v.into_owned())
        .map_err(|_| {
            invalid(format!(
                "header `ce-{attr}` is not UTF-8 once percent-decoded"
            ))
        })
}

/// Binary mode: attributes from `ce-*` headers (given here as lower-case
/// name/value pairs), `data` from the body (JSON object, may be empty).
pub fn parse_binary(
    headers: &[(String, String)],
    content_type: Option<&str>,
    body: &[u8],
) -> Result<CloudEvent, IngestError> {
    let mut obj = Map::new();
    for (name, value) in headers {
        if let Some(attr) = name.strip_prefix("ce-") {
            obj.insert(attr.to_owned(), Value::String(header_value(attr, value)?));
        }
    }
    // curl's `-d` sends a form content type with a JSON body; accepted as
    // JSON, as in the native format.
    if let Some(ct) = content_type
        && !is_json(ct)
        && !ct.trim().starts_with("application/x-www-form-urlencoded")
    {
        return Err(invalid(format!(
            "binary-mode CloudEvents body must be application/json, not {ct:?}"
        )));
    }
    if !body.iter().all(u8::is_ascii_whitespace) {
        let data: Value = super::strict_json::from_slice(body).map_err(|e| IngestError::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        obj.insert("data".into(), data);
    }
    parse_structured(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn structured() -> Value {
        json!({
            "specversion": "1.0", "id": "ce-1", "source": "/shop", "type": "cart.abandoned",
            "subject": "u-9", "time": "2026-11-29T12:00:00Z", "data": {"cart": 3}
        })
    }

    #[test]
    fn structured_maps_attributes() {
        let ce = parse_structured(structured()).unwrap();
        assert_eq!(ce.source, "/shop");
        let e = ce.event;
        assert_eq!(
            (e.id.as_str(), e.name.as_str(), e.user_id.as_deref()),
            ("ce-1", "cart.abandoned", Some("u-9"))
        );
        assert_eq!(e.timestamp_ms, 1_795_953_600_000);
        assert_eq!(e.properties["cart"], 3);
    }

    #[test]
    fn structured_errors_name_the_attribute() {
        for (remove, needle) in [
            ("specversion", "`specversion` is required"),
            ("id", "`id` is required"),
            ("source", "`source`"),
            ("type", "`type` is required"),
        ] {
            let mut v = structured();
            v.as_object_mut().unwrap().remove(remove);
            let err = parse_structured(v).unwrap_err().to_string();
            assert!(err.contains(needle), "{remove}: {err}");
        }
        let mut v = structured();
        v["specversion"] = json!("0.3");
        assert!(
            parse_structured(v)
                .unwrap_err()
                .to_string()
                .contains("specversion")
        );
        let mut v = structured();
        v["data"] = json!([1, 2]);
        assert!(
            parse_structured(v)
                .unwrap_err()
                .to_string()
                .contains("`data` must be a JSON object")
        );
        let mut v = structured();
        v["time"] = json!("noon");
        assert!(
            parse_structured(v)
                .unwrap_err()
                .to_string()
                .contains("`time`")
        );
    }

    #[test]
    fn an_empty_subject_is_refused() {
        let mut v = structured();
        v["subject"] = json!("");
        let err = parse_structured(v).unwrap_err().to_string();
        assert!(err.contains("`subject` must not be empty"), "{err}");
    }

    #[test]
    fn binary_mode_reads_ce_headers() {
        let headers = vec![
            ("ce-specversion".to_owned(), "1.0".to_owned()),
            ("ce-id".to_owned(), "b-1".to_owned()),
            ("ce-source".to_owned(), "/game".to_owned()),
            ("ce-type".to_owned(), "level.reached".to_owned()),
            ("ce-subject".to_owned(), "p-1".to_owned()),
        ];
        let e = parse_binary(&headers, Some("application/json"), br#"{"level": 10}"#)
            .unwrap()
            .event;
        assert_eq!((e.id.as_str(), e.name.as_str()), ("b-1", "level.reached"));
        assert_eq!(e.properties["level"], 10);
        let err = parse_binary(&headers[1..], Some("application/json"), b"{}").unwrap_err();
        assert!(err.to_string().contains("specversion"));
        let empty = parse_binary(&headers, None, b"").unwrap().event;
        assert!(empty.properties.is_empty());
    }

    #[test]
    fn binary_mode_percent_decodes_header_values() {
        let headers = vec![
            ("ce-specversion".to_owned(), "1.0".to_owned()),
            ("ce-id".to_owned(), "b%2D1".to_owned()),
            ("ce-source".to_owned(), "/game".to_owned()),
            ("ce-type".to_owned(), "order%20paid".to_owned()),
            ("ce-subject".to_owned(), "J%C3%BCrgen".to_owned()),
        ];
        let e = parse_binary(&headers, Some("application/json"), b"")
            .unwrap()
            .event;
        assert_eq!(e.id, "b-1");
        assert_eq!(e.name, "order paid");
        assert_eq!(e.user_id.as_deref(), Some("Jürgen"));
        let mut bad = headers.clone();
        bad[4].1 = "%FF".to_owned();
        let err = parse_binary(&bad, None, b"").unwrap_err().to_string();
        assert!(err.contains("`ce-subject` is not UTF-8"), "{err}");
        // A decoded line break is refused like any other control character.
        bad[4].1 = "u%0Aforged".to_owned();
        let err = parse_binary(&bad, None, b"").unwrap_err().to_string();
        assert!(
            err.contains("`subject` contains a control character"),
            "{err}"
        );
        // curl's default content type carries JSON.
        let e = parse_binary(
            &headers,
            Some("application/x-www-form-urlencoded"),
            br#"{"a":1}"#,
        )
        .unwrap();
        assert_eq!(e.event.properties["a"], 1);
        assert_eq!(e.source, "/game");
    }
}
