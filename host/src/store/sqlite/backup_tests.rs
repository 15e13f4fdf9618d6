//! Backup and restore against real files: a backup taken while writes go
//! on is one consistent, complete snapshot; nothing is ever overwritten;
//! a restore is refused while a store has the file, and keeps the database
//! it replaces.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::tests::{assert_counts_match_rows, new_event};
use super::{BackupError, SqliteStore};
use crate::store::Store;

async fn insert(store: &SqliteStore, ids: impl IntoIterator<Item = String>) {
    let batch = ids.into_iter().map(|id| new_event(&id, &["p"])).collect();
    store.insert_events(batch, None).await.expect("insert");
}

fn count(db: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_taken_while_writing_is_a_consistent_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    let out = dir.path().join("copy.db");
    let store = SqliteStore::open(&db).unwrap();
    insert(&store, (0..500).map(|i| format!("before-{i}"))).await;

    // Writes keep coming while the copy is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                insert(&store, (0..20).map(|i| format!("during-{n}-{i}"))).await;
                n += 1;
            }
            n * 20
        })
    };
    let (db2, out2) = (db.clone(), out.clone());
    let report = tokio::task::spawn_blocking(move || SqliteStore::backup(&db2, &out2))
        .await
        .unwrap()
        .expect("backup");
    stop.store(true, Ordering::Relaxed);
    let during = writer.await.unwrap();
    assert!(during > 0, "writes ran next to the backup");

    assert_eq!(report.path, out);
    assert_eq!(report.schema_version, super::schema::version());
    assert_eq!(report.bytes, std::fs::metadata(&out).unwrap().len());
    let copied = count(&out, "SELECT count(*) FROM events");
    assert_eq!(report.events, copied as u64);
    assert!(copied >= 500, "everything committed before is in: {copied}");
    // Whole batches only: each insert is one transaction.
    assert_eq!((copied - 500) % 20, 0, "{copied}");
    assert_eq!(
        count(&out, "SELECT count(*) FROM invocations"),
        copied,
        "each event's job came with it"
    );
    let hidden: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".partial-"))
        .collect();
    assert!(hidden.is_empty(), "no partial file left: {hidden:?}");
    drop(store);
    // The copy opens as a store, and its kept counts match its rows.
    let reopened = SqliteStore::open(&out).unwrap();
    drop(reopened);
    assert_counts_match_rows(dir.path());
}

#[tokio::test]
async fn a_backup_never_overwrites_and_refuses_what_is_not_a_wasmhook_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    let store = SqliteStore::open(&db).unwrap();
    insert(&store, ["e-1".to_owned()]).await;
    let out = dir.path().join("taken.db");
    std::fs::write(&out, b"keep me").unwrap();
    let err = SqliteStore::backup(&db, &out).unwrap_err();
    assert!(matches!(err, BackupError::Exists(_)), "{err}");
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");

    let missing = SqliteStore::backup(&dir.path().join("nope.db"), &dir.path().join("x.db"));
    assert!(
        matches!(missing, Err(BackupError::Missing(_))),
        "{missing:?}"
    );

    let plain = dir.path().join("plain.db");
    rusqlite::Connection::open(&plain)
        .unwrap()
        .execute_batch("CREATE TABLE t(x)")
        .unwrap();
    let err = SqliteStore::backup(&plain, &dir.path().join("y.db")).unwrap_err();
    assert!(
        err.to_string().contains("is not a wasmhook database"),
        "{err}"
    );

    let newer = dir.path().join("newer.db");
    // (A plain copy of the live file would miss what is still in its WAL.)
    SqliteStore::backup(&db, &newer).unwrap();
    rusqlite::Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = SqliteStore::backup(&newer, &dir.path().join("z.db")).unwrap_err();
    assert!(
        err.to_string().contains("schema version 99, newer"),
        "{err}"
    );
}

