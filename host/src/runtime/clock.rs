//! The monotonic clock plugins see: WASI's own, except that no wait
//! outlasts the invocation's deadline.
//!
//! The epoch deadline stops guest code, but a guest blocked inside a host
//! call runs no guest code: `pollable.block` on a clock subscription (a
//! `sleep`, a JavaScript timer awaited) would hold its worker thread until
//! the subscription fires, for ever if it asked for a long enough wait.
//! Each wait is therefore cut at the deadline: the guest wakes then, and
//! an invocation that ran into its deadline this way ends as a timeout
//! (whatever it returns after waking), like a busy loop does. The cut is
//! made when the wait happens, against the deadline of the invocation
//! that waits, so a timer a reused instance keeps from one event to the
//! next is measured against the right one. Nothing else in the WASI we
//! link can wait without end: stdin is closed, stdout and stderr are
//! in-memory pipes, files are read from a local directory, and sockets are
//! refused at load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::async_trait;
use wasmtime_wasi::clocks::{WasiClocksCtxView, WasiClocksView};
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock::{self, Host};
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};

use super::state::State;

/// Replace WASI's `monotonic-clock` in `linker` with the bounded one.
/// Call after the WASI interfaces are added.
pub(super) fn shadow_monotonic_clock(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let added = monotonic_clock::add_to_linker::<State, BoundedClock>(linker, |state| {
        let limit = state.waits.clone();
        BoundedClockView {
            clocks: state.clocks(),
            limit,
        }
    });
    linker.allow_shadowing(false);
    added
}

/// What an instance's clock waits share with its store: when the current
/// invocation's time is up, and whether a wait ran into that.
pub(crate) struct WaitLimit {
    base: Instant,
    /// The deadline, in nanoseconds after `base`.
    deadline: AtomicU64,
    ran_out: AtomicBool,
}

impl WaitLimit {
    pub(crate) fn new() -> Self {
        Self {
            base: Instant::now(),
            deadline: AtomicU64::new(0),
            ran_out: AtomicBool::new(false),
        }
    }

    /// A new invocation, whose time is up `timeout` from now.
    pub(crate) fn start(&self, timeout: Duration) {
        let at = Instant::now().saturating_duration_since(self.base) + timeout;
        let nanos = u64::try_from(at.as_nanos()).unwrap_or(u64::MAX);
        self.deadline.store(nanos, Ordering::Relaxed);
        self.ran_out.store(false, Ordering::Relaxed);
    }

    /// Whether a wait of the current invocation was cut at its deadline.
    pub(crate) fn ran_out(&self) -> bool {
        self.ran_out.load(Ordering::Relaxed)
    }

    fn deadline(&self) -> Instant {
        self.base + Duration::from_nanos(self.deadline.load(Ordering::Relaxed))
    }
}

struct BoundedClock;

impl HasData for BoundedClock {
    type Data<'a> = BoundedClockView<'a>;
}

/// WASI's clock of one instance, and the limit of its waits.
struct BoundedClockView<'a> {
    clocks: WasiClocksCtxView<'a>,
    limit: Arc<WaitLimit>,
}

impl Host for BoundedClockView<'_> {
    fn now(&mut self) -> wasmtime::Result<u64> {
        self.clocks.now()
    }

    fn resolution(&mut self) -> wasmtime::Result<u64> {
        self.clocks.resolution()
    }

    fn subscribe_instant(&mut self, when: u64) -> wasmtime::Result<Resource<DynPollable>> {
        let now = self.clocks.now()?;
        self.subscribe_duration(when.saturating_sub(now))
    }

    fn subscribe_duration(&mut self, nanos: u64) -> wasmtime::Result<Resource<DynPollable>> {
        let wait = Wait {
            // `None`: later than can be told, which the deadline cuts too.
            until: Instant::now().checked_add(Duration::from_nanos(nanos)),
            limit: self.limit.clone(),
        };
        let wait = self.clocks.table.push(wait)?;
        subscribe(self.clocks.table, wait)
    }
}

/// One clock subscription.
struct Wait {
    until: Option<Instant>,
    limit: Arc<WaitLimit>,
}

/// Where a wait for `until` ends, given the deadline: the instant, and
/// whether it was cut.
fn bounded(until: Option<Instant>, deadline: Instant) -> (Instant, bool) {
    match until {
        Some(until) if until <= deadline => (until, false),
        _ => (deadline, true),
    }
}

#[async_trait]
impl Pollable for Wait {
    async fn ready(&mut self) {
        let (at, cut) = bounded(self.until, self.limit.deadline());
        if Instant::now() < at {
            tokio::time::sleep_until(at.into()).await;
        }
        if cut {
            self.limit.ran_out.store(true, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_is_cut_at_the_deadline() {
        let now = Instant::now();
        let deadline = now + Duration::from_millis(100);
        let short = now + Duration::from_millis(5);
        assert_eq!(bounded(Some(short), deadline), (short, false));
        assert_eq!(bounded(Some(deadline), deadline), (deadline, false));
        let long = now + Duration::from_secs(3600);
        assert_eq!(bounded(Some(long), deadline), (deadline, true));
        assert_eq!(bounded(None, deadline), (deadline, true));
    }

    #[test]
    fn each_invocation_starts_with_its_own_deadline_and_no_cut() {
        let limit = WaitLimit::new();
        limit.start(Duration::from_millis(50));
        let first = limit.deadline();
        limit.ran_out.store(true, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(2));
        limit.start(Duration::from_millis(50));
        assert!(limit.deadline() > first);
        assert!(!limit.ran_out());
    }
}
