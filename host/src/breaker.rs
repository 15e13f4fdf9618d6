//! A keyed circuit breaker: unhealthy-host detection for deliveries (keyed
//! by destination `host:port`) and the failing-plugin pause for invocations
//! (keyed by plugin name).
//!
//! After `failure_threshold` consecutive failures of one key within
//! `window`, [`Breaker`] pauses that key for a cool-down (doubling on every
//! failed probe, up to `max_cooldown`), then lets exactly one probe through
//! (half-open). Pure logic over a clock the caller passes in; it runs,
//! sends and stores nothing. The worker re-queues a paused key's work
//! instead of failing it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::BreakerTuning;

/// Tuning of the breaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive retryable failures that open the breaker.
    pub failure_threshold: u32,
    /// The failures must all fall within this window (first to last).
    pub window: Duration,
    /// First pause.
    pub base_cooldown: Duration,
    /// Longest pause; the cool-down doubles up to this.
    pub max_cooldown: Duration,
    /// A probe that never reported back frees the half-open slot after
    /// this long (e.g. its worker died), so the host is not paused forever.
    pub probe_timeout: Duration,
}

impl BreakerConfig {
    /// Whether `other` opens and pauses the same way: all but the probe
    /// timeout, which follows the longest delivery timeout and is no
    /// reason to forget a breaker's state on reload (a probe forgotten a
    /// little early or late only lets one more, or one fewer, through).
    pub fn same_tuning(&self, other: &BreakerConfig) -> bool {
        BreakerConfig {
            probe_timeout: other.probe_timeout,
            ..self.clone()
        } == *other
    }

    /// The breaker a `[breakers.*]` table describes, with the time after
    /// which a probe that never reported back is forgotten.
    pub fn new(tuning: BreakerTuning, probe_timeout: Duration) -> Self {
        Self {
            failure_threshold: tuning.failure_threshold,
            window: tuning.window,
            base_cooldown: tuning.pause,
            max_cooldown: tuning.max_pause,
            probe_timeout,
        }
    }
}

/// Whether work for a key may run now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Send it (normal traffic).
    Allowed,
    /// Send it as the single half-open probe; others wait for its result.
    /// Work that ends up not running hands it back
    /// ([`Breaker::release_probe`]), or the key stays shut until the probe
    /// times out.
    Probe(Probe),
    /// The key is paused: re-queue the work to run after `resume_in`
    /// without counting an attempt.
    Paused {
        /// Time until the key may be probed again.
        resume_in: Duration,
    },
}

/// The half-open probe one caller holds (see [`Admission::Probe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    at: Instant,
}

/// What an admission lets its work hold while it gets ready to run: the
/// probe, if it took it. Unless the work starts ([`HeldProbe::started`]),
/// dropping this hands the probe back, so work that ends without running
/// (sent back to the queue, past its lease, too old, cancelled) does not
/// leave the key shut until the probe times out.
#[must_use = "dropping it hands the probe back at once"]
pub struct HeldProbe<'a> {
    breaker: &'a Breaker,
    key: &'a str,
    probe: Option<Probe>,
}

impl HeldProbe<'_> {
    /// The work starts: its report to the breaker settles the probe.
    pub fn started(mut self) {
        self.probe = None;
    }
}

