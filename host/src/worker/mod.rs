//! The workers: one loop leases invocation jobs and runs plugins, the other
//! leases due deliveries and sends them. Both settle their work in the store
//! and stop leasing when shutdown begins; work they leased but could not
//! finish is released (or its lease simply expires) and is picked up again,
//! by this process after a restart or by another.
//!
//! The worker is where the stages meet (runtime → policy → delivery); it
//! holds no state of its own beyond concurrency permits.

mod deliver;
mod invoke;
mod low_priority;
mod pause;
mod slots;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::app::App;

/// How long a worker sleeps when there is nothing to do and nobody wakes it.
const IDLE_POLL: Duration = Duration::from_millis(250);

/// Lease time beyond the longest deadline of the work (plugin timeout or
/// delivery timeout). A job whose holder died comes back after its lease
/// ends, so this bounds recovery time after a crash.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// Concurrency of the two loops.
#[derive(Debug, Clone, Copy)]
pub struct WorkerConfig {
    /// Plugin invocations running at once (each on a blocking thread).
    pub invocations: usize,
    /// Invocation jobs leased at once: the ones waiting for a plugin slot
    /// or for their result to be committed. Many in flight lets the store
    /// commit their results together (group commit).
    pub invocation_jobs: usize,
    /// Deliveries in flight at once (across all destinations).
    pub deliveries: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            invocations: cores * 2,
            invocation_jobs: 256,
            deliveries: 256,
        }
    }
}

/// Run both loops until `shutdown` turns true, then wait for in-flight work
/// (bounded by the caller's grace period).
pub async fn run(app: Arc<App>, config: WorkerConfig, shutdown: watch::Receiver<bool>) {
    let mut set = JoinSet::new();
    set.spawn(invoke::run(
        app.clone(),
        config.invocation_jobs,
        config.invocations,
        shutdown.clone(),
    ));
    set.spawn(deliver::run(app, config.deliveries, shutdown));
    while let Some(res) = set.join_next().await {
        if let Err(e) = res {
            tracing::error!(error = %e, "a worker loop panicked");
        }
    }
}

/// Wait for a wake-up, the idle poll, or shutdown.
async fn idle(notify: &tokio::sync::Notify, shutdown: &mut watch::Receiver<bool>, wait: Duration) {
    tokio::select! {
        _ = notify.notified() => {}
        _ = tokio::time::sleep(wait) => {}
        _ = shutdown.changed() => {}
    }
}
