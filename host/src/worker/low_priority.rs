//! Threads that run untrusted-for-now plugins at the lowest CPU priority.
//!
//! Runs of plugins that are new (none of their runs has ended yet) or
//! failing (their breaker saw runs stopped by the sandbox) go to these
//! threads instead of tokio's blocking pool. On Linux each thread lowers
//! its own priority to nice 19 when it starts, so a plugin spinning to its
//! deadline or faulting in a memory bomb takes CPU only when the rest of
//! the host (ingest, the store writer, deliveries, healthy plugins) does
//! not want it. The slot scheduler still bounds how many run at once; this
//! only decides who yields the CPU. A thread cannot raise its priority
//! back without privileges, which is why these threads are kept apart.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, mpsc};

use tokio::sync::oneshot;

/// The nice value of the threads (the lowest priority).
const NICE: i32 = 19;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed pool of low-priority threads.
pub(super) struct LowPriorityPool {
    jobs: mpsc::Sender<Job>,
}

/// The job panicked (the panic is contained; the thread lives on).
#[derive(Debug, thiserror::Error)]
#[error("the low-priority thread running the plugin panicked")]
pub(super) struct Panicked;

impl LowPriorityPool {
    /// Start `threads` threads (at least one).
    pub(super) fn new(threads: usize) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("wasmhook-lowprio-{i}"))
                .spawn(move || {
                    lower_own_priority();
                    loop {
                        // The lock is held only while waiting for a job.
                        let job = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok(job) = job else {
                            return; // the pool was dropped
                        };
                        job();
                    }
                })?;
        }
        Ok(Self { jobs })
    }

    /// Run `f` on one of the threads and wait for its result.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Panicked> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let out = std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|_| Panicked);
            let _ = tx.send(out);
        });
        if self.jobs.send(job).is_err() {
            return Err(Panicked);
        }
        rx.await.unwrap_or(Err(Panicked))
    }
}

#[cfg(target_os = "linux")]
#[expect(
    unsafe_code,
    reason = "setpriority(2) on the calling thread; libc has no safe wrapper"
)]
fn lower_own_priority() {
    // SAFETY: plain syscalls on the calling thread's own id.
    let rc = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, NICE)
    };
    if rc != 0 {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "cannot lower the priority of a plugin thread"
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_own_priority() {
    // Elsewhere nice applies to the whole process; leave it alone.
    let _ = NICE;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_and_contains_panics() {
        let pool = LowPriorityPool::new(1).unwrap();
        assert_eq!(pool.run(|| 6 * 7).await.unwrap(), 42);
        assert!(pool.run(|| panic!("boom")).await.is_err());
        assert_eq!(pool.run(|| "still alive").await.unwrap(), "still alive");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    #[expect(unsafe_code, reason = "getpriority(2) on the calling thread")]
    async fn its_threads_run_at_the_lowest_priority() {
        let pool = LowPriorityPool::new(1).unwrap();
        let nice = pool
            .run(|| {
                // SAFETY: reads the calling thread's own priority.
                unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
            })
            .await
            .unwrap();
        assert_eq!(nice, NICE);
    }
}
