//! The state shared by the HTTP edge, the workers and the management API
//! for the life of a `serve` process.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use tokio::sync::Notify;

use crate::metrics::Metrics;
use crate::registry::PluginSet;
use crate::runtime::Runtime;
use crate::server::Tokens;
use crate::store::Store;
use crate::worker::Handoff;

/// Limits applied by ingest.
#[derive(Debug, Clone, Copy)]
pub struct IngestLimits {
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Most events in one batch.
    pub max_batch_events: usize,
}

/// Everything a running host shares.
pub struct App {
    /// Durable queues, delivery log and kv.
    pub store: Arc<dyn Store>,
    /// The Wasm runtime (one engine per process).
    pub runtime: Runtime,
    /// The current plugin set; swapped atomically on reload.
    pub plugins: ArcSwap<PluginSet>,
    /// The current tokens; swapped on reload.
    pub tokens: ArcSwap<Tokens>,
    /// Ingest limits.
    pub limits: IngestLimits,
    /// Events a second per ingest token (`[server]
    /// ingest_events_per_second`), when limited.
    pub ingest_rate: Option<crate::server::IngestRate>,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// Hands fresh jobs to the workers in process.
    pub handoff: Handoff,
    /// Wakes the invocation worker (new events stored without hand-off).
    pub invocations_ready: Notify,
    /// Wakes the delivery worker (new deliveries, manual retries).
    pub deliveries_ready: Notify,
    /// Set when shutdown begins: readiness fails, workers stop leasing.
    pub shutting_down: AtomicBool,
    /// The last readiness probe of the store, shared by the `/readyz`
    /// calls of the next second: the probe is a write, and `/readyz`
    /// needs no token.
    pub readiness: crate::api::ReadinessCache,
}

impl App {
    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// The current plugin set.
    pub fn plugins(&self) -> Arc<PluginSet> {
        self.plugins.load_full()
    }
}
