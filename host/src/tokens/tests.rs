//! Token sources: the grant's form and headers, reading answers, the
//! renewal schedule, and real fetches from servers on 127.0.0.1.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;

use super::fetch::{grant, parse};
use super::*;
use crate::config::ClientAuth;
use crate::delivery::SystemResolver;
use crate::delivery::tests::fixtures::{Reply, TestServer};

const CLIENT_SECRET: &str = "cs-very/secret:value&more";

fn config(token_url: &str, auth: ClientAuth) -> OAuth2Config {
    let auth = match auth {
        ClientAuth::Basic => "basic",
        ClientAuth::Post => "post",
    };
    OAuth2Config::from_toml(&format!(
        r#"
token_url = "{token_url}"
client_id = "app:one"
client_secret = "{CLIENT_SECRET}"
scope = "api refresh"
client_auth = "{auth}"
params = {{ audience = "https://api.example.com" }}
"#
    ))
    .unwrap()
}

/// The form and headers of `config`'s grant.
fn grant_of(config: &OAuth2Config) -> (Vec<(String, String)>, Vec<u8>) {
    grant(config, config.grant.as_ref().unwrap(), None, 0).unwrap()
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

#[test]
fn the_grant_sends_the_credentials_as_basic_or_in_the_form() {
    let (headers, body) = grant_of(&config("https://id.example/token", ClientAuth::Basic));
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        header("content-type").as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    // RFC 6749 §2.3.1: id and secret form-encoded before Basic.
    let basic = header("authorization").unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(basic.strip_prefix("Basic ").unwrap())
        .unwrap();
    assert_eq!(
        String::from_utf8(decoded).unwrap(),
        "app%3Aone:cs-very%2Fsecret%3Avalue%26more"
    );
    assert_eq!(
        form(&body),
        [
            ("grant_type", "client_credentials"),
            ("scope", "api refresh"),
            ("audience", "https://api.example.com"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );

    let (headers, body) = grant_of(&config("https://id.example/token", ClientAuth::Post));
    assert!(headers.iter().all(|(k, _)| k != "authorization"));
    let fields = form(&body);
    assert!(fields.contains(&("client_id".into(), "app:one".into())));
    assert!(fields.contains(&("client_secret".into(), CLIENT_SECRET.into())));
}

#[test]
fn answers_are_read_strictly() {
    let ok = |body: &str| parse(body.as_bytes()).map(|t| (t.value.expose().to_owned(), t.lifetime));
    assert_eq!(
        ok(r#"{"access_token":"t1","token_type":"Bearer","expires_in":3600}"#),
        Ok(("t1".into(), Some(Duration::from_secs(3600))))
    );
    assert_eq!(
        ok(r#"{"access_token":"t2","expires_in":"59"}"#),
        Ok(("t2".into(), Some(Duration::from_secs(59))))
    );
    assert_eq!(ok(r#"{"access_token":"t3"}"#), Ok(("t3".into(), None)));
    assert_eq!(
        ok(r#"{"access_token":"t4","expires_in":null}"#),
        Ok(("t4".into(), None))
    );
    let bad = [
        ("<html>", "not JSON"),
        (r#"{"access_token":""}"#, "access_token is empty"),
        (r#"{"access_token":7}"#, "not a string"),
        (r#"{"access_token":"a\nb"}"#, "control characters"),
        (r#"{"access_token":"t","expires_in":-5}"#, "positive number"),
        (
            r#"{"access_token":"t","expires_in":"soon"}"#,
            "positive number",
        ),
        (
            r#"{"access_token":"t","expires_in":[1]}"#,
            "positive number",
        ),
        (
            r#"{"error":"invalid_scope","error_description":"no\nsuch scope"}"#,
            "no access_token: invalid_scope (nosuch scope)",
        ),
    ];
    for (body, want) in bad {
        let got = parse(body.as_bytes()).unwrap_err();
        assert!(got.contains(want), "{body}: {got}");
    }
}

#[test]
fn tokens_are_renewed_at_three_quarters_of_their_life_and_failures_back_off() {
    assert_eq!(
        renew_after(Some(Duration::from_secs(3600))),
        Duration::from_secs(2700)
    );
    assert_eq!(renew_after(Some(Duration::from_millis(400))), MIN_RENEW);
    assert_eq!(renew_after(None), UNKNOWN_LIFETIME_RENEW);
    let waits: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
    assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
}

fn start(url: &str) -> Arc<TokenSource> {
    TokenSource::start(
        "crm",
        "SF_TOKEN",
        &config(url, ClientAuth::Basic),
        Vec::new(),
        Arc::new(SystemResolver),
    )
    .unwrap()
}

#[tokio::test]
async fn a_source_fetches_a_token_and_hands_it_out() {
    let server = TestServer::start(
        Reply::status(200).body(br#"{"access_token":"tok-live-1","expires_in":3600}"#),
    )
    .await;
    let source = start(&server.url("/oauth/token"));
    source.first_fetch(Duration::from_secs(10)).await.unwrap();
    assert_eq!(source.current().ok().unwrap().expose(), "tok-live-1");
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, http::Method::POST);
    assert_eq!(seen[0].path, "/oauth/token");
    assert!(seen[0].headers.get("webhook-id").is_none());
    assert!(
        seen[0].headers["authorization"]
            .to_str()
            .unwrap()
            .starts_with("Basic ")
    );
    let stats = source.stats();
    assert_eq!(
        (stats.fetches_ok, stats.fetches_failed, stats.valid),
        (1, 0, true)
    );
    let left = stats.expires_in.unwrap();
    assert!(left <= Duration::from_secs(3600) && left > Duration::from_secs(3500));
    assert_eq!(stats.last_error, None);
}

#[tokio::test]
async fn a_refused_grant_says_why_without_the_credentials() {
    let server =
        TestServer::start(Reply::status(401).body(
            br#"{"error":"invalid_client","error_description":"Client authentication failed"}"#,
        ))
        .await;
    let source = start(&server.url("/oauth/token?tenant=x"));
    let why = source
        .first_fetch(Duration::from_secs(10))
        .await
        .unwrap_err();
    assert_eq!(
        why,
        format!(
            "no OAuth2 token yet: token endpoint http://{}/oauth/token answered HTTP 401: invalid_client (Client authentication failed)",
            server.addr
        )
    );
    assert!(!why.contains(CLIENT_SECRET) && !why.contains("tenant"));
    let stats = source.stats();
    assert!(!stats.valid && stats.expires_in.is_none());
    assert_eq!(stats.fetches_failed, 1);
    assert!(stats.last_error.unwrap().contains("invalid_client"));
}

#[tokio::test]
async fn a_provider_quoting_the_client_secret_back_is_redacted() {
    let server = TestServer::start(Reply::status(401).body(
        br#"{"error":"invalid_client","error_description":"secret cs-very/secret:value&more is revoked"}"#,
    ))
    .await;
    let source = start(&server.url("/token"));
    let why = source
        .first_fetch(Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(
        why.ends_with("invalid_client (secret *** is revoked)"),
        "{why}"
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_is_reported_and_dropping_the_source_stops_it() {
    // A port nothing listens on: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let source = start(&format!("http://127.0.0.1:{port}/token"));
    let why = source
        .first_fetch(Duration::from_secs(10))
        .await
        .unwrap_err();
    assert!(why.contains("did not answer"), "{why}");
    let shared = Arc::downgrade(&source.shared);
    drop(source);
    // The task lets go of what it shares with the source once it ends.
    for _ in 0..100 {
        if shared.upgrade().is_none() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the renewal task outlived its source");
}

const TEST_KEY: &str = include_str!("testdata/test-only-rsa.pem");
const TEST_PUBLIC_KEY: &[u8] = include_bytes!("testdata/test-only-rsa.pkcs1.pub.der");

/// A Google service account key file for the test key, its token
/// endpoint at `token_uri`.
fn service_account(dir: &std::path::Path, token_uri: &str) -> std::path::PathBuf {
    let file = dir.join("sa.json");
    let json = serde_json::json!({
        "type": "service_account",
        "project_id": "my-game",
        "private_key_id": "key-42",
        "private_key": TEST_KEY,
        "client_email": "pusher@my-game.iam.gserviceaccount.com",
        "token_uri": token_uri,
    });
    std::fs::write(&file, json.to_string()).unwrap();
    file
}

/// The header and claims of `jwt`, after checking its RS256 signature
/// with the test key's public half.
fn verified(jwt: &str) -> (serde_json::Value, serde_json::Value) {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (input, signature) = jwt.rsplit_once('.').unwrap();
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        TEST_PUBLIC_KEY,
    )
    .verify(input.as_bytes(), &b64.decode(signature).unwrap())
    .expect("the signature verifies");
    let (header, claims) = input.split_once('.').unwrap();
    let json = |part: &str| serde_json::from_slice(&b64.decode(part).unwrap()).unwrap();
    (json(header), json(claims))
}

#[test]
fn a_service_account_signs_a_jwt_assertion() {
    let dir = tempfile::tempdir().unwrap();
    let file = service_account(dir.path(), "https://oauth2.googleapis.com/token");
    let config = OAuth2Config::from_toml(&format!(
        "service_account_file = \"{}\"\nscope = \"https://www.googleapis.com/auth/firebase.messaging\"",
        file.display()
    ))
    .unwrap();
    let grant_ = config.grant.clone().unwrap();
    assert_eq!(grant_.token_url(), "https://oauth2.googleapis.com/token");
    let OAuth2Grant::JwtBearer { private_key, .. } = &grant_ else {
        panic!("{grant_:?}")
    };
    let signer = JwtSigner::new(private_key).unwrap();
    let (headers, body) = grant(&config, &grant_, Some(&signer), 1_800_000_000).unwrap();
    assert!(headers.iter().all(|(k, _)| k != "authorization"));
    let fields = form(&body);
    assert_eq!(
        fields[0],
        (
            "grant_type".into(),
            "urn:ietf:params:oauth:grant-type:jwt-bearer".into()
        )
    );
    assert_eq!(fields[1].0, "assertion");
    let (header, claims) = verified(&fields[1].1);
    assert_eq!(
        header,
        serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "key-42"})
    );
    assert_eq!(
        claims,
        serde_json::json!({
            "iss": "pusher@my-game.iam.gserviceaccount.com",
            "aud": "https://oauth2.googleapis.com/token",
            "scope": "https://www.googleapis.com/auth/firebase.messaging",
            "iat": 1_800_000_000u64,
            "exp": 1_800_000_180u64,
        })
    );
    // The key never shows in the settings' debug output.
    assert!(!format!("{config:?}").contains("PRIVATE KEY"));
}

#[test]
fn a_private_key_file_with_issuer_subject_and_audience() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("sf.pem");
    std::fs::write(&key, TEST_KEY).unwrap();
    let config = OAuth2Config::from_toml(&format!(
        r#"
token_url = "https://login.salesforce.com/services/oauth2/token"
private_key_file = "{}"
issuer = "3MVG9-consumer-key"
subject = "integration@acme.example"
audience = "https://login.salesforce.com"
"#,
        key.display()
    ))
    .unwrap();
    let grant_ = config.grant.clone().unwrap();
    let OAuth2Grant::JwtBearer { private_key, .. } = &grant_ else {
        panic!("{grant_:?}")
    };
    let signer = JwtSigner::new(private_key).unwrap();
    let (_, body) = grant(&config, &grant_, Some(&signer), 1_000).unwrap();
    let (header, claims) = verified(&form(&body)[1].1);
    assert_eq!(header, serde_json::json!({"alg": "RS256", "typ": "JWT"}));
    assert_eq!(
        claims,
        serde_json::json!({
            "iss": "3MVG9-consumer-key",
            "sub": "integration@acme.example",
            "aud": "https://login.salesforce.com",
            "iat": 1_000,
            "exp": 1_180,
        })
    );
}

#[tokio::test]
async fn a_source_fetches_with_a_service_account() {
    let server = TestServer::start(
        Reply::status(200).body(br#"{"access_token":"ya29.test","expires_in":3599}"#),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = service_account(dir.path(), &server.url("/token"));
    let config = OAuth2Config::from_toml(&format!(
        "service_account_file = \"{}\"\nscope = \"s\"",
        file.display()
    ))
    .unwrap();
    let source = TokenSource::start(
        "game-reward",
        "PUSH_TOKEN",
        &config,
        Vec::new(),
        Arc::new(SystemResolver),
    )
    .unwrap();
    source.first_fetch(Duration::from_secs(10)).await.unwrap();
    assert_eq!(source.current().ok().unwrap().expose(), "ya29.test");
    let seen = server.requests();
    let fields = form(&seen[0].body);
    let (_, claims) = verified(&fields[1].1);
    assert_eq!(claims["aud"], server.url("/token"));
}
