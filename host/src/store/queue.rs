//! The types that flow through the queues: what ingest inserts, what the
//! worker leases, and what it reports back.
//!
//! Plain data; no backend and no wire format knows about them beyond
//! `store/`'s own backends.

use crate::model::{Event, OutboundRequest};
use crate::runtime::ErrorKind;

/// One event to insert, already routed by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The event; its `id` is the idempotency key.
    pub event: Event,
    /// The plugins subscribed to this event: one invocation job each.
    /// Duplicate names are ignored.
    pub plugins: Vec<String>,
    /// Subscribed plugins that are paused: one job each too, created
    /// *parked* (as [`crate::store::Store::park_invocation`] leaves a job)
    /// and never leased to the caller, so a paused plugin's backlog costs
    /// no write beyond its insert.
    pub parked: Vec<String>,
    /// When ingest accepted it; the invocation jobs are due at this time.
    pub received_ms: u64,
    /// A CloudEvent's `source` (`None` for a native event). CloudEvents are
    /// the same event when `source` and `id` are; since events here are
    /// keyed by `id` alone, an `id` already taken by an event from another
    /// source is refused ([`crate::store::StoreError::IdTaken`]) rather
    /// than taken for a duplicate and dropped.
    pub source: Option<String>,
}

/// A lease taken for the caller by the write that creates jobs
/// ([`crate::store::Store::insert_events`],
/// [`crate::store::Store::complete_invocation`]), so fresh work can be
/// handed to a worker in process instead of being leased by another write.
/// The jobs are leased exactly as a lease call at `now_ms` would lease
/// them: invisible until `now_ms + lease_ms`, then handed out again if
/// nobody settled them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobLease {
    /// When the lease starts.
    pub now_ms: u64,
    /// How long it lasts.
    pub lease_ms: u64,
}

/// What happened to one [`NewEvent`] of an insert batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Inserted {
    /// Stored now, with its invocation jobs.
    New {
        /// The jobs created for it, leased to the caller, when the insert
        /// asked for a [`JobLease`]; empty otherwise.
        jobs: Vec<InvocationJob>,
    },
    /// An event with this id was already stored (possibly earlier in the
    /// same batch); nothing was inserted and no job created.
    Duplicate,
}

impl Inserted {
    /// Whether the event was stored now.
    pub fn is_new(&self) -> bool {
        matches!(self, Inserted::New { .. })
    }

    /// The jobs leased to the caller (none for a duplicate).
    pub fn into_jobs(self) -> Vec<InvocationJob> {
        match self {
            Inserted::New { jobs } => jobs,
            Inserted::Duplicate => Vec::new(),
        }
    }
}

/// Proof of holding a lease on a job. Backend-defined and opaque; a new
/// token is issued every time a job is leased, so a holder whose lease
/// expired and was taken over cannot settle the job any more.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseToken(String);

impl LeaseToken {
    /// Wrap a backend's token (backends only).
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token as the backend issued it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A leased invocation job: run `plugin` on `event`.
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationJob {
    /// The job's id, for [`crate::store::Store::complete_invocation`].
    pub id: u64,
    /// This lease, for [`crate::store::Store::release_invocation`].
    pub lease: LeaseToken,
    /// The event to hand to the plugin.
    pub event: Event,
    /// The plugin to run.
    pub plugin: String,
    /// 1 on the first lease; more means earlier holders died or let the
    /// lease expire (a worker may give up on a job that keeps coming back).
    pub attempt: u32,
    /// When this lease ends (ms since the epoch). A job still waiting for
    /// a worker by then is due again in the store and will be handed out
    /// anew; its holder should drop it rather than run it a second time.
    pub lease_until_ms: u64,
    /// When the job was created: when its event was accepted.
    pub created_ms: u64,
}

/// A plugin's verdict on one event, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The plugin returned requests (possibly none).
    Fire,
    /// The plugin declined.
    Skip {
        /// The plugin's reason.
        reason: String,
    },
    /// The invocation failed.
    Error {
        /// Machine-readable kind (timeout, trap, …).
        kind: ErrorKind,
        /// Human-readable detail, safe to show to an admin.
        message: String,
    },
}

