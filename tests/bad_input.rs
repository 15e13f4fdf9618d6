//! Bad input against a real `wasmhook serve`: a corpus of malformed,
//! mistyped, oversized and mislabelled ingest requests, each of which must
//! get a 4xx with a JSON `error` naming the problem (never a 5xx or a
//! crash), after which the host still accepts a valid event and answers
//! `/healthz`. `bad_input/slow_clients.rs` covers clients that send too
//! slowly or not at all. (`ingest_api.rs` has the basic error cases; these
//! extend them.)

#[path = "support/mod.rs"]
mod support;

#[path = "bad_input/raw.rs"]
mod raw;

#[path = "bad_input/slow_clients.rs"]
mod slow_clients;

use serde_json::{Value, json};
use support::host::{Host, INGEST_TOKEN, config_head};
use support::http::request;

/// The default body limit of `[server] max_body_bytes`.
const BODY_LIMIT: usize = 1024 * 1024;

/// One corpus entry: what is sent and what must come back.
struct Case {
    what: String,
    content_type: Option<&'static str>,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
    needle: &'static str,
}

fn case(
    what: impl Into<String>,
    body: impl Into<Vec<u8>>,
    status: u16,
    needle: &'static str,
) -> Case {
    Case {
        what: what.into(),
        content_type: Some("application/json"),
        headers: Vec::new(),
        body: body.into(),
        status,
        needle,
    }
}

