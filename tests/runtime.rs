//! End-to-end tests of the runtime with real components built from
//! `plugins/`: the example plugins in Rust, JavaScript and C, the sandbox's
//! WASI surface, config and kv imports, instance reuse, the compile cache,
//! and components that must be refused at load.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;

use serde_json::json;
use support::{TestPlugin, event, plugin_path, runtime};
use wasmhook::model::{Decision, Event, LogSource, Method};
use wasmhook::runtime::{
    ErrorKind, LoadError, PluginError, PluginLimits, PluginSpec, Runtime, RuntimeConfig,
};
use wasmhook::store::{KvStore, MemoryKv};

fn fire(decision: &Result<Decision, PluginError>) -> &[wasmhook::model::OutboundRequest] {
    match decision {
        Ok(Decision::Fire { requests }) => requests,
        other => panic!("expected fire, got {other:?}"),
    }
}

fn skip_reason(decision: &Result<Decision, PluginError>) -> &str {
    match decision {
        Ok(Decision::Skip { reason }) => reason,
        other => panic!("expected skip, got {other:?}"),
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn rust_plugin_builds_a_slack_message_with_a_secret_placeholder() {
    let plugin = TestPlugin::new("slack-notify")
        .config("channel", "#ops")
        .load();
    let inv = plugin.invoke(&event("order.paid", json!({"message": "order #7"})));
    let [req] = fire(&inv.outcome) else {
        panic!("one request expected")
    };
    assert_eq!(req.method, Method::Post);
    assert_eq!(
        req.url,
        "https://hooks.slack.com/services/{{secret:SLACK_WEBHOOK_PATH}}"
    );
    assert_eq!(
        header(&req.headers, "content-type"),
        Some("application/json")
    );
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(
        body,
        json!({"text": "*order.paid* from user-7: order #7", "channel": "#ops"})
    );
}

#[test]
fn rust_plugin_skips_events_outside_its_configured_prefixes() {
    let plugin = TestPlugin::new("slack-notify")
        .config("events", "billing.,order.")
        .load();
    let inv = plugin.invoke(&event("user.login", json!({})));
    assert!(
        skip_reason(&inv.outcome).contains("user.login"),
        "{:?}",
        inv.outcome
    );
}

#[test]
fn javascript_plugin_sends_a_line_push_message() {
    let plugin = TestPlugin::new("messenger-transactional").load();
    let props = json!({"channel": "line", "line_user_id": "U42", "order_id": "A-9", "tracking_number": "TRK1"});
    let inv = plugin.invoke(&event("order.shipped", props));
    let [req] = fire(&inv.outcome) else {
        panic!("one request expected")
    };
    assert_eq!(req.method, Method::Post);
    assert_eq!(req.url, "https://api.line.me/v2/bot/message/push");
    assert_eq!(
        header(&req.headers, "authorization"),
        Some("Bearer {{secret:LINE_CHANNEL_TOKEN}}")
    );
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["to"], "U42");
    assert_eq!(
        body["messages"][0]["text"],
        "Your order A-9 has shipped (tracking TRK1)"
    );
    assert!(
        inv.logs
            .iter()
            .any(|l| l.source == LogSource::Log && l.message.contains("A-9")),
        "{:?}",
        inv.logs
    );
}

#[test]
fn javascript_plugin_skips_an_unknown_channel() {
    let plugin = TestPlugin::new("messenger-transactional").load();
    let inv = plugin.invoke(&event(
        "order.shipped",
        json!({"channel": "carrier-pigeon", "order_id": "A"}),
    ));
    assert!(
        skip_reason(&inv.outcome).contains("carrier-pigeon"),
        "{:?}",
        inv.outcome
    );
}

#[test]
fn javascript_plugin_reused_instance_gives_the_same_answers() {
    let plugin = TestPlugin::new("messenger-transactional")
        .limits(|l| l.instance_reuse = 50)
        .load();
    for i in 0..5 {
        let props = json!({"channel": "messenger", "psid": "123", "order_id": format!("B-{i}")});
        let inv = plugin.invoke(&event("order.shipped", props));
        let [req] = fire(&inv.outcome) else {
            panic!("one request expected")
        };
        assert!(
            req.url
                .starts_with("https://graph.facebook.com/v26.0/me/messages"),
            "{}",
            req.url
        );
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(
            body["message"]["text"],
            format!("Your order B-{i} has shipped")
        );
    }
}

#[test]
fn c_plugin_fans_out_coins_and_push_above_the_threshold() {
    let plugin = TestPlugin::new("game-reward")
        .config("backend_url", "https://game.example.com/api")
        .config("min_level", "10")
        .config("coins", "250")
        .config("firebase_project", "demo")
        .load();
    let props = json!({"level": 12, "player_id": "p-1", "push_token": "tok"});
    let inv = plugin.invoke(&event("level.reached", props));
    let reqs = fire(&inv.outcome);
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(
        reqs[0].url,
        "https://game.example.com/api/players/p-1/coins"
    );
    assert_eq!(
        header(&reqs[0].headers, "authorization"),
        Some("Bearer {{secret:GAME_API_KEY}}")
    );
    let coins: serde_json::Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert_eq!(coins["amount"], 250);
    assert_eq!(coins["idempotency_key"], "evt-test-1");
    assert_eq!(
        reqs[1].url,
        "https://fcm.googleapis.com/v1/projects/demo/messages:send"
    );
    assert!(String::from_utf8_lossy(&reqs[1].body).contains("tok"));
}

#[test]
fn c_plugin_skips_below_the_threshold_with_both_numbers() {
    let plugin = TestPlugin::new("game-reward")
        .config("backend_url", "https://game.example.com/api")
        .config("min_level", "10")
        .load();
    let inv = plugin.invoke(&event(
        "level.reached",
        json!({"level": 3, "player_id": "p-1"}),
    ));
    let reason = skip_reason(&inv.outcome);
    assert!(reason.contains('3') && reason.contains("10"), "{reason}");
}

#[test]
fn event_fields_reach_the_plugin_unchanged() {
    let plugin = TestPlugin::hostile("ok")
        .config("url", "https://example.com/echo")
        .load();
    let mut ev = event(
        "cart.abandoned",
        json!({"items": [1, 2], "total": 9.5, "nested": {"é": "ü"}}),
    );
    ev.user_id = None;
    let inv = plugin.invoke(&ev);
    let [req] = fire(&inv.outcome) else {
        panic!("one request expected")
    };
    assert_eq!(req.url, "https://example.com/echo");
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(
        body,
        json!({
            "id": "evt-test-1", "name": "cart.abandoned", "user_id": null,
            "timestamp_ms": 1_764_000_000_000u64,
            "properties": {"items": [1, 2], "total": 9.5, "nested": {"é": "ü"}},
        })
    );
}

#[test]
fn wasi_gives_clocks_and_randomness_but_no_env_args_or_filesystem() {
    let inv = TestPlugin::hostile("wasi")
        .load()
        .invoke(&event("x", json!({})));
    assert_eq!(
        skip_reason(&inv.outcome),
        "env=0 args=0 clock=ok random=ok fs_root=denied"
    );
}

#[test]
fn assets_directory_is_readable_and_not_writable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hi from assets\n").unwrap();
    let plugin = TestPlugin::hostile("asset")
        .assets(dir.path().to_owned())
        .load();
    let inv = plugin.invoke(&event("x", json!({})));
    assert_eq!(
        skip_reason(&inv.outcome),
        "asset=hi from assets write=denied"
    );
    assert!(!dir.path().join("written.txt").exists());
}

