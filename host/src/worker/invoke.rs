//! The invocation loop: lease jobs, run the plugin on a blocking thread,
//! record the decision and the deliveries it created in one transaction.

use std::sync::Arc;

use tokio::sync::{Semaphore, watch};

use super::{IDLE_POLL, idle};
use crate::app::App;
use crate::ingest::now_ms;
use crate::model::Decision;
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
    let plugin = loaded.plugin.clone();
    let event = job.event.clone();
    let Ok(slot) = executors.acquire().await else {
        return;
    };
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
    let outcome = InvocationOutcome {
        verdict,
        duration_us: u64::try_from(invocation.elapsed.as_micros()).unwrap_or(u64::MAX),
        fuel: invocation.fuel_consumed,
    };
    settle(app, &job, outcome, requests).await;
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
