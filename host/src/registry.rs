//! The set of loaded plugins and everything each needs to run and deliver:
//! its compiled component, egress policy, HTTP client, signing key, limits
//! and breakers (unhealthy destinations; the plugin's own failures). Built from configuration in one go, so a reload either
//! produces a complete new set or fails and leaves the old one running.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;

use crate::breaker::{Breaker, BreakerConfig};
use crate::config::{
    BreakerTuning, BreakersConfig, Bypass, Config, DeliveryConfig, DnsConfig, PluginConfig,
    event_pattern_matches,
};
use crate::delivery::{
    ClientIdentity, ClientOptions, Deliverer, DestinationLimiter, NoProxy, Proxy, RateLimiter,
    Resolver, SigningKey, SystemResolver,
};
use crate::pem;
use crate::plugin_health::RunHealth;
use crate::plugin_hold::Hold;
use crate::policy::{EgressPolicy, SecretValue};
use crate::runtime::{Plugin, PluginLimits, PluginSpec, Runtime};
use crate::shared_limits::SharedLimits;
use crate::store::KvStore;
use crate::tokens::TokenSource;

/// One plugin, ready to invoke and deliver for.
pub struct LoadedPlugin {
    /// Its name.
    pub name: String,
    /// The compiled component.
    pub plugin: Plugin,
    /// Event-name patterns it subscribes to.
    pub events: Vec<String>,
    /// Its egress policy (allowlist, private networks, secrets).
    pub policy: Arc<EgressPolicy>,
    /// Its own HTTP client: connections are approved by this plugin's
    /// policy, so they must not be shared with another plugin.
    pub deliverer: Deliverer,
    /// Retry schedule, timeouts, limits.
    pub delivery: DeliveryConfig,
    /// Standard Webhooks signing keys: the current one first, then the
    /// previous ones still signed with; empty when unsigned.
    pub signing: Vec<SigningKey>,
    /// In-flight cap per destination. Kept across a reload while
    /// `max_in_flight_per_host` is unchanged, so deliveries still running
    /// on the old set count against the same cap.
    pub limiter: Arc<DestinationLimiter>,
    /// Requests-per-second cap per destination
    /// (`max_per_second_per_host`), when set. Kept across a reload while
    /// the rate is unchanged, so the schedule and its reservations hold.
    pub rate: Option<Arc<RateLimiter>>,
    /// Unhealthy-host breaker, keyed by destination. Kept across a reload
    /// while its tuning is unchanged: a reload says nothing new about the
    /// destinations.
    pub health: Arc<Breaker>,
    /// How its runs have been going (its own breaker: a plugin whose runs
    /// the sandbox keeps stopping is paused, so it cannot burn the
    /// executors in a hot loop). Kept across a reload while the plugin runs
    /// the same way ([`RunIdentity`]); anything else starts afresh.
    pub runs: Arc<RunHealth>,
    /// An operator's pause (`POST /v1/plugins/{name}/pause`). Kept across
    /// every reload that keeps the plugin's name.
    pub hold: Arc<Hold>,
    /// The OAuth2 tokens its `oauth2` secrets stand for, by secret name.
    /// Kept across a reload while a secret's settings (and the CA
    /// certificates its endpoint is checked with) are unchanged.
    pub tokens: BTreeMap<String, Arc<TokenSource>>,
    /// Events older than this are not run (`max_event_age_s`).
    pub max_event_age: Option<Duration>,
    /// What its run history is about.
    run_identity: RunIdentity,
}

/// Everything that decides how a plugin's runs go: the same component
/// with the same settings, limits and pause tuning behaves as before, so
/// what was learned about it (proven, failing, paused) still holds.
#[derive(Debug, PartialEq)]
struct RunIdentity {
    component_hash: String,
    limits: PluginLimits,
    config: BTreeMap<String, String>,
    assets: Option<PathBuf>,
    tuning: BreakerTuning,
}

impl RunIdentity {
    /// A digest of all of it, for the store to remember a pause by. The
    /// same wasmhook version digests the same identity the same way; a
    /// version whose rendering differs only makes paused plugins start
    /// afresh once.
    fn digest(&self) -> String {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(format!("{self:?}")))
    }
}

