//! Misbehaving plugins cost only their own invocation: each hostile mode
//! of the `hostile` fixture yields its typed error, and the same runtime
//! (and the same plugin) keeps working afterwards.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;

use serde_json::json;
use support::{TestPlugin, event};
use wasmhook::model::{Decision, LogSource};
use wasmhook::runtime::{ErrorKind, Invocation, PluginError};
use wasmhook::store::{KvStore, MemoryKv};

fn run(plugin: TestPlugin) -> Invocation {
    plugin.load().invoke(&event("x", json!({})))
}

fn kind(inv: &Invocation) -> ErrorKind {
    match &inv.outcome {
        Err(e) => e.kind(),
        Ok(d) => panic!("expected an error, got {d:?}"),
    }
}

/// A healthy invocation on the shared runtime still succeeds.
fn engine_still_works() {
    let inv = run(TestPlugin::hostile("ok"));
    assert!(
        matches!(inv.outcome, Ok(Decision::Fire { .. })),
        "{:?}",
        inv.outcome
    );
}

#[test]
fn an_infinite_loop_times_out() {
    let inv = run(TestPlugin::hostile("loop").limits(|l| l.timeout_ms = 50));
    assert_eq!(kind(&inv), ErrorKind::Timeout);
    assert_eq!(
        inv.outcome.unwrap_err(),
        PluginError::Timeout { timeout_ms: 50 }
    );
    engine_still_works();
}

#[test]
fn an_endless_sleep_inside_a_host_call_times_out() {
    // Blocked in a WASI clock wait the guest runs no code for the epoch
    // deadline to stop; the wait itself must end at the deadline. On a
    // thread, so that a regression fails here instead of hanging.
    for reuse in [1, 4] {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let plugin = TestPlugin::hostile("sleep")
                .limits(|l| {
                    l.timeout_ms = 100;
                    l.instance_reuse = reuse;
                })
                .load();
            let _ = tx.send(plugin.invoke(&event("x", json!({}))));
        });
        let inv = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("a sleeping plugin must not outlive its timeout");
        assert_eq!(
            inv.outcome.unwrap_err(),
            PluginError::Timeout { timeout_ms: 100 },
            "reuse {reuse}"
        );
    }
    // A short sleep within the timeout is still a sleep.
    let inv = run(TestPlugin::hostile("sleep")
        .config("secs", "0")
        .limits(|l| l.timeout_ms = 1_000));
    assert!(
        matches!(inv.outcome, Ok(Decision::Skip { .. })),
        "{:?}",
        inv.outcome
    );
    engine_still_works();
}

#[test]
fn an_infinite_loop_runs_out_of_fuel_when_metered() {
    let inv = run(TestPlugin::hostile("loop")
        .with_fuel(1_000_000)
        .limits(|l| l.timeout_ms = 10_000));
    assert_eq!(kind(&inv), ErrorKind::Fuel);
    assert_eq!(inv.fuel_consumed, Some(1_000_000));
}

#[test]
fn a_memory_hog_hits_the_memory_limit() {
    let inv = run(TestPlugin::hostile("memory").limits(|l| {
        l.memory_mb = 16;
        l.timeout_ms = 5_000;
    }));
    assert_eq!(
        inv.outcome.as_ref().unwrap_err(),
        &PluginError::MemoryLimit { memory_mb: 16 }
    );
    engine_still_works();
}

#[test]
fn a_trap_is_reported_as_a_trap() {
    let inv = run(TestPlugin::hostile("trap"));
    assert_eq!(kind(&inv), ErrorKind::Trap);
    engine_still_works();
}

#[test]
fn a_plugin_error_is_reported_with_its_message() {
    let inv = run(TestPlugin::hostile("error"));
    assert_eq!(
        inv.outcome.unwrap_err(),
        PluginError::Plugin("plugin refused the event".into())
    );
}

#[test]
fn too_many_requests_is_invalid_output() {
    let inv = run(TestPlugin::hostile("too-many").config("count", "17"));
    assert_eq!(kind(&inv), ErrorKind::InvalidOutput);
    let msg = inv.outcome.unwrap_err().to_string();
    assert!(
        msg.contains("17 requests") && msg.contains("max_requests"),
        "{msg}"
    );
    // exactly at the limit is fine
    let inv = run(TestPlugin::hostile("too-many").config("count", "16"));
    assert!(matches!(&inv.outcome, Ok(Decision::Fire { requests }) if requests.len() == 16));
}

