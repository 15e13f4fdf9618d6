//! Request bodies → events: one event or an array of them, in the native
//! format or CloudEvents, chosen by content type. Errors in a batch name
//! the array index, and nothing of a batch is accepted if any event is bad.

use serde_json::Value;

use super::IngestError;
use super::cloudevents::{CloudEvent, parse_binary, parse_structured};
use super::event::parse_event_value;
use crate::model::Event;

/// How the body is encoded, from the `content-type` header and `ce-*`
/// headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json` (or none): native events, one or an array.
    Native,
    /// `application/cloudevents+json`: one structured CloudEvent.
    CloudEvent,
    /// `application/cloudevents-batch+json`: an array of CloudEvents.
    CloudEventBatch,
    /// `ce-specversion` header present: binary-mode CloudEvent.
    CloudEventBinary,
}

/// Why a body could not be read as events (the HTTP edge maps these).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BodyError {
    /// Unsupported content type (→ 415).
    #[error(
        "unsupported content type {0:?}: use application/json, application/cloudevents+json or application/cloudevents-batch+json"
    )]
    UnsupportedMediaType(String),
    /// Too many events in one batch (→ 413).
    #[error("a batch may hold at most {max} events; this one has {got}")]
    TooManyEvents {
        /// The limit.
        max: usize,
        /// What was sent.
        got: usize,
    },
    /// An invalid event or body (→ 400).
    #[error("{0}")]
    Invalid(String),
}

/// Decide the body format from headers (lower-case names). As the
/// CloudEvents HTTP binding says, a `cloudevents` content type means
/// structured mode; otherwise a `ce-specversion` header means binary mode,
/// whose body is the event's `data` (JSON).
pub fn body_format(
    content_type: Option<&str>,
    has_ce_specversion: bool,
) -> Result<BodyFormat, BodyError> {
    let essence = content_type
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    match essence.as_str() {
        "application/cloudevents+json" => Ok(BodyFormat::CloudEvent),
        "application/cloudevents-batch+json" => Ok(BodyFormat::CloudEventBatch),
        // curl's `-d` sends application/x-www-form-urlencoded unless told
        // otherwise; the body is still JSON, so accept it as such.
        "application/json" | "application/x-www-form-urlencoded" | "" => {
            Ok(if has_ce_specversion {
                BodyFormat::CloudEventBinary
            } else {
                BodyFormat::Native
            })
        }
        json if has_ce_specversion && json.ends_with("+json") => Ok(BodyFormat::CloudEventBinary),
        _ => Err(BodyError::UnsupportedMediaType(
            content_type.unwrap_or_default().to_owned(),
        )),
    }
}

fn json(body: &[u8]) -> Result<Value, BodyError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyError::Invalid(
            "the request body is empty; send a JSON event or an array of events".into(),
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|e| BodyError::Invalid(format!("body is not valid UTF-8: {e}")))?;
    super::strict_json::from_str(text).map_err(|e| {
        BodyError::Invalid(
            IngestError::Json {
                line: e.line(),
                column: e.column(),
                message: e.to_string(),
            }
            .to_string(),
        )
    })
}

/// One event of a request body, and where it comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// The event.
    pub event: Event,
    /// A CloudEvent's `source`; `None` for the native format.
    pub source: Option<String>,
}

impl From<Event> for Incoming {
    fn from(event: Event) -> Self {
        Self {
            event,
            source: None,
        }
    }
}

impl From<CloudEvent> for Incoming {
    fn from(ce: CloudEvent) -> Self {
        Self {
            event: ce.event,
            source: Some(ce.source),
        }
    }
}

fn native(value: Value) -> Result<Incoming, IngestError> {
    parse_event_value(value).map(Incoming::from)
}

fn cloud(value: Value) -> Result<Incoming, IngestError> {
    parse_structured(value).map(Incoming::from)
}

fn at_index(i: usize, e: IngestError) -> BodyError {
    BodyError::Invalid(format!("events[{i}]: {e}"))
}

fn each(
    values: Vec<Value>,
    max: usize,
    parse: fn(Value) -> Result<Incoming, IngestError>,
) -> Result<Vec<Incoming>, BodyError> {
    if values.len() > max {
        return Err(BodyError::TooManyEvents {
            max,
            got: values.len(),
        });
    }
    if values.is_empty() {
        return Err(BodyError::Invalid("the batch is empty".into()));
    }
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| parse(v).map_err(|e| at_index(i, e)))
        .collect()
}