impl LoadedPlugin {
    /// Whether its jobs wait parked at `now`: an operator holds it, or its
    /// breaker has it paused (or probing).
    pub fn is_paused(&self, now: Instant) -> bool {
        self.hold.is_held() || self.runs.is_paused(now)
    }

    /// Whether this plugin wants events named `name`.
    pub fn subscribes_to(&self, name: &str) -> bool {
        self.events.iter().any(|p| event_pattern_matches(p, name))
    }
}

/// All plugins of one configuration generation.
#[derive(Default)]
pub struct PluginSet {
    /// By name.
    pub plugins: BTreeMap<String, Arc<LoadedPlugin>>,
    /// Limits shared by every plugin's deliveries to a destination
    /// (`[[destinations]]`).
    pub destinations: SharedLimits,
}

/// Why a plugin set could not be built.
#[derive(Debug, thiserror::Error)]
#[error("plugin {plugin}: {message}")]
pub struct RegistryError {
    /// The plugin at fault.
    pub plugin: String,
    /// What went wrong.
    pub message: String,
}

/// The unhealthy-host breaker of one plugin's deliveries, tuned by
/// `[breakers.destinations]`. A probe is a delivery, which reports back
/// within the plugin's `delivery.timeout_s` unless its worker died; only
/// then is the half-open slot freed for another probe.
fn destination_breaker(tuning: BreakerTuning, delivery: &DeliveryConfig) -> BreakerConfig {
    BreakerConfig::new(
        tuning,
        Duration::from_secs(delivery.timeout_s) + Duration::from_secs(10),
    )
}

/// The CA certificates and client certificate of a plugin's deliveries
/// (`ca_file`, `client_cert_file` and `client_key_file`), read again on
/// every build so a reload picks up renewed files.
fn delivery_tls(
    delivery: &DeliveryConfig,
) -> Result<(Vec<CertificateDer<'static>>, Option<ClientIdentity>), String> {
    let read = |key: &str, file: &Path| {
        pem::certificates(file).map_err(|e| format!("delivery.{key}: {e}"))
    };
    let roots = match &delivery.ca_file {
        Some(file) => read("ca_file", file)?,
        None => Vec::new(),
    };
    let identity = match (&delivery.client_cert_file, &delivery.client_key_file) {
        (Some(cert), Some(key)) => Some(ClientIdentity {
            chain: read("client_cert_file", cert)?,
            key: pem::private_key(key).map_err(|e| format!("delivery.client_key_file: {e}"))?,
        }),
        _ => None,
    };
    Ok((roots, identity))
}

/// Shared inputs for building plugins.
pub struct Builder<'a> {
    /// The Wasm runtime.
    pub runtime: &'a Runtime,
    /// The durable kv backing every plugin's `kv` import.
    pub kv: Arc<dyn KvStore>,
    /// DNS resolver used by every delivery client (injectable for tests).
    pub resolver: Arc<dyn Resolver>,
}