#[test]
fn a_hundred_thousand_requests_are_refused_not_sent() {
    let inv = run(TestPlugin::hostile("too-many").limits(|l| l.timeout_ms = 5_000));
    let msg = inv.outcome.unwrap_err().to_string();
    assert!(msg.contains("100000 requests"), "{msg}");
    engine_still_works();
}

#[test]
fn an_oversized_body_is_invalid_output() {
    let inv = run(TestPlugin::hostile("big-body"));
    assert_eq!(kind(&inv), ErrorKind::InvalidOutput);
    assert!(
        inv.outcome
            .unwrap_err()
            .to_string()
            .contains("max_body_bytes")
    );
}

#[test]
fn a_header_with_crlf_is_invalid_output() {
    let inv = run(TestPlugin::hostile("bad-header"));
    let msg = inv.outcome.unwrap_err().to_string();
    assert!(msg.contains("x-injected") && msg.contains("CR/LF"), "{msg}");
}

/// Strings a plugin returns are stored with every invocation, logged and
/// served by the API: their size is the host's to choose.
#[test]
fn an_8_mib_skip_reason_or_error_is_cut_to_4_kib() {
    let limits = |l: &mut wasmhook::runtime::PluginLimits| {
        l.timeout_ms = 5_000;
        l.memory_mb = 128;
    };
    let inv = run(TestPlugin::hostile("big-skip").limits(limits));
    let Ok(Decision::Skip { reason }) = &inv.outcome else {
        panic!("{:?}", inv.outcome.as_ref().map(|_| ()));
    };
    assert!(reason.len() < 4200, "{}", reason.len());
    assert!(
        reason.ends_with("(8384512 bytes truncated)"),
        "{}",
        &reason[4000..]
    );

    let inv = run(TestPlugin::hostile("big-error").limits(limits));
    assert_eq!(kind(&inv), ErrorKind::Plugin);
    let msg = inv.outcome.unwrap_err().to_string();
    assert!(msg.len() < 4300, "{}", msg.len());
    assert!(msg.contains("bytes truncated"));
    engine_still_works();
}

#[test]
fn sixteen_mib_of_headers_are_invalid_output() {
    let inv = run(TestPlugin::hostile("big-headers").limits(|l| {
        l.timeout_ms = 5_000;
        l.memory_mb = 256;
    }));
    assert_eq!(kind(&inv), ErrorKind::InvalidOutput);
    let msg = inv.outcome.unwrap_err().to_string();
    assert!(msg.contains("65536-byte limit"), "{msg}");
    // Under the cap, headers pass.
    let inv = run(TestPlugin::hostile("big-headers")
        .config("count", "4")
        .config("bytes", "8000"));
    assert!(inv.outcome.is_ok(), "{:?}", inv.outcome.map(|_| ()));
}

#[test]
fn an_invalid_header_name_is_quoted_in_part() {
    let inv = run(TestPlugin::hostile("long-header-name").limits(|l| l.timeout_ms = 5_000));
    assert_eq!(kind(&inv), ErrorKind::InvalidOutput);
    let msg = inv.outcome.unwrap_err().to_string();
    assert!(msg.contains("invalid header name \"nnnn"), "{msg}");
    assert!(msg.len() < 300, "{}", msg.len());
}

#[test]
fn messages_about_invalid_output_quote_only_its_start() {
    let plugin = TestPlugin::hostile("from-event").load();
    let long_name = "n".repeat(60_000);
    let cases = [
        // A valid name with an invalid value: the name is quoted.
        json!({"url": "https://example.com/", "headers": {long_name: "\r"}}),
        json!({"url": "a".repeat(8_000)}),
    ];
    for properties in cases {
        let inv = plugin.invoke(&event("x", properties));
        assert_eq!(kind(&inv), ErrorKind::InvalidOutput);
        let msg = inv.outcome.unwrap_err().to_string();
        assert!(msg.len() < 600, "{} bytes: {}", msg.len(), &msg[..200]);
    }
}

#[test]
fn a_relative_url_is_invalid_output() {
    let inv = run(TestPlugin::hostile("bad-url"));
    assert_eq!(kind(&inv), ErrorKind::InvalidOutput);
}

#[test]
fn a_log_flood_is_capped_and_the_drop_is_reported() {
    let inv = run(TestPlugin::hostile("log-flood")
        .config("count", "5000")
        .limits(|l| l.timeout_ms = 5_000));
    assert!(
        matches!(&inv.outcome, Ok(Decision::Skip { reason }) if reason == "logged=5000"),
        "{:?}",
        inv.outcome
    );
    let kept = inv
        .logs
        .iter()
        .filter(|l| l.source != LogSource::Host)
        .count();
    assert_eq!(kept, 100);
    assert!(inv.logs.iter().all(|l| l.message.len() < 2200));
    let notes: Vec<_> = inv
        .logs
        .iter()
        .filter(|l| l.source == LogSource::Host)
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.message.contains("log lines dropped")),
        "{notes:?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.message.contains("bytes of stdout dropped")),
        "{notes:?}"
    );
}

