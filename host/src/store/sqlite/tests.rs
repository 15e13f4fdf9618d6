//! The conformance suite against SQLite, plus what only this backend
//! promises: group commit, per-write atomicity inside a group, schema
//! versioning, and durability across an abrupt process abort.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tempfile::TempDir;

use super::{DbResult, SqliteStore, events, schema};
use crate::store::{NewEvent, Store, StoreError, conformance};

/// A factory of fresh stores, each its own file in `dir`.
fn fresh(dir: &TempDir) -> impl Fn() -> Arc<dyn Store> + '_ {
    let n = AtomicUsize::new(0);
    move || {
        let file = format!("store-{}.db", n.fetch_add(1, Ordering::Relaxed));
        Arc::new(SqliteStore::open(dir.path().join(file)).expect("open store"))
    }
}

macro_rules! conformance_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            let dir = tempfile::tempdir().unwrap();
            conformance::$name(fresh(&dir)).await;
            assert_counts_match_rows(dir.path());
        }
    )*};
}

/// The per-plugin counts the schema's triggers keep equal a count of the
/// rows, in every database a scenario left behind (its stores are closed).
pub(super) fn assert_counts_match_rows(dir: &Path) {
    let query = |conn: &rusqlite::Connection, sql: &str| -> Vec<(String, String, i64)> {
        let mut stmt = conn.prepare(sql).unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    };
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "db") {
            continue;
        }
        let conn = rusqlite::Connection::open(&path).unwrap();
        let kept = query(
            &conn,
            "SELECT plugin, kind, n FROM plugin_counts WHERE n <> 0 ORDER BY 1, 2",
        );
        let counted = query(
            &conn,
            "SELECT plugin, kind, COUNT(*) FROM (
                 SELECT plugin, 'invocation.' || CASE
                     WHEN status = 'pending' THEN 'pending'
                     WHEN error_kind = 'expired' THEN 'expired'
                     ELSE verdict END AS kind
                   FROM invocations
                 UNION ALL
                 SELECT plugin, 'delivery.' || status FROM deliveries)
              GROUP BY 1, 2 ORDER BY 1, 2",
        );
        assert_eq!(kept, counted, "{}", path.display());
    }
}

conformance_tests!(
    idempotent_ingest,
    events_round_trip_exactly,
    invocation_lease_expiry_redelivers,
    parked_invocations_wait_until_unparked,
    parked_invocations_expire_when_too_old,
    complete_invocation_is_atomic_and_idempotent,
    delivery_retry_schedule_and_dead_letter,
    stale_delivery_lease_is_fenced,
    manual_retry_requeues,
    parked_deliveries_wait_until_unparked,
    cancelled_deliveries_are_failed_and_fenced,
    an_id_taken_by_another_source_is_refused,
    a_stale_attempt_counts_in_no_later_round,
    bulk_operations_reach_every_match,
    pagination_is_stable,
    events_list_newest_first_with_their_status,
    kv_is_namespaced_and_atomic,
    kv_quota_and_clearing,
    kv_is_listed_by_prefix_in_pages,
    plugin_pauses_are_remembered,
    stats_and_queue_depth,
    jobs_leased_by_their_creating_write,
    prune_deletes_only_finished_old_events,
    prune_gets_past_a_backlog_of_pending_events,
    replayed_decisions_run_again,
);

#[tokio::test]
async fn survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    conformance::survives_restart(|| -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(&path).unwrap())
    })
    .await;
}

const T0: u64 = 1_700_000_000_000;

/// An event stored before schema v7 has no source: a CloudEvent retried
/// across the upgrade is still its duplicate, not refused as another
/// source's.
#[tokio::test]
async fn an_event_from_before_v7_is_a_duplicate_for_any_source() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("store.db")).unwrap();
    store
        .insert_events(vec![new_event("old", &[])], None)
        .await
        .unwrap();
    store
        .write(|conn| {
            conn.execute("UPDATE events SET source = NULL WHERE id = 'old'", [])
                .db()
        })
        .await
        .unwrap();
    let again = store
        .insert_events(
            vec![NewEvent {
                source: Some("/shop".into()),
                ..new_event("old", &[])
            }],
            None,
        )
        .await
        .unwrap();
    assert_eq!(again, vec![crate::store::Inserted::Duplicate]);
}

