//! The loop both workers share: start jobs handed over in process as they
//! come, and lease the rest from the store in batches (at start, when
//! woken, and when the source says to look again), each job started with
//! one of a fixed number of permits.
//!
//! The two halves run side by side in one task: the store calls of the
//! polling half (lease calls, the invocation loop's tending of paused
//! plugins), each a write that waits for a group commit, never delay a
//! handed job, which is the path every fresh event takes.

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

    /// How often [`Source::tend`] must run even when nothing wakes the
    /// loop; `None` when tending does nothing.
    const TEND_EVERY: Option<Duration> = None;

    /// Lease up to `limit` due jobs from the store.
    fn lease(
        &mut self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Self::Job>, StoreError>> + Send;

    /// How long to wait before leasing again, after a lease call that
    /// returned `got` jobs, fewer than asked (a full answer is followed by
    /// another call at once).
    fn next_poll(&mut self, got: usize) -> impl Future<Output = Duration> + Send;

    /// Housekeeping of the polling half, before each lease call and at
    /// least every [`Source::TEND_EVERY`] (the invocation loop tends
    /// paused plugins here).
    fn tend(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Feed `start` until `shutdown` turns true, then wait until every permit
/// is back (the caller bounds that wait). At most `concurrency` jobs run at
/// once; a lease call asks for as many jobs as there are free permits, up
/// to `batch`. Returns a handed job that was taken from the channel but
/// not started when shutdown began (the caller gives it back with the
/// channel's rest).
pub(super) async fn feed<S: Source>(
    source: &mut S,
    concurrency: usize,
    batch: usize,
    handed: &mut mpsc::Receiver<S::Job>,
    ready: &Notify,
    shutdown: &watch::Receiver<bool>,
    start: impl Fn(S::Job, OwnedSemaphorePermit),
) -> Option<S::Job> {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let limit = batch.clamp(1, concurrency.max(1));
    let (in_hand, ()) = tokio::join!(
        feed_handed(handed, &permits, shutdown.clone(), &start),
        feed_polled(source, limit, &permits, ready, shutdown.clone(), &start),
    );
    let _ = permits.acquire_many(concurrency.max(1) as u32).await;
    in_hand
}

/// Start handed jobs as they come, each once a permit is free.
async fn feed_handed<J>(
    handed: &mut mpsc::Receiver<J>,
    permits: &Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
    start: &impl Fn(J, OwnedSemaphorePermit),
) -> Option<J> {
    while !*shutdown.borrow_and_update() {
        let job = tokio::select! {
            job = handed.recv() => match job {
                Some(job) => job,
                None => return None,
            },
            changed = shutdown.changed() => match changed {
                Ok(()) => continue,
                Err(_) => return None, // the sender is gone: stop
            },
        };
        // The permit is taken after the job: holding one while idle would
        // keep it from the polling half.
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit,
            _ = shutdown.changed() => return Some(job),
        };
        let Ok(permit) = permit else {
            return Some(job);
        };
        start(job, permit);
    }
    None
}

/// Lease due jobs from the store and start them: at start, when `ready`
/// is notified, and when the source says to look again.
async fn feed_polled<S: Source>(
    source: &mut S,
    limit: usize,
    permits: &Arc<Semaphore>,
    ready: &Notify,
    mut shutdown: watch::Receiver<bool>,
    start: &impl Fn(S::Job, OwnedSemaphorePermit),
) {
    let mut poll_at = Instant::now();
    while !*shutdown.borrow_and_update() {
        source.tend().await;
        if Instant::now() >= poll_at {
            let permit = tokio::select! {
                permit = permits.clone().acquire_owned() => permit,
                changed = shutdown.changed() => match changed {
                    Ok(()) => continue,
                    Err(_) => return,
                },
            };
            let Ok(mut permits_for_batch) = permit else {
                return;
            };
            // As many jobs as there are free permits, up to a batch; never
            // waiting for more, so jobs that hold permits for long (a slow
            // plugin's) cannot stall the loop.
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
        let wake_at = match S::TEND_EVERY {
            Some(every) => poll_at.min(Instant::now() + every),
            None => poll_at,
        };
        tokio::select! {
            _ = ready.notified() => poll_at = Instant::now(),
            _ = tokio::time::sleep_until(wake_at.into()) => {}
            changed = shutdown.changed() => if changed.is_err() {
                return;
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A source whose store calls hang until the test opens `gate` (a
    /// writer stuck behind a long commit), then find nothing.
    struct Stuck {
        gate: Arc<Semaphore>,
        /// Gains a permit each time a lease call starts.
        leasing: Arc<Semaphore>,
        tend_blocks: bool,
    }

    impl Stuck {
        fn new(tend_blocks: bool) -> (Self, Arc<Semaphore>, Arc<Semaphore>) {
            let gate = Arc::new(Semaphore::new(0));
            let leasing = Arc::new(Semaphore::new(0));
            let source = Self {
                gate: gate.clone(),
                leasing: leasing.clone(),
                tend_blocks,
            };
            (source, gate, leasing)
        }
    }

    impl Source for Stuck {
        type Job = u32;
        const LEASE_FAILED: &'static str = "lease failed";
        const TEND_EVERY: Option<Duration> = Some(Duration::from_millis(1));

        async fn lease(&mut self, _limit: usize) -> Result<Vec<u32>, StoreError> {
            self.leasing.add_permits(1);
            let _ = self.gate.acquire().await;
            Ok(Vec::new())
        }

        async fn next_poll(&mut self, _got: usize) -> Duration {
            Duration::from_millis(1)
        }

        async fn tend(&mut self) {
            if self.tend_blocks {
                let _ = self.gate.acquire().await;
            }
        }
    }

    type Started = Arc<Mutex<Vec<(u32, OwnedSemaphorePermit)>>>;

    /// Run `feed` on `source` with `concurrency` permits; returns what it
    /// started, the sender of handed jobs, the shutdown switch and the
    /// task (which yields the job in hand).
    fn spawn_feed(
        mut source: Stuck,
        concurrency: usize,
    ) -> (
        Started,
        mpsc::Sender<u32>,
        watch::Sender<bool>,
        tokio::task::JoinHandle<Option<u32>>,
    ) {
        let started = Started::default();
        let (tx, mut rx) = mpsc::channel(8);
        let (stop, shutdown) = watch::channel(false);
        let task = tokio::spawn({
            let started = started.clone();
            async move {
                let ready = Notify::new();
                let start = |job, permit| started.lock().unwrap().push((job, permit));
                feed(
                    &mut source,
                    concurrency,
                    4,
                    &mut rx,
                    &ready,
                    &shutdown,
                    start,
                )
                .await
            }
        });
        (started, tx, stop, task)
    }

    /// Stop the feed: shutdown, let the stuck calls return, wait.
    async fn stop_feed(
        stop: watch::Sender<bool>,
        gate: &Semaphore,
        task: tokio::task::JoinHandle<Option<u32>>,
    ) -> Option<u32> {
        stop.send(true).unwrap();
        gate.add_permits(Semaphore::MAX_PERMITS / 2);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the feed stopped")
            .unwrap()
    }

    #[tokio::test]
    async fn handed_jobs_start_while_a_lease_call_or_tending_hangs() {
        for tend_blocks in [false, true] {
            let (source, gate, _) = Stuck::new(tend_blocks);
            let (started, tx, stop, task) = spawn_feed(source, 4);
            for job in 1..=3 {
                tx.send(job).await.unwrap();
            }
            tokio::time::timeout(Duration::from_secs(5), async {
                while started.lock().unwrap().len() < 3 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
            .await
            .unwrap_or_else(|_| {
                panic!("handed jobs waited for the store (tend blocks: {tend_blocks})")
            });
            let jobs: Vec<u32> = started.lock().unwrap().iter().map(|(j, _)| *j).collect();
            assert_eq!(jobs, [1, 2, 3]);
            started.lock().unwrap().clear(); // their permits come back
            assert_eq!(stop_feed(stop, &gate, task).await, None);
        }
    }

    #[tokio::test]
    async fn shutdown_returns_the_handed_job_waiting_for_a_permit() {
        // One permit, held by the polling half's stuck lease call: a
        // handed job can only wait for it.
        let (source, gate, leasing) = Stuck::new(false);
        let (started, tx, stop, task) = spawn_feed(source, 1);
        leasing.acquire().await.unwrap().forget();
        tx.send(7).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(started.lock().unwrap().is_empty());
        assert_eq!(
            stop_feed(stop, &gate, task).await,
            Some(7),
            "given back to the caller"
        );
        assert!(started.lock().unwrap().is_empty(), "and not started");
    }
}
