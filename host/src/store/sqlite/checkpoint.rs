//! WAL checkpoints, kept out of the writer's commits.
//!
//! By default SQLite checkpoints inside the commit that pushes the WAL past
//! 1000 pages: that commit copies the WAL into the database file and fsyncs
//! it, and with one writer thread every write queued behind it waits (tens
//! of milliseconds under load, which shows as latency spikes on ingest).
//! Here the writer's automatic checkpoints are off, and:
//!
//! - a thread of its own runs `PASSIVE` checkpoints on its own connection:
//!   they copy WAL frames into the database without blocking the writer or
//!   readers, and record how long the WAL is ([`WalLength`]);
//! - under a steady stream of commits a passive checkpoint never reaches the
//!   end of the WAL, so the WAL would never start over and would grow
//!   without bound. So once it is longer than [`Tuning::truncate_frames`],
//!   the writer itself, between two groups (no transaction open, nobody
//!   appending), runs a `TRUNCATE` checkpoint: it copies only the few frames
//!   the passive ones left, waits briefly for readers, and empties the file.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::{DbResult, schema};
use crate::store::StoreError;

/// Size the WAL file is truncated to after it was reset, so one burst does
/// not leave a huge file behind.
pub(super) const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// How long the writer waits for readers to leave the WAL before it gives
/// up a truncation (and tries again later): writes wait meanwhile.
const TRUNCATE_BUSY_TIMEOUT: Duration = Duration::from_millis(100);

/// When and how hard to checkpoint.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tuning {
    /// Time between passive checkpoints.
    pub interval: Duration,
    /// WAL length (in frames, one page each) past which the writer empties
    /// the WAL with a `TRUNCATE` checkpoint.
    pub truncate_frames: i64,
    /// Least time between two truncations by the writer.
    pub truncate_every: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            interval: Duration::from_millis(200),
            // 16 Ki frames of 4 KiB pages: 64 MiB.
            truncate_frames: 16 * 1024,
            truncate_every: Duration::from_secs(1),
        }
    }
}

/// The WAL's length in frames as last seen by a checkpoint, shared by the
/// checkpoint thread and the writer.
#[derive(Debug, Default)]
pub(super) struct WalLength(AtomicI64);

/// The writer's side: empties a long WAL between groups.
pub(super) struct Truncator {
    wal: Arc<WalLength>,
    tuning: Tuning,
    last: Option<Instant>,
}

impl Truncator {
    pub(super) fn new(wal: Arc<WalLength>, tuning: Tuning) -> Self {
        Self {
            wal,
            tuning,
            last: None,
        }
    }

    /// Call between groups, with no transaction open on `conn`.
    pub(super) fn after_group(&mut self, conn: &Connection) {
        let frames = self.wal.0.load(Ordering::Relaxed);
        if frames <= self.tuning.truncate_frames
            || self
                .last
                .is_some_and(|t| t.elapsed() < self.tuning.truncate_every)
        {
            return;
        }
        self.last = Some(Instant::now());
        let truncated = conn
            .busy_timeout(TRUNCATE_BUSY_TIMEOUT)
            .db()
            .and_then(|()| checkpoint(conn, "TRUNCATE"));
        let _ = conn.busy_timeout(schema::BUSY_TIMEOUT);
        match truncated {
            // Readers still in the WAL: the frames stay, try again later.
            Ok((true, _)) => {}
            Ok((false, _)) => self.wal.0.store(0, Ordering::Relaxed),
            Err(e) => tracing::warn!(error = %e, "truncating the WAL failed; retrying later"),
        }
    }
}