/// A made-up cursor far above the newest event lists from the newest and
/// ends, instead of handing out empty pages for ever.
#[tokio::test]
async fn a_cursor_above_the_newest_event_starts_at_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("store.db")).unwrap();
    store
        .insert_events(vec![new_event("a", &[]), new_event("b", &[])], None)
        .await
        .unwrap();
    let page = store
        .list_events(crate::store::EventQuery {
            cursor: Some(i64::MAX.to_string()),
            ..Default::default()
        })
        .await
        .unwrap();
    let ids: Vec<_> = page.items.iter().map(|e| e.event.id.as_str()).collect();
    assert_eq!(ids, ["b", "a"]);
    assert_eq!(page.next_cursor, None);
}

pub(super) fn new_event(id: &str, plugins: &[&str]) -> NewEvent {
    NewEvent {
        parked: Vec::new(),
        event: crate::model::Event {
            id: id.to_owned(),
            name: "test".into(),
            user_id: None,
            timestamp_ms: T0,
            properties: serde_json::Map::new(),
        },
        plugins: plugins.iter().map(|p| (*p).to_owned()).collect(),
        received_ms: T0,
        source: None,
    }
}

/// Occupy the writer thread until the returned sender is dropped or used;
/// returns once the writer is inside the blocking write, so everything
/// submitted afterwards lands in the next group.
pub(super) fn block_writer(
    store: &SqliteStore,
) -> (std::sync::mpsc::Sender<()>, super::writer::Receipt<()>) {
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let (entered, is_in) = std::sync::mpsc::channel::<()>();
    let receipt = store
        .inner
        .writer
        .submit(move |_| {
            let _ = entered.send(());
            let _ = wait.recv();
            Ok(())
        })
        .unwrap();
    is_in.recv().expect("writer entered the blocking write");
    (release, receipt)
}

#[tokio::test]
async fn concurrent_writes_share_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("s.db")).unwrap();
    let before = store.inner.writer.commits();
    let (release, blocker) = block_writer(&store);
    let receipts: Vec<_> = (0..100)
        .map(|i| {
            let batch = vec![new_event(&format!("e{i}"), &["p"])];
            store
                .inner
                .writer
                .submit(move |conn| events::insert_events(conn, &batch, None))
                .unwrap()
        })
        .collect();
    release.send(()).unwrap();
    blocker.wait().await.unwrap();
    for receipt in receipts {
        assert_eq!(receipt.wait().await.unwrap().len(), 1);
    }
    assert_eq!(
        store.inner.writer.commits() - before,
        2,
        "the blocker's group, then one group for all 100 inserts"
    );
    assert_eq!(
        store.queue_depth(T0).await.unwrap().invocations_pending,
        100
    );
}

#[tokio::test]
async fn a_failing_write_rolls_back_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("s.db")).unwrap();
    let (release, blocker) = block_writer(&store);
    let writer = &store.inner.writer;
    let good = writer
        .submit(|conn| events::insert_events(conn, &[new_event("good", &["p"])], None))
        .unwrap();
    let bad = writer
        .submit(|conn| {
            events::insert_events(conn, &[new_event("bad", &["p"])], None)?;
            Err::<(), _>(StoreError::Backend("boom".into()))
        })
        .unwrap();
    let panics = writer
        .submit(|conn| -> Result<(), StoreError> {
            events::insert_events(conn, &[new_event("panics", &["p"])], None)?;
            panic!("a bug in a write");
        })
        .unwrap();
    release.send(()).unwrap();
    blocker.wait().await.unwrap();

    assert!(good.wait().await.is_ok());
    assert!(matches!(bad.wait().await, Err(StoreError::Backend(m)) if m == "boom"));
    assert!(panics.wait().await.is_err());
    assert!(store.get_event("good").await.unwrap().is_some());
    assert!(
        store.get_event("bad").await.unwrap().is_none(),
        "rolled back"
    );
    assert!(
        store.get_event("panics").await.unwrap().is_none(),
        "rolled back"
    );
    assert_eq!(store.queue_depth(T0).await.unwrap().invocations_pending, 1);
    // The writer survived the panic.
    store
        .insert_events(vec![new_event("after", &[])], None)
        .await
        .unwrap();
    assert!(store.get_event("after").await.unwrap().is_some());
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).unwrap_err().to_string();
    assert!(err.contains("schema version 99"), "{err}");
}

