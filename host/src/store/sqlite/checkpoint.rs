//! WAL checkpoints on their own thread.
//!
//! By default SQLite checkpoints inside the commit that pushes the WAL past
//! 1000 pages: that commit copies the WAL into the database file and fsyncs
//! it, and with one writer thread every write queued behind it waits (tens
//! of milliseconds under load, which shows as latency spikes on ingest).
//! Here the writer's automatic checkpoints are off and this thread runs
//! `PASSIVE` checkpoints on its own connection instead: they never block
//! the writer or readers, and once a checkpoint has copied every frame the
//! writer's next commit starts the WAL from the beginning again, so the
//! file stays bounded.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::{DbResult, schema};
use crate::store::StoreError;

/// How often the thread checkpoints.
const INTERVAL: Duration = Duration::from_millis(200);

/// Size the WAL file is truncated to after it was reset, so one burst does
/// not leave a huge file behind.
pub(super) const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// The checkpoint thread; dropping it stops the thread.
pub(super) struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Start checkpointing the database at `path` (already in WAL mode).
    pub(super) fn spawn(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).db()?;
        schema::configure_checkpointer(&conn)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("wasmhook-checkpoint".into())
            .spawn(move || run(&conn, &stopped))
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

fn run(conn: &Connection, stopped: &mpsc::Receiver<()>) {
    let mut failing = false;
    loop {
        match stopped.recv_timeout(INTERVAL) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
        match passive(conn) {
            Ok(()) => failing = false,
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

/// One `PASSIVE` checkpoint: copies what it can without waiting for anyone.
fn passive(conn: &Connection) -> Result<(), StoreError> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
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

        let checkpointer = Checkpointer::spawn(&path).unwrap();
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
}
