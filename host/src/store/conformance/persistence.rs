//! Scenarios for the plugin key-value store, the remembered plugin pauses,
//! and durability across a restart.

use std::sync::Arc;

use crate::store::{
    AckResult, AttemptOutcome, Completion, Inserted, InvocationStatus, NextStep, PluginHold,
    PluginPause, Store,
};

use super::{LEASE, T0, fire, new_event, request};

/// Threads hammering one counter.
const THREADS: usize = 8;
/// Increments per thread.
const INCREMENTS: usize = 1000;

/// Namespaces are isolated; set/get/delete behave; increments are atomic
/// under contention (8 threads × 1000 = 8000) and use the 8-byte
/// little-endian encoding of `MemoryKv`.
pub async fn kv_is_namespaced_and_atomic(new_store: impl Fn() -> Arc<dyn Store>) {
    let store = new_store();
    let kv = store.kv();
    // The kv interface blocks: drive it from blocking threads, as the Wasm
    // host imports do.
    tokio::task::spawn_blocking(move || {
        assert_eq!(kv.get("a", "k").unwrap(), None);
        kv.set("a", "k", b"one", u64::MAX).unwrap();
        kv.set("a", "empty", b"", u64::MAX).unwrap();
        kv.set("a", "ключ", &[0, 255, 7], u64::MAX).unwrap();
        assert_eq!(kv.get("a", "k").unwrap(), Some(b"one".to_vec()));
        assert_eq!(kv.get("b", "k").unwrap(), None, "namespaces are isolated");
        assert_eq!(kv.get("a", "empty").unwrap(), Some(vec![]));
        assert_eq!(kv.get("a", "ключ").unwrap(), Some(vec![0, 255, 7]));
        kv.set("a", "k", b"two", u64::MAX).unwrap();
        assert_eq!(kv.get("a", "k").unwrap(), Some(b"two".to_vec()));
        kv.delete("a", "k").unwrap();
        kv.delete("a", "never-set").unwrap();
        assert_eq!(kv.get("a", "k").unwrap(), None);

        kv.set("a", "n", b"hello", u64::MAX).unwrap();
        assert_eq!(
            kv.increment("a", "n", 3, u64::MAX).unwrap(),
            3,
            "non-counter → 0"
        );
        assert_eq!(kv.increment("a", "n", -10, u64::MAX).unwrap(), -7);
        assert_eq!(
            kv.increment("b", "n", 1, u64::MAX).unwrap(),
            1,
            "separate counter"
        );
        assert_eq!(
            kv.get("a", "n").unwrap(),
            Some((-7i64).to_le_bytes().to_vec())
        );
        kv.set("a", "max", &i64::MAX.to_le_bytes(), u64::MAX)
            .unwrap();
        assert_eq!(
            kv.increment("a", "max", 1, u64::MAX).unwrap(),
            i64::MIN,
            "wraps"
        );

        std::thread::scope(|s| {
            for _ in 0..THREADS {
                s.spawn(|| {
                    for _ in 0..INCREMENTS {
                        kv.increment("hot", "counter", 1, u64::MAX).unwrap();
                    }
                });
            }
        });
        let total = (THREADS * INCREMENTS) as i64;
        assert_eq!(
            kv.get("hot", "counter").unwrap(),
            Some(total.to_le_bytes().to_vec())
        );
        assert_eq!(kv.increment("hot", "counter", 0, u64::MAX).unwrap(), total);
    })
    .await
    .expect("kv scenario panicked");
}

