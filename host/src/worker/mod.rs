//! The workers: one loop runs plugins on invocation jobs, the other sends
//! deliveries. Fresh jobs reach them in process, already leased by the
//! write that created them (`handoff.rs`); the rest (retries, replays, work
//! left by a crash, jobs created while the hand-off was full) they lease
//! from the store. Both settle their work in the store and stop when
//! shutdown begins; work they hold but could not finish is released (or
//! its lease simply expires) and is picked up again, by this process after
//! a restart or by another.
//!
//! The worker is where the stages meet (runtime → policy → delivery); it
//! holds no state of its own beyond concurrency permits.

mod deliver;
mod expiry;
mod feed;
mod handoff;
mod hold;
mod invoke;
mod low_priority;
mod pause;
mod slots;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::app::App;

pub use handoff::{HANDOFF_CAPACITY, HandedJobs, Handoff, insert_events};
pub use hold::{hold_plugin, restore_holds, resume_plugin};
pub use pause::{forget_replaced_pauses, restore_pauses};

/// How long a worker sleeps when there is nothing to do and nobody wakes it.
const IDLE_POLL: Duration = Duration::from_millis(250);

/// Lease time beyond the longest deadline of the work (plugin timeout or
/// delivery timeout). A job whose holder died comes back after its lease
/// ends, so this bounds recovery time after a crash.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// Lease time a job must still have when it starts, beyond its deadline,
/// for its result to be recorded under the lease.
const LEASE_LEFT_MARGIN: Duration = Duration::from_secs(1);

/// Whether a leased job may start work that takes up to `deadline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LeaseLeft {
    /// Enough: the work and its record fit in the lease.
    Enough,
    /// The lease ends before the work could: the job must go back to the
    /// queue, or the store would hand it out again while it runs here.
    TooShort,
    /// The lease is over: the store hands the job out again, and it is no
    /// longer this holder's to touch.
    Over,
}

fn lease_left(lease_until_ms: u64, now_ms: u64, deadline: Duration) -> LeaseLeft {
    let needed = (deadline + LEASE_LEFT_MARGIN).as_millis() as u64;
    if now_ms >= lease_until_ms {
        LeaseLeft::Over
    } else if now_ms.saturating_add(needed) > lease_until_ms {
        LeaseLeft::TooShort
    } else {
        LeaseLeft::Enough
    }
}

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
/// (bounded by the caller's grace period) and give back the handed jobs
/// nobody started.
pub async fn run(
    app: Arc<App>,
    config: WorkerConfig,
    handed: HandedJobs,
    shutdown: watch::Receiver<bool>,
) {
    let HandedJobs {
        invocations,
        deliveries,
    } = handed;
    let invoking = tokio::spawn(invoke::run(
        app.clone(),
        config.invocation_jobs,
        config.invocations,
        invocations,
        shutdown.clone(),
    ));
    let delivering = tokio::spawn(deliver::run(
        app.clone(),
        config.deliveries,
        deliveries,
        shutdown,
    ));
    let (invocations, deliveries) = tokio::join!(invoking, delivering);
    match invocations {
        Ok((rx, in_hand)) => handoff::give_back_invocations(&app, rx, in_hand).await,
        Err(e) => tracing::error!(error = %e, "the invocation loop panicked"),
    }
    match deliveries {
        Ok((rx, in_hand)) => handoff::give_back_deliveries(&app, rx, in_hand).await,
        Err(e) => tracing::error!(error = %e, "the delivery loop panicked"),
    }
}

/// The lease of an invocation job: long enough for any plugin's deadline
/// plus queueing for an executor; a crashed worker's jobs come back soon
/// after.
fn invocation_lease_ms(app: &App) -> u64 {
    (app.plugins().max_plugin_timeout() + LEASE_MARGIN).as_millis() as u64
}

/// The lease of a delivery: its timeout plus the margin.
fn delivery_lease_ms(app: &App) -> u64 {
    (app.plugins().max_delivery_timeout() + LEASE_MARGIN).as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_starts_only_with_its_deadline_and_a_second_left() {
        let deadline = Duration::from_millis(100);
        assert_eq!(lease_left(10_000, 8_000, deadline), LeaseLeft::Enough);
        assert_eq!(lease_left(10_000, 8_900, deadline), LeaseLeft::Enough);
        assert_eq!(lease_left(10_000, 8_901, deadline), LeaseLeft::TooShort);
        assert_eq!(lease_left(10_000, 10_000, deadline), LeaseLeft::Over);
        assert_eq!(
            lease_left(10_000, 0, Duration::from_secs(30)),
            LeaseLeft::TooShort
        );
    }
}
