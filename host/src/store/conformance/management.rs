//! Scenarios for the management reads: listing deliveries and events,
//! statistics, queue depth.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::runtime::ErrorKind;
use crate::store::{
    AckResult, DeliveryQuery, DeliveryStatus, EventQuery, InvocationOutcome, InvocationStats,
    KvUsage, NextStep, PluginStats, QueueDepth, StatusCounts, Store, StoreError, Verdict,
};

use super::{LEASE, T0, deliveries_for, fire, lease_all, new_event, request};

async fn page(store: &dyn Store, query: DeliveryQuery) -> (Vec<String>, Option<String>) {
    let page = store.list_deliveries(query).await.expect("list");
    (
        page.items.into_iter().map(|d| d.id).collect(),
        page.next_cursor,
    )
}

/// Listings are newest first; following `next_cursor` visits every
/// delivery exactly once, and deliveries created meanwhile do not shift
/// later pages. Filters apply; a foreign cursor is refused.
pub async fn pagination_is_stable(new_store: impl Fn() -> Arc<dyn Store>) {
    let store = new_store();
    let mut created = Vec::new();
    for i in 0..2u64 {
        let plugin = if i.is_multiple_of(2) { "a" } else { "b" };
        created.extend(deliveries_for(&*store, &format!("e{i}"), plugin, 5, T0 + i).await);
    }
    for job in lease_all(&*store, T0 + 2).await {
        let ok = super::deliveries::success(T0 + 2);
        let ack = store
            .record_attempt(&job.id, &job.lease, ok, NextStep::Succeeded, T0 + 2)
            .await
            .unwrap();
        assert_eq!(ack, AckResult::Applied);
    }
    for i in 2..5u64 {
        let plugin = if i.is_multiple_of(2) { "a" } else { "b" };
        created.extend(deliveries_for(&*store, &format!("e{i}"), plugin, 5, T0 + i).await);
    }
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();

    let q = |cursor: Option<String>| DeliveryQuery {
        limit: 10,
        cursor,
        ..DeliveryQuery::default()
    };
    let (p1, c1) = page(&*store, q(None)).await;
    assert_eq!(p1, newest_first[..10]);
    let c1 = c1.expect("more pages");

    // New deliveries arrive between page reads.
    let late = deliveries_for(&*store, "late", "a", 3, T0 + 50).await;

    let (p2, c2) = page(&*store, q(Some(c1.clone()))).await;
    assert_eq!(p2, newest_first[10..20]);
    let (p3, c3) = page(&*store, q(c2)).await;
    assert_eq!(p3, newest_first[20..]);
    assert_eq!(c3, None, "last page");
    let (again, _) = page(&*store, q(Some(c1))).await;
    assert_eq!(again, p2, "re-reading a page gives the same page");

    let (fresh, _) = page(&*store, q(None)).await;
    let expected: Vec<String> = late
        .iter()
        .rev()
        .chain(&newest_first)
        .take(10)
        .cloned()
        .collect();
    assert_eq!(
        fresh, expected,
        "a new first page starts with the newcomers"
    );

    let (all, none) = page(&*store, DeliveryQuery::default()).await;
    assert_eq!(
        (all.len(), none),
        (28, None),
        "limit 0 means the default page size"
    );

    let succeeded = DeliveryQuery {
        status: Some(DeliveryStatus::Succeeded),
        limit: 4,
        ..DeliveryQuery::default()
    };
    let (s1, sc) = page(&*store, succeeded.clone()).await;
    let (s2, sc) = page(
        &*store,
        DeliveryQuery {
            cursor: sc,
            ..succeeded.clone()
        },
    )
    .await;
    let (s3, sc) = page(
        &*store,
        DeliveryQuery {
            cursor: sc,
            ..succeeded
        },
    )
    .await;
    assert_eq!([s1, s2, s3].concat(), newest_first[15..]);
    assert_eq!(sc, None);

    let b_pending = DeliveryQuery {
        status: Some(DeliveryStatus::Pending),
        plugin: Some("b".into()),
        ..DeliveryQuery::default()
    };
    let (bp, _) = page(&*store, b_pending).await;
    assert_eq!(bp, newest_first[5..10], "e3 is the only pending event of b");
    let detail = store
        .list_deliveries(DeliveryQuery {
            limit: 1,
            ..DeliveryQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        detail.items[0].request,
        request(2),
        "items are full records"
    );

    // One plugin, every status: a's deliveries are e0's (succeeded), e2's
    // and e4's (pending) and the late ones, newest first across statuses.
    let of_a: Vec<String> = late
        .iter()
        .rev()
        .chain(newest_first[..5].iter())
        .chain(newest_first[10..15].iter())
        .chain(newest_first[20..].iter())
        .cloned()
        .collect();
    let mut pages = Vec::new();
    let mut cursor = None;
    loop {
        let (items, next) = page(
            &*store,
            DeliveryQuery {
                plugin: Some("a".into()),
                limit: 4,
                cursor,
                ..DeliveryQuery::default()
            },
        )
        .await;
        assert!(items.len() <= 4);
        pages.extend(items);
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, of_a, "a plugin's pages across statuses");

    let bad = DeliveryQuery {
        cursor: Some("garbage!".into()),
        ..DeliveryQuery::default()
    };
    assert!(matches!(
        store.list_deliveries(bad).await,
        Err(StoreError::InvalidCursor)
    ));
}

/// Per-plugin counts by outcome and status; queue depth distinguishes
/// pending from due; next due time covers both queues.
pub async fn stats_and_queue_depth(new_store: impl Fn() -> Arc<dyn Store>) {
    let store = new_store();
    assert!(store.plugin_stats().await.unwrap().is_empty());
    assert_eq!(store.queue_depth(T0).await.unwrap(), QueueDepth::default());
    assert_eq!(store.next_due_ms().await.unwrap(), None);

    store
        .insert_events(
            vec![
                new_event("e1", &["a", "b"], T0),
                new_event("e2", &["a"], T0 + 100),
            ],
            None,
        )
        .await
        .unwrap();
    let depth = store.queue_depth(T0).await.unwrap();
    assert_eq!((depth.invocations_pending, depth.invocations_due), (3, 2));

    let jobs = store.lease_invocations(T0, LEASE, 10).await.unwrap();
    assert_eq!(jobs.len(), 2);
    let depth = store.queue_depth(T0).await.unwrap();
    assert_eq!(
        (depth.invocations_pending, depth.invocations_due),
        (3, 0),
        "in flight"
    );
    for job in jobs {
        let (outcome, requests) = if job.plugin == "a" {
            (fire(), vec![request(0), request(1)])
        } else {
            let skip = Verdict::Skip {
                reason: "no".into(),
            };
            (
                InvocationOutcome {
                    verdict: skip,
                    ..fire()
                },
                vec![],
            )
        };
        store
            .complete_invocation(job.id, outcome, requests, T0 + 10, None)
            .await
            .unwrap();
    }
    let e2 = store.lease_invocations(T0 + 100, LEASE, 10).await.unwrap();
    let error = Verdict::Error {
        kind: ErrorKind::Trap,
        message: "unreachable".into(),
    };
    store
        .complete_invocation(
            e2[0].id,
            InvocationOutcome {
                verdict: error,
                ..fire()
            },
            vec![],
            T0 + 100,
            None,
        )
        .await
        .unwrap();

    let one = store.lease_deliveries(T0 + 100, LEASE, 1).await.unwrap();
    assert_eq!(one.len(), 1, "limit respected");
    let ok = super::deliveries::success(T0 + 100);
    store
        .record_attempt(&one[0].id, &one[0].lease, ok, NextStep::Succeeded, T0 + 100)
        .await
        .unwrap();
    store
        .insert_events(vec![new_event("e3", &["b"], T0 + 500)], None)
        .await
        .unwrap();

    let expected = BTreeMap::from([
        (
            "a".to_owned(),
            PluginStats {
                invocations: InvocationStats {
                    pending: 0,
                    parked: 0,
                    fire: 1,
                    skip: 0,
                    error: 1,
                    expired: 0,
                },
                deliveries: StatusCounts {
                    pending: 1,
                    succeeded: 1,
                    failed: 0,
                },
                kv: KvUsage::default(),
            },
        ),
        (
            "b".to_owned(),
            PluginStats {
                invocations: InvocationStats {
                    pending: 1,
                    skip: 1,
                    ..InvocationStats::default()
                },
                deliveries: StatusCounts::default(),
                kv: KvUsage { keys: 2, bytes: 13 },
            },
        ),
        (
            // A plugin with kv entries only.
            "c".to_owned(),
            PluginStats {
                kv: KvUsage { keys: 1, bytes: 2 },
                ..PluginStats::default()
            },
        ),
    ]);
    let kv = store.kv();
    tokio::task::spawn_blocking(move || {
        kv.set("b", "k", b"abc", u64::MAX).unwrap();
        kv.increment("b", "n", 1, u64::MAX).unwrap();
        kv.set("c", "x", b"y", u64::MAX).unwrap();
    })
    .await
    .unwrap();
    assert_eq!(store.plugin_stats().await.unwrap(), expected);

    let at = |now| store.queue_depth(now);
    let (before, after) = (at(T0 + 5).await.unwrap(), at(T0 + 500).await.unwrap());
    assert_eq!(
        before,
        QueueDepth {
            invocations_pending: 1,
            invocations_due: 0,
            deliveries_pending: 1,
            deliveries_due: 0,
        }
    );
    assert_eq!(
        after,
        QueueDepth {
            invocations_pending: 1,
            invocations_due: 1,
            deliveries_pending: 1,
            deliveries_due: 1,
        }
    );
    assert_eq!(store.next_due_ms().await.unwrap(), Some(T0 + 10));
}

/// Events list newest first with where their work stands; filters by name
/// and user; pages follow the cursor without gaps or repeats, also when a
/// page looks at a small window (and comes back short, even empty).
pub async fn events_list_newest_first_with_their_status(new_store: impl Fn() -> Arc<dyn Store>) {
    let store = new_store();
    // e0..e9; odd ones named "order.paid" for user u-1, even ones
    // "user.login" for u-2. e0 gets a delivery that succeeds.
    let events: Vec<_> = (0..10)
        .map(|i| {
            let mut e = new_event(&format!("e{i}"), &["p"], T0 + i);
            if i % 2 == 1 {
                e.event.name = "order.paid".into();
            } else {
                e.event.user_id = Some("u-2".into());
                e.event.name = "user.login".into();
            }
            e
        })
        .collect();
    store.insert_events(events, None).await.unwrap();
    let jobs = store.lease_invocations(T0 + 10, LEASE, 100).await.unwrap();
    let e0 = jobs.iter().find(|j| j.event.id == "e0").unwrap();
    store
        .complete_invocation(e0.id, fire(), vec![request(0)], T0 + 11, None)
        .await
        .unwrap();
    let d = lease_all(&*store, T0 + 12).await.remove(0);
    store
        .record_attempt(
            &d.id,
            &d.lease,
            super::deliveries::success(T0 + 12),
            NextStep::Succeeded,
            T0 + 12,
        )
        .await
        .unwrap();

    let all = store.list_events(EventQuery::default()).await.unwrap();
    let ids: Vec<_> = all.items.iter().map(|s| s.event.id.as_str()).collect();
    assert_eq!(
        ids,
        ["e9", "e8", "e7", "e6", "e5", "e4", "e3", "e2", "e1", "e0"]
    );
    assert_eq!(all.next_cursor, None);
    let first = all.items.last().unwrap();
    assert_eq!((first.pending, first.received_ms), (false, T0));
    assert_eq!(
        first.deliveries,
        StatusCounts {
            pending: 0,
            succeeded: 1,
            failed: 0
        }
    );
    assert!(all.items[0].pending, "e9's decision is still pending");
    assert_eq!(all.items[0].event, {
        let mut e = super::event("e9");
        e.name = "order.paid".into();
        e
    });

    // Filters, in pages of 2 looking at windows of 3 events.
    let mut seen = Vec::new();
    let (mut cursor, mut pages) = (None, 0);
    loop {
        let page = store
            .list_events(EventQuery {
                name: Some("user.login".into()),
                user_id: Some("u-2".into()),
                limit: 2,
                cursor: cursor.clone(),
                scan: 3,
            })
            .await
            .unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().map(|s| s.event.id));
        pages += 1;
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ["e8", "e6", "e4", "e2", "e0"]);
    assert!(pages >= 4, "{pages} pages");
    let none = store
        .list_events(EventQuery {
            user_id: Some("nobody".into()),
            ..EventQuery::default()
        })
        .await
        .unwrap();
    assert!(none.items.is_empty() && none.next_cursor.is_none());
    let bad = store
        .list_events(EventQuery {
            cursor: Some("not-a-cursor".into()),
            ..EventQuery::default()
        })
        .await;
    assert!(matches!(bad, Err(StoreError::InvalidCursor)), "{bad:?}");
}
