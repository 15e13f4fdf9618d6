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
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::guard::{AddressDenied, AddressGuard, Resolver};

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
}

impl GuardedConnector {
    /// A connector resolving through `resolver`, vetting with `guard`,
    /// verifying TLS with `tls`, giving up on each TCP connect after
    /// `connect_timeout`.
    pub fn new(
        resolver: Arc<dyn Resolver>,
        guard: Arc<dyn AddressGuard>,
        tls: Arc<rustls::ClientConfig>,
        connect_timeout: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                resolver,
                guard,
                tls: TlsConnector::from(tls),
                connect_timeout,
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

        let (tcp, addr) = self.connect_tcp(&vetted, port).await?;
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