#[tokio::test]
async fn a_restore_waits_for_the_store_to_close_and_keeps_what_it_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    let backup = dir.path().join("monday.db");
    let store = SqliteStore::open(&db).unwrap();
    insert(&store, ["old-1".to_owned(), "old-2".to_owned()]).await;
    SqliteStore::backup(&db, &backup).unwrap();
    insert(&store, ["new-3".to_owned()]).await;

    // What a crash leaves: the file and a WAL holding committed work.
    let crashed = dir.path().join("crashed.db");
    std::fs::copy(&db, &crashed).unwrap();
    std::fs::copy(
        dir.path().join("live.db-wal"),
        dir.path().join("crashed.db-wal"),
    )
    .unwrap();

    let err = SqliteStore::restore(&backup, &db).unwrap_err();
    let pid = std::process::id();
    assert!(
        matches!(&err, BackupError::InUse(m)
            if m.starts_with("database ") && m.contains(&format!("process {pid}"))),
        "{err}"
    );
    let err = SqliteStore::restore(&db, &db).unwrap_err();
    assert!(err.to_string().contains("is the database itself"), "{err}");
    drop(store);

    let report = SqliteStore::restore(&backup, &db).expect("restore");
    assert_eq!((report.path.as_path(), report.events), (db.as_path(), 2));
    let aside = report.replaced.expect("the replaced database is kept");
    assert!(
        aside.to_string_lossy().contains("live.db.replaced-"),
        "{aside:?}"
    );
    assert_eq!(count(&aside, "SELECT count(*) FROM events"), 3);
    assert_eq!(count(&db, "SELECT count(*) FROM events"), 2);
    // The WAL of the database replaced is folded into the copy kept.
    let report = SqliteStore::restore(&backup, &crashed).expect("restore");
    let aside = report.replaced.unwrap();
    assert_eq!(count(&aside, "SELECT count(*) FROM events"), 3);
    assert!(
        !dir.path().join("crashed.db-wal").exists(),
        "no stale WAL next to the restored file"
    );
    assert_eq!(count(&crashed, "SELECT count(*) FROM events"), 2);

    let store = SqliteStore::open(&db).unwrap();
    assert!(store.get_event("old-1").await.unwrap().is_some());
    assert!(store.get_event("new-3").await.unwrap().is_none());
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A backup holds event data: it is private whatever the umask. A restore
/// gives the database the mode of the file it replaces, not the backup's.
#[tokio::test]
async fn backups_are_private_and_a_restore_keeps_the_database_s_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (db, out) = (dir.path().join("live.db"), dir.path().join("copy.db"));
    let store = SqliteStore::open(&db).unwrap();
    insert(&store, (0..3).map(|i| format!("e-{i}"))).await;
    drop(store);
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).unwrap();
    SqliteStore::backup(&db, &out).unwrap();
    assert_eq!(mode(&out), 0o600);
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).unwrap();
    SqliteStore::restore(&out, &db).unwrap();
    assert_eq!(mode(&db), 0o640);
}

/// `store.path` may be a symlink: the server locks the file it names, so
/// a restore through the link (or the file) is refused while it runs, and
/// a restore afterwards replaces the file, leaving the link in place.
#[tokio::test]
async fn a_symlinked_store_path_has_one_lock_and_keeps_its_link() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let (real, link) = (data.join("real.db"), dir.path().join("wasmhook.db"));
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let store = SqliteStore::open(&link).unwrap();
    insert(&store, (0..3).map(|i| format!("e-{i}"))).await;
    let out = dir.path().join("copy.db");
    SqliteStore::backup(&link, &out).unwrap();
    for path in [&link, &real] {
        let refused = SqliteStore::restore(&out, path);
        assert!(
            matches!(refused, Err(BackupError::InUse(_))),
            "{path:?}: {refused:?}"
        );
    }
    insert(&store, (3..5).map(|i| format!("e-{i}"))).await;
    drop(store);
    SqliteStore::restore(&out, &link).unwrap();
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(count(&real, "SELECT count(*) FROM events"), 3);
}

/// A "backup" with a write-ahead log next to it is a live or crashed
/// database: copying the file alone would miss the log's work, so it is
/// refused, and the database is left as it was.
#[tokio::test]
async fn a_restore_from_a_file_with_a_wal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (live, db) = (dir.path().join("other.db"), dir.path().join("live.db"));
    let other = SqliteStore::open(&live).unwrap();
    insert(&other, (0..3).map(|i| format!("e-{i}"))).await;
    let store = SqliteStore::open(&db).unwrap();
    insert(&store, ["mine".to_owned()]).await;
    drop(store);
    // `other` is still open: its WAL holds the three inserts.
    let refused = SqliteStore::restore(&live, &db);
    assert!(
        matches!(&refused, Err(BackupError::Unusable { why, .. }) if why.contains("write-ahead log")),
        "{refused:?}"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM events"), 1);
    drop(other);
}
