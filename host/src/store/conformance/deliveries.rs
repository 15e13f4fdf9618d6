//! Scenarios for the delivery queue: attempts, retries, dead letters,
//! fencing and manual replay.

use std::sync::Arc;

use crate::store::{
    AckResult, Attempt, AttemptOutcome, CancelFilter, CancelResult, DeliveryStatus, NextStep,
    RetryFilter, RetryResult, Store,
};

use super::{LEASE, T0, deliveries_for, lease_all, request};

pub(super) fn attempt(started_ms: u64, code: Option<u16>, outcome: AttemptOutcome) -> Attempt {
    Attempt {
        started_ms,
        duration_ms: 12,
        status_code: code,
        error: (outcome != AttemptOutcome::Success).then(|| format!("{outcome:?} at {started_ms}")),
        // A receiver's refusal keeps its answer, in any script.
        response: (code.is_some() && outcome != AttemptOutcome::Success)
            .then(|| format!(r#"{{"error":"{outcome:?}","détail":"ошибка"}}"#)),
        outcome,
    }
}

/// A successful attempt started at `now`.
pub(super) fn success(now: u64) -> Attempt {
    attempt(now, Some(200), AttemptOutcome::Success)
}

/// A delivery is due when created, hidden while leased, due again at the
/// retry time an attempt asks for, and dead-lettered on `Failed`; every
/// attempt is logged in order; success ends it.
pub async fn delivery_retry_schedule_and_dead_letter(new_store: impl Fn() -> Arc<dyn Store>) {
    let store = new_store();
    let ids = deliveries_for(&*store, "e1", "p", 2, T0).await;
    let (doomed, lucky) = (&ids[0], &ids[1]);

    let jobs = lease_all(&*store, T0).await;
    assert_eq!(jobs.len(), 2);
    let job = jobs.iter().find(|j| &j.id == doomed).unwrap();
    assert_eq!(job.attempts_so_far, 0);
    assert_eq!(job.request, request(0));
    assert_eq!((job.plugin.as_str(), job.event_id.as_str()), ("p", "e1"));
    assert_eq!(job.created_ms, T0);
    assert!(
        lease_all(&*store, T0 + 1).await.is_empty(),
        "leased: hidden"
    );

    let first = attempt(T0 + 1, Some(503), AttemptOutcome::Status);
    let ack = store
        .record_attempt(
            doomed,
            &job.lease,
            first.clone(),
            NextStep::RetryAt(T0 + 5_000),
            T0 + 13,
        )
        .await
        .unwrap();
    assert_eq!(ack, AckResult::Applied);
    let rec = store.get_delivery(doomed).await.unwrap().unwrap();
    assert_eq!(rec.status, DeliveryStatus::Pending);
    assert_eq!(
        (rec.next_attempt_ms, rec.leased_until),
        (Some(T0 + 5_000), None)
    );
    assert_eq!(rec.updated_ms, T0 + 13);

    // The other delivery succeeds at once.
    let other = jobs.iter().find(|j| &j.id == lucky).unwrap();
    let ok = attempt(T0 + 2, Some(200), AttemptOutcome::Success);
    let ack = store
        .record_attempt(
            lucky,
            &other.lease,
            ok.clone(),
            NextStep::Succeeded,
            T0 + 14,
        )
        .await
        .unwrap();
    assert_eq!(ack, AckResult::Applied);
    let rec = store.get_delivery(lucky).await.unwrap().unwrap();
    assert_eq!(rec.status, DeliveryStatus::Succeeded);
    assert_eq!(
        (rec.attempts.clone(), rec.next_attempt_ms),
        (vec![ok], None)
    );

    assert_eq!(store.next_due_ms().await.unwrap(), Some(T0 + 5_000));
    assert!(
        lease_all(&*store, T0 + 4_999).await.is_empty(),
        "not due yet"
    );
    let retry = lease_all(&*store, T0 + 5_000).await;
    assert_eq!(retry.len(), 1);
    assert_eq!((&retry[0].id, retry[0].attempts_so_far), (doomed, 1));

    let second = attempt(T0 + 5_000, None, AttemptOutcome::Timeout);
    let ack = store
        .record_attempt(
            doomed,
            &retry[0].lease,
            second.clone(),
            NextStep::Failed("retries exhausted".into()),
            T0 + 5_030,
        )
        .await
        .unwrap();
    assert_eq!(ack, AckResult::Applied);
    let rec = store.get_delivery(doomed).await.unwrap().unwrap();
    assert_eq!(rec.status, DeliveryStatus::Failed);
    assert_eq!(rec.failure.as_deref(), Some("retries exhausted"));
    assert_eq!(rec.attempts, vec![first, second], "every attempt, in order");
    assert_eq!((rec.next_attempt_ms, rec.leased_until), (None, None));
    assert!(
        lease_all(&*store, u64::MAX / 2).await.is_empty(),
        "dead letters stay put"
    );
    assert_eq!(store.next_due_ms().await.unwrap(), None);

    // Settling twice with the same lease is refused, but logged.
    let again = attempt(T0 + 6_000, Some(500), AttemptOutcome::Status);
    let ack = store
        .record_attempt(
            doomed,
            &retry[0].lease,
            again,
            NextStep::RetryAt(T0),
            T0 + 6_000,
        )
        .await
        .unwrap();
    assert_eq!(ack, AckResult::LeaseLost);
    let rec = store.get_delivery(doomed).await.unwrap().unwrap();
    assert_eq!(
        (rec.status, rec.attempts.len()),
        (DeliveryStatus::Failed, 3)
    );

    let unknown = attempt(T0, None, AttemptOutcome::Network);
    let ack = store
        .record_attempt(
            "msg_nope",
            &retry[0].lease,
            unknown,
            NextStep::Succeeded,
            T0,
        )
        .await
        .unwrap();
    assert_eq!(ack, AckResult::NotFound);
    assert!(store.get_delivery("msg_nope").await.unwrap().is_none());
}

/// A holder whose lease expired and was taken over cannot change the
/// delivery (its attempt is still logged); release puts a delivery back
/// without an attempt.
pub async fn stale_delivery_lease_is_fenced(new_store: impl Fn() -> Arc<dyn Store>) {
    let store = new_store();
    let id = deliveries_for(&*store, "e1", "p", 1, T0).await.remove(0);

    let a = store.lease_deliveries(T0, 100, 10).await.unwrap().remove(0);
    let b = store
        .lease_deliveries(T0 + 100, LEASE, 10)
        .await
        .unwrap()
        .remove(0);
    assert_eq!((a.id.as_str(), b.id.as_str()), (id.as_str(), id.as_str()));
    assert_ne!(a.lease, b.lease);

    // A (stale) reports a failure after B took over: logged, not applied.
    let stale = attempt(T0 + 1, Some(502), AttemptOutcome::Status);
    let ack = store
        .record_attempt(&id, &a.lease, stale, NextStep::RetryAt(T0 + 200), T0 + 150)
        .await
        .unwrap();
    assert_eq!(ack, AckResult::LeaseLost);
    let rec = store.get_delivery(&id).await.unwrap().unwrap();
    assert_eq!(rec.status, DeliveryStatus::Pending);
    assert_eq!(rec.leased_until, Some(T0 + 100 + LEASE), "B still holds it");
    assert_eq!(rec.attempts.len(), 1);
    assert!(
        lease_all(&*store, T0 + 200).await.is_empty(),
        "A's retry time ignored"
    );
    assert_eq!(
        store.release_delivery(&id, &a.lease, T0).await.unwrap(),
        AckResult::LeaseLost
    );

    // B releases it (say, the host is paused by the breaker).
    let ack = store
        .release_delivery(&id, &b.lease, T0 + 9_000)
        .await
        .unwrap();
    assert_eq!(ack, AckResult::Applied);
    let rec = store.get_delivery(&id).await.unwrap().unwrap();
    assert_eq!(
        (rec.next_attempt_ms, rec.leased_until),
        (Some(T0 + 9_000), None)
    );
    assert_eq!(rec.attempts.len(), 1, "a release logs no attempt");
    assert_eq!(
        store.release_delivery(&id, &b.lease, T0).await.unwrap(),
        AckResult::LeaseLost,
        "a released lease is gone"
    );
    assert_eq!(
        store
            .release_delivery("msg_nope", &b.lease, T0)
            .await
            .unwrap(),
        AckResult::NotFound
    );
    assert!(lease_all(&*store, T0 + 8_999).await.is_empty());
    let c = lease_all(&*store, T0 + 9_000).await;
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].attempts_so_far, 1, "A's logged attempt counts");

    let ok = attempt(T0 + 9_000, Some(204), AttemptOutcome::Success);
    let ack = store
        .record_attempt(&id, &c[0].lease, ok, NextStep::Succeeded, T0 + 9_001)
        .await
        .unwrap();
    assert_eq!(ack, AckResult::Applied);
    assert_eq!(
        store.get_delivery(&id).await.unwrap().unwrap().status,
        DeliveryStatus::Succeeded
    );
}

