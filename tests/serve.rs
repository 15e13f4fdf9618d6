//! `wasmhook serve` end to end: real process, real components, real SQLite
//! file, a recording receiver on 127.0.0.1. Delivery with secrets and
//! signatures, fan-out, skip, plugin errors, retries, Retry-After,
//! permanent failure, dead letter and replay, idempotent ingest, policy
//! denials, dry-run, and the management API.

#[path = "support/mod.rs"]
mod support;

use serde_json::{Value, json};
use support::host::{
    ADMIN_TOKEN, Host, SIGNING_SECRET, component, config_head, game_config, hostile_config,
};
use support::receiver::{Reply, TestReceiver};
use wasmhook::delivery::SigningKey;

const GAME_KEY: &str = "s3cr3t-game-key-VALUE";
const PUSH_KEY: &str = "s3cr3t-push-token-VALUE";

fn game_host(rx: &TestReceiver, schedule: &str) -> Host {
    Host::start(
        &game_config(&rx.url(), schedule),
        &[("GAME_KEY", GAME_KEY), ("PUSH_KEY", PUSH_KEY)],
    )
}

fn level_event(id: &str, level: u32) -> String {
    json!({"id": id, "name": "level.reached", "user_id": "p-1",
           "properties": {"level": level, "player_id": "p-1", "push_token": "device-1"}})
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn delivery_fills_secrets_signs_and_fans_out() {
    let rx = TestReceiver::start().await;
    let host = game_host(&rx, "[1]");
    let (status, body) = host.ingest(&level_event("evt-fan-1", 12)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body, json!({"ids": ["evt-fan-1"]}));

    let seen = rx.wait_for(2, 30).await;
    let coins = seen
        .iter()
        .find(|r| r.path == "/game/players/p-1/coins")
        .expect("coins request");
    let push = seen
        .iter()
        .find(|r| r.path == "/push")
        .expect("push request");
    assert_eq!(
        coins.header("authorization"),
        Some(format!("Bearer {GAME_KEY}").as_str())
    );
    assert_eq!(
        push.header("authorization"),
        Some(format!("Bearer {PUSH_KEY}").as_str())
    );
    assert_eq!(coins.body_json()["idempotency_key"], "evt-fan-1");

    // Standard Webhooks signature over id.timestamp.body, distinct ids.
    let key = SigningKey::from_whsec(SIGNING_SECRET).unwrap();
    for r in [coins, push] {
        let id = r.header("webhook-id").expect("webhook-id");
        let ts = r.header("webhook-timestamp").expect("webhook-timestamp");
        let sig = r.header("webhook-signature").expect("webhook-signature");
        let now = ts.parse::<i64>().unwrap();
        key.verify(id, ts, sig, &r.body, now, 5)
            .expect("signature verifies");
    }
    assert_ne!(coins.header("webhook-id"), push.header("webhook-id"));

    // The delivery log keeps placeholders; no secret value anywhere.
    let v = host.settled_event("evt-fan-1", 30).await;
    assert_eq!(v["plugins"][0]["decision"], "fire");
    let deliveries = v["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 2);
    assert!(deliveries.iter().all(|d| d["status"] == "succeeded"), "{v}");
    let text = v.to_string();
    assert!(text.contains("{{secret:GAME_API_KEY}}"), "{text}");
    for secret in [GAME_KEY, PUSH_KEY] {
        assert!(!text.contains(secret), "secret leaked into the API: {text}");
        assert!(!host.log().contains(secret), "secret leaked into the log");
    }
    let (_, list) = host
        .admin("GET", "/v1/deliveries?status=succeeded", "")
        .await;
    assert!(!list.to_string().contains(GAME_KEY));
}

/// An event cannot smuggle a placeholder into a request: game-reward
/// copies the event's push token into its push body, and a token written
/// as `{{secret:PUSH_TOKEN}}` would have had the host send the real token
/// to the push service as the device's. The host refuses such output, and
/// an event's doing does not count against the plugin's breaker.
#[tokio::test(flavor = "multi_thread")]
async fn a_placeholder_in_event_data_is_never_filled() {
    let rx = TestReceiver::start().await;
    let host = game_host(&rx, "[1]");
    let smuggled = |id: &str| {
        json!({"id": id, "name": "level.reached", "user_id": "p-1",
               "properties": {"level": 12, "player_id": "p-1",
                              "push_token": "{{secret:PUSH_TOKEN}}"}})
    };
    let (status, body) = host.ingest(&smuggled("evt-smuggle").to_string()).await;
    assert_eq!(status, 202, "{body}");
    let v = host.settled_event("evt-smuggle", 30).await;
    let p = &v["plugins"][0];
    assert_eq!(
        (p["decision"].as_str(), p["error_kind"].as_str()),
        (Some("error"), Some("refused")),
        "{v}"
    );
    assert!(
        p["error"]
            .as_str()
            .unwrap()
            .contains("the event's own data"),
        "{v}"
    );
    assert!(v["deliveries"].as_array().unwrap().is_empty(), "{v}");

    // More refusals than the breaker's threshold of stopped runs: the
    // plugin stays healthy and the next clean event is delivered.
    let batch: Vec<Value> = (0..12)
        .map(|i| smuggled(&format!("evt-smuggle-{i}")))
        .collect();
    let (status, body) = host.ingest(&Value::Array(batch).to_string()).await;
    assert_eq!(status, 202, "{body}");
    for i in 0..12 {
        host.settled_event(&format!("evt-smuggle-{i}"), 30).await;
    }
    host.ingest(&level_event("evt-clean", 12)).await;
    let seen = rx.wait_for(2, 30).await;
    let push = seen.iter().find(|r| r.path == "/push").expect("push");
    assert_eq!(push.body_json()["message"]["token"], "device-1");
    for r in rx.requests() {
        let body = String::from_utf8_lossy(&r.body);
        assert!(
            !body.contains(PUSH_KEY) && !body.contains(GAME_KEY),
            "{body}"
        );
    }
    let (_, plugins) = host.admin("GET", "/v1/plugins", "").await;
    assert_eq!(
        plugins["plugins"][0]["breaker"]["state"], "healthy",
        "{plugins}"
    );
}

/// A secret read from a file (`file = …`, as a mounted Kubernetes secret
/// or Vault Agent writes it) is read again when the file changes: a
/// rotated token goes out with the next delivery, no restart, no SIGHUP.
/// Neither value reaches the log or the API.
#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_secret_file_is_used_without_a_restart() {
    const V1: &str = "game-key-from-file-v1";
    const V2: &str = "game-key-from-file-v2";
    let rx = TestReceiver::start().await;
    let secrets = tempfile::tempdir().unwrap();
    let key_file = secrets.path().join("game.key");
    std::fs::write(&key_file, format!("{V1}\n")).unwrap();
    let from_env = r#"GAME_API_KEY = { env = "GAME_KEY", hosts"#;
    let config = game_config(&rx.url(), "[1]");
    assert!(config.contains(from_env));
    let config = config.replace(
        from_env,
        &format!(
            r#"GAME_API_KEY = {{ file = "{}", hosts"#,
            key_file.display()
        ),
    );
    let host = Host::start(&config, &[("PUSH_KEY", PUSH_KEY)]);
    let coins_auth = |seen: &[support::receiver::Received]| -> Vec<String> {
        seen.iter()
            .filter(|r| r.path == "/game/players/p-1/coins")
            .map(|r| r.header("authorization").unwrap_or_default().to_owned())
            .collect()
    };

    assert_eq!(host.ingest(&level_event("rot-1", 12)).await.0, 202);
    let seen = rx.wait_for(2, 30).await;
    assert_eq!(coins_auth(&seen), [format!("Bearer {V1}")]);

    // Rotate the way secret managers do: write aside, rename over.
    let staged = secrets.path().join("game.key.new");
    std::fs::write(&staged, format!("{V2}\n")).unwrap();
    std::fs::rename(&staged, &key_file).unwrap();
    host.wait_for_log("wasmhook reloaded (a secret file changed)", 30)
        .await;

    assert_eq!(host.ingest(&level_event("rot-2", 12)).await.0, 202);
    let seen = rx.wait_for(4, 30).await;
    assert_eq!(
        coins_auth(&seen),
        [format!("Bearer {V1}"), format!("Bearer {V2}")]
    );
    let v = host.settled_event("rot-2", 30).await;
    let text = v.to_string();
    assert!(text.contains("{{secret:GAME_API_KEY}}"), "{text}");
    for secret in [V1, V2] {
        assert!(!text.contains(secret), "secret leaked into the API: {text}");
        assert!(!host.log().contains(secret), "secret leaked into the log");
    }
}

/// Rotating the signing secret: with `previous_signing_secrets`, every
/// delivery carries one signature per secret, so receivers still on the
/// old secret and those already on the new one both verify it; a secret
/// neither of them holds does not.
#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_signing_secret_signs_with_the_old_and_the_new_key() {
    const OLD: &str = "whsec_bm90LXRoZS1zYW1lLWtleS1hcy1iZWZvcmUhIQ==";
    let rx = TestReceiver::start().await;
    let config = hostile_config(&rx.url(), "ok", "[1]", "").replace(
        "timeout_s = 2\n",
        &format!(
            "timeout_s = 2\nsigning_secret = \"{SIGNING_SECRET}\"\nprevious_signing_secrets = [\"{OLD}\"]\n"
        ),
    );
    let host = Host::start(&config, &[]);
    assert_eq!(host.ingest(r#"{"id":"rot-1","name":"x"}"#).await.0, 202);
    let r = rx.wait_for(1, 30).await.remove(0);
    let (id, ts, sig) = (
        r.header("webhook-id").unwrap(),
        r.header("webhook-timestamp").unwrap(),
        r.header("webhook-signature").unwrap(),
    );
    assert_eq!(sig.split(' ').count(), 2, "{sig}");
    let now = ts.parse::<i64>().unwrap();
    for secret in [SIGNING_SECRET, OLD] {
        SigningKey::from_whsec(secret)
            .unwrap()
            .verify(id, ts, sig, &r.body, now, 5)
            .unwrap_or_else(|e| panic!("{secret}: {e}"));
    }
    let other = SigningKey::from_bytes(vec![7u8; 32]);
    assert!(other.verify(id, ts, sig, &r.body, now, 5).is_err());
    assert!(!host.log().contains(OLD), "a secret in the log");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_skip_is_recorded_with_its_reason_and_sends_nothing() {
    let rx = TestReceiver::start().await;
    let host = game_host(&rx, "[1]");
    assert_eq!(host.ingest(&level_event("evt-skip", 3)).await.0, 202);
    let v = host.settled_event("evt-skip", 30).await;
    assert_eq!(v["plugins"][0]["decision"], "skip");
    assert!(
        v["plugins"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("below"),
        "{v}"
    );
    assert!(v["deliveries"].as_array().unwrap().is_empty());
    assert!(rx.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_errors_are_recorded_with_their_kind() {
    let rx = TestReceiver::start().await;
    let host = Host::start(&hostile_config(&rx.url(), "error", "[1]", ""), &[]);
    host.ingest(r#"{"id":"evt-err","name":"x"}"#).await;
    let v = host.settled_event("evt-err", 30).await;
    let p = &v["plugins"][0];
    assert_eq!(
        (p["decision"].as_str(), p["error_kind"].as_str()),
        (Some("error"), Some("plugin")),
        "{v}"
    );
    assert!(
        p["error"]
            .as_str()
            .unwrap()
            .contains("plugin refused the event")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_500_is_retried_until_it_succeeds() {
    let rx = TestReceiver::start().await;
    rx.script([Reply::status(500)]);
    let host = Host::start(&hostile_config(&rx.url(), "ok", "[1]", ""), &[]);
    host.ingest(r#"{"id":"evt-retry","name":"x"}"#).await;
    let seen = rx.wait_for(2, 30).await;
    assert_eq!(
        seen[0].header("webhook-id"),
        seen[1].header("webhook-id"),
        "same webhook-id on retry"
    );
    let v = host.settled_event("evt-retry", 30).await;
    let d = &v["deliveries"][0];
    assert_eq!(d["status"], "succeeded", "{v}");
    let attempts = d["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["status_code"], 500);
    assert_eq!(attempts[1]["status_code"], 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_is_honoured() {
    let rx = TestReceiver::start().await;
    rx.script([Reply::status(429).header("retry-after", "2")]);
    let host = Host::start(&hostile_config(&rx.url(), "ok", "[1]", ""), &[]);
    host.ingest(r#"{"id":"evt-ra","name":"x"}"#).await;
    let seen = rx.wait_for(2, 30).await;
    let gap = seen[1].at.duration_since(seen[0].at);
    // The schedule says 1 s (±20 %); Retry-After says 2 s.
    assert!(
        gap >= std::time::Duration::from_millis(1900),
        "retried after {gap:?}"
    );
}

/// The requests arrived as a rate limit with a burst of `burst` spaces
/// them: after the burst, request k no earlier than (k - burst) ×
/// `interval_ms` after request `burst`. Measured on arrival, so with a
/// margin for loopback jitter (the burst's own arrivals are left out: each
/// opens a connection, which a loaded machine can delay). The time from
/// the first to the last.
fn assert_spaced(
    seen: &[support::receiver::Received],
    burst: usize,
    interval_ms: u64,
) -> std::time::Duration {
    use std::time::Duration;
    let mut at: Vec<_> = seen.iter().map(|r| r.at).collect();
    at.sort();
    for (k, t) in at.iter().enumerate().skip(burst + 1) {
        let after = t.duration_since(at[burst]);
        let earliest = Duration::from_millis(interval_ms * (k - burst) as u64);
        assert!(
            after + Duration::from_millis(300) >= earliest,
            "request {k} came {after:?} after request {burst}, before {earliest:?}"
        );
    }
    at[at.len() - 1].duration_since(at[0])
}

/// `max_per_second_per_host` spaces a burst out: 15 events for a plugin
/// limited to 5 requests a second reach the receiver as a burst of 5, then
/// one every 200 ms, each delivered in one attempt. The deliveries whose
/// turn was more than a second off waited for it in the queue, with the
/// turn reserved, and `/metrics` counts them.
#[tokio::test(flavor = "multi_thread")]
async fn max_per_second_per_host_spaces_a_burst_out() {
    use std::time::Duration;
    const EVENTS: usize = 15;
    let rx = TestReceiver::start().await;
    let config = hostile_config(&rx.url(), "ok", "[1]", "").replace(
        "timeout_s = 2\n",
        "timeout_s = 2\nmax_per_second_per_host = 5\n",
    );
    let host = Host::start(&config, &[]);
    let batch: Vec<_> = (0..EVENTS)
        .map(|i| json!({"id": format!("rate-{i}"), "name": "x"}))
        .collect();
    assert_eq!(host.ingest(&Value::Array(batch).to_string()).await.0, 202);
    let span = assert_spaced(&rx.wait_for(EVENTS, 30).await, 5, 200);
    assert!(span < Duration::from_secs(6), "took {span:?}");
    for i in 0..EVENTS {
        let v = host.settled_event(&format!("rate-{i}"), 30).await;
        let d = &v["deliveries"][0];
        assert_eq!(d["status"], "succeeded", "{v}");
        assert_eq!(d["attempts"].as_array().unwrap().len(), 1, "{v}");
    }
    let (_, metrics) = host.admin("GET", "/metrics", "").await;
    let metrics = metrics.as_str().unwrap();
    let queued = metrics
        .lines()
        .find_map(|l| l.strip_prefix("wasmhook_deliveries_rate_limited_total{plugin=\"hostile\"} "))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no rate-limited count:\n{metrics}"));
    // Turns more than a second off: the last 4 or so of the 15.
    assert!((1..EVENTS as u64).contains(&queued), "{queued}");
}

/// Two copies of the hostile plugin (`hostile` POSTing to `/hook`,
/// `hostile-2` to `/hook2`), each firing once per event at the receiver,
/// with `destinations` appended (a `[[destinations]]` block).
fn two_plugins_config(rx: &TestReceiver, destinations: &str) -> String {
    let one = hostile_config(&rx.url(), "ok", "[1]", "");
    let plugin = &one[one.find("[[plugins]]").expect("a plugin block")..];
    let second = plugin
        .replace("name = \"hostile\"", "name = \"hostile-2\"")
        .replace("/hook\"", "/hook2\"");
    format!("{one}\n{second}\n{destinations}")
}

/// Ingest `n` events with ids `{prefix}-{i}` in one batch, and wait until
/// each has its two deliveries (one per plugin) succeeded in one attempt.
async fn ingest_and_settle_both(host: &Host, prefix: &str, n: usize) {
    let batch: Vec<_> = (0..n)
        .map(|i| json!({"id": format!("{prefix}-{i}"), "name": "x"}))
        .collect();
    assert_eq!(host.ingest(&Value::Array(batch).to_string()).await.0, 202);
    for i in 0..n {
        let v = host.settled_event(&format!("{prefix}-{i}"), 30).await;
        let deliveries = v["deliveries"].as_array().unwrap();
        assert_eq!(deliveries.len(), 2, "{v}");
        for d in deliveries {
            assert_eq!(d["status"], "succeeded", "{v}");
            assert_eq!(d["attempts"].as_array().unwrap().len(), 1, "{v}");
        }
    }
}

/// A `[[destinations]]` rate is shared by every plugin: two plugins with
/// no rate of their own, posting 12 requests together to a destination
/// limited to 4 a second, reach it as a burst of 4 and then one every
/// 250 ms between them (alone, each would send all of its 6 at once).
#[tokio::test(flavor = "multi_thread")]
async fn a_destination_rate_is_shared_by_every_plugin() {
    const EVENTS: usize = 6;
    let rx = TestReceiver::start().await;
    let destinations = format!(
        "[[destinations]]\nurl = \"{}\"\nmax_per_second = 4\n",
        rx.url()
    );
    let host = Host::start(&two_plugins_config(&rx, &destinations), &[]);
    ingest_and_settle_both(&host, "shared-rate", EVENTS).await;
    let seen = rx.requests();
    assert_eq!(seen.len(), 2 * EVENTS);
    for path in ["/hook", "/hook2"] {
        let n = seen.iter().filter(|r| r.path == path).count();
        assert_eq!(n, EVENTS, "{path}");
    }
    assert_spaced(&seen, 4, 250);
    let limited = format!(
        "wasmhook_destination_limited_total{{destination=\"{}\",limit=\"rate\"}} ",
        rx.addr
    );
    let metrics = host.metrics().await;
    let held: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(&limited))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {limited}in:\n{metrics}"));
    // Turns more than a second off waited in the queue.
    assert!((1..2 * EVENTS as u64).contains(&held), "{held}");
}

/// A `[[destinations]]` concurrency cap is shared by every plugin: with
/// a receiver that answers after 300 ms and a cap of 2, no third request
/// arrives before one of the two in flight was answered, whichever
/// plugin sent it (each plugin alone may have 16 in flight).
#[tokio::test(flavor = "multi_thread")]
async fn a_destination_in_flight_cap_is_shared_by_every_plugin() {
    use std::time::Duration;
    const EVENTS: usize = 4;
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(200).after(Duration::from_millis(300)));
    let destinations = format!(
        "[[destinations]]\nurl = \"{}\"\nmax_in_flight = 2\n",
        rx.url()
    );
    let host = Host::start(&two_plugins_config(&rx, &destinations), &[]);
    ingest_and_settle_both(&host, "shared-slots", EVENTS).await;
    let seen = rx.requests();
    assert_eq!(seen.len(), 2 * EVENTS);
    let mut at: Vec<_> = seen.iter().map(|r| r.at).collect();
    at.sort();
    for (i, pair) in at.windows(3).enumerate() {
        let gap = pair[2].duration_since(pair[0]);
        assert!(
            gap >= Duration::from_millis(250),
            "requests {i} and {} arrived {gap:?} apart: three were in flight",
            i + 2
        );
    }
    let metrics = host.metrics().await;
    let gauge = format!(
        "wasmhook_destination_in_flight{{destination=\"{}\"}} 0\n",
        rx.addr
    );
    assert!(metrics.contains(&gauge), "{gauge} in:\n{metrics}");
    let limited = format!(
        "wasmhook_destination_limited_total{{destination=\"{}\",limit=\"in_flight\"}} ",
        rx.addr
    );
    assert!(metrics.contains(&limited), "{limited} in:\n{metrics}");
}

/// A `[[destinations]]` entry has one unhealthy-host breaker for all
/// plugins: with a threshold of 2, one failure from each of two plugins
/// pauses the destination for both, so neither retry is sent. (Each
/// plugin's own breaker would wait for its own second failure, after the
/// retry had gone out.)
#[tokio::test(flavor = "multi_thread")]
async fn a_destination_breaker_is_shared_by_every_plugin() {
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(503));
    let destinations = format!(
        "[[destinations]]\nurl = \"{}\"\n\n[breakers.destinations]\nfailure_threshold = 2\npause_s = 300\nmax_pause_s = 300\n",
        rx.url()
    );
    let host = Host::start(&two_plugins_config(&rx, &destinations), &[]);
    assert_eq!(
        host.ingest(r#"{"id":"shared-down","name":"x"}"#).await.0,
        202
    );
    rx.wait_for(2, 30).await;
    let v = support::eventually_async(30, || async {
        let (_, v) = host.admin("GET", "/v1/plugins", "").await;
        (!v["unhealthy_destinations"].as_array()?.is_empty()).then_some(v)
    })
    .await
    .expect("the shared destination is listed as paused");
    let shared = v["unhealthy_destinations"].as_array().unwrap();
    assert_eq!(shared.len(), 1, "{v}");
    assert_eq!(shared[0]["destination"], rx.addr.to_string(), "{v}");
    assert_eq!(shared[0]["state"], "paused", "{v}");
    for p in v["plugins"].as_array().unwrap() {
        assert_eq!(p["unhealthy_destinations"], json!([]), "{v}");
    }
    // Both retries fall due within about a second, and wait.
    let metrics = support::eventually_async(30, || async {
        let m = host.metrics().await;
        ["hostile", "hostile-2"]
            .iter()
            .all(|p| {
                m.contains(&format!(
                    "wasmhook_deliveries_deferred_total{{plugin=\"{p}\"}} 1\n"
                ))
            })
            .then_some(m)
    })
    .await
    .expect("each plugin's retry was deferred");
    assert!(
        metrics.contains("wasmhook_destination_pauses_total"),
        "{metrics}"
    );
    assert_eq!(rx.requests().len(), 2, "nothing sent while paused");
    let log = host.log();
    let line = log
        .lines()
        .find(|l| l.contains("destination paused"))
        .expect("the pause is logged");
    assert!(
        line.contains("for_all_plugins") && line.trim_end().ends_with("true"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_410_fails_permanently_after_one_attempt() {
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(410));
    let host = Host::start(&hostile_config(&rx.url(), "ok", "[1]", ""), &[]);
    host.ingest(r#"{"id":"evt-410","name":"x"}"#).await;
    let v = host.settled_event("evt-410", 30).await;
    let d = &v["deliveries"][0];
    assert_eq!(d["status"], "failed", "{v}");
    assert_eq!(d["attempts"].as_array().unwrap().len(), 1);
    assert!(d["failure"].as_str().unwrap().contains("410"));
}

/// A receiver's refusal keeps the start of its answer in the delivery
/// log (`attempts[].response`), so the log says why; an answer that
/// quotes the request's key back shows the placeholder instead, and a
/// success keeps nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_refusals_answer_is_in_the_log_with_its_secrets_redacted() {
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::json(
        422,
        json!({"error": "unknown key", "got": format!("Bearer {GAME_KEY}"),
               "hint": "x".repeat(3000)}),
    ));
    let host = game_host(&rx, "[1]");
    assert_eq!(host.ingest(&level_event("evt-422", 12)).await.0, 202);
    let v = host.settled_event("evt-422", 30).await;
    let coins = v["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["request"]["url"].as_str().unwrap().contains("/coins"))
        .unwrap();
    assert_eq!(coins["status"], "failed", "{v}");
    let response = coins["attempts"][0]["response"].as_str().unwrap();
    assert!(
        response.starts_with(
            r#"{"error":"unknown key","got":"Bearer {{secret:GAME_API_KEY}}","hint":"xxx"#
        ),
        "{response}"
    );
    assert!(response.ends_with("x…"), "cut at 2 KiB: {response}");
    assert!(response.len() < 2100, "{}", response.len());
    let shown = format!("{v}{}", host.log());
    assert!(!shown.contains(GAME_KEY) && !shown.contains(PUSH_KEY));

    rx.set_default(Reply::status(200));
    assert_eq!(host.ingest(&level_event("evt-200", 12)).await.0, 202);
    let v = host.settled_event("evt-200", 30).await;
    for d in v["deliveries"].as_array().unwrap() {
        assert_eq!(d["status"], "succeeded", "{v}");
        assert_eq!(d["attempts"][0]["response"], Value::Null, "{v}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn exhausted_retries_dead_letter_and_a_manual_retry_replays() {
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(503));
    let host = Host::start(&hostile_config(&rx.url(), "ok", "[1]", ""), &[]);
    host.ingest(r#"{"id":"evt-dead","name":"x"}"#).await;
    let v = host.settled_event("evt-dead", 30).await;
    let d = &v["deliveries"][0];
    assert_eq!(d["status"], "failed", "{v}");
    assert_eq!(
        d["attempts"].as_array().unwrap().len(),
        2,
        "first try + one retry"
    );
    let id = d["id"].as_str().unwrap().to_owned();

    let (_, failed) = host
        .admin("GET", "/v1/deliveries?status=failed&plugin=hostile", "")
        .await;
    assert_eq!(failed["deliveries"][0]["id"], id.as_str());

    // Replayed while the receiver still fails: pending again (a first
    // attempt, then a retry 1 s later), so a second replay is a conflict
    // rather than a duplicate. Then the receiver recovers.
    let (status, body) = host
        .admin("POST", &format!("/v1/deliveries/{id}/retry"), "")
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = host
        .admin("POST", &format!("/v1/deliveries/{id}/retry"), "")
        .await;
    rx.set_default(Reply::status(200));
    assert_eq!(status, 409, "already pending");
    let v = host.settled_event("evt-dead", 30).await;
    assert_eq!(v["deliveries"][0]["status"], "succeeded", "{v}");

    // bulk retry: nothing failed any more
    let (status, body) = host
        .admin("POST", "/v1/deliveries/retry", r#"{"plugin":"hostile"}"#)
        .await;
    assert_eq!((status, body), (200, json!({"requeued": 0})));
    let (status, _) = host.admin("POST", "/v1/deliveries/nope/retry", "").await;
    assert_eq!(status, 404);
}

/// Cancelling gives up on pending deliveries: one by id, then the rest of
/// the plugin's; they end failed "cancelled by the operator", nothing more
/// is sent, and a manual retry still brings one back.
#[tokio::test(flavor = "multi_thread")]
async fn cancelled_deliveries_stop_and_can_be_retried() {
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(503));
    let host = Host::start(&hostile_config(&rx.url(), "ok", "[60]", ""), &[]);
    for i in 0..3 {
        host.ingest(&format!(r#"{{"id":"c-{i}","name":"x"}}"#))
            .await;
    }
    rx.wait_for(3, 30).await;
    let delivery = |v: &Value| v["deliveries"][0].clone();
    let id_of = |v: &Value| delivery(v)["id"].as_str().unwrap().to_owned();
    let (_, e0) = host.admin("GET", "/v1/events/c-0", "").await;
    let first = id_of(&e0);

    let (status, v) = host
        .admin("POST", &format!("/v1/deliveries/{first}/cancel"), "")
        .await;
    assert_eq!((status, &v["status"]), (200, &json!("failed")), "{v}");
    let (status, v) = host
        .admin("POST", &format!("/v1/deliveries/{first}/cancel"), "")
        .await;
    assert_eq!(status, 409, "{v}");
    let (status, _) = host
        .admin("POST", "/v1/deliveries/msg_nope/cancel", "")
        .await;
    assert_eq!(status, 404);
    let (status, v) = host.admin("POST", "/v1/deliveries/cancel", "{}").await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("plugin"), "{v}");
    let (status, v) = host
        .admin("POST", "/v1/deliveries/cancel", r#"{"plugin":"hostile"}"#)
        .await;
    assert_eq!((status, &v["cancelled"]), (200, &json!(2)), "{v}");
    for i in 0..3 {
        let (_, e) = host.admin("GET", &format!("/v1/events/c-{i}"), "").await;
        let d = delivery(&e);
        assert_eq!(d["status"], "failed", "{e}");
        assert_eq!(d["failure"], "cancelled by the operator", "{e}");
    }
    assert_eq!(rx.requests().len(), 3, "nothing more sent");
    let metrics = host.metrics().await;
    assert!(
        metrics.contains("wasmhook_deliveries_cancelled_total 3\n"),
        "{metrics}"
    );

    rx.set_default(Reply::status(200));
    let (status, _) = host
        .admin("POST", &format!("/v1/deliveries/{first}/retry"), "")
        .await;
    assert_eq!(status, 200);
    let v = host.settled_event("c-0", 30).await;
    assert_eq!(delivery(&v)["status"], "succeeded", "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_retry_requeues_failed_deliveries() {
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(400));
    let host = Host::start(&hostile_config(&rx.url(), "ok", "[1]", ""), &[]);
    host.ingest(r#"[{"id":"b-1","name":"x"},{"id":"b-2","name":"x"}]"#)
        .await;
    host.settled_event("b-1", 30).await;
    host.settled_event("b-2", 30).await;
    rx.set_default(Reply::status(200));
    let (status, body) = host
        .admin("POST", "/v1/deliveries/retry", r#"{"status":"failed"}"#)
        .await;
    assert_eq!((status, body), (200, json!({"requeued": 2})));
    for id in ["b-1", "b-2"] {
        assert_eq!(
            host.settled_event(id, 30).await["deliveries"][0]["status"],
            "succeeded"
        );
    }
    // Bodies the API refuses, each naming its field, with nothing changed.
    for (body, says) in [
        (r#"{"status":"weird"}"#, "status"),
        (r#"{"status":"pending"}"#, "queued already"),
        (r#"{"from_ms":1700000000}"#, "not seconds"),
        (
            r#"{"from_ms":1700000002000,"to_ms":1700000001000}"#,
            "is empty",
        ),
        (
            r#"{"plugin":"hostile","plugin":"other"}"#,
            "duplicate key \"plugin\"",
        ),
    ] {
        let (status, reply) = host.admin("POST", "/v1/deliveries/retry", body).await;
        assert_eq!(status, 400, "{body}: {reply}");
        let error = reply["error"].as_str().unwrap();
        assert!(error.contains(says), "{body}: {error}");
    }
    let (status, reply) = host
        .admin(
            "POST",
            "/v1/deliveries/cancel",
            r#"{"plugin":"x","plugin":"hostile"}"#,
        )
        .await;
    assert_eq!(status, 400, "{reply}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_id_is_processed_once() {
    let rx = TestReceiver::start().await;
    let host = Host::start(&hostile_config(&rx.url(), "ok", "[1]", ""), &[]);
    for _ in 0..3 {
        let (status, body) = host.ingest(r#"{"id":"evt-once","name":"x"}"#).await;
        assert_eq!((status, body), (202, json!({"ids": ["evt-once"]})));
    }
    let v = host.settled_event("evt-once", 30).await;
    assert_eq!(v["deliveries"].as_array().unwrap().len(), 1);
    // give a duplicate delivery a chance to show up
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(rx.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn policy_denies_metadata_and_unlisted_private_addresses() {
    let rx = TestReceiver::start().await;
    // allowed_hosts lets anything through; only 127.0.0.2 is exempt from
    // the private-network block, so the receiver (127.0.0.1) is refused.
    let config = |url: &str| {
        format!(
            r#"{head}
[[plugins]]
name = "hostile"
component = "{c}"
events = ["*"]
allowed_hosts = ["http://*:*"]
allow_private_networks = ["127.0.0.2/32"]
[plugins.config]
mode = "ok"
url = "{url}"
[plugins.delivery]
retry_schedule_s = [1]
"#,
            head = config_head(),
            c = component("hostile"),
        )
    };
    for (url, needle) in [
        (
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            "link-local",
        ),
        (format!("{}/private", rx.url()), "loopback"),
        (
            format!("http://localhost:{}/by-name", rx.addr.port()),
            "loopback",
        ),
    ] {
        let host = Host::start(&config(&url), &[]);
        host.ingest(r#"{"id":"evt-deny","name":"x"}"#).await;
        let v = host.settled_event("evt-deny", 30).await;
        let d = &v["deliveries"][0];
        assert_eq!(d["status"], "failed", "{url}: {v}");
        let attempt = &d["attempts"][0];
        assert_eq!(attempt["outcome"], "policy", "{url}: {v}");
        assert!(
            d["failure"].as_str().unwrap().contains(needle),
            "{url}: {v}"
        );
    }
    assert!(
        rx.requests().is_empty(),
        "nothing may reach a blocked address"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_shows_masked_requests_and_sends_and_stores_nothing() {
    let rx = TestReceiver::start().await;
    let host = game_host(&rx, "[1]");
    let (status, v) = host
        .admin(
            "POST",
            "/v1/plugins/game-reward/dry-run",
            &level_event("evt-dry", 15),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["decision"], "fire");
    let reqs = v["requests"].as_array().unwrap();
    assert_eq!(reqs.len(), 2);
    assert!(reqs.iter().all(|r| r["allowed"] == true), "{v}");
    assert_eq!(
        reqs[0]["request"]["url"],
        format!("{}/game/players/p-1/coins", rx.url())
    );
    let text = v.to_string();
    assert!(
        !text.contains(GAME_KEY) && text.contains("{{secret:GAME_API_KEY}}"),
        "{text}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(rx.requests().is_empty(), "dry-run must not send");
    assert_eq!(
        host.admin("GET", "/v1/events/evt-dry", "").await.0,
        404,
        "dry-run must not store"
    );
    let (status, v) = host.admin("POST", "/v1/plugins/nope/dry-run", "{}").await;
    assert_eq!(status, 404, "{v}");
    let (status, v) = host
        .admin("POST", "/v1/plugins/game-reward/dry-run", "{")
        .await;
    assert_eq!(status, 400, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn management_api_lists_plugins_deliveries_and_metrics() {
    let rx = TestReceiver::start().await;
    let host = game_host(&rx, "[1]");
    for i in 0..3 {
        host.ingest(&level_event(&format!("m-{i}"), 11)).await;
    }
    for i in 0..3 {
        host.settled_event(&format!("m-{i}"), 30).await;
    }
    let (status, v) = host.admin("GET", "/v1/plugins", "").await;
    assert_eq!(status, 200);
    let p = &v["plugins"][0];
    assert_eq!(p["name"], "game-reward");
    assert_eq!(p["component_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(p["invocations"]["fire"], 3);
    assert_eq!(p["deliveries"]["succeeded"], 6);

    // pagination: 6 deliveries, pages of 4
    let (_, page1) = host.admin("GET", "/v1/deliveries?limit=4", "").await;
    assert_eq!(page1["deliveries"].as_array().unwrap().len(), 4);
    let cursor = page1["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let (_, page2) = host
        .admin(
            "GET",
            &format!("/v1/deliveries?limit=4&cursor={cursor}"),
            "",
        )
        .await;
    assert_eq!(page2["deliveries"].as_array().unwrap().len(), 2);
    assert!(page2["next_cursor"].is_null());
    let mut ids: Vec<Value> = page1["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["deliveries"].as_array().unwrap())
        .map(|d| d["id"].clone())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 6);
    // One delivery by its id, as listed.
    let id = ids[0].as_str().unwrap();
    let (status, one) = host.admin("GET", &format!("/v1/deliveries/{id}"), "").await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one, page1["deliveries"][0], "the same view as in a page");
    assert!(one["leased_until_ms"].is_null(), "settled: not in flight");
    let (status, _) = host
        .admin("GET", "/v1/deliveries?limit=4&limit=5", "")
        .await;
    assert_eq!(status, 400, "a repeated query parameter");
    // Recent events, newest first, with where their work stands.
    let (status, events) = host
        .admin("GET", "/v1/events?name=level.reached&limit=2", "")
        .await;
    assert_eq!(status, 200, "{events}");
    let listed = events["events"].as_array().unwrap();
    let ids: Vec<_> = listed.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["m-2", "m-1"]);
    assert_eq!(listed[0]["status"], "done", "{events}");
    assert_eq!(listed[0]["deliveries"]["succeeded"], 2, "{events}");
    let cursor = events["next_cursor"].as_str().expect("a next page");
    let (_, rest) = host
        .admin(
            "GET",
            &format!("/v1/events?name=level.reached&cursor={cursor}"),
            "",
        )
        .await;
    assert_eq!(rest["events"][0]["id"], "m-0", "{rest}");
    assert!(rest["next_cursor"].is_null(), "{rest}");
    let (_, other) = host.admin("GET", "/v1/events?user_id=nobody", "").await;
    assert_eq!(other["events"], json!([]), "{other}");

    for bad in [
        "/v1/deliveries?status=lost",
        "/v1/deliveries?limit=0",
        "/v1/deliveries?colour=red",
        "/v1/deliveries?cursor=zzz",
        "/v1/events?limit=0",
        "/v1/events?status=done",
        "/v1/events?cursor=zzz",
    ] {
        let (status, v) = host.admin("GET", bad, "").await;
        assert_eq!(status, 400, "{bad}: {v}");
        assert!(v["error"].is_string());
    }

    let (status, metrics) = host.admin("GET", "/metrics", "").await;
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap().to_owned();
    assert!(
        metrics.contains("wasmhook_events_accepted_total 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "wasmhook_plugin_invocations_total{plugin=\"game-reward\",outcome=\"fire\"} 3"
        ),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("wasmhook_deliveries_total{plugin=\"game-reward\",outcome=\"succeeded\"} 6"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wasmhook_queue_depth{queue=\"deliveries\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wasmhook_attempt_seconds_count 6"),
        "{metrics}"
    );

    let (status, _, _) = support::http::request("GET", &host.url("/healthz"), &[], b"").await;
    assert_eq!(status, 200);
    let (status, _, body) = support::http::request("GET", &host.url("/readyz"), &[], b"").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let _ = ADMIN_TOKEN;
}

/// `examples/local.toml` as shipped (only its ports and paths moved into
/// the test's sandbox): every sample event in `examples/events/` reaches
/// the receiver with its secrets filled in and a valid signature.
#[tokio::test(flavor = "multi_thread")]
async fn the_local_example_config_delivers_every_sample_event() {
    let rx = TestReceiver::start().await;
    let root = support::repo_root();
    let text = std::fs::read_to_string(root.join("examples/local.toml"))
        .unwrap()
        .replace("127.0.0.1:9000", &rx.addr.to_string())
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace(
            "../target/plugins/",
            &format!("{}/", root.join("target/plugins").display()),
        )
        .replace("../target/demo/wasmhook.db", "wasmhook.db");
    let text = format!(
        "{text}\n[runtime]\ncache_dir = \"{}\"\n",
        support::cache_dir().display()
    );
    let env = [
        ("WASMHOOK_INGEST_TOKEN", support::host::INGEST_TOKEN),
        ("WASMHOOK_ADMIN_TOKEN", ADMIN_TOKEN),
        ("WASMHOOK_SIGNING_SECRET", SIGNING_SECRET),
        ("SLACK_WEBHOOK_PATH", "T0/B0/slack-SECRET"),
        ("LINE_CHANNEL_TOKEN", "line-SECRET"),
        ("MESSENGER_PAGE_TOKEN", "messenger-SECRET"),
        ("GAME_API_KEY", "game-SECRET"),
        ("PUSH_TOKEN", "push-SECRET"),
        ("LOB_API_KEY_BASIC", "lob-SECRET"),
        ("SALESFORCE_TOKEN", "salesforce-SECRET"),
        ("HUBSPOT_TOKEN", "hubspot-SECRET"),
        ("LOYALTY_API_KEY", "loyalty-SECRET"),
    ];
    let host = Host::start(&text, &env);
    // Every sample, as scripts/start.sh sends them: 9 webhooks. slack-notify
    // ×3 (order.paid, and order.shipped twice, since the messenger samples
    // are order.shipped too), LINE, game-reward ×2, Lob, Salesforce and
    // HubSpot; the first flight booking only counts (every = 2), and each
    // *-skip sample is skipped or routed nowhere.
    let mut samples: Vec<_> = std::fs::read_dir(root.join("examples/events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    samples.sort();
    assert_eq!(samples.len(), 15, "{samples:?}");
    for file in &samples {
        let body = std::fs::read_to_string(file).unwrap();
        let (status, v) = host.ingest(&body).await;
        assert_eq!(status, 202, "{}: {v}", file.display());
    }
    // A second booking with a new id (not one the samples use) fires the
    // loyalty discount.
    let second = std::fs::read_to_string(root.join("examples/events/airline-loyalty.json"))
        .unwrap()
        .replace("evt-booking-0001", "evt-booking-0101");
    assert_eq!(host.ingest(&second).await.0, 202);
    // The same login again (new event id): already seen, no second Lead.
    let again = std::fs::read_to_string(root.join("examples/events/login-to-salesforce.json"))
        .unwrap()
        .replace("evt-login-0001", "evt-login-0002");
    assert_eq!(host.ingest(&again).await.0, 202);
    let expected = 10;
    let seen = rx.wait_for(expected, 60).await;
    let find = |path: &str| {
        seen.iter()
            .find(|r| r.path.starts_with(path))
            .unwrap_or_else(|| panic!("no request to {path}: {seen:?}"))
    };
    assert_eq!(
        find("/slack/T0/B0/slack-SECRET").body_json()["channel"],
        "#orders"
    );
    assert_eq!(
        find("/line/push").header("authorization"),
        Some("Bearer line-SECRET")
    );
    // The retry key derived from the event id reaches LINE as the plugin set it.
    assert_eq!(
        find("/line/push").header("x-line-retry-key"),
        Some("95260e6d-b8d0-5634-8721-69776256d53d")
    );
    assert_eq!(
        find("/game/players/p-42/coins").header("authorization"),
        Some("Bearer game-SECRET")
    );
    assert_eq!(
        find("/push").header("authorization"),
        Some("Bearer push-SECRET")
    );
    // The push collapses on the device with any duplicate of the same event.
    let push = find("/push").body_json();
    assert_eq!(
        push["message"]["apns"]["headers"]["apns-collapse-id"],
        "reward-9569f1030fc97c2b"
    );
    assert_eq!(
        push["message"]["android"]["collapse_key"],
        "reward-9569f1030fc97c2b"
    );
    let key = SigningKey::from_whsec(SIGNING_SECRET).unwrap();
    for r in &seen {
        let ts = r.header("webhook-timestamp").unwrap();
        key.verify(
            r.header("webhook-id").unwrap(),
            ts,
            r.header("webhook-signature").unwrap(),
            &r.body,
            ts.parse().unwrap(),
            5,
        )
        .expect("signed");
    }
    for path in ["/lob/", "/salesforce/", "/hubspot/", "/loyalty/"] {
        find(path);
    }
    let skipped = host.settled_event("evt-level-0002", 30).await;
    assert_eq!(skipped["plugins"][0]["decision"], "skip");
    // Nothing beyond the expected: the second login sent no second Lead.
    host.settled_event("evt-login-0002", 30).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(rx.requests().len(), expected, "{:?}", rx.requests());
    assert!(!host.log().contains("-SECRET"), "a secret reached the log");
}
