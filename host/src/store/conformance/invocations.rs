//! Scenarios for ingest and the invocation queue.

use std::sync::Arc;

use crate::model::Event;
use crate::runtime::ErrorKind;
use crate::store::{
    AckResult, Completion, Inserted, InvocationOutcome, InvocationStatus, JobLease, LeaseToken,
    NewEvent, Store, StoreError, Verdict,
};

use super::{LEASE, T0, deliveries_for, event, fire, new_event, request};

/// A CloudEvent is the same event when its source and id are: an id held
/// by an event from another source (or by a native event) is refused, and
/// nothing of that batch is stored; the same source and id again is a
/// duplicate.
pub async fn an_id_taken_by_another_source_is_refused(new_store: impl Fn() -> Arc<dyn Store>) {
    let store = new_store();
    let from = |id: &str, source: Option<&str>| NewEvent {
        source: source.map(str::to_owned),
        ..new_event(id, &["a"], T0)
    };
    let stored = store
        .insert_events(vec![from("1", Some("/shop"))], None)
        .await
        .unwrap();
    assert!(stored[0].is_new());
    let refused = store
        .insert_events(vec![from("2", None), from("1", Some("/game"))], None)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, StoreError::IdTaken { index: 1, id, taken_by: Some(by) }
            if id == "1" && by == "/shop"),
        "{refused:?}"
    );
    assert!(
        store.get_event("2").await.unwrap().is_none(),
        "nothing of the refused batch"
    );
    let native = store.insert_events(vec![from("1", None)], None).await;
    assert!(
        matches!(native, Err(StoreError::IdTaken { .. })),
        "{native:?}"
    );
    let again = store
        .insert_events(vec![from("1", Some("/shop")), from("2", None)], None)
        .await
        .unwrap();
    assert_eq!(again[0], Inserted::Duplicate);
    assert!(again[1].is_new());
    assert_eq!(
        store.queue_depth(T0).await.unwrap().invocations_pending,
        2,
        "one job each for 1 and 2"
    );
}

