//! Ingest parsing: arbitrary bytes, arbitrary JSON values and arbitrary
//! `ce-*` headers never panic, and every event that comes out holds the
//! invariants the rest of the host relies on.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use wasmhook::ingest::{
    BodyError, BodyFormat, Incoming, MAX_FIELD_BYTES, MAX_TIMESTAMP_MS, parse_binary, parse_body,
    parse_event, parse_event_value, parse_structured,
};
use wasmhook::model::Event;

use super::check;

/// Any JSON value, nested a few levels, biased towards the field names
/// and shapes the parsers look at.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("1.0"),
            Just("2026-11-29T12:00:00Z"),
            Just(""),
            Just("application/json")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "id",
            "name",
            "user_id",
            "time",
            "timestamp_ms",
            "properties",
            "specversion",
            "source",
            "type",
            "subject",
            "data",
            "data_base64",
            "datacontenttype",
        ])
        .prop_map(str::to_owned),
        "[a-z_]{0,6}",
    ]
}

fn format() -> impl Strategy<Value = BodyFormat> {
    prop::sample::select(vec![
        BodyFormat::Native,
        BodyFormat::CloudEvent,
        BodyFormat::CloudEventBatch,
        BodyFormat::CloudEventBinary,
    ])
}

/// Invariants of every parsed event.
fn event_holds(e: &Event) -> Result<(), TestCaseError> {
    for (field, value) in [
        ("id", Some(&e.id)),
        ("name", Some(&e.name)),
        ("user_id", e.user_id.as_ref()),
    ] {
        if let Some(v) = value {
            prop_assert!(!v.is_empty(), "{field} is empty in {e:?}");
            prop_assert!(v.len() <= MAX_FIELD_BYTES, "{field} too long in {e:?}");
            prop_assert!(
                !v.chars().any(char::is_control),
                "{field} holds a control character in {e:?}"
            );
        }
    }
    prop_assert!(
        e.timestamp_ms <= MAX_TIMESTAMP_MS,
        "time past year 9999 in {e:?}"
    );
    Ok(())
}

/// Invariants of every `parse_body` answer.
fn body_result_holds(
    result: &Result<Vec<Incoming>, BodyError>,
    max: usize,
) -> Result<(), TestCaseError> {
    match result {
        Ok(events) => {
            prop_assert!(
                !events.is_empty() && events.len() <= max,
                "{} events",
                events.len()
            );
            events.iter().try_for_each(|e| event_holds(&e.event))
        }
        Err(BodyError::TooManyEvents { max: m, got }) => {
            prop_assert!(*m == max && *got > max);
            Ok(())
        }
        Err(e) => {
            prop_assert!(!e.to_string().is_empty());
            Ok(())
        }
    }
}

fn ce_headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        prop::sample::select(vec![
            "ce-specversion",
            "ce-id",
            "ce-source",
            "ce-type",
            "ce-subject",
            "ce-time",
            "ce-data",
            "ce-datacontenttype",
            "ce-data_base64",
        ])
        .prop_map(str::to_owned),
        "ce-[a-z]{0,6}",
    ];
    let value = prop_oneof![
        prop::sample::select(vec![
            "1.0",
            "0.3",
            "",
            "x",
            "2026-11-29T12:00:00Z",
            "application/json"
        ])
        .prop_map(str::to_owned),
        ".{0,300}",
    ];
    prop::collection::vec((name, value), 0..8)
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        prop::sample::select(vec![
            "application/json",
            "application/cloudevents+json",
            "text/plain",
            "application/json; charset=utf-8",
            "",
            "application/x+json",
        ])
        .prop_map(str::to_owned),
        ".{0,20}",
    ])
}

#[test]
fn parse_body_of_arbitrary_bytes_never_panics() {
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        json_value().prop_map(|v| v.to_string().into_bytes()),
    ];
    check(
        "ingest",
        (format(), bytes, 1usize..5),
        |(format, body, max)| {
            let result = parse_body(format, &[], None, &body, max);
            body_result_holds(&result, max)
        },
    );
}

#[test]
fn parse_body_of_arbitrary_json_holds_the_invariants() {
    check(
        "ingest",
        (format(), json_value(), ce_headers(), 1usize..5),
        |(format, v, headers, max)| {
            let body = v.to_string();
            let result = parse_body(
                format,
                &headers,
                Some("application/json"),
                body.as_bytes(),
                max,
            );
            body_result_holds(&result, max)
        },
    );
}

