//! Scenario for retention: only old events whose work is over go, with
//! everything that hangs off them.

use std::sync::Arc;

use crate::store::{NewEvent, NextStep, Pruned, Store};

use super::deliveries::success;
use super::{LEASE, T0, deliveries_for, lease_all, new_event};

/// `prune` deletes events received before the cut-off whose invocations
/// and deliveries are all settled, oldest first and at most `limit` per
/// call; it keeps newer events and old ones with a pending invocation
/// (parked included) or a pending delivery, and their rows stay readable.
pub async fn prune_deletes_only_finished_old_events(new_store: impl Fn() -> Arc<dyn Store>) {
    let store = new_store();
    // Three old events whose work is over: delivered, skipped (no job
    // left), and fired with its delivery dead-lettered.
    let done = deliveries_for(&*store, "old-done", "p", 1, T0).await;
    let due = lease_all(&*store, T0).await;
    store
        .record_attempt(
            &done[0],
            &due[0].lease,
            success(T0),
            NextStep::Succeeded,
            T0,
        )
        .await
        .unwrap();
    deliveries_for(&*store, "old-none", "p", 0, T0 + 1).await;
    let failed = deliveries_for(&*store, "old-failed", "p", 1, T0 + 2).await;
    let due = lease_all(&*store, T0 + 2).await;
    store
        .record_attempt(
            &failed[0],
            &due[0].lease,
            success(T0 + 2),
            NextStep::Failed("gave up".into()),
            T0 + 2,
        )
        .await
        .unwrap();
    // An old event whose delivery waits for a retry (and, further down,
    // one whose invocation never ran).
    let retrying = deliveries_for(&*store, "old-retrying", "p", 1, T0 + 3).await;
    let due = lease_all(&*store, T0 + 3).await;
    store
        .record_attempt(
            &retrying[0],
            &due[0].lease,
            success(T0 + 3),
            NextStep::RetryAt(T0 + LEASE * 10),
            T0 + 3,
        )
        .await
        .unwrap();
    // A finished event received after the cut-off.
    deliveries_for(&*store, "new-none", "p", 0, T0 + 100).await;
    store
        .insert_events(vec![new_event("old-unrun", &["q"], T0 + 4)], None)
        .await
        .unwrap();

    let cut = T0 + 50;
    let first = store.prune(cut, 2).await.unwrap();
    assert_eq!(first.deleted, 2, "at most `limit`");
    assert!(first.more, "stopped by its limit");
    for gone in ["old-done", "old-none"] {
        assert!(
            store.get_event(gone).await.unwrap().is_none(),
            "{gone} pruned (oldest first)"
        );
    }
    assert!(
        store.get_delivery(&done[0]).await.unwrap().is_none(),
        "its delivery too"
    );
    assert_eq!(
        store.prune(cut, 100).await.unwrap(),
        Pruned {
            deleted: 1,
            more: false
        },
        "then the dead letter, and the pass is over"
    );
    assert!(store.get_event("old-failed").await.unwrap().is_none());
    assert_eq!(
        store.prune(cut, 100).await.unwrap(),
        Pruned::default(),
        "nothing else may go"
    );
    for kept in ["old-retrying", "old-unrun", "new-none"] {
        assert!(
            store.get_event(kept).await.unwrap().is_some(),
            "{kept} kept"
        );
    }
    let pending = store
        .get_delivery(&retrying[0])
        .await
        .unwrap()
        .expect("kept");
    assert_eq!(pending.attempts.len(), 1, "with its attempt log");
    assert_eq!(
        store.queue_depth(T0 + 5).await.unwrap().invocations_pending,
        1
    );
}

/// A run of old events with work pending longer than one call looks at
/// (a paused plugin's backlog) does not hide the finished events behind
/// it: successive calls go on past it, each looking at a bounded part, and
/// the pass ends with `more` false. The next pass starts over, so events
/// whose work ends later go too.
pub async fn prune_gets_past_a_backlog_of_pending_events(new_store: impl Fn() -> Arc<dyn Store>) {
    let store = new_store();
    // Parked: pending, and never leased by the steps below.
    let held: Vec<_> = (0..300)
        .map(|i| NewEvent {
            parked: vec!["paused".to_owned()],
            ..new_event(&format!("held-{i}"), &[], T0)
        })
        .collect();
    store.insert_events(held, None).await.unwrap();
    deliveries_for(&*store, "behind", "p", 0, T0 + 1).await;
    let cut = T0 + 50;
    let (mut deleted, mut calls) = (0, 0);
    loop {
        let pruned = store.prune(cut, 10).await.unwrap();
        deleted += pruned.deleted;
        calls += 1;
        if !pruned.more {
            break;
        }
        assert!(calls < 100, "a pass ends");
    }
    assert_eq!(deleted, 1, "the finished event behind the backlog");
    assert!(
        calls > 1,
        "each call looked at a bounded part ({calls} calls)"
    );
    assert!(store.get_event("behind").await.unwrap().is_none());
    assert!(store.get_event("held-299").await.unwrap().is_some());
    // A new pass starts from the oldest again.
    deliveries_for(&*store, "later", "p", 0, T0 + 2).await;
    let mut deleted = 0;
    loop {
        let pruned = store.prune(cut, 10).await.unwrap();
        deleted += pruned.deleted;
        if !pruned.more {
            break;
        }
    }
    assert_eq!(deleted, 1);
}
