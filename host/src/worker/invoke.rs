//! The invocation loop: lease jobs, run the plugin on a blocking thread,
//! record the decision and the deliveries it created in one transaction.
//! A plugin whose runs keep being stopped by the sandbox is paused by its
//! breaker: its jobs go back to the queue until the pause ends.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Semaphore, watch};

use super::{IDLE_POLL, idle};
use crate::app::App;
use crate::breaker::{Admission, Health};
use crate::ingest::now_ms;
use crate::model::Decision;
use crate::registry::LoadedPlugin;
use crate::runtime::{ErrorKind, Invocation, PluginError};
use crate::store::{Completion, InvocationJob, InvocationOutcome, Verdict};

/// Most jobs leased in one store call.
const LEASE_BATCH: usize = 128;

pub(super) async fn run(
    app: Arc<App>,
    concurrency: usize,
    executors: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(concurrency));
    let executors = Arc::new(Semaphore::new(executors));
    while !*shutdown.borrow() {
        let free = permits.available_permits();
        if free == 0 {
            // Wait for one task to finish before leasing more.
            let Ok(p) = permits.clone().acquire_owned().await else {
                break;
            };
            drop(p);
            continue;
        }
        // Long enough for any plugin's deadline plus queueing for a blocking
        // thread; a crashed worker's jobs come back soon after.
        let lease_ms =
            (app.plugins().max_plugin_timeout() + super::LEASE_MARGIN).as_millis() as u64;
        let jobs = match app
            .store
            .lease_invocations(now_ms(), lease_ms, free.min(LEASE_BATCH))
            .await
        {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::error!(error = %e, "leasing invocations failed");
                idle(&app.invocations_ready, &mut shutdown, IDLE_POLL).await;
                continue;
            }
        };
        if jobs.is_empty() {
            idle(&app.invocations_ready, &mut shutdown, IDLE_POLL).await;
            continue;
        }
        for job in jobs {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let (app, executors) = (app.clone(), executors.clone());
            tokio::spawn(async move {
                process(&app, job, &executors).await;
                drop(permit);
            });
        }
    }
    // Shutdown: wait for in-flight invocations (the caller bounds this).
    let _ = permits.acquire_many(concurrency as u32).await;
}

async fn process(app: &App, job: InvocationJob, executors: &Semaphore) {
    let Some(loaded) = app.plugins().get(&job.plugin) else {
        let outcome = InvocationOutcome {
            verdict: Verdict::Error {
                kind: ErrorKind::Plugin,
                message: format!("plugin {} is no longer configured", job.plugin),
            },
            duration_us: 0,
            fuel: None,
        };
        settle(app, &job, outcome, Vec::new()).await;
        return;
    };
    if defer_if_paused(app, &loaded, &job).await {
        return;
    }
    let Ok(slot) = executors.acquire().await else {
        return;
    };
    // The breaker may have opened while this job waited for a slot.
    if defer_if_paused(app, &loaded, &job).await {
        return;
    }
    let plugin = loaded.plugin.clone();
    let event = job.event.clone();
    let invocation = tokio::task::spawn_blocking(move || plugin.invoke(&event)).await;
    drop(slot);
    let invocation = match invocation {
        Ok(inv) => inv,
        Err(e) => {
            // A panic on the blocking thread: contained, recorded as a trap.
            tracing::error!(plugin = %job.plugin, event_id = %job.event.id, error = %e, "plugin invocation task failed");
            Invocation {
                outcome: Err(PluginError::Trap(
                    "the host task running the plugin failed".into(),
                )),
                logs: Vec::new(),
                elapsed: std::time::Duration::ZERO,
                fuel_consumed: None,
            }
        }
    };
    let (verdict, requests) = match invocation.outcome {
        Ok(Decision::Fire { requests }) => (Verdict::Fire, requests),
        Ok(Decision::Skip { reason }) => (Verdict::Skip { reason }, Vec::new()),
        Err(e) => (
            Verdict::Error {
                kind: e.kind(),
                message: e.to_string(),
            },
            Vec::new(),
        ),
    };
    let label = match &verdict {
        Verdict::Error { kind, .. } => kind.as_str(),
        other => other.as_str(),
    };
    app.metrics
        .invocation(&job.plugin, label, invocation.elapsed);
    record_health(app, &loaded, &verdict);
    let outcome = InvocationOutcome {
        verdict,
        duration_us: u64::try_from(invocation.elapsed.as_micros()).unwrap_or(u64::MAX),
        fuel: invocation.fuel_consumed,
    };
    settle(app, &job, outcome, requests).await;
}

/// Whether the plugin is paused; if so the job goes back to the queue, due
/// when the pause ends, without counting as an attempt.
async fn defer_if_paused(app: &App, loaded: &LoadedPlugin, job: &InvocationJob) -> bool {
    let Admission::Paused { resume_in } = loaded.failures.allow(&loaded.name, Instant::now())
    else {
        return false;
    };
    app.metrics.invocation_deferred(&job.plugin);
    let due = now_ms() + u64::try_from(resume_in.as_millis()).unwrap_or(u64::MAX);
    if let Err(e) = app.store.release_invocation(job.id, &job.lease, due).await {
        // The lease expires and the job comes back anyway.
        tracing::warn!(plugin = %job.plugin, event_id = %job.event.id, error = %e, "deferring an invocation failed");
    }
    true
}

/// Feed the plugin's breaker: runs the sandbox had to stop count against
/// it; a deliberate error from the plugin's own code does not.
fn record_health(app: &App, loaded: &LoadedPlugin, verdict: &Verdict) {
    let failed = matches!(verdict, Verdict::Error { kind, .. } if *kind != ErrorKind::Plugin);
    let now = Instant::now();
    let was_paused = matches!(
        loaded.failures.health(&loaded.name, now),
        Health::Paused { .. }
    );
    loaded.failures.record(&loaded.name, !failed, now);
    if let Health::Paused { cooldown, .. } = loaded.failures.health(&loaded.name, now)
        && !was_paused
    {
        app.metrics.plugin_paused(&loaded.name);
        tracing::warn!(
            plugin = %loaded.name,
            pause_s = cooldown.as_secs(),
            "plugin paused: its runs keep failing (timeout, trap, memory, fuel or invalid output); its events wait in the queue"
        );
    }
}

async fn settle(
    app: &App,
    job: &InvocationJob,
    outcome: InvocationOutcome,
    requests: Vec<crate::model::OutboundRequest>,
) {
    match app
        .store
        .complete_invocation(job.id, outcome, requests, now_ms())
        .await
    {
        Ok(Completion::Recorded { delivery_ids }) => {
            if !delivery_ids.is_empty() {
                app.deliveries_ready.notify_one();
            }
        }
        Ok(Completion::AlreadyCompleted | Completion::NotFound) => {}
        Err(e) => {
            // The lease will expire and the job will run again.
            tracing::error!(plugin = %job.plugin, event_id = %job.event.id, error = %e, "recording an invocation failed");
        }
    }
}
