//! Plain-HTTP behaviour of [`Deliverer::send`]: signing, classification,
//! timeouts, body caps, redirects and the address guard.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::fixtures::*;
use crate::delivery::{AttemptOutcome, ClientOptions, SigningKey, StaticResolver};
use crate::model::Method;

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn localhost() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}

#[tokio::test]
async fn delivers_a_signed_request_the_receiver_can_verify() {
    let server = TestServer::start(Reply::status(200).body(b"thanks")).await;
    let client = deliverer(loopback(), ClientOptions::default());
    let key = SigningKey::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("Authorization".to_string(), "Bearer t0ken".to_string()),
    ];
    let url = server.url("/hook?x=1");
    let mut req = post(&url);
    req.headers = &headers;
    req.signing = std::slice::from_ref(&key);

    let report = client.send(req).await;

    assert_eq!(report.outcome, AttemptOutcome::Succeeded, "{report:?}");
    assert_eq!(report.status_code, Some(200));
    assert_eq!(report.response_bytes, b"thanks");
    assert!(!report.response_truncated);
    assert_eq!(report.remote_addr, Some(server.addr));
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    let got = &seen[0];
    assert_eq!(got.method, http::Method::POST);
    assert_eq!(got.path, "/hook");
    assert_eq!(got.body.as_ref(), br#"{"hello":"world"}"#);
    assert_eq!(got.headers["authorization"], "Bearer t0ken");
    assert_eq!(got.headers["content-type"], "application/json");
    assert_eq!(got.headers["content-length"], "17");
    assert_eq!(got.headers["webhook-id"], "msg_test_1");
    assert!(
        got.headers["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("wasmhook/")
    );
    let verified = key.verify(
        "msg_test_1",
        got.headers["webhook-timestamp"].to_str().unwrap(),
        got.headers["webhook-signature"].to_str().unwrap(),
        &got.body,
        now_s(),
        300,
    );
    assert_eq!(verified, Ok(()));
    let wrong = SigningKey::from_bytes(vec![9u8; 32]);
    assert!(
        wrong
            .verify(
                "msg_test_1",
                got.headers["webhook-timestamp"].to_str().unwrap(),
                got.headers["webhook-signature"].to_str().unwrap(),
                &got.body,
                now_s(),
                300,
            )
            .is_err()
    );
}

#[tokio::test]
async fn status_codes_map_to_outcomes() {
    let cases: Vec<(Reply, AttemptOutcome)> = vec![
        (
            Reply::status(500),
            AttemptOutcome::Retry {
                after: None,
                reason: "HTTP 500".into(),
            },
        ),
        (
            Reply::status(429).header("retry-after", "7"),
            AttemptOutcome::Retry {
                after: Some(Duration::from_secs(7)),
                reason: "HTTP 429".into(),
            },
        ),
        (
            Reply::status(503).header("retry-after", "0"),
            AttemptOutcome::Retry {
                after: Some(Duration::from_secs(1)),
                reason: "HTTP 503".into(),
            },
        ),
        (
            Reply::status(410),
            AttemptOutcome::Failed {
                reason: "HTTP 410: receiver is gone".into(),
            },
        ),
        (
            Reply::status(400).header("retry-after", "7"),
            AttemptOutcome::Failed {
                reason: "HTTP 400".into(),
            },
        ),
        (Reply::status(204), AttemptOutcome::Succeeded),
    ];
    let client = deliverer(loopback(), ClientOptions::default());
    for (reply, want) in cases {
        let status = reply.status;
        let server = TestServer::start(reply).await;
        let url = server.url("/");
        let report = client.send(post(&url)).await;
        assert_eq!(report.outcome, want, "status {status}");
        assert_eq!(report.status_code, Some(status));
        assert_eq!(
            server.requests().len(),
            1,
            "status {status}: exactly one request"
        );
    }
}

#[tokio::test]
async fn keep_alive_connections_are_reused() {
    let server = TestServer::start(Reply::status(200)).await;
    let client = deliverer(loopback(), ClientOptions::default());
    let url = server.url("/");
    for _ in 0..3 {
        assert_eq!(
            client.send(post(&url)).await.outcome,
            AttemptOutcome::Succeeded
        );
    }
    assert_eq!(server.requests().len(), 3);
    assert_eq!(server.connections(), 1, "one pooled connection");
}

#[tokio::test]
async fn a_redirect_is_a_failure_when_redirects_are_off() {
    let target = TestServer::start(Reply::status(200)).await;
    let server = TestServer::start(Reply::status(302).header("location", target.url("/x"))).await;
    let client = deliverer(loopback(), ClientOptions::default());
    let url = server.url("/");
    let report = client.send(post(&url)).await;
    assert_eq!(report.status_code, Some(302));
    assert!(
        matches!(&report.outcome, AttemptOutcome::Failed { reason } if reason.contains("redirect")),
        "{report:?}"
    );
    assert_eq!(target.connections(), 0, "Location not visited");
}

#[tokio::test]
async fn redirects_are_followed_when_a_guard_is_given() {
    let target = TestServer::start(Reply::status(200).body(b"landed")).await;
    let server = TestServer::start(Reply::status(307).header("location", target.url("/x"))).await;
    let client = deliverer(loopback(), ClientOptions::default());
    let mut guard = RedirectHosts::new(3, &["127.0.0.1"]);
    guard.headers = vec![("x-hop".to_string(), "2".to_string())];
    let headers = vec![("x-hop".to_string(), "1".to_string())];
    let url = server.url("/");
    let mut req = post(&url);
    req.headers = &headers;
    req.redirects = Some(&guard);
    let report = client.send(req).await;
    assert_eq!(report.outcome, AttemptOutcome::Succeeded, "{report:?}");
    assert_eq!(report.redirects, 1);
    assert_eq!(report.remote_addr, Some(target.addr));
    assert_eq!(report.response_bytes, b"landed");
    assert_eq!(server.requests()[0].headers["x-hop"], "1");
    let landed = target.requests();
    assert_eq!(landed.len(), 1);
    assert_eq!(landed[0].path, "/x");
    assert_eq!(landed[0].method, http::Method::POST, "307 keeps the method");
    assert_eq!(landed[0].body.as_ref(), br#"{"hello":"world"}"#);
    assert_eq!(landed[0].headers["webhook-id"], "msg_test_1");
    assert_eq!(
        landed[0].headers["x-hop"], "2",
        "the guard's headers for the hop"
    );
}

#[tokio::test]
async fn a_303_turns_into_a_bodyless_get() {
    let target = TestServer::start(Reply::status(200)).await;
    let server = TestServer::start(Reply::status(303).header("location", target.url("/x"))).await;
    let client = deliverer(loopback(), ClientOptions::default());
    let mut guard = RedirectHosts::new(1, &["127.0.0.1"]);
    guard.headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    let url = server.url("/");
    let mut req = post(&url);
    req.redirects = Some(&guard);
    let report = client.send(req).await;
    assert_eq!(report.outcome, AttemptOutcome::Succeeded, "{report:?}");
    let landed = &target.requests()[0];
    assert_eq!(landed.method, http::Method::GET);
    assert!(landed.body.is_empty());
    assert!(!landed.headers.contains_key("content-type"));
    assert!(!landed.headers.contains_key("content-length"));
}

#[tokio::test]
async fn redirect_loops_stop_after_max_hops() {
    let server = TestServer::start(Reply::status(302).header("location", "/again")).await;
    let client = deliverer(loopback(), ClientOptions::default());
    let guard = RedirectHosts::new(2, &["127.0.0.1"]);
    let url = server.url("/");
    let mut req = post(&url);
    req.redirects = Some(&guard);
    let report = client.send(req).await;
    assert!(
        matches!(&report.outcome, AttemptOutcome::Failed { reason } if reason.contains("more than 2 redirects")),
        "{report:?}"
    );
    assert_eq!(report.redirects, 2);
    assert_eq!(report.status_code, Some(302));
    let seen = server.requests();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[1].method, http::Method::GET, "302 turns POST into GET");
}

#[tokio::test]
async fn redirect_refused_by_the_redirect_guard() {
    let server =
        TestServer::start(Reply::status(302).header("location", "http://elsewhere.test/x")).await;
    let client = deliverer(loopback(), ClientOptions::default());
    let guard = RedirectHosts::new(3, &["127.0.0.1"]);
    let url = server.url("/");
    let mut req = post(&url);
    req.redirects = Some(&guard);
    let report = client.send(req).await;
    assert!(report.denied_by_policy, "{report:?}");
    assert!(matches!(report.outcome, AttemptOutcome::Failed { .. }));
    assert_eq!(report.status_code, Some(302));
    assert!(
        report
            .error
            .unwrap()
            .contains("elsewhere.test is not an allowed host")
    );
}

#[tokio::test]
async fn redirect_to_the_metadata_address_is_refused_at_connect() {
    // The redirect guard lets the hop through; the address guard still
    // refuses 169.254.169.254 before any packet is sent.
    let server = TestServer::start(
        Reply::status(302).header("location", "http://169.254.169.254/latest/meta-data/"),
    )
    .await;
    let client = deliverer(loopback(), ClientOptions::default());
    let guard = RedirectHosts::new(3, &["127.0.0.1", "169.254.169.254"]);
    let url = server.url("/");
    let mut req = post(&url);
    req.redirects = Some(&guard);
    let report = client.send(req).await;
    assert!(report.denied_by_policy, "{report:?}");
    assert!(matches!(report.outcome, AttemptOutcome::Failed { .. }));
    assert_eq!(report.redirects, 1);
    let error = report.error.unwrap();
    assert!(error.contains("169.254.169.254"), "{error}");
    assert!(
        !error.contains("meta-data"),
        "no URL paths in errors: {error}"
    );
}

#[tokio::test]
async fn an_unanswered_request_times_out_and_is_retried() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accept and hold connections, never answer.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    let client = deliverer(loopback(), ClientOptions::default());
    let url = format!("http://{addr}/");
    let mut req = post(&url);
    req.timeout = Duration::from_millis(300);
    let report = client.send(req).await;
    holder.abort();
    assert_eq!(
        report.outcome,
        AttemptOutcome::Retry {
            after: None,
            reason: "timed out".into()
        }
    );
    assert!(
        report.duration >= Duration::from_millis(300),
        "{:?}",
        report.duration
    );
    assert!(
        report.duration < Duration::from_secs(5),
        "{:?}",
        report.duration
    );
}

