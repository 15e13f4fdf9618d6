//! Test fixtures: a recording HTTP server (plain or TLS, HTTP/1.1 or
//! HTTP/2), guards and a self-signed CA.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;

use crate::delivery::{
    AddressDenied, AddressGuard, ClientOptions, Deliverer, HopRefused, NextHop, RedirectGuard,
    RedirectHop, SendRequest,
};
use crate::model::Method;

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: http::Method,
    pub path: String,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// What the server answers.
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
    /// Answer an endless body instead of `body`.
    pub endless: bool,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
            endless: false,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: &'static [u8]) -> Self {
        self.body = Bytes::from_static(body);
        self
    }

    pub fn endless(mut self) -> Self {
        self.endless = true;
        self
    }
}

/// A body that never ends: 64 KiB chunks forever.
struct Endless;

impl Body for Endless {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        static CHUNK: [u8; 65536] = [b'x'; 65536];
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(&CHUNK)))))
    }
}

/// A recording server on 127.0.0.1 with a random port.
pub struct TestServer {
    pub addr: SocketAddr,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// Plain HTTP/1.1.
    pub async fn start(reply: Reply) -> Self {
        Self::start_with(reply, None).await
    }

    /// HTTPS with `config` (its ALPN decides HTTP/2 or HTTP/1.1).
    pub async fn start_tls(reply: Reply, config: Arc<rustls::ServerConfig>) -> Self {
        Self::start_with(reply, Some(tokio_rustls::TlsAcceptor::from(config))).await
    }

    async fn start_with(reply: Reply, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let task = {
            let recorded = recorded.clone();
            let connections = connections.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        return;
                    };
                    connections.fetch_add(1, Ordering::SeqCst);
                    let (reply, recorded, tls) = (reply.clone(), recorded.clone(), tls.clone());
                    tokio::spawn(serve(tcp, tls, reply, recorded));
                }
            })
        };
        Self {
            addr,
            recorded,
            connections,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.recorded.lock().unwrap().clone()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn serve(
    tcp: tokio::net::TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    reply: Reply,
    recorded: Arc<Mutex<Vec<Recorded>>>,
) {
    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
        let (reply, recorded) = (reply.clone(), recorded.clone());
        async move {
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            recorded.lock().unwrap().push(Recorded {
                method: parts.method,
                path: parts.uri.path().to_owned(),
                version: parts.version,
                headers: parts.headers,
                body,
            });
            let body: BoxBody<Bytes, Infallible> = if reply.endless {
                Endless.boxed()
            } else {
                Full::new(reply.body.clone()).boxed()
            };
            let mut response = http::Response::new(body);
            *response.status_mut() = http::StatusCode::from_u16(reply.status).unwrap();
            for (name, value) in &reply.headers {
                response.headers_mut().append(*name, value.parse().unwrap());
            }
            Ok::<_, Infallible>(response)
        }
    });
    match tls {
        None => {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        }
        Some(acceptor) => {
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            let io = TokioIo::new(stream);
            if h2 {
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(io, service)
                    .await;
            } else {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            }
        }
    }
}

/// Allows exactly the listed addresses.
pub struct AllowOnly(pub Vec<IpAddr>);

impl AddressGuard for AllowOnly {
    fn check(&self, host: &str, addrs: &[IpAddr]) -> Result<Vec<IpAddr>, AddressDenied> {
        let ok: Vec<IpAddr> = addrs
            .iter()
            .copied()
            .filter(|a| self.0.contains(a))
            .collect();
        if ok.is_empty() {
            Err(AddressDenied(format!(
                "{host} resolves to blocked {addrs:?}"
            )))
        } else {
            Ok(ok)
        }
    }
}

pub fn loopback() -> Arc<AllowOnly> {
    Arc::new(AllowOnly(vec!["127.0.0.1".parse().unwrap()]))
}

/// Follows up to `max_hops` redirects to the listed host names, resending
/// the same headers and body (a stand-in for the policy adapter).
pub struct RedirectHosts {
    pub max_hops: u32,
    pub hosts: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RedirectHosts {
    pub fn new(max_hops: u32, hosts: &[&str]) -> Self {
        Self {
            max_hops,
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            headers: Vec::new(),
            body: br#"{"hello":"world"}"#.to_vec(),
        }
    }
}

impl RedirectGuard for RedirectHosts {
    fn max_hops(&self) -> u32 {
        self.max_hops
    }

    fn next_hop(&self, hop: &RedirectHop<'_>) -> Result<NextHop, HopRefused> {
        let to = hop
            .from
            .join(hop.location)
            .map_err(|e| AddressDenied(e.to_string()))?;
        let host = to.host_str().unwrap_or_default();
        if !self.hosts.iter().any(|h| h == host) {
            return Err(AddressDenied(format!("{host} is not an allowed host")).into());
        }
        Ok(NextHop {
            url: to.to_string(),
            headers: self.headers.clone(),
            body: self.body.clone(),
        })
    }
}

pub fn deliverer(guard: Arc<dyn AddressGuard>, options: ClientOptions) -> Deliverer {
    Deliverer::new(guard, options).unwrap()
}

/// A POST with a JSON body and a generous timeout.
pub fn post(url: &str) -> SendRequest<'_> {
    SendRequest {
        method: Method::Post,
        url,
        headers: &[],
        body: br#"{"hello":"world"}"#,
        webhook_id: "msg_test_1",
        signing: &[],
        timeout: Duration::from_secs(10),
        response_body_limit: 64 * 1024,
        redirects: None,
    }
}

/// A test CA, a server certificate for `names` and a client certificate,
/// both signed by it.
pub struct TestPki {
    pub ca: CertificateDer<'static>,
    pub server_config: Arc<rustls::ServerConfig>,
    /// The same server, requiring a client certificate signed by the CA.
    pub mtls_server_config: Arc<rustls::ServerConfig>,
    /// A client certificate the CA signed, and its key.
    pub client: crate::delivery::ClientIdentity,
}

pub fn test_pki(names: &[&str], alpn: &[&[u8]]) -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "wasmhook test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let leaf_params = CertificateParams::new(names).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();

    let client_key = KeyPair::generate().unwrap();
    let client_cert = CertificateParams::new(vec!["wasmhook-client".to_owned()])
        .unwrap()
        .signed_by(&client_key, &issuer)
        .unwrap();

    let key = || PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let chain = vec![leaf.der().clone(), ca_cert.der().clone()];
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = || {
        rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
    };
    let mut server_config = builder()
        .with_no_client_auth()
        .with_single_cert(chain.clone(), key())
        .unwrap();
    server_config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca_cert.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let mut mtls_server_config = builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key())
        .unwrap();
    mtls_server_config.alpn_protocols = server_config.alpn_protocols.clone();
    TestPki {
        ca: ca_cert.der().clone(),
        server_config: Arc::new(server_config),
        mtls_server_config: Arc::new(mtls_server_config),
        client: crate::delivery::ClientIdentity {
            chain: vec![client_cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(client_key.serialize_der())),
        },
    }
}
