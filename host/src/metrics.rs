//! Process metrics in the Prometheus text format: events accepted, plugin
//! invocations by outcome and duration, deliveries by outcome, attempt
//! latency, queue depth. Counters are updated by the pipeline; `render`
//! is called by `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::tokens::TokenStats;

/// Bucket upper bounds in seconds.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0, 30.0,
];

#[derive(Debug, Clone, Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, le) in BUCKETS.iter().enumerate() {
            if s <= *le {
                self.counts[i] += 1;
            }
        }
        self.sum += s;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, le) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {}",
                self.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

/// What a scrape reads besides the counters: the queue depth as the store
/// sees it, and which plugins an operator has paused.
#[derive(Debug, Clone, Default)]
pub struct Depth {
    /// Invocations not yet completed.
    pub invocations_pending: u64,
    /// Deliveries not yet succeeded or failed.
    pub deliveries_pending: u64,
    /// Each configured plugin, and whether an operator has it paused.
    pub paused_by_operator: Vec<(String, bool)>,
    /// Each `[[destinations]]` entry with a `max_in_flight`, and its
    /// requests in flight from all plugins.
    pub destinations_in_flight: Vec<(String, usize)>,
    /// Each `oauth2` secret (plugin, secret) and its token's counters.
    pub tokens: Vec<(String, String, TokenStats)>,
    /// Each configured plugin's kv store: bytes held, and its quota.
    pub kv: Vec<(String, u64, u64)>,
}

/// An open connection, counted in `wasmhook_connections_open` until
/// dropped.
pub struct OpenConnection<'a>(&'a AtomicU64);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// All counters of the process.
#[derive(Default)]
pub struct Metrics {
    events_accepted: AtomicU64,
    events_duplicate: AtomicU64,
    events_rate_limited: AtomicU64,
    events_pruned: AtomicU64,
    connections_open: AtomicU64,
    connections_at_cap: AtomicU64,
    invocations: Mutex<BTreeMap<(String, String), u64>>,
    invocation_seconds: Mutex<BTreeMap<String, Histogram>>,
    deliveries: Mutex<BTreeMap<(String, String), u64>>,
    attempt_seconds: Mutex<Histogram>,
    plugin_pauses: Mutex<BTreeMap<String, u64>>,
    invocations_deferred: Mutex<BTreeMap<String, u64>>,
    invocations_expired: Mutex<BTreeMap<String, u64>>,
    destination_pauses: Mutex<BTreeMap<String, u64>>,
    deliveries_deferred: Mutex<BTreeMap<String, u64>>,
    deliveries_rate_limited: Mutex<BTreeMap<String, u64>>,
    invocations_replayed: Mutex<BTreeMap<String, u64>>,
    deliveries_cancelled: AtomicU64,
    destination_limited: Mutex<BTreeMap<(String, String), u64>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Add one to a per-plugin counter.
fn bump(counter: &Mutex<BTreeMap<String, u64>>, plugin: &str) {
    add(counter, plugin, 1);
}

/// Add `n` to a per-plugin counter.
fn add(counter: &Mutex<BTreeMap<String, u64>>, plugin: &str, n: u64) {
    *lock(counter).entry(plugin.to_owned()).or_default() += n;
}

/// Escape a label value.
/// The `# HELP` and `# TYPE` lines that open a metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Each plugin's kv store against its quota, for an alert before it fills.
fn render_kv(out: &mut String, depth: &Depth) {
    family(
        out,
        "wasmhook_kv_bytes",
        "gauge",
        "Bytes (keys and values) a plugin's kv store holds.",
    );
    for (plugin, bytes, _) in &depth.kv {
        let _ = writeln!(
            out,
            "wasmhook_kv_bytes{{plugin=\"{}\"}} {bytes}",
            esc(plugin)
        );
    }
    family(
        out,
        "wasmhook_kv_max_bytes",
        "gauge",
        "A plugin's kv quota (kv_max_mb); a write past it traps the invocation.",
    );
    for (plugin, _, max) in &depth.kv {
        let _ = writeln!(
            out,
            "wasmhook_kv_max_bytes{{plugin=\"{}\"}} {max}",
            esc(plugin)
        );
    }
}

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Count events committed by ingest (new and duplicate).
    pub fn events(&self, accepted: u64, duplicates: u64) {
        self.events_accepted.fetch_add(accepted, Ordering::Relaxed);
        self.events_duplicate
            .fetch_add(duplicates, Ordering::Relaxed);
    }

