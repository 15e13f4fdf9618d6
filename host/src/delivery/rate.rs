//! Per-destination request rates (`[plugins.delivery]
//! max_per_second_per_host`), so a burst of events reaches a rate-limited
//! API (Slack, LINE, a CRM) spaced out instead of being answered with
//! 429s that use up each delivery's retries.
//!
//! A [`RateLimiter`] spaces the requests to one destination (`host:port`)
//! at least `1 / rate` apart after a burst of up to one second's worth
//! (GCRA: each destination keeps the time at which its next request would
//! be on schedule). A request asks for its turn ([`RateLimiter::turn`]):
//! one that is due soon waits for it in memory; one whose turn is further
//! off keeps that turn as a reservation and goes back to the queue until
//! then, so each waiting delivery costs one trip through the queue, not
//! one per time it is looked at. Reservations are capped per destination;
//! beyond the cap a delivery goes back to the queue until the reservations
//! ahead of it are spent, without one. It only schedules; it sends and
//! stores nothing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most reservations kept per destination (one per delivery waiting in the
/// queue for its turn).
pub const MAX_RESERVED: usize = 10_000;

/// A reservation whose delivery has not come back this long after its
/// time is dropped (the delivery was settled or retried another way).
const STALE_AFTER: Duration = Duration::from_secs(60);

/// Above this many tracked destinations, idle ones are pruned on insert.
const PRUNE_ABOVE: usize = 1024;

/// When a request may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// At this time, within the wait the caller allowed: wait, then send.
    At(Instant),
    /// At this time, which is reserved for this request: come back then.
    Reserved(Instant),
    /// Not before this time, with no reservation (the destination has as
    /// many as it may keep): come back then and ask again.
    Later(Instant),
}

/// The request-rate limit of one plugin's destinations.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    /// Time between two requests on schedule.
    interval: Duration,
    /// How far ahead of schedule a burst may run.
    burst: Duration,
    destinations: Mutex<HashMap<String, Destination>>,
}

#[derive(Debug)]
struct Destination {
    /// When the next request would be on schedule.
    next: Instant,
    /// Turns kept for requests sent back to the queue, by request id.
    reserved: HashMap<String, Instant>,
}

impl RateLimiter {
    /// At most `per_second` requests a second to each destination
    /// (positive; a burst of up to `max(1, per_second)` may go at once).
    pub fn new(per_second: f64) -> Self {
        let per_second = if per_second.is_finite() && per_second > 0.0 {
            per_second
        } else {
            1.0
        };
        let interval = Duration::from_secs_f64(1.0 / per_second);
        let burst_size = per_second.floor().max(1.0);
        Self {
            per_second,
            interval,
            burst: interval.mul_f64(burst_size - 1.0),
            destinations: Mutex::new(HashMap::new()),
        }
    }

