//! The outbound HTTP client: one [`Deliverer`] per plugin.
//!
//! A hyper-util pooled client (HTTP/1.1, and HTTP/2 when the server offers
//! it over ALPN) whose connector vets every resolved address with the
//! plugin's [`AddressGuard`]. [`Deliverer::send`] makes one attempt: it adds
//! the `webhook-*` headers, bounds the whole exchange by a timeout, reads at
//! most a capped prefix of the response, follows redirects only when
//! enabled (vetting every hop), and classifies the result.
//!
//! Why one client per plugin: the connection pool is keyed by scheme and
//! authority only. A shared pool would let plugin B reuse a connection that
//! plugin A's guard approved (say, through A's `allow_private_networks`)
//! without B's guard ever seeing the address.
//!
//! The request handed in is already policy-checked with secrets filled in;
//! this module knows nothing of WebAssembly, the store or retry schedules.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderMap};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::CertificateDer;

use super::connect::{ConnectError, GuardedConnector, RemoteAddr};
use super::guard::{
    AddressGuard, HopRefused, RedirectGuard, RedirectHop, Resolver, SystemResolver,
};
use super::outcome::{
    AttemptOutcome, AttemptReport, TransportFailure, classify_failure, classify_status,
};
use super::request::{build_headers, is_followable, redirected_method};
use super::retry::parse_retry_after;
use super::sign::SigningKey;
use super::tls::{ClientIdentity, TlsConfigError, client_config};
use crate::model::Method;

/// Settings of a [`Deliverer`].
#[derive(Clone)]
pub struct ClientOptions {
    /// Resolves host names; the system resolver by default.
    pub resolver: Arc<dyn Resolver>,
    /// Bound on each TCP connect (the attempt timeout bounds it too).
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per destination.
    pub pool_max_idle_per_host: usize,
    /// Offer HTTP/2 over ALPN on HTTPS connections.
    pub http2: bool,
    /// Roots trusted in addition to the webpki set (private CAs, tests).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Presented to receivers that require a client certificate.
    pub client_identity: Option<ClientIdentity>,
    /// `user-agent` sent when the plugin sets none.
    pub user_agent: String,
    /// An HTTP proxy every connection tunnels through (`[egress] proxy`).
    pub proxy: Option<super::connect::Proxy>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            resolver: Arc::new(SystemResolver),
            connect_timeout: Duration::from_secs(10),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 32,
            http2: true,
            extra_roots: Vec::new(),
            client_identity: None,
            user_agent: concat!("wasmhook/", env!("CARGO_PKG_VERSION")).to_owned(),
            proxy: None,
        }
    }
}

/// Why a [`Deliverer`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The TLS configuration is invalid.
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
}

/// One attempt's request: already policy-checked, secrets filled in.
#[derive(Clone, Copy)]
pub struct SendRequest<'a> {
    /// HTTP method.
    pub method: Method,
    /// Absolute http(s) URL.
    pub url: &'a str,
    /// Plugin headers; framing headers (`Host`, `Content-Length`, …) are
    /// refused, `webhook-*` ones replaced.
    pub headers: &'a [(String, String)],
    /// Request body.
    pub body: &'a [u8],
    /// Stable id of the delivery, sent as `webhook-id` on every attempt so
    /// receivers can de-duplicate; empty for a request that is not a
    /// webhook (no `webhook-id` header, and it must not be signed).
    pub webhook_id: &'a str,
    /// Sign with Standard Webhooks headers when set.
    pub signing: &'a [SigningKey],
    /// Bound on the whole attempt: connect, headers, body, redirects.
    pub timeout: Duration,
    /// At most this many response body bytes are read and kept; the
    /// connection is dropped if the body is longer.
    pub response_body_limit: usize,
    /// Follow redirects under this guard; `None` (the default choice)
    /// makes a 3xx the final answer.
    pub redirects: Option<&'a dyn RedirectGuard>,
}

/// Sends requests for one plugin. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct Deliverer {
    client: Client<GuardedConnector, Full<Bytes>>,
    user_agent: String,
}

