//! Persistence: the durable event queue, the invocation and delivery queues,
//! the delivery log, and the plugin key-value store.
//!
//! Everything durable goes through one object-safe async trait, [`Store`],
//! held as `Arc<dyn Store>`. [`SqliteStore`] is the embedded backend; a
//! distributed one (Postgres, NATS JetStream) must pass the same
//! [`conformance`] suite. Nothing in this module knows about HTTP or
//! WebAssembly, and no SQL lives outside `store/sqlite/`. The store never
//! reads the clock: every call that needs "now" takes `now_ms`, so callers
//! (and tests) own time.
//!
//! # Data model
//!
//! - **events**: one row per accepted event, unique by the event's `id`
//!   (a second insert with the same id is a [`Inserted::Duplicate`] and
//!   creates nothing).
//! - **invocations**: one job per (event, subscribed plugin), created in the
//!   same transaction as the event.
//! - **deliveries**: one row per request a plugin fired, created in the same
//!   transaction that records the plugin's decision. The request is stored
//!   in placeholder form (`{{secret:NAME}}`); secret values are never
//!   stored. Each delivery has a stable id (`msg_…`, used as the
//!   `webhook-id` header).
//! - **attempts**: the log of every send of a delivery.
//! - **kv**: the plugins' key-value store, one namespace per plugin.
//!
//! # State machines
//!
//! Both queues use leases with a visibility timeout (at-least-once): a
//! leased job is invisible until `now + lease_ms`; if its holder does not
//! settle it by then (crash, hang), the next lease call hands it out again
//! with a new [`LeaseToken`]. Settling with a stale token is fenced off.
//!
//! ```text
//! invocation:  pending ──lease──▶ leased ──complete_invocation──▶ done
//!                 ▲                 │
//!                 └─lease expired / release_invocation
//!
//! delivery:    pending ──lease──▶ leased ──record_attempt──▶ succeeded
//!                 ▲                 │  │                    ▶ failed (dead letter)
//!                 │                 │  └─RetryAt(t)──▶ pending, due at t
//!                 └─lease expired / release_delivery
//!              succeeded | failed ──retry_delivery(ies)──▶ pending, due now
//! ```
//!
//! A leased job is still `pending` in the management views; its
//! `leased_until` says it is in flight.
//!
//! A job can also be born leased: `insert_events` and
//! `complete_invocation` given a [`JobLease`] create their jobs leased to
//! the caller and return them, so a worker in the same process gets fresh
//! work without another write (the `lease` arrow above happens inside the
//! creating transaction). From then on such a job is like any leased job.

pub mod conformance;
mod contract;
mod kv;
mod overlay;
mod queue;
mod records;
mod sqlite;

pub use contract::Store;
pub use kv::{KvEntry, KvError, KvStore, KvUsage, MemoryKv, entry_bytes as kv_entry_bytes};
pub use overlay::OverlayKv;
pub use queue::{
    AckResult, Attempt, AttemptOutcome, Completion, DeliveryJob, Inserted, InvocationJob,
    InvocationOutcome, JobLease, LeaseToken, NewEvent, NextStep, Verdict,
};
pub use records::{
    CancelFilter, CancelResult, DeliveryPage, DeliveryQuery, DeliveryRecord, DeliveryStatus,
    EventDetail, EventPage, EventQuery, EventSummary, InvocationRecord, InvocationStats,
    InvocationStatus, PluginHold, PluginPause, PluginStats, Pruned, QueueDepth, ReplayFilter,
    ReplayPage, RetryFilter, RetryResult, StatusCounts,
};
pub use sqlite::{BackupError, BackupReport, SqliteStore};

/// A storage backend failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The backend is unavailable or returned an error.
    #[error("storage backend error: {0}")]
    Backend(String),
    /// The storage cannot take writes right now for an operational reason
    /// (disk full, read-only file, I/O error, locked by another process)
    /// that may go away without a restart. `reason` is short and safe to
    /// show to API callers ("disk full"); the detail is logged.
    #[error("storage unavailable: {reason}")]
    Unavailable {
        /// What is wrong, in a few words.
        reason: &'static str,
    },
    /// The store has shut down (its writer stopped); nothing more can be
    /// written through this handle.
    #[error("the store is closed")]
    Closed,
    /// Stored data could not be decoded (a bug, or a database written by an
    /// incompatible version).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// A pagination cursor that this backend did not issue.
    #[error("invalid cursor")]
    InvalidCursor,
    /// An event's `id` is taken by a stored event from another source
    /// (see [`NewEvent::source`]); nothing of the batch was stored.
    #[error("event id {id:?} (batch position {index}) is taken by an event from {}", shown_source(taken_by.as_deref()))]
    IdTaken {
        /// Position of the refused event in its batch.
        index: usize,
        /// The id.
        id: String,
        /// The source of the stored event (`None`: a native event).
        taken_by: Option<String>,
    },
}

/// A source as messages show it.
pub fn shown_source(source: Option<&str>) -> String {
    match source {
        Some(s) => format!("source {s:?}"),
        None => "the native format (no source)".to_owned(),
    }
}
