//! `[server] ingest_events_per_second`: how many events each ingest token
//! may send a second, so one producer's runaway loop fills neither the
//! queue nor the disk nor the others' share. A token bucket per token
//! (keyed by its digest, so a reload that keeps a token keeps its bucket),
//! holding one second of events; a batch larger than that goes through
//! when the bucket is full and leaves it in debt, so the limit holds on
//! average whatever the batch size.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One token's bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Events that may go now; negative after a large batch.
    events: f64,
    /// When `events` was last brought up to date.
    at: Instant,
}

/// The buckets of every ingest token.
#[derive(Debug)]
pub struct IngestRate {
    per_second: f64,
    buckets: Mutex<HashMap<[u8; 32], Bucket>>,
}

impl IngestRate {
    /// `per_second` events a second for each token.
    pub fn new(per_second: f64) -> Self {
        Self {
            per_second,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The limit, for messages.
    pub fn per_second(&self) -> f64 {
        self.per_second
    }

    /// Take `n` events for `token` at `now`, or say how long until they
    /// could go.
    pub fn take(&self, token: [u8; 32], n: usize, now: Instant) -> Result<(), Duration> {
        let capacity = self.per_second;
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = buckets.entry(token).or_insert(Bucket {
            events: capacity,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.events = (bucket.events + elapsed * self.per_second).min(capacity);
        bucket.at = now;
        let n = n as f64;
        let needed = n.min(capacity);
        if bucket.events + 1e-9 >= needed {
            bucket.events -= n;
            return Ok(());
        }
        Err(Duration::from_secs_f64(
            (needed - bucket.events) / self.per_second,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_token_gets_its_rate_and_a_big_batch_leaves_debt() {
        let rate = IngestRate::new(10.0);
        let t0 = Instant::now();
        let (a, b) = ([1; 32], [2; 32]);
        // A second's worth at once, then nothing more for that token.
        assert_eq!(rate.take(a, 10, t0), Ok(()));
        let wait = rate.take(a, 1, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-6, "{wait:?}");
        // Another token is not held up.
        assert_eq!(rate.take(b, 5, t0), Ok(()));
        // 0.1 s later one more event may go.
        assert_eq!(rate.take(a, 1, t0 + Duration::from_millis(100)), Ok(()));
        // A batch of 50 (five seconds' worth) goes when the bucket is full,
        // and leaves 40 events of debt: the next event may go once 41 have
        // accrued, 4.1 s later.
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(rate.take(a, 50, t1), Ok(()));
        let wait = rate.take(a, 1, t1 + Duration::from_secs(1)).unwrap_err();
        assert!((wait.as_secs_f64() - 3.1).abs() < 1e-6, "{wait:?}");
        assert_eq!(rate.take(a, 1, t1 + Duration::from_millis(4100)), Ok(()));
        // A batch larger than the bucket waits for a full bucket.
        let t2 = t1 + Duration::from_secs(100);
        assert_eq!(rate.take(b, 3, t2), Ok(()));
        let wait = rate.take(b, 100, t2).unwrap_err();
        assert!((wait.as_secs_f64() - 0.3).abs() < 1e-6, "{wait:?}");
    }
}
