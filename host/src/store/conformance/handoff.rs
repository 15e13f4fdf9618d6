//! Scenario for jobs leased by the write that creates them (the in-process
//! hand-off): they behave exactly like jobs leased by a lease call.

use std::sync::Arc;

use crate::store::{AckResult, Completion, Inserted, JobLease, NextStep, Store};

use super::deliveries::success;
use super::{LEASE, T0, event, fire, new_event, request};

/// `insert_events` and `complete_invocation` with a [`JobLease`] return the
/// new jobs leased: invisible to lease calls until the lease ends, settled
/// with the token they came with, and handed out again (attempt 2, new
/// token) if their holder lets the lease end. Duplicates get no job.
pub async fn jobs_leased_by_their_creating_write(new_store: impl Fn() -> Arc<dyn Store>) {
    let store = new_store();
    let lease = JobLease {
        now_ms: T0,
        lease_ms: LEASE,
    };
    let inserted = store
        .insert_events(
            vec![
                new_event("e1", &["a", "b", "a"], T0),
                new_event("e1", &["a"], T0),
                new_event("e2", &[], T0),
            ],
            Some(lease),
        )
        .await
        .expect("insert");
    assert_eq!(inserted.len(), 3);
    assert!(inserted[1] == Inserted::Duplicate, "{:?}", inserted[1]);
    assert_eq!(inserted[2], Inserted::New { jobs: vec![] });
    let jobs = inserted[0].clone().into_jobs();
    let plugins: Vec<&str> = jobs.iter().map(|j| j.plugin.as_str()).collect();
    assert_eq!(plugins, ["a", "b"], "one job per distinct plugin");
    for job in &jobs {
        assert_eq!(job.event, event("e1"));
        assert_eq!(job.attempt, 1);
        assert_eq!(job.lease_until_ms, T0 + LEASE, "the lease's end");
    }
    assert!(
        store
            .lease_invocations(T0 + LEASE - 1, LEASE, 10)
            .await
            .unwrap()
            .is_empty(),
        "a handed job is leased"
    );

    // Completed with the lease: the deliveries come back leased.
    let (a, b) = (&jobs[0], &jobs[1]);
    let done = store
        .complete_invocation(
            a.id,
            fire(),
            vec![request(0), request(1)],
            T0 + 5,
            Some(lease),
        )
        .await
        .expect("complete");
    let Completion::Recorded {
        delivery_ids,
        leased,
    } = done
    else {
        panic!("expected Recorded, got {done:?}");
    };
    assert_eq!(leased.len(), 2);
    for (i, job) in leased.iter().enumerate() {
        assert_eq!(job.id, delivery_ids[i]);
        assert_eq!(job.request, request(i));
        assert_eq!((job.plugin.as_str(), job.event_id.as_str()), ("a", "e1"));
        assert_eq!(job.attempts_so_far, 0);
        assert_eq!(job.lease_until_ms, T0 + LEASE);
    }
    assert!(
        store
            .lease_deliveries(T0 + LEASE - 1, LEASE, 10)
            .await
            .unwrap()
            .is_empty(),
        "a handed delivery is leased"
    );
    let ack = store
        .record_attempt(
            &leased[0].id,
            &leased[0].lease,
            success(T0 + 6),
            NextStep::Succeeded,
            T0 + 6,
        )
        .await
        .unwrap();
    assert_eq!(ack, AckResult::Applied, "settled with its handed token");

    // Nobody settles the other delivery or job `b`: both come back when
    // their lease ends, with a new token.
    let later = T0 + 5 + LEASE;
    let again = store.lease_deliveries(later, LEASE, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, leased[1].id);
    assert_ne!(again[0].lease, leased[1].lease);
    assert_eq!(again[0].lease_until_ms, later + LEASE);
    let stale = store
        .record_attempt(
            &leased[1].id,
            &leased[1].lease,
            success(later),
            NextStep::Succeeded,
            later,
        )
        .await
        .unwrap();
    assert_eq!(
        stale,
        AckResult::LeaseLost,
        "the handed token is fenced off"
    );
    let jobs_again = store.lease_invocations(later, LEASE, 10).await.unwrap();
    assert_eq!(jobs_again.len(), 1);
    assert_eq!((jobs_again[0].id, jobs_again[0].attempt), (b.id, 2));
    assert_eq!(jobs_again[0].lease_until_ms, later + LEASE);

    // A handed job given back is due at once, its lease not counted.
    let released = store
        .release_invocation(b.id, &jobs_again[0].lease, later + 1)
        .await
        .unwrap();
    assert_eq!(released, AckResult::Applied);
    let third = store.lease_invocations(later + 1, LEASE, 10).await.unwrap();
    assert_eq!((third.len(), third[0].attempt), (1, 2));
}
