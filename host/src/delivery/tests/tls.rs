//! HTTPS: certificate verification against extra roots, ALPN to HTTP/2.

use std::sync::Arc;

use http::Version;

use super::fixtures::*;
use crate::delivery::{AttemptOutcome, ClientOptions, StaticResolver};

fn tls_options(pki: &TestPki, http2: bool) -> ClientOptions {
    ClientOptions {
        resolver: Arc::new(StaticResolver::new().with("tls.test", ["127.0.0.1".parse().unwrap()])),
        extra_roots: vec![pki.ca.clone()],
        http2,
        ..ClientOptions::default()
    }
}

#[tokio::test]
async fn https_with_an_extra_root_is_delivered_over_http2() {
    let pki = test_pki(&["tls.test"], &[b"h2", b"http/1.1"]);
    let server = TestServer::start_tls(Reply::status(200), pki.server_config.clone()).await;
    let client = deliverer(loopback(), tls_options(&pki, true));
    let url = format!("https://tls.test:{}/secure", server.addr.port());
    for _ in 0..2 {
        let report = client.send(post(&url)).await;
        assert_eq!(report.outcome, AttemptOutcome::Succeeded, "{report:?}");
    }
    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].version, Version::HTTP_2);
    assert_eq!(seen[0].path, "/secure");
    assert_eq!(seen[0].headers["webhook-id"], "msg_test_1");
    assert_eq!(server.connections(), 1, "one multiplexed connection");
}

#[tokio::test]
async fn https_falls_back_to_http1_when_h2_is_not_offered() {
    let pki = test_pki(&["tls.test"], &[b"h2", b"http/1.1"]);
    let server = TestServer::start_tls(Reply::status(200), pki.server_config.clone()).await;
    let client = deliverer(loopback(), tls_options(&pki, false));
    let url = format!("https://tls.test:{}/", server.addr.port());
    let report = client.send(post(&url)).await;
    assert_eq!(report.outcome, AttemptOutcome::Succeeded, "{report:?}");
    assert_eq!(server.requests()[0].version, Version::HTTP_11);
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_retryable_failure() {
    let pki = test_pki(&["tls.test"], &[b"http/1.1"]);
    let server = TestServer::start_tls(Reply::status(200), pki.server_config.clone()).await;
    let mut options = tls_options(&pki, true);
    options.extra_roots.clear();
    let client = deliverer(loopback(), options);
    let url = format!("https://tls.test:{}/", server.addr.port());
    let report = client.send(post(&url)).await;
    assert!(
        matches!(&report.outcome, AttemptOutcome::Retry { reason, .. } if reason.contains("TLS handshake with tls.test failed")),
        "{report:?}"
    );
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let pki = test_pki(&["other.test"], &[b"http/1.1"]);
    let server = TestServer::start_tls(Reply::status(200), pki.server_config.clone()).await;
    let client = deliverer(loopback(), tls_options(&pki, true));
    let url = format!("https://tls.test:{}/", server.addr.port());
    let report = client.send(post(&url)).await;
    assert!(
        matches!(report.outcome, AttemptOutcome::Retry { .. }),
        "{report:?}"
    );
    assert!(server.requests().is_empty());
}
