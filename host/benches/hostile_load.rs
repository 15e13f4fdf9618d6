//! Hostile plugins under load: a healthy plugin's delivery rate and
//! accept→delivered latency with and without hostile plugins subscribed
//! to the same events, measured side by side in one run.
//!
//! `cargo bench -p wasmhook --bench hostile_load` (after
//! `scripts/build-plugins.sh`). Environment: `RATE` events/s (default 50),
//! `PHASE_S` seconds of load per phase (default 30), `DRAIN_S` seconds to
//! wait for the healthy deliveries after the load stops (default 15),
//! `HOSTILE` a comma-separated subset of the hostile modes (default all),
//! `WORST` how many of the slowest deliveries to list (default 0).
//!
//! Phase (a): `wasmhook serve` (built binary, SQLite in a temp dir) with
//! one healthy plugin (the `hostile` fixture in `ok` mode, one webhook per
//! event to a loopback receiver). Phase (b): a fresh host with the same
//! healthy plugin plus seven hostile ones on the same events: `loop`,
//! `memory`, `trap`, `too-many` (100 000 requests), `big-body` (64 MiB,
//! with 256 MiB of guest memory so it can be built), `log-flood` and
//! `kv-loop`, each with the default limits. For each phase: healthy
//! deliveries/s during the load, p50/p99 accept→delivered latency, events
//! not delivered in time, the host's peak RSS; for (b) also what
//! `/metrics` and `GET /v1/plugins` recorded for every hostile plugin.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::client::{self, Pace};
use common::receiver::Receiver;
use common::serve::{RssSampler, Serve, write_config};
use common::{PluginBlock, env_or, invocation_counts, mib, ms, percentile};

/// Hostile plugins of phase (b): name suffix, mode, config, plugin limits.
const HOSTILE: &[(&str, &str, &str, &str)] = &[
    ("loop", "loop", "", ""),
    ("memory", "memory", "", ""),
    ("trap", "trap", "", ""),
    ("too-many", "too-many", "count = \"100000\"", ""),
    (
        "big-body",
        "big-body",
        "bytes = \"67108864\"",
        "memory_mb = 256",
    ),
    ("log-flood", "log-flood", "", ""),
    ("kv-loop", "kv-loop", "", ""),
];

/// What one phase measured.
struct Phase {
    accepted: usize,
    rejected: u64,
    /// Healthy deliveries that arrived while the load ran.
    in_window: usize,
    window: Duration,
    /// Accepted events whose healthy delivery never arrived.
    undelivered: usize,
    p50: Duration,
    p99: Option<Duration>,
    peak_rss_kib: u64,
    /// p99 latency of the events accepted in each 10 s of the load.
    p99_slices: Vec<Duration>,
    /// p99 of the events accepted after the first 10 s (the plugins'
    /// first runs, before any has a history, are over by then).
    p99_settled: Option<Duration>,
    metrics: String,
    plugins: serde_json::Value,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.in_window as f64 / self.window.as_secs_f64()
    }
}

fn main() {
    if common::is_list_request() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

/// The hostile plugins of this run (`HOSTILE` selects a subset).
fn hostile_modes()
-> impl Iterator<Item = &'static (&'static str, &'static str, &'static str, &'static str)> {
    let only = std::env::var("HOSTILE").ok();
    HOSTILE.iter().filter(move |h| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|m| m.trim() == h.0))
    })
}