#[test]
fn without_assets_the_plugin_sees_no_files() {
    let inv = TestPlugin::hostile("asset")
        .load()
        .invoke(&event("x", json!({})));
    let reason = skip_reason(&inv.outcome);
    assert!(
        reason.starts_with("asset_error=") && reason.ends_with("write=denied"),
        "{reason}"
    );
}

#[test]
fn config_is_visible_and_missing_keys_are_none() {
    let plugin = TestPlugin::hostile("config-echo")
        .config("key", "portal-eu1")
        .load();
    assert_eq!(
        skip_reason(&plugin.invoke(&event("x", json!({}))).outcome),
        "portal-eu1"
    );
    let plugin = TestPlugin::hostile("config-echo").load();
    assert_eq!(
        skip_reason(&plugin.invoke(&event("x", json!({}))).outcome),
        "<none>"
    );
}

#[test]
fn kv_persists_across_fresh_instances_and_is_namespaced_per_plugin() {
    let kv: Arc<dyn KvStore> = Arc::new(MemoryKv::new());
    let a = TestPlugin::hostile("kv").name("a").kv(kv.clone()).load();
    let b = TestPlugin::hostile("kv").name("b").kv(kv.clone()).load();
    let ev = event("x", json!({}));
    assert_eq!(skip_reason(&a.invoke(&ev).outcome), "count=1");
    assert_eq!(skip_reason(&a.invoke(&ev).outcome), "count=2");
    assert_eq!(skip_reason(&b.invoke(&ev).outcome), "count=1");
    assert_eq!(kv.increment("a", "count", 0, u64::MAX).unwrap(), 2);
}