#[test]
fn parse_event_agrees_with_parse_event_value() {
    check("ingest", json_value(), |v| {
        let from_text = parse_event(&v.to_string());
        let from_value = parse_event_value(v.clone());
        match (from_text, from_value) {
            (Ok(a), Ok(b)) => {
                event_holds(&a)?;
                // ids and times may be generated; the rest must agree
                prop_assert_eq!(
                    (&a.name, &a.user_id, &a.properties),
                    (&b.name, &b.user_id, &b.properties)
                );
                if v.get("id").is_some_and(|id| !id.is_null()) {
                    prop_assert_eq!(a.id, b.id);
                }
            }
            (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
            (a, b) => prop_assert!(false, "text {a:?} vs value {b:?}"),
        }
        Ok(())
    });
}

/// Any field value a valid event may have.
/// A valid identifier: any text but control characters, within the limit.
fn field() -> impl Strategy<Value = String> {
    "[^\\p{Cc}]{1,40}".prop_filter("within the limit", |s| s.len() <= MAX_FIELD_BYTES)
}

#[test]
fn a_valid_native_event_round_trips() {
    let props = prop::collection::vec((".{0,8}", json_value()), 0..4)
        .prop_map(|kv| kv.into_iter().collect::<Map<String, Value>>());
    let strategy = (
        field(),
        field(),
        prop::option::of(field()),
        0..=MAX_TIMESTAMP_MS,
        props,
    );
    check("ingest", strategy, |(id, name, user_id, ts, properties)| {
        let text = json!({"id": id, "name": name, "user_id": user_id, "timestamp_ms": ts, "properties": properties}).to_string();
        let e = parse_event(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(
            e,
            Event {
                id,
                name,
                user_id,
                timestamp_ms: ts,
                properties
            }
        );
        Ok(())
    });
}

#[test]
fn parse_structured_accepts_exactly_the_events_with_the_required_attributes() {
    let attr = |name: &'static str| {
        prop::option::of(prop_oneof![
            3 => Just(Value::String(if name == "specversion" { "1.0".into() } else { format!("{name}-v") })),
            1 => json_value(),
        ])
    };
    let strategy = (
        attr("specversion"),
        attr("id"),
        attr("source"),
        attr("type"),
        prop::option::of(json_value()),
        prop::collection::vec((key(), json_value()), 0..3),
    );
    check(
        "cloudevents",
        strategy,
        |(spec, id, source, ty, data, extra)| {
            let mut obj: Map<String, Value> = extra.into_iter().collect();
            for (k, v) in [
                ("specversion", spec),
                ("id", id),
                ("source", source),
                ("type", ty),
                ("data", data),
            ] {
                match v {
                    Some(v) => obj.insert(k.to_owned(), v),
                    None => obj.remove(k),
                };
            }
            let result = parse_structured(Value::Object(obj.clone())).map(|ce| {
                assert_eq!(
                    Some(ce.source.as_str()),
                    obj.get("source").and_then(Value::as_str)
                );
                ce.event
            });
            let text = |k: &str| obj.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
            if text("specversion") != Some("1.0")
                || text("id").is_none()
                || text("source").is_none()
                || text("type").is_none()
            {
                prop_assert!(
                    result.is_err(),
                    "accepted without a required attribute: {obj:?}"
                );
            }
            match result {
                Ok(e) => {
                    event_holds(&e)?;
                    prop_assert_eq!(Some(e.id.as_str()), text("id"));
                    prop_assert_eq!(Some(e.name.as_str()), text("type"));
                    match obj.get("data") {
                        None | Some(Value::Null) => prop_assert!(e.properties.is_empty()),
                        Some(Value::Object(m)) => prop_assert_eq!(&e.properties, m),
                        Some(other) => prop_assert!(false, "non-object data {other} accepted"),
                    }
                }
                Err(e) => {
                    // the first attribute that is missing or wrong is named
                    for attr in ["specversion", "id", "source", "type"] {
                        let ok = match attr {
                            "specversion" => text(attr) == Some("1.0"),
                            _ => text(attr).is_some(),
                        };
                        if !ok {
                            prop_assert!(e.to_string().contains(attr), "{e} for {attr} in {obj:?}");
                            break;
                        }
                    }
                }
            }
            Ok(())
        },
    );
}

#[test]
fn parse_binary_with_arbitrary_headers_never_panics() {
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        json_value().prop_map(|v| v.to_string().into_bytes()),
    ];
    check(
        "cloudevents",
        (ce_headers(), content_type(), body),
        |(headers, ct, body)| {
            match parse_binary(&headers, ct.as_deref(), &body).map(|ce| ce.event) {
                Ok(e) => {
                    event_holds(&e)?;
                    // Header values are percent-decoded (the HTTP binding).
                    let last = |name: &str| {
                        headers.iter().rev().find(|(k, _)| k == name).map(|(_, v)| {
                            percent_encoding::percent_decode_str(v)
                                .decode_utf8()
                                .unwrap()
                                .into_owned()
                        })
                    };
                    prop_assert_eq!(Some(e.id), last("ce-id"));
                    prop_assert_eq!(Some(e.name), last("ce-type"));
                    prop_assert_eq!(last("ce-specversion"), Some("1.0".to_owned()));
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
            Ok(())
        },
    );
}

/// Found while writing the `event_holds` invariant (user ids are never
/// empty): an empty CloudEvents `subject` became an empty user id, which
/// the native format refuses.
#[test]
fn an_empty_cloudevents_subject_is_refused() {
    let ce = json!({"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "subject": ""});
    let err = parse_structured(ce).unwrap_err();
    assert!(
        err.to_string().contains("`subject` must not be empty"),
        "{err}"
    );
}