impl Builder<'_> {
    /// A builder with the system resolver.
    pub fn system_resolver() -> Arc<dyn Resolver> {
        Arc::new(SystemResolver)
    }

    /// Build every plugin of a configuration. With the `previous` set (a
    /// reload), an unchanged plugin keeps its run history, breakers and
    /// destination slots (see the fields of [`LoadedPlugin`]), and an
    /// unchanged `[[destinations]]` limit its limiter.
    pub fn build(
        &self,
        config: &Config,
        previous: Option<&PluginSet>,
    ) -> Result<PluginSet, RegistryError> {
        let mut plugins = BTreeMap::new();
        let proxy = config.egress.proxy_parsed.as_ref().map(|p| Proxy {
            host: p.host.clone(),
            port: p.port,
            authorization: p.authorization.clone(),
            no_proxy: p
                .no_proxy
                .iter()
                .map(|b| match b {
                    Bypass::Network(ip, prefix) => NoProxy::Network(*ip, *prefix),
                    Bypass::Name { name, subdomains } => NoProxy::Name {
                        name: name.clone(),
                        subdomains: *subdomains,
                    },
                })
                .collect(),
        });
        for pc in &config.plugins {
            let before = previous.and_then(|set| set.plugins.get(&pc.name));
            let loaded = self
                .build_one(
                    pc,
                    &config.breakers,
                    before.map(|p| &**p),
                    proxy.as_ref(),
                    &config.dns,
                )
                .map_err(|message| RegistryError {
                    plugin: pc.name.clone(),
                    message,
                })?;
            plugins.insert(pc.name.clone(), Arc::new(loaded));
        }
        // A shared breaker's probe is some plugin's delivery: forget it
        // after the longest delivery timeout.
        let longest = config
            .plugins
            .iter()
            .map(|p| &p.delivery)
            .max_by_key(|d| d.timeout_s);
        let shared_breaker = destination_breaker(
            config.breakers.destinations(),
            longest.unwrap_or(&DeliveryConfig::default()),
        );
        let destinations = SharedLimits::build(
            &config.destinations,
            &shared_breaker,
            previous.map(|set| &set.destinations),
        );
        Ok(PluginSet {
            plugins,
            destinations,
        })
    }

    /// A token source for each `oauth2` secret of `pc`: the one of the
    /// plugin's previous build when its settings are unchanged, else a
    /// new one (which starts fetching).
    fn token_sources(
        &self,
        pc: &PluginConfig,
        roots: &[CertificateDer<'static>],
        before: Option<&LoadedPlugin>,
        proxy: Option<&Proxy>,
        pins: &DnsConfig,
    ) -> Result<BTreeMap<String, Arc<TokenSource>>, String> {
        let mut tokens = BTreeMap::new();
        for (name, secret) in &pc.secrets {
            let Some(oauth) = &secret.oauth2 else {
                continue;
            };
            let source = match before.and_then(|b| b.tokens.get(name)) {
                Some(old) if old.is_for(oauth, roots, proxy, pins) => old.clone(),
                _ => TokenSource::start(
                    &pc.name,
                    name,
                    oauth,
                    roots.to_vec(),
                    self.resolver.clone(),
                    proxy.cloned(),
                    pins.clone(),
                )?,
            };
            tokens.insert(name.clone(), source);
        }
        Ok(tokens)
    }

    fn build_one(
        &self,
        pc: &PluginConfig,
        breakers: &BreakersConfig,
        before: Option<&LoadedPlugin>,
        proxy: Option<&Proxy>,
        pins: &DnsConfig,
    ) -> Result<LoadedPlugin, String> {
        let spec = PluginSpec {
            name: pc.name.clone(),
            config: pc.config.clone(),
            assets_dir: pc.assets.clone(),
            limits: PluginLimits {
                timeout_ms: pc.timeout_ms,
                memory_mb: pc.memory_mb,
                fuel: pc.fuel,
                instance_reuse: pc.instance_reuse,
                max_requests: pc.max_requests,
                max_body_bytes: pc.max_body_bytes,
                kv_max_bytes: pc.kv_max_mb * 1024 * 1024,
                ..PluginLimits::default()
            },
            kv: self.kv.clone(),
        };
        let plugin = self
            .runtime
            .load_file(&pc.component, spec)
            .map_err(|e| format!("{}: {e}", pc.component.display()))?;
        let (extra_roots, client_identity) = delivery_tls(&pc.delivery)?;
        let tokens = self.token_sources(pc, &extra_roots, before, proxy, pins)?;
        let mut spec = pc.policy_spec();
        for (name, source) in &tokens {
            if let Some(rule) = spec.secrets.get_mut(name) {
                rule.value = SecretValue::Live(source.clone());
            }
        }
        let policy = Arc::new(EgressPolicy::new(spec).map_err(|e| e.to_string())?);
        let deliverer = Deliverer::new(
            policy.clone(),
            ClientOptions {
                resolver: self.resolver.clone(),
                extra_roots,
                client_identity,
                proxy: proxy.cloned(),
                // Keep a connection for every request the limiter lets
                // run at once; a smaller idle pool closes the surplus after
                // each request and reconnects for the next.
                pool_max_idle_per_host: ClientOptions::default()
                    .pool_max_idle_per_host
                    .max(pc.delivery.max_in_flight_per_host),
                ..ClientOptions::default()
            },
        )
        .map_err(|e| e.to_string())?;
        let signing = pc
            .delivery
            .signing_secret
            .iter()
            .map(|s| ("signing_secret".to_owned(), s))
            .chain(
                pc.delivery
                    .previous_signing_secrets
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (format!("previous_signing_secrets[{i}]"), s)),
            )
            .map(|(key, s)| {
                SigningKey::from_whsec(s.expose()).map_err(|e| format!("delivery.{key}: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let run_identity = RunIdentity {
            component_hash: plugin.info().hash.clone(),
            limits: plugin.limits().clone(),
            config: pc.config.clone(),
            assets: pc.assets.clone(),
            tuning: breakers.plugins(),
        };
        let runs = match before {
            Some(b) if b.run_identity == run_identity => b.runs.clone(),
            _ => Arc::new(RunHealth::new(
                &pc.name,
                pc.timeout_ms,
                breakers.plugins(),
                run_identity.digest(),
            )),
        };
        let breaker = destination_breaker(breakers.destinations(), &pc.delivery);
        let health = match before {
            Some(b) if b.health.config().same_tuning(&breaker) => {
                b.health.set_probe_timeout(breaker.probe_timeout);
                b.health.clone()
            }
            _ => Arc::new(Breaker::new(breaker)),
        };
        let rate = pc.delivery.max_per_second_per_host.map(|per_second| {
            match before.and_then(|b| b.rate.as_ref()) {
                Some(r) if r.per_second() == per_second => r.clone(),
                _ => Arc::new(RateLimiter::new(per_second)),
            }
        });
        let in_flight = pc.delivery.max_in_flight_per_host;
        let limiter = match before {
            Some(b) if b.delivery.max_in_flight_per_host == in_flight => b.limiter.clone(),
            _ => Arc::new(DestinationLimiter::new(in_flight)),
        };
        Ok(LoadedPlugin {
            name: pc.name.clone(),
            plugin,
            events: pc.events.clone(),
            policy,
            deliverer,
            delivery: pc.delivery.clone(),
            signing,
            limiter,
            rate,
            health,
            runs,
            hold: before.map_or_else(Arc::default, |b| b.hold.clone()),
            tokens,
            max_event_age: pc.max_event_age_s.map(Duration::from_secs),
            run_identity,
        })
    }
}

impl PluginSet {
    /// The plugins subscribed to `event_name`, split into those that run
    /// and those whose failure breaker has them paused at `now` (their
    /// jobs are stored parked, and they are marked as having parked jobs
    /// so their next good run makes them due).
    pub fn route(&self, event_name: &str, now: Instant) -> (Vec<String>, Vec<String>) {
        let (mut running, mut paused) = (Vec::new(), Vec::new());
        for p in self
            .plugins
            .values()
            .filter(|p| p.subscribes_to(event_name))
        {
            if p.is_paused(now) {
                p.runs.mark_parked();
                paused.push(p.name.clone());
            } else {
                running.push(p.name.clone());
            }
        }
        (running, paused)
    }

    /// Each `oauth2` secret (plugin, secret) and its token source.
    pub fn token_sources(&self) -> Vec<(&str, &str, &Arc<TokenSource>)> {
        self.plugins
            .values()
            .flat_map(|p| {
                p.tokens
                    .iter()
                    .map(|(secret, source)| (p.name.as_str(), secret.as_str(), source))
            })
            .collect()
    }

    /// Each `oauth2` secret (plugin, secret) and its token's counters.
    pub fn token_stats(&self) -> Vec<(String, String, crate::tokens::TokenStats)> {
        self.token_sources()
            .into_iter()
            .map(|(plugin, secret, source)| (plugin.to_owned(), secret.to_owned(), source.stats()))
            .collect()
    }

    /// A plugin by name.
    pub fn get(&self, name: &str) -> Option<Arc<LoadedPlugin>> {
        self.plugins.get(name).cloned()
    }

    /// The longest plugin deadline (sizes invocation leases).
    pub fn max_plugin_timeout(&self) -> Duration {
        self.plugins
            .values()
            .map(|p| Duration::from_millis(p.plugin.limits().timeout_ms))
            .max()
            .unwrap_or(Duration::from_millis(100))
    }

    /// The longest delivery timeout of any plugin (sizes delivery leases).
    pub fn max_delivery_timeout(&self) -> Duration {
        self.plugins
            .values()
            .map(|p| Duration::from_secs(p.delivery.timeout_s))
            .max()
            .unwrap_or(Duration::from_secs(30))
    }
}
