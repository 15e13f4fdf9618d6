//! Per-destination concurrency limits.
//!
//! A [`DestinationLimiter`] caps how many requests are in flight to one
//! destination (`host:port`), so a slow receiver ties up at most that many
//! workers and cannot hold up healthy ones. It only counts; it does not
//! decide whether a host is healthy (see [`super::breaker`]) and knows
//! nothing of the requests themselves.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Default number of requests in flight per destination.
pub const DEFAULT_PER_DESTINATION: usize = 16;

/// Above this many tracked destinations, idle entries are pruned on insert,
/// so the map does not grow with every host ever contacted.
const PRUNE_ABOVE: usize = 1024;

/// Holds one in-flight slot for a destination; dropping it frees the slot.
#[derive(Debug)]
pub struct DestinationPermit {
    _permit: OwnedSemaphorePermit,
}

/// A semaphore per destination (`host:port`, see [`destination_key`]).
#[derive(Debug)]
pub struct DestinationLimiter {
    per_destination: usize,
    slots: Mutex<HashMap<String, Arc<Destination>>>,
}

/// One destination's slots and the workers waiting for one.
#[derive(Debug)]
struct Destination {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
}

/// Counts a waiter for as long as it lives (a cancelled wait included).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Default for DestinationLimiter {
    fn default() -> Self {
        Self::new(DEFAULT_PER_DESTINATION)
    }
}

impl DestinationLimiter {
    /// A limiter allowing `per_destination` requests in flight to each
    /// destination (at least 1).
    pub fn new(per_destination: usize) -> Self {
        Self {
            per_destination: per_destination.max(1),
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn destination(&self, dest: &str) -> Arc<Destination> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = slots.get(dest) {
            return d.clone();
        }
        if slots.len() >= PRUNE_ABOVE {
            let full = self.per_destination;
            // Only this map holds the Arcs and every slot is free: idle.
            slots.retain(|_, d| {
                Arc::strong_count(d) > 1
                    || Arc::strong_count(&d.slots) > 1
                    || d.slots.available_permits() < full
            });
        }
        let d = Arc::new(Destination {
            slots: Arc::new(Semaphore::new(self.per_destination)),
            waiting: AtomicUsize::new(0),
        });
        slots.insert(dest.to_owned(), d.clone());
        d
    }

    /// Wait for a slot to `dest`.
    pub async fn acquire(&self, dest: &str) -> DestinationPermit {
        let d = self.destination(dest);
        let permit = d
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("destination semaphores are never closed");
        DestinationPermit { _permit: permit }
    }

    /// Take a slot to `dest`, waiting up to `wait` for one, but only if
    /// fewer than the destination's limit are already waiting; `None`
    /// otherwise or when the wait runs out, and the caller re-queues the
    /// request. A busy but healthy destination then keeps its slots full
    /// without every request beyond the limit making a round trip through
    /// the queue, and a slow one holds at most twice its limit in workers,
    /// so other destinations keep flowing.
    pub async fn acquire_within(&self, dest: &str, wait: Duration) -> Option<DestinationPermit> {
        let d = self.destination(dest);
        if let Ok(permit) = d.slots.clone().try_acquire_owned() {
            return Some(DestinationPermit { _permit: permit });
        }
        let waiters = d.waiting.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&d.waiting);
        if waiters >= self.per_destination {
            return None;
        }
        let permit = tokio::time::timeout(wait, d.slots.clone().acquire_owned())
            .await
            .ok()?
            .expect("destination semaphores are never closed");
        Some(DestinationPermit { _permit: permit })
    }

    /// Take a slot to `dest` if one is free right now. A worker that gets
    /// `None` should re-queue the delivery rather than wait, so other
    /// destinations keep flowing.
    pub fn try_acquire(&self, dest: &str) -> Option<DestinationPermit> {
        let permit = self
            .destination(dest)
            .slots
            .clone()
            .try_acquire_owned()
            .ok()?;
        Some(DestinationPermit { _permit: permit })
    }

    /// Requests currently in flight to `dest`.
    pub fn in_flight(&self, dest: &str) -> usize {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .get(dest)
            .map_or(0, |d| self.per_destination - d.slots.available_permits())
    }
}

