//! Pausing a plugin whose runs keep failing, without losing its events
//! and without touching its backlog over and over.
//!
//! While a plugin is paused its leased jobs are *parked* in the store
//! (invisible to leases, not due at any time), and ingest stores the jobs
//! new events create for it parked from the start (`PluginSet::route`), so
//! a paused plugin's backlog costs no write beyond the event's insert. When the pause is over one
//! parked job is made due to serve as the probe; when a run succeeds again
//! every parked job of the plugin is made due. A reload keeps the breaker
//! of a plugin that runs as before (same component, settings and limits),
//! so its jobs stay parked; every other plugin starts afresh and its
//! parked jobs are made due, as are those of plugins the reload removed
//! (they settle as no longer configured).
//!
//! An operator's pause (`hold.rs`) parks the plugin's jobs the same way,
//! until resumed.
//!
//! The store remembers each pause (`Store::set_plugin_pause`), so that a
//! restart resumes it ([`restore_pauses`]) rather than making the whole
//! backlog due for a plugin that fails again at once, and parking it again
//! one write per job. A pause is resumed only for a plugin that runs as it
//! did (same identity); one that changed starts afresh, as on a reload.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::app::App;
use crate::breaker::{Admission, Health, HeldProbe};
use crate::ingest::now_ms;
use crate::registry::{LoadedPlugin, PluginSet};
use crate::store::{InvocationJob, PluginPause, Store, StoreError};

/// What [`park_if_paused`] did with a job.
pub(super) enum Turn<'a> {
    /// Parked: its plugin is paused.
    Parked,
    /// It may run, holding the plugin's probe if it took it: call
    /// [`HeldProbe::started`] when the run starts, or drop it to hand the
    /// probe back.
    Run(HeldProbe<'a>),
}

/// Park `job` if its plugin is paused. When the pause is over this job
/// may become the probe (at most one is).
pub(super) async fn park_if_paused<'a>(
    app: &App,
    loaded: &'a LoadedPlugin,
    job: &InvocationJob,
) -> Turn<'a> {
    if loaded.hold.is_held() {
        park(app, loaded, job).await;
        return Turn::Parked;
    }
    let admission = loaded.runs.allow(Instant::now());
    if let Admission::Paused { .. } = admission {
        park(app, loaded, job).await;
        return Turn::Parked;
    }
    Turn::Run(loaded.runs.hold(admission))
}

/// Park `job` if its plugin's breaker opened while the job waited for an
/// executor; unlike [`park_if_paused`] this never takes the probe (the job
/// already passed that check, and may be the probe itself).
pub(super) async fn park_if_paused_since(
    app: &App,
    loaded: &LoadedPlugin,
    job: &InvocationJob,
) -> bool {
    if !loaded.hold.is_held()
        && !matches!(loaded.runs.health(Instant::now()), Health::Paused { .. })
    {
        return false;
    }
    park(app, loaded, job).await;
    true
}

async fn park(app: &App, loaded: &LoadedPlugin, job: &InvocationJob) {
    app.metrics.invocation_deferred(&job.plugin);
    // Marked first: a concurrent success that unparks must see it.
    loaded.runs.mark_parked();
    if let Err(e) = app.store.park_invocation(job.id, &job.lease).await {
        // The lease expires and the job comes back anyway.
        tracing::warn!(plugin = %job.plugin, event_id = %job.event.id, error = %e, "parking an invocation failed");
    }
}

/// Report a finished run to the plugin's breaker: runs the sandbox had to
/// stop count against it, a deliberate error from the plugin's own code
/// does not. A pause is remembered by the store; a success makes the store
/// forget it, then makes the parked jobs due again.
pub(super) async fn record_run(app: &App, loaded: &LoadedPlugin, stopped: bool) {
    if let Some(pause) = loaded.runs.record(stopped, Instant::now()) {
        app.metrics.plugin_paused(&loaded.name);
        tracing::warn!(
            plugin = %loaded.name,
            pause_s = pause.as_secs(),
            "plugin paused: its runs keep failing (timeout, trap, memory, fuel or invalid output); its events wait in the queue"
        );
        remember_pause(app, loaded).await;
    }
    if !stopped {
        if loaded.runs.remembered() {
            remember_pause(app, loaded).await;
        }
        // A run that started before an operator's pause leaves the
        // parked jobs parked.
        if !loaded.hold.is_held() && loaded.runs.take_parked() {
            unpark(app, Some(&loaded.name), None).await;
        }
    }
}

