//! The store alone, under the pipeline's write pattern: how many events per
//! second the SQLite backend takes through every durable state change the
//! worker makes (insert, lease, decision + delivery, attempt), with no HTTP
//! and no Wasm in the way, and how many bytes it writes per event.
//!
//! `cargo bench -p wasmhook --bench store`. Environment: `EVENTS` (default
//! 50000), `BATCH` (events per insert, default 100), `INFLIGHT` (jobs being
//! settled at once, default 256).
//!
//! After each mode every (finished) event is pruned as retention would,
//! in batches of 500, and the prune rate printed.
//!
//! Two ways through the queues, measured side by side in one run:
//! - `polled`: every job is leased by a lease call (the worker's recovery
//!   path: after a restart, or when the in-process hand-off is full);
//! - `handed`: jobs are leased to the caller by the write that creates
//!   them (`insert_events` and `complete_invocation` with a lease), which
//!   is how `serve` moves fresh work.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};
use wasmhook::model::{Event, Method, OutboundRequest};
use wasmhook::store::{
    Attempt, AttemptOutcome, Completion, InvocationOutcome, JobLease, NewEvent, NextStep,
    SqliteStore, Store, Verdict,
};

const LEASE_MS: u64 = 60_000;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn new_event(i: usize) -> NewEvent {
    let mut properties = serde_json::Map::new();
    properties.insert("n".into(), i.into());
    NewEvent {
        event: Event {
            id: format!("bench-{i}"),
            name: "bench.event".into(),
            user_id: Some(format!("u-{i}")),
            timestamp_ms: now_ms(),
            properties,
        },
        plugins: vec!["bench".into()],
        parked: Vec::new(),
        received_ms: now_ms(),
        source: None,
    }
}

fn request(i: u64) -> OutboundRequest {
    OutboundRequest {
        method: Method::Post,
        url: "http://127.0.0.1:9/hook".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: format!(r#"{{"n":{i}}}"#).into_bytes(),
    }
}

fn fire() -> InvocationOutcome {
    InvocationOutcome {
        verdict: Verdict::Fire,
        duration_us: 10,
        fuel: None,
    }
}

fn success() -> (Attempt, NextStep) {
    let attempt = Attempt {
        started_ms: now_ms(),
        duration_ms: 0,
        status_code: Some(200),
        error: None,
        outcome: AttemptOutcome::Success,
        response: None,
    };
    (attempt, NextStep::Succeeded)
}

/// Bytes this process has written (`/proc/self/io` `wchar`).
fn written() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("wchar: ").map(|v| v.trim().parse().ok()))
        })
        .flatten()
        .unwrap_or(0)
}

