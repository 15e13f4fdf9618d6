//! The HTTP edge of `wasmhook serve`: authentication on every endpoint,
//! every ingest error status with a JSON `error` naming the problem, and
//! CloudEvents in structured, batch and binary modes.

#[path = "support/mod.rs"]
mod support;

use serde_json::{Value, json};
use support::host::{ADMIN_TOKEN, Host, INGEST_TOKEN, hostile_config};

const READ_TOKEN: &str = "read-token-for-dashboards";
use support::http::request;
use support::receiver::TestReceiver;

async fn post(
    host: &Host,
    content_type: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let auth = format!("Bearer {INGEST_TOKEN}");
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("content-type", content_type),
    ];
    headers.extend_from_slice(extra);
    let (status, _, body) = request("POST", &host.url("/v1/events"), &headers, body).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_endpoint_requires_the_right_token() {
    let rx = TestReceiver::start().await;
    let admin_line = format!("admin_tokens = [\"{ADMIN_TOKEN}\"]");
    let config = hostile_config(&rx.url(), "ok", "[1]", "");
    assert!(config.contains(&admin_line));
    let config = config.replace(
        &admin_line,
        &format!("{admin_line}\nread_tokens = [\"{READ_TOKEN}\"]"),
    );
    let host = Host::start(&config, &[]);
    let ingest = format!("Bearer {INGEST_TOKEN}");
    let admin = format!("Bearer {ADMIN_TOKEN}");
    let read = format!("Bearer {READ_TOKEN}");
    let admin_routes = [
        ("GET", "/v1/events"),
        ("GET", "/v1/events/x"),
        ("GET", "/v1/deliveries"),
        ("POST", "/v1/deliveries/x/retry"),
        ("POST", "/v1/deliveries/retry"),
        ("POST", "/v1/deliveries/x/cancel"),
        ("POST", "/v1/deliveries/cancel"),
        ("GET", "/v1/plugins"),
        ("POST", "/v1/plugins/hostile/dry-run"),
        ("POST", "/v1/plugins/hostile/replay"),
        ("POST", "/v1/plugins/hostile/pause"),
        ("POST", "/v1/plugins/hostile/resume"),
        ("GET", "/v1/plugins/hostile/kv"),
        ("DELETE", "/v1/plugins/hostile/kv"),
        ("GET", "/metrics"),
    ];
    for (method, path) in admin_routes {
        for auth in [None, Some(ingest.as_str()), Some("Bearer wrong")] {
            let headers: Vec<(&str, &str)> =
                auth.map(|a| ("authorization", a)).into_iter().collect();
            let (status, resp_headers, body) =
                request(method, &host.url(path), &headers, b"{}").await;
            assert_eq!(status, 401, "{method} {path} with {auth:?}");
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert!(v["error"].as_str().unwrap().contains("admin token"), "{v}");
            assert!(resp_headers.iter().any(|(k, _)| k == "www-authenticate"));
        }
        let (status, _, _) =
            request(method, &host.url(path), &[("authorization", &admin)], b"{}").await;
        assert_ne!(status, 401, "{method} {path} with the admin token");
        // A read token reads (and scrapes metrics), and changes nothing.
        let (status, _, body) =
            request(method, &host.url(path), &[("authorization", &read)], b"{}").await;
        if method == "GET" {
            assert_ne!(status, 401, "{method} {path} with the read token");
        } else {
            assert_eq!(status, 401, "{method} {path} with the read token");
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert!(
                v["error"]
                    .as_str()
                    .unwrap()
                    .ends_with("this endpoint needs an admin token"),
                "{v}"
            );
        }
    }
    for auth in [
        None,
        Some(admin.as_str()),
        Some(read.as_str()),
        Some("Bearer wrong"),
    ] {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        let (status, _, body) = request(
            "POST",
            &host.url("/v1/events"),
            &headers,
            br#"{"name":"x"}"#,
        )
        .await;
        assert_eq!(status, 401, "ingest with {auth:?}");
        assert!(String::from_utf8_lossy(&body).contains("ingest token"));
    }
    // health endpoints are open (load balancers), everything else 404s
    assert_eq!(request("GET", &host.url("/healthz"), &[], b"").await.0, 200);
    assert_eq!(
        request("GET", &host.url("/nope"), &[("authorization", &admin)], b"")
            .await
            .0,
        404
    );
    let (status, headers, _) = request(
        "DELETE",
        &host.url("/v1/events"),
        &[("authorization", &ingest)],
        b"",
    )
    .await;
    assert_eq!(status, 405);
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "allow" && v == "GET, POST"),
        "{headers:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_errors_have_specific_statuses_and_messages() {
    let rx = TestReceiver::start().await;
    let host = Host::start(
        &hostile_config(
            &rx.url(),
            "ok",
            "[1]",
            "max_body_bytes = 4096\nmax_batch_events = 5",
        ),
        &[],
    );
    let json_ct = "application/json";
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            json_ct,
            br#"{"user_id":"u"}"#.to_vec(),
            400,
            "`name` is required",
        ),
        (
            json_ct,
            br#"[{"name":"a"},{"name":7}]"#.to_vec(),
            400,
            "events[1]: field `name` must be a string",
        ),
        (json_ct, b"{\"name\":".to_vec(), 400, "invalid JSON"),
        (json_ct, b"{\"name\":\"\xff\"}".to_vec(), 400, "UTF-8"),
        (
            json_ct,
            br#"{"name":"a","properties":[]}"#.to_vec(),
            400,
            "`properties` must be an object",
        ),
        (
            json_ct,
            format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
            413,
            "limit",
        ),
        (
            json_ct,
            format!("[{}]", [r#"{"name":"a"}"#; 6].join(",")).into_bytes(),
            413,
            "at most 5 events",
        ),
        (
            json_ct,
            format!(
                r#"{{"name":"a","properties":{{"x":"{}"}}}}"#,
                "y".repeat(5000)
            )
            .into_bytes(),
            413,
            "4096-byte limit",
        ),
        (
            "text/plain",
            br#"{"name":"a"}"#.to_vec(),
            415,
            "unsupported content type",
        ),
        (
            "application/cloudevents+json",
            br#"{"specversion":"1.0","id":"1","type":"t"}"#.to_vec(),
            400,
            "`source`",
        ),
    ];
    for (ct, body, status, needle) in cases {
        let (got, v) = post(&host, ct, &body, &[]).await;
        assert_eq!(got, status, "{needle}: {v}");
        let msg = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no JSON error for {needle}: {v}"));
        assert!(msg.contains(needle), "{needle}: {msg}");
    }
    // nothing of a rejected batch was stored
    let (status, _) = host.admin("GET", "/v1/deliveries", "").await;
    assert_eq!(status, 200);
    let (_, v) = host.admin("GET", "/v1/plugins", "").await;
    assert_eq!(v["plugins"][0]["invocations"]["fire"], 0);
    assert_eq!(v["plugins"][0]["invocations"]["pending"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn cloudevents_in_all_three_modes() {
    let rx = TestReceiver::start().await;
    let host = Host::start(&hostile_config(&rx.url(), "ok", "[1]", ""), &[]);
    let structured = json!({"specversion":"1.0","id":"ce-s","source":"/shop","type":"cart.abandoned","subject":"u-1","time":"2026-11-29T12:00:00Z","data":{"cart":3}});
    let (status, v) = post(
        &host,
        "application/cloudevents+json",
        structured.to_string().as_bytes(),
        &[],
    )
    .await;
    assert_eq!((status, v), (202, json!({"ids": ["ce-s"]})));
    // The same source and id again is a duplicate; the id from another
    // source is refused (events are keyed by id), not dropped as one.
    let (status, _) = post(
        &host,
        "application/cloudevents+json",
        structured.to_string().as_bytes(),
        &[],
    )
    .await;
    assert_eq!(status, 202);
    let mut other = structured.clone();
    other["source"] = json!("/game");
    let (status, v) = post(
        &host,
        "application/cloudevents+json",
        other.to_string().as_bytes(),
        &[],
    )
    .await;
    assert_eq!(status, 409, "{v}");
    let error = v["error"].as_str().unwrap();
    assert!(
        error.starts_with(r#"events[0]: id "ce-s" was already accepted from source "/shop""#),
        "{error}"
    );
    let batch = json!([
        {"specversion":"1.0","id":"ce-b1","source":"/s","type":"a"},
        {"specversion":"1.0","id":"ce-b2","source":"/s","type":"b","data":{"k":1}}
    ]);
    let (status, v) = post(
        &host,
        "application/cloudevents-batch+json",
        batch.to_string().as_bytes(),
        &[],
    )
    .await;
    assert_eq!((status, v), (202, json!({"ids": ["ce-b1", "ce-b2"]})));
    // Binary mode: header values are percent-decoded (the HTTP binding),
    // and curl's default content type carries the JSON data.
    let binary = [
        ("ce-specversion", "1.0"),
        ("ce-id", "ce%20bin%2F1"),
        ("ce-source", "/game"),
        ("ce-type", "level.reached"),
        ("ce-subject", "J%C3%BCrgen"),
    ];
    let (status, v) = post(
        &host,
        "application/x-www-form-urlencoded",
        br#"{"level":10}"#,
        &binary,
    )
    .await;
    assert_eq!((status, v), (202, json!({"ids": ["ce bin/1"]})));
    // Not JSON data: 415, as for any unsupported content type.
    let (status, v) = post(&host, "text/plain", b"level 10", &binary).await;
    assert_eq!(status, 415, "{v}");

    let detail = host.settled_event("ce-s", 30).await;
    assert_eq!(detail["event"]["name"], "cart.abandoned");
    assert_eq!(detail["event"]["user_id"], "u-1");
    assert_eq!(detail["event"]["timestamp_ms"], 1_795_953_600_000u64);
    assert_eq!(detail["event"]["properties"], json!({"cart": 3}));
    // An id holding a space and a slash is one percent-encoded segment.
    let bin = host.settled_event("ce%20bin%2F1", 30).await;
    assert_eq!(bin["event"]["id"], "ce bin/1");
    assert_eq!(bin["event"]["properties"], json!({"level": 10}));
    assert_eq!(bin["event"]["user_id"], "Jürgen");
    // the plugin echoed each event to the receiver
    let seen = rx.wait_for(4, 30).await;
    let names: Vec<String> = seen
        .iter()
        .map(|r| r.body_json()["name"].as_str().unwrap().to_owned())
        .collect();
    for n in ["cart.abandoned", "a", "b", "level.reached"] {
        assert!(names.iter().any(|x| x == n), "{names:?}");
    }
}

/// `[server] ingest_events_per_second`: each ingest token has its own
/// rate. Past it a request gets 429 with `Retry-After` and a JSON error,
/// and nothing of it is stored; another token is not held up; a second
/// later the first token sends again.
#[tokio::test(flavor = "multi_thread")]
async fn each_ingest_token_is_held_to_its_rate() {
    let rx = TestReceiver::start().await;
    let line = format!("ingest_tokens = [\"{INGEST_TOKEN}\"]");
    let config = hostile_config(&rx.url(), "skip", "[1]", "ingest_events_per_second = 5");
    assert!(config.contains(&line));
    let config = config.replace(
        &line,
        &format!("ingest_tokens = [\"{INGEST_TOKEN}\", \"other-team-token\"]"),
    );
    let host = Host::start(&config, &[]);
    let send = |token: &'static str, ids: Vec<String>| {
        let url = host.url("/v1/events");
        async move {
            let events: Vec<Value> = ids
                .iter()
                .map(|id| json!({"id": id, "name": "x"}))
                .collect();
            let auth = format!("Bearer {token}");
            let (status, headers, body) = request(
                "POST",
                &url,
                &[
                    ("authorization", auth.as_str()),
                    ("content-type", "application/json"),
                ],
                Value::Array(events).to_string().as_bytes(),
            )
            .await;
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let retry_after = headers
                .iter()
                .find(|(k, _)| k == "retry-after")
                .map(|(_, v)| v.clone());
            (status, v, retry_after)
        }
    };
    let ids = |prefix: &str, n: usize| (0..n).map(|i| format!("{prefix}-{i}")).collect::<Vec<_>>();

    let (status, v, _) = send(INGEST_TOKEN, ids("a", 5)).await;
    assert_eq!(status, 202, "{v}");
    let (status, v, retry_after) = send(INGEST_TOKEN, ids("late", 1)).await;
    assert_eq!(status, 429, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("ingest rate limit: at most 5 events a second per ingest token"),
        "{v}"
    );
    assert_eq!(retry_after.as_deref(), Some("1"));
    let (status, _) = host.admin("GET", "/v1/events/late-0", "").await;
    assert_eq!(status, 404, "a refused event is not stored");

    let (status, v, _) = send("other-team-token", ids("b", 5)).await;
    assert_eq!(status, 202, "another token has its own rate: {v}");

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, v, _) = send(INGEST_TOKEN, ids("late", 1)).await;
    assert_eq!(status, 202, "{v}");
    assert!(
        host.metrics()
            .await
            .contains("wasmhook_events_rate_limited_total 1\n")
    );
}
