//! The management views of stored data: event detail, delivery listings,
//! manual retries, statistics and queue depth.
//!
//! Plain data; the API module turns these into its own JSON shapes.

use crate::model::{Event, OutboundRequest};

use super::queue::{Attempt, InvocationOutcome};

/// Where an invocation job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvocationStatus {
    /// Not run yet, or in flight (see `leased_until`).
    Pending,
    /// The plugin's outcome is recorded.
    Done,
}

impl InvocationStatus {
    /// Lower-case name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            InvocationStatus::Pending => "pending",
            InvocationStatus::Done => "done",
        }
    }
}

/// One plugin's invocation for an event.
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationRecord {
    /// The job id.
    pub id: u64,
    /// The plugin.
    pub plugin: String,
    /// Pending or done.
    pub status: InvocationStatus,
    /// How many times the job was leased.
    pub attempts: u32,
    /// While in flight: when the current lease expires.
    pub leased_until: Option<u64>,
    /// The recorded outcome, once done.
    pub outcome: Option<InvocationOutcome>,
    /// When the outcome was recorded.
    pub completed_ms: Option<u64>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt, or in flight (see `leased_until`).
    Pending,
    /// The receiver accepted it.
    Succeeded,
    /// Dead-lettered: permanent failure or retries exhausted.
    Failed,
}

impl DeliveryStatus {
    /// Every status.
    pub const ALL: [DeliveryStatus; 3] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Succeeded,
        DeliveryStatus::Failed,
    ];

    /// Lower-case name, as stored and used in the API's `status=` filter.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }

    /// The inverse of [`DeliveryStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(DeliveryStatus::Pending),
            "succeeded" => Some(DeliveryStatus::Succeeded),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// One delivery with its full attempt log.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRecord {
    /// The stable delivery id (`webhook-id`).
    pub id: String,
    /// The plugin that built the request.
    pub plugin: String,
    /// The event that caused it.
    pub event_id: String,
    /// Pending, succeeded or failed.
    pub status: DeliveryStatus,
    /// The request in placeholder form (never with secret values).
    pub request: OutboundRequest,
    /// Every attempt, oldest first (across manual retries).
    pub attempts: Vec<Attempt>,
    /// While pending: when the next attempt is due.
    pub next_attempt_ms: Option<u64>,
    /// While in flight: when the current lease expires.
    pub leased_until: Option<u64>,
    /// Why it failed, once failed.
    pub failure: Option<String>,
    /// When the delivery was created.
    pub created_ms: u64,
    /// When its state last changed.
    pub updated_ms: u64,
}

/// An event with everything that happened because of it.
#[derive(Debug, Clone, PartialEq)]
pub struct EventDetail {
    /// The event as accepted.
    pub event: Event,
    /// When ingest accepted it.
    pub received_ms: u64,
    /// One per subscribed plugin, in insertion order.
    pub invocations: Vec<InvocationRecord>,
    /// Every delivery the plugins fired, oldest first.
    pub deliveries: Vec<DeliveryRecord>,
}

/// A filter and page request for listing events, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Only events with this name.
    pub name: Option<String>,
    /// Only events of this user.
    pub user_id: Option<String>,
    /// Page size; clamped to `1..=1000` (0 means the default, 100).
    pub limit: usize,
    /// `next_cursor` from the previous page; `None` for the first page.
    pub cursor: Option<String>,
    /// Events one page looks at, at most (0: the backend's default).
    pub scan: usize,
}

/// One event in a listing, with where its work stands.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSummary {
    /// The event as accepted.
    pub event: Event,
    /// When ingest accepted it.
    pub received_ms: u64,
    /// Whether a decision or a delivery is still pending.
    pub pending: bool,
    /// Its deliveries by status.
    pub deliveries: StatusCounts,
}

/// One page of events. A page looks at a bounded stretch of the store, so
/// with a filter it may hold fewer events than asked (even none) while
/// `next_cursor` says there is more to look at.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    /// The events, newest first.
    pub items: Vec<EventSummary>,
    /// Where the next page starts; `None` when there is no more.
    pub next_cursor: Option<String>,
}

/// A filter and page request for listing deliveries.
///
/// Listings are newest first (descending creation order) and keyset
/// paginated: deliveries created after the first page was read never shift
/// later pages, and no delivery appears twice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryQuery {
    /// Only deliveries in this status.
    pub status: Option<DeliveryStatus>,
    /// Only deliveries of this plugin.
    pub plugin: Option<String>,
    /// Page size; clamped to `1..=1000` (0 means the default, 100).
    pub limit: usize,
    /// `next_cursor` from the previous page; `None` for the first page.
    pub cursor: Option<String>,
}