/// Bring the store's record of `loaded`'s pause in line with its breaker:
/// kept while it is paused or probing, forgotten once it runs again. The
/// writes of one plugin take turns and each writes the state at its time,
/// so the last one to land is the latest. The mark is set before the state
/// is read: a success that finds it clear finished before that read, so
/// the write sees the success.
async fn remember_pause(app: &App, loaded: &LoadedPlugin) {
    let _turn = loaded.runs.remembering().await;
    loaded.runs.set_remembered(true);
    let (now, ms) = (Instant::now(), now_ms());
    let pause = loaded.runs.pause(now).map(|(left, length)| PluginPause {
        identity: loaded.runs.identity().to_owned(),
        until_ms: ms.saturating_add(millis(left)),
        pause_ms: millis(length),
    });
    let forgetting = pause.is_none();
    match app.store.set_plugin_pause(&loaded.name, pause).await {
        Ok(()) if forgetting => loaded.runs.set_remembered(false),
        Ok(()) => {}
        // The mark stays set, so the next success tries again.
        Err(e) => tracing::warn!(
            plugin = %loaded.name,
            error = %e,
            "storing the plugin's pause failed; a restart now would not resume it"
        ),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// At start-up, before any job runs: resume the pauses the store remembers
/// for plugins of `set` that run as they did (the time left is counted in
/// wall-clock time, so a pause that ended while the process was down
/// probes at once), and forget those of plugins that changed or are gone
/// (their parked jobs are made due by the first sweep). Returns the
/// plugins paused.
pub async fn restore_pauses(store: &dyn Store, set: &PluginSet) -> Result<Vec<String>, StoreError> {
    let (now, ms) = (Instant::now(), now_ms());
    let mut resumed = Vec::new();
    for (name, pause) in store.plugin_pauses().await? {
        match set.get(&name) {
            Some(loaded) if loaded.runs.identity() == pause.identity => {
                let left = Duration::from_millis(pause.until_ms.saturating_sub(ms));
                loaded
                    .runs
                    .restore_pause(left, Duration::from_millis(pause.pause_ms), now);
                tracing::warn!(
                    plugin = %name,
                    probe_in_s = left.as_secs(),
                    "plugin still paused from before the restart: its runs kept failing; its events wait in the queue"
                );
                resumed.push(name);
            }
            _ => store.set_plugin_pause(&name, None).await?,
        }
    }
    Ok(resumed)
}

/// After a reload: forget the pauses of plugins of `before` whose run
/// history `after` did not take over (removed, or running differently:
/// they start afresh), and the operators' holds of plugins it removed.
pub async fn forget_replaced_pauses(app: &App, before: &PluginSet, after: &PluginSet) {
    super::hold::forget_removed(app, before, after).await;
    for old in before.plugins.values() {
        let new = after.plugins.get(&old.name);
        let kept = new.is_some_and(|new| Arc::ptr_eq(&new.runs, &old.runs));
        // A fresh plugin of the same name that paused already wrote its own.
        let paused_anew = new.is_some_and(|new| new.runs.remembered());
        if kept || paused_anew || !old.runs.remembered() {
            continue;
        }
        let _turn = old.runs.remembering().await;
        match app.store.set_plugin_pause(&old.name, None).await {
            Ok(()) => old.runs.set_remembered(false),
            Err(e) => tracing::warn!(
                plugin = %old.name,
                error = %e,
                "forgetting a replaced plugin's pause failed; a restart may pause it once more"
            ),
        }
    }
}

/// How often every parked job of a plugin that is not paused is made due,
/// whatever the marks say: a job parked by a worker still holding the
/// previous plugin set (a reload raced with it) or a mark lost to a crash
/// would otherwise wait for ever.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// What [`tend`] remembers between calls.
#[derive(Default)]
pub(super) struct Tending {
    /// The plugin set seen last.
    seen: Option<Arc<PluginSet>>,
    /// When parked jobs of unpaused plugins were last swept.
    swept: Option<Instant>,
}

/// Between lease calls: after a new plugin set make due the parked jobs
/// of plugins it removed; for each paused plugin whose pause is over, make
/// one parked job due to serve as its probe; and now and then (at once
/// after a new set) make due every parked job of a plugin that is not
/// paused.
pub(super) async fn tend(app: &App, tending: &mut Tending) {
    let set = app.plugins();
    let (now, ms) = (Instant::now(), now_ms());
    if !tending.seen.as_ref().is_some_and(|s| Arc::ptr_eq(s, &set)) {
        if let Some(old) = tending.seen.replace(set.clone()) {
            for removed in old.plugins.keys().filter(|n| !set.plugins.contains_key(*n)) {
                unpark(app, Some(removed), None).await;
            }
        }
        tending.swept = None;
    }
    for loaded in set.plugins.values() {
        if !loaded.hold.is_held() && loaded.runs.wants_probe_job(now, ms) {
            unpark(app, Some(&loaded.name), Some(1)).await;
        }
    }
    if tending
        .swept
        .is_none_or(|t| now.duration_since(t) >= SWEEP_EVERY)
    {
        tending.swept = Some(now);
        super::expiry::sweep_parked(app, &set).await;
        super::hold::unpark_deliveries(app, &set).await;
        if set.plugins.values().any(|p| p.is_paused(now)) {
            for loaded in set.plugins.values() {
                if !loaded.is_paused(now) {
                    unpark(app, Some(&loaded.name), None).await;
                }
            }
        } else {
            // The usual case: one statement for all (a job parked just now
            // by a plugin pausing meanwhile is leased and parked again).
            unpark(app, None, None).await;
        }
    }
}

async fn unpark(app: &App, plugin: Option<&str>, limit: Option<usize>) {
    match app.store.unpark_invocations(plugin, limit, now_ms()).await {
        Ok(0) => {}
        Ok(n) => {
            tracing::debug!(
                plugin = plugin.unwrap_or("*"),
                jobs = n,
                "unparked invocations"
            );
            app.invocations_ready.notify_one();
        }
        Err(e) => tracing::warn!(error = %e, "unparking invocations failed; retrying later"),
    }
}
