//! What a restart costs when a paused plugin has a backlog parked: with
//! the pause remembered by the store (this version) and forgotten (its
//! `plugin_pauses` row deleted before the restart, which is how every
//! version before schema v4 restarted), side by side from two copies of
//! the same killed host's database.
//!
//! `cargo bench -p wasmhook --bench paused_restart` (after
//! `scripts/build-plugins.sh`). Environment: `BACKLOG` (default 50 000)
//! events parked, `WATCH_S` (default 15) seconds watched after each
//! restart, `RATE` (default 100) events/s posted during them, one per
//! request.
//!
//! Two plugins take every event: `healthy` (the `hostile` fixture in `ok`
//! mode, one webhook per event to a loopback receiver) and `broken` (the
//! same fixture trapping, with `[breakers.plugins]` pauses of 600 s).
//! BACKLOG events are ingested in batches of 1000; `broken` pauses after
//! 10 traps and the rest of its jobs are parked. Once `healthy` has
//! delivered them all, the host is killed with SIGKILL and its database
//! copied twice. Each copy is then started in turn while RATE new events
//! a second arrive, and the driver prints how many runs of `broken`
//! failed after the restart, how many of its jobs were parked again one
//! by one (`wasmhook_plugin_invocations_deferred_total`), how long after
//! the start it was paused with its whole backlog parked again, the 202 latency of the new events
//! and how long they took to reach the receiver through `healthy`.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::client::{self, Http, admin_get, drive_batched, event_body, post};
use common::receiver::Receiver;
use common::serve::{Serve, write_config};
use common::{PluginBlock, env_or, metric, ms, percentile};

/// What one restart cost.
struct Restart {
    start_s: f64,
    failed_runs: u64,
    parked_again: u64,
    reparked_s: Option<f64>,
    accept: Vec<Duration>,
    delivered: Vec<Duration>,
    not_delivered: usize,
}

fn main() {
    if common::is_list_request() {
        return;
    }
    let backlog: usize = env_or("BACKLOG", 50_000);
    let watch = Duration::from_secs(env_or("WATCH_S", 15));
    let rate: f64 = env_or("RATE", 100.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let receiver = Receiver::start().await;
        let dir = tempfile::tempdir().unwrap();
        let config_text = |db: &Path| {
            let healthy = PluginBlock::ok("healthy", "bench.*", receiver.addr);
            let mut broken = PluginBlock::ok("broken", "bench.*", receiver.addr);
            broken.mode = "trap";
            broken.path = "/broken";
            common::config_head("127.0.0.1:0", db)
                + &healthy.render()
                + &broken.render()
                + "\n[breakers.plugins]\npause_s = 600\nmax_pause_s = 600\n"
        };
        let first_db = dir.path().join("first");
        std::fs::create_dir_all(&first_db).unwrap();
        let config = write_config(&first_db, &config_text(&first_db.join("bench.db")));
        let mut serve = Serve::start(&config).unwrap_or_else(|e| panic!("{e}"));
        let http = client::http(8);
        let filled = Instant::now();
        drive_batched(
            serve.url("/v1/events"),
            Some(common::INGEST_TOKEN),
            backlog,
            4,
            1000,
        )
        .await;
        let parked_all = backlog as u64 - 10;
        wait_until(Duration::from_secs(600), || async {
            receiver.delivered("/hook") >= backlog
                && broken_parked(&http, &serve).await >= parked_all
        })
        .await
        .unwrap_or_else(|| panic!("the backlog was not parked:\n{}", serve.log_tail()));
        println!(
            "paused-plugin restart: {backlog} events parked for `broken` (filled in {:.1} s), \
             {} s watched after each restart at {rate} new events/s",
            filled.elapsed().as_secs_f64(),
            watch.as_secs()
        );
        serve.kill9();
        drop(serve);

        let mut results = Vec::new();
        for (label, remembered) in [("remembered", true), ("forgotten", false)] {
            let copy = dir.path().join(label);
            std::fs::create_dir_all(&copy).unwrap();
            for entry in std::fs::read_dir(&first_db).unwrap() {
                let path = entry.unwrap().path();
                if path
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("bench.db")
                {
                    std::fs::copy(&path, copy.join(path.file_name().unwrap())).unwrap();
                }
            }
            if !remembered {
                let db = rusqlite::Connection::open(copy.join("bench.db")).unwrap();
                db.execute("DELETE FROM plugin_pauses", []).unwrap();
            }
            let config = write_config(&copy, &config_text(&copy.join("bench.db")));
            let r = restart(&config, &receiver, label, watch, rate, parked_all).await;
            results.push((label, r));
        }
        println!(
            "  {:<11} {:>8} {:>12} {:>12} {:>14} {:>28} {:>28}",
            "pause",
            "start",
            "failed runs",
            "parked again",
            "all re-parked",
            "202 p50 / p99 / max",
            "delivered p50 / p99 / max"
        );
        for (label, r) in results {
            let (mut a, mut d) = (r.accept, r.delivered);
            a.sort();
            d.sort();
            let three = |v: &[Duration]| {
                format!(
                    "{} / {} / {}",
                    ms(percentile(v, 0.5)),
                    ms(percentile(v, 0.99)),
                    ms(v.last().copied().unwrap_or_default())
                )
            };
            println!(
                "  {label:<11} {:>7.2}s {:>12} {:>12} {:>14} {:>28} {:>28}{}",
                r.start_s,
                r.failed_runs,
                r.parked_again,
                r.reparked_s
                    .map_or("not in time".into(), |s| format!("{s:.1} s")),
                three(&a),
                three(&d),
                if r.not_delivered > 0 {
                    format!("  ({} not delivered in time)", r.not_delivered)
                } else {
                    String::new()
                }
            );
        }
    });
}

