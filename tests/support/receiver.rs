//! A recording webhook receiver on 127.0.0.1 (random port) that answers
//! with a programmable sequence of responses.
//!
//! Besides plain statuses, a scripted [`Reply`] can misbehave the way real
//! receivers do: answer late ([`Reply::after`]), never answer
//! ([`Reply::hang`]), reset the connection without answering
//! ([`Reply::reset`]), or stream a huge body ([`Reply::huge_body`]).
//! [`TestReceiver::start_tls`] serves HTTPS with a given rustls config (a
//! test CA's certificate, client certificates required or not).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// One request the receiver saw.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: std::time::Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// What the receiver does with a request, after [`Reply::delay`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// Answer with the status, headers and a short body.
    Answer,
    /// Answer with the status and headers, then stream this many bytes of
    /// body in 64 KiB chunks (as fast as the client reads them).
    HugeBody(u64),
    /// Answer with this body.
    Body(Bytes),
    /// Never answer; the connection stays open until the client gives up.
    Hang,
    /// Close the connection without answering, with a TCP reset.
    Reset,
}

/// A canned response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// Wait this long before doing [`Reply::behaviour`].
    pub delay: Duration,
    pub behaviour: Behaviour,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: vec![],
            delay: Duration::ZERO,
            behaviour: Behaviour::Answer,
        }
    }

    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }

    /// Do the same, but only after `delay` (a slow receiver).
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Answer `status` with `body` as JSON.
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            behaviour: Behaviour::Body(Bytes::from(body.to_string())),
            ..Self::status(status)
        }
        .header("content-type", "application/json")
    }

    /// Never answer.
    pub fn hang() -> Self {
        Self {
            behaviour: Behaviour::Hang,
            ..Self::status(200)
        }
    }

    /// Read the request, then reset the connection without answering.
    pub fn reset() -> Self {
        Self {
            behaviour: Behaviour::Reset,
            ..Self::status(200)
        }
    }

    /// Answer `status` with a body of `bytes` bytes, streamed.
    pub fn huge_body(status: u16, bytes: u64) -> Self {
        Self {
            behaviour: Behaviour::HugeBody(bytes),
            ..Self::status(status)
        }
    }
}

/// The service's refusal to answer: hyper closes the connection.
#[derive(Debug)]
struct NoAnswer;

impl std::fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("closing without an answer")
    }
}

impl std::error::Error for NoAnswer {}

/// A body of `left` bytes of `x`, produced chunk by chunk only when the
/// connection asks for more, counting what it produced into `streamed`.
struct HugeBody {
    left: u64,
    streamed: Arc<AtomicU64>,
}

const CHUNK: usize = 64 * 1024;

impl hyper::body::Body for HugeBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(CHUNK as u64);
        self.left -= n;
        self.streamed.fetch_add(n, Ordering::Relaxed);
        static DATA: [u8; CHUNK] = [b'x'; CHUNK];
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
            &DATA[..n as usize],
        )))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }
}

type ReplyBody = BoxBody<Bytes, std::convert::Infallible>;

#[derive(Default)]
struct State {
    seen: Vec<Received>,
    script: VecDeque<Reply>,
    default: Option<Reply>,
    /// Body bytes produced by [`Reply::huge_body`] replies so far.
    streamed: Arc<AtomicU64>,
    /// Requests answered with [`Behaviour::Answer`] or a huge body.
    answered: usize,
    /// TLS connections whose handshake failed.
    failed_handshakes: usize,
}

