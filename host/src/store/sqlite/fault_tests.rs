//! What the SQLite backend does when the database cannot be written:
//! operational failures are typed ([`StoreError::Unavailable`]), a group
//! whose transaction SQLite rolled back fails as a whole with nothing of it
//! committed, and the writer takes writes again once the condition is gone.
//! The end-to-end versions (a real file-size limit, a read-only file) are
//! in `tests/faults.rs`.

use super::tests::block_writer;
use super::{DbResult, SqliteStore, events};
use crate::store::{NewEvent, Store, StoreError};

const T0: u64 = 1_700_000_000_000;

fn new_event(id: &str) -> NewEvent {
    NewEvent {
        parked: Vec::new(),
        event: crate::model::Event {
            id: id.to_owned(),
            name: "test".into(),
            user_id: None,
            timestamp_ms: T0,
            properties: serde_json::Map::new(),
        },
        plugins: vec!["p".into()],
        received_ms: T0,
        source: None,
    }
}

/// Regression: SQLite rolls the whole transaction back on an I/O error (a
/// full disk while spilling pages, EFBIG). The writer used to carry on
/// with the rest of the group, whose savepoints then each ran as their own
/// transaction and committed, while the final COMMIT failed and every
/// caller was told its write was lost.
#[tokio::test]
async fn a_write_that_loses_the_transaction_fails_its_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("s.db")).unwrap();
    let (release, blocker) = block_writer(&store);
    let writer = &store.inner.writer;
    let before = writer
        .submit(|conn| events::insert_events(conn, &[new_event("before")], None))
        .unwrap();
    let lost = writer
        .submit(|conn| -> Result<(), StoreError> {
            // What SQLite does by itself after SQLITE_IOERR mid-transaction.
            conn.execute_batch("ROLLBACK").db()?;
            Err(StoreError::Unavailable {
                reason: "disk full",
            })
        })
        .unwrap();
    let after = writer
        .submit(|conn| events::insert_events(conn, &[new_event("after")], None))
        .unwrap();
    release.send(()).unwrap();
    blocker.wait().await.unwrap();

    for (name, result) in [
        ("before", before.wait().await.map(|_| ())),
        ("lost", lost.wait().await),
        ("after", after.wait().await.map(|_| ())),
    ] {
        assert!(
            matches!(
                result,
                Err(StoreError::Unavailable {
                    reason: "disk full"
                })
            ),
            "{name}: {result:?}"
        );
    }
    for id in ["before", "after"] {
        assert!(
            store.get_event(id).await.unwrap().is_none(),
            "{id} was reported failed, so it must not be stored"
        );
    }
    // The writer goes on.
    store
        .insert_events(vec![new_event("later")], None)
        .await
        .unwrap();
    assert!(store.get_event("later").await.unwrap().is_some());
}

/// A connection that may not write (`query_only` here; a read-only file
/// or mount in production) gives typed `Unavailable` errors, for readiness
/// and for ingest alike. (Recovery once writes work again is shown end to
/// end in `tests/faults.rs`; `query_only` itself cannot be switched off
/// from inside the writer's transaction.)
#[tokio::test]
async fn a_connection_that_cannot_write_is_unavailable_for_readiness_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("s.db")).unwrap();
    store.check_writable().await.unwrap();
    store
        .inner
        .writer
        .submit(|conn| conn.pragma_update(None, "query_only", true).db())
        .unwrap()
        .wait()
        .await
        .unwrap();
    let read_only = |r: &Result<_, StoreError>| {
        matches!(
            r,
            Err(StoreError::Unavailable {
                reason: "database is read-only"
            })
        )
    };
    let probe = store.check_writable().await;
    assert!(read_only(&probe), "{probe:?}");
    let insert = store.insert_events(vec![new_event("refused")], None).await;
    assert!(
        read_only(&insert.as_ref().map(|_| ()).map_err(Clone::clone)),
        "{insert:?}"
    );
    assert!(store.get_event("refused").await.unwrap().is_none());
}

/// A file SQLite can only open read-only is refused at open (with a typed
/// reason the caller puts next to the path) instead of starting a store
/// whose every write fails.
#[test]
fn a_database_opened_read_only_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(SqliteStore::open(&path).unwrap());
    // Root ignores file modes; `mode=ro` gets SQLite's read-only fallback.
    let read_only = format!("file:{}?mode=ro", path.display());
    let err = SqliteStore::open(&read_only).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Unavailable {
                reason: "database is read-only"
            }
        ),
        "{err:?}"
    );
}