/// An event id already stored is not inserted again and creates no jobs,
/// whether it repeats within one batch or arrives in a later one.
pub async fn idempotent_ingest(new_store: impl Fn() -> Arc<dyn Store>) {
    let store = new_store();
    assert_eq!(store.insert_events(vec![], None).await.unwrap(), vec![]);

    let first = store
        .insert_events(
            vec![
                new_event("e1", &["a", "b"], T0),
                new_event("e2", &["a"], T0),
                new_event("e1", &["a", "b", "c"], T0),
                new_event("lonely", &[], T0),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        first,
        vec![
            Inserted::New { jobs: vec![] },
            Inserted::New { jobs: vec![] },
            Inserted::Duplicate,
            Inserted::New { jobs: vec![] }
        ]
    );
    let again = store
        .insert_events(
            vec![
                new_event("e2", &["z"], T0 + 1),
                new_event("e3", &["a"], T0 + 1),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        again,
        vec![Inserted::Duplicate, Inserted::New { jobs: vec![] }]
    );

    let depth = store.queue_depth(T0 + 1).await.unwrap();
    assert_eq!(depth.invocations_pending, 4, "e1×2, e2×1, e3×1");

    let e1 = store.get_event("e1").await.unwrap().expect("e1 stored");
    let plugins: Vec<_> = e1.invocations.iter().map(|i| i.plugin.as_str()).collect();
    assert_eq!(
        plugins,
        ["a", "b"],
        "the duplicate's plugin list is ignored"
    );
    assert_eq!(e1.received_ms, T0);
    assert!(e1.deliveries.is_empty());

    let lonely = store.get_event("lonely").await.unwrap().expect("stored");
    assert!(lonely.invocations.is_empty(), "no subscribers, no jobs");
    assert!(store.get_event("nope").await.unwrap().is_none());

    let mut leased: Vec<_> = store
        .lease_invocations(T0 + 1, LEASE, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|j| (j.event.id, j.plugin))
        .collect();
    leased.sort();
    let expected: Vec<(String, String)> = [("e1", "a"), ("e1", "b"), ("e2", "a"), ("e3", "a")]
        .iter()
        .map(|(e, p)| ((*e).into(), (*p).into()))
        .collect();
    assert_eq!(leased, expected);
}

/// Events come back exactly as stored: unicode, nesting, property order,
/// a missing user id.
pub async fn events_round_trip_exactly(new_store: impl Fn() -> Arc<dyn Store>) {
    let store = new_store();
    let mut properties = serde_json::Map::new();
    properties.insert("zeta".into(), serde_json::json!("last key first"));
    properties.insert(
        "nested".into(),
        serde_json::json!({"a": [1, 2.5, null, true]}),
    );
    properties.insert("emoji".into(), serde_json::json!("héllo 🌍 \u{0}"));
    let odd = Event {
        id: "id with spaces/ünï".into(),
        name: "order.paid".into(),
        user_id: None,
        timestamp_ms: 0,
        properties,
    };
    store
        .insert_events(
            vec![NewEvent {
                event: odd.clone(),
                parked: Vec::new(),
                plugins: vec!["p".into()],
                received_ms: T0,
                source: None,
            }],
            None,
        )
        .await
        .unwrap();
    let detail = store.get_event(&odd.id).await.unwrap().expect("stored");
    assert_eq!(detail.event, odd);
    let keys: Vec<_> = detail.event.properties.keys().collect();
    assert_eq!(keys, ["zeta", "nested", "emoji"], "property order kept");

    let jobs = store.lease_invocations(T0, LEASE, 1).await.unwrap();
    assert_eq!(jobs[0].event, odd, "the leased job carries the same event");
}

/// Jobs are due at their event's `received_ms`; a lease hides a job until
/// it expires, then the job is handed out again with a new token; releasing
/// puts it back without counting an attempt; `limit` and oldest-first hold.
pub async fn invocation_lease_expiry_redelivers(new_store: impl Fn() -> Arc<dyn Store>) {
    let store = new_store();
    store
        .insert_events(vec![new_event("e1", &["p"], T0)], None)
        .await
        .unwrap();
    assert!(
        store
            .lease_invocations(T0 - 1, LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.next_due_ms().await.unwrap(), Some(T0));

    let first = store.lease_invocations(T0, 1_000, 10).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!((first[0].attempt, first[0].plugin.as_str()), (1, "p"));
    assert_eq!(first[0].event, event("e1"));
    assert!(
        store
            .lease_invocations(T0, 1_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .lease_invocations(T0 + 999, 1_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.next_due_ms().await.unwrap(), Some(T0 + 1_000));
    let detail = store.get_event("e1").await.unwrap().unwrap();
    assert_eq!(detail.invocations[0].leased_until, Some(T0 + 1_000));
    assert_eq!(detail.invocations[0].status, InvocationStatus::Pending);

    // The holder "died": the lease expires and the job comes back.
    let second = store
        .lease_invocations(T0 + 1_000, 1_000, 10)
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].id, first[0].id);
    assert_eq!(second[0].attempt, 2);
    assert_ne!(second[0].lease, first[0].lease, "a new lease, a new token");

    // Only the current holder may release it.
    let stale = store
        .release_invocation(first[0].id, &first[0].lease, T0)
        .await
        .unwrap();
    assert_eq!(stale, AckResult::LeaseLost);
    let released = store
        .release_invocation(second[0].id, &second[0].lease, T0 + 5_000)
        .await
        .unwrap();
    assert_eq!(released, AckResult::Applied);
    assert_eq!(
        store
            .release_invocation(9_999_999, &second[0].lease, T0)
            .await
            .unwrap(),
        AckResult::NotFound
    );
    assert!(
        store
            .lease_invocations(T0 + 4_999, LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let third = store
        .lease_invocations(T0 + 5_000, LEASE, 10)
        .await
        .unwrap();
    assert_eq!(third[0].attempt, 2, "a release is not an attempt");

    // Oldest due first, at most `limit`.
    let batch = (0..5)
        .map(|i| new_event(&format!("o{i}"), &["p"], T0 + 10 - i))
        .collect();
    store.insert_events(batch, None).await.unwrap();
    let two = store.lease_invocations(T0 + 10, LEASE, 2).await.unwrap();
    let ids: Vec<_> = two.iter().map(|j| j.event.id.as_str()).collect();
    assert_eq!(ids, ["o4", "o3"]);
    assert!(
        store
            .lease_invocations(T0 + 10, LEASE, 0)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Completing records the verdict and creates the deliveries together;
/// the first completion wins and a late one (a worker whose lease was
/// taken over) creates nothing.
pub async fn complete_invocation_is_atomic_and_idempotent(new_store: impl Fn() -> Arc<dyn Store>) {
    let store = new_store();
    store
        .insert_events(vec![new_event("e1", &["fire", "skip", "err"], T0)], None)
        .await
        .unwrap();
    let stale = store.lease_invocations(T0, 10, 10).await.unwrap();
    let jobs = store.lease_invocations(T0 + 10, LEASE, 10).await.unwrap();
    assert_eq!(jobs.len(), 3);
    let job = |p: &str| jobs.iter().find(|j| j.plugin == p).unwrap().id;

    let done = store
        .complete_invocation(
            job("fire"),
            fire(),
            vec![request(0), request(1)],
            T0 + 20,
            None,
        )
        .await
        .unwrap();
    let Completion::Recorded { delivery_ids, .. } = done else {
        panic!("expected Recorded, got {done:?}");
    };
    assert_eq!(delivery_ids.len(), 2);
    assert_ne!(delivery_ids[0], delivery_ids[1]);
    assert!(delivery_ids.iter().all(|id| !id.is_empty()));

    // The stale holder finishes too, with different output: ignored.
    let stale_fire = stale.iter().find(|j| j.plugin == "fire").unwrap();
    let late = store
        .complete_invocation(stale_fire.id, fire(), vec![request(7)], T0 + 30, None)
        .await
        .unwrap();
    assert_eq!(late, Completion::AlreadyCompleted);
    assert_eq!(
        store
            .complete_invocation(424_242, fire(), vec![], T0, None)
            .await
            .unwrap(),
        Completion::NotFound
    );

    let skip = InvocationOutcome {
        verdict: Verdict::Skip {
            reason: "not a customer".into(),
        },
        duration_us: 5,
        fuel: None,
    };
    let err = InvocationOutcome {
        verdict: Verdict::Error {
            kind: ErrorKind::Timeout,
            message: "ran longer than 100 ms".into(),
        },
        duration_us: 100_000,
        fuel: Some(1),
    };
    for (plugin, outcome) in [("skip", skip.clone()), ("err", err.clone())] {
        let c = store
            .complete_invocation(job(plugin), outcome, vec![], T0 + 40, None)
            .await
            .unwrap();
        assert_eq!(
            c,
            Completion::Recorded {
                delivery_ids: vec![],
                leased: vec![]
            }
        );
    }

    let detail = store.get_event("e1").await.unwrap().unwrap();
    let rec = |p: &str| detail.invocations.iter().find(|i| i.plugin == p).unwrap();
    assert_eq!(rec("fire").status, InvocationStatus::Done);
    assert_eq!(rec("fire").outcome, Some(fire()));
    assert_eq!(rec("fire").completed_ms, Some(T0 + 20));
    assert_eq!(rec("fire").leased_until, None);
    assert_eq!(rec("skip").outcome, Some(skip));
    assert_eq!(rec("err").outcome, Some(err));

    let ids: Vec<_> = detail.deliveries.iter().map(|d| d.id.clone()).collect();
    assert_eq!(
        ids, delivery_ids,
        "exactly the first completion's deliveries"
    );
    for (i, d) in detail.deliveries.iter().enumerate() {
        assert_eq!(d.request, request(i), "request stored exactly");
        assert_eq!((d.plugin.as_str(), d.event_id.as_str()), ("fire", "e1"));
        assert_eq!(d.next_attempt_ms, Some(T0 + 20), "due when created");
        assert_eq!(d.created_ms, T0 + 20);
        assert!(d.attempts.is_empty());
    }
    assert!(
        store
            .lease_invocations(u64::MAX / 2, LEASE, 10)
            .await
            .unwrap()
            .is_empty(),
        "completed jobs never come back"
    );

    // A second event's deliveries get ids distinct from the first's.
    let more = deliveries_for(&*store, "e2", "fire", 3, T0 + 20).await;
    assert!(more.iter().all(|id| !delivery_ids.contains(id)));
}

/// Parked invocations are invisible to leases and to `next_due_ms` until
/// unparked: one plugin's, a limited number (oldest first), or all; jobs
/// created parked (`NewEvent::parked`) likewise.
pub async fn parked_invocations_wait_until_unparked(new_store: impl Fn() -> Arc<dyn Store>) {
    let store = new_store();
    let batch = (0..4)
        .map(|i| new_event(&format!("pk{i}"), &["paused", "other"], T0 + i))
        .collect();
    store.insert_events(batch, None).await.unwrap();
    let jobs = store.lease_invocations(T0 + 10, 1_000, 100).await.unwrap();
    assert_eq!(jobs.len(), 8);
    for job in jobs.iter().filter(|j| j.plugin == "paused") {
        let parked = store.park_invocation(job.id, &job.lease).await.unwrap();
        assert_eq!(parked, AckResult::Applied);
    }
    // A stale lease cannot park.
    let other = jobs.iter().find(|j| j.plugin == "other").unwrap();
    assert_eq!(
        store
            .park_invocation(other.id, &LeaseToken::new("stale"))
            .await
            .unwrap(),
        AckResult::LeaseLost
    );
    // Long after every lease has expired, only the unparked ones come back.
    let far = T0 + 1_000_000_000;
    let back = store.lease_invocations(far, LEASE, 100).await.unwrap();
    assert!(back.iter().all(|j| j.plugin == "other"), "{back:?}");
    assert_eq!(back.len(), 4);
    for j in &back {
        store
            .complete_invocation(j.id, fire(), Vec::new(), far, None)
            .await
            .unwrap();
    }
    assert_eq!(
        store.next_due_ms().await.unwrap(),
        None,
        "parked is never due"
    );
    assert_eq!(store.queue_depth(far).await.unwrap().invocations_pending, 4);
    let stats = store.plugin_stats().await.unwrap();
    assert_eq!(
        (
            stats["paused"].invocations.pending,
            stats["paused"].invocations.parked
        ),
        (4, 4),
        "{stats:?}"
    );
    assert_eq!(stats["other"].invocations.parked, 0, "{stats:?}");

    // One probe: the oldest.
    assert_eq!(
        store
            .unpark_invocations(Some("paused"), Some(1), far)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .unpark_invocations(Some("nobody"), None, far)
            .await
            .unwrap(),
        0
    );
    let probe = store.lease_invocations(far, LEASE, 100).await.unwrap();
    assert_eq!(probe.len(), 1);
    assert_eq!(probe[0].event.id, "pk0");
    assert_eq!(probe[0].attempt, 1, "parking is not an attempt");
    // The rest, all at once.
    assert_eq!(
        store.unpark_invocations(None, None, far + 1).await.unwrap(),
        3
    );
    assert_eq!(
        store.plugin_stats().await.unwrap()["paused"]
            .invocations
            .parked,
        0,
        "unparked jobs are pending, not parked"
    );
    let rest = store.lease_invocations(far + 1, LEASE, 100).await.unwrap();
    let mut ids: Vec<_> = rest.iter().map(|j| j.event.id.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["pk1", "pk2", "pk3"]);

    // Jobs can also be born parked: a paused plugin's share of a new
    // event, never handed to the caller and never due until unparked.
    let mut born = new_event("pk9", &["running"], far + 2);
    born.parked = vec!["paused".into()];
    let lease = JobLease {
        now_ms: far + 2,
        lease_ms: LEASE,
    };
    let inserted = store.insert_events(vec![born], Some(lease)).await.unwrap();
    let handed = inserted[0].clone().into_jobs();
    assert_eq!(handed.len(), 1);
    assert_eq!(handed[0].plugin, "running");
    let never = far + 2 * LEASE;
    let due = store.lease_invocations(never, LEASE, 100).await.unwrap();
    assert!(
        !due.iter()
            .any(|j| (j.event.id.as_str(), j.plugin.as_str()) == ("pk9", "paused")),
        "a job born parked is never due: {due:?}"
    );
    assert_eq!(
        store
            .unpark_invocations(Some("paused"), None, never)
            .await
            .unwrap(),
        1
    );
    let unparked = store.lease_invocations(never, LEASE, 100).await.unwrap();
    let job = unparked
        .iter()
        .find(|j| (j.event.id.as_str(), j.plugin.as_str()) == ("pk9", "paused"))
        .expect("unparked");
    assert_eq!((job.event.id.as_str(), job.attempt), ("pk9", 1));
}

/// Parked jobs whose events are too old are settled with the outcome
/// given, looking at a plugin's oldest parked jobs only; jobs that are
/// due, leased, young or another plugin's are left alone. Jobs carry when
/// they were created.
pub async fn parked_invocations_expire_when_too_old(new_store: impl Fn() -> Arc<dyn Store>) {
    let store = new_store();
    // Three events a second apart, each for a paused plugin (born parked)
    // and a running one.
    let batch = (0..3)
        .map(|i| {
            let mut e = new_event(&format!("old{i}"), &["running"], T0 + i * 1_000);
            e.parked = vec!["paused".into()];
            e
        })
        .collect();
    store.insert_events(batch, None).await.unwrap();
    let running = store
        .lease_invocations(T0 + 5_000, LEASE, 100)
        .await
        .unwrap();
    assert_eq!(running.len(), 3, "only the running plugin's jobs are due");
    let created: Vec<u64> = running.iter().map(|j| j.created_ms).collect();
    assert_eq!(created, [T0, T0 + 1_000, T0 + 2_000]);

    let outcome = InvocationOutcome {
        verdict: Verdict::Error {
            kind: ErrorKind::Expired,
            message: "too old".into(),
        },
        duration_us: 0,
        fuel: None,
    };
    let now = T0 + 10_000;
    // Created before T0 + 1500: old0 and old1. Another plugin's, and a
    // leased one, are never touched.
    let expire = |plugin: &'static str, before: u64, limit: usize| {
        let (store, outcome) = (store.clone(), outcome.clone());
        async move {
            store
                .expire_parked_invocations(plugin, before, outcome, now, limit)
                .await
                .unwrap()
        }
    };
    assert_eq!(expire("running", now, 100).await, 0, "leased, not parked");
    assert_eq!(
        expire("paused", T0 + 1_500, 1).await,
        1,
        "at most the limit"
    );
    assert_eq!(expire("paused", T0 + 1_500, 100).await, 1);
    assert_eq!(expire("paused", T0 + 1_500, 100).await, 0, "once only");

    let old0 = store.get_event("old0").await.unwrap().unwrap();
    let paused = old0
        .invocations
        .iter()
        .find(|i| i.plugin == "paused")
        .unwrap();
    assert_eq!(paused.status, InvocationStatus::Done);
    assert_eq!(paused.outcome.as_ref(), Some(&outcome));
    assert_eq!(paused.completed_ms, Some(now));
    let stats = store.plugin_stats().await.unwrap();
    let inv = &stats["paused"].invocations;
    assert_eq!(
        (inv.expired, inv.error, inv.pending, inv.parked),
        (2, 0, 1, 1),
        "expired is counted apart from errors: {stats:?}"
    );

    // The young one is still parked and comes back when unparked.
    assert_eq!(
        store
            .unpark_invocations(Some("paused"), None, now)
            .await
            .unwrap(),
        1
    );
    let back = store.lease_invocations(now, LEASE, 100).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(
        (back[0].event.id.as_str(), back[0].created_ms),
        ("old2", T0 + 2_000)
    );
    assert_eq!(expire("paused", now, 100).await, 0, "leased, not parked");
}