/// The receiver; dropping it stops accepting.
#[derive(Clone)]
pub struct TestReceiver {
    pub addr: SocketAddr,
    scheme: &'static str,
    state: Arc<Mutex<State>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for TestReceiver {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

impl TestReceiver {
    /// Start on 127.0.0.1:0, answering 200 unless told otherwise.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// Like [`TestReceiver::start`], over TLS with `config`.
    pub async fn start_tls(config: Arc<rustls::ServerConfig>) -> Self {
        Self::start_with(Some(tokio_rustls::TlsAcceptor::from(config))).await
    }

    async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let st = st.clone();
                match tls.clone() {
                    None => tokio::spawn(serve_connection(stream, st)),
                    Some(tls) => tokio::spawn(async move {
                        match tls.accept(stream).await {
                            Ok(stream) => serve_io(TokioIo::new(stream), st, None).await,
                            Err(_) => st.lock().unwrap().failed_handshakes += 1,
                        }
                    }),
                };
            }
        });
        Self {
            addr,
            scheme,
            state,
            task: Arc::new(task),
        }
    }

    /// `http://127.0.0.1:PORT` (`https://` when started with TLS).
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// TLS connections whose handshake failed (a client without the
    /// required certificate, or one that did not trust ours).
    pub fn failed_handshakes(&self) -> usize {
        self.state.lock().unwrap().failed_handshakes
    }

    /// Answer the next requests with these replies, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().script.extend(replies);
    }

    /// Answer every unscripted request with this.
    pub fn set_default(&self, reply: Reply) {
        self.state.lock().unwrap().default = Some(reply);
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<Received> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Requests that got an answer (a status), as opposed to a hang or a
    /// reset.
    pub fn answered(&self) -> usize {
        self.state.lock().unwrap().answered
    }

    /// Body bytes produced so far by [`Reply::huge_body`] replies: an upper
    /// bound of what the client read (a chunk is produced only when the
    /// connection has room for it).
    pub fn streamed_bytes(&self) -> u64 {
        self.state.lock().unwrap().streamed.load(Ordering::Relaxed)
    }

    /// Wait until at least `n` requests arrived (panics after `secs`).
    pub async fn wait_for(&self, n: usize, secs: u64) -> Vec<Received> {
        super::eventually(secs, || {
            let seen = self.requests();
            (seen.len() >= n).then_some(seen)
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "expected {n} requests within {secs}s, got {:?}",
                self.requests()
            )
        })
    }
}

/// Serve one connection: record each request, then do what the script says.
async fn serve_connection(stream: tokio::net::TcpStream, st: Arc<Mutex<State>>) {
    // A second handle on the socket, so a `Reset` reply can set SO_LINGER
    // to zero after hyper dropped its own: the last close then sends a RST.
    let spare = stream
        .as_fd()
        .try_clone_to_owned()
        .ok()
        .map(std::net::TcpStream::from);
    let reset = Arc::new(std::sync::atomic::AtomicBool::new(false));
    serve_io(TokioIo::new(stream), st, Some(reset.clone())).await;
    if reset.load(Ordering::SeqCst)
        && let Some(spare) = spare
        && let Ok(spare) = tokio::net::TcpStream::from_std(spare)
    {
        let _ = spare.set_zero_linger();
    }
}

/// Serve HTTP on `io`; a [`Reply::reset`] sets `reset` (on plain TCP,
/// where the caller can then reset the socket).
async fn serve_io<I>(
    io: I,
    st: Arc<Mutex<State>>,
    reset: Option<Arc<std::sync::atomic::AtomicBool>>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let flag = reset.unwrap_or_default();
    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
        let (st, flag) = (st.clone(), flag.clone());
        async move {
            let reply = record(&st, req).await;
            tokio::time::sleep(reply.delay).await;
            let body: ReplyBody = match reply.behaviour {
                Behaviour::Hang => std::future::pending().await,
                Behaviour::Reset => {
                    flag.store(true, Ordering::SeqCst);
                    return Err(NoAnswer);
                }
                Behaviour::Answer => Full::new(Bytes::from_static(b"ok")).boxed(),
                Behaviour::Body(body) => Full::new(body).boxed(),
                Behaviour::HugeBody(left) => {
                    let streamed = st.lock().unwrap().streamed.clone();
                    HugeBody { left, streamed }.boxed()
                }
            };
            st.lock().unwrap().answered += 1;
            let mut resp = Response::new(body);
            *resp.status_mut() = hyper::StatusCode::from_u16(reply.status).unwrap();
            for (k, v) in reply.headers {
                resp.headers_mut().insert(
                    hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    hyper::header::HeaderValue::from_str(&v).unwrap(),
                );
            }
            Ok::<_, NoAnswer>(resp)
        }
    });
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(io, service)
        .await;
}

/// Read and record a request; the reply it gets.
async fn record(st: &Mutex<State>, req: Request<hyper::body::Incoming>) -> Reply {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let mut s = st.lock().unwrap();
    s.seen.push(Received {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or("/".into(), |p| p.to_string()),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
        at: std::time::Instant::now(),
    });
    s.script
        .pop_front()
        .or_else(|| s.default.clone())
        .unwrap_or(Reply::status(200))
}
