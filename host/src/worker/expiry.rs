//! Events too old to run. A plugin with `max_event_age_s` does not run an
//! event accepted longer ago than that: its decision is recorded as an
//! `expired` error instead, so a late message is not sent hours after it
//! stopped making sense, and a paused plugin's backlog does not grow for
//! ever. A job is checked when its turn comes (before parking and again
//! after waiting for an executor); parked jobs, which no turn reaches
//! while their plugin is paused, are swept between lease calls.

use std::time::Duration;

use crate::app::App;
use crate::ingest::now_ms;
use crate::registry::{LoadedPlugin, PluginSet};
use crate::runtime::ErrorKind;
use crate::store::{InvocationJob, InvocationOutcome, Verdict};

/// Parked jobs looked at per store call.
const SWEEP_BATCH: usize = 500;
/// Most store calls per plugin per sweep, so a huge backlog is worked off
/// over several sweeps without holding up the lease loop.
const SWEEP_CALLS: usize = 8;

/// The outcome recorded for an expired job.
fn expired(max_age: Duration, detail: &str) -> InvocationOutcome {
    InvocationOutcome {
        verdict: Verdict::Error {
            kind: ErrorKind::Expired,
            message: format!(
                "not run: the event is older than this plugin's max_event_age_s ({} s){detail}",
                max_age.as_secs()
            ),
        },
        duration_us: 0,
        fuel: None,
    }
}

/// The outcome for `job` if its event is too old for `loaded` at `now_ms`.
pub(super) fn check(
    loaded: &LoadedPlugin,
    job: &InvocationJob,
    now_ms: u64,
) -> Option<InvocationOutcome> {
    let max_age = loaded.max_event_age?;
    let age = Duration::from_millis(now_ms.saturating_sub(job.created_ms));
    (age > max_age).then(|| {
        expired(
            max_age,
            &format!("; it was accepted {} s ago", age.as_secs()),
        )
    })
}

/// Settle the parked jobs whose events are too old. Also after the pause
/// ends: the probe is one parked job made due at a time, and it should not
/// have to wade through an expired backlog one job per second.
pub(super) async fn sweep_parked(app: &App, set: &PluginSet) {
    for loaded in set.plugins.values() {
        let Some(max_age) = loaded.max_event_age else {
            continue;
        };
        if !loaded.runs.has_parked() {
            // Nothing of its own to find; the look would only wade
            // through other plugins' parked jobs.
            continue;
        }
        let ms = now_ms();
        let cut = ms.saturating_sub(u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX));
        let outcome = expired(max_age, " and waited while the plugin was paused");
        let mut settled = 0;
        for _ in 0..SWEEP_CALLS {
            match app
                .store
                .expire_parked_invocations(&loaded.name, cut, outcome.clone(), ms, SWEEP_BATCH)
                .await
            {
                Ok(n) => {
                    settled += n;
                    if n < SWEEP_BATCH as u64 {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(plugin = %loaded.name, error = %e, "expiring parked invocations failed; retrying later");
                    break;
                }
            }
        }
        if settled > 0 {
            app.metrics.invocations_expired(&loaded.name, settled);
            tracing::warn!(
                plugin = %loaded.name,
                invocations = settled,
                max_event_age_s = max_age.as_secs(),
                "parked invocations expired: their events waited longer than max_event_age_s while the plugin was paused; recorded as errors, not run"
            );
        }
    }
}
