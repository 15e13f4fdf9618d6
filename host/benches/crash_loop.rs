//! Crash loop: `kill -9` the host at random moments under a steady stream
//! of events, restart it on the same database and port, and count what
//! was accepted, delivered, lost and duplicated.
//!
//! `cargo bench -p wasmhook --bench crash_loop` (after
//! `scripts/build-plugins.sh`). Environment: `KILLS` (default 25), `RATE`
//! events/s (default 200), `SEED` (default: the clock; printed), `DRAIN_S`
//! (default 120: how long to wait for the queue to drain at the end).
//!
//! A client streams events with unique ids to `wasmhook serve` (the built
//! binary, SQLite in a temp dir), retrying each one (same id) while the
//! host is down; an event counts as accepted only once a 202 came back.
//! The `hostile` fixture in `ok` mode turns each event into one signed
//! webhook to a loopback receiver, which records every `webhook-id`. After
//! a random 0.2–2 s the host is killed with SIGKILL and restarted at once.
//! At the end the driver waits for every accepted event to arrive and the
//! queues to empty, prints the counts, and exits 1 if any accepted event
//! was lost.

mod common;

use std::time::{Duration, Instant};

use common::client::{self, Pace};
use common::receiver::Receiver;
use common::serve::{Serve, write_config};
use common::{PluginBlock, env_or, metric};

/// A small xorshift generator: reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `lo..hi` milliseconds.
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo))
    }
}

