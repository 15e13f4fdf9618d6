//! A loopback webhook receiver (hyper, keep-alive) that answers 200 and
//! records, per request path, the first arrival time of each event id (the
//! JSON body's `id`, as the `hostile` fixture in `ok` mode echoes the
//! event) and how often each `webhook-id` arrived.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// What arrived on one path.
#[derive(Default)]
pub struct PathLog {
    /// Requests, including repeats.
    pub requests: u64,
    /// First arrival of each event id.
    pub first: HashMap<String, Instant>,
    /// Arrivals of each `webhook-id` header value.
    pub webhook_ids: HashMap<String, u32>,
}

/// The recording state, shared with the serving tasks.
#[derive(Default)]
pub struct Log {
    pub paths: HashMap<String, PathLog>,
}

impl Log {
    /// The record of `path` (empty if nothing arrived there).
    pub fn path(&mut self, path: &str) -> &mut PathLog {
        if !self.paths.contains_key(path) {
            self.paths.insert(path.to_owned(), PathLog::default());
        }
        self.paths.get_mut(path).unwrap()
    }

    /// Requests over all paths.
    pub fn total(&self) -> u64 {
        self.paths.values().map(|p| p.requests).sum()
    }
}

/// A running receiver; it serves until the runtime stops.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    log: Arc<Mutex<Log>>,
}

impl Receiver {
    /// Listen on 127.0.0.1:0.
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log: Arc<Mutex<Log>> = Arc::default();
        let shared = log.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let log = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let log = log.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|c| c.to_bytes())
                                .unwrap_or_default();
                            let now = Instant::now();
                            let id = serde_json::from_slice::<serde_json::Value>(&body)
                                .ok()
                                .and_then(|v| v["id"].as_str().map(str::to_owned));
                            let webhook_id = parts
                                .headers
                                .get("webhook-id")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned);
                            {
                                let mut log = log.lock().unwrap();
                                let p = log.path(parts.uri.path());
                                p.requests += 1;
                                if let Some(id) = id {
                                    p.first.entry(id).or_insert(now);
                                }
                                if let Some(w) = webhook_id {
                                    *p.webhook_ids.entry(w).or_default() += 1;
                                }
                            }
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                Bytes::from_static(b"ok"),
                            )))
                        }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { addr, log }
    }

    /// The recording, locked.
    pub fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap()
    }

    /// Distinct event ids that arrived on `path`.
    pub fn delivered(&self, path: &str) -> usize {
        self.log().paths.get(path).map_or(0, |p| p.first.len())
    }
}
