//! Slow and silent clients (slowloris): connections that trickle their
//! headers or body one byte at a time, or never send anything, must not
//! keep normal clients from being served, and the server must close them
//! eventually (`HEADER_READ_TIMEOUT`, `BODY_READ_TIMEOUT` in
//! `host/src/server/mod.rs`).

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use super::raw;
use super::support::host::{Host, INGEST_TOKEN, config_head};
use super::support::http::request;

/// How many slow connections each test opens.
const SLOW_CONNECTIONS: usize = 50;

/// Time between two trickled bytes.
const TRICKLE: Duration = Duration::from_millis(500);

/// How long the server gets to close a slow connection before the test
/// calls it held forever (the server's own limits are 10 s and 30 s).
const CLOSE_BOUND: Duration = Duration::from_secs(90);

/// What became of one slow connection.
#[derive(Debug)]
struct Ended {
    /// Bytes the client got to send before the server closed.
    sent: usize,
    /// Whether the client still had bytes to send.
    unfinished: bool,
    /// What the server answered before closing, if anything.
    response: Vec<u8>,
}

/// Connect, send `prefix` at once, then `trickle` one byte per [`TRICKLE`],
/// while reading until the server closes (EOF or reset).
fn slow_client(addr: SocketAddr, prefix: Vec<u8>, trickle: Vec<u8>) -> JoinHandle<Ended> {
    tokio::spawn(async move {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (mut read, mut write) = stream.into_split();
        let reader = tokio::spawn(async move {
            let mut response = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = read.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                response.extend_from_slice(&buf[..n]);
            }
            response
        });
        let mut sent = 0;
        let mut unfinished = true;
        if write.write_all(&prefix).await.is_ok() {
            sent = prefix.len();
            for byte in &trickle {
                if reader.is_finished() {
                    break;
                }
                tokio::time::sleep(TRICKLE).await;
                if write.write_all(&[*byte]).await.is_err() {
                    break;
                }
                sent += 1;
            }
            unfinished = sent < prefix.len() + trickle.len();
        }
        let response = tokio::time::timeout(CLOSE_BOUND, reader)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the server kept a slow connection open for {CLOSE_BOUND:?} after {sent} bytes"
                )
            })
            .expect("reader task");
        Ended {
            sent,
            unfinished,
            response,
        }
    })
}

/// A long request head: at one byte per [`TRICKLE`] it takes minutes.
fn long_head(addr: SocketAddr) -> Vec<u8> {
    let mut head = raw::ingest_head(
        addr,
        INGEST_TOKEN,
        &[b"content-type: application/json", b"content-length: 13"],
    );
    let padding = format!("x-padding: {}\r\n\r\n", "p".repeat(400));
    head.truncate(head.len() - 2);
    head.extend_from_slice(padding.as_bytes());
    head
}

/// A normal client, meanwhile: ingest and health still succeed.
async fn normal_client_is_served(host: &Host, round: usize) {
    let id = format!("normal-{round}");
    let body = json!({"id": id, "name": "ok"}).to_string();
    let (status, v) = tokio::time::timeout(CLOSE_BOUND, host.ingest(&body))
        .await
        .expect("ingest answered");
    assert_eq!((status, v), (202, json!({"ids": [id]})));
    let (status, _, _) =
        tokio::time::timeout(CLOSE_BOUND, request("GET", &host.url("/healthz"), &[], b""))
            .await
            .expect("healthz answered");
    assert_eq!(status, 200);
}

