//! Backup and restore of the database file (`wasmhook backup`,
//! `wasmhook restore`).
//!
//! A backup is taken while `serve` keeps running: `VACUUM INTO` on a
//! read-only connection copies one consistent snapshot (a WAL read
//! transaction: the writer goes on meanwhile, and committed work that is
//! still only in the WAL is included), compacted. The copy is checked
//! (`quick_check`), synced, and only then given its name, so a file with
//! that name is always a complete backup. An existing file is never
//! overwritten.
//!
//! A restore needs the database to itself, so it takes the same lock as a
//! running store (`owner.rs`) and is refused while `serve` runs. The
//! database it replaces is kept next to it under a second name (a hard
//! link), after its WAL has been folded into it (deleting a WAL loses what
//! it holds; keeping a stale one next to the restored file would corrupt
//! it); the restored copy, checked, then takes the name in one rename, so
//! there is never a moment with no database at the path. A source with a
//! WAL next to it is refused: its file alone would miss the WAL's work.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags};

use super::owner::Owner;
use super::{schema, with_suffix};
use crate::store::StoreError;

/// What a backup or restore produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// The file written.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its schema version (`PRAGMA user_version`).
    pub schema_version: i64,
    /// Events it holds.
    pub events: u64,
    /// Restore only: where the database it replaced was kept.
    pub replaced: Option<PathBuf>,
}

/// Why a backup or restore did nothing.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The file to read does not exist.
    #[error("{0} does not exist")]
    Missing(PathBuf),
    /// The file to write already exists.
    #[error("{0} already exists; a backup never overwrites a file")]
    Exists(PathBuf),
    /// The file is not a wasmhook database this version can serve.
    #[error("{path} {why}")]
    Unusable {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// SQLite or the file system failed.
    #[error("{what}: {detail}")]
    Failed {
        /// What was being done.
        what: String,
        /// The error.
        detail: String,
    },
    /// The database is open in another process (restore only).
    #[error("{0}")]
    InUse(String),
}

fn failed(what: impl Into<String>) -> impl FnOnce(String) -> BackupError {
    let what = what.into();
    move |detail| BackupError::Failed { what, detail }
}

/// Copy the database at `db` to the new file `out`, while other processes
/// may be writing it.
pub fn backup(db: &Path, out: &Path) -> Result<BackupReport, BackupError> {
    if !db.is_file() {
        return Err(BackupError::Missing(db.to_owned()));
    }
    if out.symlink_metadata().is_ok() {
        return Err(BackupError::Exists(out.to_owned()));
    }
    let source = open_read_only(db)?;
    check_usable(&source, db)?;
    let partial = partial_path(out);
    let result = (|| {
        // Private from the start: a backup holds events, deliveries and
        // kv data. `VACUUM INTO` fills an empty file it finds.
        private_file(&partial)
            .map_err(|e| e.to_string())
            .map_err(failed(format!("creating {}", partial.display())))?;
        source
            .execute("VACUUM INTO ?1", [path_text(&partial)?])
            .map_err(|e| e.to_string())
            .map_err(failed(format!("copying {}", db.display())))?;
        drop(source);
        let report = inspect(&partial)?;
        sync(&partial)?;
        // A hard link fails if `out` appeared meanwhile: never overwrite.
        std::fs::hard_link(&partial, out).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => BackupError::Exists(out.to_owned()),
            _ => BackupError::Failed {
                what: format!("naming {}", out.display()),
                detail: e.to_string(),
            },
        })?;
        sync_dir(out)?;
        Ok(BackupReport {
            path: out.to_owned(),
            ..report
        })
    })();
    let _ = std::fs::remove_file(&partial);
    result
}

/// Put the backup `from` in place of the database at `db`, which no
/// process may have open. The database replaced, if any, is kept as
/// `<db>.replaced-<unix ms>`.
pub fn restore(from: &Path, db: &Path) -> Result<BackupReport, BackupError> {
    // The file a symlinked `store.path` names, which is what a server
    // opens and locks: the link is left in place.
    let db = &super::owner::canonical(db);
    if !from.is_file() {
        return Err(BackupError::Missing(from.to_owned()));
    }
    let same = |a: &Path, b: &Path| matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b);
    if same(from, db) {
        return Err(BackupError::Unusable {
            path: from.to_owned(),
            why: "is the database itself; restore a copy".to_owned(),
        });
    }
    let _owner = Owner::claim(db).map_err(|e| {
        BackupError::InUse(match e {
            StoreError::Backend(message) => message,
            other => other.to_string(),
        })
    })?;
    // A backup is one file. Committed work in a WAL next to it would be
    // read by the check below but not copied: a live or crashed database,
    // not a backup.
    if std::fs::metadata(with_suffix(from, "-wal")).is_ok_and(|m| m.len() > 0) {
        return Err(BackupError::Unusable {
            path: from.to_owned(),
            why: "has a write-ahead log next to it (a database in use, or one that \
                  crashed), whose work a copy of the file would miss; make a backup \
                  of it with `wasmhook backup`"
                .to_owned(),
        });
    }
    // Refused before anything is touched if it is no wasmhook database.
    inspect(from)?;
    // The copy is complete and synced before the database is touched.
    let partial = partial_path(db);
    // The restored file gets the mode of the one it replaces (private
    // when there is none), not the backup's.
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(db).map_or(0o600, |m| m.permissions().mode() & 0o777)
    };
    let copied = std::fs::copy(from, &partial)
        .map_err(|e| e.to_string())
        .and_then(|_| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(mode))
                .map_err(|e| e.to_string())
        })
        .map_err(failed(format!("copying {}", from.display())))
        .and_then(|()| sync(&partial));
    // What is restored is the copy: check it, and report it.
    let replace = || {
        if db.exists() {
            return set_aside(db).map(Some);
        }
        // A WAL without its database belongs to nothing; next to the
        // restored file it would be replayed into it.
        for companion in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(with_suffix(db, companion));
        }
        Ok(None)
    };
    let (checked, replaced) = match copied
        .and_then(|()| inspect(&partial))
        .and_then(|checked| Ok((checked, replace()?)))
    {
        Ok(both) => both,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    if let Err(e) = std::fs::rename(&partial, db) {
        let _ = std::fs::remove_file(&partial);
        // The database kept its name: drop the second one.
        if let Some(aside) = &replaced {
            let _ = std::fs::remove_file(aside);
        }
        return Err(BackupError::Failed {
            what: format!("naming {}", db.display()),
            detail: e.to_string(),
        });
    }
    sync_dir(db)?;
    Ok(BackupReport {
        path: db.to_owned(),
        replaced,
        ..checked
    })
}