async fn insert_all(
    store: Arc<SqliteStore>,
    n: usize,
    batch: usize,
    lease: Option<JobLease>,
) -> mpsc::UnboundedReceiver<wasmhook::store::InvocationJob> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut tasks = tokio::task::JoinSet::new();
    let chunks: Vec<Vec<usize>> = (0..n)
        .collect::<Vec<_>>()
        .chunks(batch)
        .map(<[usize]>::to_vec)
        .collect();
    let gate = Arc::new(Semaphore::new(32));
    for chunk in chunks {
        let (store, tx, gate) = (store.clone(), tx.clone(), gate.clone());
        let permit = gate.acquire_owned().await.unwrap();
        tasks.spawn(async move {
            let events = chunk.into_iter().map(new_event).collect();
            let inserted = store.insert_events(events, lease).await.unwrap();
            for jobs in inserted.into_iter().map(|i| i.into_jobs()) {
                for job in jobs {
                    let _ = tx.send(job);
                }
            }
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
    rx
}

async fn settle_invocation(
    store: &SqliteStore,
    job_id: u64,
    handed: bool,
) -> Vec<wasmhook::store::DeliveryJob> {
    let lease = handed.then(|| JobLease {
        now_ms: now_ms(),
        lease_ms: LEASE_MS,
    });
    match store
        .complete_invocation(job_id, fire(), vec![request(job_id)], now_ms(), lease)
        .await
        .unwrap()
    {
        Completion::Recorded { leased, .. } => leased,
        other => panic!("{other:?}"),
    }
}

async fn settle_delivery(store: &SqliteStore, job: wasmhook::store::DeliveryJob) {
    let (attempt, next) = success();
    store
        .record_attempt(&job.id, &job.lease, attempt, next, now_ms())
        .await
        .unwrap();
}

/// Every event through the queues by lease calls.
async fn polled(store: Arc<SqliteStore>, n: usize, batch: usize, inflight: usize) {
    drop(insert_all(store.clone(), n, batch, None).await);
    let gate = Arc::new(Semaphore::new(inflight));
    let mut done = 0;
    while done < n {
        let free = gate.available_permits().clamp(1, 128);
        let jobs = store
            .lease_invocations(now_ms(), LEASE_MS, free)
            .await
            .unwrap();
        done += jobs.len();
        for job in jobs {
            let (store, permit) = (store.clone(), gate.clone().acquire_owned().await.unwrap());
            tokio::spawn(async move {
                settle_invocation(&store, job.id, false).await;
                drop(permit);
            });
        }
    }
    let _ = gate.acquire_many(inflight as u32).await.unwrap();
    let mut done = 0;
    while done < n {
        let free = gate.available_permits().clamp(1, 128);
        let jobs = store
            .lease_deliveries(now_ms(), LEASE_MS, free)
            .await
            .unwrap();
        done += jobs.len();
        for job in jobs {
            let (store, permit) = (store.clone(), gate.clone().acquire_owned().await.unwrap());
            tokio::spawn(async move {
                settle_delivery(&store, job).await;
                drop(permit);
            });
        }
    }
    let _ = gate.acquire_many(inflight as u32).await.unwrap();
}

/// Every job leased by the write that created it.
async fn handed(store: Arc<SqliteStore>, n: usize, batch: usize, inflight: usize) {
    let lease = JobLease {
        now_ms: now_ms(),
        lease_ms: LEASE_MS,
    };
    let mut jobs = insert_all(store.clone(), n, batch, Some(lease)).await;
    let gate = Arc::new(Semaphore::new(inflight));
    let mut count = 0;
    while let Some(job) = jobs.recv().await {
        count += 1;
        let (store, permit) = (store.clone(), gate.clone().acquire_owned().await.unwrap());
        tokio::spawn(async move {
            for delivery in settle_invocation(&store, job.id, true).await {
                settle_delivery(&store, delivery).await;
            }
            drop(permit);
        });
    }
    assert_eq!(count, n, "every event's job is handed over");
    let _ = gate.acquire_many(inflight as u32).await.unwrap();
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let n = env_or("EVENTS", 50_000);
    let batch = env_or("BATCH", 100);
    let inflight = env_or("INFLIGHT", 256);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("store bench: {n} events, {batch} per insert, {inflight} jobs settled at once");
    rt.block_on(async move {
        let modes = std::env::var("MODE").unwrap_or_else(|_| "polled,handed".into());
        for mode in modes.split(',') {
            let dir = tempfile::tempdir().unwrap();
            let store = Arc::new(SqliteStore::open(dir.path().join("bench.db")).unwrap());
            let (bytes, start) = (written(), Instant::now());
            match mode {
                "polled" => polled(store.clone(), n, batch, inflight).await,
                _ => handed(store.clone(), n, batch, inflight).await,
            }
            let elapsed = start.elapsed();
            let commits = store.commits();
            let bytes = written() - bytes;
            println!(
                "  {mode:<7} {:>8.0} events/s   {:>5.1} KiB written per event   {:>6.1} events per commit",
                n as f64 / elapsed.as_secs_f64(),
                bytes as f64 / 1024.0 / n as f64,
                n as f64 / commits.max(1) as f64,
            );
            // Retention: every event is finished; prune them all in the
            // batches `serve` uses.
            let start = Instant::now();
            let mut pruned = 0;
            loop {
                let k = store.prune(now_ms() + 1, 500).await.unwrap();
                pruned += k.deleted;
                if !k.more {
                    break;
                }
            }
            assert_eq!(pruned as usize, n, "every finished event pruned");
            println!(
                "          then pruned at {:>8.0} events/s",
                n as f64 / start.elapsed().as_secs_f64()
            );
            drop(store);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}
