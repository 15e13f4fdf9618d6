//! Unhealthy-host detection: a per-destination circuit breaker.
//!
//! After `failure_threshold` consecutive retryable failures to one
//! destination within `window`, [`HostHealth`] pauses that destination for a
//! cool-down (doubling on every failed probe, up to `max_cooldown`), then
//! lets exactly one probe through (half-open). Pure logic over a clock the
//! caller passes in; it sends nothing and stores nothing. A paused
//! destination's deliveries are re-queued by the worker, not failed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            window: Duration::from_secs(30),
            base_cooldown: Duration::from_secs(30),
            max_cooldown: Duration::from_secs(300),
            probe_timeout: Duration::from_secs(120),
        }
    }
}

/// Whether a request to a destination may go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Send it (normal traffic, or the single half-open probe).
    Allowed,
    /// The destination is paused: re-queue the delivery to run after
    /// `resume_in` without counting an attempt.
    Paused {
        /// Time until the destination may be probed again.
        resume_in: Duration,
    },
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

/// The breaker for every destination (`host:port`). Only destinations with
/// recent failures take memory: a success forgets the destination.
#[derive(Debug, Default)]
pub struct HostHealth {
    config: BreakerConfig,
    hosts: Mutex<HashMap<String, State>>,
}

impl HostHealth {
    /// A breaker with the given tuning.
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// Ask before sending to `dest`. In the half-open state the first
    /// caller gets `Allowed` (the probe) and must report its result with
    /// [`HostHealth::record`]; the rest are paused.
    pub fn allow(&self, dest: &str, now: Instant) -> Admission {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        let Some(state) = hosts.get_mut(dest) else {
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
                    Admission::Allowed
                } else {
                    Admission::Paused {
                        resume_in: until - now,
                    }
                }
            }
            State::HalfOpen { probe_at, cooldown } => {
                let expires = probe_at + self.config.probe_timeout;
                if now >= expires {
                    *state = State::HalfOpen {
                        probe_at: now,
                        cooldown,
                    };
                    Admission::Allowed
                } else {
                    Admission::Paused {
                        resume_in: (expires - now).min(cooldown),
                    }
                }
            }
        }
    }

    /// Report an attempt to `dest`. `healthy` is false only for retryable
    /// failures (connection errors, timeouts, 408/429/5xx; see
    /// [`super::AttemptOutcome::counts_against_host`]); a 4xx answer means
    /// the host is up.
    pub fn record(&self, dest: &str, healthy: bool, now: Instant) {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        if healthy {
            hosts.remove(dest);
            return;
        }
        let cfg = &self.config;
        let next = match hosts.get(dest).copied() {
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
        hosts.insert(dest.to_owned(), next);
    }

    fn after_failure(&self, failures: u32, now: Instant) -> State {
        State::Closed {
            failures,
            since: now,
        }
    }

    /// Destinations currently paused or probing, for metrics and the API.
    pub fn unhealthy(&self) -> Vec<String> {
        let hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<String> = hosts
            .iter()
            .filter(|(_, s)| !matches!(s, State::Closed { .. }))
            .map(|(k, _)| k.clone())
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "api.example.com:443";

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn breaker() -> HostHealth {
        HostHealth::new(BreakerConfig::default())
    }

    fn fail_n(b: &HostHealth, n: u32, t0: Instant, step: Duration) -> Instant {
        let mut t = t0;
        for _ in 0..n {
            b.record(H, false, t);
            t += step;
        }
        t - step
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
        b.record(H, false, t + s(1));
        assert_eq!(b.allow(H, t + s(1)), Admission::Paused { resume_in: s(30) });
        assert_eq!(b.allow("other:443", t + s(1)), Admission::Allowed);
        assert_eq!(b.unhealthy(), vec![H.to_string()]);
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
        assert!(b.unhealthy().is_empty());
    }

    #[test]
    fn half_open_lets_one_probe_through_then_closes_on_success() {
        let b = breaker();
        let t0 = Instant::now();
        let t = fail_n(&b, 5, t0, Duration::ZERO);
        assert_eq!(b.allow(H, t + s(29)), Admission::Paused { resume_in: s(1) });
        assert_eq!(b.allow(H, t + s(30)), Admission::Allowed, "the probe");
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
            assert_eq!(
                b.allow(H, t),
                Admission::Allowed,
                "probe after {cooldown:?}"
            );
            b.record(H, false, t);
            cooldown = s(want);
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
        assert_eq!(b.allow(H, t + s(30)), Admission::Allowed);
        assert!(matches!(b.allow(H, t + s(100)), Admission::Paused { .. }));
        assert_eq!(b.allow(H, t + s(30 + 120)), Admission::Allowed, "new probe");
    }

    #[test]
    fn late_failures_while_open_do_not_extend_the_pause() {
        let b = breaker();
        let t = fail_n(&b, 5, Instant::now(), Duration::ZERO);
        b.record(H, false, t + s(10));
        assert_eq!(
            b.allow(H, t + s(10)),
            Admission::Paused { resume_in: s(20) }
        );
    }
}
