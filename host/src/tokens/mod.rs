//! OAuth2 access tokens that secrets stand for (`oauth2 = { … }` in
//! `[plugins.secrets]`). One [`TokenSource`] per such secret fetches a
//! token (client credentials, with a secret or a signed assertion, or the
//! JWT-bearer grant), keeps it, and renews it on its
//! own task when three quarters of its lifetime have passed, backing off
//! while the endpoint fails (the token in hand stays in use until it
//! expires). The egress policy reads the current token through
//! [`LiveSecret`] when it fills a request in, so plugins never see it; a
//! receiver's 401 asks for a new one early.
//!
//! Built with each plugin set and kept across reloads that leave the
//! secret's settings unchanged, so a reload does not fetch again.

mod fetch;
mod jwt;
#[cfg(test)]
mod tests;

pub use fetch::FETCH_TIMEOUT;
pub use jwt::{Claims, JwtSigner, RESERVED_CLAIMS};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use tokio::sync::{Notify, oneshot, watch};

use crate::config::{DnsConfig, OAuth2Config, OAuth2Grant};
use crate::delivery::{ClientOptions, Deliverer, Proxy, Resolver};
use crate::model::Secret;
use crate::policy::{LiveSecret, Unavailable};

/// Renew when this share of a token's lifetime has passed.
const RENEW_AT: f64 = 0.75;
/// Never renew sooner than this after a fetch.
const MIN_RENEW: Duration = Duration::from_secs(1);
/// How often a token whose lifetime the provider does not say is renewed.
const UNKNOWN_LIFETIME_RENEW: Duration = Duration::from_secs(3600);
/// After a receiver's 401, the earliest next fetch after the last one: a
/// token that every receiver refuses (a wrong scope) is not fetched in a
/// loop. The gap doubles each time the token a refusal brought is refused
/// in turn, up to [`MAX_REJECTED_GAP`].
const REJECTED_GAP: Duration = Duration::from_secs(5);
/// Longest gap between fetches that refusals ask for; a token refused
/// only after living this long starts again from [`REJECTED_GAP`].
const MAX_REJECTED_GAP: Duration = Duration::from_secs(300);
/// Longest wait between failed fetches (1 s, doubling).
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// One secret's token, kept fresh. Dropping the last handle ends its task.
pub struct TokenSource {
    shared: Arc<Shared>,
    /// What it was built from: an unchanged secret keeps its source.
    config: OAuth2Config,
    roots: Vec<CertificateDer<'static>>,
    proxy: Option<Proxy>,
    pins: DnsConfig,
    /// Whether its task runs (there was a runtime to start it on).
    running: bool,
    _stop: oneshot::Sender<()>,
}

/// What the source and its task share.
struct Shared {
    plugin: String,
    secret: String,
    /// The endpoint as messages show it.
    endpoint: String,
    state: Mutex<State>,
    /// A receiver refused the token.
    rejected: Notify,
    /// Fetches finished so far (to wait for the first).
    fetched: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    token: Option<Held>,
    /// The token `token` replaced: requests filled with it may still be
    /// answered, quoting it (see `LiveSecret::recent`).
    previous: Option<Secret>,
    /// Why the last fetch failed; cleared by a good one.
    error: Option<String>,
    fetches_ok: u64,
    fetches_failed: u64,
}

struct Held {
    value: Secret,
    /// `None`: the provider did not say.
    expires_at: Option<Instant>,
}

/// A source's counters, for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenStats {
    /// Fetches that brought a token.
    pub fetches_ok: u64,
    /// Fetches that failed.
    pub fetches_failed: u64,
    /// Whether a token is in hand and unexpired.
    pub valid: bool,
    /// How long the token in hand has left, when the provider said.
    pub expires_in: Option<Duration>,
    /// Why the last fetch failed, when it did (never a credential).
    pub last_error: Option<String>,
}

