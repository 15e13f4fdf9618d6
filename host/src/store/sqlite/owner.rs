//! One process per database file: an advisory lock on `<db>-lock`, taken
//! when the store opens and held until it closes.
//!
//! Two `wasmhook serve` processes on one file would both be correct as far
//! as SQLite goes, but each would run the queue with its own plugin set: an
//! old instance left running next to a new one with a renamed plugin fails
//! that plugin's deliveries for good ("plugin is no longer configured"),
//! and the two fight over the write lock. So the second one is refused at
//! start-up, naming the process that holds the file. The kernel drops the
//! lock when its holder exits, `kill -9` included, so a restart never finds
//! a stale one; a claim waits a few seconds for a holder that is still
//! exiting. The file holds the holder's process id, for the message.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::store::StoreError;

/// The held lock; dropping it releases the file.
#[derive(Debug)]
pub(super) struct Owner {
    _file: File,
}

/// The lock file of the database at `db`: next to the file itself, as
/// SQLite resolves it (symlinks followed), so that every path naming one
/// database names one lock.
pub(super) fn lock_path(db: &Path) -> PathBuf {
    super::with_suffix(&canonical(db), "-lock")
}

/// `db` with symlinks resolved; for a file not created yet, its resolved
/// directory and its name. As given when even that cannot be resolved.
pub(super) fn canonical(db: &Path) -> PathBuf {
    if let Ok(path) = db.canonicalize() {
        return path;
    }
    // A symlink to a file not created yet (the first start): follow it by
    // hand, as SQLite does when it creates the file.
    let mut path = db.to_owned();
    for _ in 0..40 {
        let Ok(target) = std::fs::read_link(&path) else {
            break;
        };
        path = path.parent().unwrap_or(Path::new("")).join(target);
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match (parent.canonicalize(), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => path,
    }
}

/// How long a claim waits for the holder to let go before it is refused.
/// A process killed with `kill -9` releases its lock only once the kernel
/// has torn down its memory (wasmtime reserves a lot of it), so a restart
/// issued without waiting for the old process to be reaped may find the
/// lock still held for a moment.
pub(super) const CLAIM_WAIT: Duration = Duration::from_secs(3);

impl Owner {
    /// Take the database at `db` for this process, waiting up to
    /// [`CLAIM_WAIT`] for another holder to let go, or say who has it.
    pub(super) fn claim(db: &Path) -> Result<Self, StoreError> {
        Self::claim_within(db, CLAIM_WAIT)
    }

    /// Like [`Owner::claim`], waiting up to `wait`.
    pub(super) fn claim_within(db: &Path, wait: Duration) -> Result<Self, StoreError> {
        let path = lock_path(db);
        let failed =
            |e: std::io::Error| StoreError::Backend(format!("cannot lock {}: {e}", path.display()));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(failed)?;
        let deadline = Instant::now() + wait;
        let locked = loop {
            match file.try_lock() {
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                other => break other,
            }
        };
        match locked {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim().parse::<u32>() {
                    Ok(pid) => format!("process {pid}"),
                    Err(_) => "another process".to_owned(),
                };
                return Err(StoreError::Backend(format!(
                    "database {} is in use by {holder} (it holds {}); \
                     stop it first, or set store.path to another file",
                    db.display(),
                    path.display()
                )));
            }
            Err(TryLockError::Error(e)) => return Err(failed(e)),
        }
        // Best effort: the pid only improves the message above.
        let _ = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()));
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let first = Owner::claim(&db).expect("free");
        let err = Owner::claim_within(&db, Duration::ZERO)
            .expect_err("taken")
            .to_string();
        let pid = std::process::id();
        assert!(
            err.contains(&format!("in use by process {pid}")) && err.contains("x.db-lock"),
            "{err}"
        );
        drop(first);
        Owner::claim(&db).expect("free again");
    }

    #[test]
    fn a_claim_waits_for_a_holder_that_is_letting_go() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let first = Owner::claim(&db).expect("free");
        let letting_go = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(first);
        });
        let started = Instant::now();
        Owner::claim_within(&db, Duration::from_secs(30)).expect("taken once let go");
        assert!(started.elapsed() >= Duration::from_millis(250));
        letting_go.join().unwrap();
    }
}
