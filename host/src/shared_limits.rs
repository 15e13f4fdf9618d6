//! Limits shared by every plugin's deliveries to one destination
//! (`[[destinations]]`), applied on top of each plugin's own per-host
//! limits, so two plugins posting to the same rate-limited API together
//! stay under its limit; and one unhealthy-host breaker for it in place of
//! each plugin's own, so when it goes down every plugin backs off at once
//! instead of each finding out on its own.
//!
//! Built with each plugin set. A reload keeps a destination's concurrency
//! limiter while its `max_in_flight` is unchanged (deliveries still running
//! on the old set count against the same cap), its rate limiter while
//! its `max_per_second` is unchanged (the schedule and its reservations
//! hold) and its breaker while the breaker's tuning is unchanged. It only
//! holds them; the delivery loop applies them.

use std::collections::HashMap;
use std::sync::Arc;

use crate::breaker::{Breaker, BreakerConfig, Health};
use crate::config::DestinationConfig;
use crate::delivery::{DestinationLimiter, RateLimiter, destination_key};

/// The shared limits of the configured destinations, by destination key
/// (`host:port`, see [`destination_key`]).
#[derive(Debug, Default)]
pub struct SharedLimits {
    by_destination: HashMap<String, Arc<SharedDestination>>,
}

/// One destination's shared limiters.
#[derive(Debug)]
pub struct SharedDestination {
    /// Requests in flight from all plugins together (`max_in_flight`):
    /// the cap and its limiter.
    in_flight: Option<(usize, Arc<DestinationLimiter>)>,
    /// Requests a second from all plugins together (`max_per_second`).
    rate: Option<Arc<RateLimiter>>,
    /// Its unhealthy-host breaker, shared by all plugins.
    health: Arc<Breaker>,
}

impl SharedDestination {
    /// Its concurrency limiter, if `max_in_flight` is set.
    pub fn in_flight(&self) -> Option<&DestinationLimiter> {
        self.in_flight.as_ref().map(|(_, l)| &**l)
    }

    /// Its rate limiter, if `max_per_second` is set.
    pub fn rate(&self) -> Option<&RateLimiter> {
        self.rate.as_deref()
    }

    /// Its unhealthy-host breaker.
    pub fn health(&self) -> &Breaker {
        &self.health
    }
}

impl SharedLimits {
    /// The limiters of `entries`, each with a breaker tuned by `breaker`,
    /// reusing those of `before` whose settings are unchanged. Entries
    /// whose URL names no destination are skipped (configuration loading
    /// refuses them).
    pub fn build(
        entries: &[DestinationConfig],
        breaker: &BreakerConfig,
        before: Option<&SharedLimits>,
    ) -> Self {
        let mut by_destination = HashMap::new();
        for entry in entries {
            let Some(key) = url::Url::parse(&entry.url)
                .ok()
                .and_then(|u| destination_key(&u))
            else {
                continue;
            };
            let old = before.and_then(|b| b.by_destination.get(&key));
            let in_flight =
                entry
                    .max_in_flight
                    .map(|cap| match old.and_then(|o| o.in_flight.as_ref()) {
                        Some((was, limiter)) if *was == cap => (cap, limiter.clone()),
                        _ => (cap, Arc::new(DestinationLimiter::new(cap))),
                    });
            let rate =
                entry
                    .max_per_second
                    .map(|per_second| match old.and_then(|o| o.rate.as_ref()) {
                        Some(r) if r.per_second() == per_second => r.clone(),
                        _ => Arc::new(RateLimiter::new(per_second)),
                    });
            let health = match old {
                Some(o) if o.health.config().same_tuning(breaker) => {
                    o.health.set_probe_timeout(breaker.probe_timeout);
                    o.health.clone()
                }
                _ => Arc::new(Breaker::new(breaker.clone())),
            };
            let shared = SharedDestination {
                in_flight,
                rate,
                health,
            };
            by_destination.insert(key, Arc::new(shared));
        }
        Self { by_destination }
    }

    /// The shared limits of destination `key`, if it has any.
    pub fn get(&self, key: &str) -> Option<Arc<SharedDestination>> {
        self.by_destination.get(key).cloned()
    }

