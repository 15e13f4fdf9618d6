//! The slot scheduler's fairness rules, driven step by step.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;

use super::{Class, Slot, Slots};

fn now_or_never<T>(f: impl Future<Output = T>) -> Option<T> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

/// A waiter queued for `plugin` (spawned, so it is really waiting).
async fn queue(
    s: &Arc<Slots>,
    plugin: &'static str,
    class: Class,
) -> tokio::task::JoinHandle<Slot> {
    let before = s.waiting_for(plugin);
    let task = {
        let s = s.clone();
        tokio::spawn(async move { s.acquire(plugin, class).await })
    };
    while s.waiting_for(plugin) == before {
        tokio::task::yield_now().await;
    }
    task
}

fn free(s: &Slots) -> usize {
    s.lock().free
}

#[tokio::test]
async fn free_slots_are_taken_at_once() {
    let s = Slots::new(2);
    let a = now_or_never(s.acquire("a", Class::Healthy));
    let b = now_or_never(s.acquire("b", Class::Healthy));
    assert!(a.is_some() && b.is_some());
    assert!(now_or_never(s.acquire("c", Class::Healthy)).is_none());
}

#[tokio::test]
async fn a_backlog_of_one_plugin_does_not_hold_up_another() {
    let s = Slots::new(1);
    let held = s.acquire("busy", Class::Healthy).await;
    let mut backlog = Vec::new();
    for _ in 0..10 {
        backlog.push(queue(&s, "busy", Class::Healthy).await);
    }
    let other = queue(&s, "other", Class::Healthy).await;
    drop(held);
    // "busy" was first in turn; the next turn is "other"'s.
    drop(backlog.remove(0).await.unwrap());
    let other = other.await.unwrap();
    assert_eq!(s.waiting_for("busy"), 9, "other went before the rest");
    drop(other);
    for w in backlog {
        drop(w.await.unwrap());
    }
    assert_eq!(free(&s), 1);
}

#[tokio::test]
async fn failing_plugins_share_a_quarter_of_the_slots() {
    let s = Slots::new(8);
    let a = s.acquire("bad-1", Class::Failing).await;
    let b = s.acquire("bad-2", Class::Failing).await;
    assert!(
        now_or_never(s.acquire("bad-3", Class::Failing)).is_none(),
        "two of eight slots is the cap"
    );
    let healthy = now_or_never(s.acquire("good", Class::Healthy)).expect("a free slot");
    drop((a, b, healthy));
    assert_eq!(free(&s), 8);
    assert_eq!(s.lock().failing_held, 0);
}

#[tokio::test]
async fn classes_are_served_healthy_then_new_then_failing() {
    let s = Slots::new(4);
    let held: Vec<Slot> = futures_collect(&s, 4).await;
    let failing = queue(&s, "bad", Class::Failing).await;
    let new = queue(&s, "fresh", Class::New).await;
    let healthy = queue(&s, "good-2", Class::Healthy).await;
    let mut held = VecDeque::from(held);
    drop(held.pop_front());
    let h = healthy.await.unwrap();
    assert!(!new.is_finished() && !failing.is_finished());
    drop(held.pop_front());
    let n = new.await.unwrap();
    assert!(!failing.is_finished());
    drop(held.pop_front());
    let f = failing.await.unwrap();
    drop((h, n, f, held));
    assert_eq!(free(&s), 4);
    assert!(s.lock().running.is_empty());
}

async fn futures_collect(s: &Arc<Slots>, n: usize) -> Vec<Slot> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(s.acquire("good", Class::Healthy).await);
    }
    v
}

#[tokio::test]
async fn a_new_plugin_runs_one_job_at_a_time() {
    let s = Slots::new(4);
    let first = s.acquire("fresh", Class::New).await;
    assert!(
        now_or_never(s.acquire("fresh", Class::New)).is_none(),
        "a second run waits for the first"
    );
    let second = queue(&s, "fresh", Class::New).await;
    // Other plugins are not held up by the waiting one.
    let other = now_or_never(s.acquire("other", Class::New)).expect("another plugin runs");
    drop(first);
    let second = second.await.unwrap();
    drop((second, other));
    assert_eq!(free(&s), 4);
}