impl TokenSource {
    /// A source for `plugin`'s secret `secret`, fetching on the current
    /// tokio runtime (none: it never fetches, and says so). `roots` are
    /// the plugin's extra CA certificates (`delivery.ca_file`).
    pub fn start(
        plugin: &str,
        secret: &str,
        config: &OAuth2Config,
        roots: Vec<CertificateDer<'static>>,
        resolver: Arc<dyn Resolver>,
        proxy: Option<Proxy>,
        pins: DnsConfig,
    ) -> Result<Arc<Self>, String> {
        let client = Deliverer::new(
            fetch::guard(),
            ClientOptions {
                resolver,
                extra_roots: roots.clone(),
                pool_max_idle_per_host: 1,
                proxy: proxy.clone(),
                ..ClientOptions::default()
            },
        )
        .map_err(|e| format!("secrets.{secret}.oauth2: {e}"))?;
        let grant = config
            .grant
            .clone()
            .ok_or_else(|| format!("secrets.{secret}.oauth2: not checked at load"))?;
        let signer = match grant.assertion_key() {
            Some(key) => {
                Some(JwtSigner::new(key).map_err(|e| format!("secrets.{secret}.oauth2: {e}"))?)
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            plugin: plugin.to_owned(),
            secret: secret.to_owned(),
            endpoint: fetch::shown(grant.token_url()),
            state: Mutex::new(State::default()),
            rejected: Notify::new(),
            fetched: watch::Sender::new(0),
        });
        let (stop, stopped) = oneshot::channel();
        let runtime = tokio::runtime::Handle::try_current().ok();
        if let Some(runtime) = &runtime {
            let request = Request {
                client,
                config: config.clone(),
                grant,
                signer,
            };
            runtime.spawn(renew(shared.clone(), request, stopped));
        }
        Ok(Arc::new(Self {
            shared,
            config: config.clone(),
            roots,
            proxy,
            pins,
            running: runtime.is_some(),
            _stop: stop,
        }))
    }

    /// Whether it was built from these settings (`pins`: the `[dns]`
    /// names its resolver was given, so that re-pinning the token
    /// endpoint's name on reload reaches the token fetches too).
    pub fn is_for(
        &self,
        config: &OAuth2Config,
        roots: &[CertificateDer<'static>],
        proxy: Option<&Proxy>,
        pins: &DnsConfig,
    ) -> bool {
        self.config == *config
            && self.roots == roots
            && self.proxy.as_ref() == proxy
            && self.pins == *pins
    }

    /// Wait (at most `timeout`) for the first fetch to finish, then say
    /// whether a token is in hand, or why not.
    pub async fn first_fetch(&self, timeout: Duration) -> Result<(), String> {
        let mut fetched = self.shared.fetched.subscribe();
        let _ = tokio::time::timeout(timeout, fetched.wait_for(|n| *n > 0)).await;
        match self.current() {
            Ok(_) => Ok(()),
            Err(Unavailable::Arriving) => Err(format!(
                "no OAuth2 token: {} did not answer within {} s",
                self.shared.endpoint,
                timeout.as_secs()
            )),
            Err(Unavailable::Missing(reason)) => Err(reason),
        }
    }

    /// Its counters.
    pub fn stats(&self) -> TokenStats {
        let st = self.shared.lock();
        let now = Instant::now();
        TokenStats {
            fetches_ok: st.fetches_ok,
            fetches_failed: st.fetches_failed,
            valid: st.token.as_ref().is_some_and(|t| t.usable(now)),
            expires_in: st
                .token
                .as_ref()
                .and_then(|t| t.expires_at)
                .map(|at| at.saturating_duration_since(now)),
            last_error: st.error.clone(),
        }
    }
}

impl LiveSecret for TokenSource {
    fn current(&self) -> Result<Secret, Unavailable> {
        let st = self.shared.lock();
        let endpoint = &self.shared.endpoint;
        match (&st.token, &st.error) {
            (Some(token), _) if token.usable(Instant::now()) => Ok(token.value.clone()),
            (Some(_), Some(error)) => Err(Unavailable::Missing(format!(
                "the OAuth2 token expired and renewing it failed: {error}"
            ))),
            (Some(_), None) => Err(Unavailable::Missing(format!(
                "the OAuth2 token expired; a new one from {endpoint} has not arrived yet"
            ))),
            (None, Some(error)) => Err(Unavailable::Missing(format!(
                "no OAuth2 token yet: {error}"
            ))),
            // The first fetch ends within its timeout, with a token or an
            // error; without a runtime it never starts.
            (None, None) if self.running => Err(Unavailable::Arriving),
            (None, None) => Err(Unavailable::Missing(format!(
                "no OAuth2 token: nothing fetches from {endpoint} in this process"
            ))),
        }
    }

    fn rejected(&self) {
        self.shared.rejected.notify_one();
    }