async fn serve_normal_clients_until_done(host: &Host, slow: &[JoinHandle<Ended>]) -> usize {
    let mut rounds = 0;
    while rounds < 3 || !slow.iter().all(JoinHandle::is_finished) {
        normal_client_is_served(host, rounds).await;
        rounds += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    rounds
}

#[tokio::test(flavor = "multi_thread")]
async fn trickled_headers_do_not_starve_normal_clients_and_get_closed() {
    let host = Host::start(&config_head(), &[]);
    let slow: Vec<_> = (0..SLOW_CONNECTIONS)
        .map(|_| slow_client(host.addr, Vec::new(), long_head(host.addr)))
        .collect();
    let rounds = serve_normal_clients_until_done(&host, &slow).await;
    for handle in slow {
        let ended = handle.await.expect("slow client task");
        assert!(
            ended.unfinished,
            "a trickling client got to send its whole head ({} bytes): {ended:?}",
            ended.sent
        );
    }
    eprintln!("{SLOW_CONNECTIONS} trickling connections closed; {rounds} normal rounds served");
    normal_client_is_served(&host, rounds).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trickled_body_gets_a_408_and_the_connection_closed() {
    let host = Host::start(&config_head(), &[]);
    let head = raw::ingest_head(
        host.addr,
        INGEST_TOKEN,
        &[b"content-type: application/json", b"content-length: 1000"],
    );
    let body = vec![b' '; 1000];
    let slow: Vec<_> = (0..SLOW_CONNECTIONS)
        .map(|_| slow_client(host.addr, head.clone(), body.clone()))
        .collect();
    let rounds = serve_normal_clients_until_done(&host, &slow).await;
    for handle in slow {
        let ended = handle.await.expect("slow client task");
        assert!(ended.unfinished, "{ended:?}");
        let resp = raw::parse_response(&ended.response)
            .unwrap_or_else(|| panic!("no response before the close: {ended:?}"));
        assert_eq!(resp.status, 408, "{}", resp.text);
        let msg = resp.json["error"].as_str().unwrap_or_default();
        assert!(msg.contains("did not arrive within"), "{msg}");
    }
    eprintln!("{SLOW_CONNECTIONS} trickled bodies refused with 408; {rounds} normal rounds served");
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_connections_and_a_trickled_http2_preface_get_closed() {
    let host = Host::start(&config_head(), &[]);
    let mut slow: Vec<_> = (0..SLOW_CONNECTIONS)
        .map(|_| slow_client(host.addr, Vec::new(), Vec::new()))
        .collect();
    // Bytes that keep the protocol undecided (HTTP/2 prior knowledge),
    // sent slowly: the preface is 24 bytes, the tail never comes.
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    slow.push(slow_client(host.addr, Vec::new(), preface[..20].to_vec()));
    let rounds = serve_normal_clients_until_done(&host, &slow).await;
    for handle in slow {
        let ended = handle.await.expect("slow client task");
        assert!(ended.response.is_empty(), "{ended:?}");
    }
    eprintln!("{SLOW_CONNECTIONS}+1 silent connections closed; {rounds} normal rounds served");
}

/// `server.max_connections` caps the connections held open: at the cap the
/// listener stops accepting, so a new client waits (its request is not
/// answered), and it is served as soon as a held connection closes.
#[tokio::test(flavor = "multi_thread")]
async fn at_the_connection_cap_new_clients_wait_until_a_connection_closes() {
    const CAP: usize = 3;
    let config = config_head().replace(
        "shutdown_grace_s = 5",
        &format!("shutdown_grace_s = 5\nmax_connections = {CAP}"),
    );
    let host = Host::start(&config, &[]);
    // Silent connections take every slot (the server would close them
    // after its 10 s header timeout; this test closes them itself first).
    let mut silent = Vec::new();
    for _ in 0..CAP {
        silent.push(TcpStream::connect(host.addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let waiting = tokio::spawn({
        let url = host.url("/healthz");
        async move { request("GET", &url, &[], b"").await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !waiting.is_finished(),
        "a client was served while {CAP} connections were open"
    );
    drop(silent);
    let (status, _, _) = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the waiting client was served once the connections closed")
        .expect("client task");
    assert_eq!(status, 200);
    let (status, metrics) = host.admin("GET", "/metrics", "").await;
    assert_eq!(status, 200);
    let metrics = metrics.as_str().expect("metrics text").to_owned();
    let at_cap = metrics
        .lines()
        .find_map(|l| l.strip_prefix("wasmhook_connections_at_cap_total "))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no connections_at_cap counter in {metrics}"));
    assert!(at_cap >= 1, "{metrics}");
}