async fn run() {
    let rate: f64 = env_or("RATE", 50.0);
    let phase_s: u64 = env_or("PHASE_S", 30);
    let drain_s: u64 = env_or("DRAIN_S", 15);
    let receiver = Receiver::start().await;
    println!(
        "hostile load: {rate} events/s for {phase_s} s per phase, {drain_s} s to drain; hostile: {}",
        hostile_modes().map(|h| h.0).collect::<Vec<_>>().join(", ")
    );
    let a = phase(&receiver, "a", false, rate, phase_s, drain_s).await;
    let b = phase(&receiver, "b", true, rate, phase_s, drain_s).await;

    let p99 = |p: &Phase| p.p99.map_or(format!("> {drain_s} s (undelivered)"), ms);
    println!(
        "healthy plugin            (a) alone      (b) with {} hostile   b/a",
        hostile_modes().count()
    );
    println!(
        "  accepted events        {:>12}      {:>12}",
        a.accepted, b.accepted
    );
    println!(
        "  rejected at ingest     {:>12}      {:>12}",
        a.rejected, b.rejected
    );
    println!(
        "  delivered/s during load{:>12.1}      {:>12.1}        {:.2}",
        a.rate(),
        b.rate(),
        b.rate() / a.rate()
    );
    println!(
        "  latency p50            {:>12}      {:>12}",
        ms(a.p50),
        ms(b.p50)
    );
    println!(
        "  latency p99            {:>12}      {:>12}",
        p99(&a),
        p99(&b)
    );
    if let (Some(pa), Some(pb)) = (a.p99, b.p99) {
        println!(
            "  p99 ratio b/a: {:.2}",
            pb.as_secs_f64() / pa.as_secs_f64().max(1e-6)
        );
    }
    println!(
        "  undelivered {drain_s} s after load {:>6}      {:>12}",
        a.undelivered, b.undelivered
    );
    println!(
        "  host peak RSS          {:>12}      {:>12}",
        mib(a.peak_rss_kib),
        mib(b.peak_rss_kib)
    );
    for (label, p) in [("a", &a), ("b", &b)] {
        let slices: Vec<String> = p
            .p99_slices
            .iter()
            .map(|d| {
                if *d == Duration::MAX {
                    "undelivered".into()
                } else {
                    ms(*d)
                }
            })
            .collect();
        println!("  p99 per 10 s of load ({label}): {}", slices.join(" | "));
    }
    if let (Some(pa), Some(pb)) = (a.p99_settled, b.p99_settled) {
        println!(
            "  latency p99 after 10 s {:>12}      {:>12}        {:.2}",
            ms(pa),
            ms(pb),
            pb.as_secs_f64() / pa.as_secs_f64().max(1e-6)
        );
    }
    let rate_ok = b.rate() >= 0.8 * a.rate() && b.undelivered == 0;
    let p99_ok = matches!((a.p99, b.p99), (Some(pa), Some(pb)) if pb.as_secs_f64() <= 1.2 * pa.as_secs_f64());
    let settled_ok = matches!((a.p99_settled, b.p99_settled), (Some(pa), Some(pb)) if pb.as_secs_f64() <= 1.2 * pa.as_secs_f64());
    println!(
        "  goal, within 20 %: delivery rate {}, p99 {}, p99 after the first 10 s {}",
        if rate_ok { "met" } else { "NOT met" },
        if p99_ok { "met" } else { "NOT met" },
        if settled_ok { "met" } else { "NOT met" }
    );

    // What the host recorded about the hostile plugins in phase (b).
    println!("hostile invocations recorded (phase b; /metrics outcomes, /v1/plugins):");
    let mut by_plugin: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for (plugin, outcome, n) in invocation_counts(&b.metrics) {
        by_plugin.entry(plugin).or_default().push((outcome, n));
    }
    let listed = b.plugins["plugins"].as_array().cloned().unwrap_or_default();
    for entry in &listed {
        let name = entry["name"].as_str().unwrap_or("?");
        let outcomes = by_plugin.get(name).cloned().unwrap_or_default();
        let done: u64 = outcomes.iter().map(|o| o.1).sum();
        let inv = &entry["invocations"];
        let stored: u64 = ["fire", "skip", "error"]
            .iter()
            .filter_map(|k| inv[k].as_u64())
            .sum();
        let pending = inv["pending"].as_u64().unwrap_or(0);
        let kinds = outcomes
            .iter()
            .map(|(o, n)| format!("{o}={n}"))
            .collect::<Vec<_>>()
            .join(" ");
        // Everything but the fields every plugin has: the breaker's report,
        // once it exists, shows up here.
        let mut rest = entry.clone();
        if let Some(obj) = rest.as_object_mut() {
            for k in [
                "name",
                "component_sha256",
                "component_size",
                "events",
                "invocations",
            ] {
                obj.remove(k);
            }
        }
        println!(
            "  {name:<16} metrics: {kinds:<28} stored: {stored} done + {pending} pending of {} events{}; {rest}",
            b.accepted,
            if stored + pending == b.accepted as u64 && done == stored {
                ""
            } else {
                " (MISMATCH)"
            }
        );
    }
}

