//! The delivery loop: take handed or due deliveries, and for each: policy check,
//! secret filling, breaker, per-destination limits (the plugin's own and
//! those shared by all plugins), one attempt, and the next step (succeeded,
//! retry at, dead letter) recorded with the attempt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};

use super::{IDLE_POLL, LeaseLeft, feed, lease_left};
use crate::app::App;
use crate::breaker::Admission;
use crate::delivery::excerpt::response_excerpt;
use crate::delivery::rate::Turn;
use crate::delivery::{
    AttemptOutcome as Outcome, AttemptReport, DEFAULT_JITTER, PolicyRedirects, SendRequest,
    destination_key, next_delay,
};
use crate::ingest::now_ms;
use crate::policy::PolicyDenied;
use crate::registry::LoadedPlugin;
use crate::store::{AckResult, Attempt, AttemptOutcome, DeliveryJob, NextStep, StoreError};

/// How long a delivery waits in memory for a busy destination's slot
/// before going back to the queue, and when it is retried then.
const BUSY_WAIT: Duration = Duration::from_millis(200);
const BUSY_RETRY: Duration = Duration::from_millis(200);

/// How long a delivery waits in memory for its turn under the
/// destination's `max_per_second_per_host`; a later turn is reserved and
/// the delivery goes back to the queue until then.
const RATE_WAIT: Duration = Duration::from_secs(1);
/// How long a delivery waits in memory for a token source's first token,
/// and how soon it is tried again if that was not enough (no attempt is
/// recorded either way).
const TOKEN_WAIT: Duration = Duration::from_secs(2);
const TOKEN_ARRIVING_RETRY: Duration = Duration::from_secs(1);

/// Most deliveries leased in one store call.
const LEASE_BATCH: usize = 128;

/// Shortest wait between two lease calls that found nothing due.
const MIN_POLL: Duration = Duration::from_millis(5);

/// Send deliveries handed over by the invocation loop as they come, and
/// lease the due ones from the store (retries, manual replays, work left by
/// a crash or created while the hand-off was full): at start, when woken,
/// and when the next one falls due. Returns the hand-off channel and the
/// delivery it had taken from it without starting it: the deliveries it
/// did not start.
pub(super) async fn run(
    app: Arc<App>,
    concurrency: usize,
    mut handed: mpsc::Receiver<DeliveryJob>,
    shutdown: watch::Receiver<bool>,
) -> (mpsc::Receiver<DeliveryJob>, Option<DeliveryJob>) {
    let start = |job: DeliveryJob, permit: OwnedSemaphorePermit| {
        let app = app.clone();
        tokio::spawn(async move {
            deliver(&app, job).await;
            drop(permit);
        });
    };
    let in_hand = feed::feed(
        &mut Deliveries { app: app.clone() },
        concurrency,
        LEASE_BATCH,
        &mut handed,
        &app.deliveries_ready,
        &shutdown,
        start,
    )
    .await;
    (handed, in_hand)
}

/// The delivery queue in the store.
struct Deliveries {
    app: Arc<App>,
}

impl feed::Source for Deliveries {
    type Job = DeliveryJob;
    const LEASE_FAILED: &'static str = "leasing deliveries failed";

    async fn lease(&mut self, limit: usize) -> Result<Vec<DeliveryJob>, StoreError> {
        let lease_ms = super::delivery_lease_ms(&self.app);
        self.app
            .store
            .lease_deliveries(now_ms(), lease_ms, limit)
            .await
    }

