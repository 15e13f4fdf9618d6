//! The invocation loop: take handed or leased jobs, run the plugin on a
//! blocking thread, record the decision and the deliveries it created in
//! one transaction, and hand those deliveries to the delivery loop.
//! A plugin whose runs keep being stopped by the sandbox is paused by its
//! breaker: its jobs go back to the queue until the pause ends.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};

use super::low_priority::LowPriorityPool;
use super::slots::{Class, Slots};
use super::{IDLE_POLL, LeaseLeft, expiry, feed, handoff, lease_left, pause};
use crate::app::App;
use crate::breaker::Health;
use crate::ingest::now_ms;
use crate::model::Decision;
use crate::registry::LoadedPlugin;
use crate::runtime::{ErrorKind, Invocation, PluginError};
use crate::store::{Completion, InvocationJob, InvocationOutcome, JobLease, StoreError, Verdict};

/// Most jobs leased in one store call.
const LEASE_BATCH: usize = 128;

/// Jobs of a failing plugin (its breaker saw a recent failure) that may
/// wait for an executor slot; more go back to the queue for
/// [`FAILING_RETRY_MS`], so they do not hold the job permits that healthy
/// plugins' jobs need.
const FAILING_BACKLOG: usize = 4;
const FAILING_RETRY_MS: u64 = 1_000;

/// Run jobs handed over by ingest as they come, and lease the rest (jobs
/// created while the hand-off was full, retries, work left by a crash)
/// from the store: at start, when woken, and every [`IDLE_POLL`] while
/// idle. Returns the hand-off channel and the job it had taken from it
/// without starting it: the jobs it did not start.
pub(super) async fn run(
    app: Arc<App>,
    concurrency: usize,
    executors: usize,
    mut handed: mpsc::Receiver<InvocationJob>,
    shutdown: watch::Receiver<bool>,
) -> (mpsc::Receiver<InvocationJob>, Option<InvocationJob>) {
    let executors = Arc::new(Executors::new(executors));
    let mut source = Invocations {
        app: app.clone(),
        tending: pause::Tending::default(),
    };
    let start = |job: InvocationJob, permit: OwnedSemaphorePermit| {
        let (app, executors) = (app.clone(), executors.clone());
        tokio::spawn(async move {
            process(&app, job, &executors).await;
            drop(permit);
        });
    };
    let in_hand = feed::feed(
        &mut source,
        concurrency,
        LEASE_BATCH,
        &mut handed,
        &app.invocations_ready,
        &shutdown,
        start,
    )
    .await;
    (handed, in_hand)
}

/// The invocation queue in the store.
struct Invocations {
    app: Arc<App>,
    tending: pause::Tending,
}

impl feed::Source for Invocations {
    type Job = InvocationJob;
    const LEASE_FAILED: &'static str = "leasing invocations failed";
    /// Often enough that a paused plugin's probe starts soon after its
    /// pause ends; tending writes nothing unless there is something to do
    /// (and sweeps parked jobs once a second).
    const TEND_EVERY: Option<Duration> = Some(Duration::from_millis(100));

    async fn lease(&mut self, limit: usize) -> Result<Vec<InvocationJob>, StoreError> {
        let lease_ms = super::invocation_lease_ms(&self.app);
        self.app
            .store
            .lease_invocations(now_ms(), lease_ms, limit)
            .await
    }

    async fn next_poll(&mut self, _got: usize) -> Duration {
        IDLE_POLL
    }

    async fn tend(&mut self) {
        pause::tend(&self.app, &mut self.tending).await;
    }
}

/// Where plugins run: slots shared fairly between plugins, and the
/// low-priority threads for plugins not yet known to behave.
struct Executors {
    slots: Arc<Slots>,
    /// `None` if its threads could not be started (then everything runs
    /// on tokio's blocking pool).
    low_priority: Option<LowPriorityPool>,
}

impl Executors {
    fn new(n: usize) -> Self {
        let low_priority = LowPriorityPool::new(n)
            .inspect_err(|e| tracing::warn!(error = %e, "cannot start low-priority plugin threads"))
            .ok();
        Self {
            slots: Slots::new(n),
            low_priority,
        }
    }

    /// Run a plugin call of a plugin in `class` on the right threads.
    async fn run(
        &self,
        class: Class,
        call: impl FnOnce() -> Invocation + Send + 'static,
    ) -> Result<Invocation, String> {
        match (&self.low_priority, class) {
            (Some(pool), Class::New | Class::Failing) => {
                pool.run(call).await.map_err(|e| e.to_string())
            }
            _ => tokio::task::spawn_blocking(call)
                .await
                .map_err(|e| e.to_string()),
        }
    }
}

