//! The [`Store`] trait: the one way anything durable is read or written.
//!
//! It is shaped for a distributed backend as much as for the embedded one:
//! leases with visibility timeouts instead of locks, delayed jobs instead of
//! timers, at-least-once hand-out, fencing tokens, opaque cursors, and time
//! passed in by the caller. It knows nothing of HTTP or WebAssembly.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::model::OutboundRequest;

use super::StoreError;
use super::kv::{KvEntry, KvStore};
use super::queue::{
    AckResult, Attempt, Completion, DeliveryJob, Inserted, InvocationJob, InvocationOutcome,
    JobLease, LeaseToken, NewEvent, NextStep,
};
use super::records::{
    CancelFilter, CancelResult, DeliveryPage, DeliveryQuery, DeliveryRecord, EventDetail,
    EventPage, EventQuery, PluginHold, PluginPause, PluginStats, Pruned, QueueDepth, ReplayFilter,
    ReplayPage, RetryFilter, RetryResult,
};

/// Durable storage for the pipeline. Every method that returns `Ok` after a
/// write has made that write durable (it survives a crash of the process
/// and, for backends that promise it, of the machine).
///
/// Queue semantics are at-least-once: a job whose lease expires is handed
/// out again, so a worker that died mid-job is replaced. Callers keep
/// `lease_ms` comfortably above the longest time a job may take (plugin
/// timeout, delivery timeout), and may give up on a job whose `attempt`
/// keeps growing (complete it with an error verdict).
///
/// A write whose caller stops waiting (a cancelled request) may still be
/// committed; event ids and idempotent completion make a retry safe.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- ingest -------------------------------------------------------

    /// Insert a batch of events atomically, with one invocation job per
    /// subscribed plugin (due at the event's `received_ms`). An event whose
    /// id is already stored is skipped ([`Inserted::Duplicate`]) and gets no
    /// jobs. The answer has one entry per input, in order, and is returned
    /// only once the batch is durable.
    ///
    /// With a `lease`, the new jobs are leased to the caller in the same
    /// transaction and returned in [`Inserted::New`] (attempt 1), so they
    /// can go straight to a worker; if the caller does not settle them they
    /// come back when the lease ends, like any leased job.
    async fn insert_events(
        &self,
        batch: Vec<NewEvent>,
        lease: Option<JobLease>,
    ) -> Result<Vec<Inserted>, StoreError>;

    // ---- invocation queue ----------------------------------------------

    /// Lease up to `limit` invocation jobs that are due at `now_ms`, or
    /// whose earlier lease has expired. Each is invisible to other lease
    /// calls until `now_ms + lease_ms`. Oldest due first.
    async fn lease_invocations(
        &self,
        now_ms: u64,
        lease_ms: u64,
        limit: usize,
    ) -> Result<Vec<InvocationJob>, StoreError>;

    /// Record a job's outcome and create one pending delivery (due at
    /// `now_ms`) per request, in one transaction. The requests must still
    /// be in placeholder form. Idempotent: the first completion wins and
    /// later ones (from a worker whose lease expired) change nothing, so
    /// deliveries are never duplicated. Not fenced by lease: a late but
    /// valid result is accepted if nobody completed the job first.
    ///
    /// With a `lease`, the new deliveries are leased to the caller in the
    /// same transaction and returned in [`Completion::Recorded`], ready for
    /// their first attempt.
    async fn complete_invocation(
        &self,
        job_id: u64,
        outcome: InvocationOutcome,
        requests: Vec<OutboundRequest>,
        now_ms: u64,
        lease: Option<JobLease>,
    ) -> Result<Completion, StoreError>;

    /// Give a leased invocation back without running it (e.g. shutting
    /// down): it becomes due at `due_ms` and the lease is not counted as an
    /// attempt.
    async fn release_invocation(
        &self,
        job_id: u64,
        lease: &LeaseToken,
        due_ms: u64,
    ) -> Result<AckResult, StoreError>;

    /// Give a leased invocation back and *park* it: no lease call returns
    /// it until [`Store::unpark_invocations`] makes it due again (its
    /// plugin is paused; touching its backlog on every pause would cost
    /// as much as the backlog). The lease is not counted as an attempt.
    async fn park_invocation(
        &self,
        job_id: u64,
        lease: &LeaseToken,
    ) -> Result<AckResult, StoreError>;

    /// Make parked invocations due at `now_ms`: those of `plugin` (every
    /// plugin's when `None`), at most `limit` of them (oldest first) when
    /// given. Returns how many were unparked.
    async fn unpark_invocations(
        &self,
        plugin: Option<&str>,
        limit: Option<usize>,
        now_ms: u64,
    ) -> Result<u64, StoreError>;

    /// Settle as `outcome` the parked invocations of `plugin` created
    /// before `created_before_ms` (its events waited too long for a paused
    /// plugin), looking only at its `limit` oldest parked ones, so a call
    /// costs the same however large the backlog. Returns how many were
    /// settled; `limit` means more may be waiting.
    async fn expire_parked_invocations(
        &self,
        plugin: &str,
        created_before_ms: u64,
        outcome: InvocationOutcome,
        now_ms: u64,
        limit: usize,
    ) -> Result<u64, StoreError>;

    // ---- delivery queue --------------------------------------------------

    /// Lease up to `limit` pending deliveries whose next attempt is due at
    /// `now_ms`, or whose earlier lease has expired. Oldest due first.
    async fn lease_deliveries(
        &self,
        now_ms: u64,
        lease_ms: u64,
        limit: usize,
    ) -> Result<Vec<DeliveryJob>, StoreError>;

    /// Log one attempt of a leased delivery and move it on as `next` says,
    /// in one transaction; the lease ends. With a lost lease the attempt is
    /// still logged (it happened) but the state is left to the lease's
    /// current holder ([`AckResult::LeaseLost`]).
    async fn record_attempt(
        &self,
        delivery_id: &str,
        lease: &LeaseToken,
        attempt: Attempt,
        next: NextStep,
        now_ms: u64,
    ) -> Result<AckResult, StoreError>;

    /// Give a leased delivery back without an attempt (destination paused
    /// by the breaker, shutting down): it becomes due at `retry_at_ms`.
    async fn release_delivery(
        &self,
        delivery_id: &str,
        lease: &LeaseToken,
        retry_at_ms: u64,
    ) -> Result<AckResult, StoreError>;

    /// Park a leased delivery (its plugin is paused by an operator): no
    /// lease call hands it out until [`Store::unpark_deliveries`]; its
    /// scheduled time is kept and the lease is not counted as an attempt.
    async fn park_delivery(
        &self,
        delivery_id: &str,
        lease: &LeaseToken,
    ) -> Result<AckResult, StoreError>;

    /// Make parked deliveries due again (at their scheduled time, or
    /// `now_ms` if it has passed), except those of the plugins in
    /// `except`. Returns how many.
    async fn unpark_deliveries(&self, except: &[String], now_ms: u64) -> Result<u64, StoreError>;

    // ---- management --------------------------------------------------------

    /// An event with its invocations and deliveries (with attempts).
    async fn get_event(&self, event_id: &str) -> Result<Option<EventDetail>, StoreError>;

    /// A page of events, newest first (see [`EventQuery`], [`EventPage`]).
    async fn list_events(&self, query: EventQuery) -> Result<EventPage, StoreError>;

    /// One delivery with its attempts.
    async fn get_delivery(&self, delivery_id: &str) -> Result<Option<DeliveryRecord>, StoreError>;

    /// A page of deliveries, newest first (see [`DeliveryQuery`]).
    async fn list_deliveries(&self, query: DeliveryQuery) -> Result<DeliveryPage, StoreError>;

    /// Requeue a succeeded or failed delivery: pending, due at `now_ms`,
    /// with a fresh retry schedule. Its attempt log is kept.
    async fn retry_delivery(
        &self,
        delivery_id: &str,
        now_ms: u64,
    ) -> Result<RetryResult, StoreError>;

    /// Requeue every delivery matching `filter` as [`Store::retry_delivery`]
    /// does; returns how many were requeued.
    async fn retry_deliveries(&self, filter: RetryFilter, now_ms: u64) -> Result<u64, StoreError>;

    /// Run completed decisions of a plugin again: those matching `filter`
    /// become pending invocations due at `now_ms`, their decision cleared
    /// (attempt count back to 0), for the plugin as it is now to decide.
    /// Only `error` and `skip` decisions, which sent nothing, are touched.
    /// One call looks at a bounded stretch of the store (about `scan`
    /// invocations) from `cursor` (`None`: the start), so a replay over a
    /// large store is a series of short writes; it returns how many were
    /// requeued and where to go on (`None` when done).
    async fn replay_invocations(
        &self,
        filter: &ReplayFilter,
        cursor: Option<&str>,
        scan: usize,
        now_ms: u64,
    ) -> Result<ReplayPage, StoreError>;

    /// Give up on a pending delivery (waiting, parked or in flight): it
    /// becomes failed with the failure "cancelled by the operator", no
    /// lease hands it out again, and an attempt in flight can no longer
    /// settle it (its lease is fenced). A manual retry requeues it.
    async fn cancel_delivery(
        &self,
        delivery_id: &str,
        now_ms: u64,
    ) -> Result<CancelResult, StoreError>;

    /// Cancel, as [`Store::cancel_delivery`] does, every pending delivery
    /// matching `filter`; returns how many.
    async fn cancel_deliveries(&self, filter: CancelFilter, now_ms: u64)
    -> Result<u64, StoreError>;

    /// Invocation and delivery counts per plugin, for every plugin that has
    /// stored work.
    async fn plugin_stats(&self) -> Result<BTreeMap<String, PluginStats>, StoreError>;

    /// How much work is queued, and how much of it is due at `now_ms`.
    async fn queue_depth(&self, now_ms: u64) -> Result<QueueDepth, StoreError>;

    /// The earliest time at which a lease call could return something it
    /// would not return now: the next due job or expiring lease, among
    /// pending invocations and deliveries. `None` when both queues are
    /// empty. Lets a worker sleep until then (or until new work is
    /// signalled).
    async fn next_due_ms(&self) -> Result<Option<u64>, StoreError>;

    // ---- plugin pauses -----------------------------------------------------

    /// Remember `plugin`'s pause (`Some`, replacing any earlier one) or
    /// forget it (`None`; forgetting a pause never remembered is not an
    /// error).
    async fn set_plugin_pause(
        &self,
        plugin: &str,
        pause: Option<PluginPause>,
    ) -> Result<(), StoreError>;

    /// Every pause remembered, by plugin.
    async fn plugin_pauses(&self) -> Result<BTreeMap<String, PluginPause>, StoreError>;

    /// Keep (`Some`, replacing any earlier one) or drop (`None`; dropping
    /// one never kept is not an error) an operator's pause of `plugin`.
    async fn set_plugin_hold(
        &self,
        plugin: &str,
        hold: Option<PluginHold>,
    ) -> Result<(), StoreError>;

    /// Every operator's pause kept, by plugin.
    async fn plugin_holds(&self) -> Result<BTreeMap<String, PluginHold>, StoreError>;

    // ---- plugin kv ---------------------------------------------------------

    /// Up to `limit` of `plugin`'s kv entries whose key starts with
    /// `prefix`, in key order, after the key `after` when given: each with
    /// its value's size and at most its first `head` bytes.
    async fn list_kv(
        &self,
        plugin: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        head: usize,
    ) -> Result<Vec<KvEntry>, StoreError>;

    /// Delete up to `limit` of `plugin`'s kv entries whose key starts with
    /// `prefix` (`""`: every entry), in one transaction. Returns how many
    /// were deleted; fewer than `limit` means none is left.
    async fn clear_kv(&self, plugin: &str, prefix: &str, limit: usize) -> Result<u64, StoreError>;

    // ---- retention ---------------------------------------------------------

    /// Delete up to `limit` events received before `received_before_ms`
    /// whose work is over (no pending invocation, parked ones included, and
    /// no pending delivery), oldest first, with their invocations,
    /// deliveries and attempts, in one transaction. An event with work
    /// still pending is kept, however old, and does not stop the events
    /// behind it from going: a call may look at a bounded part of the
    /// store and say so with [`Pruned::more`], and successive calls go on
    /// where the last one stopped. Plugin kv entries are not touched.
    async fn prune(&self, received_before_ms: u64, limit: usize) -> Result<Pruned, StoreError>;

    /// Whether the store takes writes right now, by making a small durable
    /// write that changes nothing visible (for readiness: a full disk or a
    /// read-only file shows here as [`StoreError::Unavailable`]). Backends
    /// without such a probe answer `Ok`.
    async fn check_writable(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// The durable plugin key-value store. Its methods are synchronous and
    /// block: call them from blocking threads (the Wasm host imports), never
    /// from an async task. Writes are durable when they return. Like the
    /// queues, kv effects are at-least-once: an invocation that is run again
    /// after a lost lease repeats its writes and increments.
    fn kv(&self) -> Arc<dyn KvStore>;
}