/// One page of deliveries.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryPage {
    /// The deliveries, newest first.
    pub items: Vec<DeliveryRecord>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// The answer to a manual retry of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryResult {
    /// It was succeeded or failed and is now pending, due now.
    Requeued,
    /// No such delivery.
    NotFound,
    /// It is already pending (waiting or in flight); nothing changed.
    AlreadyPending,
}

/// What cancelling one delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelResult {
    /// It was pending and is now failed, marked cancelled.
    Cancelled,
    /// No such delivery.
    NotFound,
    /// It had already succeeded or failed; nothing changed.
    NotPending,
}

/// Which pending deliveries a bulk cancel gives up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelFilter {
    /// The plugin whose deliveries are cancelled.
    pub plugin: String,
    /// Only deliveries created at or after this time.
    pub from_ms: Option<u64>,
    /// Only deliveries created before this time.
    pub to_ms: Option<u64>,
}

/// Which deliveries a bulk retry requeues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryFilter {
    /// Only this plugin's deliveries.
    pub plugin: Option<String>,
    /// Only deliveries in this status (default `Failed`; `Pending` matches
    /// nothing, since pending deliveries need no retry).
    pub status: DeliveryStatus,
    /// Only deliveries created at or after this time.
    pub from_ms: Option<u64>,
    /// Only deliveries created before this time.
    pub to_ms: Option<u64>,
}

impl Default for RetryFilter {
    fn default() -> Self {
        Self {
            plugin: None,
            status: DeliveryStatus::Failed,
            from_ms: None,
            to_ms: None,
        }
    }
}

/// Which of a plugin's decisions a replay runs again
/// ([`crate::store::Store::replay_invocations`]). Only decisions that sent
/// nothing can be replayed: `error` and `skip`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayFilter {
    /// The plugin whose decisions run again.
    pub plugin: String,
    /// Replay `error` decisions (expired ones included).
    pub errors: bool,
    /// Replay `skip` decisions.
    pub skips: bool,
    /// Only this event's decision.
    pub event_id: Option<String>,
    /// Only events accepted at or after this time.
    pub from_ms: Option<u64>,
    /// Only events accepted before this time.
    pub to_ms: Option<u64>,
}

/// One step of a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayPage {
    /// Decisions made pending again in this step.
    pub requeued: u64,
    /// Where the next step starts; `None` when the replay is complete.
    pub cursor: Option<String>,
}

/// Invocation counts of one plugin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InvocationStats {
    /// Not yet completed (waiting or in flight).
    pub pending: u64,
    /// Of the pending ones, those parked while the plugin is paused.
    pub parked: u64,
    /// Completed with `fire`.
    pub fire: u64,
    /// Completed with `skip`.
    pub skip: u64,
    /// Completed with `error` by a run (or because the plugin was no
    /// longer configured).
    pub error: u64,
    /// Not run: the event was older than the plugin's `max_event_age_s`
    /// (recorded as an `error` of kind `expired`, counted apart).
    pub expired: u64,
}

/// Delivery counts by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    /// Waiting or in flight.
    pub pending: u64,
    /// Accepted by the receiver.
    pub succeeded: u64,
    /// Dead-lettered.
    pub failed: u64,
}

/// What one plugin did, over everything stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PluginStats {
    /// Its invocations by outcome.
    pub invocations: InvocationStats,
    /// Its deliveries by status.
    pub deliveries: StatusCounts,
    /// What its `kv` namespace holds.
    pub kv: super::KvUsage,
}

/// A plugin's pause, kept by the store so that a restart resumes it
/// instead of running the failing plugin again from scratch (see
/// `worker/pause.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginPause {
    /// How the plugin ran when it was paused (a digest of its component,
    /// limits and settings): a plugin that runs differently after the
    /// restart starts afresh.
    pub identity: String,
    /// When the pause ends, in ms since the Unix epoch.
    pub until_ms: u64,
    /// The pause's length (a failed probe doubles it).
    pub pause_ms: u64,
}

/// An operator's pause of a plugin (`POST /v1/plugins/{name}/pause`),
/// kept by the store until resumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginHold {
    /// When it was paused, in ms since the Unix epoch.
    pub since_ms: u64,
    /// Why, as the operator said.
    pub reason: Option<String>,
}

/// What one prune call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Events deleted.
    pub deleted: u64,
    /// The call stopped before it had looked at every old event (its
    /// limit or its scan budget ran out): call again soon. `false` once a
    /// pass has reached the cut-off: nothing else can go before the work
    /// of the events kept is over, so the caller may wait.
    pub more: bool,
}

/// How much work is queued, at a given time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Invocations not completed (waiting or in flight).
    pub invocations_pending: u64,
    /// Of those, the ones a lease call would hand out now.
    pub invocations_due: u64,
    /// Deliveries pending (waiting for a retry, due, or in flight).
    pub deliveries_pending: u64,
    /// Of those, the ones a lease call would hand out now.
    pub deliveries_due: u64,
}
