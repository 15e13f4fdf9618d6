//! Scenario for retention: only old events whose work is over go, with
//! everything that hangs off them.

use std::sync::Arc;

use crate::store::{NextStep, Store};

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
    assert_eq!(store.prune(cut, 2).await.unwrap(), 2, "at most `limit`");
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
        1,
        "then the dead letter"
    );
    assert!(store.get_event("old-failed").await.unwrap().is_none());
    assert_eq!(
        store.prune(cut, 100).await.unwrap(),
        0,
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