#[test]
fn kv_get_set_delete_round_trip() {
    let inv = TestPlugin::hostile("kv-roundtrip")
        .load()
        .invoke(&event("x", json!({})));
    assert_eq!(skip_reason(&inv.outcome), "get=v1 after_delete=none");
}

#[test]
fn many_threads_can_invoke_one_plugin_at_once() {
    let plugin = TestPlugin::hostile("ok").load();
    std::thread::scope(|s| {
        for t in 0..8 {
            let plugin = plugin.clone();
            s.spawn(move || {
                for i in 0..25 {
                    let mut ev = event("x", json!({"t": t, "i": i}));
                    ev.id = format!("{t}-{i}");
                    let inv = plugin.invoke(&ev);
                    let [req] = fire(&inv.outcome) else {
                        panic!("one request expected")
                    };
                    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
                    assert_eq!(body["id"], format!("{t}-{i}"));
                }
            });
        }
    });
}

#[test]
fn fuel_consumed_is_reported_per_call() {
    let plugin = TestPlugin::hostile("ok").with_fuel(50_000_000).load();
    let inv = plugin.invoke(&event("x", json!({})));
    assert!(inv.outcome.is_ok(), "{:?}", inv.outcome);
    let fuel = inv.fuel_consumed.expect("fuel is metered");
    assert!(fuel > 0 && fuel < 50_000_000, "{fuel}");
}

#[test]
fn a_plugin_without_a_fuel_limit_runs_on_a_metered_runtime() {
    // Metering is on for every plugin once one of them has a limit; a
    // store starts with no fuel, so one without a limit used to run out
    // at its first instruction.
    for reuse in [1, 4] {
        let plugin = TestPlugin::hostile("ok")
            .metered()
            .limits(|l| l.instance_reuse = reuse)
            .load();
        for _ in 0..3 {
            let inv = plugin.invoke(&event("x", json!({})));
            assert!(inv.outcome.is_ok(), "reuse {reuse}: {:?}", inv.outcome);
            assert_eq!(inv.fuel_consumed, None, "no budget, nothing to report");
        }
    }
}