/// Start the host, retrying a few times (the port may still be held for
/// a moment by the killed process).
fn start(config: &std::path::Path) -> Serve {
    let mut last = String::new();
    for _ in 0..10 {
        match Serve::start(config) {
            Ok(s) => return s,
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("crash loop: the host does not start any more:\n{last}");
    std::process::exit(2);
}

fn main() {
    if common::is_list_request() {
        return;
    }
    let kills: usize = env_or("KILLS", 25);
    let rate: f64 = env_or("RATE", 200.0);
    let drain_s: u64 = env_or("DRAIN_S", 120);
    let seed: u64 = env_or(
        "SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1,
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let lost = rt.block_on(run(kills, rate, drain_s, seed));
    std::process::exit(if lost == 0 { 0 } else { 1 });
}

/// The whole run; the number of lost events.
async fn run(kills: usize, rate: f64, drain_s: u64, seed: u64) -> usize {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    // A fixed port, so that clients reach every incarnation at one address.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let plugin = PluginBlock {
        delivery_extra: "timeout_s = 5\nretry_schedule_s = [1, 1, 2, 5, 10, 30, 60]",
        ..PluginBlock::ok("crash", "bench.*", receiver.addr)
    };
    let config = write_config(
        dir.path(),
        &(common::config_head(&listen, &dir.path().join("crash.db")) + &plugin.render()),
    );
    println!(
        "crash loop: {kills} kills, {rate} events/s, seed {seed}, host on {listen}, receiver on {}",
        receiver.addr
    );
    let mut rng = Rng(seed);
    let mut serve = start(&config);
    let started = Instant::now();
    let (stream, stream_done) = client::paced(
        format!("http://{listen}/v1/events"),
        Pace {
            rate,
            prefix: format!("crash-{seed}"),
            retry: true,
            max_in_flight: 64,
        },
    );
    let mut restart_ms = Vec::new();
    for k in 1..=kills {
        let up = rng.millis(200, 2000);
        tokio::time::sleep(up).await;
        serve.kill9();
        let t = Instant::now();
        serve = tokio::task::block_in_place(|| start(&config));
        restart_ms.push(t.elapsed().as_secs_f64() * 1e3);
        println!(
            "  kill {k:>2}/{kills} after {:>4} ms up; accepted so far {:>6}, delivered {:>6}; restarted in {:.0} ms",
            up.as_millis(),
            stream.accepted_n.load(std::sync::atomic::Ordering::Relaxed),
            receiver.delivered("/hook"),
            restart_ms.last().unwrap()
        );
    }
    // A last stretch of undisturbed load, then stop and settle the
    // events still being retried.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stream.stop();
    let _ = stream_done.await;
    let load_s = started.elapsed().as_secs_f64();

    // Drain: every accepted event delivered and both queues empty.
    let accepted = std::mem::take(&mut *stream.accepted.lock().unwrap());
    let http = client::http(2);
    let drain_start = Instant::now();
    let deadline = drain_start + Duration::from_secs(drain_s);
    let mut depth = (f64::NAN, f64::NAN);
    loop {
        if let Some(text) = client::admin_get(&http, &serve.url("/metrics")).await {
            depth = (
                metric(&text, "wasmhook_queue_depth{queue=\"invocations\"}").unwrap_or(f64::NAN),
                metric(&text, "wasmhook_queue_depth{queue=\"deliveries\"}").unwrap_or(f64::NAN),
            );
        }
        let all_arrived = {
            let mut log = receiver.log();
            let first = &log.path("/hook").first;
            accepted.keys().all(|id| first.contains_key(id))
        };
        if (all_arrived && depth == (0.0, 0.0)) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drain = drain_start.elapsed();

    let mut log = receiver.log();
    let hook = log.path("/hook");
    let lost: Vec<&String> = accepted
        .keys()
        .filter(|id| !hook.first.contains_key(*id))
        .collect();
    let unacked = hook
        .first
        .keys()
        .filter(|id| !accepted.contains_key(*id))
        .count();
    let dup_ids = hook.webhook_ids.values().filter(|n| **n > 1).count();
    let dup_extra: u64 = hook
        .webhook_ids
        .values()
        .map(|n| u64::from(n.saturating_sub(1)))
        .sum();
    restart_ms.sort_by(f64::total_cmp);
    println!(
        "crash loop result ({kills} × kill -9 over {load_s:.1} s of load, drained in {:.1} s):",
        drain.as_secs_f64()
    );
    println!(
        "  events started by the client:        {:>7}",
        stream.started.load(std::sync::atomic::Ordering::Relaxed)
    );
    println!(
        "  events accepted (202 received):      {:>7}",
        accepted.len()
    );
    println!(
        "  ingest attempts failed (retried):    {:>7}",
        stream
            .failed_attempts
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    println!(
        "  events given up by the client:       {:>7}",
        stream.rejected.load(std::sync::atomic::Ordering::Relaxed)
    );
    println!(
        "  webhook requests received:           {:>7}",
        hook.requests
    );
    println!(
        "  distinct webhook-ids (deliveries):   {:>7}",
        hook.webhook_ids.len()
    );
    println!(
        "  distinct events delivered:           {:>7}",
        hook.first.len()
    );
    println!(
        "  delivered but never acknowledged:    {:>7}   (202 lost in a crash; not counted as accepted)",
        unacked
    );
    println!("  LOST (accepted, never delivered):    {:>7}", lost.len());
    println!(
        "  duplicated webhook-ids:              {:>7}   ({dup_extra} extra requests)",
        dup_ids
    );
    println!(
        "  webhook-ids beyond one per event:    {:>7}   (deliveries created twice for an event)",
        hook.webhook_ids.len().saturating_sub(hook.first.len())
    );
    println!(
        "  queue depth at the end:              invocations {}, deliveries {}",
        depth.0, depth.1
    );
    println!(
        "  restart (spawn → listening):         median {:.0} ms, max {:.0} ms",
        restart_ms.get(restart_ms.len() / 2).copied().unwrap_or(0.0),
        restart_ms.last().copied().unwrap_or(0.0)
    );
    for id in lost.iter().take(10) {
        println!("  lost: {id}");
    }
    if !lost.is_empty() {
        println!("host log tail:\n{}", serve.log_tail());
    }
    lost.len()
}