/// Run one phase on a fresh host; `hostile` adds the seven hostile plugins.
async fn phase(
    receiver: &Receiver,
    label: &str,
    hostile: bool,
    rate: f64,
    phase_s: u64,
    drain_s: u64,
) -> Phase {
    let dir = tempfile::tempdir().unwrap();
    let hook = format!("/{label}/hook");
    let mut config = common::config_head("127.0.0.1:0", &dir.path().join("hostile.db"));
    config += &PluginBlock {
        path: &hook,
        ..PluginBlock::ok("healthy", "bench.*", receiver.addr)
    }
    .render();
    if hostile {
        let path = format!("/{label}/hostile");
        for (name, mode, config_extra, plugin_extra) in hostile_modes() {
            config += &PluginBlock {
                mode,
                path: &path,
                plugin_extra,
                config_extra,
                ..PluginBlock::ok(&format!("h-{name}"), "bench.*", receiver.addr)
            }
            .render();
        }
    }
    let config = write_config(dir.path(), &config);
    let serve = Serve::start(&config).unwrap_or_else(|e| panic!("{e}"));
    let sampler = RssSampler::start(serve.pid(), Duration::from_millis(100));
    let (stream, done) = client::paced(
        serve.url("/v1/events"),
        Pace {
            rate,
            prefix: format!("hostile-{label}"),
            retry: false,
            max_in_flight: 256,
        },
    );
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(phase_s)).await;
    stream.stop();
    let stopped = Instant::now();
    let _ = done.await;
    let accepted = std::mem::take(&mut *stream.accepted.lock().unwrap());
    let deadline = Instant::now() + Duration::from_secs(drain_s);
    loop {
        let all = {
            let mut log = receiver.log();
            let first = &log.path(&hook).first;
            accepted.keys().all(|id| first.contains_key(id))
        };
        if all || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let http = client::http(2);
    let metrics = client::admin_get(&http, &serve.url("/metrics"))
        .await
        .unwrap_or_default();
    let plugins = client::admin_get(&http, &serve.url("/v1/plugins"))
        .await
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    let peak_rss_kib = sampler.max_kib().max(serve.peak_rss_kib().unwrap_or(0));
    drop(serve);

    let mut log = receiver.log();
    let first = &log.path(&hook).first;
    let in_window = accepted
        .keys()
        .filter_map(|id| first.get(id))
        .filter(|at| **at <= stopped)
        .count();
    let mut lat: Vec<Duration> = accepted
        .iter()
        .filter_map(|(id, acked)| Some(first.get(id)?.saturating_duration_since(*acked)))
        .collect();
    lat.sort();
    let undelivered = accepted.len() - lat.len();
    // Undelivered events count as slower than any delivered one.
    let p99_rank = ((accepted.len() as f64 - 1.0) * 0.99).round() as usize;
    let p99 = lat.get(p99_rank).copied();
    let p50 = percentile(&lat, 0.5);
    let mut slices: Vec<Vec<Duration>> = vec![Vec::new(); phase_s.div_ceil(10).max(1) as usize];
    for (id, acked) in &accepted {
        let slot = ((acked.saturating_duration_since(start).as_secs() / 10) as usize)
            .min(slices.len() - 1);
        // An undelivered event is slower than any delivered one.
        slices[slot].push(
            first
                .get(id)
                .map_or(Duration::MAX, |at| at.saturating_duration_since(*acked)),
        );
    }
    let worst: usize = env_or("WORST", 0);
    if worst > 0 {
        // The slowest deliveries, by when their event was accepted.
        let mut by_latency: Vec<(Duration, Duration)> = accepted
            .iter()
            .filter_map(|(id, acked)| {
                let at = first.get(id)?;
                Some((
                    at.saturating_duration_since(*acked),
                    acked.saturating_duration_since(start),
                ))
            })
            .collect();
        by_latency.sort_by_key(|e| std::cmp::Reverse(e.0));
        for (lat, offset) in by_latency.iter().take(worst) {
            println!(
                "  slow ({label}): accepted at {}, delivered after {}",
                ms(*offset),
                ms(*lat)
            );
        }
    }
    let mut settled: Vec<Duration> = accepted
        .iter()
        .filter(|(_, acked)| acked.saturating_duration_since(start) >= Duration::from_secs(10))
        .map(|(id, acked)| {
            first
                .get(id)
                .map_or(Duration::MAX, |at| at.saturating_duration_since(*acked))
        })
        .collect();
    settled.sort();
    let p99_settled = (!settled.is_empty()).then(|| percentile(&settled, 0.99));
    let p99_slices = slices
        .iter_mut()
        .map(|s| {
            s.sort();
            percentile(s, 0.99)
        })
        .collect();
    println!(
        "  phase ({label}) done: {} accepted, {} healthy deliveries during {:.1} s of load, {undelivered} undelivered",
        accepted.len(),
        in_window,
        (stopped - start).as_secs_f64()
    );
    Phase {
        accepted: accepted.len(),
        rejected: stream.rejected.load(std::sync::atomic::Ordering::Relaxed),
        in_window,
        window: stopped - start,
        undelivered,
        p50,
        p99,
        peak_rss_kib,
        p99_slices,
        p99_settled,
        metrics,
        plugins,
    }
}
