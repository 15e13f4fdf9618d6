//! Retention: deletes events whose work is over once they are older than
//! `[store] retention_s`, with their decisions, deliveries and attempts,
//! so the store stays bounded under a steady stream of events.
//!
//! A background task asks the store to prune in small batches (each one
//! short transaction among the pipeline's group commits), again at once
//! while batches come back full, otherwise every few seconds. Events with
//! work still pending are never deleted, however old.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::app::App;
use crate::ingest::now_ms;

/// Events deleted per store call: one short write among the pipeline's.
const BATCH: usize = 500;

/// Pause between two batches that both came back full, so pruning a large
/// backlog leaves the writer to the pipeline most of the time.
const BETWEEN_FULL_BATCHES: Duration = Duration::from_millis(20);

/// How often to look for prunable events: a quarter of the retention,
/// between 1 s and 60 s.
fn interval(retention: Duration) -> Duration {
    (retention / 4).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// Prune until `shutdown` turns true. `retention` zero means keep
/// everything (the task returns at once).
pub async fn run(app: Arc<App>, retention: Duration, mut shutdown: watch::Receiver<bool>) {
    if retention.is_zero() {
        return;
    }
    let every = interval(retention);
    while !*shutdown.borrow() {
        let before =
            now_ms().saturating_sub(u64::try_from(retention.as_millis()).unwrap_or(u64::MAX));
        let wait = match app.store.prune(before, BATCH).await {
            Ok(pruned) => {
                app.metrics.events_pruned(pruned.deleted);
                if pruned.deleted > 0 {
                    tracing::debug!(events = pruned.deleted, "retention: pruned finished events");
                }
                if pruned.more {
                    BETWEEN_FULL_BATCHES
                } else {
                    every
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "retention: pruning failed; trying again later");
                every
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_follows_the_retention_within_bounds() {
        assert_eq!(interval(Duration::from_secs(1)), Duration::from_secs(1));
        assert_eq!(interval(Duration::from_secs(40)), Duration::from_secs(10));
        assert_eq!(
            interval(Duration::from_secs(7 * 24 * 3600)),
            Duration::from_secs(60)
        );
    }
}