impl Drop for HeldProbe<'_> {
    fn drop(&mut self) {
        if let Some(probe) = self.probe.take() {
            self.breaker.release_probe(self.key, probe, Instant::now());
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Counting consecutive failures since `since`.
    Closed { failures: u32, since: Instant },
    /// Paused until `until`.
    Open { until: Instant, cooldown: Duration },
    /// One probe went out at `probe_at`; others wait for its result.
    HalfOpen {
        probe_at: Instant,
        cooldown: Duration,
    },
}

/// Keys tracked before a failure report first sweeps out stale ones.
const PRUNE_ABOVE: usize = 1024;

/// The breaker for every key (a destination, a plugin). Only keys with
/// recent failures take memory: a success forgets the key, and keys whose
/// failures are too old to matter are swept out as new ones come (with a
/// wildcard allowlist, the failing destinations are unbounded).
#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    /// `config.probe_timeout` as it is now, in ms: a reload that keeps the
    /// breaker may move it ([`Breaker::set_probe_timeout`]).
    probe_timeout_ms: std::sync::atomic::AtomicU64,
    hosts: Mutex<HashMap<String, State>>,
    /// Size of `hosts` at which the next failure report sweeps it.
    prune_at: std::sync::atomic::AtomicUsize,
}

impl Breaker {
    /// A breaker with the given tuning.
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            probe_timeout_ms: std::sync::atomic::AtomicU64::new(
                u64::try_from(config.probe_timeout.as_millis()).unwrap_or(u64::MAX),
            ),
            config,
            hosts: Mutex::new(HashMap::new()),
            prune_at: std::sync::atomic::AtomicUsize::new(PRUNE_ABOVE),
        }
    }

    /// Drop the keys whose state no longer changes what happens next: a
    /// failure count whose window has passed (the next failure starts a
    /// new count anyway), and a pause or probe over for longer than the
    /// longest pause (forgetting it only forgoes one doubling). The next
    /// sweep waits until the map has doubled, so a flood of live keys
    /// costs amortised constant time per report.
    fn prune(&self, hosts: &mut HashMap<String, State>, now: Instant) {
        use std::sync::atomic::Ordering::Relaxed;
        if hosts.len() < self.prune_at.load(Relaxed) {
            return;
        }
        let cfg = &self.config;
        let probe_timeout = self.probe_timeout();
        hosts.retain(|_, state| match *state {
            State::Closed { since, .. } => now.saturating_duration_since(since) <= cfg.window,
            State::Open { until, .. } => now < until + cfg.max_cooldown,
            State::HalfOpen { probe_at, .. } => now < probe_at + probe_timeout + cfg.max_cooldown,
        });
        self.prune_at
            .store((hosts.len() * 2).max(PRUNE_ABOVE), Relaxed);
    }

    /// Its tuning (`probe_timeout` as it was made; see
    /// [`Breaker::probe_timeout`]).
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// After how long a probe that never reported back is forgotten.
    pub fn probe_timeout(&self) -> Duration {
        Duration::from_millis(
            self.probe_timeout_ms
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// Move the probe timeout (a reload that keeps this breaker, whose
    /// longest delivery timeout changed).
    pub fn set_probe_timeout(&self, timeout: Duration) {
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.probe_timeout_ms
            .store(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Ask before running work for `key`. In the half-open state the first
    /// caller gets `Allowed` (the probe) and must report its result with
    /// [`Breaker::record`]; the rest are paused.
    pub fn allow(&self, key: &str, now: Instant) -> Admission {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        let Some(state) = hosts.get_mut(key) else {
            return Admission::Allowed;
        };
        match *state {
            State::Closed { .. } => Admission::Allowed,
            State::Open { until, cooldown } => {
                if now >= until {
                    *state = State::HalfOpen {
                        probe_at: now,
                        cooldown,
                    };
                    Admission::Probe(Probe { at: now })
                } else {
                    Admission::Paused {
                        resume_in: until - now,
                    }
                }
            }
            State::HalfOpen { probe_at, cooldown } => {
                let expires = probe_at + self.probe_timeout();
                if now >= expires {
                    *state = State::HalfOpen {
                        probe_at: now,
                        cooldown,
                    };
                    Admission::Probe(Probe { at: now })
                } else {
                    Admission::Paused {
                        resume_in: (expires - now).min(cooldown),
                    }
                }
            }
        }
    }

    /// Report the result of work for `key`. For destinations, `healthy` is
    /// false only for retryable failures (connection errors, timeouts,
    /// 408/429/5xx; see
    /// [`crate::delivery::AttemptOutcome::counts_against_host`]): a 4xx
    /// answer means the host is up. For plugins, runs the sandbox had to
    /// stop. Returns the pause when this report paused `key` (a failure
    /// that reached the threshold, or a failed probe).
    pub fn record(&self, key: &str, healthy: bool, now: Instant) -> Option<Duration> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        if healthy {
            hosts.remove(key);
            return None;
        }
        self.prune(&mut hosts, now);
        let cfg = &self.config;
        let next = match hosts.get(key).copied() {
            None => self.after_failure(1, now),
            Some(State::Closed { failures, since }) => {
                if now.saturating_duration_since(since) > cfg.window {
                    self.after_failure(1, now)
                } else {
                    State::Closed {
                        failures: failures + 1,
                        since,
                    }
                }
            }
            // Late results of requests sent before the breaker opened.
            Some(open @ State::Open { .. }) => open,
            Some(State::HalfOpen { cooldown, .. }) => {
                let cooldown = (cooldown * 2).min(cfg.max_cooldown);
                State::Open {
                    until: now + cooldown,
                    cooldown,
                }
            }
        };
        let next = match next {
            State::Closed { failures, .. } if failures >= cfg.failure_threshold.max(1) => {
                State::Open {
                    until: now + cfg.base_cooldown,
                    cooldown: cfg.base_cooldown,
                }
            }
            other => other,
        };
        let before = hosts.insert(key.to_owned(), next);
        match (before, next) {
            (Some(State::Open { .. }), _) => None,
            (_, State::Open { cooldown, .. }) => Some(cooldown),
            _ => None,
        }
    }

    /// What work admitted as `admission` for `key` holds until it starts
    /// (see [`HeldProbe`]).
    pub fn hold<'a>(&'a self, key: &'a str, admission: Admission) -> HeldProbe<'a> {
        HeldProbe {
            breaker: self,
            key,
            probe: match admission {
                Admission::Probe(probe) => Some(probe),
                Admission::Allowed | Admission::Paused { .. } => None,
            },
        }
    }

    /// Hand back a probe whose work did not run: the probe is due again
    /// at `now`. A probe that is no longer the current one (it timed out
    /// and another went out, or the key recovered) changes nothing.
    pub fn release_probe(&self, key: &str, probe: Probe, now: Instant) {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(state) = hosts.get_mut(key)
            && let State::HalfOpen { probe_at, cooldown } = *state
            && probe_at == probe.at
        {
            *state = State::Open {
                until: now,
                cooldown,
            };
        }
    }

    /// The pause `key` is in at `now`: the time left (zero once the probe
    /// is due or running) and its length. `None` unless paused or probing.
    pub fn pause(&self, key: &str, now: Instant) -> Option<(Duration, Duration)> {
        let hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        match hosts.get(key)? {
            State::Closed { .. } => None,
            State::Open { until, cooldown } => {
                Some((until.saturating_duration_since(now), *cooldown))
            }
            State::HalfOpen { cooldown, .. } => Some((Duration::ZERO, *cooldown)),
        }
    }

    /// Put `key` back in a pause remembered from an earlier run of the
    /// process: `left` more of a pause of length `cooldown` (zero `left`:
    /// the probe is due at once). A failed probe doubles `cooldown`.
    pub fn restore_pause(&self, key: &str, left: Duration, cooldown: Duration, now: Instant) {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts.insert(
            key.to_owned(),
            State::Open {
                until: now + left,
                cooldown,
            },
        );
    }

    fn after_failure(&self, failures: u32, now: Instant) -> State {
        State::Closed {
            failures,
            since: now,
        }
    }

    /// Keys currently paused or probing, with their state, sorted.
    pub fn unhealthy(&self, now: Instant) -> Vec<(String, Health)> {
        let hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<(String, Health)> = hosts
            .iter()
            .filter(|(_, s)| !matches!(s, State::Closed { .. }))
            .map(|(k, s)| (k.clone(), s.health(now)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// What the breaker thinks of one key, for the API and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// No recent failures.
    Healthy,
    /// `failures` consecutive failures, not yet enough to pause.
    Failing {
        /// Consecutive failures so far.
        failures: u32,
    },
    /// Paused for `resume_in` more.
    Paused {
        /// Time until the key may be probed again.
        resume_in: Duration,
        /// The current pause length (doubles on every failed probe).
        cooldown: Duration,
    },
    /// The pause is over: the next run will be the probe.
    ProbeDue,
    /// The probe is running; others wait for its result.
    Probing,
}

impl Breaker {
    /// The state of one key at `now` (does not change it).
    pub fn health(&self, key: &str, now: Instant) -> Health {
        let hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        hosts.get(key).map_or(Health::Healthy, |s| s.health(now))
    }
}

impl State {
    fn health(self, now: Instant) -> Health {
        match self {
            State::Closed { failures, .. } => Health::Failing { failures },
            State::Open { until, cooldown } if now < until => Health::Paused {
                resume_in: until - now,
                cooldown,
            },
            State::Open { .. } => Health::ProbeDue,
            State::HalfOpen { .. } => Health::Probing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "api.example.com:443";

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn breaker() -> Breaker {
        Breaker::new(BreakerConfig::new(
            crate::config::DESTINATION_DEFAULTS,
            Duration::from_secs(120),
        ))
    }

    fn fail_n(b: &Breaker, n: u32, t0: Instant, step: Duration) -> Instant {
        let mut t = t0;
        for _ in 0..n {
            b.record(H, false, t);
            t += step;
        }
        t - step
    }

    #[test]
    fn a_restored_pause_runs_its_course_and_doubles_on_a_failed_probe() {
        let b = breaker();
        let t0 = Instant::now();
        assert_eq!(b.pause(H, t0), None);
        b.restore_pause(H, s(20), s(40), t0);
        assert_eq!(b.pause(H, t0 + s(5)), Some((s(15), s(40))));
        assert_eq!(
            b.allow(H, t0 + s(5)),
            Admission::Paused { resume_in: s(15) }
        );
        assert_eq!(b.health(H, t0 + s(20)), Health::ProbeDue);
        assert!(matches!(b.allow(H, t0 + s(20)), Admission::Probe(_)));
        assert_eq!(b.pause(H, t0 + s(21)), Some((Duration::ZERO, s(40))));
        assert_eq!(b.record(H, false, t0 + s(21)), Some(s(80)));
        assert_eq!(b.pause(H, t0 + s(21)), Some((s(80), s(80))));

        b.restore_pause(H, Duration::ZERO, s(30), t0);
        assert_eq!(
            b.health(H, t0),
            Health::ProbeDue,
            "an overdue pause probes at once"
        );
        assert_eq!(b.record(H, true, t0), None);
        assert_eq!(b.pause(H, t0), None);
    }

    #[test]
    fn opens_after_five_failures_within_the_window() {
        let b = breaker();
        let t0 = Instant::now();
        let t = fail_n(&b, 4, t0, s(1));
        assert_eq!(
            b.allow(H, t),
            Admission::Allowed,
            "4 failures: still closed"
        );
        assert_eq!(
            b.record(H, false, t + s(1)),
            Some(s(30)),
            "this one paused it"
        );
        assert_eq!(b.allow(H, t + s(1)), Admission::Paused { resume_in: s(30) });
        assert_eq!(b.allow("other:443", t + s(1)), Admission::Allowed);
        assert_eq!(
            b.unhealthy(t + s(1)),
            vec![(
                H.to_string(),
                Health::Paused {
                    resume_in: s(30),
                    cooldown: s(30)
                }
            )]
        );
    }

    #[test]
    fn failures_spread_beyond_the_window_do_not_open() {
        let b = breaker();
        let t0 = Instant::now();
        let t = fail_n(&b, 10, t0, s(10)); // 5 failures never fit in 30 s
        assert_eq!(b.allow(H, t), Admission::Allowed);
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = breaker();
        let t0 = Instant::now();
        let t = fail_n(&b, 4, t0, s(1));
        b.record(H, true, t);
        let t = fail_n(&b, 4, t + s(1), s(1));
        assert_eq!(b.allow(H, t), Admission::Allowed);
        assert!(b.unhealthy(t).is_empty());
    }

    #[test]
    fn health_reports_each_state_without_changing_it() {
        let b = breaker();
        let t0 = Instant::now();
        assert_eq!(b.health(H, t0), Health::Healthy);
        let t = fail_n(&b, 2, t0, s(1));
        assert_eq!(b.health(H, t), Health::Failing { failures: 2 });
        let t = fail_n(&b, 3, t + s(1), s(1));
        assert_eq!(
            b.health(H, t + s(10)),
            Health::Paused {
                resume_in: s(20),
                cooldown: s(30)
            }
        );
        assert_eq!(b.health(H, t + s(30)), Health::ProbeDue);
        // Asking did not take the probe.
        assert!(matches!(b.allow(H, t + s(30)), Admission::Probe(_)));
        assert_eq!(b.health(H, t + s(30)), Health::Probing);
        b.record(H, true, t + s(31));
        assert_eq!(b.health(H, t + s(31)), Health::Healthy);
    }

    #[test]
    fn half_open_lets_one_probe_through_then_closes_on_success() {
        let b = breaker();
        let t0 = Instant::now();
        let t = fail_n(&b, 5, t0, Duration::ZERO);
        assert_eq!(b.allow(H, t + s(29)), Admission::Paused { resume_in: s(1) });
        assert!(matches!(b.allow(H, t + s(30)), Admission::Probe(_)));
        assert!(
            matches!(b.allow(H, t + s(31)), Admission::Paused { .. }),
            "only one probe"
        );
        b.record(H, true, t + s(32));
        assert_eq!(b.allow(H, t + s(32)), Admission::Allowed);
        assert_eq!(b.allow(H, t + s(32)), Admission::Allowed);
    }

    #[test]
    fn failed_probes_double_the_cooldown_up_to_the_cap() {
        let b = breaker();
        let mut t = fail_n(&b, 5, Instant::now(), Duration::ZERO);
        let mut cooldown = s(30);
        for want in [60, 120, 240, 300, 300] {
            t += cooldown;
            assert!(
                matches!(b.allow(H, t), Admission::Probe(_)),
                "probe after {cooldown:?}"
            );
            cooldown = s(want);
            assert_eq!(
                b.record(H, false, t),
                Some(cooldown),
                "a failed probe pauses"
            );
            assert_eq!(
                b.allow(H, t),
                Admission::Paused {
                    resume_in: cooldown
                }
            );
        }
    }

    #[test]
    fn a_lost_probe_expires() {
        let b = breaker();
        let t = fail_n(&b, 5, Instant::now(), Duration::ZERO);
        assert!(matches!(b.allow(H, t + s(30)), Admission::Probe(_)));
        assert!(matches!(b.allow(H, t + s(100)), Admission::Paused { .. }));
        assert!(
            matches!(b.allow(H, t + s(30 + 120)), Admission::Probe(_)),
            "new probe"
        );
    }

    #[test]
    fn a_held_probe_goes_back_when_dropped_unless_its_work_started() {
        // Failures a minute ago: the pause is over by the real clock, at
        // which the guard hands the probe back.
        let b = breaker();
        let past = Instant::now()
            .checked_sub(s(60))
            .expect("a clock past 60 s");
        fail_n(&b, 5, past, Duration::ZERO);
        let admission = b.allow(H, past + s(30));
        assert!(matches!(admission, Admission::Probe(_)));
        drop(b.hold(H, admission));
        assert_eq!(b.health(H, Instant::now()), Health::ProbeDue, "handed back");
        let admission = b.allow(H, Instant::now());
        b.hold(H, admission).started();
        assert_eq!(b.health(H, Instant::now()), Health::Probing, "kept");
        // Work admitted normally holds nothing.
        drop(b.hold("other:443", b.allow("other:443", Instant::now())));
        assert_eq!(b.health("other:443", Instant::now()), Health::Healthy);
    }

    #[test]
    fn a_probe_handed_back_is_due_again_unless_another_took_over() {
        let b = breaker();
        let t = fail_n(&b, 5, Instant::now(), Duration::ZERO) + s(30);
        let Admission::Probe(first) = b.allow(H, t) else {
            panic!("the probe")
        };
        assert_eq!(b.health(H, t + s(1)), Health::Probing);
        b.release_probe(H, first, t + s(1));
        assert_eq!(b.health(H, t + s(1)), Health::ProbeDue, "due again");
        assert_eq!(
            b.pause(H, t + s(1)),
            Some((Duration::ZERO, s(30))),
            "same pause"
        );
        let Admission::Probe(second) = b.allow(H, t + s(2)) else {
            panic!("the next probe")
        };
        // A stale probe (here: the first one again) does not free the
        // current one.
        b.release_probe(H, first, t + s(3));
        assert_eq!(b.health(H, t + s(3)), Health::Probing);
        assert!(matches!(b.allow(H, t + s(3)), Admission::Paused { .. }));
        // Nor does one handed back after the key recovered.
        b.record(H, true, t + s(4));
        b.release_probe(H, second, t + s(5));
        assert_eq!(b.health(H, t + s(5)), Health::Healthy);
    }

    #[test]
    fn stale_keys_are_swept_out_as_new_failures_come() {
        let b = breaker();
        let tracked = || b.hosts.lock().unwrap().len();
        let fail_keys = |prefix: &str, n: usize, t: Instant| {
            for i in 0..n {
                b.record(&format!("{prefix}{i}.example:443"), false, t);
            }
        };
        // One failure each for many destinations, and one paused host. The
        // map reached the threshold with nothing stale yet: the next sweep
        // waits until it has doubled.
        let t0 = Instant::now();
        fail_keys("a", PRUNE_ABOVE - 1, t0);
        fail_n(&b, 5, t0, Duration::ZERO);
        assert_eq!(tracked(), PRUNE_ABOVE);
        // Past the window, once the map has doubled, the single failures
        // are swept out; the pause (30 s, doubling up to 300 s) and the
        // fresh failures are kept.
        let later = t0 + s(31);
        fail_keys("b", PRUNE_ABOVE, later);
        assert_eq!(tracked(), 2 * PRUNE_ABOVE, "not yet");
        b.record("c.example:443", false, later);
        assert_eq!(tracked(), PRUNE_ABOVE + 2, "b*, the paused host, c");
        assert_eq!(b.health(H, later), Health::ProbeDue);
        // Long after the pause, the paused host is forgotten too.
        let much_later = t0 + s(30 + 300 + 31);
        fail_keys("d", PRUNE_ABOVE, much_later);
        b.record("e.example:443", false, much_later);
        assert_eq!(tracked(), PRUNE_ABOVE + 1, "d*, e");
        assert_eq!(b.health(H, much_later), Health::Healthy);
    }

    #[test]
    fn late_failures_while_open_do_not_extend_the_pause() {
        let b = breaker();
        let t = fail_n(&b, 5, Instant::now(), Duration::ZERO);
        assert_eq!(b.record(H, false, t + s(10)), None, "already paused");
        assert_eq!(
            b.allow(H, t + s(10)),
            Admission::Paused { resume_in: s(20) }
        );
    }
}
