//! Scenario for running a plugin's completed decisions again.

use std::sync::Arc;

use crate::runtime::ErrorKind;
use crate::store::{Completion, InvocationOutcome, InvocationStatus, ReplayFilter, Store, Verdict};

use super::{LEASE, T0, fire, new_event};

fn error() -> InvocationOutcome {
    InvocationOutcome {
        verdict: Verdict::Error {
            kind: ErrorKind::Trap,
            message: "unreachable".into(),
        },
        duration_us: 10,
        fuel: None,
    }
}

fn skip() -> InvocationOutcome {
    InvocationOutcome {
        verdict: Verdict::Skip {
            reason: "not now".into(),
        },
        duration_us: 10,
        fuel: None,
    }
}

fn filter(plugin: &str, errors: bool, skips: bool) -> ReplayFilter {
    ReplayFilter {
        plugin: plugin.into(),
        errors,
        skips,
        event_id: None,
        from_ms: None,
        to_ms: None,
    }
}

/// Replay every step of `filter` with windows of `scan`; (requeued, steps).
async fn replay_all(store: &dyn Store, filter: &ReplayFilter, scan: usize, now: u64) -> (u64, u32) {
    let (mut requeued, mut steps, mut cursor) = (0, 0, None::<String>);
    loop {
        let page = store
            .replay_invocations(filter, cursor.as_deref(), scan, now)
            .await
            .unwrap();
        requeued += page.requeued;
        steps += 1;
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return (requeued, steps),
        }
    }
}

/// The outcome of `plugin`'s invocation for `event`, and its status.
async fn decision(
    store: &dyn Store,
    event: &str,
    plugin: &str,
) -> (InvocationStatus, Option<InvocationOutcome>) {
    let detail = store.get_event(event).await.unwrap().expect("event");
    let inv = detail
        .invocations
        .iter()
        .find(|i| i.plugin == plugin)
        .expect("invocation");
    (inv.status, inv.outcome.clone())
}

/// Only `error` and `skip` decisions of the named plugin, within the time
/// range or the one event, become pending again with their decision
/// cleared and attempts back to 1 on the next lease; `fire` decisions and
/// other plugins are untouched; small scan windows take several steps and
/// find the same; a replayed invocation is then completed as usual.
pub async fn replayed_decisions_run_again(new_store: impl Fn() -> Arc<dyn Store>) {
    let store = new_store();
    // e0..e3: a errors; e4..e7: a skips; e8..e11: a fires. b always errors.
    // e0..e5 accepted at T0, e6..e11 a second later.
    let events: Vec<_> = (0..12)
        .map(|i| {
            new_event(
                &format!("e{i}"),
                &["a", "b"],
                if i < 6 { T0 } else { T0 + 1000 },
            )
        })
        .collect();
    store.insert_events(events, None).await.unwrap();
    let jobs = store
        .lease_invocations(T0 + 1000, LEASE, 100)
        .await
        .unwrap();
    assert_eq!(jobs.len(), 24);
    for job in &jobs {
        let n: usize = job.event.id[1..].parse().unwrap();
        let outcome = match (job.plugin.as_str(), n) {
            ("b", _) | (_, 0..=3) => error(),
            (_, 4..=7) => skip(),
            _ => fire(),
        };
        let done = store
            .complete_invocation(job.id, outcome, vec![], T0 + 1500, None)
            .await
            .unwrap();
        assert!(matches!(done, Completion::Recorded { .. }), "{done:?}");
    }

    // a's errors, in one step.
    let now = T0 + 2000;
    let page = store
        .replay_invocations(&filter("a", true, false), None, 10_000, now)
        .await
        .unwrap();
    assert_eq!((page.requeued, page.cursor), (4, None));
    assert_eq!(
        decision(store.as_ref(), "e0", "a").await,
        (InvocationStatus::Pending, None)
    );
    assert_eq!(
        decision(store.as_ref(), "e0", "b").await.1,
        Some(error()),
        "other plugin"
    );
    assert_eq!(
        decision(store.as_ref(), "e4", "a").await.1,
        Some(skip()),
        "not asked"
    );
    assert_eq!(
        decision(store.as_ref(), "e8", "a").await.1,
        Some(fire()),
        "fire stays"
    );
    // Pending now: a second replay finds nothing more.
    assert_eq!(
        replay_all(store.as_ref(), &filter("a", true, false), 10_000, now)
            .await
            .0,
        0
    );
    // Fire decisions are never replayed, even when asking for everything.
    let (all_a, _) = replay_all(store.as_ref(), &filter("a", true, true), 10_000, now).await;
    assert_eq!(all_a, 4, "the four skips, not the fires");
    assert_eq!(decision(store.as_ref(), "e8", "a").await.1, Some(fire()));

    // They come back as fresh jobs, due at once, and settle as usual.
    let again = store.lease_invocations(now, LEASE, 100).await.unwrap();
    let mut ids: Vec<_> = again
        .iter()
        .map(|j| (j.plugin.clone(), j.event.id.clone()))
        .collect();
    ids.sort();
    let want: Vec<_> = (0..8).map(|i| ("a".to_owned(), format!("e{i}"))).collect();
    assert_eq!(ids, want);
    assert!(again.iter().all(|j| j.attempt == 1), "attempts start over");
    for job in &again {
        let done = store
            .complete_invocation(job.id, fire(), vec![], now + 1, None)
            .await
            .unwrap();
        assert!(matches!(done, Completion::Recorded { .. }), "{done:?}");
    }
    assert_eq!(decision(store.as_ref(), "e0", "a").await.1, Some(fire()));

    // b's errors accepted from T0 + 1000 on (e6..e11), in windows of 5
    // invocation ids: several steps, the same total.
    let mut later = filter("b", true, false);
    later.from_ms = Some(T0 + 1000);
    let (n, steps) = replay_all(store.as_ref(), &later, 5, now).await;
    assert_eq!(n, 6);
    assert!(steps >= 4, "{steps} steps over 24 invocations");
    assert_eq!(
        decision(store.as_ref(), "e5", "b").await.1,
        Some(error()),
        "before from_ms"
    );
    // ...and before T0 + 1000 (e0..e5), one event at a time.
    let mut one = filter("b", true, false);
    one.to_ms = Some(T0 + 1000);
    one.event_id = Some("e5".into());
    assert_eq!(replay_all(store.as_ref(), &one, 5, now).await, (1, 1));
    one.event_id = Some("no-such-event".into());
    assert_eq!(replay_all(store.as_ref(), &one, 5, now).await, (0, 1));
    one.event_id = Some("e7".into());
    assert_eq!(
        replay_all(store.as_ref(), &one, 5, now).await.0,
        0,
        "outside to_ms"
    );
}