#[test]
fn a_dry_run_never_shares_an_instance_with_real_invocations() {
    let plugin = TestPlugin::hostile("static-count")
        .limits(|l| l.instance_reuse = 8)
        .load();
    let reason = |inv: &wasmhook::runtime::Invocation| skip_reason(&inv.outcome).to_owned();
    assert_eq!(reason(&plugin.invoke(&event("x", json!({})))), "calls=1");
    let overlay: Arc<dyn KvStore> = Arc::new(MemoryKv::new());
    let dry = plugin.invoke_with_kv(&event("x", json!({})), Some(overlay.clone()));
    assert_eq!(
        reason(&dry),
        "calls=1",
        "a dry run starts from a fresh instance"
    );
    let dry = plugin.invoke_with_kv(&event("x", json!({})), Some(overlay));
    assert_eq!(
        reason(&dry),
        "calls=1",
        "and leaves nothing behind for the next"
    );
    assert_eq!(
        reason(&plugin.invoke(&event("x", json!({})))),
        "calls=2",
        "the real instance saw neither dry run"
    );
}

#[test]
fn placeholder_text_from_the_event_is_never_filled() {
    // slack-notify writes its webhook path as a placeholder and copies the
    // event's `message` into the body: a message holding placeholder text
    // would have the host post the secret path into the channel.
    let plugin = TestPlugin::new("slack-notify").load();
    let clean = plugin.invoke(&event("deploy", json!({"message": "done"})));
    let [req] = fire(&clean.outcome) else {
        panic!("one request expected: {:?}", clean.outcome)
    };
    assert!(
        req.url.contains("{{secret:SLACK_WEBHOOK_PATH}}"),
        "{}",
        req.url
    );
    for (where_, ev) in [
        (
            "property",
            event(
                "deploy",
                json!({"message": "{{secret:SLACK_WEBHOOK_PATH}}"}),
            ),
        ),
        (
            "user id",
            Event {
                user_id: Some("{{secret:SLACK_WEBHOOK_PATH}}".into()),
                ..event("deploy", json!({}))
            },
        ),
        // Unterminated: the body's placeholder is malformed, which is the
        // event's doing, not the plugin's fault.
        (
            "malformed",
            event("deploy", json!({"message": "{{secret:"})),
        ),
        ("a key", event("deploy", json!({"{{secret:X}}": 1}))),
    ] {
        let inv = plugin.invoke(&ev);
        let err = inv.outcome.as_ref().expect_err(where_);
        assert_eq!(err.kind(), ErrorKind::Refused, "{where_}: {err}");
        assert!(err.to_string().contains("the event's own data"), "{err}");
    }
    // Placeholder text in the event is fine while no request holds any.
    let plain = TestPlugin::new("slack-notify")
        .config("webhook_url", "https://example.com/hook")
        .load();
    let inv = plain.invoke(&event("deploy", json!({"other": "{{secret:X}}"})));
    let [req] = fire(&inv.outcome) else {
        panic!("the request goes out: {:?}", inv.outcome)
    };
    assert!(!String::from_utf8_lossy(&req.body).contains("{{secret:"));
}

