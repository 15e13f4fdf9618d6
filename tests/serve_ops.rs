//! Operating `wasmhook serve`: kill -9 and restart loses nothing,
//! SIGHUP and changed components reload without dropping events, an
//! invalid new config is refused while the old one keeps running, SIGTERM
//! shuts down gracefully, and bad configs stop start-up with file:line.

#[path = "support/mod.rs"]
mod support;

use std::process::Command;

use serde_json::json;
use support::host::{Host, component, hostile_config};
use support::receiver::{Reply, TestReceiver};

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_and_restart_loses_no_event_and_no_scheduled_retry() {
    let rx = TestReceiver::start().await;
    // The first deliveries fail and get a retry scheduled in 2 s; the host
    // is killed while the rest are queued or in flight. (Fewer failures
    // than the unhealthy-host breaker's threshold, which would otherwise
    // pause the receiver for 30 s.)
    rx.script([Reply::status(503), Reply::status(503), Reply::status(503)]);
    let host = Host::start(&hostile_config(&rx.url(), "ok", "[2, 2, 2]", ""), &[]);
    let batch: Vec<_> = (0..50)
        .map(|i| json!({"id": format!("k-{i}"), "name": "x"}))
        .collect();
    let (status, _) = host
        .ingest(&serde_json::Value::Array(batch).to_string())
        .await;
    assert_eq!(status, 202);
    rx.wait_for(3, 30).await;
    host.signal("KILL");
    let host = host.restart();
    for i in 0..50 {
        let v = host.settled_event(&format!("k-{i}"), 60).await;
        assert_eq!(v["deliveries"].as_array().unwrap().len(), 1, "{v}");
        assert_eq!(v["deliveries"][0]["status"], "succeeded", "{v}");
    }
    let ok: std::collections::HashSet<String> = rx
        .requests()
        .iter()
        .filter(|r| r.header("webhook-id").is_some())
        .map(|r| r.body_json()["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ok.len(), 50, "every event reached the receiver");
}

/// A second `wasmhook serve` on a database another one has open is
/// refused at start-up, naming the process that has it; the first keeps
/// serving, and once it is gone (`kill -9` included) the file is free.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_host_on_the_same_database_is_refused() {
    let rx = TestReceiver::start().await;
    let host = Host::start(&hostile_config(&rx.url(), "ok", "[1]", ""), &[]);
    let (code, stderr) = host.another_expecting_failure(60);
    assert_eq!(code, Some(2), "start-up refused: {stderr}");
    let holder = format!("is in use by process {}", host.pid());
    assert!(stderr.contains(&holder), "{stderr}");
    assert!(stderr.contains("wasmhook.db-lock"), "{stderr}");
    assert!(
        stderr.contains("set store.path to another file"),
        "{stderr}"
    );

    assert_eq!(host.ingest(r#"{"id":"owner-1","name":"x"}"#).await.0, 202);
    rx.wait_for(1, 30).await;
    host.signal("KILL");
    let host = host.restart();
    assert_eq!(host.ingest(r#"{"id":"owner-2","name":"x"}"#).await.0, 202);
    rx.wait_for(2, 30).await;
}

/// `wasmhook ARGS --config CONFIG`, as an operator runs it.
fn run_with_config(args: &[&str], config: &std::path::Path) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmhook"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run wasmhook");
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (out.status.code(), text(out.stdout), text(out.stderr))
}

/// An ingest token read with `${file:PATH}` is rotated by rewriting the
/// file: within a second the new token is accepted and the old one
/// refused, with no restart and no signal, and neither reaches the log.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_read_from_a_file_rotates_when_the_file_changes() {
    let rx = TestReceiver::start().await;
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("ingest.token");
    std::fs::write(&token_file, "ingest-token-v1\n").unwrap();
    let literal = format!("ingest_tokens = [\"{}\"]", support::host::INGEST_TOKEN);
    let config = hostile_config(&rx.url(), "ok", "[1]", "");
    assert!(config.contains(&literal));
    let config = config.replace(
        &literal,
        &format!("ingest_tokens = [\"${{file:{}}}\"]", token_file.display()),
    );
    let host = Host::start(&config, &[]);
    let ingest = |token: &'static str, id: &'static str| {
        let url = host.url("/v1/events");
        async move {
            let body = format!(r#"{{"id":"{id}","name":"x"}}"#);
            let auth = format!("Bearer {token}");
            let headers = [
                ("authorization", auth.as_str()),
                ("content-type", "application/json"),
            ];
            support::http::request("POST", &url, &headers, body.as_bytes())
                .await
                .0
        }
    };
    assert_eq!(ingest("ingest-token-v1", "rot-a").await, 202);
    assert_eq!(ingest("ingest-token-v2", "rot-b").await, 401);

    let staged = secrets.path().join("ingest.token.new");
    std::fs::write(&staged, "ingest-token-v2\n").unwrap();
    std::fs::rename(&staged, &token_file).unwrap();
    host.wait_for_log("wasmhook reloaded (a secret file changed)", 30)
        .await;
    assert_eq!(ingest("ingest-token-v2", "rot-c").await, 202);
    assert_eq!(ingest("ingest-token-v1", "rot-d").await, 401);

    // Without a gap: the file lists the next token next to the current
    // one (one per line) until every client has switched.
    std::fs::write(&staged, "ingest-token-v3\ningest-token-v2\n").unwrap();
    std::fs::rename(&staged, &token_file).unwrap();
    support::eventually_async(30, || async {
        (ingest("ingest-token-v3", "rot-e").await == 202).then_some(())
    })
    .await
    .expect("the new token is accepted");
    assert_eq!(ingest("ingest-token-v2", "rot-f").await, 202);
    rx.wait_for(4, 30).await;
    for token in ["ingest-token-v1", "ingest-token-v2", "ingest-token-v3"] {
        assert!(!host.log().contains(token), "{token} in the log");
    }
}

/// `serve --check` builds every plugin of a config without touching the
/// store or the port, so it runs next to the host it checks a new config
/// for; a config that would not start fails it, naming the plugin.
#[tokio::test(flavor = "multi_thread")]
async fn serve_check_validates_a_config_next_to_the_running_host() {
    let rx = TestReceiver::start().await;
    let host = Host::start(&hostile_config(&rx.url(), "ok", "[1]", ""), &[]);
    let config = host.config_path();
    let (code, stdout, stderr) = run_with_config(&["serve", "--check"], &config);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains(": ok; 1 plugins (hostile)"), "{stdout}");

    let broken = host.dir.path().join("broken.wasm");
    std::fs::write(&broken, b"\0asm not really").unwrap();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(&component("hostile"), &broken.display().to_string());
    let next = host.dir.path().join("next.toml");
    std::fs::write(&next, text).unwrap();
    let (code, stdout, stderr) = run_with_config(&["serve", "--check"], &next);
    assert_eq!(code, Some(2), "{stdout}");
    assert!(
        stderr.contains("plugin hostile:") && stderr.contains("broken.wasm"),
        "{stderr}"
    );
    // The running host was not disturbed.
    assert_eq!(host.ingest(r#"{"id":"check-1","name":"x"}"#).await.0, 202);
    rx.wait_for(1, 30).await;
}

/// A backup taken while `serve` runs holds what was accepted before it;
/// a restore is refused while `serve` runs, and after it the host serves
/// the backup's events, with the database it replaced kept aside.
#[tokio::test(flavor = "multi_thread")]
async fn backup_while_serving_and_restore_after_stopping() {
    let rx = TestReceiver::start().await;
    let mut host = Host::start(&hostile_config(&rx.url(), "ok", "[1]", ""), &[]);
    let batch: Vec<_> = (0..10)
        .map(|i| json!({"id": format!("b-{i}"), "name": "x"}))
        .collect();
    let body = serde_json::Value::Array(batch).to_string();
    assert_eq!(host.ingest(&body).await.0, 202);
    rx.wait_for(10, 30).await;

    let config = host.config_path();
    let copy = host.dir.path().join("monday.db");
    let (code, stdout, stderr) = run_with_config(&["backup", copy.to_str().unwrap()], &config);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains(": 10 events"), "{stdout}");
    let (code, _, stderr) = run_with_config(&["backup", copy.to_str().unwrap()], &config);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("already exists"), "{stderr}");

    assert_eq!(host.ingest(r#"{"id":"after-1","name":"x"}"#).await.0, 202);
    let (code, _, stderr) = run_with_config(&["restore", copy.to_str().unwrap()], &config);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("in use by process {}", host.pid())),
        "{stderr}"
    );

    host.signal("TERM");
    assert_eq!(host.wait_exit(20), Some(0));
    let (code, stdout, stderr) = run_with_config(&["restore", copy.to_str().unwrap()], &config);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("10 events") && stdout.contains("wasmhook.db.replaced-"),
        "{stdout}"
    );

    let host = host.restart();
    let v = host.settled_event("b-3", 30).await;
    assert_eq!(v["deliveries"][0]["status"], "succeeded", "{v}");
    let (status, _) = host.admin("GET", "/v1/events/after-1", "").await;
    assert_eq!(status, 404, "accepted after the backup");
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_and_an_invalid_config_keeps_the_old_one() {
    let rx = TestReceiver::start().await;
    let host = Host::start(&hostile_config(&rx.url(), "skip", "[1]", ""), &[]);
    host.ingest(r#"{"id":"r-1","name":"x"}"#).await;
    assert_eq!(
        host.settled_event("r-1", 30).await["plugins"][0]["decision"],
        "skip"
    );

    std::fs::write(
        host.config_path(),
        hostile_config(&rx.url(), "ok", "[1]", ""),
    )
    .unwrap();
    host.reload().await;
    host.ingest(r#"{"id":"r-2","name":"x"}"#).await;
    assert_eq!(
        host.settled_event("r-2", 30).await["plugins"][0]["decision"],
        "fire"
    );

    std::fs::write(host.config_path(), "[server]\nlisten = 12\n").unwrap();
    host.signal("HUP");
    host.wait_for_log("reload (SIGHUP) refused", 30).await;
    assert!(
        host.log().contains("wasmhook.toml:2:10"),
        "the refusal names file and line:\n{}",
        host.log()
    );
    host.ingest(r#"{"id":"r-3","name":"x"}"#).await;
    assert_eq!(
        host.settled_event("r-3", 30).await["plugins"][0]["decision"],
        "fire",
        "old config still running"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_component_file_is_reloaded() {
    let rx = TestReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("plugin.wasm");
    std::fs::copy(support::plugin_path("hostile"), &plugin).unwrap();
    let config = hostile_config(&rx.url(), "ok", "[1]", "")
        .replace(&component("hostile"), &plugin.display().to_string());
    let host = Host::start(&config, &[]);
    let (_, before) = host.admin("GET", "/v1/plugins", "").await;
    std::fs::copy(support::plugin_path("slack-notify"), &plugin).unwrap();
    host.wait_for_log("a component file changed", 30).await;
    let (_, after) = host.admin("GET", "/v1/plugins", "").await;
    assert_ne!(
        before["plugins"][0]["component_sha256"],
        after["plugins"][0]["component_sha256"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_shuts_down_gracefully_and_keeps_queued_work() {
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(503));
    let mut host = Host::start(&hostile_config(&rx.url(), "ok", "[30]", ""), &[]);
    host.ingest(r#"{"id":"t-1","name":"x"}"#).await;
    rx.wait_for(1, 30).await;
    host.signal("TERM");
    assert_eq!(host.wait_exit(20), Some(0));
    assert!(host.log().contains("shutting down"));
    // the retry scheduled in 30 s is still there after a restart
    let host = host.restart();
    let (_, v) = host.admin("GET", "/v1/events/t-1", "").await;
    assert_eq!(v["deliveries"][0]["status"], "pending", "{v}");
    assert!(v["deliveries"][0]["next_attempt_ms"].as_u64().is_some());
}

/// SIGTERM while a delivery waits on a receiver much slower than the grace
/// period: the process ends within the grace period (plus the second it
/// gives to putting jobs back), not when the answer comes; the delivery it
/// abandoned is not lost, and the next start sends it at once (its lease
/// is a dead process's), not when the lease would have run out.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_slow_delivery_ends_within_the_grace_period() {
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(200).after(std::time::Duration::from_secs(30)));
    let config = hostile_config(&rx.url(), "ok", "[1]", "")
        .replace("shutdown_grace_s = 5", "shutdown_grace_s = 1")
        .replace("timeout_s = 2", "timeout_s = 60");
    let mut host = Host::start(&config, &[]);
    host.ingest(r#"{"id":"slow-1","name":"x"}"#).await;
    rx.wait_for(1, 30).await;
    let signalled = std::time::Instant::now();
    host.signal("TERM");
    assert_eq!(host.wait_exit(20), Some(0), "{}", host.log());
    let took = signalled.elapsed();
    assert!(
        took < std::time::Duration::from_secs(8),
        "shutdown took {took:?} with a 1 s grace period and a 30 s answer"
    );
    rx.set_default(Reply::status(200));
    let restarted = std::time::Instant::now();
    let host = host.restart();
    rx.wait_for(2, 30).await;
    assert!(
        restarted.elapsed() < std::time::Duration::from_secs(30),
        "sent again at once, not after its 65 s lease"
    );
    let v = host.settled_event("slow-1", 30).await;
    assert_eq!(v["deliveries"][0]["status"], "succeeded", "{v}");
}

/// Three concurrent batches of 1000 events: more jobs than the in-process
/// hand-off holds, so some are handed to the worker already leased and the
/// rest are stored unleased and leased from the store. Every event is
/// delivered exactly once either way (no job is both handed and leased).
#[tokio::test(flavor = "multi_thread")]
async fn a_burst_larger_than_the_handoff_is_delivered_exactly_once() {
    let rx = TestReceiver::start().await;
    let host = Host::start(&hostile_config(&rx.url(), "ok", "[1]", ""), &[]);
    let batch = |b: usize| {
        let batch: Vec<_> = (0..1000)
            .map(|i| json!({"id": format!("b-{b}-{i}"), "name": "x"}))
            .collect();
        serde_json::Value::Array(batch).to_string()
    };
    let (b0, b1, b2) = (batch(0), batch(1), batch(2));
    let (s0, s1, s2) = tokio::join!(host.ingest(&b0), host.ingest(&b1), host.ingest(&b2));
    let sent = [s0.0, s1.0, s2.0];
    assert_eq!(sent, [202, 202, 202]);
    rx.wait_for(3000, 120).await;
    // Give a duplicate time to show up.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let requests = rx.requests();
    let events: std::collections::HashSet<String> = requests
        .iter()
        .map(|r| r.body_json()["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(events.len(), 3000, "every event delivered");
    assert_eq!(requests.len(), 3000, "none delivered twice");
}

/// SIGTERM in the middle of a burst: the work nobody started, including
/// jobs already handed to the workers in process, is given back to the
/// store rather than left leased, and a restart delivers all of it.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_burst_gives_back_handed_work() {
    let rx = TestReceiver::start().await;
    // Slow answers keep work queued when the signal comes.
    rx.set_default(Reply::status(200).after(std::time::Duration::from_millis(20)));
    let mut host = Host::start(&hostile_config(&rx.url(), "ok", "[1]", ""), &[]);
    let batch: Vec<_> = (0..1000)
        .map(|i| json!({"id": format!("g-{i}"), "name": "x"}))
        .collect();
    let (status, _) = host
        .ingest(&serde_json::Value::Array(batch).to_string())
        .await;
    assert_eq!(status, 202);
    rx.wait_for(1, 30).await;
    host.signal("TERM");
    assert_eq!(host.wait_exit(20), Some(0), "{}", host.log());
    let delivered_before = rx.requests().len();
    assert!(delivered_before < 1000, "the signal came mid-burst");

    let db = rusqlite::Connection::open(host.dir.path().join("wasmhook.db")).unwrap();
    let leased: i64 = db
        .query_row(
            "SELECT (SELECT COUNT(*) FROM invocations WHERE status = 'pending' AND leased_until IS NOT NULL)
                  + (SELECT COUNT(*) FROM deliveries WHERE status = 'pending' AND leased_until IS NOT NULL)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(leased, 0, "no job is left leased after a clean shutdown");
    drop(db);

    let host = host.restart();
    rx.set_default(Reply::status(200));
    rx.wait_for(1000, 60).await;
    let events: std::collections::HashSet<String> = rx
        .requests()
        .iter()
        .map(|r| r.body_json()["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        events.len(),
        1000,
        "every event delivered after the restart"
    );
    drop(host);
}

/// `[store] retention_s`: finished events are deleted once older than the
/// retention (with their deliveries, which the API then no longer finds),
/// while an old event whose delivery still waits for a retry is kept.
#[tokio::test(flavor = "multi_thread")]
async fn retention_deletes_finished_events_and_keeps_pending_ones() {
    let rx = TestReceiver::start().await;
    // The first delivery fails and waits 60 s for its retry; the rest succeed.
    rx.script([Reply::status(503)]);
    let config = hostile_config(&rx.url(), "ok", "[60]", "").replace(
        "path = \"wasmhook.db\"",
        "path = \"wasmhook.db\"\nretention_s = 1",
    );
    let host = Host::start(&config, &[]);
    host.ingest(r#"{"id":"keep","name":"x"}"#).await;
    rx.wait_for(1, 30).await;
    let batch: Vec<_> = (0..20)
        .map(|i| json!({"id": format!("old-{i}"), "name": "x"}))
        .collect();
    host.ingest(&serde_json::Value::Array(batch).to_string())
        .await;
    rx.wait_for(21, 30).await;
    let (_, done) = host.admin("GET", "/v1/events/old-0", "").await;
    let delivery = done["deliveries"][0]["id"].as_str().unwrap().to_owned();

    let pruned = support::eventually_async(30, || async {
        let (_, metrics) = host.admin("GET", "/metrics", "").await;
        let text = metrics.as_str().unwrap_or_default().to_owned();
        text.contains("wasmhook_events_pruned_total 20")
            .then_some(())
    })
    .await;
    assert!(pruned.is_some(), "the 20 finished events were not pruned");
    for i in 0..20 {
        let (status, _) = host.admin("GET", &format!("/v1/events/old-{i}"), "").await;
        assert_eq!(status, 404, "old-{i} pruned");
    }
    let (status, gone) = host
        .admin("GET", &format!("/v1/deliveries/{delivery}"), "")
        .await;
    assert_eq!(status, 404, "its delivery went with it");
    assert!(
        gone["error"]
            .as_str()
            .unwrap()
            .contains("no delivery with id"),
        "{gone}"
    );
    let (status, kept) = host.admin("GET", "/v1/events/keep", "").await;
    assert_eq!(status, 200, "an event with a pending retry is kept: {kept}");
    assert_eq!(kept["deliveries"][0]["status"], "pending", "{kept}");
}

#[test]
fn bad_configs_stop_start_up_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    for (text, needle) in [
        (
            "[server]\nlisten = \"127.0.0.1:0\"\n[store]\npath = \"x.db\"\n",
            "no tokens",
        ),
        (
            "[auth]\ninsecure_no_auth = true\n[server]\nlisen = \"x\"\n",
            "bad.toml:4:1",
        ),
        (
            "[auth]\ningest_tokens = [\"${WASMHOOK_TEST_UNSET_VAR}\"]\nadmin_tokens = [\"a\"]\n",
            "WASMHOOK_TEST_UNSET_VAR",
        ),
    ] {
        std::fs::write(&path, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_wasmhook"))
            .args(["serve", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
}

/// Two plugins on every event: `healthy` (POSTs to the receiver) and
/// `flaky` in `flaky_mode`.
fn breaker_config(rx: &TestReceiver, flaky_mode: &str) -> String {
    let flaky = format!(
        r#"
[[plugins]]
name = "flaky"
component = "{c}"
events = ["*"]
[plugins.config]
mode = "{flaky_mode}"
count = "10"
"#,
        c = component("hostile"),
    );
    hostile_config(&rx.url(), "ok", "[1]", "").replace("name = \"hostile\"", "name = \"healthy\"")
        + &flaky
}

/// Ingest events `prefix-0..n`, all named "x", in one batch.
async fn ingest_batch(host: &Host, prefix: &str, n: usize) {
    let batch: Vec<_> = (0..n)
        .map(|i| json!({"id": format!("{prefix}-{i}"), "name": "x"}))
        .collect();
    let (status, body) = host
        .ingest(&serde_json::Value::Array(batch).to_string())
        .await;
    assert_eq!(status, 202, "{body}");
}

/// The flaky plugin's `/v1/plugins` view once none of its invocations is
/// pending, or `None` after `secs` seconds.
async fn flaky_settled(host: &Host, secs: u64) -> Option<serde_json::Value> {
    support::eventually_async(secs, || async {
        let (_, v) = host.admin("GET", "/v1/plugins", "").await;
        let flaky = plugin_view(&v, "flaky").clone();
        (flaky["invocations"]["pending"] == 0).then_some(flaky)
    })
    .await
}

/// Ingest `events` events in one batch, wait until the "flaky" plugin has
/// no invocation pending (every parked one ran after the probes), check
/// its breaker is healthy again, and return its `/v1/plugins` view and
/// the `/metrics` text.
async fn run_flaky_until_settled(host: &Host, events: u64) -> (serde_json::Value, String) {
    ingest_batch(host, "f", events as usize).await;
    let view = flaky_settled(host, 60)
        .await
        .expect("every parked invocation ran after the probes");
    assert_eq!(view["breaker"]["state"], "healthy", "{view}");
    let (_, metrics) = host.admin("GET", "/metrics", "").await;
    (view, metrics.as_str().unwrap().to_owned())
}

fn plugin_view<'a>(plugins: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    plugins["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no plugin {name} in {plugins}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_that_keeps_trapping_is_paused_and_its_events_wait() {
    const EVENTS: usize = 30;
    let rx = TestReceiver::start().await;
    let host = Host::start(&breaker_config(&rx, "trap"), &[]);
    ingest_batch(&host, "b", EVENTS).await;
    // The healthy plugin is not held up by its failing neighbour.
    rx.wait_for(EVENTS, 60).await;

    // The trapping plugin ran until its breaker opened (a few more may
    // have been running at that moment), then its jobs went back to the
    // queue instead of burning the executors. The breaker hears of a run
    // before its decision is committed, so wait for the 10th error too.
    let view = support::eventually_async(30, || async {
        let (_, v) = host.admin("GET", "/v1/plugins", "").await;
        let flaky = plugin_view(&v, "flaky").clone();
        (flaky["breaker"]["state"] == "paused"
            && flaky["invocations"]["error"].as_u64() >= Some(10))
        .then_some(flaky)
    })
    .await
    .expect("the trapping plugin is paused");
    let errors = view["invocations"]["error"].as_u64().unwrap();
    assert!((10..EVENTS as u64).contains(&errors), "{view}");
    assert_eq!(
        view["invocations"]["pending"].as_u64().unwrap(),
        EVENTS as u64 - errors,
        "{view}"
    );
    assert!(
        view["breaker"]["resume_in_ms"].as_u64().unwrap() <= 5_000,
        "{view}"
    );
    let (_, metrics) = host.admin("GET", "/metrics", "").await;
    let metrics = metrics.as_str().unwrap().to_owned();
    assert!(
        metrics.contains("wasmhook_plugin_pauses_total{plugin=\"flaky\"} 1"),
        "{metrics}"
    );
    assert!(host.log().contains("plugin paused"), "{}", host.log());

    // The operator fixes the plugin; the reload makes the waiting events
    // due at once, they run on the new version and nothing was lost.
    std::fs::write(host.config_path(), breaker_config(&rx, "skip")).unwrap();
    host.reload().await;
    let Some(view) = flaky_settled(&host, 60).await else {
        let (_, v) = host.admin("GET", "/v1/plugins", "").await;
        panic!(
            "the parked invocations did not run after the reload: {}\n{}",
            plugin_view(&v, "flaky"),
            host.log()
        );
    };
    assert_eq!(view["invocations"]["error"].as_u64().unwrap(), errors);
    assert_eq!(
        view["invocations"]["skip"].as_u64().unwrap(),
        EVENTS as u64 - errors
    );
    assert_eq!(view["breaker"]["state"], "healthy", "{view}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_plugin_is_probed_after_its_pause_and_resumes_with_every_event() {
    const EVENTS: u64 = 40;
    let rx = TestReceiver::start().await;
    // `trap-first`: its first 10 calls trap, later ones succeed.
    let host = Host::start(&breaker_config(&rx, "trap-first"), &[]);
    // After 10 traps the plugin is paused and its other events are parked;
    // 5 s later one of them probes, succeeds, and the rest follow.
    let (view, metrics) = run_flaky_until_settled(&host, EVENTS).await;
    // A failing plugin runs one job at a time, so exactly its first 10
    // calls failed and the pause stopped the rest from failing.
    assert_eq!(view["invocations"]["error"], 10, "{view}");
    assert_eq!(view["invocations"]["skip"], EVENTS - 10, "{view}");
    assert!(
        metrics.contains("wasmhook_plugin_pauses_total{plugin=\"flaky\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wasmhook_plugin_invocations_deferred_total{plugin=\"flaky\"}"),
        "{metrics}"
    );
    rx.wait_for(EVENTS as usize, 30).await;
    // The store forgot the pause when the probe succeeded: a restart does
    // not pause the plugin again.
    let host = host.restart();
    assert!(!host.log().contains("still paused"), "{}", host.log());
    let (_, v) = host.admin("GET", "/v1/plugins", "").await;
    assert_eq!(
        plugin_view(&v, "flaky")["breaker"]["state"],
        "healthy",
        "{v}"
    );
}

/// `[breakers.plugins]` tunes the plugin breaker: with a threshold of 3
/// and 1 s pauses, a plugin whose first 6 calls trap is paused after its
/// 3rd, and each of the next 3 failures is a failed probe that pauses it
/// again (with the default threshold of 10 it would never pause).
#[tokio::test(flavor = "multi_thread")]
async fn breakers_plugins_sets_the_pause_threshold_and_length() {
    const EVENTS: u64 = 20;
    let rx = TestReceiver::start().await;
    let config = breaker_config(&rx, "trap-first").replace("count = \"10\"", "count = \"6\"")
        + "\n[breakers.plugins]\nfailure_threshold = 3\npause_s = 1\nmax_pause_s = 1\n";
    let host = Host::start(&config, &[]);
    let (view, metrics) = run_flaky_until_settled(&host, EVENTS).await;
    assert_eq!(view["invocations"]["error"], 6, "{view}");
    assert_eq!(view["invocations"]["skip"], EVENTS - 6, "{view}");
    assert!(
        metrics.contains("wasmhook_plugin_pauses_total{plugin=\"flaky\"} 4\n"),
        "{metrics}"
    );
}

/// A reload that leaves a paused plugin as it was (here: one more plugin
/// is added) keeps it paused with its events parked, instead of letting it
/// loose on its backlog again; its neighbour keeps delivering throughout.
/// A reload that removes it settles its parked jobs.
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_that_leaves_a_paused_plugin_unchanged_keeps_it_paused() {
    const EVENTS: usize = 10;
    let rx = TestReceiver::start().await;
    let config = breaker_config(&rx, "trap")
        + "\n[breakers.plugins]\nfailure_threshold = 3\npause_s = 300\nmax_pause_s = 300\n";
    let host = Host::start(&config, &[]);
    let ingest = |from: usize| {
        let batch: Vec<_> = (from..from + EVENTS)
            .map(|i| json!({"id": format!("r-{i}"), "name": "x"}))
            .collect();
        serde_json::Value::Array(batch).to_string()
    };
    assert_eq!(host.ingest(&ingest(0)).await.0, 202);
    rx.wait_for(EVENTS, 60).await;
    let paused = |v: &serde_json::Value| {
        let flaky = plugin_view(v, "flaky").clone();
        (flaky["breaker"]["state"] == "paused" && flaky["invocations"]["pending"] == 7)
            .then_some(flaky)
    };
    let before = support::eventually_async(30, || async {
        paused(&host.admin("GET", "/v1/plugins", "").await.1)
    })
    .await
    .expect("the trapping plugin is paused after 3 runs, one at a time");
    assert_eq!(before["invocations"]["error"], 3, "{before}");

    // A second plugin that traps too, so that one plugin is still paused
    // when the first is removed below.
    let bystander = format!(
        "\n[[plugins]]\nname = \"bystander\"\ncomponent = \"{}\"\nevents = [\"x\"]\n[plugins.config]\nmode = \"trap\"\n",
        component("hostile")
    );
    std::fs::write(host.config_path(), config.clone() + &bystander).unwrap();
    host.reload().await;

    // The log says which plugins kept their history.
    assert!(
        host.log()
            .contains("3 plugins; unchanged, run history kept: flaky (paused), healthy"),
        "{}",
        host.log()
    );
    assert_eq!(host.ingest(&ingest(EVENTS)).await.0, 202);
    rx.wait_for(2 * EVENTS, 60).await;
    // Long enough for the tending loop (every 100 ms) to have released the
    // parked jobs, had the reload reset the plugin.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let (_, v) = host.admin("GET", "/v1/plugins", "").await;
    let flaky = plugin_view(&v, "flaky");
    assert_eq!(flaky["breaker"]["state"], "paused", "{flaky}");
    assert_eq!(flaky["invocations"]["error"], 3, "{flaky}");
    assert_eq!(
        flaky["invocations"]["pending"],
        2 * EVENTS as u64 - 3,
        "{flaky}"
    );
    assert_eq!(
        flaky["invocations"]["parked"], flaky["invocations"]["pending"],
        "every waiting job is parked: {flaky}"
    );
    let metrics = host.metrics().await;
    assert!(
        metrics.contains("wasmhook_plugin_pauses_total{plugin=\"flaky\"} 1\n"),
        "{metrics}"
    );

    // Removing the paused plugin releases its parked jobs, which settle as
    // no longer configured instead of waiting for ever, although another
    // plugin is still paused.
    support::eventually_async(30, || async {
        let (_, v) = host.admin("GET", "/v1/plugins", "").await;
        (plugin_view(&v, "bystander")["breaker"]["state"] == "paused").then_some(())
    })
    .await
    .expect("the bystander is paused");
    let without_flaky = hostile_config(&rx.url(), "ok", "[1]", "")
        .replace("name = \"hostile\"", "name = \"healthy\"")
        + &bystander
        + "\n[breakers.plugins]\nfailure_threshold = 3\npause_s = 300\nmax_pause_s = 300\n";
    std::fs::write(host.config_path(), without_flaky).unwrap();
    host.signal("HUP");
    let last = format!("/v1/events/r-{}", 2 * EVENTS - 1);
    let settled = support::eventually_async(30, || async {
        let (_, v) = host.admin("GET", &last, "").await;
        let flaky = v["plugins"]
            .as_array()?
            .iter()
            .find(|p| p["plugin"] == "flaky")?
            .clone();
        (flaky["status"] != "pending").then_some(flaky)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "the removed plugin's parked jobs stayed parked:\n{}",
            host.log()
        )
    });
    assert_eq!(settled["decision"], "error", "{settled}");
    assert_eq!(
        settled["error"], "plugin flaky is no longer configured",
        "{settled}"
    );
}

/// A plugin paused before a restart (kill -9) is still paused after it,
/// with the pause's time left counted across the downtime: its parked
/// events stay parked, it does not fail again, and its neighbour delivers
/// throughout. Had the pause been forgotten, the restart would make its
/// backlog due, and it would trap three more times before pausing again.
/// Restarted with a changed plugin (new settings), it starts afresh and
/// runs its whole backlog.
#[tokio::test(flavor = "multi_thread")]
async fn a_paused_plugin_stays_paused_across_a_restart_unless_it_changed() {
    const EVENTS: usize = 10;
    let rx = TestReceiver::start().await;
    let tuning = "\n[breakers.plugins]\nfailure_threshold = 3\npause_s = 300\nmax_pause_s = 300\n";
    let host = Host::start(&(breaker_config(&rx, "trap") + tuning), &[]);
    ingest_batch(&host, "p", EVENTS).await;
    rx.wait_for(EVENTS, 60).await;
    support::eventually_async(30, || async {
        let (_, v) = host.admin("GET", "/v1/plugins", "").await;
        let flaky = plugin_view(&v, "flaky");
        (flaky["breaker"]["state"] == "paused" && flaky["invocations"]["parked"] == 7).then_some(())
    })
    .await
    .expect("the trapping plugin is paused after 3 runs, one at a time");

    let host = host.restart();
    assert!(
        host.log()
            .contains("still paused from before the restart (their runs kept failing): flaky"),
        "{}",
        host.log()
    );
    ingest_batch(&host, "q", EVENTS).await;
    rx.wait_for(2 * EVENTS, 60).await;
    // Long enough for the tending loop to release the parked jobs and for
    // three of them to trap, had the pause been forgotten.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let (_, v) = host.admin("GET", "/v1/plugins", "").await;
    let flaky = plugin_view(&v, "flaky");
    assert_eq!(flaky["breaker"]["state"], "paused", "{flaky}");
    let left = flaky["breaker"]["resume_in_ms"].as_u64().unwrap();
    assert!(
        (200_000..300_000).contains(&left),
        "the pause goes on where it was: {flaky}"
    );
    assert_eq!(flaky["invocations"]["error"], 3, "{flaky}");
    assert_eq!(
        flaky["invocations"]["parked"],
        2 * EVENTS as u64 - 3,
        "{flaky}"
    );
    let (_, metrics) = host.admin("GET", "/metrics", "").await;
    assert!(
        !metrics
            .as_str()
            .unwrap()
            .contains("wasmhook_plugin_pauses_total{plugin=\"flaky\"}"),
        "no new pause in the new process: {metrics}"
    );

    // Fixed while the host was down: a new run identity, so the pause is
    // forgotten and every parked event runs.
    std::fs::write(host.config_path(), breaker_config(&rx, "skip") + tuning).unwrap();
    let host = host.restart();
    assert!(!host.log().contains("still paused"), "{}", host.log());
    let view = flaky_settled(&host, 60)
        .await
        .expect("the changed plugin runs its parked events");
    assert_eq!(view["invocations"]["error"], 3, "{view}");
    assert_eq!(view["invocations"]["skip"], 2 * EVENTS as u64 - 3, "{view}");
    assert_eq!(view["breaker"]["state"], "healthy", "{view}");
    // And the forgotten pause stays forgotten.
    let host = host.restart();
    assert!(!host.log().contains("still paused"), "{}", host.log());
}

/// `--log-format json` (here through `WASMHOOK_LOG_FORMAT`): every line
/// the host writes is one JSON object with a timestamp, a level and a
/// message: the lines `serve` always prints (listening, reloaded, shutting
/// down) and `tracing`'s events, whose fields are top-level keys.
#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_per_line_with_the_fields_at_the_top() {
    let rx = TestReceiver::start().await;
    let config = breaker_config(&rx, "trap")
        + "\n[breakers.plugins]\nfailure_threshold = 3\npause_s = 300\nmax_pause_s = 300\n";
    let mut host = Host::start(&config, &[("WASMHOOK_LOG_FORMAT", "json")]);
    ingest_batch(&host, "j", 5).await;
    host.wait_for_log("plugin paused", 30).await;
    host.reload().await;
    host.signal("TERM");
    assert_eq!(host.wait_exit(30), Some(0), "{}", host.log());

    let log = host.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for line in &lines {
        assert!(line["timestamp"].is_string(), "{line}");
        assert!(line["level"].is_string(), "{line}");
        assert!(line["message"].is_string(), "{line}");
    }
    let find = |start: &str| {
        lines
            .iter()
            .find(|l| l["message"].as_str().unwrap().starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in\n{log}"))
    };
    let listening = find("wasmhook listening on 127.0.0.1:");
    assert_eq!(listening["level"], "INFO", "{listening}");
    assert_eq!(listening["target"], "wasmhook::notice", "{listening}");
    let paused = find("plugin paused");
    assert_eq!(paused["level"], "WARN", "{paused}");
    assert_eq!(paused["plugin"], "flaky", "{paused}");
    assert_eq!(paused["pause_s"], 300, "{paused}");
    assert_eq!(find("wasmhook reloaded (SIGHUP)")["level"], "INFO");
    assert_eq!(find("wasmhook shutting down")["level"], "INFO");
}

/// A reload that leaves `max_per_second_per_host` as it was keeps each
/// destination's schedule: at 1 request a second, three events take the
/// turns at 0, 1 and 2 s, and an event ingested right after the reload
/// still queues behind them (had the reload reset the limit, it would go
/// at once).
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_keeps_the_rate_limits_schedule() {
    let rx = TestReceiver::start().await;
    let config = hostile_config(&rx.url(), "ok", "[1]", "").replace(
        "timeout_s = 2\n",
        "timeout_s = 2\nmax_per_second_per_host = 1\n",
    );
    let host = Host::start(&config, &[]);
    ingest_batch(&host, "a", 3).await;
    rx.wait_for(1, 10).await;
    host.reload().await;
    let (status, _) = host.ingest(r#"{"id":"late","name":"x"}"#).await;
    assert_eq!(status, 202);
    let got = rx.wait_for(4, 30).await;
    let first = got.iter().map(|r| r.at).min().unwrap();
    let late = got
        .iter()
        .find(|r| r.body_json()["id"] == "late")
        .expect("the late event arrived");
    let after = late.at.duration_since(first);
    assert!(
        after >= std::time::Duration::from_millis(2000),
        "the late event went {after:?} after the first, ahead of the turns handed out before the reload"
    );
}

/// After a fix, `POST /v1/plugins/{name}/replay` runs a plugin's failed
/// decisions again: 5 events trap in "flaky" (below its pause threshold),
/// the fixed version is deployed (a reload), and the replay requeues
/// exactly those 5, which the new version decides (skip). Its neighbour's
/// decisions and deliveries are untouched, a second replay finds nothing,
/// bad bodies are refused naming the field, and an unknown plugin is 404.
#[tokio::test(flavor = "multi_thread")]
async fn replay_runs_a_plugins_failed_decisions_again_after_a_fix() {
    const EVENTS: usize = 5;
    let rx = TestReceiver::start().await;
    let host = Host::start(&breaker_config(&rx, "trap"), &[]);
    ingest_batch(&host, "f", EVENTS).await;
    rx.wait_for(EVENTS, 30).await;
    let before = flaky_settled(&host, 30).await.expect("flaky decided");
    assert_eq!(before["invocations"]["error"], EVENTS as u64, "{before}");

    std::fs::write(host.config_path(), breaker_config(&rx, "skip")).unwrap();
    host.reload().await;

    let (status, v) = host.admin("POST", "/v1/plugins/flaky/replay", "").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v, json!({"plugin": "flaky", "requeued": EVENTS}));
    let after = flaky_settled(&host, 30)
        .await
        .expect("replayed decisions ran");
    assert_eq!(after["invocations"]["error"], 0, "{after}");
    assert_eq!(after["invocations"]["skip"], EVENTS as u64, "{after}");
    let event = host.settled_event("f-0", 30).await;
    let flaky = event["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["plugin"] == "flaky")
        .unwrap();
    assert_eq!(flaky["decision"], "skip", "{event}");
    let (_, plugins) = host.admin("GET", "/v1/plugins", "").await;
    let healthy = plugin_view(&plugins, "healthy");
    assert_eq!(healthy["invocations"]["fire"], EVENTS as u64, "{healthy}");
    assert_eq!(
        healthy["deliveries"]["succeeded"], EVENTS as u64,
        "{healthy}"
    );
    assert_eq!(rx.requests().len(), EVENTS, "nothing sent again");

    let metrics = host.metrics().await;
    assert!(
        metrics.contains("wasmhook_plugin_invocations_replayed_total{plugin=\"flaky\"} 5\n"),
        "{metrics}"
    );
    let (status, v) = host
        .admin(
            "POST",
            "/v1/plugins/flaky/replay",
            r#"{"decisions":["error"]}"#,
        )
        .await;
    assert_eq!((status, &v["requeued"]), (200, &json!(0)), "{v}");
    let (status, v) = host
        .admin(
            "POST",
            "/v1/plugins/flaky/replay",
            r#"{"decisions":["fire"]}"#,
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("decisions[0]: \"fire\""),
        "{v}"
    );
    let (status, v) = host.admin("POST", "/v1/plugins/nope/replay", "").await;
    assert_eq!(status, 404, "{v}");
    assert!(v["error"].as_str().unwrap().contains("nope"), "{v}");
}

/// An operator's pause: `POST /v1/plugins/hostile/pause` stops the plugin
/// (new events wait parked, a retry already scheduled is not sent),
/// `GET /v1/plugins` shows it with the reason, it outlasts a reload and a
/// kill -9, and `resume` lets everything through, each event once.
#[tokio::test(flavor = "multi_thread")]
async fn an_operator_pause_holds_a_plugin_across_reload_and_restart_until_resumed() {
    let rx = TestReceiver::start().await;
    rx.script([Reply::status(503)]);
    let host = Host::start(&hostile_config(&rx.url(), "ok", "[1]", ""), &[]);
    assert_eq!(host.ingest(r#"{"id":"p-0","name":"x"}"#).await.0, 202);
    rx.wait_for(1, 30).await;

    let (status, v) = host
        .admin(
            "POST",
            "/v1/plugins/hostile/pause",
            r#"{"reason":"CRM migration"}"#,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["paused_by_operator"]["reason"], "CRM migration", "{v}");
    assert!(v["paused_by_operator"]["since_ms"].as_u64().unwrap() > 0);
    ingest_batch(&host, "p", 5).await; // p-0 again (a duplicate) and p-1..p-4
    // The retry of p-0 was due after about a second.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(rx.requests().len(), 1, "nothing sent while paused");
    let held = |v: &serde_json::Value| {
        let p = plugin_view(v, "hostile");
        (p["paused_by_operator"]["reason"] == "CRM migration" && p["invocations"]["parked"] == 4)
            .then_some(())
    };
    support::eventually_async(10, || async {
        held(&host.admin("GET", "/v1/plugins", "").await.1)
    })
    .await
    .expect("held with its 4 new events parked");

    host.reload().await;
    let host = host.restart();
    assert!(
        host.log()
            .contains("paused by the operator (POST /v1/plugins/{name}/resume to resume): hostile"),
        "{}",
        host.log()
    );
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(rx.requests().len(), 1, "nothing sent after the restart");
    assert_eq!(
        held(&host.admin("GET", "/v1/plugins", "").await.1),
        Some(())
    );
    let metrics = host.metrics().await;
    assert!(
        metrics.contains("wasmhook_plugin_paused_by_operator{plugin=\"hostile\"} 1\n"),
        "{metrics}"
    );

    let (status, v) = host.admin("POST", "/v1/plugins/hostile/resume", "").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["paused_by_operator"], serde_json::Value::Null, "{v}");
    assert_eq!(v["resumed_jobs"], 5, "4 invocations and the retry: {v}");
    let got = rx.wait_for(6, 30).await;
    for i in 0..5 {
        let e = host.settled_event(&format!("p-{i}"), 30).await;
        assert_eq!(e["deliveries"][0]["status"], "succeeded", "{e}");
    }
    let ids: std::collections::HashSet<_> =
        got.iter().filter_map(|r| r.header("webhook-id")).collect();
    assert_eq!((got.len(), ids.len()), (6, 5), "one retry, then each once");
    let (_, v) = host.admin("GET", "/v1/plugins", "").await;
    assert_eq!(
        plugin_view(&v, "hostile")["paused_by_operator"],
        serde_json::Value::Null
    );

    let (status, _) = host.admin("POST", "/v1/plugins/nope/pause", "").await;
    assert_eq!(status, 404);
    let (status, v) = host
        .admin("POST", "/v1/plugins/hostile/pause", r#"{"reason":1}"#)
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("reason"), "{v}");
}

/// A destination whose deliveries keep failing is paused, and the operator
/// can see it: a warning naming it, `/v1/plugins` listing it with the time
/// left, and `/metrics` counting the pause and the deliveries it deferred.
/// A reload that leaves its settings alone keeps it paused.
#[tokio::test(flavor = "multi_thread")]
async fn a_paused_destination_shows_in_the_api_metrics_and_log_and_survives_a_reload() {
    let rx = TestReceiver::start().await;
    rx.set_default(Reply::status(503));
    let config = hostile_config(&rx.url(), "ok", "[1, 1, 1, 1, 1]", "")
        + "\n[breakers.destinations]\nfailure_threshold = 2\npause_s = 300\nmax_pause_s = 300\n";
    let host = Host::start(&config, &[]);
    for id in ["d-1", "d-2"] {
        let (status, _) = host
            .ingest(&json!({"id": id, "name": "x"}).to_string())
            .await;
        assert_eq!(status, 202);
    }
    rx.wait_for(2, 30).await;
    let unhealthy = |v: &serde_json::Value| {
        plugin_view(v, "hostile")["unhealthy_destinations"]
            .as_array()
            .unwrap()
            .clone()
    };
    let listed = support::eventually_async(30, || async {
        let list = unhealthy(&host.admin("GET", "/v1/plugins", "").await.1);
        (!list.is_empty()).then_some(list)
    })
    .await
    .expect("the failing destination is listed");
    let port = rx.url().rsplit(':').next().unwrap().to_owned();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["destination"], format!("127.0.0.1:{port}"));
    assert_eq!(listed[0]["state"], "paused");
    assert_eq!(listed[0]["pause_ms"], 300_000);
    assert!(host.log().contains("destination paused"), "{}", host.log());

    // A third event is not sent while the destination is paused: its
    // delivery (and the retries of the first two) wait in the queue.
    host.ingest(&json!({"id": "d-3", "name": "x"}).to_string())
        .await;
    let metrics = support::eventually_async(30, || async {
        let (_, m) = host.admin("GET", "/metrics", "").await;
        let m = m.as_str().unwrap().to_owned();
        m.contains("wasmhook_deliveries_deferred_total{plugin=\"hostile\"} 3\n")
            .then_some(m)
    })
    .await
    .expect("the third delivery and two retries were deferred");
    assert!(
        metrics.contains("wasmhook_destination_pauses_total{plugin=\"hostile\"} 1\n"),
        "{metrics}"
    );
    assert_eq!(rx.requests().len(), 2, "nothing more was sent");

    // Reloading an unchanged plugin keeps its destination paused.
    host.reload().await;
    let after = unhealthy(&host.admin("GET", "/v1/plugins", "").await.1);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0]["state"], "paused", "{after:?}");
    assert_eq!(rx.requests().len(), 2, "nothing more was sent");
}

/// `breaker_config` with `extra` lines added to the flaky plugin's table.
fn flaky_with(rx: &TestReceiver, mode: &str, extra: &str) -> String {
    breaker_config(rx, mode).replace(
        "name = \"flaky\"\n",
        &format!("name = \"flaky\"\n{extra}\n"),
    )
}

/// The flaky plugin's invocation of each event `prefix-0..n`, from the
/// event API: `(error_kind, error)`.
async fn flaky_errors(host: &Host, prefix: &str, n: usize) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    for i in 0..n {
        let (status, v) = host
            .admin("GET", &format!("/v1/events/{prefix}-{i}"), "")
            .await;
        assert_eq!(status, 200, "{v}");
        let inv = v["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["plugin"] == "flaky")
            .unwrap_or_else(|| panic!("{v}"))
            .clone();
        assert_eq!(inv["decision"], "error", "{inv}");
        errors.push((
            inv["error_kind"].as_str().unwrap().to_owned(),
            inv["error"].as_str().unwrap().to_owned(),
        ));
    }
    errors
}

/// A paused plugin's parked events that pass its `max_event_age_s` are
/// settled as `expired` errors instead of waiting for ever, without a run;
/// its healthy neighbour delivers every event meanwhile.
#[tokio::test(flavor = "multi_thread")]
async fn a_paused_plugins_parked_events_expire_after_max_event_age() {
    const EVENTS: usize = 10;
    let rx = TestReceiver::start().await;
    let config = flaky_with(&rx, "trap", "max_event_age_s = 2")
        + "\n[breakers.plugins]\nfailure_threshold = 3\npause_s = 300\nmax_pause_s = 300\n";
    let host = Host::start(&config, &[]);
    ingest_batch(&host, "old", EVENTS).await;
    rx.wait_for(EVENTS, 60).await;

    // Paused after 3 traps (one run at a time), the other 7 parked; two
    // seconds later they expire.
    let view = flaky_settled(&host, 30)
        .await
        .unwrap_or_else(|| panic!("the parked invocations never expired:\n{}", host.log()));
    assert_eq!(view["invocations"]["error"], 3, "{view}");
    assert_eq!(view["invocations"]["expired"], EVENTS as u64 - 3, "{view}");
    assert_eq!(view["invocations"]["parked"], 0, "{view}");
    assert_eq!(view["breaker"]["state"], "paused", "not run: {view}");

    let errors = flaky_errors(&host, "old", EVENTS).await;
    let kinds: Vec<&str> = errors.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "trap").count(),
        3,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "expired").count(),
        7,
        "{kinds:?}"
    );
    let (_, message) = errors.iter().find(|(k, _)| k == "expired").unwrap();
    assert!(
        message.contains("max_event_age_s (2 s)") && message.contains("paused"),
        "{message}"
    );
    let metrics = host.metrics().await;
    assert!(
        metrics.contains("wasmhook_plugin_invocations_expired_total{plugin=\"flaky\"} 7\n"),
        "{metrics}"
    );
    assert!(
        host.log().contains("parked invocations expired"),
        "{}",
        host.log()
    );
    let (_, v) = host.admin("GET", "/v1/plugins", "").await;
    assert_eq!(
        plugin_view(&v, "healthy")["invocations"]["fire"],
        EVENTS as u64
    );
}

/// An event whose turn comes after its plugin's `max_event_age_s` is not
/// run. A plugin that keeps timing out runs one event at a time, so the
/// later events of a burst wait longer than a second for their turn.
#[tokio::test(flavor = "multi_thread")]
async fn an_event_older_than_max_event_age_when_its_turn_comes_is_not_run() {
    const EVENTS: usize = 6;
    let rx = TestReceiver::start().await;
    let config = flaky_with(&rx, "loop", "max_event_age_s = 1\ntimeout_ms = 700");
    let host = Host::start(&config, &[]);
    ingest_batch(&host, "late", EVENTS).await;
    flaky_settled(&host, 60)
        .await
        .unwrap_or_else(|| panic!("the invocations never settled:\n{}", host.log()));

    let errors = flaky_errors(&host, "late", EVENTS).await;
    let count = |kind: &str| errors.iter().filter(|(k, _)| k == kind).count();
    // The first run starts at once and takes 0.7 s; the second starts
    // when the first event is about 0.7 s old, the third past 1.4 s.
    let (ran, expired) = (count("timeout"), count("expired"));
    assert_eq!(ran + expired, EVENTS, "{errors:?}");
    assert!((1..=2).contains(&ran), "{errors:?}");
    let (_, v) = host.admin("GET", "/v1/plugins", "").await;
    let counts = &plugin_view(&v, "flaky")["invocations"];
    assert_eq!(
        (counts["error"].as_u64(), counts["expired"].as_u64()),
        (Some(ran as u64), Some(expired as u64)),
        "{counts}"
    );
    let (_, message) = errors.iter().find(|(k, _)| k == "expired").unwrap();
    assert!(message.contains("it was accepted"), "{message}");
    let (_, metrics) = host.admin("GET", "/metrics", "").await;
    assert!(
        metrics.as_str().unwrap().contains(&format!(
            "wasmhook_plugin_invocations_expired_total{{plugin=\"flaky\"}} {expired}\n"
        )),
        "{metrics}"
    );
}

/// A plugin's `kv` store is capped (`kv_max_mb`): the write that would
/// take it over traps that invocation only, naming the quota;
/// `GET /v1/plugins` shows what the store holds, `GET
/// /v1/plugins/{name}/kv` lists it page by page; `DELETE
/// /v1/plugins/{name}/kv` clears it (by prefix or whole), after which the
/// plugin stores again. A dry run's writes count against the quota but
/// are never stored.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_kv_store_fails_only_the_writes_over_it_and_can_be_cleared() {
    let rx = TestReceiver::start().await;
    // Two 300 KiB values per event, 1 MiB quota: one event's fit, a
    // second's do not.
    let config = hostile_config(&rx.url(), "kv-fill", "[1]", "").replace(
        "[plugins.config]",
        "kv_max_mb = 1\ntimeout_ms = 5000\n[plugins.config]\ncount = \"2\"\nbytes = \"307200\"",
    );
    let host = Host::start(&config, &[]);
    let kv = |v: &serde_json::Value| plugin_view(v, "hostile")["kv"].clone();
    let event = |id: &str, prefix: &str| {
        json!({"id": id, "name": "fill", "properties": {"prefix": prefix}}).to_string()
    };

    let (status, v) = host
        .admin("POST", "/v1/plugins/hostile/dry-run", &event("dry", "dry:"))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["decision"], "skip", "{v}");
    let (_, plugins) = host.admin("GET", "/v1/plugins", "").await;
    assert_eq!(
        kv(&plugins),
        json!({"keys": 0, "bytes": 0, "max_bytes": 1_048_576}),
        "a dry run stores nothing"
    );

    assert_eq!(host.ingest(&event("e1", "a:")).await.0, 202);
    let e1 = host.settled_event("e1", 30).await;
    assert_eq!(e1["plugins"][0]["decision"], "skip", "{e1}");
    let (_, plugins) = host.admin("GET", "/v1/plugins", "").await;
    let one = 2 * ("a:0".len() + 307_200);
    assert_eq!(
        kv(&plugins),
        json!({"keys": 2, "bytes": one, "max_bytes": 1_048_576})
    );
    let metrics = host.metrics().await;
    assert!(
        metrics.contains(&format!("wasmhook_kv_bytes{{plugin=\"hostile\"}} {one}\n"))
            && metrics.contains("wasmhook_kv_max_bytes{plugin=\"hostile\"} 1048576\n"),
        "{metrics}"
    );

    assert_eq!(host.ingest(&event("e2", "b:")).await.0, 202);
    let e2 = host.settled_event("e2", 30).await;
    let decided = &e2["plugins"][0];
    assert_eq!(decided["decision"], "error", "{e2}");
    assert!(
        decided["error"]
            .as_str()
            .unwrap_or_default()
            .contains("the plugin's kv store is full"),
        "{e2}"
    );
    // The dry run sees the same quota.
    let (_, v) = host
        .admin("POST", "/v1/plugins/hostile/dry-run", &event("dry2", "c:"))
        .await;
    assert_eq!(v["decision"], "error", "{v}");
    let (_, plugins) = host.admin("GET", "/v1/plugins", "").await;
    assert_eq!(
        kv(&plugins)["keys"],
        3,
        "the write before the full one stays"
    );

    // The listing shows what is stored, a page at a time.
    let (status, page) = host
        .admin("GET", "/v1/plugins/hostile/kv?limit=2", "")
        .await;
    assert_eq!(status, 200, "{page}");
    let keys = |page: &serde_json::Value| -> Vec<String> {
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["key"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(keys(&page), ["a:0", "a:1"]);
    let first = &page["entries"][0];
    assert_eq!(first["bytes"], 307_200);
    assert_eq!(first["truncated"], true);
    assert_eq!(first["value"], "x".repeat(1024));
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, rest) = host
        .admin(
            "GET",
            &format!("/v1/plugins/hostile/kv?limit=2&cursor={cursor}"),
            "",
        )
        .await;
    assert_eq!(keys(&rest), ["b:0"]);
    assert_eq!(rest["next_cursor"], serde_json::Value::Null);
    let (_, only_b) = host
        .admin("GET", "/v1/plugins/hostile/kv?prefix=b%3A", "")
        .await;
    assert_eq!(keys(&only_b), ["b:0"]);

    let (status, v) = host
        .admin("DELETE", "/v1/plugins/hostile/kv?prefix=a%3A", "")
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v,
        json!({"plugin": "hostile", "prefix": "a:", "deleted": 2})
    );
    assert_eq!(host.ingest(&event("e3", "c:")).await.0, 202);
    let e3 = host.settled_event("e3", 30).await;
    assert_eq!(e3["plugins"][0]["decision"], "skip", "{e3}");
    let (_, plugins) = host.admin("GET", "/v1/plugins", "").await;
    assert_eq!(kv(&plugins)["keys"], 3);

    let (status, v) = host.admin("DELETE", "/v1/plugins/hostile/kv", "").await;
    assert_eq!((status, &v["deleted"]), (200, &json!(3)), "{v}");
    let (_, plugins) = host.admin("GET", "/v1/plugins", "").await;
    assert_eq!(kv(&plugins)["bytes"], 0);
    let (status, v) = host
        .admin("DELETE", "/v1/plugins/hostile/kv?key=x", "")
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("\"key\""), "{v}");
    let (status, v) = host.admin("DELETE", "/v1/plugins/No%20Such/kv", "").await;
    assert_eq!(status, 404, "{v}");
    let (status, _) = host.admin("PUT", "/v1/plugins/hostile/kv", "").await;
    assert_eq!(status, 405);
    let (status, v) = host
        .admin("GET", "/v1/plugins/hostile/kv?limit=0", "")
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(rx.requests().is_empty());
}
