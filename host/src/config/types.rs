//! The top-level configuration structs (`[server]`, `[auth]`, `[store]`,
//! `[runtime]`; `[dns]` is in `dns.rs`, `[breakers]` in `breakers.rs`,
//! `[[destinations]]` in `destinations.rs`) with their defaults. Plain
//! data: loading and validation live in `mod.rs` and `validate.rs`; plugin
//! entries in `plugin.rs`.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde::Deserialize;

use super::breakers::BreakersConfig;
use super::de;
use super::destinations::DestinationConfig;
use super::dns::DnsConfig;
use super::plugin::PluginConfig;
use crate::model::Secret;

/// A whole `wasmhook.toml`, loaded by [`Config::load`]: relative paths
/// already resolved against the file's directory, `${VAR}`s and secrets
/// already read from the environment, everything validated.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The HTTP listener and its limits.
    pub server: ServerConfig,
    /// Who may call ingest and the management API.
    pub auth: AuthConfig,
    /// Where accepted events, deliveries and plugin `kv` data persist.
    pub store: StoreConfig,
    /// Engine-wide plugin runtime settings (optional section `[runtime]`).
    pub runtime: RuntimeSection,
    /// The plugins, each a `[[plugins]]` entry; order is kept.
    pub plugins: Vec<PluginConfig>,
    /// Name resolution overrides for deliveries (optional section `[dns]`).
    pub dns: DnsConfig,
    /// How deliveries leave the host: an HTTP proxy (optional section
    /// `[egress]`).
    pub egress: super::proxy::EgressConfig,
    /// Circuit breaker tuning (optional section `[breakers]`).
    pub breakers: BreakersConfig,
    /// Limits shared by every plugin's deliveries to one destination, each
    /// a `[[destinations]]` entry.
    pub destinations: Vec<DestinationConfig>,
    /// The files `${file:PATH}` values were read from (resolved), which a
    /// reload reads again.
    #[serde(skip)]
    pub watched_files: Vec<PathBuf>,
}

/// `[server]`: the HTTP edge.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to bind. Loopback by default so a fresh install is not
    /// reachable from the network by accident.
    #[serde(deserialize_with = "de::socket_addr")]
    pub listen: SocketAddr,
    /// Largest ingest request body; bigger ones get 413 before parsing, so
    /// one client cannot make the host buffer arbitrary amounts.
    pub max_body_bytes: usize,
    /// Most events in one batch request; bounds the work (and the single
    /// store transaction) one request can cause.
    pub max_batch_events: usize,
    /// Most events a second each ingest token may send (a second's worth
    /// at once); more get 429 with `Retry-After`. Unlimited by default.
    pub ingest_events_per_second: Option<f64>,
    /// On SIGTERM/SIGINT, how long in-flight work may take to finish before
    /// the process exits and leaves the rest queued.
    pub shutdown_grace_s: u64,
    /// Most HTTP connections open at once; at the cap the listener stops
    /// accepting until one closes (keep it below the process's open-file
    /// limit, which the store and outbound connections share).
    pub max_connections: usize,
    /// TLS for the listener: a PEM certificate chain (both or neither
    /// with `tls_key_file`). Re-read on every reload.
    pub tls_cert_file: Option<PathBuf>,
    /// The PEM private key of `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// Mutual TLS: PEM CA certificates; every client must then present a
    /// certificate one of them issued (on top of its bearer token). Needs
    /// `tls_cert_file`. Re-read on every reload.
    pub tls_client_ca_file: Option<PathBuf>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
            max_body_bytes: 1024 * 1024,
            max_batch_events: 1000,
            ingest_events_per_second: None,
            shutdown_grace_s: 10,
            max_connections: 1024,
            tls_cert_file: None,
            tls_key_file: None,
            tls_client_ca_file: None,
        }
    }
}

/// `[auth]`: bearer tokens. Ingest and admin tokens are separate so that a
/// product team's ingest token cannot replay or inspect deliveries.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Tokens accepted by `POST /v1/events`. Several, so tokens can be
    /// rotated without downtime.
    #[serde(deserialize_with = "de::secret_list")]
    pub ingest_tokens: Vec<Secret>,
    /// Tokens accepted by the management API (`/v1/deliveries`, ...).
    #[serde(deserialize_with = "de::secret_list")]
    pub admin_tokens: Vec<Secret>,
    /// Tokens accepted by the read-only part of the management API: its
    /// `GET`s and `/metrics` (for a Prometheus scraper or a support
    /// dashboard), nothing that retries, cancels, pauses, clears or runs a
    /// plugin. Admin tokens may read too.
    #[serde(deserialize_with = "de::secret_list")]
    pub read_tokens: Vec<Secret>,
    /// Run with no tokens at all. Explicit, because an open webhook relay
    /// is a security problem; refused when tokens are configured too.
    pub insecure_no_auth: bool,
}

/// `[store]`: persistence.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Which storage backend; only the embedded one exists so far, the
    /// enum leaves room for a distributed one.
    pub backend: StoreBackend,
    /// Database file; resolved relative to the config file's directory so
    /// the config works from any working directory.
    pub path: PathBuf,
    /// How long an event is kept once all its work is over (every plugin
    /// has decided, every delivery succeeded or failed for good), in
    /// seconds; its decisions, deliveries and attempts go with it. Events
    /// with work pending are kept however old. 0 keeps everything.
    pub retention_s: u64,
}

/// Default of `store.retention_s`: 7 days.
pub const DEFAULT_RETENTION_S: u64 = 7 * 24 * 3600;

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Sqlite,
            path: PathBuf::from("wasmhook.db"),
            retention_s: DEFAULT_RETENTION_S,
        }
    }
}

/// Storage backends (`store.backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// Embedded SQLite database in one file (WAL mode).
    #[default]
    Sqlite,
}

/// `[runtime]`: settings shared by all plugins.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSection {
    /// Directory for compiled components, so restarts skip recompiling;
    /// `None` uses the runtime's default (`$WASMHOOK_CACHE_DIR` or the user
    /// cache dir). Resolved relative to the config file's directory.
    pub cache_dir: Option<PathBuf>,
    /// Most MiB the compile cache may hold; the least recently used
    /// entries are removed beyond it. `None`: 1024.
    pub cache_max_mb: Option<u64>,
    /// Enable fuel metering in the engine. Costs some speed; required by
    /// any plugin that sets `fuel`.
    pub fuel: bool,
}
