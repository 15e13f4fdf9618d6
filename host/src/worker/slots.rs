//! Executor slots handed out fairly between plugins.
//!
//! Plugins run on a few blocking threads (2×cores). A plain semaphore would
//! serve waiting jobs first come, first served, so a burst of jobs for a
//! plugin that runs to its deadline every time (an infinite loop) would
//! make every other plugin's jobs wait behind the whole burst. Instead each
//! job asks for a slot in its plugin's [`Class`]:
//!
//! - waiters are queued per plugin, and a freed slot goes round-robin to
//!   the next plugin with waiters, so one plugin's backlog costs another at
//!   most one turn per round;
//! - classes are served in order: [`Class::Healthy`], then [`Class::New`],
//!   then [`Class::Failing`];
//! - a new plugin (none of its runs has ended yet) runs one job at a time,
//!   and new plugins together leave at least one slot free, so plugins
//!   that never work cannot fill every slot before their first failure is
//!   even seen;
//! - a failing plugin runs one job at a time, not next to any other run of
//!   its own, and failing plugins together hold at most a quarter of the
//!   slots (at least one): one that spins to its deadline or builds huge
//!   outputs can take at most that share of the CPU from the others;
//! - new and failing plugins together leave at least one slot free.
//!
//! With 2 slots or more, at least one is always left to healthy plugins.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// How a plugin is scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    /// Its runs end well.
    Healthy,
    /// None of its runs has ended yet (just loaded, or reloaded with a
    /// change).
    New,
    /// Its breaker has seen recent runs stopped by the sandbox.
    Failing,
}

impl Class {
    fn index(self) -> usize {
        match self {
            Class::Healthy => 0,
            Class::New => 1,
            Class::Failing => 2,
        }
    }
}

/// The slots; shared behind an `Arc`.
pub(super) struct Slots {
    total: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Slots not held by anyone.
    free: usize,
    /// Slots held by failing plugins' runs.
    failing_held: usize,
    /// Slots held by new plugins' runs.
    new_held: usize,
    /// Slots held per plugin (only plugins holding some).
    running: HashMap<String, usize>,
    /// Waiters per plugin, oldest first.
    waiting: HashMap<String, VecDeque<Waiter>>,
    /// Plugins with waiters, in turn order, per class of their oldest
    /// waiter.
    turns: [VecDeque<String>; 3],
}

struct Waiter {
    class: Class,
    grant: oneshot::Sender<Slot>,
}

/// A held slot; dropping it passes it to the next waiter in turn.
pub(super) struct Slot {
    slots: Arc<Slots>,
    plugin: String,
    class: Class,
    /// False for a slot that was never handed out (its waiter had gone).
    armed: bool,
}

