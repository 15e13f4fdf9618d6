//! The loop both workers share: start jobs handed over in process as they
//! come, and lease the rest from the store in batches (at start, when
//! woken, and when the source says to look again), each job started with
//! one of a fixed number of permits.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};

use crate::store::StoreError;

/// Where one loop's jobs come from besides the hand-off.
pub(super) trait Source: Send {
    /// An invocation job or a delivery.
    type Job: Send + 'static;

    /// What a failed lease call is logged as.
    const LEASE_FAILED: &'static str;

    /// Lease up to `limit` due jobs from the store.
    fn lease(
        &mut self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Self::Job>, StoreError>> + Send;

    /// How long to wait before leasing again, after a lease call that
    /// returned `got` jobs, fewer than asked (a full answer is followed by
    /// another call at once).
    fn next_poll(&mut self, got: usize) -> impl Future<Output = Duration> + Send;

    /// Runs before each job is taken (the invocation loop tends paused
    /// plugins here).
    fn tend(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Feed `start` until `shutdown` turns true, then wait until every permit
/// is back (the caller bounds that wait). At most `concurrency` jobs run at
/// once; a lease call asks for as many jobs as there are free permits, up
/// to `batch`.
pub(super) async fn feed<S: Source>(
    source: &mut S,
    concurrency: usize,
    batch: usize,
    handed: &mut mpsc::Receiver<S::Job>,
    ready: &Notify,
    shutdown: &mut watch::Receiver<bool>,
    start: impl Fn(S::Job, OwnedSemaphorePermit),
) {
    let permits = Arc::new(Semaphore::new(concurrency));
    let limit = batch.clamp(1, concurrency.max(1));
    let mut poll_at = Instant::now();
    while !*shutdown.borrow() {
        source.tend().await;
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        if Instant::now() >= poll_at {
            // As many jobs as there are free permits, up to a batch; never
            // waiting for more, so jobs that hold permits for long (a slow
            // plugin's) cannot stall the loop and the handed jobs behind it.
            let mut permits_for_batch = permit;
            let extra = permits.available_permits().min(limit - 1);
            // (If they were taken meanwhile, lease just one.)
            if let Ok(more) = permits.clone().try_acquire_many_owned(extra as u32) {
                permits_for_batch.merge(more);
            }
            let want = permits_for_batch.num_permits();
            match source.lease(want).await {
                Ok(jobs) => {
                    if jobs.len() < want {
                        poll_at = Instant::now() + source.next_poll(jobs.len()).await;
                    }
                    for job in jobs {
                        // One permit per job; the unused ones go back with
                        // `permits_for_batch`.
                        let Some(permit) = permits_for_batch.split(1) else {
                            break;
                        };
                        start(job, permit);
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "{}", S::LEASE_FAILED);
                    poll_at = Instant::now() + super::IDLE_POLL;
                }
            }
            continue;
        }
        tokio::select! {
            job = handed.recv() => match job {
                Some(job) => start(job, permit),
                None => break,
            },
            _ = ready.notified() => poll_at = Instant::now(),
            _ = tokio::time::sleep_until(poll_at.into()) => {}
            _ = shutdown.changed() => {}
        }
    }
    let _ = permits.acquire_many(concurrency as u32).await;
}