/// Parse a request body into events.
pub fn parse_body(
    format: BodyFormat,
    headers: &[(String, String)],
    content_type: Option<&str>,
    body: &[u8],
    max_events: usize,
) -> Result<Vec<Incoming>, BodyError> {
    let one = |parsed: Result<Incoming, IngestError>| {
        parsed
            .map(|e| vec![e])
            .map_err(|e| BodyError::Invalid(e.to_string()))
    };
    match format {
        BodyFormat::CloudEventBinary => {
            one(parse_binary(headers, content_type, body).map(Incoming::from))
        }
        BodyFormat::CloudEvent => one(cloud(json(body)?)),
        BodyFormat::CloudEventBatch => match json(body)? {
            Value::Array(values) => each(values, max_events, cloud),
            _ => Err(BodyError::Invalid(
                "a CloudEvents batch must be a JSON array".into(),
            )),
        },
        BodyFormat::Native => match json(body)? {
            Value::Array(values) => each(values, max_events, native),
            single => one(native(single)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_content_type() {
        assert_eq!(body_format(None, false), Ok(BodyFormat::Native));
        assert_eq!(
            body_format(Some("application/json; charset=utf-8"), false),
            Ok(BodyFormat::Native)
        );
        assert_eq!(
            body_format(Some("application/cloudevents+json"), false),
            Ok(BodyFormat::CloudEvent)
        );
        assert_eq!(
            body_format(Some("Application/CloudEvents-Batch+JSON"), false),
            Ok(BodyFormat::CloudEventBatch)
        );
        assert_eq!(
            body_format(Some("application/json"), true),
            Ok(BodyFormat::CloudEventBinary)
        );
        assert!(matches!(
            body_format(Some("text/plain"), false),
            Err(BodyError::UnsupportedMediaType(_))
        ));
        // Binary mode: the body is JSON data, whatever curl calls it; a
        // CloudEvents content type means structured mode, headers or not.
        assert_eq!(
            body_format(Some("application/x-www-form-urlencoded"), true),
            Ok(BodyFormat::CloudEventBinary)
        );
        assert_eq!(
            body_format(Some("application/vnd.shop+json"), true),
            Ok(BodyFormat::CloudEventBinary)
        );
        assert_eq!(
            body_format(Some("application/cloudevents+json"), true),
            Ok(BodyFormat::CloudEvent)
        );
        assert!(matches!(
            body_format(Some("text/plain"), true),
            Err(BodyError::UnsupportedMediaType(_))
        ));
        assert!(matches!(
            body_format(Some("application/vnd.shop+json"), false),
            Err(BodyError::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn batch_errors_name_the_index_and_reject_the_whole_batch() {
        let body = br#"[{"name":"a"},{"name":"b"},{"user_id":"x"}]"#;
        let err = parse_body(BodyFormat::Native, &[], None, body, 1000).unwrap_err();
        assert_eq!(
            err,
            BodyError::Invalid("events[2]: field `name` is required".into())
        );
        let ok = parse_body(
            BodyFormat::Native,
            &[],
            None,
            br#"[{"name":"a"},{"name":"b"}]"#,
            1000,
        );
        assert_eq!(ok.unwrap().len(), 2);
    }

    #[test]
    fn batch_size_is_capped() {
        let body = format!("[{}]", [r#"{"name":"a"}"#; 5].join(","));
        assert_eq!(
            parse_body(BodyFormat::Native, &[], None, body.as_bytes(), 4),
            Err(BodyError::TooManyEvents { max: 4, got: 5 })
        );
    }

    #[test]
    fn malformed_json_and_utf8_are_invalid() {
        assert!(
            matches!(parse_body(BodyFormat::Native, &[], None, b"{\"name\":", 10), Err(BodyError::Invalid(m)) if m.contains("invalid JSON"))
        );
        assert!(
            matches!(parse_body(BodyFormat::Native, &[], None, b"{\"name\":\"\xff\"}", 10), Err(BodyError::Invalid(m)) if m.contains("UTF-8"))
        );
        assert!(
            matches!(parse_body(BodyFormat::Native, &[], None, b"[]", 10), Err(BodyError::Invalid(m)) if m.contains("empty"))
        );
    }

    #[test]
    fn a_repeated_key_is_refused_not_resolved() {
        let err = parse_body(
            BodyFormat::Native,
            &[],
            None,
            br#"{"name":"a","name":"b"}"#,
            10,
        );
        assert!(
            matches!(&err, Err(BodyError::Invalid(m)) if m.contains("duplicate key \"name\"")),
            "{err:?}"
        );
    }

    #[test]
    fn an_empty_body_is_named_as_such() {
        for format in [
            BodyFormat::Native,
            BodyFormat::CloudEvent,
            BodyFormat::CloudEventBatch,
        ] {
            for body in [&b""[..], b" \r\n\t"] {
                assert!(
                    matches!(parse_body(format, &[], None, body, 10), Err(BodyError::Invalid(m)) if m.starts_with("the request body is empty")),
                    "{format:?} {body:?}"
                );
            }
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            parse_body(BodyFormat::Native, &[], None, deep.as_bytes(), 10),
            Err(BodyError::Invalid(_))
        ));
    }
}
