//! Retry timing: the jittered retry schedule and `Retry-After` parsing.
//!
//! Pure functions: the caller passes the random source and the clock, so
//! every case is unit-testable. This module decides *when* to try again, not
//! *whether* (that is [`super::outcome`]), and it knows nothing of the store
//! that keeps the scheduled retry.

use std::time::{Duration, SystemTime};

use rand::{Rng, RngExt as _};

/// The default schedule of the issue: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
/// 10 h; after the last one the delivery is dead-lettered.
pub const DEFAULT_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(300),
    Duration::from_secs(1800),
    Duration::from_secs(7200),
    Duration::from_secs(18000),
    Duration::from_secs(36000),
    Duration::from_secs(36000),
];

/// Default jitter: each delay is drawn uniformly from ±20 % of its slot.
pub const DEFAULT_JITTER: f64 = 0.2;

/// Shortest `Retry-After` honoured. A receiver asking for 0 s would otherwise
/// make us hammer it.
pub const RETRY_AFTER_MIN: Duration = Duration::from_secs(1);
/// Longest `Retry-After` honoured. A receiver cannot park a delivery for
/// days; it gets retried within the hour and may ask again.
pub const RETRY_AFTER_MAX: Duration = Duration::from_secs(3600);

/// Delay before the next attempt, after `attempts_so_far` attempts have
/// failed (1 after the first failure). Returns `None` when the schedule is
/// exhausted: the delivery is dead-lettered. `jitter` is the relative
/// spread (0.2 = ±20 %), clamped to `[0, 1]`.
pub fn retry_delay<R: Rng + ?Sized>(
    schedule: &[Duration],
    attempts_so_far: u32,
    jitter: f64,
    rng: &mut R,
) -> Option<Duration> {
    let slot = schedule_slot(schedule, attempts_so_far)?;
    Some(jittered(slot, jitter, rng.random::<f64>()))
}

/// Like [`retry_delay`], but a receiver's `Retry-After` (already clamped by
/// [`parse_retry_after`]) replaces the scheduled delay. The schedule still
/// bounds the number of attempts: `Retry-After` never postpones the dead
/// letter.
pub fn next_delay<R: Rng + ?Sized>(
    schedule: &[Duration],
    attempts_so_far: u32,
    retry_after: Option<Duration>,
    jitter: f64,
    rng: &mut R,
) -> Option<Duration> {
    let slot = schedule_slot(schedule, attempts_so_far)?;
    Some(retry_after.unwrap_or_else(|| jittered(slot, jitter, rng.random::<f64>())))
}

/// The un-jittered slot for the retry after `attempts_so_far` failures.
fn schedule_slot(schedule: &[Duration], attempts_so_far: u32) -> Option<Duration> {
    let index = usize::try_from(attempts_so_far.checked_sub(1)?).ok()?;
    schedule.get(index).copied()
}

/// `base` scaled by a factor in `[1 - jitter, 1 + jitter)`, chosen by
/// `unit` in `[0, 1)`.
fn jittered(base: Duration, jitter: f64, unit: f64) -> Duration {
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let factor = 1.0 - jitter + 2.0 * jitter * unit;
    base.mul_f64(factor)
}

/// Parse a `Retry-After` header value: delta-seconds (`"120"`) or an
/// HTTP-date (`"Wed, 21 Oct 2015 07:28:00 GMT"`), relative to `now`. The
/// result is clamped to [`RETRY_AFTER_MIN`, `RETRY_AFTER_MAX`]; a date in
/// the past gives the minimum. `None` when the value is neither form.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wanted = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for u64 is simply "very long".
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wanted.clamp(RETRY_AFTER_MIN, RETRY_AFTER_MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng as _;
    use rand::rngs::StdRng;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn schedule_slots_then_dead_letter() {
        let cases: &[(u32, Option<u64>)] = &[
            (0, None),
            (1, Some(5)),
            (2, Some(300)),
            (3, Some(1800)),
            (7, Some(36000)),
            (8, None),
            (u32::MAX, None),
        ];
        for &(n, want) in cases {
            assert_eq!(
                schedule_slot(&DEFAULT_SCHEDULE, n),
                want.map(S),
                "attempts {n}"
            );
        }
        assert_eq!(schedule_slot(&[], 1), None);
    }

    #[test]
    fn jitter_spans_the_band() {
        // (base s, jitter, unit, want ms)
        let cases: &[(u64, f64, f64, u64)] = &[
            (100, 0.2, 0.0, 80_000),
            (100, 0.2, 0.5, 100_000),
            (100, 0.2, 0.75, 110_000),
            (100, 0.0, 0.9, 100_000),
            (100, 5.0, 0.0, 0),        // jitter clamped to 1
            (100, -1.0, 0.0, 100_000), // negative jitter = none
            (100, f64::NAN, 0.0, 100_000),
            (100, 0.2, f64::NAN, 100_000),
        ];
        for &(base, jitter, unit, want) in cases {
            let got = jittered(S(base), jitter, unit);
            assert_eq!(got.as_millis(), u128::from(want), "{base} {jitter} {unit}");
        }
    }

    #[test]
    fn retry_delay_stays_within_twenty_percent() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let d = retry_delay(&DEFAULT_SCHEDULE, 2, DEFAULT_JITTER, &mut rng).unwrap();
            assert!(d >= S(240) && d < S(360), "{d:?}");
            seen.insert(d);
        }
        assert!(
            seen.len() > 100,
            "jitter must actually vary: {}",
            seen.len()
        );
        assert_eq!(retry_delay(&DEFAULT_SCHEDULE, 8, 0.2, &mut rng), None);
    }

    #[test]
    fn retry_after_replaces_the_slot_but_not_the_limit() {
        let mut rng = StdRng::seed_from_u64(1);
        let sched = &DEFAULT_SCHEDULE;
        assert_eq!(
            next_delay(sched, 1, Some(S(42)), 0.2, &mut rng),
            Some(S(42))
        );
        assert_eq!(next_delay(sched, 8, Some(S(42)), 0.2, &mut rng), None);
        let d = next_delay(sched, 1, None, 0.2, &mut rng).unwrap();
        assert!(d >= S(4) && d < S(6), "{d:?}");
    }

    #[test]
    fn retry_after_forms_and_clamping() {
        let now = SystemTime::UNIX_EPOCH + S(1_445_412_000); // Wed, 21 Oct 2015 07:20:00 GMT
        let cases: &[(&str, Option<u64>)] = &[
            ("7", Some(7)),
            (" 120 ", Some(120)),
            ("0", Some(1)),
            ("3600", Some(3600)),
            ("86400", Some(3600)),
            ("99999999999999999999999", Some(3600)),
            ("Wed, 21 Oct 2015 07:28:00 GMT", Some(480)),
            ("Wed, 21 Oct 2015 07:00:00 GMT", Some(1)), // in the past
            ("Thu, 22 Oct 2015 07:28:00 GMT", Some(3600)),
            ("-5", None),
            ("1.5", None),
            ("", None),
            ("soon", None),
        ];
        for &(value, want) in cases {
            assert_eq!(parse_retry_after(value, now), want.map(S), "{value:?}");
        }
    }
}