/// Each namespace's usage follows every set, overwrite, increment and
/// delete; a write that would take a namespace over its quota is refused
/// whole (nothing written), while one that does not grow it goes ahead;
/// `clear_kv` deletes by prefix, at most `limit` at a time, in one
/// namespace only.
pub async fn kv_quota_and_clearing(new_store: impl Fn() -> Arc<dyn Store>) {
    use crate::store::{KvError, KvUsage};
    let store = new_store();
    let kv = store.kv();
    tokio::task::spawn_blocking(move || {
        let usage = |ns: &str| kv.usage(ns).unwrap();
        assert_eq!(usage("p"), KvUsage::default());
        kv.set("p", "seen:a", b"1", 40).unwrap(); // 6 + 1
        kv.set("p", "seen:b", b"1", 40).unwrap(); // 6 + 1
        kv.increment("p", "n", 5, 40).unwrap(); // 1 + 8
        kv.set("p", "ключ", b"12", 40).unwrap(); // 8 (UTF-8) + 2
        assert_eq!(usage("p"), KvUsage { keys: 4, bytes: 33 });
        kv.set("p", "seen:a", b"1234", 40).unwrap(); // +3
        assert_eq!(usage("p"), KvUsage { keys: 4, bytes: 36 });
        // 36 + 10 > 40: refused, and nothing written.
        match kv.set("p", "seen:c", b"1234", 40) {
            Err(KvError::Full {
                used: 36,
                limit: 40,
                needed: 10,
            }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(kv.get("p", "seen:c").unwrap(), None);
        assert!(matches!(
            kv.increment("p", "m", 1, 40),
            Err(KvError::Full { .. })
        ));
        assert_eq!(kv.get("p", "m").unwrap(), None);
        // An existing counter stays 8 bytes: it may still count.
        assert_eq!(kv.increment("p", "n", 1, 40).unwrap(), 6);
        // Shrinking is allowed over a lowered quota; others are unaffected.
        kv.set("p", "seen:a", b"", 10).unwrap();
        kv.set("q", "seen:a", b"1234", 40).unwrap();
        kv.delete("p", "ключ").unwrap();
        assert_eq!(usage("p"), KvUsage { keys: 3, bytes: 22 });
        assert_eq!(usage("q"), KvUsage { keys: 1, bytes: 10 });
    })
    .await
    .expect("kv scenario panicked");

    assert_eq!(store.clear_kv("p", "seen:", 1).await.unwrap(), 1);
    assert_eq!(store.clear_kv("p", "seen:", 10).await.unwrap(), 1);
    assert_eq!(store.clear_kv("p", "seen:", 10).await.unwrap(), 0);
    let stats = store.plugin_stats().await.unwrap();
    assert_eq!(stats["p"].kv, KvUsage { keys: 1, bytes: 9 });
    assert_eq!(stats["q"].kv, KvUsage { keys: 1, bytes: 10 });
    assert_eq!(store.clear_kv("p", "", 10).await.unwrap(), 1);
    let stats = store.plugin_stats().await.unwrap();
    assert!(stats.get("p").is_none_or(|s| s.kv == KvUsage::default()));
    let kv = store.kv();
    let q = tokio::task::spawn_blocking(move || kv.get("q", "seen:a").unwrap())
        .await
        .unwrap();
    assert_eq!(q, Some(b"1234".to_vec()));
}

/// `list_kv` pages through one namespace's keys with a prefix, in key
/// order (bytes order, whatever the script), each with its value's size
/// and head; other namespaces and keys outside the prefix never show.
pub async fn kv_is_listed_by_prefix_in_pages(new_store: impl Fn() -> Arc<dyn Store>) {
    let store = new_store();
    let kv = store.kv();
    tokio::task::spawn_blocking(move || {
        for key in [
            "seen:b", "seen:a", "seen:é", "seen;", "seen", "seem:z", "count",
        ] {
            kv.set("p", key, key.as_bytes(), u64::MAX).unwrap();
        }
        kv.set("p", "seen:big", &[7u8; 5000], u64::MAX).unwrap();
        kv.set("q", "seen:a", b"other plugin", u64::MAX).unwrap();
    })
    .await
    .unwrap();
    let keys = |entries: &[crate::store::KvEntry]| {
        entries.iter().map(|e| e.key.clone()).collect::<Vec<_>>()
    };
    let first = store.list_kv("p", "seen:", None, 2, 4).await.unwrap();
    assert_eq!(keys(&first), ["seen:a", "seen:b"]);
    assert_eq!(
        (first[0].value_bytes, &first[0].head[..]),
        (6, &b"seen"[..])
    );
    let rest = store
        .list_kv("p", "seen:", Some("seen:b"), 10, 4)
        .await
        .unwrap();
    assert_eq!(keys(&rest), ["seen:big", "seen:é"]);
    assert_eq!((rest[0].value_bytes, rest[0].head.len()), (5000, 4));
    let all = store.list_kv("p", "", None, 100, 0).await.unwrap();
    assert_eq!(
        keys(&all),
        [
            "count", "seem:z", "seen", "seen:a", "seen:b", "seen:big", "seen:é", "seen;"
        ]
    );
    assert!(all.iter().all(|e| e.head.is_empty()));
    assert!(
        store
            .list_kv("p", "zz", None, 10, 4)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_kv("r", "", None, 10, 4)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Everything acknowledged survives closing and reopening the storage:
/// events, jobs (done, in flight, not yet due), deliveries and their
/// scheduled retries, attempts and kv; work in flight when the first
/// instance went away is handed out again once its lease expires.
///
/// `open` must connect to the *same* storage on every call.
pub async fn survives_restart(open: impl Fn() -> Arc<dyn Store>) {
    let first = open();
    let inserted = first
        .insert_events(
            vec![
                new_event("e1", &["a", "b"], T0),
                new_event("later", &["a"], T0 + 1_000_000),
            ],
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        inserted,
        [
            Inserted::New { jobs: vec![] },
            Inserted::New { jobs: vec![] }
        ]
    );
    let jobs = first.lease_invocations(T0, 10_000, 10).await.unwrap();
    assert_eq!(jobs.len(), 2);
    let a = jobs.iter().find(|j| j.plugin == "a").unwrap();
    let done = first
        .complete_invocation(a.id, fire(), vec![request(0), request(1)], T0 + 1, None)
        .await
        .unwrap();
    let Completion::Recorded { delivery_ids, .. } = done else {
        panic!("expected Recorded, got {done:?}");
    };
    let deliveries = first.lease_deliveries(T0 + 1, LEASE, 10).await.unwrap();
    let d0 = deliveries.iter().find(|d| d.id == delivery_ids[0]).unwrap();
    let failed_once = super::deliveries::attempt(T0 + 1, Some(503), AttemptOutcome::Status);
    let ack = first
        .record_attempt(
            &d0.id,
            &d0.lease,
            failed_once,
            NextStep::RetryAt(T0 + 300_000),
            T0 + 2,
        )
        .await
        .unwrap();
    assert_eq!(ack, AckResult::Applied);
    let kv = first.kv();
    tokio::task::spawn_blocking(move || {
        kv.set("a", "k", b"v", u64::MAX).unwrap();
        kv.increment("a", "n", 5, u64::MAX).unwrap();
    })
    .await
    .unwrap();
    let pause = PluginPause {
        identity: "digest-of-a".into(),
        until_ms: T0 + 5_000,
        pause_ms: 5_000,
    };
    first
        .set_plugin_pause("a", Some(pause.clone()))
        .await
        .unwrap();
    let hold = PluginHold {
        since_ms: T0,
        reason: Some("CRM migration".into()),
    };
    first
        .set_plugin_hold("b", Some(hold.clone()))
        .await
        .unwrap();
    drop(first);

    let second = open();
    let pauses = second.plugin_pauses().await.unwrap();
    assert_eq!(pauses.get("a"), Some(&pause), "a pause survives a restart");
    let holds = second.plugin_holds().await.unwrap();
    assert_eq!(holds.get("b"), Some(&hold), "a hold survives a restart");
    let e1 = second.get_event("e1").await.unwrap().expect("event kept");
    let inv = |p: &str| {
        e1.invocations
            .iter()
            .find(|i| i.plugin == p)
            .unwrap()
            .clone()
    };
    assert_eq!(inv("a").status, InvocationStatus::Done);
    assert_eq!(inv("a").outcome, Some(fire()));
    assert_eq!(inv("b").status, InvocationStatus::Pending);
    assert_eq!(inv("b").leased_until, Some(T0 + 10_000));
    let ids: Vec<_> = e1.deliveries.iter().map(|d| d.id.clone()).collect();
    assert_eq!(ids, delivery_ids);
    assert_eq!(e1.deliveries[0].attempts.len(), 1);
    assert_eq!(e1.deliveries[0].request, request(0));
    assert!(second.get_event("later").await.unwrap().is_some());
    let dup = second
        .insert_events(vec![new_event("e1", &["a"], T0 + 5)], None)
        .await
        .unwrap();
    assert_eq!(dup, [Inserted::Duplicate], "idempotency survives a restart");

    // The in-flight invocation comes back when its lease expires.
    assert!(
        second
            .lease_invocations(T0 + 9_999, LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let back = second
        .lease_invocations(T0 + 10_000, LEASE, 10)
        .await
        .unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!((back[0].plugin.as_str(), back[0].attempt), ("b", 2));

    // So does the in-flight delivery; the scheduled retry keeps its time.
    let expiry = T0 + 1 + LEASE;
    assert!(
        second
            .lease_deliveries(expiry - 1, LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let d1 = second
        .lease_deliveries(expiry, 1_000_000, 10)
        .await
        .unwrap();
    assert_eq!(d1.len(), 1);
    assert_eq!((&d1[0].id, d1[0].attempts_so_far), (&delivery_ids[1], 0));
    let d0 = second
        .lease_deliveries(T0 + 300_000, LEASE, 10)
        .await
        .unwrap();
    assert_eq!(d0.len(), 1);
    assert_eq!((&d0[0].id, d0[0].attempts_so_far), (&delivery_ids[0], 1));

    let kv = second.kv();
    tokio::task::spawn_blocking(move || {
        assert_eq!(kv.get("a", "k").unwrap(), Some(b"v".to_vec()));
        assert_eq!(kv.increment("a", "n", 1, u64::MAX).unwrap(), 6);
    })
    .await
    .unwrap();
}

/// Pauses, the breakers' and the operators', are remembered per plugin:
/// set, replaced, forgotten (forgetting twice, or a pause never set, is
/// fine), and never mixed up between plugins or between the two kinds.
pub async fn plugin_pauses_are_remembered(new_store: impl Fn() -> Arc<dyn Store>) {
    let store = new_store();
    assert!(store.plugin_pauses().await.unwrap().is_empty());
    let pause = |identity: &str, until_ms: u64, pause_ms: u64| PluginPause {
        identity: identity.into(),
        until_ms,
        pause_ms,
    };
    store
        .set_plugin_pause("a", Some(pause("ida", T0 + 5_000, 5_000)))
        .await
        .unwrap();
    store
        .set_plugin_pause("b", Some(pause("idb", T0 + 7_000, 7_000)))
        .await
        .unwrap();
    // A failed probe doubles the pause: the row is replaced.
    store
        .set_plugin_pause("a", Some(pause("ida", T0 + 20_000, 10_000)))
        .await
        .unwrap();
    let all = store.plugin_pauses().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all["a"], pause("ida", T0 + 20_000, 10_000));
    assert_eq!(all["b"], pause("idb", T0 + 7_000, 7_000));

    store.set_plugin_pause("a", None).await.unwrap();
    store.set_plugin_pause("a", None).await.unwrap();
    store.set_plugin_pause("never", None).await.unwrap();
    let all = store.plugin_pauses().await.unwrap();
    assert_eq!(all.keys().collect::<Vec<_>>(), ["b"]);

    // Operators' pauses are kept apart from the breakers'.
    assert!(store.plugin_holds().await.unwrap().is_empty());
    let hold = |since_ms: u64, reason: Option<&str>| PluginHold {
        since_ms,
        reason: reason.map(str::to_owned),
    };
    store
        .set_plugin_hold("a", Some(hold(T0, None)))
        .await
        .unwrap();
    store
        .set_plugin_hold("a", Some(hold(T0 + 1, Some("bad data"))))
        .await
        .unwrap();
    store
        .set_plugin_hold("c", Some(hold(T0 + 2, Some("ключ \u{1F600}"))))
        .await
        .unwrap();
    let holds = store.plugin_holds().await.unwrap();
    assert_eq!(holds.len(), 2);
    assert_eq!(holds["a"], hold(T0 + 1, Some("bad data")));
    assert_eq!(holds["c"], hold(T0 + 2, Some("ключ \u{1F600}")));
    assert_eq!(
        store.plugin_pauses().await.unwrap().len(),
        1,
        "pauses untouched"
    );
    store.set_plugin_hold("a", None).await.unwrap();
    store.set_plugin_hold("never", None).await.unwrap();
    let holds = store.plugin_holds().await.unwrap();
    assert_eq!(holds.keys().collect::<Vec<_>>(), ["c"]);
}