    fn recent(&self) -> Vec<Secret> {
        let st = self.shared.lock();
        st.token
            .iter()
            .map(|held| held.value.clone())
            .chain(st.previous.clone())
            .collect()
    }
}

impl Held {
    fn usable(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keep a fetch's result (of a request sent at `started`); when to
    /// fetch again.
    fn settle(
        &self,
        started: Instant,
        result: Result<fetch::Token, String>,
        failures: &mut u32,
    ) -> Instant {
        let (plugin, secret) = (&self.plugin, &self.secret);
        let next = {
            let mut st = self.lock();
            match result {
                Ok(token) => {
                    *failures = 0;
                    st.fetches_ok += 1;
                    st.error = None;
                    let expires_in_s = token.lifetime.map(|l| l.as_secs());
                    tracing::info!(%plugin, %secret, ?expires_in_s, "fetched an OAuth2 token");
                    let replaced = st.token.replace(Held {
                        value: token.value,
                        expires_at: token.lifetime.map(|l| started + l),
                    });
                    st.previous = replaced.map(|held| held.value);
                    started + renew_after(token.lifetime)
                }
                Err(reason) => {
                    *failures += 1;
                    st.fetches_failed += 1;
                    let wait = backoff(*failures);
                    tracing::warn!(%plugin, %secret, error = %reason, retry_in_s = wait.as_secs(), "fetching an OAuth2 token failed");
                    st.error = Some(reason);
                    Instant::now() + wait
                }
            }
        };
        self.fetched.send_modify(|n| *n += 1);
        next
    }
}

/// When to renew a token that lives `lifetime`.
fn renew_after(lifetime: Option<Duration>) -> Duration {
    lifetime.map_or(UNKNOWN_LIFETIME_RENEW, |l| {
        l.mul_f64(RENEW_AT).max(MIN_RENEW)
    })
}

/// Receivers' refusals of the tokens a source fetched: how soon they may
/// bring the next fetch.
#[derive(Debug, Default)]
struct Refusals {
    /// Fetches in a row that a refusal brought.
    streak: u32,
}

impl Refusals {
    /// A receiver refused the token fetched `since` ago: the earliest
    /// next fetch, counted from that fetch.
    fn gap(&mut self, since: Duration) -> Duration {
        if since >= MAX_REJECTED_GAP {
            self.streak = 0;
        }
        REJECTED_GAP
            .saturating_mul(1 << self.streak.min(16))
            .min(MAX_REJECTED_GAP)
    }

    /// A fetch is starting: whether a refusal brought it.
    fn fetching(&mut self, by_refusal: bool) {
        self.streak = if by_refusal { self.streak + 1 } else { 0 };
    }
}

/// The wait after the `failures`th failed fetch in a row.
fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.saturating_sub(1).min(6)).min(MAX_BACKOFF)
}

/// What a fetch needs.
struct Request {
    client: Deliverer,
    config: OAuth2Config,
    grant: OAuth2Grant,
    signer: Option<JwtSigner>,
}

/// The source's task: fetch, wait for the renewal time or a receiver's
/// refusal, again, until the source is dropped.
async fn renew(shared: Arc<Shared>, request: Request, mut stop: oneshot::Receiver<()>) {
    let Request {
        client,
        config,
        grant,
        signer,
    } = &request;
    let mut failures = 0;
    let mut refusals = Refusals::default();
    let mut by_refusal = false;
    loop {
        refusals.fetching(by_refusal);
        by_refusal = false;
        let started = Instant::now();
        let result = tokio::select! {
            result = fetch::fetch(client, config, grant, signer.as_ref()) => result,
            _ = &mut stop => return,
        };
        let next = shared.settle(started, result, &mut failures);
        let mut until = tokio::time::Instant::from_std(next);
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(until) => break,
                () = shared.rejected.notified() => {
                    let gap = refusals.gap(started.elapsed());
                    let earliest = tokio::time::Instant::from_std(started + gap);
                    if earliest < until {
                        let (plugin, secret) = (&shared.plugin, &shared.secret);
                        let in_s = earliest.saturating_duration_since(tokio::time::Instant::now()).as_secs();
                        tracing::info!(%plugin, %secret, in_s, "a receiver refused the OAuth2 token; fetching a new one");
                        until = earliest;
                        by_refusal = true;
                    }
                }
                _ = &mut stop => return,
            }
        }
    }
}