/// The checkpoint thread; dropping it stops the thread.
pub(super) struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Start checkpointing the database at `path` (already in WAL mode),
    /// recording the WAL's length in `wal`.
    pub(super) fn spawn(
        path: &Path,
        tuning: Tuning,
        wal: Arc<WalLength>,
    ) -> Result<Self, StoreError> {
        let conn = Connection::open(path).db()?;
        schema::configure_checkpointer(&conn)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("wasmhook-checkpoint".into())
            .spawn(move || run(&conn, &stopped, tuning, &wal))
            .map_err(|e| StoreError::Backend(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(conn: &Connection, stopped: &mpsc::Receiver<()>, tuning: Tuning, wal: &WalLength) {
    let mut failing = false;
    loop {
        match stopped.recv_timeout(tuning.interval) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        match checkpoint(conn, "PASSIVE") {
            Ok((_, frames)) => {
                failing = false;
                wal.0.store(frames, Ordering::Relaxed);
            }
            // A full disk or a read-only file: the writer reports it to its
            // callers; say it once here and keep trying.
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
            }
            Err(_) => {}
        }
    }
}

/// One checkpoint in `mode`: whether it was blocked (busy), and the WAL's
/// length in frames (-1 when the database is not in WAL mode).
fn checkpoint(conn: &Connection, mode: &str) -> Result<(bool, i64), StoreError> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        Ok((row.get::<_, i64>(0)? != 0, row.get::<_, i64>(1)?))
    })
    .db()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_thread_checkpoints_while_the_writer_never_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let writer = Connection::open(&path).unwrap();
        schema::configure_writer(&writer).unwrap();
        // Truncate the WAL file whenever it is rewound, so the test can see
        // a checkpoint happen without running one itself.
        writer.pragma_update(None, "journal_size_limit", 0).unwrap();
        writer.execute_batch("CREATE TABLE t (x BLOB)").unwrap();
        for _ in 0..1500 {
            // Each commit appends at least one 4 KiB page to the WAL.
            writer
                .execute("INSERT INTO t VALUES (zeroblob(3000))", [])
                .unwrap();
        }
        let wal = dir.path().join("c.db-wal");
        let grown = std::fs::metadata(&wal).unwrap().len();
        assert!(grown > 1000 * 4096, "no automatic checkpoint reset the WAL");

        let wal_length = Arc::new(WalLength::default());
        let checkpointer = Checkpointer::spawn(&path, Tuning::default(), wal_length).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        // After a complete checkpoint the next commit rewinds the WAL.
        loop {
            writer.execute("INSERT INTO t VALUES (1)", []).unwrap();
            if std::fs::metadata(&wal).unwrap().len() < 64 * 1024 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "never checkpointed");
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(checkpointer);
        let rows: i64 = writer
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert!(rows >= 1501, "nothing was lost: {rows}");
    }

    #[test]
    fn the_wal_stays_bounded_under_a_steady_stream_of_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let writer = Connection::open(&path).unwrap();
        schema::configure_writer(&writer).unwrap();
        writer.execute_batch("CREATE TABLE t (x BLOB)").unwrap();
        let tuning = Tuning {
            interval: Duration::from_millis(5),
            truncate_frames: 200,
            truncate_every: Duration::from_millis(10),
        };
        let wal_length = Arc::new(WalLength::default());
        let checkpointer = Checkpointer::spawn(&path, tuning, wal_length.clone()).unwrap();
        let mut truncator = Truncator::new(wal_length, tuning);
        // A reader that keeps reading, as the management API does.
        let reader = Connection::open(&path).unwrap();
        let wal = dir.path().join("s.db-wal");
        let mut largest = 0;
        for i in 0..4000 {
            writer
                .execute("INSERT INTO t VALUES (zeroblob(3000))", [])
                .unwrap();
            // What the writer thread does between groups.
            truncator.after_group(&writer);
            if i % 50 == 0 {
                let _: i64 = reader
                    .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                    .unwrap();
            }
            largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        }
        drop(checkpointer);
        // 4000 commits of a page or more each would make a WAL of 16 MB
        // or more; the truncating checkpoints keep it near 200 frames.
        assert!(largest < 8 * 1024 * 1024, "the WAL reached {largest} bytes");
        let rows: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 4000);
    }
}
