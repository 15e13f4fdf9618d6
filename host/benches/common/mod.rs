//! Shared pieces of the load and reliability drivers (`pipeline`,
//! `crash_loop`, `soak`, `hostile_load`, `paused_restart`): a recording loopback receiver,
//! a real `wasmhook serve` child process, config text, an ingest client
//! (closed-loop and paced), and small readers for `/proc` and `/metrics`.
//!
//! Everything stays on loopback; the host is the built binary with its
//! SQLite store in a temporary directory.

#![allow(dead_code)] // each driver uses a different subset

pub mod client;
pub mod receiver;
pub mod serve;

use std::time::Duration;

/// Ingest token of every bench config.
pub const INGEST_TOKEN: &str = "bench-ingest";
/// Admin token of every bench config.
pub const ADMIN_TOKEN: &str = "bench-admin";
/// Signing secret of every bench plugin.
pub const SIGNING_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The repository root.
pub fn repo_root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A built component in target/plugins; exits with the fix if missing.
pub fn component(name: &str) -> String {
    let path = repo_root().join(format!("target/plugins/{name}.wasm"));
    if !path.is_file() {
        eprintln!(
            "{} is missing: run scripts/build-plugins.sh",
            path.display()
        );
        std::process::exit(2);
    }
    path.display().to_string()
}

/// An environment variable parsed, or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `cargo bench -- --list` asks every bench target for its tests.
pub fn is_list_request() -> bool {
    std::env::args().any(|a| a == "--list")
}

/// The `p` quantile of sorted durations (nearest rank).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Milliseconds with one decimal.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Kibibytes as MiB with one decimal.
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// A `[server]`/`[auth]`/`[store]`/`[runtime]` head for a host listening
/// on `listen` with its database at `db`.
pub fn config_head(listen: &str, db: &std::path::Path) -> String {
    format!(
        r#"
[server]
listen = "{listen}"
max_batch_events = 1000
shutdown_grace_s = 1
[auth]
ingest_tokens = ["{INGEST_TOKEN}"]
admin_tokens = ["{ADMIN_TOKEN}"]
[store]
path = "{db}"
[runtime]
cache_dir = "{cache}"
"#,
        db = db.display(),
        cache = repo_root().join("target/wasmhook-test-cache").display(),
    )
}

/// One `[[plugins]]` entry running the `hostile` fixture in `mode`,
/// subscribed to `events`, allowed to reach the receiver at `receiver`
/// (`127.0.0.1:PORT`) and posting to `http://{receiver}{path}`.
/// `plugin_extra` lines go into the plugin table (limits), `config_extra`
/// into `[plugins.config]`, `delivery_extra` into `[plugins.delivery]`.
pub struct PluginBlock<'a> {
    pub name: &'a str,
    pub mode: &'a str,
    pub events: &'a str,
    pub receiver: std::net::SocketAddr,
    pub path: &'a str,
    pub plugin_extra: &'a str,
    pub config_extra: &'a str,
    pub delivery_extra: &'a str,
}

impl<'a> PluginBlock<'a> {
    /// The hostile fixture in `ok` mode, POSTing every event to
    /// `http://{receiver}/hook`, with no extra settings.
    pub fn ok(name: &'a str, events: &'a str, receiver: std::net::SocketAddr) -> Self {
        Self {
            name,
            mode: "ok",
            events,
            receiver,
            path: "/hook",
            plugin_extra: "",
            config_extra: "",
            delivery_extra: "",
        }
    }

    /// The TOML text.
    pub fn render(&self) -> String {
        format!(
            r#"
[[plugins]]
name = "{name}"
component = "{component}"
events = ["{events}"]
allowed_hosts = ["http://{addr}"]
allow_private_networks = ["127.0.0.1/32"]
{plugin_extra}
[plugins.config]
mode = "{mode}"
url = "http://{addr}{path}"
{config_extra}
[plugins.delivery]
signing_secret = "{SIGNING_SECRET}"
max_in_flight_per_host = 64
{delivery_extra}
"#,
            name = self.name,
            component = component("hostile"),
            events = self.events,
            addr = self.receiver,
            plugin_extra = self.plugin_extra,
            mode = self.mode,
            path = self.path,
            config_extra = self.config_extra,
            delivery_extra = self.delivery_extra,
        )
    }
}

/// The value of one sample in a Prometheus text exposition, e.g.
/// `metric(text, "wasmhook_queue_depth{queue=\"deliveries\"}")`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Every `wasmhook_plugin_invocations_total` sample: (plugin, outcome, n).
pub fn invocation_counts(text: &str) -> Vec<(String, String, u64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("wasmhook_plugin_invocations_total{plugin=\"") else {
            continue;
        };
        let Some((plugin, rest)) = rest.split_once("\",outcome=\"") else {
            continue;
        };
        let Some((outcome, n)) = rest.split_once("\"} ") else {
            continue;
        };
        if let Ok(n) = n.trim().parse::<f64>() {
            out.push((plugin.to_owned(), outcome.to_owned(), n as u64));
        }
    }
    out
}