/// Start the host on `config`, post `rate` events/s for `watch`, and see
/// what `broken` did meanwhile.
async fn restart(
    config: &Path,
    receiver: &Receiver,
    label: &str,
    watch: Duration,
    rate: f64,
    parked_all: u64,
) -> Restart {
    let started = Instant::now();
    let serve = Serve::start(config).unwrap_or_else(|e| panic!("{e}"));
    let start_s = started.elapsed().as_secs_f64();
    let http = client::http(64);
    let accepted: Arc<Mutex<HashMap<String, (Instant, Duration)>>> = Arc::default();
    let mut posts = tokio::task::JoinSet::new();
    let every = Duration::from_secs_f64(1.0 / rate);
    // When `broken` is paused with its whole backlog parked again.
    let plugins_url = serve.url("/v1/plugins");
    let monitor = {
        let http = http.clone();
        tokio::spawn(async move {
            loop {
                let v = broken_view(&http, &plugins_url).await;
                if v["breaker"]["state"] == "paused"
                    && v["invocations"]["parked"].as_u64().unwrap_or(0) >= parked_all
                {
                    return started.elapsed().as_secs_f64();
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let begin = Instant::now();
    let mut i = 0usize;
    while begin.elapsed() < watch {
        let id = format!("{label}-{i}");
        let (http, url, accepted) = (http.clone(), serve.url("/v1/events"), accepted.clone());
        let body = event_body(&id, i);
        posts.spawn(async move {
            let sent = Instant::now();
            let r = post(
                &http,
                &url,
                Some(common::INGEST_TOKEN),
                body,
                Duration::from_secs(30),
            )
            .await;
            assert_eq!(r, Ok(202), "ingest of {id}");
            accepted
                .lock()
                .unwrap()
                .insert(id, (Instant::now(), sent.elapsed()));
        });
        i += 1;
        let next = begin + every * i as u32;
        tokio::time::sleep_until(next.into()).await;
    }
    while posts.join_next().await.is_some() {}
    let reparked_s = if monitor.is_finished() {
        monitor.await.ok()
    } else {
        monitor.abort();
        None
    };
    let metrics = admin_get(&http, &serve.url("/metrics"))
        .await
        .unwrap_or_default();
    let failed_runs = common::invocation_counts(&metrics)
        .into_iter()
        .filter(|(plugin, outcome, _)| plugin == "broken" && outcome != "fire" && outcome != "skip")
        .map(|(_, _, n)| n)
        .sum();
    let parked_again = metric(
        &metrics,
        "wasmhook_plugin_invocations_deferred_total{plugin=\"broken\"}",
    )
    .unwrap_or(0.0) as u64;
    let accepted = std::mem::take(&mut *accepted.lock().unwrap());
    // The new events' webhooks through `healthy`.
    wait_until(Duration::from_secs(30), || async {
        let mut log = receiver.log();
        let first = &log.path("/hook").first;
        accepted.keys().all(|id| first.contains_key(id))
    })
    .await;
    let (mut delivered, mut not_delivered) = (Vec::new(), 0);
    {
        let mut log = receiver.log();
        let first = &log.path("/hook").first;
        for (id, (at, _)) in &accepted {
            match first.get(id) {
                Some(arrived) => delivered.push(arrived.saturating_duration_since(*at)),
                None => not_delivered += 1,
            }
        }
    }
    Restart {
        start_s,
        failed_runs,
        parked_again,
        reparked_s,
        accept: accepted.values().map(|(_, took)| *took).collect(),
        delivered,
        not_delivered,
    }
}

/// `broken`'s parked invocations.
async fn broken_parked(http: &Http, serve: &Serve) -> u64 {
    broken_view(http, &serve.url("/v1/plugins")).await["invocations"]["parked"]
        .as_u64()
        .unwrap_or(0)
}

/// `broken`'s entry in `GET /v1/plugins` (at `url`).
async fn broken_view(http: &Http, url: &str) -> serde_json::Value {
    let Some(text) = admin_get(http, url).await else {
        return serde_json::Value::Null;
    };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v["plugins"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "broken").cloned())
        .unwrap_or_default()
}

/// Poll `check` every 100 ms until it holds (`Some`) or `limit` passes.
async fn wait_until<F, Fut>(limit: Duration, check: F) -> Option<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return Some(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}
