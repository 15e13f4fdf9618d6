//! The ingest side of the drivers: a keep-alive hyper client, a
//! closed-loop driver (N events from C clients as fast as they go), a paced
//! open-loop stream (a fixed rate, optionally retrying each event until it
//! is accepted), and admin GETs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Semaphore;

/// The HTTP client type.
pub type Http = Client<HttpConnector, Full<Bytes>>;

/// A keep-alive client with up to `idle` pooled connections.
pub fn http(idle: usize) -> Http {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(idle)
        .build_http()
}

/// The bench event with this id (name `bench.event`).
pub fn event_body(id: &str, i: usize) -> String {
    format!(r#"{{"id":"{id}","name":"bench.event","user_id":"u-{i}","properties":{{"n":{i}}}}}"#)
}

/// POST `body` to `url`; the status, or an error for a connection
/// failure or a `timeout`.
pub async fn post(
    client: &Http,
    url: &str,
    token: Option<&str>,
    body: String,
    timeout: Duration,
) -> Result<u16, String> {
    let mut req = hyper::Request::post(url).header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req.body(Full::new(Bytes::from(body))).unwrap();
    let exchange = async {
        let resp = client.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        resp.into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok(status)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| "timeout".to_owned())?
}

/// GET `url` with the admin token; the body when the answer is 200.
pub async fn admin_get(client: &Http, url: &str) -> Option<String> {
    let req = hyper::Request::get(url)
        .header("authorization", format!("Bearer {}", super::ADMIN_TOKEN))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .ok()?
        .ok()?;
    if resp.status() != 200 {
        return None;
    }
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    String::from_utf8(body.to_vec()).ok()
}

/// POST `n` bodies (ids `bench-0..n`) from `concurrency` clients as fast
/// as they are answered; the elapsed time and the 2xx time of each id.
/// Panics on any other answer.
pub async fn drive(
    url: String,
    token: Option<&str>,
    n: usize,
    concurrency: usize,
) -> (Duration, HashMap<String, Instant>) {
    drive_batched(url, token, n, concurrency, 1).await
}

/// [`drive`] with `batch` events per request (a JSON array when more
/// than one).
pub async fn drive_batched(
    url: String,
    token: Option<&str>,
    n: usize,
    concurrency: usize,
    batch: usize,
) -> (Duration, HashMap<String, Instant>) {
    let batch = batch.max(1);
    let client = http(concurrency);
    let next = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(Mutex::new(HashMap::with_capacity(n)));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, next, acked) = (client.clone(), url.clone(), next.clone(), acked.clone());
        let auth = token.map(|t| format!("Bearer {t}"));
        tasks.push(tokio::spawn(async move {
            loop {
                let first = next.fetch_add(batch, Ordering::Relaxed);
                if first >= n {
                    return;
                }
                let ids: Vec<usize> = (first..(first + batch).min(n)).collect();
                let events: Vec<String> = ids
                    .iter()
                    .map(|i| event_body(&format!("bench-{i}"), *i))
                    .collect();
                let body = if batch == 1 {
                    events.concat()
                } else {
                    format!("[{}]", events.join(","))
                };
                let mut req = hyper::Request::post(&url).header("content-type", "application/json");
                if let Some(a) = &auth {
                    req = req.header("authorization", a);
                }
                let resp = client
                    .request(req.body(Full::new(Bytes::from(body))).unwrap())
                    .await
                    .expect("request");
                assert!(resp.status().is_success(), "status {}", resp.status());
                let _ = resp.into_body().collect().await;
                let now = Instant::now();
                let mut acked = acked.lock().unwrap();
                for i in ids {
                    acked.insert(format!("bench-{i}"), now);
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed();
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    (elapsed, acked)
}

/// What a paced stream has done so far.
#[derive(Default)]
pub struct StreamState {
    /// Events started (ids handed out).
    pub started: AtomicU64,
    /// Events answered 202, with the time of the answer.
    pub accepted: Mutex<HashMap<String, Instant>>,
    /// Count of `accepted`, readable without the lock.
    pub accepted_n: AtomicU64,
    /// Attempts that failed (connection error, timeout, non-2xx).
    pub failed_attempts: AtomicU64,
    /// Events given up on (only when not retrying).
    pub rejected: AtomicU64,
    stop: AtomicBool,
}

impl StreamState {
    /// Ask the stream to stop starting events; retries in progress stop too.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Whether stop was asked.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// How a paced stream behaves.
pub struct Pace {
    /// Events per second.
    pub rate: f64,
    /// Ids are `{prefix}-{n}`.
    pub prefix: String,
    /// Retry an event (same id) every 50 ms until a 202 comes back (for
    /// at most a minute).
    pub retry: bool,
    /// At most this many requests in flight; beyond it the stream slows.
    pub max_in_flight: usize,
}

/// Start POSTing events to `url` at `pace.rate` until `state.stop()`;
/// await the handle to wait for the requests in flight.
pub fn paced(url: String, pace: Pace) -> (Arc<StreamState>, tokio::task::JoinHandle<()>) {
    let state: Arc<StreamState> = Arc::default();
    let st = state.clone();
    let handle = tokio::spawn(async move {
        let client = http(pace.max_in_flight);
        let permits = Arc::new(Semaphore::new(pace.max_in_flight));
        let start = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut sent = 0usize;
        let mut tasks = tokio::task::JoinSet::new();
        while !st.stopping() {
            tick.tick().await;
            let due = (start.elapsed().as_secs_f64() * pace.rate) as usize;
            while sent < due && !st.stopping() {
                let permit = permits.clone().acquire_owned().await.unwrap();
                let i = sent;
                sent += 1;
                st.started.fetch_add(1, Ordering::Relaxed);
                let (client, url, st, retry) =
                    (client.clone(), url.clone(), st.clone(), pace.retry);
                let id = format!("{}-{i}", pace.prefix);
                tasks.spawn(async move {
                    let _permit = permit;
                    let give_up = Instant::now() + Duration::from_secs(60);
                    loop {
                        let body = event_body(&id, i);
                        let r = post(
                            &client,
                            &url,
                            Some(super::INGEST_TOKEN),
                            body,
                            Duration::from_secs(10),
                        )
                        .await;
                        if let Ok(202) = r {
                            st.accepted.lock().unwrap().insert(id, Instant::now());
                            st.accepted_n.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                        st.failed_attempts.fetch_add(1, Ordering::Relaxed);
                        // Retries go on after stop: an event in doubt must
                        // be settled; a host down for a minute ends them.
                        if !retry || Instant::now() > give_up {
                            st.rejected.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                });
                while tasks.try_join_next().is_some() {}
            }
        }
        while tasks.join_next().await.is_some() {}
    });
    (state, handle)
}