#[tokio::test]
async fn connection_refused_is_retried() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    }; // closed again: nothing listens there now
    let client = deliverer(loopback(), ClientOptions::default());
    let url = format!("http://{addr}/");
    let report = client.send(post(&url)).await;
    assert!(
        matches!(&report.outcome, AttemptOutcome::Retry { after: None, reason } if reason.starts_with("connection failed")),
        "{report:?}"
    );
    assert!(!report.denied_by_policy);
    assert_eq!(report.status_code, None);
}

#[tokio::test]
async fn an_endless_response_body_is_capped() {
    let server = TestServer::start(Reply::status(200).endless()).await;
    let client = deliverer(loopback(), ClientOptions::default());
    let url = server.url("/");
    let mut req = post(&url);
    req.response_body_limit = 1000;
    let report = client.send(req).await;
    assert_eq!(report.outcome, AttemptOutcome::Succeeded);
    assert_eq!(report.response_bytes.len(), 1000);
    assert!(report.response_truncated);
    assert_eq!(report.error, None, "stopped by the cap, not the timeout");
    // The cut connection is not reused.
    assert_eq!(client.send(req).await.outcome, AttemptOutcome::Succeeded);
    assert_eq!(server.connections(), 2);
}

/// A listener that is never accepted from: after the attempt, a
/// non-blocking accept tells whether a TCP handshake ever reached it.
fn silent_listener() -> std::net::TcpListener {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    l
}

