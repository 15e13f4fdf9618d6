//! The client's connector: resolve, vet, connect to the vetted address,
//! then TLS.
//!
//! For every new connection [`GuardedConnector`] resolves the host through
//! the injected [`Resolver`] (IP literals skip resolution but not the
//! check), passes the addresses through the [`AddressGuard`], and opens TCP
//! to one of the addresses the guard returned. There is no second lookup, so
//! DNS rebinding cannot swap in an address that was never checked. HTTPS
//! connections then run rustls with ALPN (`h2`, `http/1.1`). This module
//! knows nothing of requests, retries or the policy's rules.
//!
//! With a [`Proxy`] the TCP connection goes to the proxy instead, which is
//! asked to `CONNECT` to the vetted address (an IP, never the name, so the
//! proxy cannot resolve it to somewhere else); TLS then runs through the
//! tunnel to the receiver, verified against the host name as without one.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::guard::{AddressDenied, AddressGuard, Resolver};
use crate::model::Secret;

/// Longest answer head a proxy may send to `CONNECT`.
const PROXY_HEAD_LIMIT: usize = 8 * 1024;

/// An HTTP proxy every connection tunnels through, but those to
/// destinations in `no_proxy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    /// Host name or IP address (the operator's choice: not vetted).
    pub host: String,
    /// Port.
    pub port: u16,
    /// `Proxy-Authorization` value, when the proxy wants credentials.
    pub authorization: Option<Secret>,
    /// Destinations reached directly.
    pub no_proxy: Vec<NoProxy>,
}

/// A destination that does not go through the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoProxy {
    /// Addresses in this network (address, prefix length).
    Network(IpAddr, u8),
    /// This host name (lower case), and with `subdomains` every name
    /// under it.
    Name {
        /// The name, without a leading `*.` or `.`.
        name: String,
        /// Whether names under it match too.
        subdomains: bool,
    },
}

impl NoProxy {
    fn matches(&self, host: &str, ip: IpAddr) -> bool {
        match self {
            NoProxy::Network(net, prefix) => in_network(ip, *net, *prefix),
            NoProxy::Name { name, subdomains } => {
                let host = host.trim_end_matches('.').to_ascii_lowercase();
                host == *name
                    || (*subdomains
                        && host
                            .strip_suffix(name.as_str())
                            .is_some_and(|rest| rest.ends_with('.')))
            }
        }
    }
}

/// Whether `ip` is in `net`/`prefix` (IPv4 in IPv4, IPv6 in IPv6).
fn in_network(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    let mask = |bits: u32, prefix: u8| -> u128 {
        match u32::from(prefix) {
            0 => 0,
            p if p >= bits => u128::MAX >> (128 - bits),
            p => (u128::MAX >> (128 - bits)) & !((1u128 << (bits - p)) - 1),
        }
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let m = mask(32, prefix);
            u128::from(u32::from(a)) & m == u128::from(u32::from(n)) & m
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let m = mask(128, prefix);
            u128::from(a) & m == u128::from(n) & m
        }
        _ => false,
    }
}

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URI is not an absolute http(s) URI with a host.
    #[error("unsupported destination: {0}")]
    BadUri(String),
    /// Name resolution failed or returned nothing.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// The host name.
        host: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// The guard refused every address.
    #[error("{0}")]
    Denied(#[from] AddressDenied),
    /// TCP connect failed (refused, unreachable) on every vetted address.
    #[error("cannot connect to {addr}: {source}")]
    Tcp {
        /// The last address tried.
        addr: SocketAddr,
        /// The socket error.
        source: io::Error,
    },
    /// TCP connect did not finish within the connect timeout.
    #[error("connect to {0} timed out")]
    Timeout(SocketAddr),
    /// The proxy could not be reached, or refused or failed the tunnel.
    #[error("{0}")]
    Proxy(String),
    /// The TLS handshake failed (certificate, protocol).
    #[error("TLS handshake with {host} failed: {source}")]
    Tls {
        /// The server name that was verified.
        host: String,
        /// The handshake error.
        source: io::Error,
    },
}

/// Records the peer of a pooled connection; found in the response's
/// extensions as `hyper_util::client::legacy::connect::Connected` extra.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

/// A plain or TLS connection to a vetted address.
pub enum MaybeTls {
    /// `http://`
    Plain(TcpStream, SocketAddr),
    /// `https://`; `h2` tells whether ALPN chose HTTP/2.
    Tls(Box<TlsStream<TcpStream>>, SocketAddr),
}

impl Connection for MaybeTls {
    fn connected(&self) -> Connected {
        match self {
            MaybeTls::Plain(_, addr) => Connected::new().extra(RemoteAddr(*addr)),
            MaybeTls::Tls(tls, addr) => {
                let connected = Connected::new().extra(RemoteAddr(*addr));
                if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                    connected.negotiated_h2()
                } else {
                    connected
                }
            }
        }
    }
}

