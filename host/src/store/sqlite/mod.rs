//! The embedded SQLite backend of [`Store`].
//!
//! One writer thread applies every write with group commit (see
//! `writer.rs`); reads run on a pool of read-only connections on tokio's
//! blocking threads; WAL checkpoints run on a thread of their own
//! (`checkpoint.rs`), outside the writer's commits. WAL mode, `synchronous = FULL`, foreign keys on, the
//! schema migrated on open. All SQL of the crate lives in this directory:
//! `schema.rs` (tables), `events.rs`, `invocations.rs`, `deliveries.rs`
//! (queue operations), `management.rs` and `event_list.rs` (reads for the
//! API), `replay.rs`
//! (decisions run again), `kv.rs`, `pauses.rs` (paused plugins),
//! `retention.rs` (pruning finished events); `owner.rs` (one process per
//! database file); `backup.rs` (online backup, restore).

mod backup;
mod cancel;
mod checkpoint;
mod codec;
mod deliveries;
mod errors;
mod event_list;
mod events;
mod invocations;
mod kv;
mod management;
mod owner;
mod pauses;
mod readers;
mod recovery;
mod replay;
mod retention;
mod schema;
mod writer;

#[cfg(test)]
mod backup_tests;
#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::Connection;

use super::StoreError;
use super::contract::Store;
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
use crate::model::OutboundRequest;
pub use backup::{BackupError, BackupReport};
use checkpoint::{Checkpointer, Truncator};
use owner::Owner;
use readers::Readers;
use writer::Writer;

/// Deliveries a bulk retry or cancel changes per write: each write holds
/// the writer for milliseconds, whatever the whole run touches.
const BULK_BATCH: usize = 1000;

/// `path` with `suffix` appended to its file name, as SQLite names a
/// database's companions (`x.db` → `x.db-wal`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// `rusqlite` errors become [`StoreError`]s at this boundary (see
/// `errors.rs`: disk full, read-only and the like are
/// [`StoreError::Unavailable`]).
trait DbResult<T> {
    fn db(self) -> Result<T, StoreError>;
}

impl<T> DbResult<T> for rusqlite::Result<T> {
    fn db(self) -> Result<T, StoreError> {
        self.map_err(errors::classify)
    }
}

/// The connections, shared by the store and its kv handles. Dropping the
/// last reference drains the writer and joins its thread.
struct Inner {
    writer: Writer,
    /// Where the next prune call goes on (`retention.rs`).
    retention_cursor: Arc<std::sync::atomic::AtomicI64>,
    readers: Readers,
    /// Stops after the writer has drained.
    _checkpointer: Checkpointer,
    /// Declared last: the file is another process's to take only once
    /// everything above has stopped.
    _owner: Owner,
}

/// Process-wide SQLite settings, applied once before the first connection
/// opens (SQLite accepts them only before it initialises itself).
///
/// Memory statistics off: with them on, every allocation SQLite makes
/// takes a global mutex to keep counts nothing here reads, and the writer
/// allocates for every statement it steps. If the library was already
/// initialised (a connection opened elsewhere first), the call is refused
/// and the default stays: slower, never wrong.
fn tune_library() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: `sqlite3_config` is safe to call before initialisation
        // and returns SQLITE_MISUSE (ignored) after it; SQLITE_CONFIG_MEMSTATUS
        // takes one `int` argument, passed as the variadic C int it expects.
        let off: std::ffi::c_int = 0;
        #[expect(unsafe_code, reason = "sqlite3_config before SQLite initialises")]
        unsafe {
            rusqlite::ffi::sqlite3_config(rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS, off);
        }
    });
}

