//! How one loaded plugin's runs have been going: the state the invocation
//! worker keeps per plugin to schedule it and pause it. Held by the
//! [`crate::registry::LoadedPlugin`]; a reload hands it on to the new set
//! while the plugin runs as before, and starts afresh otherwise.
//!
//! - A [`Breaker`] over runs the sandbox had to stop (timeout, trap,
//!   memory, fuel, invalid output): enough of them in a row pause the
//!   plugin; after the pause one probe runs; a success resumes it.
//! - Whether any run has ended well yet (*proven*): an unproven plugin is
//!   scheduled carefully.
//! - Whether jobs were *parked* in the store while it was paused, so they
//!   can be made due again when it recovers (or one of them, to probe).
//! - What it is about (*identity*: a digest of the component, limits and
//!   settings) and whether the store may remember its pause, so a restart
//!   resumes a pause only for a plugin that runs as it did.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::breaker::{Admission, Breaker, BreakerConfig, Health, HeldProbe};
use crate::config::BreakerTuning;
/// Least time between two unparks of a probe job for one plugin.
const PROBE_UNPARK_EVERY_MS: u64 = 1_000;

/// See the module docs.
pub struct RunHealth {
    /// The breaker is keyed; this one has a single key.
    key: String,
    breaker: Breaker,
    proven: AtomicBool,
    parked: AtomicBool,
    probe_unparked_ms: AtomicU64,
    identity: String,
    /// Set before the pause is written to the store and cleared once the
    /// store has forgotten it: a success that sees it clear knows the store
    /// holds no pause it must forget (see `worker/pause.rs`).
    remembered: AtomicBool,
    /// Writes of the pause to the store take turns, so they land in order.
    remembering: tokio::sync::Mutex<()>,
}

impl RunHealth {
    /// Fresh state for the plugin `name` whose deadline is `timeout_ms`,
    /// paused as `tuning` (`[breakers.plugins]`) says; `identity` digests
    /// how it runs.
    pub fn new(name: &str, timeout_ms: u64, tuning: BreakerTuning, identity: String) -> Self {
        Self {
            key: name.to_owned(),
            // A probe reports back within its deadline unless its worker
            // died.
            breaker: Breaker::new(BreakerConfig::new(
                tuning,
                Duration::from_millis(timeout_ms) + Duration::from_secs(10),
            )),
            proven: AtomicBool::new(false),
            parked: AtomicBool::new(false),
            probe_unparked_ms: AtomicU64::new(0),
            identity,
            remembered: AtomicBool::new(false),
            remembering: tokio::sync::Mutex::new(()),
        }
    }

    /// A digest of how the plugin runs (component, limits, settings).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The pause the plugin is in: time left (zero once the probe is due
    /// or running) and its length; `None` when it is not paused.
    pub fn pause(&self, now: Instant) -> Option<(Duration, Duration)> {
        self.breaker.pause(&self.key, now)
    }

    /// Resume a pause the store remembered from before a restart: `left`
    /// more of a pause of length `length`. Its jobs are parked, and the
    /// store holds the pause.
    pub fn restore_pause(&self, left: Duration, length: Duration, now: Instant) {
        self.breaker.restore_pause(&self.key, left, length, now);
        self.mark_parked();
        self.remembered.store(true, Ordering::SeqCst);
    }

    /// Whether the store may hold a pause of this plugin.
    pub fn remembered(&self) -> bool {
        self.remembered.load(Ordering::SeqCst)
    }

    /// Note whether the store may hold a pause of this plugin.
    pub fn set_remembered(&self, remembered: bool) {
        self.remembered.store(remembered, Ordering::SeqCst);
    }

    /// Wait for this plugin's turn to write its pause to the store.
    pub async fn remembering(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.remembering.lock().await
    }

    /// May a run start now? In the half-open state the first caller gets
    /// the probe.
    pub fn allow(&self, now: Instant) -> Admission {
        self.breaker.allow(&self.key, now)
    }