impl Case {
    fn content_type(mut self, ct: Option<&'static str>) -> Self {
        self.content_type = ct;
        self
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
}

/// Native-format cases: JSON syntax, encoding, nesting, shapes and every
/// field with every wrong type.
fn native_cases() -> Vec<Case> {
    let mut cases = vec![
        case("empty body", "", 400, "the request body is empty"),
        case(
            "whitespace-only body",
            " \r\n\t ",
            400,
            "the request body is empty",
        ),
        case(
            "truncated object",
            r#"{"name":"a""#,
            400,
            "invalid JSON at line 1",
        ),
        case(
            "trailing comma",
            r#"{"name":"a",}"#,
            400,
            "invalid JSON at line 1",
        ),
        case("single quotes", "{'name':'a'}", 400, "invalid JSON"),
        case(
            "two documents",
            r#"{"name":"a"} {"name":"b"}"#,
            400,
            "trailing characters",
        ),
        case("bare word", "undefined", 400, "invalid JSON"),
        case(
            "NaN number",
            r#"{"name":"a","timestamp_ms":NaN}"#,
            400,
            "invalid JSON",
        ),
        case(
            "lone surrogate escape",
            r#"{"name":"\ud800"}"#,
            400,
            "invalid JSON",
        ),
        case(
            "control character in string",
            "{\"name\":\"a\u{1}\"}",
            400,
            "invalid JSON",
        ),
        case(
            "invalid UTF-8 in a string",
            b"{\"name\":\"\xc3\x28\"}".to_vec(),
            400,
            "not valid UTF-8",
        ),
        case(
            "invalid UTF-8 outside strings",
            b"\xff\xfe{\"name\":\"a\"}".to_vec(),
            400,
            "not valid UTF-8",
        ),
        case(
            "UTF-16 body",
            "{\"name\":\"a\"}"
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<u8>>(),
            400,
            "invalid JSON",
        ),
        case("JSON null", "null", 400, "must be a JSON object, not null"),
        case(
            "JSON number",
            "42",
            400,
            "must be a JSON object, not a number",
        ),
        case(
            "JSON string",
            r#""hello""#,
            400,
            "must be a JSON object, not a string",
        ),
        case(
            "JSON boolean",
            "true",
            400,
            "must be a JSON object, not a boolean",
        ),
        case("empty array", "[]", 400, "the batch is empty"),
        case(
            "array of null",
            "[null]",
            400,
            "events[0]: an event must be a JSON object, not null",
        ),
        case(
            "nested array as event",
            r#"[[{"name":"a"}]]"#,
            400,
            "events[0]: an event must be a JSON object, not an array",
        ),
        case(
            "10 000-deep arrays",
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
            400,
            "recursion limit exceeded",
        ),
        case(
            "10 000-deep objects",
            format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000)),
            400,
            "recursion limit exceeded",
        ),
        case(
            "10 000-deep properties",
            format!(
                r#"{{"name":"a","properties":{}1{}}}"#,
                r#"{"a":"#.repeat(10_000),
                "}".repeat(10_000)
            ),
            400,
            "recursion limit exceeded",
        ),
        case(
            "100 000-element batch",
            format!("[{}]", vec!["{}"; 100_000].join(",")),
            413,
            "at most 1000 events; this one has 100000",
        ),
        case(
            "100 000 nulls",
            format!("[{}]", vec!["null"; 100_000].join(",")),
            413,
            "at most 1000 events",
        ),
        case(
            "missing name",
            r#"{"id":"x","properties":{}}"#,
            400,
            "field `name` is required",
        ),
        case("empty object", "{}", 400, "field `name` is required"),
        case(
            "null name",
            r#"{"name":null}"#,
            400,
            "field `name` is required",
        ),
        case(
            "unknown field",
            r#"{"name":"a","Name":"b"}"#,
            400,
            "unknown field `Name`",
        ),
        case(
            "duplicate key",
            r#"{"name":"a","name":"b"}"#,
            400,
            "duplicate key \"name\"",
        ),
        case(
            "duplicate key inside properties",
            r#"{"name":"a","properties":{"x":1,"x":2}}"#,
            400,
            "duplicate key \"x\"",
        ),
        case(
            "over-long id",
            format!(r#"{{"name":"a","id":"{}"}}"#, "i".repeat(257)),
            400,
            "field `id` is 257 bytes long; the limit is 256",
        ),
        case(
            "over-long user_id",
            format!(r#"{{"name":"a","user_id":"{}"}}"#, "é".repeat(200)),
            400,
            "field `user_id` is 400 bytes long",
        ),
        case(
            "time before 1970",
            r#"{"name":"a","time":"1969-12-31T23:59:59Z"}"#,
            400,
            "field `time` is before 1970",
        ),
        case(
            "time without offset",
            r#"{"name":"a","time":"2026-01-01T00:00:00"}"#,
            400,
            "field `time` is not an RFC 3339 timestamp",
        ),
        case(
            "timestamp_ms float",
            r#"{"name":"a","timestamp_ms":1.5}"#,
            400,
            "`timestamp_ms` must be an integer from 0 (1970)",
        ),
        case(
            "timestamp_ms above u64",
            r#"{"name":"a","timestamp_ms":18446744073709551616}"#,
            400,
            "`timestamp_ms` must be an integer from 0 (1970)",
        ),
        case(
            "timestamp_ms past year 9999",
            r#"{"name":"a","timestamp_ms":18446744073709551615}"#,
            400,
            "(year 9999)",
        ),
        case(
            "id with a line break",
            r#"{"name":"a","id":"e1\n2026-01-01 ERROR forged"}"#,
            400,
            "field `id` contains a control character (U+000A at byte 2)",
        ),
        case(
            "name with a terminal escape",
            r#"{"name":"a\u001b[2J"}"#,
            400,
            "field `name` contains a control character (U+001B at byte 1)",
        ),
        case(
            "timestamp_ms 1e400",
            r#"{"name":"a","timestamp_ms":1e400}"#,
            400,
            "invalid JSON",
        ),
    ];
    // every field with every JSON type it must not have
    let wrong: [(&str, &str, &str); 6] = [
        ("number", "7", "a number"),
        ("boolean", "false", "a boolean"),
        ("array", r#"["a"]"#, "an array"),
        ("object", r#"{"a":1}"#, "an object"),
        ("string", r#""s""#, "a string"),
        ("empty string", r#""""#, ""),
    ];
    for (field, allowed) in [
        ("name", "string"),
        ("id", "string"),
        ("user_id", "string"),
        ("time", "string"),
        ("timestamp_ms", "integer"),
        ("properties", "object"),
    ] {
        for (type_name, literal, shown) in wrong {
            let is_allowed = match allowed {
                "string" => type_name == "string",
                "integer" => type_name == "number",
                _ => type_name == "object",
            };
            if is_allowed {
                continue;
            }
            let body = if field == "name" {
                format!(r#"{{"name":{literal}}}"#)
            } else {
                format!(r#"{{"name":"a","{field}":{literal}}}"#)
            };
            let needle: &'static str = match (field, type_name) {
                ("time", "empty string") => "field `time` is not an RFC 3339 timestamp",
                ("time", _) => "field `time` must be an RFC 3339 string",
                (_, "empty string") if allowed == "string" => "must not be empty",
                ("timestamp_ms", _) => "field `timestamp_ms` must be an integer from 0 (1970)",
                ("properties", _) => "field `properties` must be an object",
                _ => "must be a string, not",
            };
            let what = format!("`{field}` as {type_name}");
            let mut c = case(what, body, 400, needle);
            if needle == "must be a string, not" && !shown.is_empty() {
                // the message names the type that was sent
                c.needle = leak(format!("field `{field}` must be a string, not {shown}"));
            }
            cases.push(c);
        }
    }
    cases
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// A valid structured CloudEvent.
fn cloudevent() -> Value {
    json!({"specversion": "1.0", "id": "ce-1", "source": "/shop", "type": "cart.abandoned"})
}

/// CloudEvents in all three modes, each missing each required attribute,
/// and with a wrong `specversion`.
fn cloudevent_cases() -> Vec<Case> {
    let structured = Some("application/cloudevents+json");
    let batch = Some("application/cloudevents-batch+json");
    let mut cases = Vec::new();
    for attr in ["specversion", "id", "source", "type"] {
        let needle = leak(format!("CloudEvents attribute `{attr}` is required"));
        let mut ce = cloudevent();
        ce.as_object_mut().unwrap().remove(attr);
        cases.push(
            case(
                format!("structured without `{attr}`"),
                ce.to_string(),
                400,
                needle,
            )
            .content_type(structured),
        );
        let body = json!([cloudevent(), ce]).to_string();
        let at_index = leak(format!(
            "events[1]: CloudEvents attribute `{attr}` is required"
        ));
        cases.push(
            case(
                format!("batch, events[1] without `{attr}`"),
                body,
                400,
                at_index,
            )
            .content_type(batch),
        );
        let mut binary = case(
            format!("binary without ce-{attr}"),
            r#"{"level":1}"#,
            400,
            needle,
        );
        for (a, v) in cloudevent().as_object().unwrap() {
            if a != attr {
                binary = binary.header(header_name(a), v.as_str().unwrap());
            }
        }
        cases.push(binary);
        let mut empty = cloudevent();
        empty[attr] = json!("");
        let must_not = leak(format!("CloudEvents attribute `{attr}` must not be empty"));
        cases.push(
            case(
                format!("structured with empty `{attr}`"),
                empty.to_string(),
                400,
                must_not,
            )
            .content_type(structured),
        );
        let mut number = cloudevent();
        number[attr] = json!(1);
        let must_be = leak(format!("CloudEvents attribute `{attr}` must be a string"));
        cases.push(
            case(
                format!("structured with numeric `{attr}`"),
                number.to_string(),
                400,
                must_be,
            )
            .content_type(structured),
        );
    }
    let mut wrong = cloudevent();
    wrong["specversion"] = json!("0.3");
    let spec = "unsupported CloudEvents specversion \"0.3\"";
    cases.push(
        case("structured specversion 0.3", wrong.to_string(), 400, spec).content_type(structured),
    );
    cases.push(
        case(
            "batch specversion 0.3",
            json!([wrong]).to_string(),
            400,
            "events[0]: unsupported CloudEvents specversion",
        )
        .content_type(batch),
    );
    let mut bin = case("binary ce-specversion 0.3", "{}", 400, spec);
    for (a, v) in cloudevent().as_object().unwrap() {
        let v = if a == "specversion" {
            "0.3"
        } else {
            v.as_str().unwrap()
        };
        bin = bin.header(header_name(a), v);
    }
    cases.push(bin);
    let binary_ok = |c: Case| {
        cloudevent()
            .as_object()
            .unwrap()
            .iter()
            .fold(c, |c, (a, v)| c.header(header_name(a), v.as_str().unwrap()))
    };
    cases.extend([
        case(
            "structured body null",
            "null",
            400,
            "a CloudEvent must be a JSON object",
        )
        .content_type(structured),
        case(
            "structured body array",
            json!([cloudevent()]).to_string(),
            400,
            "a CloudEvent must be a JSON object",
        )
        .content_type(structured),
        case(
            "structured empty body",
            "",
            400,
            "the request body is empty",
        )
        .content_type(structured),
        case(
            "structured data a string",
            {
                let mut c = cloudevent();
                c["data"] = json!("x");
                c.to_string()
            },
            400,
            "`data` must be a JSON object",
        )
        .content_type(structured),
        case(
            "structured data_base64",
            {
                let mut c = cloudevent();
                c["data_base64"] = json!("AA==");
                c.to_string()
            },
            400,
            "`data_base64` is not supported",
        )
        .content_type(structured),
        case(
            "structured datacontenttype xml",
            {
                let mut c = cloudevent();
                c["datacontenttype"] = json!("application/xml");
                c.to_string()
            },
            400,
            "datacontenttype \"application/xml\" is not supported",
        )
        .content_type(structured),
        case(
            "structured time not RFC 3339",
            {
                let mut c = cloudevent();
                c["time"] = json!("yesterday");
                c.to_string()
            },
            400,
            "`time` is not RFC 3339",
        )
        .content_type(structured),
        case(
            "structured subject a number",
            {
                let mut c = cloudevent();
                c["subject"] = json!(5);
                c.to_string()
            },
            400,
            "`subject` must be a string",
        )
        .content_type(structured),
        case(
            "batch body an object",
            cloudevent().to_string(),
            400,
            "a CloudEvents batch must be a JSON array",
        )
        .content_type(batch),
        case(
            "batch body null",
            "null",
            400,
            "a CloudEvents batch must be a JSON array",
        )
        .content_type(batch),
        case("batch empty", "[]", 400, "the batch is empty").content_type(batch),
        case(
            "batch of 100 000",
            format!("[{}]", vec!["{}"; 100_000].join(",")),
            413,
            "at most 1000 events",
        )
        .content_type(batch),
        binary_ok(case("binary body not JSON", "level=1", 400, "invalid JSON")),
        binary_ok(case(
            "binary body an array",
            "[1]",
            400,
            "`data` must be a JSON object",
        )),
        binary_ok(case(
            "binary body invalid UTF-8",
            b"{\"a\":\"\xff\"}".to_vec(),
            400,
            "invalid JSON",
        )),
        binary_ok(case(
            "binary body text/plain",
            "{}",
            415,
            "unsupported content type \"text/plain\"",
        ))
        .content_type(Some("text/plain")),
    ]);
    cases
}

fn header_name(attr: &str) -> &'static str {
    match attr {
        "specversion" => "ce-specversion",
        "id" => "ce-id",
        "source" => "ce-source",
        "type" => "ce-type",
        other => panic!("no header for {other}"),
    }
}

/// Content types that are not JSON.
fn content_type_cases() -> Vec<Case> {
    let event = r#"{"name":"a"}"#;
    [
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
        "application/cloudevents+xml",
        "application/jsonx",
        "application/json-seq",
        "*/*",
        "application/octet-stream",
    ]
    .into_iter()
    .map(|ct| {
        case(
            format!("content-type {ct}"),
            event,
            415,
            "unsupported content type",
        )
        .content_type(Some(ct))
    })
    .collect()
}

/// Bodies over the limit, announced or not.
fn size_cases() -> Vec<Case> {
    let over = format!(
        r#"{{"name":"a","properties":{{"x":"{}"}}}}"#,
        "y".repeat(BODY_LIMIT)
    );
    vec![
        case(
            "body of limit + 1 bytes",
            vec![b' '; BODY_LIMIT + 1],
            413,
            "larger than the 1048576-byte limit",
        ),
        case(
            "event just over the limit",
            over,
            413,
            "larger than the 1048576-byte limit",
        ),
    ]
}

async fn send(host: &Host, c: &Case) -> (u16, Value) {
    let auth = format!("Bearer {INGEST_TOKEN}");
    let mut headers: Vec<(&str, &str)> = vec![("authorization", &auth)];
    if let Some(ct) = c.content_type {
        headers.push(("content-type", ct));
    }
    headers.extend(c.headers.iter().map(|(k, v)| (*k, v.as_str())));
    let (status, _, body) = request("POST", &host.url("/v1/events"), &headers, &c.body).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Check one answer: the status and a JSON `error` with the needle.
fn check(what: &str, want: u16, needle: &str, got: u16, v: &Value, failures: &mut Vec<String>) {
    let msg = v["error"].as_str().unwrap_or("<no JSON error>");
    eprintln!("| {what} | {got} | {msg:.140} |");
    if got != want || !msg.contains(needle) {
        failures.push(format!(
            "{what}: want {want} containing {needle:?}, got {got} {v}"
        ));
    }
}

async fn still_serving(host: &Host) {
    let (status, v) = host.ingest(r#"{"id":"after-corpus","name":"ok"}"#).await;
    assert_eq!((status, v), (202, json!({"ids": ["after-corpus"]})));
    let (status, _, body) = request("GET", &host.url("/healthz"), &[], b"").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_body_gets_a_4xx_naming_the_problem_and_the_host_keeps_serving() {
    let host = Host::start(&config_head(), &[]);
    let cases: Vec<Case> = [
        native_cases(),
        cloudevent_cases(),
        content_type_cases(),
        size_cases(),
    ]
    .into_iter()
    .flatten()
    .collect();
    assert!(cases.len() > 90, "{} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let (got, v) = send(&host, c).await;
        check(&c.what, c.status, c.needle, got, &v, &mut failures);
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    still_serving(&host).await;
    let (status, v) = host.admin("GET", "/v1/events/after-corpus", "").await;
    assert_eq!(status, 200, "{v}");
}

/// (what, header lines, body as sent, write size, status, error needle)
type RawCase = (
    &'static str,
    Vec<&'static [u8]>,
    Vec<u8>,
    usize,
    u16,
    &'static str,
);

#[tokio::test(flavor = "multi_thread")]
async fn requests_a_normal_client_cannot_send_get_a_4xx_too() {
    let host = Host::start(&config_head(), &[]);
    let addr = host.addr;
    let mut failures = Vec::new();
    let cases: Vec<RawCase> = vec![
        (
            "chunked body just over the limit, no length",
            vec![
                b"content-type: application/json",
                b"transfer-encoding: chunked",
            ],
            raw::chunked(&vec![b' '; BODY_LIMIT + 1], 64 * 1024),
            64 * 1024,
            413,
            "larger than the 1048576-byte limit",
        ),
        (
            "16 MiB chunked body, no length",
            vec![
                b"content-type: application/json",
                b"transfer-encoding: chunked",
            ],
            raw::chunked(&vec![b'['; 16 * BODY_LIMIT], 256 * 1024),
            256 * 1024,
            413,
            "larger than the 1048576-byte limit",
        ),
        (
            "content-length of 1 TB announced",
            vec![
                b"content-type: application/json",
                b"content-length: 1000000000000",
            ],
            b"{}".to_vec(),
            2,
            413,
            "larger than the 1048576-byte limit",
        ),
        (
            "content-type not UTF-8",
            vec![b"content-type: application/\xffjson", b"content-length: 12"],
            br#"{"name":"a"}"#.to_vec(),
            12,
            415,
            "unsupported content type",
        ),
        (
            "ce-id not UTF-8",
            vec![
                b"content-type: application/json",
                b"ce-specversion: 1.0",
                b"ce-id: \xff\xfe",
                b"ce-source: /s",
                b"ce-type: t",
                b"content-length: 2",
            ],
            b"{}".to_vec(),
            2,
            400,
            "header `ce-id` is not valid UTF-8",
        ),
    ];
    for (what, headers, body, chunk, want, needle) in cases {
        let head = raw::ingest_head(addr, INGEST_TOKEN, &headers);
        let resp = raw::exchange(addr, &head, body, chunk).await;
        check(what, want, needle, resp.status, &resp.json, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    still_serving(&host).await;
}

/// (what, request head as sent, body, status, error needle)
type UnparsableCase = (&'static str, Vec<u8>, Vec<u8>, u16, &'static str);

/// Requests hyper cannot parse at all are refused before any route runs;
/// they still get a JSON `error`, like every other refusal. (Broken chunk
/// framing reaches the route, which reports the body unreadable.)
#[tokio::test(flavor = "multi_thread")]
async fn requests_hyper_cannot_parse_get_a_json_error() {
    let host = Host::start(&config_head(), &[]);
    let addr = host.addr;
    let mut failures = Vec::new();
    let big = format!("x-big: {}", "a".repeat(70 * 1024));
    let many: Vec<String> = (0..150).map(|i| format!("x-field-{i}: 1")).collect();
    let head_with = |lines: &[&str]| {
        let extra: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
        raw::ingest_head(addr, INGEST_TOKEN, &extra)
    };
    let many_refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let cases: Vec<UnparsableCase> = vec![
        (
            "not an HTTP request line",
            b"GARBAGE\r\n\r\n".to_vec(),
            Vec::new(),
            400,
            "malformed HTTP request",
        ),
        (
            "header line without a colon",
            b"POST /v1/events HTTP/1.1\r\nhost: x\r\nno colon here\r\n\r\n".to_vec(),
            Vec::new(),
            400,
            "malformed HTTP request",
        ),
        (
            "headers over 64 KiB",
            head_with(&[big.as_str()]),
            Vec::new(),
            431,
            "request header fields too large",
        ),
        (
            "150 header fields",
            head_with(&many_refs),
            Vec::new(),
            431,
            "request header fields too large",
        ),
        (
            "chunk size that is not hex",
            head_with(&[
                "content-type: application/json",
                "transfer-encoding: chunked",
            ]),
            b"zz\r\n{}\r\n0\r\n\r\n".to_vec(),
            400,
            "the request body could not be read",
        ),
    ];
    for (what, head, body, want, needle) in cases {
        let resp = raw::exchange(addr, &head, body, 64 * 1024).await;
        check(what, want, needle, resp.status, &resp.json, &mut failures);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    still_serving(&host).await;
}