#[test]
fn a_full_instance_pool_is_busy_not_a_fault_of_the_plugin() {
    // One slot.
    let rt = Runtime::new(RuntimeConfig {
        cache_dir: Some(support::cache_dir()),
        max_instances: 1,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let load = |name: &str, mode: &str, reuse: u32| {
        let spec = PluginSpec {
            name: name.into(),
            config: [("mode".to_owned(), mode.to_owned())].into(),
            assets_dir: None,
            limits: PluginLimits {
                instance_reuse: reuse,
                timeout_ms: 1_500,
                ..PluginLimits::default()
            },
            kv: Arc::new(MemoryKv::new()),
        };
        rt.load_file(&plugin_path("hostile"), spec).unwrap()
    };
    // An idle instance kept for reuse holds the slot: it is let go.
    let warm = load("warm", "skip", 4);
    assert!(warm.invoke(&event("x", json!({}))).outcome.is_ok());
    let other = load("other", "skip", 1);
    assert!(other.invoke(&event("x", json!({}))).outcome.is_ok());
    // A running instance holds it: busy, and no fault of the plugin's.
    let sleeper = load("sleeper", "sleep", 1);
    let running = std::thread::spawn(move || sleeper.invoke(&event("x", json!({}))));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let inv = other.invoke(&event("x", json!({})));
    assert_eq!(inv.outcome, Err(PluginError::Busy));
    assert_eq!(PluginError::Busy.kind(), ErrorKind::Busy);
    assert!(matches!(
        running.join().unwrap().outcome,
        Err(PluginError::Timeout { .. })
    ));
    assert!(
        other.invoke(&event("x", json!({}))).outcome.is_ok(),
        "free again"
    );
}

/// The Rust SDK's test helpers refuse what the host refuses: their limits
/// and the headers the host owns are the host's own values. (The other
/// SDKs carry the same numbers; their suites test them.)
#[test]
fn the_rust_sdk_checks_against_the_host_s_own_limits() {
    let host = PluginLimits::default();
    assert_eq!(wasmhook_plugin::MAX_REQUESTS, host.max_requests);
    assert_eq!(wasmhook_plugin::MAX_BODY_BYTES, host.max_body_bytes);
    assert_eq!(wasmhook_plugin::MAX_URL_BYTES, host.max_url_bytes);
    assert_eq!(
        wasmhook_plugin::MAX_URL_BYTES,
        wasmhook::policy::MAX_URL_BYTES
    );
    assert_eq!(wasmhook_plugin::MAX_HEADERS, host.max_headers);
    assert_eq!(
        wasmhook_plugin::MAX_HEADER_BYTES,
        wasmhook::runtime::MAX_HEADER_BYTES
    );
    assert_eq!(
        wasmhook_plugin::MAX_REASON_BYTES,
        wasmhook::runtime::MAX_REASON_BYTES
    );
    assert_eq!(
        wasmhook_plugin::FORBIDDEN_HEADERS,
        wasmhook::policy::FORBIDDEN_HEADERS
    );
}

fn load_err(component: &str) -> LoadError {
    let spec = PluginSpec {
        name: component.into(),
        config: Default::default(),
        assets_dir: None,
        limits: PluginLimits::default(),
        kv: Arc::new(MemoryKv::new()),
    };
    match runtime().load_file(&plugin_path(component), spec) {
        Ok(_) => panic!("{component} should be refused"),
        Err(e) => e,
    }
}

#[test]
fn a_component_for_another_world_is_refused_naming_what_is_missing() {
    let err = load_err("wrong-world");
    assert!(matches!(err, LoadError::WrongWorld(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("missing export `transform"), "{msg}");
    assert!(
        msg.contains("run"),
        "should list what it does export: {msg}"
    );
}

#[test]
fn a_component_importing_wasi_http_is_refused_with_the_reason() {
    let err = load_err("wants-http");
    assert!(
        matches!(&err, LoadError::ForbiddenImport { import, .. } if import.starts_with("wasi:http/")),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("plugins return requests; the host sends them"),
        "{err}"
    );
}

#[test]
fn core_modules_and_garbage_are_refused() {
    let spec = || PluginSpec {
        name: "x".into(),
        config: Default::default(),
        assets_dir: None,
        limits: PluginLimits::default(),
        kv: Arc::new(MemoryKv::new()),
    };
    let core = b"\0asm\x01\0\0\0";
    assert!(matches!(
        runtime().load(core, spec()),
        Err(LoadError::CoreModule)
    ));
    assert!(matches!(
        runtime().load(b"#!/bin/sh\necho hi\n", spec()),
        Err(LoadError::NotWasm)
    ));
    let truncated = &std::fs::read(plugin_path("hostile")).unwrap()[..1000];
    assert!(matches!(
        runtime().load(truncated, spec()),
        Err(LoadError::Compile(_))
    ));
}

#[test]
fn compiled_components_are_cached_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let rt = Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.path().to_owned()),
        max_instances: 4,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let bytes = std::fs::read(plugin_path("hostile")).unwrap();
    let first = rt.inspect(&bytes).unwrap();
    assert!(!first.cache_hit);
    let entries = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(entries, 1, "one cache entry written");
    let second = rt.inspect(&bytes).unwrap();
    assert!(second.cache_hit);
    assert_eq!(first.hash, second.hash);

    // A corrupt entry is ignored and replaced, never trusted.
    let entry = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&entry, b"garbage").unwrap();
    let third = rt.inspect(&bytes).unwrap();
    assert!(!third.cache_hit);
    assert!(rt.inspect(&bytes).unwrap().cache_hit);
}

#[test]
fn the_compile_cache_keeps_to_its_cap_dropping_the_least_recently_used() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = |cache_max_bytes| {
        Runtime::new(RuntimeConfig {
            cache_dir: Some(dir.path().to_owned()),
            cache_max_bytes,
            max_instances: 4,
            ..RuntimeConfig::default()
        })
        .unwrap()
    };
    let [a, b, c] = ["game-reward", "airline-loyalty", "hostile"]
        .map(|p| std::fs::read(plugin_path(p)).unwrap());
    let entries = || -> Vec<(String, u64)> {
        let mut found: Vec<(String, u64)> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let name = e.file_name().into_string().unwrap();
                (name[..64].to_owned(), e.metadata().unwrap().len())
            })
            .collect();
        found.sort();
        found
    };

    // Learn each entry's size with room for all three.
    let roomy = runtime(u64::MAX);
    let hashes = [&a, &b, &c].map(|bytes| roomy.inspect(bytes).unwrap().hash);
    let size = |hash: &str| entries().iter().find(|(h, _)| h == hash).unwrap().1;
    let sizes = hashes.clone().map(|h| size(&h));
    drop(roomy);
    for e in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }

    // Room for any two, not for all three.
    let total: u64 = sizes.iter().sum();
    let rt = runtime(total - 1);
    let pause = || std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(!rt.inspect(&a).unwrap().cache_hit);
    pause();
    assert!(!rt.inspect(&b).unwrap().cache_hit);
    pause();
    // Loading A again makes B the least recently used...
    assert!(rt.inspect(&a).unwrap().cache_hit);
    pause();
    // ...so writing C removes B and keeps A.
    assert!(!rt.inspect(&c).unwrap().cache_hit);
    let mut want = vec![(hashes[0].clone(), sizes[0]), (hashes[2].clone(), sizes[2])];
    want.sort();
    assert_eq!(entries(), want);
    assert!(rt.inspect(&a).unwrap().cache_hit);
    assert!(rt.inspect(&c).unwrap().cache_hit);
    assert!(!rt.inspect(&b).unwrap().cache_hit, "B was removed");

    // A compilation larger than the whole cap is not written at all.
    let tiny = runtime(sizes[1] - 1);
    for e in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    assert!(!tiny.inspect(&b).unwrap().cache_hit);
    assert!(!tiny.inspect(&b).unwrap().cache_hit);
    assert_eq!(entries(), []);
}

#[test]
fn fresh_instances_share_no_memory_between_events() {
    let plugin = TestPlugin::hostile("static-count").load();
    for _ in 0..3 {
        assert_eq!(
            skip_reason(&plugin.invoke(&event("x", json!({}))).outcome),
            "calls=1"
        );
    }
}

#[test]
fn instance_reuse_keeps_an_instance_for_up_to_n_events() {
    let plugin = TestPlugin::hostile("static-count")
        .limits(|l| l.instance_reuse = 3)
        .load();
    let reasons: Vec<String> = (0..7)
        .map(|_| skip_reason(&plugin.invoke(&event("x", json!({}))).outcome).to_owned())
        .collect();
    assert_eq!(
        reasons,
        [
            "calls=1", "calls=2", "calls=3", "calls=1", "calls=2", "calls=3", "calls=1"
        ]
    );
}
