//! The SQLite schema, its migrations (tracked in `PRAGMA user_version`),
//! and the connection settings.
//!
//! Durability choice: WAL with `synchronous = FULL`, so every commit is
//! fsync'd before the writer answers. `NORMAL` would be safe against a
//! process crash but could lose the last commits on power loss, and an
//! acknowledged event must survive both; group commit keeps the fsync cost
//! per event small.

use std::time::Duration;

use rusqlite::Connection;

use super::{DbResult, checkpoint};
use crate::store::StoreError;

/// How long a connection waits for a lock held by another connection
/// (another process on the same file, a checkpoint) before failing.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Migration `i` brings the schema from version `i` to `i + 1`.
pub(super) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8];

const V1: &str = r#"
CREATE TABLE events (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT    NOT NULL UNIQUE,
    name         TEXT    NOT NULL,
    user_id      TEXT,
    timestamp_ms INTEGER NOT NULL,
    properties   TEXT    NOT NULL,          -- JSON object
    received_ms  INTEGER NOT NULL
);

-- One job per (event, plugin). `visible_ms` is when a lease call may hand it
-- out: its due time, or while leased, the lease's expiry.
CREATE TABLE invocations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    event_seq     INTEGER NOT NULL REFERENCES events (seq),
    plugin        TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('pending', 'done')),
    visible_ms    INTEGER NOT NULL,
    lease_token   INTEGER NOT NULL DEFAULT 0,
    leased_until  INTEGER,
    attempts      INTEGER NOT NULL DEFAULT 0,
    verdict       TEXT CHECK (verdict IN ('fire', 'skip', 'error')),
    reason        TEXT,
    error_kind    TEXT,
    error_message TEXT,
    duration_us   INTEGER,
    fuel          INTEGER,
    created_ms    INTEGER NOT NULL,
    completed_ms  INTEGER,
    UNIQUE (event_seq, plugin)
);
CREATE INDEX invocations_queue ON invocations (visible_ms) WHERE status = 'pending';
CREATE INDEX invocations_stats ON invocations (plugin, status, verdict);

-- `visible_ms` as above; NULL once succeeded or failed.
CREATE TABLE deliveries (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    invocation_id   INTEGER NOT NULL REFERENCES invocations (id),
    event_seq       INTEGER NOT NULL REFERENCES events (seq),
    plugin          TEXT    NOT NULL,
    method          TEXT    NOT NULL,
    url             TEXT    NOT NULL,
    headers         TEXT    NOT NULL,       -- JSON [[name, value], ...]
    body            BLOB    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    visible_ms      INTEGER,
    next_attempt_ms INTEGER,
    lease_token     INTEGER NOT NULL DEFAULT 0,
    leased_until    INTEGER,
    round_attempts  INTEGER NOT NULL DEFAULT 0,   -- attempts since last (re)queue
    failure         TEXT,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL
);
CREATE INDEX deliveries_queue ON deliveries (status, visible_ms);
CREATE INDEX deliveries_by_status ON deliveries (status, seq);
CREATE INDEX deliveries_by_plugin ON deliveries (plugin, status, seq);
CREATE INDEX deliveries_by_event ON deliveries (event_seq);
CREATE INDEX deliveries_by_invocation ON deliveries (invocation_id);

CREATE TABLE attempts (
    id           INTEGER PRIMARY KEY,
    delivery_seq INTEGER NOT NULL REFERENCES deliveries (seq),
    started_ms   INTEGER NOT NULL,
    duration_ms  INTEGER NOT NULL,
    status_code  INTEGER,
    error        TEXT,
    outcome      TEXT    NOT NULL
);
CREATE INDEX attempts_by_delivery ON attempts (delivery_seq);

