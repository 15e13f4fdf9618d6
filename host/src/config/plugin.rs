//! One `[[plugins]]` entry: which component, which events, where it may
//! send, its limits, settings, secrets and delivery options. Plain data
//! with defaults; nothing here loads components or talks to the network.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

pub use super::oauth2::{AssertionKey, ClientAuth, OAuth2Config, OAuth2Grant, SigningAlg};
use super::{de, glob};
use crate::model::{Method, Secret};

/// A plugin and everything the host needs to run it and deliver for it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Unique name, `[a-z0-9][a-z0-9_-]*`: it appears in the API and in
    /// metrics and namespaces the plugin's `kv` data, so it must be stable
    /// and URL-safe.
    pub name: String,
    /// The `.wasm` component; resolved relative to the config file's
    /// directory and checked to exist at load time.
    pub component: PathBuf,
    /// Event-name patterns the plugin subscribes to (`*` any run of
    /// characters, `?` one character); see [`PluginConfig::subscribes_to`].
    pub events: Vec<String>,
    /// Egress allowlist, `scheme://host[:port]` patterns (parsed by
    /// `policy::HostPattern`). Empty: the plugin may send nothing.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Methods the plugin may use; `None` allows all five.
    #[serde(default, deserialize_with = "de::opt_methods")]
    pub allowed_methods: Option<Vec<Method>>,
    /// CIDRs exempted from the private-network block, for destinations on
    /// an internal network the operator trusts.
    #[serde(default)]
    pub allow_private_networks: Vec<String>,
    /// Wall-clock budget per invocation, 1..=60000 ms: a slow plugin must
    /// not stall the worker.
    #[serde(default = "defaults::timeout_ms")]
    pub timeout_ms: u64,
    /// Linear-memory cap per instance, 1..=4096 MiB.
    #[serde(default = "defaults::memory_mb")]
    pub memory_mb: u64,
    /// Most MiB its `kv` store may hold (keys and values), 1..=1048576: a
    /// plugin storing without end fills its own namespace, not the disk.
    #[serde(default = "defaults::kv_max_mb")]
    pub kv_max_mb: u64,
    /// Fuel budget per invocation, for deterministic CPU limits; needs
    /// `runtime.fuel = true`. `None`: no metering for this plugin.
    #[serde(default)]
    pub fuel: Option<u64>,
    /// Reuse one instance for up to this many events (0 or 1: fresh
    /// instance each time). Faster for heavy JS components, but globals
    /// leak from one event to the next.
    #[serde(default)]
    pub instance_reuse: u32,
    /// Most requests one decision may contain, so a buggy plugin cannot
    /// fan one event out into thousands of deliveries.
    #[serde(default = "defaults::max_requests")]
    pub max_requests: usize,
    /// Largest request body the plugin may build, in bytes.
    #[serde(default = "defaults::max_body_bytes")]
    pub max_body_bytes: usize,
    /// Directory mounted read-only at `/assets` (templates, lookup tables);
    /// resolved relative to the config file's directory.
    #[serde(default)]
    pub assets: Option<PathBuf>,
    /// Redirects to follow per delivery, each hop re-checked against the
    /// policy; 0 (the default) treats 3xx as a failure.
    #[serde(default)]
    pub follow_redirects: u32,
    /// Events older than this (seconds since they were accepted) are not
    /// run any more: their decision is recorded as an `expired` error.
    /// Bounds how late a time-sensitive message may go out, and how long a
    /// paused plugin's backlog is kept. `None`: events wait however long.
    #[serde(default)]
    pub max_event_age_s: Option<u64>,
    /// `[plugins.config]`: settings the plugin reads through `config.get`.
    /// Numbers and booleans are given to the plugin as text.
    #[serde(default, deserialize_with = "de::settings")]
    pub config: BTreeMap<String, String>,
    /// `[plugins.secrets]`: values substituted for `{{secret:NAME}}` at send
    /// time, never visible to the plugin.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretConfig>,
    /// `[plugins.delivery]`: how requests are sent and retried.
    #[serde(default)]
    pub delivery: DeliveryConfig,
}

impl PluginConfig {
    /// Is this plugin subscribed to events named `event_name`?
    pub fn subscribes_to(&self, event_name: &str) -> bool {
        self.events.iter().any(|p| glob::matches(p, event_name))
    }
}

impl Default for PluginConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            component: PathBuf::new(),
            events: Vec::new(),
            allowed_hosts: Vec::new(),
            allowed_methods: None,
            allow_private_networks: Vec::new(),
            timeout_ms: defaults::timeout_ms(),
            memory_mb: defaults::memory_mb(),
            kv_max_mb: defaults::kv_max_mb(),
            fuel: None,
            instance_reuse: 0,
            max_requests: defaults::max_requests(),
            max_body_bytes: defaults::max_body_bytes(),
            assets: None,
            max_event_age_s: None,
            follow_redirects: 0,
            config: BTreeMap::new(),
            secrets: BTreeMap::new(),
            delivery: DeliveryConfig::default(),
        }
    }
}