#[test]
fn an_unopenable_path_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("s.db");
    let err = SqliteStore::open(&path).unwrap_err().to_string();
    assert!(err.contains("missing-dir"), "{err}");
}

#[tokio::test]
async fn the_database_is_wal_with_full_sync() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("s.db")).unwrap();
    let mode: String = store
        .inner
        .readers
        .read(|conn| conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).db())
        .unwrap();
    let sync: i64 = store
        .inner
        .writer
        .write(|conn| conn.query_row("PRAGMA synchronous", [], |r| r.get(0)).db())
        .await
        .unwrap();
    assert_eq!((mode.as_str(), sync), ("wal", 2), "2 = FULL");
}

/// `(page_count, freelist_count)` of the store's database.
async fn pages(store: &SqliteStore) -> (i64, i64) {
    store
        .inner
        .writer
        .write(|conn| {
            let count = |p: &str| conn.pragma_query_value(None, p, |r| r.get::<_, i64>(0));
            Ok((count("page_count").db()?, count("freelist_count").db()?))
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn pruning_a_burst_gives_most_of_the_file_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("s.db")).unwrap();
    let blob = serde_json::Value::String("x".repeat(2_000));
    for batch in 0..20 {
        let events = (0..100)
            .map(|i| {
                let mut e = new_event(&format!("e-{batch}-{i}"), &[]);
                e.event.properties.insert("blob".into(), blob.clone());
                e
            })
            .collect();
        store.insert_events(events, None).await.unwrap();
    }
    let (full, _) = pages(&store).await;
    let mode: i64 = store
        .inner
        .writer
        .write(|conn| {
            conn.pragma_query_value(None, "auto_vacuum", |r| r.get(0))
                .db()
        })
        .await
        .unwrap();
    assert_eq!(mode, 2, "2 = INCREMENTAL");
    assert!(full > 1_000, "2 000 events of 2 kB: {full} pages");
    let mut deleted = 0;
    loop {
        let pruned = store.prune(T0 + 1, 500).await.unwrap();
        deleted += pruned.deleted;
        if !pruned.more {
            break;
        }
    }
    assert_eq!(deleted, 2_000);
    let (after, free) = pages(&store).await;
    // Down to the schema plus at most an eighth of the old size kept free
    // (and what the last batch left below the threshold).
    assert!(
        after * 3 < full,
        "the file kept {after} of {full} pages ({free} free)"
    );
}

// ---- abrupt abort ---------------------------------------------------------

/// Set in the child process: the database it writes to before aborting.
const CHILD_ENV: &str = "WASMHOOK_STORE_ABORT_CHILD_DB";
const EVENTS: usize = 200;

/// The child writes, prints what was acknowledged, and aborts (no
/// destructors, no clean shutdown) while more writes are in flight.
fn abort_child(path: &Path) -> ! {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(path).unwrap());
        let mut tasks = Vec::new();
        for t in 0..20 {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                for i in 0..EVENTS / 20 {
                    let id = format!("e{}", t * (EVENTS / 20) + i);
                    store
                        .insert_events(vec![new_event(&id, &["p"])], None)
                        .await
                        .unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let leased = store.lease_invocations(T0, 1_000, 50).await.unwrap();
        let request = crate::model::OutboundRequest {
            method: crate::model::Method::Post,
            url: "https://example.com/hook".into(),
            headers: vec![],
            body: b"{}".to_vec(),
        };
        let outcome = crate::store::InvocationOutcome {
            verdict: crate::store::Verdict::Fire,
            duration_us: 1,
            fuel: None,
        };
        store
            .complete_invocation(leased[0].id, outcome, vec![request], T0, None)
            .await
            .unwrap();
        let job = store
            .lease_deliveries(T0, 1_000, 1)
            .await
            .unwrap()
            .remove(0);
        let attempt = crate::store::Attempt {
            started_ms: T0,
            duration_ms: 3,
            status_code: Some(503),
            error: None,
            outcome: crate::store::AttemptOutcome::Status,
            response: None,
        };
        let next = crate::store::NextStep::RetryAt(T0 + 60_000);
        store
            .record_attempt(&job.id, &job.lease, attempt, next, T0)
            .await
            .unwrap();
        let kv = store.kv();
        tokio::task::spawn_blocking(move || {
            for _ in 0..10 {
                kv.increment("p", "n", 1, u64::MAX).unwrap();
            }
        })
        .await
        .unwrap();
        println!("ACKED {EVENTS}");

        // Keep writing from 16 tasks; die once 50 of those writes were
        // acknowledged, with more in flight.
        let acked = Arc::new(AtomicUsize::new(0));
        for t in 0..16 {
            let (store, acked) = (Arc::clone(&store), Arc::clone(&acked));
            tokio::spawn(async move {
                for i in 0.. {
                    let id = format!("noise{t}-{i}");
                    store
                        .insert_events(vec![new_event(&id, &[])], None)
                        .await
                        .unwrap();
                    println!("ACK {id}");
                    acked.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while acked.load(Ordering::SeqCst) < 50 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    });
    std::process::abort();
}

#[test]
fn acknowledged_writes_survive_abort() {
    if let Some(path) = std::env::var_os(CHILD_ENV) {
        abort_child(Path::new(&path));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("abort.db");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "store::sqlite::tests::acknowledged_writes_survive_abort",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "the child must abort");
    assert!(
        stdout.contains(&format!("ACKED {EVENTS}")),
        "child stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let noise: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ACK "))
        .collect();
    assert!(noise.len() >= 50, "the child died before 50 acks: {stdout}");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(&path).unwrap();
        for i in 0..EVENTS {
            let e = store.get_event(&format!("e{i}")).await.unwrap();
            assert_eq!(e.expect("acked event kept").invocations.len(), 1);
        }
        for id in &noise {
            let kept = store.get_event(id).await.unwrap();
            assert!(kept.is_some(), "{id} was acknowledged, then lost");
        }
        // 150 never leased, due now; 49 in flight until T0 + 1000.
        assert_eq!(
            store
                .lease_invocations(T0 + 999, 1_000, 1_000)
                .await
                .unwrap()
                .len(),
            150
        );
        let back = store
            .lease_invocations(T0 + 1_000, 1_000, 1_000)
            .await
            .unwrap();
        assert_eq!(back.len(), 49);
        assert!(back.iter().all(|j| j.attempt == 2));
        assert!(
            store
                .lease_deliveries(T0 + 59_999, 1_000, 10)
                .await
                .unwrap()
                .is_empty()
        );
        let retry = store
            .lease_deliveries(T0 + 60_000, 1_000, 10)
            .await
            .unwrap();
        assert_eq!((retry.len(), retry[0].attempts_so_far), (1, 1));
        let kv = store.kv();
        let n = tokio::task::spawn_blocking(move || kv.get("p", "n").unwrap())
            .await
            .unwrap();
        assert_eq!(n, Some(10i64.to_le_bytes().to_vec()));
    });
}

#[tokio::test]
async fn a_version_1_database_is_migrated_with_its_queued_work_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(schema::MIGRATIONS[0]).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    conn.execute_batch(
        "INSERT INTO events (id, name, timestamp_ms, properties, received_ms)
              VALUES ('e1', 'n', 1, '{}', 1);
         INSERT INTO invocations (event_seq, plugin, status, visible_ms, created_ms, verdict)
              VALUES (1, 'p', 'done', 1, 1, 'fire');
         INSERT INTO deliveries (id, invocation_id, event_seq, plugin, method, url, headers,
                                 body, status, visible_ms, next_attempt_ms, created_ms,
                                 updated_ms)
              VALUES ('msg_1', 1, 1, 'p', 'POST', 'https://a.example/', '[]', x'', 'pending',
                      5, 5, 1, 1);
         INSERT INTO kv (namespace, key, value) VALUES ('p', 'seen:ада', x'01'),
                                                       ('p', 'n', x'0500000000000000');",
    )
    .unwrap();
    drop(conn);

    let store = SqliteStore::open(&path).unwrap();
    // The counts, and the kv usage, start from the rows already there.
    let stats = store.plugin_stats().await.unwrap();
    assert_eq!(
        (stats["p"].invocations.fire, stats["p"].deliveries.pending),
        (1, 1)
    );
    assert_eq!(
        stats["p"].kv,
        crate::store::KvUsage {
            keys: 2,
            bytes: (11 + 1) + (1 + 8)
        }
    );
    let due = store.lease_deliveries(10, 1000, 10).await.unwrap();
    assert_eq!(due.len(), 1, "the pending delivery is still due");
    assert_eq!(due[0].id, "msg_1");
    let indexes: Vec<(String, String)> = store
        .inner
        .readers
        .read(|conn| {
            let mut stmt = conn
                .prepare("SELECT name, sql FROM sqlite_master WHERE tbl_name = 'deliveries' AND type = 'index' AND sql IS NOT NULL")
                .db()?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .db()?
                .collect::<rusqlite::Result<Vec<_>>>()
                .db()?;
            Ok(rows)
        })
        .unwrap();
    let queue = &indexes
        .iter()
        .find(|(n, _)| n == "deliveries_queue")
        .unwrap()
        .1;
    assert!(queue.contains("WHERE status = 'pending'"), "{queue}");
}