impl Deliverer {
    /// A client whose connections all pass `guard`.
    pub fn new(
        guard: Arc<dyn AddressGuard>,
        options: ClientOptions,
    ) -> Result<Self, DeliveryError> {
        let tls = client_config(
            &options.extra_roots,
            options.client_identity.as_ref(),
            options.http2,
        )?;
        let connector = GuardedConnector::new(
            options.resolver,
            guard,
            tls,
            options.connect_timeout,
            options.proxy,
        );
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(options.pool_idle_timeout)
            .pool_max_idle_per_host(options.pool_max_idle_per_host)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Ok(Self {
            client,
            user_agent: options.user_agent,
        })
    }

    /// Make one attempt and report what happened. Never panics on bad
    /// input and never returns an error: every failure is an outcome.
    pub async fn send(&self, req: SendRequest<'_>) -> AttemptReport {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + req.timeout;
        let mut report = self.attempt(&req, deadline).await;
        report.duration = started.elapsed();
        report
    }

    async fn attempt(
        &self,
        req: &SendRequest<'_>,
        deadline: tokio::time::Instant,
    ) -> AttemptReport {
        let now_s = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut hop = match self.prepare(req, req.method, req.url, req.headers, req.body, now_s) {
            Ok(hop) => hop,
            Err(f) => return failure(f, 0),
        };
        let mut redirects = 0u32;
        loop {
            let response = match self.exchange(&hop, deadline).await {
                Ok(r) => r,
                Err(f) => return failure(f, redirects),
            };
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get(header::LOCATION)
                .map(|l| l.to_str().map(str::to_owned));
            let (Some(guard), true, Some(location)) =
                (req.redirects, is_followable(status), location)
            else {
                let mut report = finish(response, status, req.response_body_limit, deadline).await;
                report.redirects = redirects;
                return report;
            };
            let max_hops = guard.max_hops();
            if redirects >= max_hops {
                let mut report = finish(response, status, req.response_body_limit, deadline).await;
                report.outcome = AttemptOutcome::Failed {
                    reason: format!("HTTP {status}: more than {max_hops} redirects"),
                };
                report.redirects = redirects;
                return report;
            }
            let remote_addr = response.extensions().get::<RemoteAddr>().map(|r| r.0);
            drop(response); // not reading the 3xx body: the connection closes
            let refused = |failure_: TransportFailure| {
                let mut report = failure(failure_, redirects);
                report.status_code = Some(status);
                report.remote_addr = remote_addr;
                report
            };
            let Ok(location) = location else {
                let e = "redirect Location is not ASCII".to_string();
                return refused(TransportFailure::InvalidRequest(e));
            };
            let (method, keep_body) = redirected_method(status, hop.method);
            let next = match guard.next_hop(&RedirectHop {
                from: &hop.url,
                location: &location,
                status,
                hop: redirects + 1,
                method,
                keep_body,
            }) {
                Ok(next) => next,
                Err(HopRefused::Denied(denied)) => {
                    return refused(TransportFailure::Denied(format!("redirect: {denied}")));
                }
                Err(HopRefused::Unavailable(why)) => {
                    return refused(TransportFailure::Connection(format!("redirect: {why}")));
                }
            };
            let (headers, body): (Vec<_>, &[u8]) = if keep_body {
                (next.headers, &next.body)
            } else {
                let headers = next.headers.into_iter();
                let headers = headers.filter(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
                (headers.collect(), &[])
            };
            hop = match self.prepare(req, method, &next.url, &headers, body, now_s) {
                Ok(hop) => hop,
                Err(f) => return refused(f),
            };
            redirects += 1;
        }
    }

    /// Validate and assemble one hop: URL, headers, signature, body.
    fn prepare(
        &self,
        req: &SendRequest<'_>,
        method: Method,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
        now_s: i64,
    ) -> Result<Hop, TransportFailure> {
        let invalid = TransportFailure::InvalidRequest;
        let url = match url::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => u,
            _ => return Err(invalid("not an absolute http(s) URL".into())),
        };
        let uri: http::Uri = url
            .as_str()
            .parse()
            .map_err(|_| invalid("URL is not a valid URI".into()))?;
        let signing = (!req.signing.is_empty()).then_some((req.signing, now_s));
        let headers = build_headers(
            method,
            headers,
            body,
            req.webhook_id,
            signing,
            &self.user_agent,
        )
        .map_err(invalid)?;
        Ok(Hop {
            method,
            url,
            uri,
            headers,
            body: Bytes::copy_from_slice(body),
        })
    }