impl AsyncRead for MaybeTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s, _) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s, _) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s, _) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s, _) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s, _) => Pin::new(s).poll_write_vectored(cx, bufs),
            MaybeTls::Tls(s, _) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTls::Plain(s, _) => s.is_write_vectored(),
            MaybeTls::Tls(s, _) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s, _) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s, _) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s, _) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s, _) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A hyper-util connector that only ever connects to guard-approved
/// addresses. Cheap to clone.
#[derive(Clone)]
pub struct GuardedConnector {
    inner: Arc<Inner>,
}

struct Inner {
    resolver: Arc<dyn Resolver>,
    guard: Arc<dyn AddressGuard>,
    tls: TlsConnector,
    connect_timeout: Duration,
    proxy: Option<Proxy>,
}

impl GuardedConnector {
    /// A connector resolving through `resolver`, vetting with `guard`,
    /// verifying TLS with `tls`, giving up on each TCP connect (and each
    /// proxy tunnel) after `connect_timeout`, tunnelling through `proxy`
    /// when given.
    pub fn new(
        resolver: Arc<dyn Resolver>,
        guard: Arc<dyn AddressGuard>,
        tls: Arc<rustls::ClientConfig>,
        connect_timeout: Duration,
        proxy: Option<Proxy>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                resolver,
                guard,
                tls: TlsConnector::from(tls),
                connect_timeout,
                proxy,
            }),
        }
    }
}

impl tower_service::Service<Uri> for GuardedConnector {
    type Response = TokioIo<MaybeTls>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move { inner.connect(uri).await.map(TokioIo::new) })
    }
}

impl Inner {
    async fn connect(&self, uri: Uri) -> Result<MaybeTls, ConnectError> {
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            other => return Err(ConnectError::BadUri(format!("scheme {other:?}"))),
        };
        let raw_host = uri
            .host()
            .ok_or_else(|| ConnectError::BadUri("no host".into()))?;
        // IPv6 literals come bracketed in URIs.
        let host = raw_host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });

        let resolved = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => {
                let ips = self.resolver.resolve(host, port).await.map_err(|source| {
                    ConnectError::Resolve {
                        host: host.to_owned(),
                        source,
                    }
                })?;
                if ips.is_empty() {
                    return Err(ConnectError::Resolve {
                        host: host.to_owned(),
                        source: io::Error::new(io::ErrorKind::NotFound, "no addresses"),
                    });
                }
                ips
            }
        };
        let vetted: Vec<IpAddr> = self
            .guard
            .check(host, &resolved)?
            .into_iter()
            .filter(|ip| resolved.contains(ip))
            .collect();
        if vetted.is_empty() {
            return Err(AddressDenied(format!("no permitted address for {host}")).into());
        }

        let (tcp, addr) = self.open(host, &vetted, port).await?;
        if !tls {
            return Ok(MaybeTls::Plain(tcp, addr));
        }
        let server_name = match host.parse::<IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => ServerName::try_from(host.to_owned())
                .map_err(|_| ConnectError::BadUri(format!("invalid TLS server name {host}")))?,
        };
        let stream =
            self.tls
                .connect(server_name, tcp)
                .await
                .map_err(|source| ConnectError::Tls {
                    host: host.to_owned(),
                    source,
                })?;
        Ok(MaybeTls::Tls(Box::new(stream), addr))
    }

    /// A TCP stream to the first of `vetted` that answers, each reached
    /// directly or through the proxy as `no_proxy` says of that address
    /// (a name may resolve to addresses on both sides of the rule).
    async fn open(
        &self,
        host: &str,
        vetted: &[IpAddr],
        port: u16,
    ) -> Result<(TcpStream, SocketAddr), ConnectError> {
        let Some(proxy) = self.proxy.as_ref() else {
            return self.connect_tcp(vetted, port).await;
        };
        let direct = |ip: IpAddr| proxy.no_proxy.iter().any(|np| np.matches(host, ip));
        if vetted.iter().all(|ip| direct(*ip)) {
            return self.connect_tcp(vetted, port).await;
        }
        if !vetted.iter().any(|ip| direct(*ip)) {
            return self.tunnel(proxy, vetted, port).await;
        }
        let mut last = None;
        for ip in vetted {
            let tried = if direct(*ip) {
                self.connect_tcp(&[*ip], port).await
            } else {
                self.tunnel(proxy, &[*ip], port).await
            };
            match tried {
                Ok(open) => return Ok(open),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one vetted address"))
    }

    /// A tunnel through `proxy` to the first vetted address it opens one
    /// to; the address is the destination's, for the response's
    /// [`RemoteAddr`].
    async fn tunnel(
        &self,
        proxy: &Proxy,
        vetted: &[IpAddr],
        port: u16,
    ) -> Result<(TcpStream, SocketAddr), ConnectError> {
        let at = format!("proxy {}:{}", proxy.host, proxy.port);
        let proxy_ips = match proxy.host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => self
                .resolver
                .resolve(&proxy.host, proxy.port)
                .await
                .map_err(|e| ConnectError::Proxy(format!("cannot resolve {at}: {e}")))?,
        };
        if proxy_ips.is_empty() {
            return Err(ConnectError::Proxy(format!("cannot resolve {at}")));
        }
        let mut last = None;
        for ip in vetted {
            let target = SocketAddr::new(*ip, port);
            let (mut tcp, _) = self
                .connect_tcp(&proxy_ips, proxy.port)
                .await
                .map_err(|e| ConnectError::Proxy(format!("cannot reach {at}: {e}")))?;
            let opened = tokio::time::timeout(
                self.connect_timeout,
                open_tunnel(&mut tcp, target, proxy.authorization.as_ref()),
            )
            .await;
            match opened {
                Ok(Ok(())) => return Ok((tcp, target)),
                Ok(Err(why)) => {
                    last = Some(ConnectError::Proxy(format!(
                        "{at}: CONNECT to {target}: {why}"
                    )));
                }
                Err(_) => {
                    last = Some(ConnectError::Proxy(format!(
                        "{at} did not open a tunnel to {target} within {} s",
                        self.connect_timeout.as_secs()
                    )));
                }
            }
        }
        Err(last.expect("vetted is not empty"))
    }

    /// Try the vetted addresses in order; the first that accepts wins.
    async fn connect_tcp(
        &self,
        vetted: &[IpAddr],
        port: u16,
    ) -> Result<(TcpStream, SocketAddr), ConnectError> {
        let mut last = None;
        for ip in vetted {
            let addr = SocketAddr::new(*ip, port);
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(tcp)) => {
                    // Small request/response exchanges: do not wait for Nagle.
                    let _ = tcp.set_nodelay(true);
                    return Ok((tcp, addr));
                }
                Ok(Err(source)) => last = Some(ConnectError::Tcp { addr, source }),
                Err(_) => last = Some(ConnectError::Timeout(addr)),
            }
        }
        Err(last.expect("vetted is not empty"))
    }
}

