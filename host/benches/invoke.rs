//! One event through one plugin, per language and instance mode.
//!
//! `cargo bench -p wasmhook --bench invoke` (after `scripts/build-plugins.sh`).
//! Measures `Plugin::invoke`: instantiation (fresh mode) + the call +
//! output validation. Compilation is outside the loop (cached on disk).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use wasmhook::model::Event;
use wasmhook::runtime::{Plugin, PluginLimits, PluginSpec, Runtime, RuntimeConfig};
use wasmhook::store::MemoryKv;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn load(rt: &Runtime, component: &str, config: &[(&str, &str)], reuse: u32) -> Plugin {
    let path = root()
        .join("target/plugins")
        .join(format!("{component}.wasm"));
    let spec = PluginSpec {
        name: component.into(),
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        assets_dir: None,
        limits: PluginLimits {
            instance_reuse: reuse,
            timeout_ms: 1_000,
            ..PluginLimits::default()
        },
        kv: Arc::new(MemoryKv::new()),
    };
    rt.load_file(&path, spec)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/build-plugins.sh)", path.display()))
}

fn event(name: &str, props: serde_json::Value) -> Event {
    let serde_json::Value::Object(properties) = props else {
        unreachable!()
    };
    Event {
        id: "evt-bench".into(),
        name: name.into(),
        user_id: Some("u-1".into()),
        timestamp_ms: 1_764_000_000_000,
        properties,
    }
}

fn bench(c: &mut Criterion) {
    let rt = Runtime::new(RuntimeConfig {
        cache_dir: Some(root().join("target/wasmhook-test-cache")),
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let slack = event("order.paid", json!({"message": "order #1042"}));
    let game = event(
        "level.reached",
        json!({"level": 12, "player_id": "p-1", "push_token": "t"}),
    );
    let game_cfg = [
        ("backend_url", "https://game.example.com/api"),
        ("firebase_project", "demo"),
    ];
    let ship = event(
        "order.shipped",
        json!({"channel": "line", "line_user_id": "U1", "order_id": "A-1"}),
    );

    let read = |file: &str| {
        let text = std::fs::read_to_string(root().join("examples/events").join(file)).unwrap();
        wasmhook::ingest::parse_event(&text).unwrap()
    };
    let lob = read("lob-direct-mail.json");
    let login = read("login-to-salesforce.json");
    let unsub = read("crm-unsubscribe.json");
    let booking = read("airline-loyalty.json");
    let lob_cfg = [
        ("from_address_id", "adr_1"),
        ("front_template_id", "tmpl_f"),
        ("back_template_id", "tmpl_b"),
    ];
    let sf_cfg = [("instance", "acme")];
    let every_cfg = [("every", "1")];

    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], u32, &'a Event);
    let skip_cfg = [("mode", "skip")];
    let cases: [Case; 15] = [
        (
            "lob-direct-mail/fresh",
            "lob-direct-mail",
            &lob_cfg,
            0,
            &lob,
        ),
        (
            "lob-direct-mail/reuse",
            "lob-direct-mail",
            &lob_cfg,
            1_000_000,
            &lob,
        ),
        (
            "login-to-salesforce/fresh",
            "login-to-salesforce",
            &sf_cfg,
            0,
            &login,
        ),
        (
            "login-to-salesforce/reuse",
            "login-to-salesforce",
            &sf_cfg,
            1_000_000,
            &login,
        ),
        (
            "crm-unsubscribe-python/fresh",
            "crm-unsubscribe",
            &[],
            0,
            &unsub,
        ),
        (
            "crm-unsubscribe-python/reuse",
            "crm-unsubscribe",
            &[],
            1_000_000,
            &unsub,
        ),
        (
            "airline-loyalty-zig/fresh",
            "airline-loyalty",
            &every_cfg,
            0,
            &booking,
        ),
        (
            "airline-loyalty-zig/reuse",
            "airline-loyalty",
            &every_cfg,
            1_000_000,
            &booking,
        ),
        ("rust/fresh-minimal", "hostile", &skip_cfg, 0, &slack),
        ("rust/fresh", "slack-notify", &[], 0, &slack),
        ("rust/reuse", "slack-notify", &[], 1_000_000, &slack),
        ("c/fresh", "game-reward", &game_cfg, 0, &game),
        ("c/reuse", "game-reward", &game_cfg, 1_000_000, &game),
        ("js/fresh", "messenger-transactional", &[], 0, &ship),
        ("js/reuse", "messenger-transactional", &[], 1_000_000, &ship),
    ];
    let mut group = c.benchmark_group("invoke");
    for (label, component, config, reuse, ev) in cases {
        let plugin = load(&rt, component, config, reuse);
        let check = plugin.invoke(ev);
        assert!(check.outcome.is_ok(), "{label}: {:?}", check.outcome);
        group.bench_function(label, |b| b.iter(|| plugin.invoke(ev)));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