#[test]
fn delivery_ids_are_uuid_v7_carrying_the_callers_clock() {
    let now_ms = 1_764_500_000_123;
    let (a, b) = (
        super::deliveries::new_delivery_id(now_ms),
        super::deliveries::new_delivery_id(now_ms),
    );
    assert_ne!(a, b, "random bits keep ids of one millisecond apart");
    for id in [&a, &b] {
        let uuid = uuid::Uuid::parse_str(id.strip_prefix("msg_").unwrap()).unwrap();
        assert_eq!(uuid.get_version_num(), 7, "{id}");
        let (secs, nanos) = uuid.get_timestamp().unwrap().to_unix();
        assert_eq!(secs * 1000 + u64::from(nanos) / 1_000_000, now_ms, "{id}");
    }
    // Later ids sort after earlier ones (the index grows at its end).
    assert!(super::deliveries::new_delivery_id(now_ms + 1) > a.max(b));
}

/// A lease in the database when it is opened is a dead process's (the
/// lock keeps out live ones): its job is due at once, not when the lease
/// runs out, while a lease already over keeps its earlier time.
#[tokio::test]
async fn a_dead_process_s_leases_are_released_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let now = crate::ingest::now_ms();
    {
        let store = SqliteStore::open(&path).unwrap();
        let mut event = new_event("held", &["p"]);
        event.received_ms = now;
        store.insert_events(vec![event], None).await.unwrap();
        let held = store.lease_invocations(now, 3_600_000, 10).await.unwrap();
        assert_eq!(held.len(), 1);
        assert!(
            store
                .lease_invocations(now + 1, 60_000, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
    let store = SqliteStore::open(&path).unwrap();
    let back = store
        .lease_invocations(crate::ingest::now_ms(), 60_000, 10)
        .await
        .unwrap();
    assert_eq!(back.len(), 1, "due at once, not in an hour");
    assert_eq!(back[0].attempt, 2);
}