fn saw_a_connection(l: &std::net::TcpListener) -> bool {
    match l.accept() {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Err(e) => panic!("accept: {e}"),
    }
}

#[tokio::test]
async fn a_refused_address_gets_no_connection() {
    let listener = silent_listener();
    let port = listener.local_addr().unwrap().port();
    // The guard only allows another address.
    let client = deliverer(
        Arc::new(AllowOnly(vec!["127.0.0.2".parse().unwrap()])),
        ClientOptions::default(),
    );
    let url = format!("http://127.0.0.1:{port}/");
    let report = client.send(post(&url)).await;
    assert!(report.denied_by_policy, "{report:?}");
    assert!(
        matches!(&report.outcome, AttemptOutcome::Failed { reason } if reason.starts_with("denied by egress policy")),
        "{report:?}"
    );
    assert!(!saw_a_connection(&listener));
}

#[tokio::test]
async fn a_name_resolving_to_a_blocked_address_gets_no_connection() {
    let listener = silent_listener();
    let port = listener.local_addr().unwrap().port();
    let options = ClientOptions {
        resolver: Arc::new(StaticResolver::new().with("internal.test", [localhost()])),
        ..ClientOptions::default()
    };
    let client = deliverer(Arc::new(AllowOnly(vec![])), options);
    let url = format!("http://internal.test:{port}/");
    let report = client.send(post(&url)).await;
    assert!(report.denied_by_policy, "{report:?}");
    assert!(report.error.unwrap().contains("internal.test"));
    assert!(!saw_a_connection(&listener));
}

