//! `wasmhook serve` with `[server] tls_cert_file` / `tls_key_file`: ingest
//! and the management API over HTTPS, HTTP/2 and HTTP/1.1 offered by ALPN,
//! plain HTTP refused on the TLS port, and a renewed certificate served
//! once its files change, without a restart or a signal.

#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use support::host::{ADMIN_TOKEN, Host, INGEST_TOKEN, hostile_config};
use support::pki::{new_ca, new_leaf};
use support::receiver::TestReceiver;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A CA, and a certificate for `localhost` it signed, written as PEM to
/// `dir/server.crt` (leaf, then CA) and `dir/server.key`. Returns the CA
/// (to trust) and the leaf (to recognise).
fn issue(dir: &Path) -> (CertificateDer<'static>, CertificateDer<'static>) {
    let (ca, issuer) = new_ca();
    let (leaf, leaf_key) = new_leaf(&issuer, "localhost");
    std::fs::write(dir.join("server.crt"), leaf.pem() + &ca.pem()).unwrap();
    std::fs::write(dir.join("server.key"), leaf_key.serialize_pem()).unwrap();
    (ca.der().clone(), leaf.der().clone())
}

/// What one HTTPS exchange gave.
struct Exchange {
    status: u16,
    body: String,
    alpn: Option<Vec<u8>>,
    peer: CertificateDer<'static>,
}

/// One HTTP/1.1 request over TLS to `addr` as `localhost`, trusting `ca`
/// only, offering `alpn`.
async fn https(
    addr: SocketAddr,
    ca: &CertificateDer<'static>,
    alpn: &[&[u8]],
    request: &str,
) -> Result<Exchange, String> {
    https_as(None, addr, ca, alpn, request).await
}

/// A client certificate and its key.
type ClientCert = (
    CertificateDer<'static>,
    rustls::pki_types::PrivateKeyDer<'static>,
);

/// [`https`], presenting `client` when the server asks for a certificate.
async fn https_as(
    client: Option<ClientCert>,
    addr: SocketAddr,
    ca: &CertificateDer<'static>,
    alpn: &[&[u8]],
    request: &str,
) -> Result<Exchange, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client {
        Some((cert, key)) => builder.with_client_auth_cert(vec![cert], key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (_, conn) = tls.get_ref();
    let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
    let peer = conn.peer_certificates().unwrap()[0].clone().into_owned();
    if alpn.as_deref() == Some(b"h2") {
        return Ok(Exchange {
            status: 0,
            body: String::new(),
            alpn,
            peer,
        });
    }
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tls.read_to_end(&mut raw).await.ok();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no HTTP answer: {text:?}"))?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    Ok(Exchange {
        status,
        body,
        alpn,
        peer,
    })
}