#[tokio::test]
async fn new_plugins_leave_a_slot_free() {
    let s = Slots::new(3);
    let a = s.acquire("new-1", Class::New).await;
    let b = s.acquire("new-2", Class::New).await;
    let third = queue(&s, "new-3", Class::New).await;
    let healthy = now_or_never(s.acquire("good", Class::Healthy)).expect("a free slot");
    drop(a);
    let c = third.await.unwrap();
    assert_eq!(s.lock().new_held, 2);
    drop((b, c, healthy));
    assert_eq!(free(&s), 3);
    assert_eq!(s.lock().new_held, 0);
}

#[tokio::test]
async fn new_and_failing_plugins_together_leave_a_slot_free() {
    let s = Slots::new(4);
    let new: Vec<_> = [
        s.acquire("new-1", Class::New).await,
        s.acquire("new-2", Class::New).await,
        s.acquire("new-3", Class::New).await,
    ]
    .into();
    // Within the failing plugins' own cap (1 of 4), but it would take the
    // last slot.
    assert!(now_or_never(s.acquire("bad", Class::Failing)).is_none());
    let failing = queue(&s, "bad", Class::Failing).await;
    assert_eq!(free(&s), 1);
    let healthy = now_or_never(s.acquire("good", Class::Healthy)).expect("the slot left free");
    drop(healthy);
    assert!(!failing.is_finished() && free(&s) == 1);
    drop(new);
    let failing = failing.await.unwrap();
    assert_eq!(s.lock().failing_held, 1);
    drop(failing);
    assert_eq!(free(&s), 4);
}

#[tokio::test]
async fn a_new_plugin_that_proved_healthy_runs_its_queued_jobs_at_once() {
    let s = Slots::new(3);
    let first = s.acquire("p", Class::New).await;
    let mut queued = Vec::new();
    for _ in 0..3 {
        queued.push(queue(&s, "p", Class::New).await);
    }
    // One at a time while new, although slots are free.
    assert_eq!(free(&s), 2);
    s.reclassify("p", Class::Healthy);
    assert_eq!(free(&s), 0, "two queued jobs got the free slots");
    assert_eq!(s.waiting_for("p"), 1);
    drop(first);
    assert_eq!(s.waiting_for("p"), 0);
    for job in queued {
        let slot = job.await.unwrap();
        assert_eq!(slot.class(), Class::Healthy);
    }
    assert_eq!((free(&s), s.lock().new_held), (3, 0));
}

#[tokio::test]
async fn a_plugin_that_started_failing_runs_its_queued_jobs_as_failing() {
    let s = Slots::new(4);
    let held: Vec<_> = futures_collect(&s, 4).await;
    let job = queue(&s, "p", Class::Healthy).await;
    s.reclassify("p", Class::Failing);
    let other = queue(&s, "other", Class::Healthy).await;
    drop(held);
    let other = other.await.unwrap();
    let job = job.await.unwrap();
    assert_eq!(
        (other.class(), job.class()),
        (Class::Healthy, Class::Failing)
    );
    assert_eq!(s.lock().failing_held, 1);
}

#[tokio::test]
async fn a_new_plugin_that_started_failing_still_runs_one_job_at_a_time() {
    let s = Slots::new(4);
    // Its first run ended (a trap) and its second, granted as new, runs;
    // the waiters behind it are moved to failing.
    let second = s.acquire("p", Class::New).await;
    let third = queue(&s, "p", Class::New).await;
    s.reclassify("p", Class::Failing);
    assert!(
        !third.is_finished() && free(&s) == 3,
        "ran next to its own run"
    );
    drop(second);
    let third = third.await.unwrap();
    assert_eq!(third.class(), Class::Failing);
}

#[tokio::test]
async fn a_waiter_that_gave_up_does_not_leak_its_slot() {
    let s = Slots::new(1);
    let held = s.acquire("a", Class::Healthy).await;
    let gone = queue(&s, "b", Class::Healthy).await;
    gone.abort();
    let _ = gone.await;
    drop(held);
    assert_eq!(free(&s), 1);
    assert!(now_or_never(s.acquire("c", Class::Healthy)).is_some());
}