    /// The destinations whose shared breaker has them paused (or probing)
    /// at `now`, by key, sorted.
    pub fn unhealthy(&self, now: std::time::Instant) -> Vec<(String, Health)> {
        let mut all: Vec<_> = self
            .by_destination
            .values()
            .flat_map(|d| d.health.unhealthy(now))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Requests in flight to each destination with a `max_in_flight`, by
    /// key, sorted.
    pub fn in_flight(&self) -> Vec<(String, usize)> {
        let mut all: Vec<_> = self
            .by_destination
            .iter()
            .filter_map(|(key, d)| Some((key.clone(), d.in_flight()?.in_flight(key))))
            .collect();
        all.sort();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(url: &str, in_flight: Option<usize>, rate: Option<f64>) -> DestinationConfig {
        DestinationConfig {
            url: url.into(),
            max_in_flight: in_flight,
            max_per_second: rate,
        }
    }

    fn breaker(failures: u32) -> BreakerConfig {
        let tuning = crate::config::BreakersConfig::default().destinations();
        BreakerConfig {
            failure_threshold: failures,
            ..BreakerConfig::new(tuning, std::time::Duration::from_secs(40))
        }
    }

    #[test]
    fn destinations_are_keyed_like_deliveries() {
        let limits = SharedLimits::build(
            &[entry("https://API.example.com", Some(2), None)],
            &breaker(5),
            None,
        );
        let d = limits
            .get("api.example.com:443")
            .expect("keyed by host:port");
        assert!(d.rate().is_none());
        let slots = d.in_flight().unwrap();
        let _a = slots.try_acquire("api.example.com:443").unwrap();
        let _b = slots.try_acquire("api.example.com:443").unwrap();
        assert!(slots.try_acquire("api.example.com:443").is_none(), "cap 2");
        assert!(limits.get("api.example.com:80").is_none());
    }

    #[test]
    fn a_rebuild_keeps_the_limiters_whose_setting_is_unchanged() {
        let before = SharedLimits::build(
            &[
                entry("https://a.example", Some(2), Some(5.0)),
                entry("https://b.example", Some(2), Some(5.0)),
            ],
            &breaker(5),
            None,
        );
        let after = SharedLimits::build(
            &[
                entry("https://a.example:443", Some(2), Some(5.0)),
                entry("https://b.example", Some(3), Some(6.0)),
            ],
            &breaker(5),
            Some(&before),
        );
        let (a0, a1) = (
            before.get("a.example:443").unwrap(),
            after.get("a.example:443").unwrap(),
        );
        assert!(Arc::ptr_eq(
            &a0.in_flight.as_ref().unwrap().1,
            &a1.in_flight.as_ref().unwrap().1
        ));
        assert!(Arc::ptr_eq(
            a0.rate.as_ref().unwrap(),
            a1.rate.as_ref().unwrap()
        ));
        let (b0, b1) = (
            before.get("b.example:443").unwrap(),
            after.get("b.example:443").unwrap(),
        );
        assert!(!Arc::ptr_eq(
            &b0.in_flight.as_ref().unwrap().1,
            &b1.in_flight.as_ref().unwrap().1
        ));
        assert!(!Arc::ptr_eq(
            b0.rate.as_ref().unwrap(),
            b1.rate.as_ref().unwrap()
        ));
        // The breakers' tuning did not change: both kept.
        assert!(Arc::ptr_eq(&a0.health, &a1.health) && Arc::ptr_eq(&b0.health, &b1.health));
        let retuned = SharedLimits::build(
            &[entry("https://a.example", Some(2), Some(5.0))],
            &breaker(3),
            Some(&after),
        );
        let a2 = retuned.get("a.example:443").unwrap();
        assert!(!Arc::ptr_eq(&a1.health, &a2.health));
        assert!(Arc::ptr_eq(
            &a1.rate.clone().unwrap(),
            a2.rate.as_ref().unwrap()
        ));
        // Another plugin's longer delivery timeout moves only the probe
        // timeout: a paused destination stays paused.
        let longer = BreakerConfig {
            probe_timeout: std::time::Duration::from_secs(70),
            ..breaker(3)
        };
        let a3 = SharedLimits::build(
            &[entry("https://a.example", Some(2), Some(5.0))],
            &longer,
            Some(&retuned),
        );
        let kept = &a3.get("a.example:443").unwrap().health;
        assert!(Arc::ptr_eq(&a2.health, kept));
        assert_eq!(
            kept.probe_timeout(),
            std::time::Duration::from_secs(70),
            "with the new probe timeout"
        );
    }

    #[test]
    fn one_breaker_per_destination_whoever_reports() {
        let limits = SharedLimits::build(
            &[entry("https://a.example", None, Some(5.0))],
            &breaker(2),
            None,
        );
        let now = std::time::Instant::now();
        let a = limits.get("a.example:443").unwrap();
        // Two plugins' failures, one each, add up.
        assert!(a.health().record("a.example:443", false, now).is_none());
        assert!(a.health().record("a.example:443", false, now).is_some());
        let unhealthy = limits.unhealthy(now);
        assert_eq!(unhealthy.len(), 1);
        assert_eq!(unhealthy[0].0, "a.example:443");
    }
}