    /// What a job admitted as `admission` holds until its run starts
    /// (see [`HeldProbe`]).
    pub fn hold(&self, admission: Admission) -> HeldProbe<'_> {
        self.breaker.hold(&self.key, admission)
    }

    /// The breaker's state (does not take the probe).
    pub fn health(&self, now: Instant) -> Health {
        self.breaker.health(&self.key, now)
    }

    /// Report a run; `stopped` when the sandbox had to stop it. Returns
    /// the pause length when this report paused the plugin.
    pub fn record(&self, stopped: bool, now: Instant) -> Option<Duration> {
        if !stopped {
            self.proven.store(true, Ordering::Relaxed);
        }
        self.breaker.record(&self.key, !stopped, now)
    }

    /// Whether the plugin is paused or its probe is due or running (its
    /// jobs are parked, not run).
    pub fn is_paused(&self, now: Instant) -> bool {
        matches!(
            self.health(now),
            Health::Paused { .. } | Health::ProbeDue | Health::Probing
        )
    }

    /// Whether a run has ended without the sandbox stopping it.
    pub fn proven(&self) -> bool {
        self.proven.load(Ordering::Relaxed)
    }

    /// Note that a job was parked.
    pub fn mark_parked(&self) {
        self.parked.store(true, Ordering::Relaxed);
    }

    /// Whether jobs may be parked (the mark is set), without clearing it.
    pub fn has_parked(&self) -> bool {
        self.parked.load(Ordering::Relaxed)
    }

    /// Whether jobs are parked; clears the mark (the caller unparks them).
    pub fn take_parked(&self) -> bool {
        self.parked.swap(false, Ordering::Relaxed)
    }

    /// Whether a parked job should be made due now to serve as the probe:
    /// jobs are parked, the pause is over, no probe is out, and none was
    /// unparked in the last second (it may not have been leased yet).
    pub fn wants_probe_job(&self, now: Instant, now_ms: u64) -> bool {
        if !self.parked.load(Ordering::Relaxed) || self.health(now) != Health::ProbeDue {
            return false;
        }
        let last = self.probe_unparked_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) < PROBE_UNPARK_EVERY_MS {
            return false;
        }
        self.probe_unparked_ms
            .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BreakersConfig;

    const FIRST_PAUSE: Duration = Duration::from_secs(5);

    fn health() -> RunHealth {
        RunHealth::new("p", 100, BreakersConfig::default().plugins(), "id".into())
    }

    fn fail(h: &RunHealth, n: u32, t: Instant) -> Option<Duration> {
        let mut tripped = None;
        for _ in 0..n {
            tripped = tripped.or(h.record(true, t));
        }
        tripped
    }

    #[test]
    fn ten_stopped_runs_pause_and_a_success_proves() {
        let h = health();
        let t = Instant::now();
        assert!(!h.proven());
        assert_eq!(fail(&h, 9, t), None);
        assert_eq!(h.health(t), Health::Failing { failures: 9 });
        assert_eq!(fail(&h, 1, t), Some(FIRST_PAUSE));
        assert!(matches!(h.allow(t), Admission::Paused { .. }));
        assert!(h.is_paused(t));
        // Late reports while paused do not report a new pause.
        assert_eq!(fail(&h, 3, t), None);
        let later = t + FIRST_PAUSE;
        assert!(matches!(h.allow(later), Admission::Probe(_)), "the probe");
        assert!(h.is_paused(later), "probing counts as paused");
        assert_eq!(h.record(false, later), None);
        assert!(!h.is_paused(later));
        assert!(h.proven());
        assert_eq!(h.health(later), Health::Healthy);
    }

    #[test]
    fn a_probe_job_is_wanted_once_the_pause_is_over_and_jobs_are_parked() {
        let h = health();
        let t = Instant::now();
        fail(&h, 10, t);
        assert!(
            !h.wants_probe_job(t + FIRST_PAUSE, 10_000),
            "nothing parked"
        );
        h.mark_parked();
        assert!(!h.wants_probe_job(t, 10_000), "still paused");
        assert!(h.wants_probe_job(t + FIRST_PAUSE, 10_000));
        assert!(
            !h.wants_probe_job(t + FIRST_PAUSE, 10_500),
            "one a second at most"
        );
        assert!(h.wants_probe_job(t + FIRST_PAUSE, 11_000));
        // Once the probe is out, no more until it reports.
        assert!(matches!(h.allow(t + FIRST_PAUSE), Admission::Probe(_)));
        assert!(!h.wants_probe_job(t + FIRST_PAUSE, 20_000));
        assert!(h.take_parked());
        assert!(!h.take_parked());
    }
}