fn request(method: &str, path: &str, token: &str, body: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn https_serves_the_api_and_a_renewed_certificate_once_its_files_change() {
    let pki = tempfile::tempdir().unwrap();
    let (ca, leaf) = issue(pki.path());
    let rx = TestReceiver::start().await;
    let tls = format!(
        "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
        pki.path().join("server.crt").display(),
        pki.path().join("server.key").display()
    );
    let host = Host::start(&hostile_config(&rx.url(), "ok", "[1]", &tls), &[]);
    let http1: &[&[u8]] = &[b"http/1.1"];
    assert!(host.log().contains(" with TLS ("), "{}", host.log());

    let ingest = request(
        "POST",
        "/v1/events",
        INGEST_TOKEN,
        r#"{"id":"tls-1","name":"x"}"#,
    );
    let got = https(host.addr, &ca, http1, &ingest).await.unwrap();
    assert_eq!(got.status, 202, "{}", got.body);
    assert_eq!(got.peer, leaf);
    rx.wait_for(1, 30).await;
    let status = request("GET", "/v1/events/tls-1", ADMIN_TOKEN, "");
    let got = https(host.addr, &ca, http1, &status).await.unwrap();
    assert_eq!(got.status, 200, "{}", got.body);
    assert!(got.body.contains("\"tls-1\""), "{}", got.body);
    let h2 = https(host.addr, &ca, &[b"h2", b"http/1.1"], "")
        .await
        .unwrap();
    assert_eq!(h2.alpn.as_deref(), Some(&b"h2"[..]), "HTTP/2 offered");

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain = tokio::net::TcpStream::connect(host.addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(15),
        plain.read_to_end(&mut answer),
    )
    .await;
    assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");

    // The certificate is renewed (a new CA, even): the changed files
    // trigger a reload (no signal), which serves it to new connections,
    // and the old CA no longer verifies the server.
    let (new_ca, new_leaf) = issue(pki.path());
    host.wait_for_log("wasmhook reloaded (a TLS file changed)", 30)
        .await;
    let health = request("GET", "/healthz", ADMIN_TOKEN, "");
    let got = https(host.addr, &new_ca, http1, &health).await.unwrap();
    assert_eq!((got.status, got.peer), (200, new_leaf));
    let refused = https(host.addr, &ca, http1, &health).await;
    assert!(refused.is_err(), "the old CA still verifies the server");
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate it
/// signed. Writes `ca.pem`, `client.crt` and `client.key` to `dir`;
/// returns a server config that requires a client certificate from the CA.
fn mutual_tls(dir: &Path) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let (ca, issuer) = new_ca();
    let (server, server_key) = new_leaf(&issuer, "127.0.0.1");
    let (client, client_key) = new_leaf(&issuer, "wasmhook-client");
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("client.crt"), client.pem()).unwrap();
    std::fs::write(dir.join("client.key"), client_key.serialize_pem()).unwrap();

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![server.der().clone()], key)
        .unwrap();
    Arc::new(config)
}