    /// Send one hop and wait for the response head.
    async fn exchange(
        &self,
        hop: &Hop,
        deadline: tokio::time::Instant,
    ) -> Result<http::Response<Incoming>, TransportFailure> {
        let mut request = http::Request::new(Full::new(hop.body.clone()));
        *request.method_mut() = http_method(hop.method);
        *request.uri_mut() = hop.uri.clone();
        *request.headers_mut() = hop.headers.clone();
        match tokio::time::timeout_at(deadline, self.client.request(request)).await {
            Err(_) => Err(TransportFailure::Timeout),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(client_failure(&e)),
        }
    }
}

/// One hop, ready for the wire.
struct Hop {
    method: Method,
    url: url::Url,
    uri: http::Uri,
    headers: HeaderMap,
    body: Bytes,
}

/// Read the capped body of the final response and classify it.
async fn finish(
    response: http::Response<Incoming>,
    status: u16,
    limit: usize,
    deadline: tokio::time::Instant,
) -> AttemptReport {
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let remote_addr = response.extensions().get::<RemoteAddr>().map(|r| r.0);
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    let mut truncated = false;
    let mut error = None;
    while !hyper::body::Body::is_end_stream(&body) {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                truncated = true;
                error = Some("timed out reading the response body".to_string());
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                error = Some(format!("reading the response body: {e}"));
                break;
            }
            Ok(Some(Ok(frame))) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                let room = limit - bytes.len();
                if data.len() > room {
                    bytes.extend_from_slice(&data[..room]);
                    truncated = true;
                    break; // dropping `body` closes the connection
                }
                bytes.extend_from_slice(&data);
            }
        }
    }
    AttemptReport {
        status_code: Some(status),
        error,
        duration: Duration::ZERO,
        outcome: classify_status(status, retry_after),
        response_bytes: bytes,
        response_truncated: truncated,
        response_content_type: content_type,
        remote_addr,
        redirects: 0,
        denied_by_policy: false,
        timed_out: false,
    }
}

fn failure(failure: TransportFailure, redirects: u32) -> AttemptReport {
    let (error, denied) = match &failure {
        TransportFailure::Timeout => ("timed out".to_string(), false),
        TransportFailure::Connection(e) | TransportFailure::InvalidRequest(e) => (e.clone(), false),
        TransportFailure::Denied(e) => (e.clone(), true),
    };
    AttemptReport {
        status_code: None,
        error: Some(error),
        duration: Duration::ZERO,
        outcome: classify_failure(&failure),
        response_bytes: Vec::new(),
        response_truncated: false,
        response_content_type: None,
        remote_addr: None,
        redirects,
        denied_by_policy: denied,
        timed_out: matches!(failure, TransportFailure::Timeout),
    }
}

/// Map a client error to a transport failure by type, never by text: a
/// guard refusal found in the source chain is a denial.
fn client_failure(err: &hyper_util::client::legacy::Error) -> TransportFailure {
    let mut chain = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(connect) = e.downcast_ref::<ConnectError>() {
            return match connect {
                ConnectError::Denied(d) => TransportFailure::Denied(d.to_string()),
                ConnectError::BadUri(m) => TransportFailure::InvalidRequest(m.clone()),
                other => TransportFailure::Connection(other.to_string()),
            };
        }
        chain.push(e.to_string());
        current = e.source();
    }
    TransportFailure::Connection(chain.join(": "))
}

fn http_method(method: Method) -> http::Method {
    match method {
        Method::Get => http::Method::GET,
        Method::Post => http::Method::POST,
        Method::Put => http::Method::PUT,
        Method::Patch => http::Method::PATCH,
        Method::Delete => http::Method::DELETE,
    }
}