/// The destination key of a URL: lower-case `host:port`, with the scheme's
/// default port filled in (`https://A.example` → `a.example:443`) and a
/// name's trailing dot dropped (`a.example.` is the same host, as the
/// policy sees it, so it shares the same limits and breaker). `None` for
/// URLs without a host or with a scheme other than http(s).
pub fn destination_key(url: &url::Url) -> Option<String> {
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let host = url.host_str()?;
    let host = host.strip_suffix('.').unwrap_or(host);
    let port = url.port_or_known_default()?;
    Some(format!("{}:{port}", host.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_keys() {
        let cases: &[(&str, Option<&str>)] = &[
            ("https://API.example.com/x", Some("api.example.com:443")),
            ("http://example.com/", Some("example.com:80")),
            ("http://example.com:8080/a?b", Some("example.com:8080")),
            ("https://example.com:443/", Some("example.com:443")),
            ("http://127.0.0.1:9/", Some("127.0.0.1:9")),
            ("http://[::1]:9/", Some("[::1]:9")),
            ("https://API.example.com./x", Some("api.example.com:443")),
            ("ftp://example.com/", None),
        ];
        for &(url, want) in cases {
            let url = url::Url::parse(url).unwrap();
            assert_eq!(destination_key(&url).as_deref(), want, "{url}");
        }
    }

    #[test]
    fn limits_each_destination_separately() {
        let limiter = DestinationLimiter::new(2);
        let a1 = limiter.try_acquire("a:443").expect("first slot");
        let _a2 = limiter.try_acquire("a:443").expect("second slot");
        assert!(limiter.try_acquire("a:443").is_none(), "third must wait");
        assert_eq!(limiter.in_flight("a:443"), 2);
        // Another destination is unaffected.
        let _b = limiter
            .try_acquire("b:443")
            .expect("other host has its own slots");
        drop(a1);
        assert_eq!(limiter.in_flight("a:443"), 1);
        assert!(
            limiter.try_acquire("a:443").is_some(),
            "freed slot reusable"
        );
    }

    #[tokio::test]
    async fn acquire_waits_for_a_free_slot() {
        let limiter = Arc::new(DestinationLimiter::new(1));
        let held = limiter.acquire("a:80").await;
        let waiter = {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.acquire("a:80").await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "must wait while the slot is held");
        drop(held);
        let _permit = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("waiter wakes once the slot is free")
            .unwrap();
        assert_eq!(limiter.in_flight("a:80"), 1);
    }

    #[tokio::test]
    async fn a_bounded_number_of_workers_wait_for_a_busy_destination() {
        let limiter = Arc::new(DestinationLimiter::new(2));
        let long = Duration::from_secs(30);
        let held: Vec<_> = (0..2)
            .map(|_| limiter.try_acquire("a:80").unwrap())
            .collect();
        // Two may wait (the limit); a third is told to come back later at once.
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move { limiter.acquire_within("a:80", long).await.is_some() })
            })
            .collect();
        while limiter.destination("a:80").waiting.load(Ordering::Acquire) < 2 {
            tokio::task::yield_now().await;
        }
        assert!(
            limiter.acquire_within("a:80", long).await.is_none(),
            "third waiter refused"
        );
        assert!(
            limiter.acquire_within("b:80", long).await.is_some(),
            "other destinations are unaffected"
        );
        drop(held);
        for w in waiters {
            assert!(w.await.unwrap(), "a waiter gets the freed slot");
        }
        // A wait that runs out gives up, and stops counting as a waiter.
        let _full: Vec<_> = (0..2)
            .map(|_| limiter.try_acquire("a:80").unwrap())
            .collect();
        assert!(
            limiter
                .acquire_within("a:80", Duration::from_millis(10))
                .await
                .is_none()
        );
        assert_eq!(
            limiter.destination("a:80").waiting.load(Ordering::Acquire),
            0
        );
    }

    #[test]
    fn idle_destinations_are_pruned() {
        let limiter = DestinationLimiter::new(1);
        let _busy = limiter.try_acquire("busy:1").unwrap();
        for i in 0..PRUNE_ABOVE + 10 {
            drop(limiter.try_acquire(&format!("h{i}:1")));
        }
        let len = limiter.slots.lock().unwrap().len();
        assert!(len < PRUNE_ABOVE, "map pruned, len {len}");
        assert_eq!(limiter.in_flight("busy:1"), 1, "busy entry kept");
    }
}