impl Verdict {
    /// `fire`, `skip` or `error`: the metrics label and stored form.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Fire => "fire",
            Verdict::Skip { .. } => "skip",
            Verdict::Error { .. } => "error",
        }
    }
}

/// The result of one invocation, recorded by `complete_invocation`.
#[derive(Debug, Clone, PartialEq)]
pub struct InvocationOutcome {
    /// What the plugin decided.
    pub verdict: Verdict,
    /// Wall time of the invocation in microseconds.
    pub duration_us: u64,
    /// Fuel consumed, when fuel metering is on.
    pub fuel: Option<u64>,
}

/// The answer to `complete_invocation`.
#[derive(Debug, Clone, PartialEq)]
pub enum Completion {
    /// The outcome is recorded and these deliveries were created, one per
    /// request and in the same order.
    Recorded {
        /// Ids of the new deliveries (their `webhook-id`).
        delivery_ids: Vec<String>,
        /// The new deliveries leased to the caller, in the same order, when
        /// the completion asked for a [`JobLease`]; empty otherwise.
        leased: Vec<DeliveryJob>,
    },
    /// The job was already completed (by a worker whose lease this one
    /// outlived); nothing changed.
    AlreadyCompleted,
    /// No such job.
    NotFound,
}

/// A leased delivery: send `request` (after the policy check and secret
/// substitution, which happen outside the store).
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryJob {
    /// The stable delivery id, sent as the `webhook-id` header.
    pub id: String,
    /// This lease, for `record_attempt` and `release_delivery`.
    pub lease: LeaseToken,
    /// The plugin that built the request (its policy and secrets apply).
    pub plugin: String,
    /// The event that caused it.
    pub event_id: String,
    /// The request, secrets still in `{{secret:NAME}}` form.
    pub request: OutboundRequest,
    /// Attempts recorded since the delivery was (re)queued: 0 on the first
    /// send; reset by a manual retry so a replay gets the full schedule.
    pub attempts_so_far: u32,
    /// When the delivery was created.
    pub created_ms: u64,
    /// When this lease ends (ms since the epoch); see
    /// [`InvocationJob::lease_until_ms`].
    pub lease_until_ms: u64,
}

/// How one send went, in the store's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptOutcome {
    /// The receiver answered 2xx.
    Success,
    /// The receiver answered with another status (see `status_code`).
    Status,
    /// No answer within the timeout.
    Timeout,
    /// Connection, TLS or I/O failure.
    Network,
    /// The egress policy refused the request (before sending or at connect
    /// time); nothing reached the destination.
    Policy,
}

impl AttemptOutcome {
    /// Lower-case name, as stored and used as a metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Success => "success",
            AttemptOutcome::Status => "status",
            AttemptOutcome::Timeout => "timeout",
            AttemptOutcome::Network => "network",
            AttemptOutcome::Policy => "policy",
        }
    }

    /// The inverse of [`AttemptOutcome::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [
            AttemptOutcome::Success,
            AttemptOutcome::Status,
            AttemptOutcome::Timeout,
            AttemptOutcome::Network,
            AttemptOutcome::Policy,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// One send of a delivery, as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// When the send started.
    pub started_ms: u64,
    /// How long it took.
    pub duration_ms: u64,
    /// The receiver's status code, if it answered.
    pub status_code: Option<u16>,
    /// What went wrong, if anything. Must not contain secret values.
    pub error: Option<String>,
    /// The attempt's classification.
    pub outcome: AttemptOutcome,
    /// The start of the receiver's answer when it was not a success (why
    /// a CRM refused the request), at most a few KiB. Must not contain
    /// secret values.
    pub response: Option<String>,
}

/// What the delivery becomes after an attempt (decided by the delivery
/// module's retry policy, not by the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NextStep {
    /// Done: the receiver accepted it.
    Succeeded,
    /// Try again at this time (ms since the epoch).
    RetryAt(u64),
    /// Give up (permanent failure or schedule exhausted): dead letter.
    Failed(String),
}

/// The answer to calls that settle a leased job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckResult {
    /// The job's state changed as asked.
    Applied,
    /// The lease was lost (expired and taken over, or already settled):
    /// the job's state was not changed. An attempt passed along is still
    /// logged, because it did happen.
    LeaseLost,
    /// No such job.
    NotFound,
}