    /// The rate, per second.
    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    /// The turn of request `id` to `dest` asked at `now`, by a caller that
    /// will wait up to `wait` for it. A request that comes back for its
    /// reservation gets it (at once if its time has come).
    pub fn turn(&self, dest: &str, id: &str, now: Instant, wait: Duration) -> Turn {
        let mut destinations = self.destinations.lock().unwrap_or_else(|e| e.into_inner());
        if !destinations.contains_key(dest) && destinations.len() >= PRUNE_ABOVE {
            destinations.retain(|_, d| {
                d.reserved.retain(|_, t| *t + STALE_AFTER > now);
                d.next > now || !d.reserved.is_empty()
            });
        }
        let d = destinations
            .entry(dest.to_owned())
            .or_insert_with(|| Destination {
                next: now,
                reserved: HashMap::new(),
            });
        if let Some(&at) = d.reserved.get(id) {
            if at <= now + wait {
                d.reserved.remove(id);
                return Turn::At(at.max(now));
            }
            return Turn::Reserved(at);
        }
        let on_schedule = d.next.max(now);
        let at = on_schedule
            .checked_sub(self.burst)
            .map_or(now, |t| t.max(now));
        if at <= now + wait {
            d.next = on_schedule + self.interval;
            return Turn::At(at);
        }
        if d.reserved.len() >= MAX_RESERVED {
            d.reserved.retain(|_, t| *t + STALE_AFTER > now);
        }
        if d.reserved.len() >= MAX_RESERVED {
            return Turn::Later(at);
        }
        d.next = on_schedule + self.interval;
        d.reserved.insert(id.to_owned(), at);
        Turn::Reserved(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_millis(200);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn at(turn: Turn) -> Instant {
        match turn {
            Turn::At(t) => t,
            other => panic!("expected At, got {other:?}"),
        }
    }

    #[test]
    fn a_burst_of_one_seconds_worth_then_one_per_interval() {
        let r = RateLimiter::new(5.0);
        let t0 = Instant::now();
        for i in 0..5 {
            assert_eq!(
                r.turn("a:443", &format!("b{i}"), t0, WAIT),
                Turn::At(t0),
                "burst {i}"
            );
        }
        // The next ones are 200 ms apart: the first within the wait.
        assert_eq!(r.turn("a:443", "n0", t0, WAIT), Turn::At(t0 + ms(200)));
        assert_eq!(
            r.turn("a:443", "n1", t0, WAIT),
            Turn::Reserved(t0 + ms(400))
        );
        assert_eq!(
            r.turn("a:443", "n2", t0, WAIT),
            Turn::Reserved(t0 + ms(600))
        );
        // Another destination has its own schedule.
        assert_eq!(r.turn("b:443", "x", t0, WAIT), Turn::At(t0));
        // An idle destination's schedule catches up with the clock: a new
        // burst, no credit beyond it.
        let later = t0 + Duration::from_secs(10);
        for i in 0..5 {
            assert_eq!(
                r.turn("b:443", &format!("y{i}"), later, WAIT),
                Turn::At(later)
            );
        }
        assert_eq!(
            r.turn("b:443", "y5", later, WAIT),
            Turn::At(later + ms(200))
        );
    }

    #[test]
    fn a_reservation_is_kept_for_its_request_and_others_queue_behind_it() {
        let r = RateLimiter::new(1.0);
        let t0 = Instant::now();
        assert_eq!(at(r.turn("a:80", "first", t0, WAIT)), t0);
        let Turn::Reserved(second) = r.turn("a:80", "second", t0, WAIT) else {
            panic!("reserved")
        };
        assert_eq!(second, t0 + ms(1000));
        let Turn::Reserved(third) = r.turn("a:80", "third", t0, WAIT) else {
            panic!("reserved")
        };
        assert_eq!(third, t0 + ms(2000));
        // Back too early: the same reservation.
        assert_eq!(
            r.turn("a:80", "second", t0 + ms(300), WAIT),
            Turn::Reserved(second)
        );
        // Back on time (a little early is fine): its turn, not a new one.
        assert_eq!(
            r.turn("a:80", "second", t0 + ms(900), WAIT),
            Turn::At(second)
        );
        assert_eq!(
            r.turn("a:80", "third", t0 + ms(2500), WAIT),
            Turn::At(t0 + ms(2500))
        );
        // A newcomer queues behind every reservation made.
        assert_eq!(
            r.turn("a:80", "fourth", t0 + ms(2500), WAIT),
            Turn::Reserved(t0 + ms(3000))
        );
    }

    #[test]
    fn fractional_rates_space_requests_further_apart() {
        let r = RateLimiter::new(0.5);
        let t0 = Instant::now();
        assert_eq!(at(r.turn("a:80", "1", t0, WAIT)), t0);
        assert_eq!(r.turn("a:80", "2", t0, WAIT), Turn::Reserved(t0 + ms(2000)));
        assert_eq!(r.per_second(), 0.5);
    }

    #[test]
    fn reservations_are_capped_and_stale_ones_dropped() {
        let r = RateLimiter::new(1000.0);
        let t0 = Instant::now();
        let zero = Duration::ZERO;
        let mut reserved = 0;
        for i in 0..MAX_RESERVED + 1000 + 5 {
            if let Turn::Reserved(_) = r.turn("a:80", &i.to_string(), t0, zero) {
                reserved += 1;
            }
        }
        assert_eq!(reserved, MAX_RESERVED);
        let Turn::Later(when) = r.turn("a:80", "over", t0, zero) else {
            panic!("no reservation beyond the cap")
        };
        assert!(when > t0 + Duration::from_secs(10), "{:?}", when - t0);
        // Long after every reserved time, the unclaimed ones are dropped
        // and reservations are made again.
        let much_later = t0 + Duration::from_secs(3600);
        for i in 0..1000 {
            assert_eq!(
                r.turn("a:80", &format!("burst{i}"), much_later, zero),
                Turn::At(much_later)
            );
        }
        assert!(matches!(
            r.turn("a:80", "again", much_later, zero),
            Turn::Reserved(_)
        ));
        assert_eq!(r.destinations.lock().unwrap()["a:80"].reserved.len(), 1);
    }

    #[test]
    fn idle_destinations_are_pruned() {
        let r = RateLimiter::new(1.0);
        let t0 = Instant::now();
        let secs = |n: usize| t0 + Duration::from_secs(n as u64);
        // One destination per second: each is idle (back on schedule, no
        // reservation left) by the time the next one comes.
        for i in 0..PRUNE_ABOVE - 1 {
            r.turn(&format!("h{i}:1"), "z", secs(i), WAIT);
        }
        // One still busy when the map is full: a reservation ahead.
        let now = secs(PRUNE_ABOVE);
        r.turn("busy:1", "x", now, WAIT);
        assert!(matches!(
            r.turn("busy:1", "y", now, WAIT),
            Turn::Reserved(_)
        ));
        r.turn("new:1", "z", now, WAIT);
        let d = r.destinations.lock().unwrap();
        assert!(d.len() <= 3, "pruned, len {}", d.len());
        assert!(d.contains_key("busy:1") && d.contains_key("new:1"));
    }
}