/// The embedded SQLite store: one database file (plus its `-wal` and
/// `-shm` companions). Cheap to clone; all clones share one writer.
///
/// One process owns a database file at a time (`owner.rs`): opening a file
/// another process has open is refused.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Open (creating if needed) the database at `path`, switch it to WAL,
    /// migrate the schema, and start the writer thread. Blocks briefly.
    /// Refused while another process has the file open.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        tune_library();
        // The lock first: a restore holding it may still be moving files,
        // and a connection opened before it finished would write through
        // a handle to the file it moved aside, into a WAL named after the
        // restored one. (A `file:` URI is locked once SQLite resolved it.)
        let uri = path.to_str().is_some_and(|p| p.starts_with("file:"));
        let early_owner = if uri {
            None
        } else {
            Some(Owner::claim(&path)?)
        };
        let mut conn = Connection::open(&path).map_err(|e| {
            StoreError::Backend(format!("cannot open database {}: {e}", path.display()))
        })?;
        // SQLite silently opens a file it may not write read-only; every
        // write would then fail. Refuse at open, where the caller names
        // the path, rather than start and answer 503 to everything.
        if conn.is_readonly(rusqlite::MAIN_DB).db()? {
            return Err(StoreError::Unavailable {
                reason: "database is read-only",
            });
        }
        // Before the first write. The file's own name, as SQLite resolved
        // it (the path may be a `file:` URI).
        let file = conn
            .path()
            .filter(|p| !p.is_empty())
            .map_or_else(|| path.clone(), PathBuf::from);
        let owner = match early_owner {
            Some(owner) => owner,
            None => Owner::claim(&file)?,
        };
        schema::configure_writer(&conn)?;
        schema::migrate(&mut conn)?;
        // No other process has the database (the lock), so every lease in
        // it is a dead process's: its work is due now, not when a lease
        // measured on a wall clock that may have moved since runs out.
        recovery::release_dead_leases(&conn)?;
        let tuning = checkpoint::Tuning::default();
        let wal_length = Arc::new(checkpoint::WalLength::default());
        let inner = Inner {
            writer: Writer::spawn(conn, Truncator::new(wal_length.clone(), tuning))?,
            retention_cursor: Arc::default(),
            readers: Readers::new(path.clone()),
            _checkpointer: Checkpointer::spawn(&path, tuning, wal_length)?,
            _owner: owner,
        };
        Ok(Self {
            inner: Arc::new(inner),
            path,
        })
    }

    /// Copy the database at `db` to the new file `out` while a store may
    /// be open on it (in this process or another): one consistent,
    /// checked snapshot; `out` is never overwritten.
    pub fn backup(db: &Path, out: &Path) -> Result<BackupReport, BackupError> {
        backup::backup(db, out)
    }

    /// Put the backup `from` in place of the database at `db`, which no
    /// store may have open; the database replaced is kept, renamed.
    pub fn restore(from: &Path, db: &Path) -> Result<BackupReport, BackupError> {
        backup::restore(from, db)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Write transactions committed since open. Each commits a whole group
    /// of writes with one fsync; writes ÷ commits is the group-commit
    /// factor (a metric worth exporting).
    pub fn commits(&self) -> u64 {
        self.inner.writer.commits()
    }

    async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.inner.writer.write(work).await
    }

    /// A bulk retry or cancel: `step` applied to one batch after another
    /// (the `seq` range `(after, upto]`), each its own write, up to the
    /// newest delivery there was when it began; how many it changed. A
    /// failure part-way is logged with what was done (those writes are
    /// committed), then returned.
    async fn bulk<F>(&self, what: &'static str, step: F) -> Result<u64, StoreError>
    where
        F: Fn(&Connection, (i64, i64)) -> Result<(u64, Option<i64>), StoreError>
            + Send
            + Sync
            + 'static,
    {
        let step = Arc::new(step);
        let upto = self.newest_delivery().await?;
        let (mut total, mut after) = (0, 0);
        loop {
            let step = step.clone();
            let (n, next) = self
                .write(move |conn| step(conn, (after, upto)))
                .await
                .inspect_err(|e| {
                    tracing::warn!(error = %e, done = total, "bulk {what} stopped part-way; the deliveries it reached are changed")
                })?;
            total += n;
            match next {
                Some(next) => after = next,
                None => return Ok(total),
            }
        }
    }

    /// The newest delivery's `seq`: where a bulk run stops, so that it
    /// changes the deliveries there were when it was asked for.
    async fn newest_delivery(&self) -> Result<i64, StoreError> {
        self.read(|conn| {
            conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM deliveries", [], |r| {
                r.get(0)
            })
            .db()
        })
        .await
    }

    async fn read<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || inner.readers.read(read))
            .await
            .map_err(|e| StoreError::Backend(format!("store read task failed: {e}")))?
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert_events(
        &self,
        batch: Vec<NewEvent>,
        lease: Option<JobLease>,
    ) -> Result<Vec<Inserted>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        self.write(move |conn| events::insert_events(conn, &batch, lease))
            .await
    }

    async fn lease_invocations(
        &self,
        now_ms: u64,
        lease_ms: u64,
        limit: usize,
    ) -> Result<Vec<InvocationJob>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.write(move |conn| invocations::lease(conn, now_ms, lease_ms, limit))
            .await
    }

    async fn complete_invocation(
        &self,
        job_id: u64,
        outcome: InvocationOutcome,
        requests: Vec<OutboundRequest>,
        now_ms: u64,
        lease: Option<JobLease>,
    ) -> Result<Completion, StoreError> {
        self.write(move |conn| {
            invocations::complete(conn, job_id, &outcome, requests, now_ms, lease)
        })
        .await
    }

    async fn release_invocation(
        &self,
        job_id: u64,
        lease: &LeaseToken,
        due_ms: u64,
    ) -> Result<AckResult, StoreError> {
        let lease = lease.clone();
        self.write(move |conn| invocations::release(conn, job_id, &lease, due_ms))
            .await
    }

    async fn park_invocation(
        &self,
        job_id: u64,
        lease: &LeaseToken,
    ) -> Result<AckResult, StoreError> {
        let lease = lease.clone();
        self.write(move |conn| invocations::release(conn, job_id, &lease, invocations::PARKED))
            .await
    }

    async fn unpark_invocations(
        &self,
        plugin: Option<&str>,
        limit: Option<usize>,
        now_ms: u64,
    ) -> Result<u64, StoreError> {
        let plugin = plugin.map(str::to_owned);
        self.write(move |conn| invocations::unpark(conn, plugin.as_deref(), limit, now_ms))
            .await
    }

    async fn expire_parked_invocations(
        &self,
        plugin: &str,
        created_before_ms: u64,
        outcome: InvocationOutcome,
        now_ms: u64,
        limit: usize,
    ) -> Result<u64, StoreError> {
        let plugin = plugin.to_owned();
        self.write(move |conn| {
            invocations::expire_parked(conn, &plugin, created_before_ms, &outcome, now_ms, limit)
        })
        .await
    }

    async fn lease_deliveries(
        &self,
        now_ms: u64,
        lease_ms: u64,
        limit: usize,
    ) -> Result<Vec<DeliveryJob>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.write(move |conn| deliveries::lease(conn, now_ms, lease_ms, limit))
            .await
    }

    async fn record_attempt(
        &self,
        delivery_id: &str,
        lease: &LeaseToken,
        attempt: Attempt,
        next: NextStep,
        now_ms: u64,
    ) -> Result<AckResult, StoreError> {
        let (id, lease) = (delivery_id.to_owned(), lease.clone());
        self.write(move |conn| {
            deliveries::record_attempt(conn, &id, &lease, &attempt, &next, now_ms)
        })
        .await
    }

    async fn release_delivery(
        &self,
        delivery_id: &str,
        lease: &LeaseToken,
        retry_at_ms: u64,
    ) -> Result<AckResult, StoreError> {
        let (id, lease) = (delivery_id.to_owned(), lease.clone());
        self.write(move |conn| deliveries::release(conn, &id, &lease, retry_at_ms))
            .await
    }

    async fn park_delivery(
        &self,
        delivery_id: &str,
        lease: &LeaseToken,
    ) -> Result<AckResult, StoreError> {
        let (id, lease) = (delivery_id.to_owned(), lease.clone());
        self.write(move |conn| deliveries::park(conn, &id, &lease))
            .await
    }

    async fn unpark_deliveries(&self, except: &[String], now_ms: u64) -> Result<u64, StoreError> {
        let except = except.to_vec();
        self.write(move |conn| deliveries::unpark(conn, &except, now_ms))
            .await
    }

    async fn get_event(&self, event_id: &str) -> Result<Option<EventDetail>, StoreError> {
        let id = event_id.to_owned();
        self.read(move |conn| events::get_event(conn, &id)).await
    }

    async fn list_events(&self, query: EventQuery) -> Result<EventPage, StoreError> {
        self.read(move |conn| event_list::list(conn, &query)).await
    }

    async fn get_delivery(&self, delivery_id: &str) -> Result<Option<DeliveryRecord>, StoreError> {
        let id = delivery_id.to_owned();
        self.read(move |conn| management::get_delivery(conn, &id))
            .await
    }

    async fn list_deliveries(&self, query: DeliveryQuery) -> Result<DeliveryPage, StoreError> {
        self.read(move |conn| management::list_deliveries(conn, &query))
            .await
    }

    async fn retry_delivery(
        &self,
        delivery_id: &str,
        now_ms: u64,
    ) -> Result<RetryResult, StoreError> {
        let id = delivery_id.to_owned();
        self.write(move |conn| deliveries::retry_one(conn, &id, now_ms))
            .await
    }

    async fn retry_deliveries(&self, filter: RetryFilter, now_ms: u64) -> Result<u64, StoreError> {
        self.bulk("retry", move |conn, range| {
            deliveries::retry_many(conn, &filter, now_ms, range, BULK_BATCH)
        })
        .await
    }

    async fn replay_invocations(
        &self,
        filter: &ReplayFilter,
        cursor: Option<&str>,
        scan: usize,
        now_ms: u64,
    ) -> Result<ReplayPage, StoreError> {
        let (filter, cursor) = (filter.clone(), cursor.map(str::to_owned));
        self.write(move |conn| replay::step(conn, &filter, cursor.as_deref(), scan, now_ms))
            .await
    }

    async fn cancel_delivery(
        &self,
        delivery_id: &str,
        now_ms: u64,
    ) -> Result<CancelResult, StoreError> {
        let id = delivery_id.to_owned();
        self.write(move |conn| cancel::one(conn, &id, now_ms)).await
    }

    async fn cancel_deliveries(
        &self,
        filter: CancelFilter,
        now_ms: u64,
    ) -> Result<u64, StoreError> {
        self.bulk("cancel", move |conn, range| {
            cancel::many(conn, &filter, now_ms, range, BULK_BATCH)
        })
        .await
    }

    async fn plugin_stats(&self) -> Result<BTreeMap<String, PluginStats>, StoreError> {
        self.read(management::plugin_stats).await
    }

    async fn queue_depth(&self, now_ms: u64) -> Result<QueueDepth, StoreError> {
        self.read(move |conn| management::queue_depth(conn, now_ms))
            .await
    }

    async fn next_due_ms(&self) -> Result<Option<u64>, StoreError> {
        self.read(management::next_due_ms).await
    }

    async fn set_plugin_pause(
        &self,
        plugin: &str,
        pause: Option<PluginPause>,
    ) -> Result<(), StoreError> {
        let plugin = plugin.to_owned();
        self.write(move |conn| pauses::set(conn, &plugin, pause.as_ref()))
            .await
    }

    async fn plugin_pauses(&self) -> Result<BTreeMap<String, PluginPause>, StoreError> {
        self.read(pauses::all).await
    }

    async fn set_plugin_hold(
        &self,
        plugin: &str,
        hold: Option<PluginHold>,
    ) -> Result<(), StoreError> {
        let plugin = plugin.to_owned();
        self.write(move |conn| pauses::set_hold(conn, &plugin, hold.as_ref()))
            .await
    }

    async fn plugin_holds(&self) -> Result<BTreeMap<String, PluginHold>, StoreError> {
        self.read(pauses::holds).await
    }

    async fn list_kv(
        &self,
        plugin: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        head: usize,
    ) -> Result<Vec<KvEntry>, StoreError> {
        let (plugin, prefix) = (plugin.to_owned(), prefix.to_owned());
        let after = after.map(str::to_owned);
        self.read(move |conn| kv::list(conn, &plugin, &prefix, after.as_deref(), limit, head))
            .await
    }

    async fn clear_kv(&self, plugin: &str, prefix: &str, limit: usize) -> Result<u64, StoreError> {
        let (plugin, prefix) = (plugin.to_owned(), prefix.to_owned());
        self.write(move |conn| kv::clear(conn, &plugin, &prefix, limit))
            .await
    }

    async fn prune(&self, received_before_ms: u64, limit: usize) -> Result<Pruned, StoreError> {
        if limit == 0 {
            return Ok(Pruned::default());
        }
        let cursor = Arc::clone(&self.inner.retention_cursor);
        self.write(move |conn| retention::prune(conn, received_before_ms, limit, &cursor))
            .await
    }

    async fn check_writable(&self) -> Result<(), StoreError> {
        self.write(|conn| {
            // Rewriting the schema version with its own value dirties the
            // header page, so the commit appends to the WAL and fsyncs like
            // any other write, and fails like one.
            let version: i64 = conn
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .db()?;
            conn.pragma_update(None, "user_version", version).db()
        })
        .await
    }

    fn kv(&self) -> Arc<dyn KvStore> {
        Arc::new(kv::SqliteKv {
            inner: Arc::clone(&self.inner),
        })
    }
}