impl Slots {
    pub(super) fn new(total: usize) -> Arc<Self> {
        let total = total.max(1);
        Arc::new(Self {
            total,
            state: Mutex::new(State {
                free: total,
                ..State::default()
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Most slots failing plugins may hold together.
    fn failing_cap(&self) -> usize {
        (self.total / 4).max(1)
    }

    /// Most slots new and failing plugins may hold together: all but one
    /// (when there are more than one), so a healthy plugin never waits for
    /// a round of untrusted runs. (A cap per class is not enough: 3 new
    /// plugins' first runs and a failing plugin's run, each up to its
    /// deadline, filled all 4 slots at start-up.)
    fn untrusted_cap(&self) -> usize {
        (self.total - 1).max(1)
    }

    /// How many of `plugin`'s jobs are waiting for a slot.
    pub(super) fn waiting_for(&self, plugin: &str) -> usize {
        self.lock().waiting.get(plugin).map_or(0, VecDeque::len)
    }

    /// Wait for a slot for a job of `plugin`, scheduled as `class`.
    pub(super) async fn acquire(self: &Arc<Self>, plugin: &str, class: Class) -> Slot {
        let rx = {
            let mut st = self.lock();
            let nobody_ahead = st.turns[..=class.index()].iter().all(VecDeque::is_empty);
            if st.free > 0 && nobody_ahead && self.may_run(&st, plugin, class) {
                return self.take(&mut st, plugin, class);
            }
            let (tx, rx) = oneshot::channel();
            let queue = st.waiting.entry(plugin.to_owned()).or_default();
            let first = queue.is_empty();
            queue.push_back(Waiter { class, grant: tx });
            if first {
                st.turns[class.index()].push_back(plugin.to_owned());
            }
            // Those ahead may be unable to run now (a new plugin whose one
            // run is in progress, failing plugins at their cap) while a
            // slot is free: hand it to whoever may take it.
            self.grant(&mut st);
            rx
        };
        // The sender stays in `waiting` until a slot is granted, and the
        // state outlives every waiter (each holds an `Arc` to it).
        rx.await.expect("slot waiters are granted, never dropped")
    }

    /// Schedule `plugin`'s waiting jobs as `class` from now on: its runs
    /// have shown what it is since they queued. Without this, the jobs a
    /// new plugin queued before its first run ended would still run one at
    /// a time, each waiting its turn behind every other new and failing
    /// plugin's run, long after the plugin proved healthy.
    pub(super) fn reclassify(self: &Arc<Self>, plugin: &str, class: Class) {
        let mut st = self.lock();
        let Some(queue) = st.waiting.get_mut(plugin) else {
            return;
        };
        let was = queue.front().map(|w| w.class);
        for waiter in queue.iter_mut() {
            waiter.class = class;
        }
        if was != Some(class) {
            // A plugin with waiters has one turn, in its front waiter's class.
            for turns in &mut st.turns {
                turns.retain(|p| p != plugin);
            }
            st.turns[class.index()].push_back(plugin.to_owned());
        }
        self.grant(&mut st);
    }

    fn may_run(&self, st: &State, plugin: &str, class: Class) -> bool {
        let untrusted_room = st.new_held + st.failing_held < self.untrusted_cap();
        match class {
            Class::Healthy => true,
            Class::New => untrusted_room && !st.running.contains_key(plugin),
            Class::Failing => {
                untrusted_room
                    && !st.running.contains_key(plugin)
                    && st.failing_held < self.failing_cap()
            }
        }
    }

    fn take(self: &Arc<Self>, st: &mut State, plugin: &str, class: Class) -> Slot {
        st.free -= 1;
        *st.running.entry(plugin.to_owned()).or_default() += 1;
        match class {
            Class::Healthy => {}
            Class::New => st.new_held += 1,
            Class::Failing => st.failing_held += 1,
        }
        Slot {
            slots: self.clone(),
            plugin: plugin.to_owned(),
            class,
            armed: true,
        }
    }

    fn give_back(st: &mut State, plugin: &str, class: Class) {
        st.free += 1;
        match class {
            Class::Healthy => {}
            Class::New => st.new_held -= 1,
            Class::Failing => st.failing_held -= 1,
        }
        if let Some(n) = st.running.get_mut(plugin) {
            *n -= 1;
            if *n == 0 {
                st.running.remove(plugin);
            }
        }
    }

    /// The next plugin in turn whose oldest waiter may run now, taken off
    /// its turn queue.
    fn next_in_turn(&self, st: &mut State) -> Option<String> {
        for class in 0..st.turns.len() {
            for _ in 0..st.turns[class].len() {
                let Some(plugin) = st.turns[class].pop_front() else {
                    break;
                };
                let front = st.waiting[&plugin].front().map(|w| w.class);
                if front.is_some_and(|c| self.may_run(st, &plugin, c)) {
                    return Some(plugin);
                }
                st.turns[class].push_back(plugin);
            }
        }
        None
    }

    /// Hand free slots to waiters in turn.
    fn grant(self: &Arc<Self>, st: &mut State) {
        while st.free > 0 {
            let Some(plugin) = self.next_in_turn(st) else {
                return;
            };
            let queue = st.waiting.get_mut(&plugin).expect("a turn has waiters");
            let waiter = queue.pop_front().expect("a turn has waiters");
            match queue.front().map(|w| w.class) {
                None => {
                    st.waiting.remove(&plugin);
                }
                // Its remaining waiters may be of another class (the
                // breaker changed its mind meanwhile); the next one decides.
                Some(next) => st.turns[next.index()].push_back(plugin.clone()),
            }
            let slot = self.take(st, &plugin, waiter.class);
            if let Err(mut unclaimed) = waiter.grant.send(slot) {
                // The waiter gave up: take the slot back, try the next.
                unclaimed.armed = false;
                Self::give_back(st, &unclaimed.plugin, unclaimed.class);
            }
        }
    }
}

impl Slot {
    /// The class the slot was granted in: the job's class when it queued,
    /// or the one its plugin was moved to meanwhile.
    pub(super) fn class(&self) -> Class {
        self.class
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.armed {
            let mut st = self.slots.lock();
            Slots::give_back(&mut st, &self.plugin, self.class);
            self.slots.grant(&mut st);
        }
    }
}

#[cfg(test)]
mod tests;
