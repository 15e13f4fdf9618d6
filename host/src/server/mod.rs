//! The HTTP edge: accepts connections, routes requests, authenticates,
//! limits bodies, and is the only place that maps errors to status codes.
//!
//! `run(listener, app, shutdown)` takes its listener and shutdown future as
//! arguments (mini-redis style), so tests start a real server on
//! `127.0.0.1:0`. A panic in one request's task is contained to that
//! connection.
//!
//! Slow clients are bounded: the bytes that pick the protocol and the
//! request headers must each arrive within [`HEADER_READ_TIMEOUT`], a body
//! within [`BODY_READ_TIMEOUT`], and HTTP/2 peers must answer keep-alive
//! pings, so no connection is held open by a client that stops sending.
//! At most `max_connections` connections are open at once: at the cap the
//! listener stops accepting until one closes, and new clients wait in the
//! kernel's listen backlog (a file-descriptor or memory exhaustion attack
//! then costs those clients their wait, not the host its ability to serve
//! the ones it holds).

mod auth;
mod first_bytes;
mod ingest;
mod ingest_rate;
mod protocol_errors;
mod reply;
mod routes;
pub mod tls;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

pub use auth::Tokens;
pub use ingest_rate::IngestRate;

use crate::app::App;

/// A client must send its request headers within this time (slowloris);
/// also the time a new connection has to start its first request.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A client must send a whole request body within this time once the
/// headers are in (a body trickled forever would hold the connection).
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// HTTP/2 keep-alive: ping an idle peer this often, and close the
/// connection when a ping is not answered within the same time.
const H2_KEEP_ALIVE: Duration = Duration::from_secs(20);

/// How the edge runs, from `[server]`.
#[derive(Clone)]
pub struct EdgeOptions {
    /// At shutdown, how long open requests may take to finish.
    pub grace: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
    /// TLS, when configured: the acceptor each new connection uses, which
    /// a reload may replace (a renewed certificate).
    pub tls: Option<Arc<ArcSwap<TlsAcceptor>>>,
}

/// Serve HTTP on `listener` until `shutdown` resolves, then stop accepting
/// and wait up to `options.grace` for open requests to finish.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()>,
    options: EdgeOptions,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEP_ALIVE)
        .keep_alive_timeout(H2_KEEP_ALIVE);
    let graceful = GracefulShutdown::new();
    let open = Arc::new(Semaphore::new(options.max_connections.max(1)));
    tokio::pin!(shutdown);
    loop {
        let slot = match open.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                app.metrics.connections_at_cap();
                tracing::warn!(
                    max_connections = options.max_connections,
                    "connection cap reached; not accepting until a connection closes"
                );
                tokio::select! {
                    slot = open.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break, // never closed
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // e.g. EMFILE: back off briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app_for_count = app.clone();
        let app = app.clone();
        let service = service_fn(move |req| {
            let app = app.clone();
            async move { Ok::<_, std::convert::Infallible>(routes::handle(&app, req).await) }
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = options.tls.as_ref().map(|t| t.load_full());
        tokio::spawn(async move {
            let _slot = slot;
            let _open = app_for_count.metrics.connection_opened();
            let Some(tls) = tls else {
                return serve_connection(stream, peer, builder, service, watcher).await;
            };
            // The handshake counts against the header deadline too.
            match tokio::time::timeout(HEADER_READ_TIMEOUT, tls.accept(stream)).await {
                Ok(Ok(stream)) => serve_connection(stream, peer, builder, service, watcher).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(options.grace) => tracing::warn!("grace period over; closing open connections"),
    }
}

/// One connection, plain or TLS: wait for its first bytes (bounded), then
/// let hyper serve it under the graceful-shutdown watcher.
async fn serve_connection<S, F>(
    mut stream: S,
    peer: std::net::SocketAddr,
    builder: auto::Builder<TokioExecutor>,
    service: F,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = hyper::Response<reply::Body>,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    F::Future: Send + 'static,
{
    let first = match first_bytes::read_first_bytes(&mut stream, HEADER_READ_TIMEOUT).await {
        Ok(first) => first,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "connection dropped before a request");
            return;
        }
    };
    let io = TokioIo::new(protocol_errors::JsonRefusals::new(
        first_bytes::Prefixed::new(first, stream),
    ));
    let conn = builder.serve_connection_with_upgrades(io, service);
    if let Err(e) = watcher.watch(conn.into_owned()).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
