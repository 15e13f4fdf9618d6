//! Load benchmark of the whole pipeline, next to a raw loopback baseline
//! measured in the same run.
//!
//! `cargo bench -p wasmhook --bench pipeline` (after `scripts/build-plugins.sh`).
//! Optional environment: `EVENTS` (default 5000), `CONCURRENCY` (default 32),
//! `BATCH` (events per ingest request, default 1; the baseline always sends
//! one body per request), `SUBSCRIBE` (an event pattern; `nothing` measures
//! ingest alone).
//!
//! 1. Baseline: CONCURRENCY clients POST EVENTS small JSON bodies straight
//!    to a loopback HTTP receiver (hyper, keep-alive): raw requests/s.
//! 2. Pipeline: the same clients POST EVENTS events to `wasmhook serve`
//!    (SQLite store with synchronous=FULL, one Rust plugin per event in a
//!    fresh instance, signed delivery to the same kind of receiver). Reports
//!    accepted events/s, delivered events/s, and accept→delivered latency
//!    (from the 202 to the webhook's arrival) p50/p99.

mod common;

use std::time::{Duration, Instant};

use common::client::{drive, drive_batched};
use common::receiver::Receiver;
use common::serve::{Serve, write_config};
use common::{PluginBlock, percentile};

fn main() {
    if common::is_list_request() {
        return; // `cargo bench -- --list` compatibility
    }
    let n: usize = std::env::var("EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let concurrency: usize = std::env::var("CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let batch: usize = std::env::var("BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
        .clamp(1, 1000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        // 1. Raw loopback baseline.
        let raw = Receiver::start().await;
        let (raw_elapsed, _) = drive(format!("http://{}/", raw.addr), None, n, concurrency).await;
        let raw_rate = n as f64 / raw_elapsed.as_secs_f64();

        // 2. The pipeline.
        let receiver = Receiver::start().await;
        let dir = tempfile::tempdir().unwrap();
        let subscribe = std::env::var("SUBSCRIBE").unwrap_or_else(|_| "bench.*".into());
        let invoke_only = std::env::var("STAGE").is_ok_and(|s| s == "invoke");
        let mut plugin = PluginBlock::ok("bench", &subscribe, receiver.addr);
        if invoke_only {
            plugin.mode = "skip";
        }
        let config = write_config(
            dir.path(),
            &(common::config_head("127.0.0.1:0", &dir.path().join("bench.db")) + &plugin.render()),
        );
        let serve = Serve::start(&config).unwrap_or_else(|e| panic!("{e}"));
        let host = serve.addr.clone();
        let start = Instant::now();
        let (accept_elapsed, acked) = drive_batched(
            format!("http://{host}/v1/events"),
            Some(common::INGEST_TOKEN),
            n,
            concurrency,
            batch,
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(600);
        if std::env::var("SUBSCRIBE").is_ok() {
            println!(
                "ingest only: {:.0} events/s accepted (raw {raw_rate:.0} req/s)",
                n as f64 / accept_elapsed.as_secs_f64()
            );
            return;
        }
        if invoke_only {
            let http = common::client::http(1);
            loop {
                let text = common::client::admin_get(&http, &serve.url("/metrics"))
                    .await
                    .unwrap_or_default();
                let done = common::metric(
                    &text,
                    "wasmhook_plugin_invocations_total{plugin=\"bench\",outcome=\"skip\"}",
                )
                .unwrap_or(0.0);
                if done as usize >= n {
                    break;
                }
                assert!(Instant::now() < deadline, "not all events were invoked");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            println!(
                "invocation stage: {:.0} events/s invoked and recorded (raw {raw_rate:.0} req/s, ingest {:.0} events/s)",
                n as f64 / start.elapsed().as_secs_f64(),
                n as f64 / accept_elapsed.as_secs_f64()
            );
            return;
        }
        while receiver.delivered("/hook") < n {
            assert!(Instant::now() < deadline, "not all events were delivered");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let delivered_elapsed = start.elapsed();
        drop(serve);
        let mut log = receiver.log();
        let arrivals = &log.path("/hook").first;
        let mut latencies: Vec<Duration> = acked
            .iter()
            .map(|(id, at)| arrivals[id].saturating_duration_since(*at))
            .collect();
        latencies.sort();
        let accept_rate = n as f64 / accept_elapsed.as_secs_f64();
        let delivered_rate = n as f64 / delivered_elapsed.as_secs_f64();
        println!(
            "pipeline bench: {n} events, {concurrency} concurrent clients, {batch} event(s) per ingest request, loopback"
        );
        println!("  raw loopback HTTP baseline:   {raw_rate:>9.0} req/s");
        println!("  wasmhook accepted (202):      {accept_rate:>9.0} events/s");
        println!(
            "  wasmhook delivered end to end:{delivered_rate:>9.0} events/s   ({:.2} of raw)",
            delivered_rate / raw_rate
        );
        println!(
            "  accept→delivered latency:     p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            latencies.last().unwrap().as_secs_f64() * 1e3
        );
    });
}
