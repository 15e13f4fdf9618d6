//! Load benchmark of the whole pipeline, next to a raw loopback baseline
//! measured in the same run.
//!
//! `cargo bench -p wasmhook --bench pipeline` (after `scripts/build-plugins.sh`).
//! Optional environment: `EVENTS` (default 5000), `CONCURRENCY` (default 32).
//!
//! 1. Baseline: CONCURRENCY clients POST EVENTS small JSON bodies straight
//!    to a loopback HTTP receiver (hyper, keep-alive): raw requests/s.
//! 2. Pipeline: the same clients POST EVENTS events to `wasmhook serve`
//!    (SQLite store with synchronous=FULL, one Rust plugin per event in a
//!    fresh instance, signed delivery to the same kind of receiver). Reports
//!    accepted events/s, delivered events/s, and accept→delivered latency
//!    (from the 202 to the webhook's arrival) p50/p99.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

/// A receiver that records the arrival time of each event id (taken from
/// the JSON body's `id`, as the bench plugin echoes the event).
async fn receiver() -> (SocketAddr, Arrivals) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let arrivals: Arrivals = Arc::default();
    let a = arrivals.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let a = a.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let a = a.clone();
                    async move {
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|c| c.to_bytes())
                            .unwrap_or_default();
                        let now = Instant::now();
                        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
                            && let Some(id) = v["id"].as_str()
                        {
                            a.lock().unwrap().entry(id.to_owned()).or_insert(now);
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
    (addr, arrivals)
}

/// POST `n` bodies from `concurrency` clients; the 202/200 time of each id.
async fn drive(
    url: String,
    token: Option<&str>,
    n: usize,
    concurrency: usize,
) -> (Duration, HashMap<String, Instant>) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(concurrency)
        .build_http();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let acked = Arc::new(Mutex::new(HashMap::with_capacity(n)));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, next, acked) = (client.clone(), url.clone(), next.clone(), acked.clone());
        let auth = token.map(|t| format!("Bearer {t}"));
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let id = format!("bench-{i}");
                let body = format!(r#"{{"id":"{id}","name":"bench.event","user_id":"u-{i}","properties":{{"n":{i}}}}}"#);
                let mut req = hyper::Request::post(&url).header("content-type", "application/json");
                if let Some(a) = &auth {
                    req = req.header("authorization", a);
                }
                let resp = client.request(req.body(Full::new(Bytes::from(body))).unwrap()).await.expect("request");
                assert!(resp.status().is_success(), "status {}", resp.status());
                let _ = resp.into_body().collect().await;
                acked.lock().unwrap().insert(id, Instant::now());
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` compatibility
    }
    let n: usize = std::env::var("EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let concurrency: usize = std::env::var("CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        // 1. Raw loopback baseline.
        let (raw_addr, _) = receiver().await;
        let (raw_elapsed, _) = drive(format!("http://{raw_addr}/"), None, n, concurrency).await;
        let raw_rate = n as f64 / raw_elapsed.as_secs_f64();

        // 2. The pipeline.
        let (addr, arrivals) = receiver().await;
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            r#"
[server]
listen = "127.0.0.1:0"
max_batch_events = 1000
[auth]
ingest_tokens = ["bench-ingest"]
admin_tokens = ["bench-admin"]
[store]
path = "{db}"
[runtime]
cache_dir = "{cache}"
[[plugins]]
name = "bench"
component = "{component}"
events = ["{subscribe}"]
allowed_hosts = ["http://{addr}"]
allow_private_networks = ["127.0.0.1/32"]
[plugins.config]
mode = "ok"
url = "http://{addr}/hook"
[plugins.delivery]
signing_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
max_in_flight_per_host = 64
"#,
            subscribe = std::env::var("SUBSCRIBE").unwrap_or_else(|_| "bench.*".into()),
            db = dir.path().join("bench.db").display(),
            cache = root.join("target/wasmhook-test-cache").display(),
            component = root.join("target/plugins/hostile.wasm").display(),
        );
        let config_path = dir.path().join("wasmhook.toml");
        std::fs::write(&config_path, config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_wasmhook"))
            .args(["serve", "--config"])
            .arg(&config_path)
            .env("WASMHOOK_LOG", "warn")
            .stderr(Stdio::piped())
            .spawn()
            .expect("wasmhook serve");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let host = loop {
            let line = lines.next().expect("serve exited").unwrap();
            if let Some(rest) = line.strip_prefix("wasmhook listening on ") {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines.by_ref() {});
        let start = Instant::now();
        let (accept_elapsed, acked) = drive(
            format!("http://{host}/v1/events"),
            Some("bench-ingest"),
            n,
            concurrency,
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(600);
        if std::env::var("SUBSCRIBE").is_ok() {
            println!(
                "ingest only: {:.0} events/s accepted (raw {raw_rate:.0} req/s)",
                n as f64 / accept_elapsed.as_secs_f64()
            );
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        while arrivals.lock().unwrap().len() < n {
            assert!(Instant::now() < deadline, "not all events were delivered");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let delivered_elapsed = start.elapsed();
        let _ = child.kill();
        let _ = child.wait();
        let arrivals = arrivals.lock().unwrap();
        let mut latencies: Vec<Duration> = acked
            .iter()
            .map(|(id, at)| arrivals[id].saturating_duration_since(*at))
            .collect();
        latencies.sort();
        let accept_rate = n as f64 / accept_elapsed.as_secs_f64();
        let delivered_rate = n as f64 / delivered_elapsed.as_secs_f64();
        println!("pipeline bench: {n} events, {concurrency} concurrent clients, loopback");
        println!("  raw loopback HTTP baseline:   {raw_rate:>9.0} req/s");
        println!("  wasmhook accepted (202):      {accept_rate:>9.0} events/s");
        println!(
            "  wasmhook delivered end to end:{delivered_rate:>9.0} events/s   ({:.2} of raw)",
            delivered_rate / raw_rate
        );
        println!(
            "  accept→delivered latency:     p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            latencies.last().unwrap().as_secs_f64() * 1e3
        );
    });
}
