//! The conformance suite every [`Store`] backend must pass.
//!
//! Each function is one scenario taking a factory, `impl Fn() -> Arc<dyn
//! Store>`, that returns a fresh, empty store on every call (except
//! [`survives_restart`], whose factory reopens the *same* storage). A
//! backend's tests call each one from a `#[tokio::test]`; see
//! `store/sqlite/tests.rs`. The scenarios panic on failure, like tests.
//!
//! Scenarios: [`idempotent_ingest`], [`events_round_trip_exactly`],
//! [`invocation_lease_expiry_redelivers`],
//! [`parked_invocations_wait_until_unparked`],
//! [`parked_invocations_expire_when_too_old`],
//! [`complete_invocation_is_atomic_and_idempotent`],
//! [`delivery_retry_schedule_and_dead_letter`],
//! [`stale_delivery_lease_is_fenced`], [`manual_retry_requeues`],
//! [`parked_deliveries_wait_until_unparked`],
//! [`an_id_taken_by_another_source_is_refused`],
//! [`cancelled_deliveries_are_failed_and_fenced`],
//! [`a_stale_attempt_counts_in_no_later_round`],
//! [`pagination_is_stable`], [`events_list_newest_first_with_their_status`],
//! [`kv_is_namespaced_and_atomic`], [`kv_quota_and_clearing`],
//! [`kv_is_listed_by_prefix_in_pages`],
//! [`plugin_pauses_are_remembered`], [`replayed_decisions_run_again`],
//! [`stats_and_queue_depth`], [`jobs_leased_by_their_creating_write`],
//! [`prune_deletes_only_finished_old_events`],
//! [`prune_gets_past_a_backlog_of_pending_events`],
//! [`survives_restart`].
//!
//! The functions are generic, so nothing of this module reaches the release
//! binary unless a test instantiates it.

mod deliveries;
mod handoff;
mod invocations;
mod management;
mod persistence;
mod replay;
mod retention;

use crate::model::{Event, Method, OutboundRequest};

use super::{Completion, InvocationOutcome, NewEvent, Store, Verdict};

pub use deliveries::{
    a_stale_attempt_counts_in_no_later_round, bulk_operations_reach_every_match,
    cancelled_deliveries_are_failed_and_fenced, delivery_retry_schedule_and_dead_letter,
    manual_retry_requeues, parked_deliveries_wait_until_unparked, stale_delivery_lease_is_fenced,
};
pub use handoff::jobs_leased_by_their_creating_write;
pub use invocations::{
    an_id_taken_by_another_source_is_refused, complete_invocation_is_atomic_and_idempotent,
    events_round_trip_exactly, idempotent_ingest, invocation_lease_expiry_redelivers,
    parked_invocations_expire_when_too_old, parked_invocations_wait_until_unparked,
};
pub use management::{
    events_list_newest_first_with_their_status, pagination_is_stable, stats_and_queue_depth,
};
pub use persistence::{
    kv_is_listed_by_prefix_in_pages, kv_is_namespaced_and_atomic, kv_quota_and_clearing,
    plugin_pauses_are_remembered, survives_restart,
};
pub use replay::replayed_decisions_run_again;
pub use retention::{
    prune_deletes_only_finished_old_events, prune_gets_past_a_backlog_of_pending_events,
};

/// A lease long enough never to expire by accident in a scenario.
const LEASE: u64 = 60_000;
/// A start time far from zero, so arithmetic mistakes show.
const T0: u64 = 1_700_000_000_000;

/// An event with a few properties.
fn event(id: &str) -> Event {
    let mut properties = serde_json::Map::new();
    properties.insert("email".into(), "a@b.co".into());
    properties.insert("n".into(), 7.into());
    Event {
        id: id.to_owned(),
        name: "email.unsubscribed".to_owned(),
        user_id: Some("u-1".to_owned()),
        timestamp_ms: T0 - 5,
        properties,
    }
}

fn new_event(id: &str, plugins: &[&str], received_ms: u64) -> NewEvent {
    NewEvent {
        parked: Vec::new(),
        event: event(id),
        plugins: plugins.iter().map(|p| (*p).to_owned()).collect(),
        received_ms,
        source: None,
    }
}

/// A request whose fields all differ by `n`, with a placeholder secret.
fn request(n: usize) -> OutboundRequest {
    OutboundRequest {
        method: if n.is_multiple_of(2) {
            Method::Post
        } else {
            Method::Put
        },
        url: format!("https://api.example.com/v1/items/{n}?q=1"),
        headers: vec![
            ("authorization".into(), "Bearer {{secret:TOKEN}}".into()),
            ("x-n".into(), n.to_string()),
            ("x-dup".into(), "a".into()),
            ("x-dup".into(), "b".into()),
        ],
        body: format!("{{\"n\":{n},\"bytes\":\"\u{e9}\"}}").into_bytes(),
    }
}

fn fire() -> InvocationOutcome {
    InvocationOutcome {
        verdict: Verdict::Fire,
        duration_us: 1234,
        fuel: Some(99),
    }
}

/// Insert `event_id` for `plugin` at `now`, run its invocation, and fire
/// `n` requests; returns the delivery ids. Expects no other due invocation.
async fn deliveries_for(
    store: &dyn Store,
    event_id: &str,
    plugin: &str,
    n: usize,
    now: u64,
) -> Vec<String> {
    store
        .insert_events(vec![new_event(event_id, &[plugin], now)], None)
        .await
        .expect("insert");
    let jobs = store
        .lease_invocations(now, LEASE, 10)
        .await
        .expect("lease");
    assert_eq!(jobs.len(), 1, "exactly the new invocation is due");
    let requests = (0..n).map(request).collect();
    match store
        .complete_invocation(jobs[0].id, fire(), requests, now, None)
        .await
        .expect("complete")
    {
        Completion::Recorded { delivery_ids, .. } => delivery_ids,
        other => panic!("expected Recorded, got {other:?}"),
    }
}

/// Deliveries due at `now`, by id, leased with [`LEASE`].
async fn lease_all(store: &dyn Store, now: u64) -> Vec<super::DeliveryJob> {
    store
        .lease_deliveries(now, LEASE, 1000)
        .await
        .expect("lease deliveries")
}