/// Deliveries to an internal HTTPS receiver with a private CA that
/// requires a client certificate (`ca_file`, `client_cert_file`,
/// `client_key_file`): delivered with the certificate; without it the
/// receiver refuses the handshake and the delivery fails, nothing sent.
#[tokio::test(flavor = "multi_thread")]
async fn deliveries_present_the_configured_client_certificate() {
    let pki = tempfile::tempdir().unwrap();
    let rx = TestReceiver::start_tls(mutual_tls(pki.path())).await;
    assert!(rx.url().starts_with("https://127.0.0.1:"));
    let file = |name: &str| pki.path().join(name).display().to_string();
    let with_files = |lines: &str| {
        let config = hostile_config(&rx.url(), "ok", "[1]", "");
        assert!(config.contains("timeout_s = 2\n"));
        config.replace("timeout_s = 2\n", &format!("timeout_s = 2\n{lines}"))
    };

    let both = format!(
        "ca_file = \"{}\"\nclient_cert_file = \"{}\"\nclient_key_file = \"{}\"\n",
        file("ca.pem"),
        file("client.crt"),
        file("client.key")
    );
    let host = Host::start(&with_files(&both), &[]);
    host.ingest(r#"{"id":"mtls-1","name":"x"}"#).await;
    let v = host.settled_event("mtls-1", 30).await;
    assert_eq!(v["deliveries"][0]["status"], "succeeded", "{v}");
    assert_eq!(rx.requests().len(), 1);
    drop(host);

    let ca_only = format!("ca_file = \"{}\"\n", file("ca.pem"));
    let host = Host::start(&with_files(&ca_only), &[]);
    host.ingest(r#"{"id":"mtls-2","name":"x"}"#).await;
    let v = host.settled_event("mtls-2", 30).await;
    let d = &v["deliveries"][0];
    assert_eq!(d["status"], "failed", "{v}");
    // The error is the alert (`CertificateRequired`), or, when the
    // request went out before the alert came back under TLS 1.3, the
    // connection closing under it: a network failure either way.
    assert_eq!(d["attempts"][0]["outcome"], "network", "{v}");
    assert_eq!(rx.requests().len(), 1, "nothing more arrived");
    assert!(rx.failed_handshakes() >= 1);
}

/// A client certificate `issuer` signed, in the form a client presents.
fn client_cert(issuer: &rcgen::Issuer<'static, rcgen::KeyPair>) -> ClientCert {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let (cert, key) = new_leaf(issuer, "ingest-client");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    (cert.der().clone(), key)
}

/// `tls_client_ca_file`: the listener requires a client certificate from
/// that CA, on top of the bearer token; none, or one from another CA, and
/// the handshake fails. A new CA file is used once written, without a
/// restart or a signal.
#[tokio::test(flavor = "multi_thread")]
async fn the_listener_requires_client_certificates_from_its_client_ca() {
    let pki = tempfile::tempdir().unwrap();
    let (server_ca, _) = issue(pki.path());
    let (client_ca, client_issuer) = new_ca();
    let client_ca_file = pki.path().join("clients.pem");
    std::fs::write(&client_ca_file, client_ca.pem()).unwrap();
    let rx = TestReceiver::start().await;
    let tls = format!(
        "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"\ntls_client_ca_file = \"{}\"",
        pki.path().join("server.crt").display(),
        pki.path().join("server.key").display(),
        client_ca_file.display()
    );
    let host = Host::start(&hostile_config(&rx.url(), "ok", "[1]", &tls), &[]);
    assert!(
        host.log()
            .contains(" with TLS (client certificates required) ("),
        "{}",
        host.log()
    );
    let http1: &[&[u8]] = &[b"http/1.1"];
    let ingest = |id: &str| {
        request(
            "POST",
            "/v1/events",
            INGEST_TOKEN,
            &format!(r#"{{"id":"{id}","name":"x"}}"#),
        )
    };

    let ok = https_as(
        Some(client_cert(&client_issuer)),
        host.addr,
        &server_ca,
        http1,
        &ingest("mtls-in-1"),
    )
    .await
    .unwrap();
    assert_eq!(ok.status, 202, "{}", ok.body);
    // The certificate does not replace the token.
    let no_token = request("POST", "/v1/events", "wrong-token", r#"{"name":"x"}"#);
    let got = https_as(
        Some(client_cert(&client_issuer)),
        host.addr,
        &server_ca,
        http1,
        &no_token,
    )
    .await
    .unwrap();
    assert_eq!(got.status, 401, "{}", got.body);

    let none = https(host.addr, &server_ca, http1, &ingest("mtls-in-2")).await;
    assert!(none.is_err(), "accepted without a client certificate");
    let (_, stranger) = new_ca();
    let other = https_as(
        Some(client_cert(&stranger)),
        host.addr,
        &server_ca,
        http1,
        &ingest("mtls-in-3"),
    )
    .await;
    assert!(other.is_err(), "accepted a certificate from another CA");

    // A new client CA: written, picked up, and the old one's clients refused.
    let (next_ca, next_issuer) = new_ca();
    std::fs::write(&client_ca_file, next_ca.pem()).unwrap();
    host.wait_for_log("wasmhook reloaded (a TLS file changed)", 30)
        .await;
    let ok = https_as(
        Some(client_cert(&next_issuer)),
        host.addr,
        &server_ca,
        http1,
        &ingest("mtls-in-4"),
    )
    .await
    .unwrap();
    assert_eq!(ok.status, 202, "{}", ok.body);
    let old = https_as(
        Some(client_cert(&client_issuer)),
        host.addr,
        &server_ca,
        http1,
        &ingest("mtls-in-5"),
    )
    .await;
    assert!(old.is_err(), "the replaced CA's client was accepted");
    rx.wait_for(2, 30).await;
    assert_eq!(
        rx.requests().len(),
        2,
        "only the two accepted events were delivered"
    );
}