    /// Soon after a partial batch; after an empty one, when the next
    /// retry falls due (within the idle poll).
    async fn next_poll(&mut self, got: usize) -> Duration {
        if got > 0 {
            return MIN_POLL;
        }
        let wait = match self.app.store.next_due_ms().await {
            Ok(Some(due)) => Duration::from_millis(due.saturating_sub(now_ms())),
            _ => IDLE_POLL,
        };
        wait.clamp(MIN_POLL, IDLE_POLL)
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

async fn deliver(app: &App, job: DeliveryJob) {
    let set = app.plugins();
    let Some(plugin) = set.get(&job.plugin) else {
        let reason = format!("plugin {} is no longer configured", job.plugin);
        fail_without_sending(app, &job, AttemptOutcome::Policy, reason).await;
        return;
    };
    if plugin.hold.is_held() {
        // Paused by an operator: nothing of it is sent until resumed.
        app.metrics.delivery_deferred(&job.plugin);
        if let Err(e) = app.store.park_delivery(&job.id, &job.lease).await {
            // The lease expires and the delivery comes back anyway.
            tracing::warn!(delivery = %job.id, error = %e, "parking a delivery failed");
        }
        return;
    }
    let dest = match plugin.policy.check_request(&job.request) {
        Ok(dest) => dest,
        Err(denied) => {
            app.metrics.delivery(&job.plugin, "denied", None);
            fail_without_sending(app, &job, AttemptOutcome::Policy, denied.to_string()).await;
            return;
        }
    };
    let mut waited = false;
    let filled = loop {
        match plugin.policy.fill_secrets(&job.request, &dest) {
            Ok(filled) => break filled,
            Err(PolicyDenied::SecretArriving { secret }) if !waited => {
                // A token source just started (at start-up, or after its
                // settings changed): its first fetch takes moments. Wait
                // for it here rather than cycle through the store.
                waited = true;
                if let Some(source) = plugin.tokens.get(&secret) {
                    let _ = source.first_fetch(TOKEN_WAIT).await;
                }
            }
            Err(PolicyDenied::SecretArriving { .. }) => {
                // A slow token endpoint: back to the queue, no attempt.
                release(app, &job, now_ms() + ms(TOKEN_ARRIVING_RETRY)).await;
                return;
            }
            Err(denied) if denied.is_transient() => {
                // An OAuth2 token not in hand yet: retried on the schedule,
                // nothing sent, the destination's health untouched.
                app.metrics.delivery(&job.plugin, "retry", None);
                let report = unsent_retry(denied.to_string());
                let (attempt, next, _) = settle_report(&plugin, &job, now_ms(), &report);
                record(app, &job, attempt, next).await;
                return;
            }
            Err(denied) => {
                app.metrics.delivery(&job.plugin, "denied", None);
                fail_without_sending(app, &job, AttemptOutcome::Policy, denied.to_string()).await;
                return;
            }
        }
    };
    let key = destination_key(dest.url()).unwrap_or_default();
    let shared = set.destinations.get(&key);
    drop(set);
    // A `[[destinations]]` entry's breaker is shared by all plugins.
    let health = shared.as_deref().map_or(&*plugin.health, |s| s.health());
    let admission = health.allow(&key, Instant::now());
    if let Admission::Paused { resume_in } = admission {
        app.metrics.delivery_deferred(&job.plugin);
        release(app, &job, now_ms() + ms(resume_in)).await;
        return;
    }
    // The destination's probe, if this delivery took it, goes back unless
    // the request is sent.
    let probe = health.hold(&key, admission);
    // The turn under the limits shared with other plugins first: when
    // they are the tighter ones, the plugin's own turn is then taken only
    // once the shared one has come. A turn taken under one limit and then
    // refused by the other is spent, so together they send no more than
    // either allows (and at times a little less).
    let rates = [
        (shared.as_deref().and_then(|s| s.rate()), true),
        (plugin.rate.as_deref(), false),
    ];
    for (rate, is_shared) in rates {
        let Some(rate) = rate else { continue };
        let now = Instant::now();
        match rate.turn(&key, &job.id, now, RATE_WAIT) {
            Turn::At(at) => tokio::time::sleep_until(at.into()).await,
            Turn::Reserved(at) | Turn::Later(at) => {
                app.metrics.delivery_rate_limited(&job.plugin);
                if is_shared {
                    app.metrics.destination_limited(&key, "rate");
                }
                release(app, &job, now_ms() + ms(at.saturating_duration_since(now))).await;
                return;
            }
        }
    }
    let Some(slot) = plugin.limiter.acquire_within(&key, BUSY_WAIT).await else {
        release(app, &job, now_ms() + ms(BUSY_RETRY)).await;
        return;
    };
    let shared_slot = match shared.as_deref().and_then(|s| s.in_flight()) {
        Some(limiter) => match limiter.acquire_within(&key, BUSY_WAIT).await {
            Some(slot) => Some(slot),
            None => {
                drop(slot);
                app.metrics.destination_limited(&key, "in_flight");
                release(app, &job, now_ms() + ms(BUSY_RETRY)).await;
                return;
            }
        },
        None => None,
    };
    if app.is_shutting_down() {
        // Not sent yet, so not in flight: given back at once rather than
        // sent during the grace period.
        drop((slot, shared_slot));
        release(app, &job, now_ms()).await;
        return;
    }
    let timeout = Duration::from_secs(plugin.delivery.timeout_s);
    match lease_left(job.lease_until_ms, now_ms(), timeout) {
        LeaseLeft::Enough => {}
        LeaseLeft::Over => {
            // It waited past its lease (handed over and queued behind a
            // slow destination): the store hands it out again, so it is
            // not sent from here as well.
            tracing::debug!(delivery = %job.id, "delivery outlived its lease while waiting; left to its next lease");
            return;
        }
        LeaseLeft::TooShort => {
            // Sent now, it could still be in flight when the store hands
            // it out again: the same webhook twice at once.
            drop((slot, shared_slot));
            tracing::debug!(delivery = %job.id, "delivery waited too long to be sent under its lease; back to the queue");
            release(app, &job, now_ms()).await;
            return;
        }
    }
    probe.started();
    let started_ms = now_ms();
    let redirects = PolicyRedirects::new(&plugin.policy, &job.request);
    let mut report = plugin
        .deliverer
        .send(SendRequest {
            method: filled.method,
            url: &filled.url,
            headers: &filled.headers,
            body: &filled.body,
            webhook_id: &job.id,
            signing: &plugin.signing,
            timeout,
            response_body_limit: plugin.delivery.response_body_limit_bytes,
            redirects: redirects
                .as_ref()
                .map(|r| r as &dyn crate::delivery::RedirectGuard),
        })
        .await;
    // The destination's slot covers the request only, not the commit that
    // records it: otherwise the commit's fsync would count against the
    // destination's concurrency and cap every host at a few thousand
    // deliveries a second.
    drop((slot, shared_slot));
    drop(filled);
    let healthy = !report.outcome.counts_against_host();
    if let Some(pause) = health.record(&key, healthy, Instant::now()) {
        app.metrics.destination_paused(&job.plugin);
        tracing::warn!(
            plugin = %job.plugin,
            destination = %key,
            pause_s = pause.as_secs(),
            for_all_plugins = shared.is_some(),
            "destination paused: its deliveries keep failing (connection errors, timeouts, 408, 429 or 5xx); they wait in the queue"
        );
    }
    if report.status_code == Some(401) && plugin.policy.report_rejected(&job.request) {
        // The request carried an OAuth2 token, which may have been revoked
        // or expired early: a new one is on its way, and the next attempt
        // carries it. (After the health check: a 401 says the host is up.)
        report.outcome = Outcome::Retry {
            after: None,
            reason: "HTTP 401 to a request carrying an OAuth2 token; fetching a new token".into(),
        };
    }
    let (attempt, next, label) = settle_report(&plugin, &job, started_ms, &report);
    app.metrics
        .delivery(&job.plugin, label, Some(report.duration));
    record(app, &job, attempt, next).await;
}

/// The attempt's recorded outcome. A policy denial wins over the status
/// code: a redirect refused by the egress policy carries the 3xx that
/// pointed there, but it is a policy refusal, not a receiver's answer.
fn attempt_kind(report: &AttemptReport) -> AttemptOutcome {
    match (report.status_code, &report.outcome) {
        (_, Outcome::Succeeded) => AttemptOutcome::Success,
        _ if report.denied_by_policy => AttemptOutcome::Policy,
        (Some(_), _) => AttemptOutcome::Status,
        (None, _) if report.timed_out => AttemptOutcome::Timeout,
        (None, _) => AttemptOutcome::Network,
    }
}

/// Turn a report into the attempt row and the delivery's next step.
fn settle_report(
    plugin: &LoadedPlugin,
    job: &DeliveryJob,
    started_ms: u64,
    report: &AttemptReport,
) -> (Attempt, NextStep, &'static str) {
    let kind = attempt_kind(report);
    let (next, label) = match &report.outcome {
        Outcome::Succeeded => (NextStep::Succeeded, "succeeded"),
        Outcome::Failed { reason } => (NextStep::Failed(reason.clone()), "failed"),
        Outcome::Retry { after, reason } => {
            let schedule: Vec<Duration> = plugin
                .delivery
                .retry_schedule_s
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect();
            match next_delay(
                &schedule,
                job.attempts_so_far + 1,
                *after,
                DEFAULT_JITTER,
                &mut rand::rng(),
            ) {
                Some(delay) => (
                    NextStep::RetryAt(now_ms().saturating_add(ms(delay))),
                    "retry",
                ),
                None => (
                    NextStep::Failed(format!(
                        "{reason}; gave up after {} attempts",
                        job.attempts_so_far + 1
                    )),
                    "failed",
                ),
            }
        }
    };
    let response = response_excerpt(report, |text, cut| plugin.policy.redact_secrets(text, cut));
    let attempt = Attempt {
        started_ms,
        duration_ms: ms(report.duration),
        status_code: report.status_code,
        error: report.error.clone(),
        outcome: kind,
        response,
    };
    (attempt, next, label)
}

/// The report of an attempt that was not sent and is to be retried.
fn unsent_retry(reason: String) -> AttemptReport {
    AttemptReport {
        status_code: None,
        error: Some(reason.clone()),
        duration: Duration::ZERO,
        outcome: Outcome::Retry {
            after: None,
            reason,
        },
        response_bytes: Vec::new(),
        response_truncated: false,
        response_content_type: None,
        remote_addr: None,
        redirects: 0,
        denied_by_policy: true,
        timed_out: false,
    }
}

async fn fail_without_sending(
    app: &App,
    job: &DeliveryJob,
    outcome: AttemptOutcome,
    reason: String,
) {
    let attempt = Attempt {
        started_ms: now_ms(),
        duration_ms: 0,
        status_code: None,
        error: Some(reason.clone()),
        outcome,
        response: None,
    };
    record(app, job, attempt, NextStep::Failed(reason)).await;
}

async fn record(app: &App, job: &DeliveryJob, attempt: Attempt, next: NextStep) {
    match app
        .store
        .record_attempt(&job.id, &job.lease, attempt, next, now_ms())
        .await
    {
        Ok(AckResult::Applied) => {}
        Ok(other) => {
            tracing::warn!(delivery = %job.id, result = ?other, "attempt not recorded: lease lost")
        }
        Err(e) => {
            tracing::error!(delivery = %job.id, error = %e, "recording an attempt failed; it will be retried when the lease expires")
        }
    }
}

async fn release(app: &App, job: &DeliveryJob, retry_at_ms: u64) {
    if let Err(e) = app
        .store
        .release_delivery(&job.id, &job.lease, retry_at_ms)
        .await
    {
        tracing::error!(delivery = %job.id, error = %e, "releasing a delivery failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(status_code: Option<u16>, denied: bool, timed_out: bool) -> AttemptReport {
        AttemptReport {
            status_code,
            error: None,
            duration: Duration::ZERO,
            outcome: Outcome::Failed { reason: "x".into() },
            response_bytes: Vec::new(),
            response_truncated: false,
            response_content_type: None,
            remote_addr: None,
            redirects: 0,
            denied_by_policy: denied,
            timed_out,
        }
    }

    #[test]
    fn a_redirect_refused_by_policy_is_recorded_as_policy_not_status() {
        let cases = [
            (Some(302), true, false, AttemptOutcome::Policy),
            (None, true, false, AttemptOutcome::Policy),
            (Some(302), false, false, AttemptOutcome::Status),
            (Some(503), false, false, AttemptOutcome::Status),
            (None, false, true, AttemptOutcome::Timeout),
            (None, false, false, AttemptOutcome::Network),
        ];
        for (status, denied, timed_out, want) in cases {
            let got = attempt_kind(&report(status, denied, timed_out));
            assert_eq!(
                got, want,
                "{status:?} denied={denied} timed_out={timed_out}"
            );
        }
        let mut ok = report(Some(200), false, false);
        ok.outcome = Outcome::Succeeded;
        assert_eq!(attempt_kind(&ok), AttemptOutcome::Success);
    }
}