/// Settle every leased job at `now` with `next`.
async fn settle_all(store: &dyn Store, now: u64, next: NextStep) {
    for job in lease_all(store, now).await {
        let outcome = match next {
            NextStep::Succeeded => AttemptOutcome::Success,
            _ => AttemptOutcome::Status,
        };
        let ack = store
            .record_attempt(
                &job.id,
                &job.lease,
                attempt(now, Some(500), outcome),
                next.clone(),
                now,
            )
            .await
            .unwrap();
        assert_eq!(ack, AckResult::Applied);
    }
}

/// A manual retry requeues a finished delivery (due now, fresh schedule,
/// log kept); pending ones are left alone; bulk retry honours its filter.
pub async fn manual_retry_requeues(new_store: impl Fn() -> Arc<dyn Store>) {
    let store = new_store();
    let a_old = deliveries_for(&*store, "e1", "a", 2, T0).await;
    settle_all(&*store, T0, NextStep::Failed("410 Gone".into())).await;
    let a_new = deliveries_for(&*store, "e2", "a", 1, T0 + 1_000).await;
    let b = deliveries_for(&*store, "e3", "b", 1, T0 + 1_000).await;
    settle_all(&*store, T0 + 1_000, NextStep::Failed("dead".into())).await;
    let ok = deliveries_for(&*store, "e4", "a", 1, T0 + 2_000).await;
    settle_all(&*store, T0 + 2_000, NextStep::Succeeded).await;
    let waiting = deliveries_for(&*store, "e5", "a", 1, T0 + 3_000).await;

    let now = T0 + 10_000;
    assert_eq!(
        store.retry_delivery(&waiting[0], now).await.unwrap(),
        RetryResult::AlreadyPending
    );
    assert_eq!(
        store.retry_delivery("msg_nope", now).await.unwrap(),
        RetryResult::NotFound
    );
    assert_eq!(
        store.retry_delivery(&ok[0], now).await.unwrap(),
        RetryResult::Requeued
    );
    let rec = store.get_delivery(&ok[0]).await.unwrap().unwrap();
    assert_eq!(rec.status, DeliveryStatus::Pending);
    assert_eq!(
        (rec.next_attempt_ms, rec.failure.clone()),
        (Some(now), None)
    );
    assert_eq!((rec.attempts.len(), rec.updated_ms), (1, now), "log kept");
    assert_eq!(
        store.retry_delivery(&ok[0], now).await.unwrap(),
        RetryResult::AlreadyPending
    );

    // Bulk: plugin a, failed, created in [T0 + 1_000, ∞) → only a_new.
    let filter = RetryFilter {
        plugin: Some("a".into()),
        from_ms: Some(T0 + 1_000),
        ..RetryFilter::default()
    };
    assert_eq!(
        store.retry_deliveries(filter.clone(), now).await.unwrap(),
        1
    );
    assert_eq!(
        store.retry_deliveries(filter, now).await.unwrap(),
        0,
        "now pending"
    );
    let pending = RetryFilter {
        status: DeliveryStatus::Pending,
        ..RetryFilter::default()
    };
    assert_eq!(store.retry_deliveries(pending, now).await.unwrap(), 0);
    // Created before T0 + 1_000, any plugin → a_old (2), not b.
    let old = RetryFilter {
        to_ms: Some(T0 + 1_000),
        ..RetryFilter::default()
    };
    assert_eq!(store.retry_deliveries(old, now).await.unwrap(), 2);
    assert_eq!(
        store.get_delivery(&b[0]).await.unwrap().unwrap().status,
        DeliveryStatus::Failed
    );

    let mut due: Vec<_> = lease_all(&*store, now).await;
    due.sort_by(|x, y| x.id.cmp(&y.id));
    let mut expected: Vec<_> = [&a_old[..], &a_new, &ok, &waiting].concat();
    expected.sort();
    let got: Vec<_> = due.iter().map(|j| j.id.clone()).collect();
    assert_eq!(got, expected);
    for job in &due {
        assert_eq!(job.attempts_so_far, 0, "a replay gets the full schedule");
    }
}