    /// Count events refused by the ingest rate limit.
    pub fn events_rate_limited(&self, n: u64) {
        self.events_rate_limited.fetch_add(n, Ordering::Relaxed);
    }

    /// Count events deleted by retention.
    pub fn events_pruned(&self, n: u64) {
        self.events_pruned.fetch_add(n, Ordering::Relaxed);
    }

    /// A connection was accepted; it counts as open until the returned
    /// guard is dropped.
    pub fn connection_opened(&self) -> OpenConnection<'_> {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        OpenConnection(&self.connections_open)
    }

    /// Count one time the listener stopped accepting because
    /// `server.max_connections` connections were open.
    pub fn connections_at_cap(&self) {
        self.connections_at_cap.fetch_add(1, Ordering::Relaxed);
    }

    /// Count one plugin invocation (`outcome`: fire, skip, or an error kind).
    pub fn invocation(&self, plugin: &str, outcome: &str, elapsed: Duration) {
        *lock(&self.invocations)
            .entry((plugin.to_owned(), outcome.to_owned()))
            .or_default() += 1;
        lock(&self.invocation_seconds)
            .entry(plugin.to_owned())
            .or_default()
            .observe(elapsed);
    }

    /// Count a plugin's breaker opening (the plugin was paused).
    pub fn plugin_paused(&self, plugin: &str) {
        bump(&self.plugin_pauses, plugin);
    }

    /// Count one invocation put back in the queue because its plugin is
    /// paused.
    pub fn invocation_deferred(&self, plugin: &str) {
        bump(&self.invocations_deferred, plugin);
    }

    /// Count `n` invocations settled as expired without running: their
    /// events were older than the plugin's `max_event_age_s`.
    pub fn invocations_expired(&self, plugin: &str, n: u64) {
        add(&self.invocations_expired, plugin, n);
    }

    /// Count a destination breaker opening for one of `plugin`'s
    /// destinations (labelled by plugin only: with wildcard allowlists the
    /// destinations are unbounded; `/v1/plugins` names them).
    pub fn destination_paused(&self, plugin: &str) {
        bump(&self.destination_pauses, plugin);
    }

    /// Count one delivery put back in the queue because its destination is
    /// paused.
    pub fn delivery_deferred(&self, plugin: &str) {
        bump(&self.deliveries_deferred, plugin);
    }

    /// Count `n` decisions of `plugin` made pending again by a replay.
    pub fn invocations_replayed(&self, plugin: &str, n: u64) {
        add(&self.invocations_replayed, plugin, n);
    }

    /// Count `n` deliveries cancelled by an operator.
    pub fn deliveries_cancelled(&self, n: u64) {
        self.deliveries_cancelled.fetch_add(n, Ordering::Relaxed);
    }

    /// Count one delivery put back in the queue until its turn under the
    /// destination's `max_per_second_per_host`.
    pub fn delivery_rate_limited(&self, plugin: &str) {
        bump(&self.deliveries_rate_limited, plugin);
    }

    /// Count one delivery held back by a `[[destinations]]` limit shared
    /// by all plugins (`limit`: `rate` or `in_flight`).
    pub fn destination_limited(&self, destination: &str, limit: &str) {
        *lock(&self.destination_limited)
            .entry((destination.to_owned(), limit.to_owned()))
            .or_default() += 1;
    }

    /// Count one delivery attempt result (`outcome`: succeeded, retry,
    /// failed, denied).
    pub fn delivery(&self, plugin: &str, outcome: &str, latency: Option<Duration>) {
        *lock(&self.deliveries)
            .entry((plugin.to_owned(), outcome.to_owned()))
            .or_default() += 1;
        if let Some(d) = latency {
            lock(&self.attempt_seconds).observe(d);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self, depth: Depth) -> String {
        let mut out = String::new();
        let load = |n: &AtomicU64| n.load(Ordering::Relaxed);
        for (name, kind, help, value) in [
            (
                "wasmhook_events_accepted_total",
                "counter",
                "Events durably accepted by ingest.",
                load(&self.events_accepted),
            ),
            (
                "wasmhook_events_duplicate_total",
                "counter",
                "Events whose id was already accepted.",
                load(&self.events_duplicate),
            ),
            (
                "wasmhook_events_rate_limited_total",
                "counter",
                "Events refused by the per-token ingest rate limit (429).",
                load(&self.events_rate_limited),
            ),
            (
                "wasmhook_events_pruned_total",
                "counter",
                "Finished events deleted by retention.",
                load(&self.events_pruned),
            ),
            (
                "wasmhook_connections_open",
                "gauge",
                "HTTP connections open on the listener.",
                load(&self.connections_open),
            ),
            (
                "wasmhook_connections_at_cap_total",
                "counter",
                "Times the listener paused accepting because server.max_connections were open.",
                load(&self.connections_at_cap),
            ),
            (
                "wasmhook_deliveries_cancelled_total",
                "counter",
                "Pending deliveries cancelled by an operator.",
                load(&self.deliveries_cancelled),
            ),
        ] {
            family(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        family(
            &mut out,
            "wasmhook_plugin_invocations_total",
            "counter",
            "Plugin invocations by outcome.",
        );
        for ((plugin, outcome), n) in lock(&self.invocations).iter() {
            let _ = writeln!(
                out,
                "wasmhook_plugin_invocations_total{{plugin=\"{}\",outcome=\"{}\"}} {n}",
                esc(plugin),
                esc(outcome)
            );
        }
        family(
            &mut out,
            "wasmhook_plugin_invocation_seconds",
            "histogram",
            "Plugin invocation wall time.",
        );
        for (plugin, h) in lock(&self.invocation_seconds).iter() {
            h.render(
                &mut out,
                "wasmhook_plugin_invocation_seconds",
                &format!("plugin=\"{}\"", esc(plugin)),
            );
        }
        for (name, help, map) in [
            (
                "wasmhook_plugin_pauses_total",
                "Times a plugin was paused because its runs kept failing.",
                &self.plugin_pauses,
            ),
            (
                "wasmhook_plugin_invocations_deferred_total",
                "Invocations put back in the queue while their plugin was paused.",
                &self.invocations_deferred,
            ),
            (
                "wasmhook_plugin_invocations_expired_total",
                "Invocations not run because their event was older than the plugin's max_event_age_s.",
                &self.invocations_expired,
            ),
            (
                "wasmhook_destination_pauses_total",
                "Times one of a plugin's destinations was paused because its deliveries kept failing.",
                &self.destination_pauses,
            ),
            (
                "wasmhook_deliveries_deferred_total",
                "Deliveries put back in the queue while their destination was paused.",
                &self.deliveries_deferred,
            ),
            (
                "wasmhook_plugin_invocations_replayed_total",
                "Decisions made pending again by POST /v1/plugins/{name}/replay.",
                &self.invocations_replayed,
            ),
            (
                "wasmhook_deliveries_rate_limited_total",
                "Deliveries put back in the queue until their turn under max_per_second_per_host.",
                &self.deliveries_rate_limited,
            ),
        ] {
            family(&mut out, name, "counter", help);
            for (plugin, n) in lock(map).iter() {
                let _ = writeln!(out, "{name}{{plugin=\"{}\"}} {n}", esc(plugin));
            }
        }
        family(
            &mut out,
            "wasmhook_deliveries_total",
            "counter",
            "Delivery attempt results by outcome.",
        );
        for ((plugin, outcome), n) in lock(&self.deliveries).iter() {
            let _ = writeln!(
                out,
                "wasmhook_deliveries_total{{plugin=\"{}\",outcome=\"{}\"}} {n}",
                esc(plugin),
                esc(outcome)
            );
        }
        family(
            &mut out,
            "wasmhook_attempt_seconds",
            "histogram",
            "Outbound HTTP attempt latency.",
        );
        lock(&self.attempt_seconds).render(&mut out, "wasmhook_attempt_seconds", "");
        let _ = writeln!(out, "# HELP wasmhook_queue_depth Work not yet finished.");
        let _ = writeln!(out, "# TYPE wasmhook_queue_depth gauge");
        let _ = writeln!(
            out,
            "wasmhook_queue_depth{{queue=\"invocations\"}} {}",
            depth.invocations_pending
        );
        let _ = writeln!(
            out,
            "wasmhook_queue_depth{{queue=\"deliveries\"}} {}",
            depth.deliveries_pending
        );
        family(
            &mut out,
            "wasmhook_plugin_paused_by_operator",
            "gauge",
            "1 while an operator has the plugin paused.",
        );
        for (plugin, held) in &depth.paused_by_operator {
            let _ = writeln!(
                out,
                "wasmhook_plugin_paused_by_operator{{plugin=\"{}\"}} {}",
                esc(plugin),
                u8::from(*held)
            );
        }
        self.render_destinations(&mut out, &depth);
        render_tokens(&mut out, &depth);
        render_kv(&mut out, &depth);
        out
    }

    /// The `[[destinations]]` limits: requests in flight, deliveries held
    /// back.
    fn render_destinations(&self, out: &mut String, depth: &Depth) {
        family(
            out,
            "wasmhook_destination_in_flight",
            "gauge",
            "Requests in flight to a [[destinations]] entry with max_in_flight, from all plugins.",
        );
        for (destination, n) in &depth.destinations_in_flight {
            let _ = writeln!(
                out,
                "wasmhook_destination_in_flight{{destination=\"{}\"}} {n}",
                esc(destination)
            );
        }
        family(
            out,
            "wasmhook_destination_limited_total",
            "counter",
            "Deliveries held back by a [[destinations]] limit shared by all plugins (put back in the queue).",
        );
        for ((destination, limit), n) in lock(&self.destination_limited).iter() {
            let _ = writeln!(
                out,
                "wasmhook_destination_limited_total{{destination=\"{}\",limit=\"{}\"}} {n}",
                esc(destination),
                esc(limit)
            );
        }
    }
}

/// The OAuth2 token sources: fetches by outcome, and whether a token is
/// in hand.
fn render_tokens(out: &mut String, depth: &Depth) {
    family(
        out,
        "wasmhook_oauth2_token_fetches_total",
        "counter",
        "Requests to an oauth2 secret's token endpoint, by outcome (since the secret's settings last changed).",
    );
    for (plugin, secret, stats) in &depth.tokens {
        for (outcome, n) in [("ok", stats.fetches_ok), ("failed", stats.fetches_failed)] {
            let _ = writeln!(
                out,
                "wasmhook_oauth2_token_fetches_total{{plugin=\"{}\",secret=\"{}\",outcome=\"{outcome}\"}} {n}",
                esc(plugin),
                esc(secret)
            );
        }
    }
    family(
        out,
        "wasmhook_oauth2_token_valid",
        "gauge",
        "1 while an oauth2 secret has an unexpired token in hand, else 0 (its deliveries wait).",
    );
    for (plugin, secret, stats) in &depth.tokens {
        let _ = writeln!(
            out,
            "wasmhook_oauth2_token_valid{{plugin=\"{}\",secret=\"{}\"}} {}",
            esc(plugin),
            esc(secret),
            u8::from(stats.valid)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let m = Metrics::default();
        m.events(3, 1);
        m.invocation("crm", "fire", Duration::from_micros(300));
        m.invocation("crm", "timeout", Duration::from_millis(100));
        m.delivery("crm", "succeeded", Some(Duration::from_millis(4)));
        m.invocations_replayed("crm", 4);
        m.deliveries_cancelled(2);
        m.destination_limited("api.hubapi.com:443", "rate");
        m.destination_limited("api.hubapi.com:443", "rate");
        let text = m.render(Depth {
            invocations_pending: 2,
            deliveries_pending: 5,
            paused_by_operator: vec![("crm".into(), true), ("slack".into(), false)],
            destinations_in_flight: vec![("api.hubapi.com:443".into(), 3)],
            tokens: vec![(
                "crm".into(),
                "SF_TOKEN".into(),
                TokenStats {
                    fetches_ok: 2,
                    fetches_failed: 1,
                    valid: true,
                    expires_in: None,
                    last_error: None,
                },
            )],
            kv: vec![("crm".into(), 2048, 67_108_864)],
        });
        assert!(
            text.contains("wasmhook_kv_bytes{plugin=\"crm\"} 2048\n")
                && text.contains("wasmhook_kv_max_bytes{plugin=\"crm\"} 67108864\n"),
            "{text}"
        );
        assert!(
            text.contains("wasmhook_oauth2_token_fetches_total{plugin=\"crm\",secret=\"SF_TOKEN\",outcome=\"ok\"} 2\n")
                && text.contains("wasmhook_oauth2_token_fetches_total{plugin=\"crm\",secret=\"SF_TOKEN\",outcome=\"failed\"} 1\n")
                && text.contains("wasmhook_oauth2_token_valid{plugin=\"crm\",secret=\"SF_TOKEN\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("wasmhook_destination_in_flight{destination=\"api.hubapi.com:443\"} 3\n")
                && text.contains(
                    "wasmhook_destination_limited_total{destination=\"api.hubapi.com:443\",limit=\"rate\"} 2\n"
                ),
            "{text}"
        );
        assert!(
            text.contains("wasmhook_plugin_paused_by_operator{plugin=\"crm\"} 1\n")
                && text.contains("wasmhook_plugin_paused_by_operator{plugin=\"slack\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("wasmhook_plugin_invocations_replayed_total{plugin=\"crm\"} 4\n"),
            "{text}"
        );
        assert!(
            text.contains("wasmhook_deliveries_cancelled_total 2\n"),
            "{text}"
        );
        assert!(
            text.contains("wasmhook_events_accepted_total 3\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "wasmhook_plugin_invocations_total{plugin=\"crm\",outcome=\"timeout\"} 1\n"
            )
        );
        assert!(
            text.contains(
                "wasmhook_plugin_invocation_seconds_bucket{plugin=\"crm\",le=\"0.0005\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains("wasmhook_plugin_invocation_seconds_count{plugin=\"crm\"} 2\n"));
        assert!(
            text.contains("wasmhook_attempt_seconds_bucket{le=\"0.005\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("wasmhook_queue_depth{queue=\"deliveries\"} 5\n"));
        assert!(text.contains("wasmhook_connections_open 0\n"), "{text}");
    }

    #[test]
    fn open_connections_are_counted_until_their_guard_drops() {
        let m = Metrics::default();
        let first = m.connection_opened();
        let second = m.connection_opened();
        m.connections_at_cap();
        assert!(
            m.render(Depth::default())
                .contains("wasmhook_connections_open 2\n")
        );
        drop(first);
        let text = m.render(Depth::default());
        assert!(text.contains("wasmhook_connections_open 1\n"), "{text}");
        assert!(
            text.contains("wasmhook_connections_at_cap_total 1\n"),
            "{text}"
        );
        drop(second);
        assert!(
            m.render(Depth::default())
                .contains("wasmhook_connections_open 0\n")
        );
    }
}