/// Ask the proxy on `tcp` for a tunnel to `target`; read its answer's head
/// a byte at a time, so nothing the receiver sends after it is consumed.
async fn open_tunnel(
    tcp: &mut TcpStream,
    target: SocketAddr,
    authorization: Option<&Secret>,
) -> Result<(), String> {
    let mut head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = authorization {
        head.push_str(&format!("Proxy-Authorization: {}\r\n", auth.expose()));
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes())
        .await
        .map_err(|e| format!("sending the request failed: {e}"))?;
    let mut answer = Vec::with_capacity(128);
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") {
        if answer.len() >= PROXY_HEAD_LIMIT {
            return Err(format!(
                "the answer's head is over {PROXY_HEAD_LIMIT} bytes"
            ));
        }
        match tcp.read(&mut byte).await {
            Ok(0) => return Err("the proxy closed the connection".into()),
            Ok(_) => answer.push(byte[0]),
            Err(e) => return Err(format!("reading the answer failed: {e}")),
        }
    }
    let status_line = answer
        .split(|b| *b == b'\n')
        .next()
        .map(|l| String::from_utf8_lossy(l).trim().to_owned())
        .unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok());
    match status {
        Some(code) if (200..300).contains(&code) && status_line.starts_with("HTTP/1.") => Ok(()),
        Some(_) => Err(format!(
            "refused: {}",
            status_line.chars().take(200).collect::<String>()
        )),
        None => Err("the answer is not HTTP".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_matches_networks_names_and_subdomains() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let net = NoProxy::Network(ip("10.0.0.0"), 8);
        assert!(net.matches("x", ip("10.1.2.3")));
        assert!(!net.matches("x", ip("11.0.0.1")));
        assert!(
            !net.matches("x", ip("::ffff:10.0.0.1")),
            "v4 networks match v4 only"
        );
        let v6 = NoProxy::Network(ip("fd00::"), 8);
        assert!(v6.matches("x", ip("fd12::1")) && !v6.matches("x", ip("fe80::1")));
        assert!(NoProxy::Network(ip("0.0.0.0"), 0).matches("x", ip("8.8.8.8")));
        assert!(NoProxy::Network(ip("10.0.0.7"), 32).matches("x", ip("10.0.0.7")));
        let name = |subdomains| NoProxy::Name {
            name: "corp.example".into(),
            subdomains,
        };
        let any = ip("1.2.3.4");
        assert!(name(false).matches("CORP.example.", any));
        assert!(!name(false).matches("crm.corp.example", any));
        assert!(name(true).matches("crm.corp.example", any));
        assert!(name(true).matches("corp.example", any));
        assert!(!name(true).matches("evilcorp.example", any));
    }
}