#[test]
fn a_kv_loop_is_stopped_by_the_operation_budget() {
    let inv = run(TestPlugin::hostile("kv-loop").limits(|l| l.timeout_ms = 10_000));
    assert_eq!(kind(&inv), ErrorKind::Trap);
    let inv = run(TestPlugin::hostile("kv-loop").config("count", "100"));
    assert!(
        matches!(&inv.outcome, Ok(Decision::Skip { reason }) if reason == "n=100"),
        "{:?}",
        inv.outcome
    );
}

#[test]
fn a_plugin_filling_its_kv_store_stops_at_its_quota() {
    // 1 MiB quota, 300 KiB values: three fit, the fourth traps and is not
    // stored; another plugin's namespace is not touched.
    let kv: Arc<dyn KvStore> = Arc::new(MemoryKv::new());
    kv.set("other", "k", b"v", u64::MAX).unwrap();
    let fill = |count: &str| {
        TestPlugin::hostile("kv-fill")
            .config("count", count)
            .config("bytes", &(300 * 1024).to_string())
            .limits(|l| l.kv_max_bytes = 1024 * 1024)
            .kv(kv.clone())
            .load()
            .invoke(&event("x", json!({})))
    };
    let inv = fill("3");
    assert!(
        matches!(&inv.outcome, Ok(Decision::Skip { reason }) if reason == "stored=3"),
        "{:?}",
        inv.outcome
    );
    let inv = fill("4");
    assert_eq!(kind(&inv), ErrorKind::Trap);
    let message = inv.outcome.unwrap_err().to_string();
    assert!(
        message.contains("the plugin's kv store is full")
            && message.contains("of its 1048576 bytes (kv_max_mb)"),
        "{message}"
    );
    let usage = kv.usage("hostile").unwrap();
    assert_eq!(usage.keys, 3);
    assert!(usage.bytes <= 1024 * 1024, "{usage:?}");
    assert_eq!(kv.get("other", "k").unwrap(), Some(b"v".to_vec()));
}

#[test]
fn one_invocation_cannot_rewrite_kv_without_end() {
    // Ten 1 MiB writes to one key never grow the namespace past 1 MiB,
    // but one invocation may write at most 8 MiB.
    let inv = run(TestPlugin::hostile("kv-fill")
        .config("count", "10")
        .config("keys", "1")
        .config("bytes", &(1024 * 1024).to_string())
        .limits(|l| l.timeout_ms = 10_000));
    assert_eq!(kind(&inv), ErrorKind::Trap);
    let message = inv.outcome.unwrap_err().to_string();
    assert!(
        message.contains("more than 8388608 bytes written in one invocation"),
        "{message}"
    );
    let inv = run(TestPlugin::hostile("kv-fill")
        .config("count", "7")
        .config("keys", "1")
        .config("bytes", &(1024 * 1024).to_string())
        .limits(|l| l.timeout_ms = 10_000));
    assert!(inv.outcome.is_ok(), "{:?}", inv.outcome);
}

#[test]
fn a_trapped_instance_is_never_reused() {
    // In reuse mode, a trap discards the instance; the next event gets a
    // fresh one and succeeds.
    let plugin = TestPlugin::hostile("ok")
        .limits(|l| l.instance_reuse = 100)
        .load();
    let trap = TestPlugin::hostile("trap")
        .limits(|l| l.instance_reuse = 100)
        .load();
    for _ in 0..3 {
        assert_eq!(
            trap.invoke(&event("x", json!({})))
                .outcome
                .unwrap_err()
                .kind(),
            ErrorKind::Trap
        );
        assert!(plugin.invoke(&event("x", json!({}))).outcome.is_ok());
    }
}

#[test]
fn every_hostile_mode_in_a_row_leaves_the_runtime_healthy() {
    for (mode, cfg) in [
        ("loop", None),
        ("sleep", None),
        ("memory", None),
        ("trap", None),
        ("too-many", None),
        ("big-body", None),
        ("bad-header", None),
        ("log-flood", Some(("count", "2000"))),
        ("kv-loop", None),
    ] {
        let mut p = TestPlugin::hostile(mode).limits(|l| l.timeout_ms = 200);
        if let Some((k, v)) = cfg {
            p = p.config(k, v);
        }
        let _ = run(p);
    }
    engine_still_works();
}