/// One secret: `NAME = { env = "VAR", hosts = ["api.example.com"] }`, or
/// `file = "…"` instead of `env` (exactly one of the two).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretConfig {
    /// Environment variable holding the value, so secrets stay out of the
    /// config file.
    pub env: Option<String>,
    /// File holding the value (a mounted Kubernetes secret, a file Vault
    /// Agent renders), relative to the config file; trailing line breaks
    /// are dropped. Read again on every reload, and a change to it
    /// triggers one, so a rotated token is used without a restart.
    pub file: Option<PathBuf>,
    /// An OAuth2 client-credentials grant instead of a stored value: the
    /// host fetches an access token and keeps it fresh, and the placeholder
    /// stands for the current token.
    pub oauth2: Option<OAuth2Config>,
    /// Hosts the value may be sent to (`api.example.com`, `*.example.com`);
    /// a placeholder in a request to any other host fails the delivery, so
    /// a plugin cannot exfiltrate the secret. Must not be empty.
    pub hosts: Vec<String>,
    /// The value, read from `env` or `file` at load time (empty for
    /// `oauth2`, whose value is fetched while the host runs).
    #[serde(skip, default = "defaults::unresolved")]
    pub value: Secret,
}

/// `[plugins.delivery]`: sending and retrying.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Timeout of one attempt (connect to last response byte), seconds.
    pub timeout_s: u64,
    /// Delay before each retry, in seconds; its length is the number of
    /// retries. After the last one the delivery is dead-lettered.
    pub retry_schedule_s: Vec<u64>,
    /// Standard Webhooks signing secret (`whsec_` + base64); when set every
    /// delivery carries `webhook-signature`.
    #[serde(deserialize_with = "de::opt_secret")]
    pub signing_secret: Option<Secret>,
    /// Earlier signing secrets, still signed with while receivers move to
    /// `signing_secret`: each delivery then carries one signature per
    /// secret in `webhook-signature` (Standard Webhooks' rotation). Needs
    /// `signing_secret`.
    #[serde(deserialize_with = "de::secrets")]
    pub previous_signing_secrets: Vec<Secret>,
    /// Concurrent requests to one destination host, so a slow receiver
    /// cannot take all connections.
    pub max_in_flight_per_host: usize,
    /// Most requests a second to one destination host (after a burst of
    /// one second's worth); unset: no limit. For APIs with a rate limit.
    pub max_per_second_per_host: Option<f64>,
    /// Most bytes of a response body read from the receiver (the rest is
    /// not read); of a refusal's answer the delivery log keeps the first
    /// 2 KiB, redacted.
    pub response_body_limit_bytes: usize,
    /// PEM file of CA certificates trusted for HTTPS deliveries next to the
    /// public roots (an internal service's private CA).
    pub ca_file: Option<PathBuf>,
    /// PEM certificate chain presented to receivers that require a client
    /// certificate (mutual TLS); needs `client_key_file`.
    pub client_cert_file: Option<PathBuf>,
    /// The PEM private key of `client_cert_file`.
    pub client_key_file: Option<PathBuf>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            timeout_s: 30,
            retry_schedule_s: vec![5, 300, 1800, 7200, 18000, 36000, 36000],
            signing_secret: None,
            previous_signing_secrets: Vec::new(),
            max_in_flight_per_host: 16,
            max_per_second_per_host: None,
            response_body_limit_bytes: 64 * 1024,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
        }
    }
}

mod defaults {
    use crate::model::Secret;

    pub(super) fn timeout_ms() -> u64 {
        100
    }
    pub(super) fn memory_mb() -> u64 {
        64
    }
    pub(super) fn kv_max_mb() -> u64 {
        64
    }
    pub(super) fn max_requests() -> usize {
        16
    }
    pub(super) fn max_body_bytes() -> usize {
        1024 * 1024
    }
    pub(super) fn unresolved() -> Secret {
        Secret::new("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribes_to_any_matching_pattern() {
        let plugin = PluginConfig {
            events: vec!["order.*".into(), "user.signed_up".into()],
            ..PluginConfig::default()
        };
        let cases = [
            ("order.paid", true),
            ("order.shipped.late", true),
            ("user.signed_up", true),
            ("user.deleted", false),
            ("orders", false),
        ];
        for (name, want) in cases {
            assert_eq!(plugin.subscribes_to(name), want, "{name}");
        }
        assert!(!PluginConfig::default().subscribes_to("anything"));
    }
}