/// Fold `db`'s WAL into it, remove the WAL and shared-memory files, and
/// give it a second name aside; where. It keeps its own name until the
/// restored file replaces it in one rename: at no moment is there no
/// database at `db` (a `serve` started then would create an empty one).
fn set_aside(db: &Path) -> Result<PathBuf, BackupError> {
    let conn = Connection::open(db)
        .map_err(|e| e.to_string())
        .map_err(failed(format!("opening {}", db.display())))?;
    let busy: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
        .map_err(|e| e.to_string())
        .map_err(failed(format!("checkpointing {}", db.display())))?;
    if busy != 0 {
        return Err(BackupError::InUse(format!(
            "{} is being read by another process; stop it first",
            db.display()
        )));
    }
    // Closing the last connection removes the WAL and shared memory.
    conn.close()
        .map_err(|(_, e)| e.to_string())
        .map_err(failed(format!("closing {}", db.display())))?;
    for companion in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(with_suffix(db, companion));
    }
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let aside = with_suffix(db, &format!(".replaced-{ms}"));
    std::fs::hard_link(db, &aside)
        .map_err(|e| e.to_string())
        .map_err(failed(format!("keeping {} aside", db.display())))?;
    Ok(aside)
}

fn open_read_only(db: &Path) -> Result<Connection, BackupError> {
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| e.to_string())
    .map_err(failed(format!("opening {}", db.display())))?;
    conn.busy_timeout(schema::BUSY_TIMEOUT)
        .map_err(|e| e.to_string())
        .map_err(failed(format!("opening {}", db.display())))?;
    Ok(conn)
}

/// A wasmhook database whose schema this version knows.
fn check_usable(conn: &Connection, path: &Path) -> Result<i64, BackupError> {
    let unusable = |why: String| BackupError::Unusable {
        path: path.to_owned(),
        why,
    };
    let read = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0));
    let version = read("PRAGMA user_version")
        .map_err(|e| unusable(format!("is not a readable SQLite database ({e})")))?;
    let has_events =
        read("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'events'")
            .map_err(|e| unusable(format!("is not a readable SQLite database ({e})")))?;
    if version == 0 || has_events == 0 {
        return Err(unusable("is not a wasmhook database".to_owned()));
    }
    let known = schema::version();
    if version > known {
        return Err(unusable(format!(
            "has schema version {version}, newer than this wasmhook understands ({known}); \
             use a newer wasmhook"
        )));
    }
    Ok(version)
}

/// Check a copy end to end and describe it.
fn inspect(path: &Path) -> Result<BackupReport, BackupError> {
    let conn = open_read_only(path)?;
    let schema_version = check_usable(&conn, path)?;
    let unusable = |why: String| BackupError::Unusable {
        path: path.to_owned(),
        why,
    };
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| unusable(format!("fails its integrity check ({e})")))?;
    if check != "ok" {
        return Err(unusable(format!("fails its integrity check: {check}")));
    }
    let events: i64 = conn
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .map_err(|e| unusable(format!("cannot be read ({e})")))?;
    let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    Ok(BackupReport {
        path: path.to_owned(),
        bytes,
        schema_version,
        events: u64::try_from(events).unwrap_or(0),
        replaced: None,
    })
}

/// `<dir>/.<name>.partial-<pid>`: next to `target`, on the same file
/// system, hidden, never taken for a finished file.
/// Create `path` empty, readable and writable by its owner only.
fn private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

fn partial_path(target: &Path) -> PathBuf {
    let name = target.file_name().map_or_else(
        || "wasmhook.db".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    target.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

fn path_text(path: &Path) -> Result<&str, BackupError> {
    path.to_str().ok_or_else(|| BackupError::Unusable {
        path: path.to_owned(),
        why: "is not a UTF-8 path".to_owned(),
    })
}

fn sync(path: &Path) -> Result<(), BackupError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| e.to_string())
        .map_err(failed(format!("syncing {}", path.display())))
}

/// Sync the directory holding `path`, so its new name survives a crash.
fn sync_dir(path: &Path) -> Result<(), BackupError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    sync(dir)
}