/// A parked delivery is handed out by no lease call and leaves no due
/// time, whatever the clock, until unparked; unparking skips the plugins
/// excepted, brings back each delivery at its scheduled time (or now, if
/// that passed), and counts no attempt; a stale lease cannot park.
pub async fn parked_deliveries_wait_until_unparked(new_store: impl Fn() -> Arc<dyn Store>) {
    let store = new_store();
    let a = deliveries_for(&*store, "ea", "a", 1, T0).await.remove(0);
    let b = deliveries_for(&*store, "eb", "b", 1, T0).await.remove(0);
    let jobs = lease_all(&*store, T0).await;
    assert_eq!(jobs.len(), 2);
    let job = |id: &str| jobs.iter().find(|j| j.id == id).unwrap();

    // b is sent once and scheduled for a retry at T0 + 50_000 first.
    let retried = store
        .record_attempt(
            &b,
            &job(&b).lease,
            attempt(T0, Some(503), AttemptOutcome::Status),
            NextStep::RetryAt(T0 + 50_000),
            T0,
        )
        .await
        .unwrap();
    assert_eq!(retried, AckResult::Applied);
    let b_job = store
        .lease_deliveries(T0 + 50_000, LEASE, 10)
        .await
        .unwrap();
    assert_eq!(b_job.len(), 1);

    assert_eq!(
        store.park_delivery(&a, &job(&a).lease).await.unwrap(),
        AckResult::Applied
    );
    assert_eq!(
        store.park_delivery(&b, &b_job[0].lease).await.unwrap(),
        AckResult::Applied
    );
    assert_eq!(
        store.park_delivery(&a, &job(&a).lease).await.unwrap(),
        AckResult::LeaseLost,
        "parked already: the lease is gone"
    );
    assert_eq!(
        store
            .park_delivery("msg_missing", &job(&a).lease)
            .await
            .unwrap(),
        AckResult::NotFound
    );
    let far = T0 + 10_000_000_000;
    assert!(
        store
            .lease_deliveries(far, LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.next_due_ms().await.unwrap(),
        None,
        "parked: never due"
    );

    // Unpark all but a's: b comes back at its scheduled retry time.
    let now = T0 + 60_000;
    assert_eq!(
        store
            .unpark_deliveries(&["a".into()], T0 + 1_000)
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.next_due_ms().await.unwrap(), Some(T0 + 50_000));
    let back = store.lease_deliveries(now, LEASE, 10).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(
        (back[0].id.as_str(), back[0].attempts_so_far),
        (b.as_str(), 1)
    );
    assert!(
        store
            .lease_deliveries(far, LEASE, 10)
            .await
            .unwrap()
            .iter()
            .all(|j| j.id != a)
    );

    // Then a's, due now (its scheduled time passed), no attempt counted.
    assert_eq!(store.unpark_deliveries(&[], now).await.unwrap(), 1);
    assert_eq!(store.unpark_deliveries(&[], now).await.unwrap(), 0);
    let back = store.lease_deliveries(now, LEASE, 10).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(
        (back[0].id.as_str(), back[0].attempts_so_far),
        (a.as_str(), 0)
    );
    let record = store.get_delivery(&a).await.unwrap().unwrap();
    assert!(record.attempts.is_empty());
    assert_eq!(record.status, DeliveryStatus::Pending);
}

/// Cancelling gives up on pending deliveries only: waiting, parked or in
/// flight (whose holder then cannot settle it, although its attempt is
/// logged, since it was sent), one by id or a plugin's in
/// a time range; a cancelled delivery is failed with a failure that says
/// so, leaves the queue, keeps its attempts, and a manual retry brings it
/// back.
pub async fn cancelled_deliveries_are_failed_and_fenced(new_store: impl Fn() -> Arc<dyn Store>) {
    let store = new_store();
    let ids = deliveries_for(&*store, "e1", "a", 3, T0).await;
    let later = deliveries_for(&*store, "e2", "a", 1, T0 + 1_000).await;
    let other = deliveries_for(&*store, "e3", "b", 1, T0).await;
    let jobs = lease_all(&*store, T0 + 1_000).await;
    assert_eq!(jobs.len(), 5);
    let job = |id: &str| jobs.iter().find(|j| j.id == id).unwrap();
    // ids[0] succeeds; ids[1] waits for a retry; ids[2] stays in flight.
    for (id, next) in [
        (&ids[0], NextStep::Succeeded),
        (&ids[1], NextStep::RetryAt(T0 + 60_000)),
    ] {
        let ack = store
            .record_attempt(id, &job(id).lease, success(T0 + 1), next, T0 + 1)
            .await
            .unwrap();
        assert_eq!(ack, AckResult::Applied);
    }

    assert_eq!(
        store.cancel_delivery(&ids[0], T0 + 2).await.unwrap(),
        CancelResult::NotPending
    );
    assert_eq!(
        store.cancel_delivery("msg_missing", T0 + 2).await.unwrap(),
        CancelResult::NotFound
    );
    assert_eq!(
        store.cancel_delivery(&ids[2], T0 + 2).await.unwrap(),
        CancelResult::Cancelled
    );
    // The attempt in flight finishes after the cancel: fenced.
    let late = store
        .record_attempt(
            &ids[2],
            &job(&ids[2]).lease,
            success(T0 + 3),
            NextStep::Succeeded,
            T0 + 3,
        )
        .await
        .unwrap();
    assert_eq!(late, AckResult::LeaseLost);
    let cancelled = store.get_delivery(&ids[2]).await.unwrap().unwrap();
    assert_eq!(cancelled.status, DeliveryStatus::Failed);
    assert_eq!(
        cancelled.failure.as_deref(),
        Some("cancelled by the operator")
    );
    // The request did go out, so the log shows it; it settles nothing.
    assert_eq!(cancelled.attempts.len(), 1);

    // Bulk: a's pending deliveries created before T0 + 1_000 (ids[1]);
    // the later one and b's stay.
    let n = store
        .cancel_deliveries(
            CancelFilter {
                plugin: "a".into(),
                from_ms: None,
                to_ms: Some(T0 + 1_000),
            },
            T0 + 4,
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let waiting = store.get_delivery(&ids[1]).await.unwrap().unwrap();
    assert_eq!(waiting.status, DeliveryStatus::Failed);
    assert_eq!(waiting.attempts.len(), 1, "its attempts are kept");
    assert_eq!(
        store.get_delivery(&later[0]).await.unwrap().unwrap().status,
        DeliveryStatus::Pending
    );
    assert_eq!(
        store.get_delivery(&other[0]).await.unwrap().unwrap().status,
        DeliveryStatus::Pending
    );
    // Nothing cancelled is handed out again, however late.
    let far = T0 + 10_000_000;
    let due: Vec<_> = store
        .lease_deliveries(far, LEASE, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert!(!due.contains(&ids[1]) && !due.contains(&ids[2]), "{due:?}");

    // A manual retry brings a cancelled delivery back.
    assert_eq!(
        store.retry_delivery(&ids[2], far).await.unwrap(),
        RetryResult::Requeued
    );
    let back = store.lease_deliveries(far, LEASE, 10).await.unwrap();
    assert!(back.iter().any(|j| j.id == ids[2]));
}

/// An attempt that was in flight when the operator cancelled and then
/// retried its delivery lands after the retry: it is logged (it was sent)
/// but counts in no round, so the fresh schedule the retry promised starts
/// at its first step.
pub async fn a_stale_attempt_counts_in_no_later_round(new_store: impl Fn() -> Arc<dyn Store>) {
    let store = new_store();
    let id = deliveries_for(&*store, "e1", "p", 1, T0).await.remove(0);
    let in_flight = lease_all(&*store, T0).await.remove(0);
    assert_eq!(
        store.cancel_delivery(&id, T0 + 1).await.unwrap(),
        CancelResult::Cancelled
    );
    store.retry_delivery(&id, T0 + 2).await.unwrap();
    let late = attempt(T0, Some(503), AttemptOutcome::Status);
    let ack = store
        .record_attempt(
            &id,
            &in_flight.lease,
            late,
            NextStep::RetryAt(T0 + 9),
            T0 + 3,
        )
        .await
        .unwrap();
    assert_eq!(ack, AckResult::LeaseLost);
    let again = lease_all(&*store, T0 + 4).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts_so_far, 0, "a fresh round");
    let rec = store.get_delivery(&id).await.unwrap().unwrap();
    assert_eq!(rec.attempts.len(), 1, "the late attempt is logged");

    // The other order: the fresh round's holder has the delivery when the
    // stale attempt lands. It still counts in no round but its own.
    let id = deliveries_for(&*store, "e2", "p", 1, T0).await.remove(0);
    let stale = lease_all(&*store, T0).await.remove(0);
    assert_eq!(stale.id, id);
    store.cancel_delivery(&id, T0 + 1).await.unwrap();
    store.retry_delivery(&id, T0 + 2).await.unwrap();
    let holder = lease_all(&*store, T0 + 3).await.remove(0);
    assert_eq!(
        (holder.id.as_str(), holder.attempts_so_far),
        (id.as_str(), 0)
    );
    let late = attempt(T0, Some(503), AttemptOutcome::Status);
    let ack = store
        .record_attempt(&id, &stale.lease, late, NextStep::RetryAt(T0 + 9), T0 + 4)
        .await
        .unwrap();
    assert_eq!(ack, AckResult::LeaseLost);
    let own = attempt(T0 + 3, Some(503), AttemptOutcome::Status);
    let ack = store
        .record_attempt(&id, &holder.lease, own, NextStep::RetryAt(T0 + 5), T0 + 5)
        .await
        .unwrap();
    assert_eq!(ack, AckResult::Applied);
    let next = lease_all(&*store, T0 + 5).await.remove(0);
    assert_eq!(
        next.attempts_so_far, 1,
        "only the holder's attempt counts in the round"
    );
}

/// Bulk cancel and bulk retry reach every matching delivery however many
/// there are (a backend may work through them in parts), and count each
/// once.
pub async fn bulk_operations_reach_every_match(new_store: impl Fn() -> Arc<dyn Store>) {
    let store = new_store();
    let mut ids = Vec::new();
    for e in 0..3 {
        ids.extend(deliveries_for(&*store, &format!("bulk-{e}"), "a", 900, T0).await);
    }
    let other = deliveries_for(&*store, "bulk-b", "b", 3, T0).await;
    let cancelled = store
        .cancel_deliveries(
            CancelFilter {
                plugin: "a".into(),
                from_ms: None,
                to_ms: None,
            },
            T0 + 1,
        )
        .await
        .unwrap();
    assert_eq!(cancelled, 2_700);
    let failed = |plugin: &str| RetryFilter {
        plugin: Some(plugin.into()),
        ..RetryFilter::default()
    };
    for id in [&ids[0], &ids[1_500], &ids[2_699]] {
        let d = store.get_delivery(id).await.unwrap().unwrap();
        assert_eq!(d.status, DeliveryStatus::Failed, "{id}");
    }
    assert_eq!(
        store.get_delivery(&other[0]).await.unwrap().unwrap().status,
        DeliveryStatus::Pending
    );
    assert_eq!(
        store.retry_deliveries(failed("a"), T0 + 2).await.unwrap(),
        2_700
    );
    assert_eq!(
        store.retry_deliveries(failed("a"), T0 + 2).await.unwrap(),
        0
    );
    let due = store.lease_deliveries(T0 + 2, LEASE, 5_000).await.unwrap();
    assert_eq!(due.len(), 2_703, "every delivery is due again");
}