#[tokio::test]
async fn an_injected_resolver_routes_an_allowed_name() {
    let server = TestServer::start(Reply::status(202)).await;
    let options = ClientOptions {
        resolver: Arc::new(StaticResolver::new().with("allowed.test", [localhost()])),
        ..ClientOptions::default()
    };
    let client = deliverer(loopback(), options);
    let url = format!("http://allowed.test:{}/in", server.addr.port());
    let report = client.send(post(&url)).await;
    assert_eq!(report.outcome, AttemptOutcome::Succeeded, "{report:?}");
    let seen = server.requests();
    assert_eq!(
        seen[0].headers["host"],
        format!("allowed.test:{}", server.addr.port()).as_str()
    );
}

#[tokio::test]
async fn an_unknown_name_is_a_retryable_connection_failure() {
    let options = ClientOptions {
        resolver: Arc::new(StaticResolver::new()),
        ..ClientOptions::default()
    };
    let client = deliverer(loopback(), options);
    let report = client.send(post("http://nowhere.test/")).await;
    assert!(
        matches!(&report.outcome, AttemptOutcome::Retry { reason, .. } if reason.contains("cannot resolve nowhere.test")),
        "{report:?}"
    );
}

#[tokio::test]
async fn malformed_requests_fail_without_connecting() {
    let listener = silent_listener();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let client = deliverer(loopback(), ClientOptions::default());
    let bad_header = vec![("Content-Length".to_string(), "1".to_string())];
    let mut with_header = post(&url);
    with_header.headers = &bad_header;
    let mut get = post("ftp://example.test/");
    get.method = Method::Get;
    for req in [with_header, get, post("not a url")] {
        let report = client.send(req).await;
        assert!(
            matches!(&report.outcome, AttemptOutcome::Failed { reason } if reason.starts_with("invalid request")),
            "{report:?}"
        );
        assert!(!report.denied_by_policy);
    }
    assert!(!saw_a_connection(&listener));
}
