//! An operator's pause of a plugin (see [`crate::plugin_hold`]): holding
//! and resuming it, putting the holds the store keeps back at start-up,
//! and making parked deliveries due again. The invocation worker parks a
//! held plugin's jobs (`pause.rs`), the delivery worker its deliveries
//! (`deliver.rs`).

use std::time::Instant;

use crate::app::App;
use crate::ingest::now_ms;
use crate::registry::{LoadedPlugin, PluginSet};
use crate::store::{PluginHold, Store, StoreError};

/// An operator pauses `loaded` (`reason` optional): kept by the store
/// first, so a crash after the answer keeps it, then its jobs park: its
/// invocations are not run and its deliveries not sent (those already
/// running finish). A plugin already held keeps its start time; a new
/// reason replaces the old one.
pub async fn hold_plugin(
    app: &App,
    loaded: &LoadedPlugin,
    reason: Option<String>,
) -> Result<PluginHold, StoreError> {
    let hold = PluginHold {
        since_ms: loaded.hold.get().map_or_else(now_ms, |h| h.since_ms),
        reason: reason.or_else(|| loaded.hold.get().and_then(|h| h.reason)),
    };
    app.store
        .set_plugin_hold(&loaded.name, Some(hold.clone()))
        .await?;
    loaded.hold.set(Some(hold.clone()));
    loaded.runs.mark_parked();
    tracing::warn!(plugin = %loaded.name, reason = hold.reason.as_deref().unwrap_or(""), "plugin paused by the operator; its events wait in the queue");
    Ok(hold)
}

/// An operator lets `loaded` run again: the store forgets the hold, then
/// its parked deliveries are made due, and its parked invocations unless
/// its breaker has it paused (its probe then goes first). Returns how many
/// jobs were made due.
pub async fn resume_plugin(app: &App, loaded: &LoadedPlugin) -> Result<u64, StoreError> {
    app.store.set_plugin_hold(&loaded.name, None).await?;
    let was_held = loaded.hold.is_held();
    loaded.hold.set(None);
    if was_held {
        tracing::warn!(plugin = %loaded.name, "plugin resumed by the operator");
    }
    let deliveries = unpark_deliveries(app, &app.plugins()).await;
    if loaded.runs.is_paused(Instant::now()) {
        return Ok(deliveries);
    }
    loaded.runs.take_parked();
    let n = app
        .store
        .unpark_invocations(Some(&loaded.name), None, now_ms())
        .await?;
    if n > 0 {
        app.invocations_ready.notify_one();
    }
    Ok(n + deliveries)
}

/// At start-up, before any job runs: hold again the plugins an operator
/// paused, and forget the holds of plugins no longer configured. Returns
/// the plugins held.
pub async fn restore_holds(store: &dyn Store, set: &PluginSet) -> Result<Vec<String>, StoreError> {
    let mut held = Vec::new();
    for (name, hold) in store.plugin_holds().await? {
        match set.get(&name) {
            Some(loaded) => {
                loaded.hold.set(Some(hold));
                loaded.runs.mark_parked();
                held.push(name);
            }
            None => store.set_plugin_hold(&name, None).await?,
        }
    }
    Ok(held)
}

/// Make due the parked deliveries of every plugin an operator does not
/// hold (parked ones are rare: a delivery parked in a race with a resume,
/// or one of a plugin since removed). Returns how many.
pub(super) async fn unpark_deliveries(app: &App, set: &PluginSet) -> u64 {
    let held: Vec<String> = set
        .plugins
        .values()
        .filter(|p| p.hold.is_held())
        .map(|p| p.name.clone())
        .collect();
    match app.store.unpark_deliveries(&held, now_ms()).await {
        Ok(n) => {
            if n > 0 {
                app.deliveries_ready.notify_one();
            }
            n
        }
        Err(e) => {
            tracing::warn!(error = %e, "unparking deliveries failed; retrying later");
            0
        }
    }
}

/// After a reload: forget the holds of the plugins it removed (one added
/// again later starts unheld, as after a restart).
pub(super) async fn forget_removed(app: &App, before: &PluginSet, after: &PluginSet) {
    for old in before.plugins.values() {
        if !after.plugins.contains_key(&old.name)
            && old.hold.is_held()
            && let Err(e) = app.store.set_plugin_hold(&old.name, None).await
        {
            tracing::warn!(plugin = %old.name, error = %e, "forgetting a removed plugin's hold failed; a restart drops it");
        }
    }
}
