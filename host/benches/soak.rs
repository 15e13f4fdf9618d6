//! Soak: a steady event stream into `wasmhook serve` for a fixed time,
//! reporting throughput, memory and queue depth over time.
//!
//! `cargo bench -p wasmhook --bench soak` (after `scripts/build-plugins.sh`).
//! Environment: `DURATION_S` (default 600), `RATE` events/s (default: half
//! of the delivered rate of a short max-rate probe run first, like the
//! pipeline bench: `PROBE_EVENTS`, default 3000, from 32 clients).
//!
//! The host is the built binary (SQLite in a temp dir, the `hostile`
//! fixture in `ok` mode, one signed webhook per event to a loopback
//! receiver). Every 10 s a line: elapsed, events accepted and delivered in
//! the interval, delivered events/s, the host's RSS (`VmRSS`) and queue
//! depth (`/metrics`). At the end: RSS at start, end and max, accepted vs
//! delivered, and whether memory kept growing (mean RSS of the last third
//! of the run vs the middle third). Exits 1 if an accepted event was not
//! delivered or memory kept growing.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::client::{self, Pace};
use common::receiver::Receiver;
use common::serve::{Serve, write_config};
use common::{PluginBlock, env_or, metric, mib};

/// Growth of the last third's mean RSS over the middle third's above
/// which (and above `GROWTH_MIN_KIB`) memory counts as growing.
const GROWTH_RATIO: f64 = 0.10;
const GROWTH_MIN_KIB: f64 = 16.0 * 1024.0;

fn main() {
    if common::is_list_request() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let ok = rt.block_on(run());
    std::process::exit(if ok { 0 } else { 1 });
}

/// Queue depth (invocations + deliveries) from `/metrics`.
async fn depth(http: &client::Http, serve: &Serve) -> Option<u64> {
    let text = client::admin_get(http, &serve.url("/metrics")).await?;
    let inv = metric(&text, "wasmhook_queue_depth{queue=\"invocations\"}")?;
    let del = metric(&text, "wasmhook_queue_depth{queue=\"deliveries\"}")?;
    Some((inv + del) as u64)
}

fn mean(xs: &[u64]) -> f64 {
    xs.iter().sum::<u64>() as f64 / xs.len().max(1) as f64
}

async fn run() -> bool {
    let duration = Duration::from_secs(env_or("DURATION_S", 600));
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let plugin = PluginBlock::ok("soak", "bench.*", receiver.addr);
    let config = write_config(
        dir.path(),
        &(common::config_head("127.0.0.1:0", &dir.path().join("soak.db")) + &plugin.render()),
    );
    let serve = Serve::start(&config).unwrap_or_else(|e| panic!("{e}"));
    let http = client::http(4);
    let rss_boot = serve.rss_kib().unwrap_or(0);

    // The rate: given, or half of what a short closed-loop probe delivers.
    let rate = match std::env::var("RATE")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
    {
        Some(r) => r,
        None => {
            let n: usize = env_or("PROBE_EVENTS", 3000);
            let start = Instant::now();
            client::drive(serve.url("/v1/events"), Some(common::INGEST_TOKEN), n, 32).await;
            let deadline = start + Duration::from_secs(120);
            while receiver.delivered("/hook") < n && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let max = receiver.delivered("/hook") as f64 / start.elapsed().as_secs_f64();
            println!("probe: {n} events from 32 clients, {max:.0} events/s delivered end to end");
            (max / 2.0).max(1.0)
        }
    };
    let probe_delivered = receiver.delivered("/hook");
    let rss_start = serve.rss_kib().unwrap_or(0);
    println!(
        "soak: {} s at {rate:.0} events/s; host RSS {} after start, {} at soak start",
        duration.as_secs(),
        mib(rss_boot),
        mib(rss_start)
    );
    println!(
        "{:>7} {:>9} {:>9} {:>10} {:>10} {:>7}",
        "elapsed", "accepted", "delivered", "events/s", "RSS", "queue"
    );

    let (stream, stream_done) = client::paced(
        serve.url("/v1/events"),
        Pace {
            rate,
            prefix: "soak".into(),
            retry: false,
            max_in_flight: 256,
        },
    );
    let start = Instant::now();
    let mut rss: Vec<u64> = Vec::new(); // one sample a second
    let (mut last_acc, mut last_del) = (0u64, probe_delivered);
    let mut next_line = Duration::from_secs(10);
    while start.elapsed() < duration {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss.push(serve.rss_kib().unwrap_or(0));
        if start.elapsed() >= next_line {
            let acc = stream.accepted_n.load(Ordering::Relaxed);
            let del = receiver.delivered("/hook");
            let q = depth(&http, &serve).await;
            println!(
                "{:>6.0}s {:>9} {:>9} {:>10.0} {:>10} {:>7}",
                start.elapsed().as_secs_f64(),
                acc - last_acc,
                del - last_del,
                (del - last_del) as f64 / 10.0,
                mib(*rss.last().unwrap()),
                q.map_or("?".into(), |q| q.to_string())
            );
            (last_acc, last_del) = (acc, del);
            next_line += Duration::from_secs(10);
        }
    }
    stream.stop();
    let _ = stream_done.await;
    let rss_end = serve.rss_kib().unwrap_or(0);

    // Drain, then count.
    let accepted = std::mem::take(&mut *stream.accepted.lock().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let undelivered = loop {
        let missing = {
            let mut log = receiver.log();
            let first = &log.path("/hook").first;
            accepted
                .keys()
                .filter(|id| !first.contains_key(*id))
                .count()
        };
        if missing == 0 || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let third = rss.len() / 3;
    let (mid, last) = (mean(&rss[third..2 * third]), mean(&rss[2 * third..]));
    let growth = last - mid;
    let growing = growth > GROWTH_MIN_KIB && growth / mid.max(1.0) > GROWTH_RATIO;
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "soak result ({:.0} s at {rate:.0} events/s):",
        duration.as_secs_f64()
    );
    println!(
        "  accepted {} (rejected {}), delivered {} ({} not delivered 60 s after the end), {:.0} delivered events/s",
        accepted.len(),
        stream.rejected.load(Ordering::Relaxed),
        accepted.len() - undelivered,
        undelivered,
        (accepted.len() - undelivered) as f64 / elapsed
    );
    println!(
        "  RSS: {} after start, {} at soak start, {} at the end, max {} (peak VmHWM {})",
        mib(rss_boot),
        mib(rss_start),
        mib(rss_end),
        mib(rss.iter().copied().max().unwrap_or(0)),
        mib(serve.peak_rss_kib().unwrap_or(0))
    );
    println!(
        "  RSS mean: middle third {}, last third {} ({:+.1} %): {}",
        mib(mid as u64),
        mib(last as u64),
        growth / mid.max(1.0) * 100.0,
        if growing {
            "GROWING (memory did not level off)"
        } else {
            "bounded"
        }
    );
    let db = std::fs::metadata(dir.path().join("soak.db")).map_or(0, |m| m.len());
    println!("  SQLite file at the end: {}", mib(db / 1024));
    undelivered == 0 && !growing
}
