//! Group commit: the one thread that writes to the database.
//!
//! Every write is a closure sent over a channel. The writer thread takes
//! the first closure, then every other one already queued, runs them all in
//! one transaction (each inside its own savepoint, so a failing closure
//! rolls back alone), commits once (one fsync), and only then answers each
//! caller. N concurrent writers cost one fsync, not N.
//!
//! A failed commit (disk full, read-only file) fails only the callers of
//! that group; the thread lives on and the next group tries again, so
//! writes succeed again as soon as the condition goes away. If SQLite
//! rolls the whole transaction back by itself (it does on I/O errors), the
//! rest of the group is not run: outside the transaction each write would
//! commit alone while its caller is told it failed.
//!
//! This file knows nothing about the schema.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::DbResult;
use super::checkpoint::Truncator;
use crate::store::StoreError;

/// Most closures applied in one transaction, so one huge burst cannot keep
/// every caller waiting for a single giant commit.
const MAX_BATCH: usize = 1024;

/// One queued write: runs against the transaction, then is told whether
/// the transaction committed.
trait Op: Send {
    /// Run the write; `false` if it failed (its savepoint is rolled back).
    fn apply(&mut self, conn: &Connection) -> bool;
    /// The error of a write that failed.
    fn error(&self) -> Option<StoreError>;
    /// Deliver the result, or the commit's failure.
    fn finish(self: Box<Self>, commit: Result<(), &StoreError>);
}

/// Where a result goes: an async caller or a blocking one.
enum Reply<T> {
    Async(oneshot::Sender<Result<T, StoreError>>),
    Blocking(mpsc::SyncSender<Result<T, StoreError>>),
}

struct Queued<T, F> {
    work: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: Reply<T>,
}

impl<T, F> Op for Queued<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
{
    fn apply(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        // A panicking write must not take the writer thread (and with it
        // every later write) down; it fails alone.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(conn)))
            .unwrap_or_else(|_| Err(StoreError::Backend("a store write panicked".into())));
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn error(&self) -> Option<StoreError> {
        self.result.as_ref()?.as_ref().err().cloned()
    }

    fn finish(self: Box<Self>, commit: Result<(), &StoreError>) {
        let result = match (commit, self.result) {
            (Err(why), _) => Err(why.clone()),
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(StoreError::Backend("write was not applied".into())),
        };
        // The caller may have given up waiting (e.g. a cancelled request);
        // the write is committed either way.
        match self.reply {
            Reply::Async(tx) => drop(tx.send(result)),
            Reply::Blocking(tx) => drop(tx.send(result)),
        }
    }
}

/// Handle to the writer thread. Dropping it lets the thread finish what is
/// queued and waits for it.
pub(super) struct Writer {
    tx: Option<mpsc::Sender<Box<dyn Op>>>,
    thread: Option<JoinHandle<()>>,
    /// Transactions committed so far (one per group).
    commits: Arc<AtomicU64>,
}

impl Writer {
    /// Start the writer thread on `conn` (already configured and migrated).
    pub(super) fn spawn(conn: Connection, truncator: Truncator) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel::<Box<dyn Op>>();
        let commits = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&commits);
        let thread = std::thread::Builder::new()
            .name("wasmhook-store-writer".into())
            .spawn(move || run(conn, rx, &counter, truncator))
            .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            commits,
        })
    }

    /// Transactions committed so far.
    pub(super) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    fn send(&self, op: Box<dyn Op>) -> Result<(), StoreError> {
        self.tx
            .as_ref()
            .ok_or(StoreError::Closed)?
            .send(op)
            .map_err(|_| StoreError::Closed)
    }

    /// Queue `work` for the next group commit; the receiver resolves once
    /// it is durable.
    pub(super) fn submit<T, F>(&self, work: F) -> Result<Receipt<T>, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.send(Box::new(Queued {
            work: Some(work),
            result: None,
            reply: Reply::Async(tx),
        }))?;
        Ok(Receipt(rx))
    }

    /// Run `work` in the next group commit; resolves once it is durable.
    pub(super) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(work)?.wait().await
    }

    /// Like [`Writer::write`], blocking the calling thread (for the
    /// synchronous kv interface). Never call from an async task.
    pub(super) fn write_blocking<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Box::new(Queued {
            work: Some(work),
            result: None,
            reply: Reply::Blocking(tx),
        }))?;
        rx.recv().map_err(|_| StoreError::Closed)?
    }
}

/// The pending answer to a submitted write.
pub(super) struct Receipt<T>(oneshot::Receiver<Result<T, StoreError>>);

impl<T> Receipt<T> {
    /// Wait until the write is durable (or failed).
    pub(super) async fn wait(self) -> Result<T, StoreError> {
        self.0.await.map_err(|_| StoreError::Closed)?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop once the queue is empty.
        self.tx = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    mut conn: Connection,
    rx: mpsc::Receiver<Box<dyn Op>>,
    commits: &AtomicU64,
    mut truncator: Truncator,
) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let committed = apply_batch(&mut conn, &mut batch);
        match &committed {
            Ok(()) => {
                commits.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::error!(error = %e, ops = batch.len(), "store: group commit failed"),
        }
        for op in batch {
            op.finish(committed.as_ref().map(|_| ()));
        }
        // Between groups, after the callers have their answers.
        truncator.after_group(&conn);
    }
}

fn apply_batch(conn: &mut Connection, batch: &mut [Box<dyn Op>]) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .db()?;
    for op in batch.iter_mut() {
        // Prepared once and cached: `Connection::savepoint` would parse
        // these statements again for every write of every group.
        tx.prepare_cached("SAVEPOINT op").db()?.execute([]).db()?;
        if op.apply(&tx) {
            tx.prepare_cached("RELEASE op").db()?.execute([]).db()?;
        } else if !tx.is_autocommit() {
            // Roll the failed op back alone.
            tx.prepare_cached("ROLLBACK TO op").db()?.execute([]).db()?;
            tx.prepare_cached("RELEASE op").db()?.execute([]).db()?;
        }
        if tx.is_autocommit() {
            // SQLite rolled back the whole transaction (an I/O error, a
            // full disk while spilling the cache): every write of the group
            // is gone, and the next savepoint would start a transaction of
            // its own. Fail the group with the cause.
            return Err(op.error().unwrap_or_else(|| {
                StoreError::Backend("the transaction was rolled back by the database".into())
            }));
        }
    }
    tx.commit().db()
}