CREATE TABLE kv (
    namespace TEXT NOT NULL,
    key       TEXT NOT NULL,
    value     BLOB NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
"#;

/// Fewer index updates per delivery (each is a page the commit writes):
/// the due-queue index holds pending deliveries only (a settled delivery
/// leaves it instead of moving to a `(succeeded, NULL)` range nothing
/// reads). Queue queries name their index (`INDEXED BY`): without
/// statistics the planner prefers the status index and would sort every
/// pending delivery on each lease call. (`deliveries_by_invocation` stays:
/// no query reads it, but deleting an invocation (retention) has SQLite
/// look for its deliveries by that key, a full scan without it.)
const V2: &str = r#"
DROP INDEX deliveries_queue;
CREATE INDEX deliveries_queue ON deliveries (visible_ms) WHERE status = 'pending';
"#;

/// Counts per plugin and outcome kept as rows change, so `GET /v1/plugins`
/// reads a few rows instead of scanning every invocation and delivery
/// kept (seconds at tens of millions). Triggers keep them: they run inside
/// the statement that changes a row, so a write rolled back to its
/// savepoint takes its count changes with it, and no code path (retry,
/// retention, a migration) can forget one. What a row counts as is a
/// virtual column (no storage): `invocation.pending`,
/// `invocation.fire|skip|error` (a finished one without a verdict, which no
/// version writes, counts as an error), `invocation.expired` (an error of
/// kind `expired`: not run, its event was too old),
/// `delivery.pending|succeeded|failed`. The `invocations_stats` index,
/// whose only reader was the old scan, goes: the triggers cost about what
/// its upkeep did.
const V3: &str = r#"
ALTER TABLE invocations ADD COLUMN counted_as TEXT GENERATED ALWAYS AS (
    'invocation.' || CASE WHEN status = 'pending' THEN 'pending'
                          WHEN error_kind = 'expired' THEN 'expired'
                          ELSE COALESCE(verdict, 'error') END) VIRTUAL;
ALTER TABLE deliveries ADD COLUMN counted_as TEXT GENERATED ALWAYS AS (
    'delivery.' || status) VIRTUAL;

CREATE TABLE plugin_counts (
    plugin TEXT    NOT NULL,
    kind   TEXT    NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (plugin, kind)
) WITHOUT ROWID;
INSERT INTO plugin_counts (plugin, kind, n)
    SELECT plugin, counted_as, COUNT(*) FROM invocations GROUP BY 1, 2;
INSERT INTO plugin_counts (plugin, kind, n)
    SELECT plugin, counted_as, COUNT(*) FROM deliveries GROUP BY 1, 2;

CREATE TRIGGER count_invocation_insert AFTER INSERT ON invocations BEGIN
    INSERT INTO plugin_counts (plugin, kind, n) VALUES (NEW.plugin, NEW.counted_as, 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER count_invocation_update AFTER UPDATE OF status, verdict, error_kind ON invocations
    WHEN OLD.counted_as IS NOT NEW.counted_as
BEGIN
    UPDATE plugin_counts SET n = n - 1 WHERE plugin = OLD.plugin AND kind = OLD.counted_as;
    INSERT INTO plugin_counts (plugin, kind, n) VALUES (NEW.plugin, NEW.counted_as, 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER count_invocation_delete AFTER DELETE ON invocations BEGIN
    UPDATE plugin_counts SET n = n - 1 WHERE plugin = OLD.plugin AND kind = OLD.counted_as;
END;

CREATE TRIGGER count_delivery_insert AFTER INSERT ON deliveries BEGIN
    INSERT INTO plugin_counts (plugin, kind, n) VALUES (NEW.plugin, NEW.counted_as, 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER count_delivery_update AFTER UPDATE OF status ON deliveries
    WHEN OLD.counted_as IS NOT NEW.counted_as
BEGIN
    UPDATE plugin_counts SET n = n - 1 WHERE plugin = OLD.plugin AND kind = OLD.counted_as;
    INSERT INTO plugin_counts (plugin, kind, n) VALUES (NEW.plugin, NEW.counted_as, 1)
        ON CONFLICT DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER count_delivery_delete AFTER DELETE ON deliveries BEGIN
    UPDATE plugin_counts SET n = n - 1 WHERE plugin = OLD.plugin AND kind = OLD.counted_as;
END;

DROP INDEX invocations_stats;
"#;

/// Version 4: the pause of each plugin its breaker paused, and the
/// plugins an operator paused, so that a restart resumes both (see
/// `pauses.rs`).
const V4: &str = r#"
CREATE TABLE plugin_pauses (
    plugin   TEXT    PRIMARY KEY,
    identity TEXT    NOT NULL,
    until_ms INTEGER NOT NULL,
    pause_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE plugin_holds (
    plugin   TEXT    PRIMARY KEY,
    since_ms INTEGER NOT NULL,
    reason   TEXT
) WITHOUT ROWID;
"#;

/// Version 5: how much each plugin's `kv` namespace holds (entries, and
/// their keys' and values' bytes), kept by triggers like `plugin_counts`,
/// so that a write can check the plugin's quota (`kv_max_mb`) without a
/// scan and `GET /v1/plugins` can show it. An upsert's `DO UPDATE` fires
/// the update trigger.
const V5: &str = r#"
CREATE TABLE kv_usage (
    namespace TEXT    PRIMARY KEY,
    keys      INTEGER NOT NULL,
    bytes     INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO kv_usage (namespace, keys, bytes)
    SELECT namespace, COUNT(*), SUM(octet_length(key) + length(value)) FROM kv GROUP BY 1;

CREATE TRIGGER kv_usage_insert AFTER INSERT ON kv BEGIN
    INSERT INTO kv_usage (namespace, keys, bytes)
        VALUES (NEW.namespace, 1, octet_length(NEW.key) + length(NEW.value))
        ON CONFLICT DO UPDATE SET keys = keys + 1, bytes = bytes + excluded.bytes;
END;
CREATE TRIGGER kv_usage_update AFTER UPDATE OF value ON kv BEGIN
    UPDATE kv_usage SET bytes = bytes - length(OLD.value) + length(NEW.value)
        WHERE namespace = NEW.namespace;
END;
CREATE TRIGGER kv_usage_delete AFTER DELETE ON kv BEGIN
    UPDATE kv_usage SET keys = keys - 1, bytes = bytes - octet_length(OLD.key) - length(OLD.value)
        WHERE namespace = OLD.namespace;
END;
"#;

/// Version 6: the start of a receiver's answer to a failed attempt (its
/// secrets redacted), so the delivery log says why a request was refused.
const V6: &str = r#"
ALTER TABLE attempts ADD COLUMN response TEXT;
"#;

/// Version 7: a CloudEvent's `source` ('' for a native event), so that an
/// `id` reused by another source is refused instead of dropped as a
/// duplicate. Rows from before have NULL: source unknown, a duplicate of
/// whatever comes again with their id.
const V7: &str = r#"
ALTER TABLE events ADD COLUMN source TEXT;
"#;

/// Version 8: the lease token a delivery's current round began after
/// (set by an operator's retry), so that a stale attempt counts in the
/// round it was sent in and in no later one. Rows from before have 0:
/// every lease of theirs counts, as before.
const V8: &str = r#"
ALTER TABLE deliveries ADD COLUMN round_token INTEGER NOT NULL DEFAULT 0;
"#;

/// Settings of the writer connection; run before [`migrate`].
pub(super) fn configure_writer(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT).db()?;
    // Lets retention give freed pages back to the file system
    // (`retention.rs`). It takes effect only on a database without tables
    // yet, i.e. one this version creates; an older file keeps its mode
    // until converted with `PRAGMA auto_vacuum = INCREMENTAL; VACUUM;`.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
        .db()?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .db()?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "cannot switch the database to WAL mode (got `{mode}`)"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL").db()?;
    conn.pragma_update(None, "foreign_keys", true).db()?;
    conn.pragma_update(None, "temp_store", "MEMORY").db()?;
    // Checkpoints run on their own thread (see `checkpoint.rs`), never
    // inside one of the writer's commits.
    conn.pragma_update(None, "wal_autocheckpoint", 0).db()?;
    conn.pragma_update(None, "journal_size_limit", checkpoint::JOURNAL_SIZE_LIMIT)
        .db()?;
    Ok(())
}

/// Settings of the checkpoint thread's connection.
pub(super) fn configure_checkpointer(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT).db()?;
    // Sync the database file after copying the WAL into it.
    conn.pragma_update(None, "synchronous", "FULL").db()?;
    conn.pragma_update(None, "wal_autocheckpoint", 0).db()?;
    Ok(())
}

/// Settings of a read-only connection.
pub(super) fn configure_reader(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT).db()?;
    conn.pragma_update(None, "query_only", true).db()?;
    Ok(())
}

/// The schema version this build creates and serves.
pub(super) fn version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Bring the schema up to date, in one transaction.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .db()?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .db()?;
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    if version > MIGRATIONS.len() {
        return Err(StoreError::Backend(format!(
            "the database has schema version {version}, newer than this wasmhook \
             understands ({}); upgrade wasmhook",
            MIGRATIONS.len()
        )));
    }
    for sql in &MIGRATIONS[version..] {
        tx.execute_batch(sql).db()?;
    }
    tx.pragma_update(None, "user_version", MIGRATIONS.len() as i64)
        .db()?;
    tx.commit().db()
}
