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

#[tokio::test]
async fn a_receiver_that_requires_a_client_certificate_gets_the_configured_one() {
    let pki = test_pki(&["tls.test"], &[b"http/1.1"]);
    let server = TestServer::start_tls(Reply::status(200), pki.mtls_server_config.clone()).await;
    let url = format!("https://tls.test:{}/mtls", server.addr.port());

    let without = deliverer(loopback(), tls_options(&pki, true));
    let report = without.send(post(&url)).await;
    assert!(
        matches!(report.outcome, AttemptOutcome::Retry { .. }),
        "refused without a client certificate: {report:?}"
    );
    assert!(server.requests().is_empty());

    let mut options = tls_options(&pki, true);
    options.client_identity = Some(pki.client.clone());
    let with = deliverer(loopback(), options);
    let report = with.send(post(&url)).await;
    assert_eq!(report.outcome, AttemptOutcome::Succeeded, "{report:?}");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_client_key_that_does_not_match_its_certificate_is_refused() {
    let (a, b) = (test_pki(&["a.test"], &[]), test_pki(&["b.test"], &[]));
    let mismatched = crate::delivery::ClientIdentity {
        chain: a.client.chain.clone(),
        key: b.client.key.clone_key(),
    };
    let err = crate::delivery::tls::client_config(&[], Some(&mismatched), true).unwrap_err();
    assert!(
        err.to_string().contains("do not make a usable pair"),
        "{err}"
    );
    assert!(
        !format!("{mismatched:?}").contains("Pkcs8"),
        "the key is not shown"
    );
}