async fn process(app: &App, job: InvocationJob, executors: &Executors) {
    // Handed over in process, it may have waited past its lease: then the
    // job is another holder's, not even to settle as expired.
    if outlived_its_lease(&job) {
        return;
    }
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
    if let Some(outcome) = expiry::check(&loaded, &job, now_ms()) {
        settle_expired(app, &job, outcome).await;
        return;
    }
    let pause::Turn::Run(probe) = pause::park_if_paused(app, &loaded, &job).await else {
        return;
    };
    let class = class_of(&loaded);
    if class == Class::Failing && executors.slots.waiting_for(&loaded.name) >= FAILING_BACKLOG {
        // Its jobs would only wait here, holding job permits that the
        // healthy plugins' jobs need: back to the queue for a while.
        app.metrics.invocation_deferred(&job.plugin);
        release(app, &job, now_ms() + FAILING_RETRY_MS).await;
        return;
    }
    let slot = executors.slots.acquire(&loaded.name, class).await;
    if app.is_shutting_down() {
        // Not started yet, so not in flight: given back at once rather
        // than run during the grace period.
        drop(slot);
        release(app, &job, now_ms()).await;
        return;
    }
    let deadline = Duration::from_millis(loaded.plugin.limits().timeout_ms);
    match lease_left(job.lease_until_ms, now_ms(), deadline) {
        LeaseLeft::Enough => {}
        LeaseLeft::Over => {
            outlived_its_lease(&job);
            return;
        }
        LeaseLeft::TooShort => {
            // Run now, it could still be running when the store hands it
            // out again, and run twice (a plugin's kv writes with it).
            drop(slot);
            tracing::debug!(plugin = %job.plugin, event_id = %job.event.id, "job waited too long for a slot; back to the queue");
            release(app, &job, now_ms()).await;
            return;
        }
    }
    // It may have waited long for an executor (one at a time for a new
    // or failing plugin).
    if let Some(outcome) = expiry::check(&loaded, &job, now_ms()) {
        drop(slot);
        settle_expired(app, &job, outcome).await;
        return;
    }
    // The breaker may have opened while this job waited for a slot.
    if pause::park_if_paused_since(app, &loaded, &job).await {
        return;
    }
    // The slot's class, which may have changed while the job waited (see
    // `Slots::reclassify`), picks the threads.
    let class = slot.class();
    let plugin = loaded.plugin.clone();
    let event = job.event.clone();
    let invocation = executors.run(class, move || plugin.invoke(&event)).await;
    drop(slot);
    let invocation = match invocation {
        Ok(inv) if inv.outcome == Err(PluginError::Busy) => {
            // Not a run: the probe, if this job held it, goes back.
            drop(probe);
            // The host's instance pool was full: the plugin did not run,
            // and it is no fault of its own. Back to the queue, as a
            // failing plugin's surplus goes.
            tracing::warn!(plugin = %job.plugin, event_id = %job.event.id, "no free instance slot; the job goes back to the queue");
            app.metrics.invocation_deferred(&job.plugin);
            release(app, &job, now_ms() + FAILING_RETRY_MS).await;
            return;
        }
        Ok(inv) => {
            probe.started();
            inv
        }
        Err(e) => {
            probe.started();
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
    // Only the sandbox's stops count: not the plugin's own errors, nor
    // output refused because of what the event held.
    let stopped = matches!(&verdict, Verdict::Error { kind, .. }
        if !matches!(kind, ErrorKind::Plugin | ErrorKind::Refused));
    pause::record_run(app, &loaded, stopped).await;
    let class_now = class_of(&loaded);
    if class_now != class {
        // Its jobs still waiting for a slot queued as `class`.
        executors.slots.reclassify(&loaded.name, class_now);
    }
    let outcome = InvocationOutcome {
        verdict,
        duration_us: u64::try_from(invocation.elapsed.as_micros()).unwrap_or(u64::MAX),
        fuel: invocation.fuel_consumed,
    };
    settle(app, &job, outcome, requests).await;
}

/// How `loaded`'s runs are scheduled, from how they have been going.
fn class_of(loaded: &LoadedPlugin) -> Class {
    if loaded.runs.health(Instant::now()) != Health::Healthy {
        Class::Failing
    } else if loaded.runs.proven() {
        Class::Healthy
    } else {
        Class::New
    }
}

/// Whether `job` waited for a slot past the end of its lease: the store
/// hands it out again by then, so running it here too would run it twice.
fn outlived_its_lease(job: &InvocationJob) -> bool {
    let expired = now_ms() >= job.lease_until_ms;
    if expired {
        tracing::debug!(plugin = %job.plugin, event_id = %job.event.id, "job outlived its lease while waiting; left to its next lease");
    }
    expired
}

/// Put a leased job back in the queue, due at `due_ms`, without counting
/// an attempt.
async fn release(app: &App, job: &InvocationJob, due_ms: u64) {
    if let Err(e) = app
        .store
        .release_invocation(job.id, &job.lease, due_ms)
        .await
    {
        // The lease expires and the job comes back anyway.
        tracing::warn!(plugin = %job.plugin, event_id = %job.event.id, error = %e, "deferring an invocation failed");
    }
}

async fn settle_expired(app: &App, job: &InvocationJob, outcome: InvocationOutcome) {
    tracing::debug!(plugin = %job.plugin, event_id = %job.event.id, "invocation expired; not run");
    app.metrics.invocations_expired(&job.plugin, 1);
    settle(app, job, outcome, Vec::new()).await;
}

async fn settle(
    app: &App,
    job: &InvocationJob,
    outcome: InvocationOutcome,
    requests: Vec<crate::model::OutboundRequest>,
) {
    // Deliveries go straight to the delivery worker when it has room.
    let room = handoff::reserve_deliveries(app, requests.len());
    let lease = room.as_ref().map(|_| JobLease {
        now_ms: now_ms(),
        lease_ms: super::delivery_lease_ms(app),
    });
    match app
        .store
        .complete_invocation(job.id, outcome, requests, now_ms(), lease)
        .await
    {
        Ok(Completion::Recorded {
            delivery_ids,
            leased,
        }) => match room {
            Some(room) => handoff::hand_deliveries(room, leased),
            None if !delivery_ids.is_empty() => app.deliveries_ready.notify_one(),
            None => {}
        },
        Ok(Completion::AlreadyCompleted | Completion::NotFound) => {}
        Err(e) => {
            // The lease will expire and the job will run again.
            tracing::error!(plugin = %job.plugin, event_id = %job.event.id, error = %e, "recording an invocation failed");
        }
    }
}
