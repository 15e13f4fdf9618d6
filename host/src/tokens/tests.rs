//! Token sources: the grant's form and headers, reading answers, the
//! renewal schedule, and real fetches from servers on 127.0.0.1.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;

use super::fetch::{grant, parse, redact};
use super::*;
use crate::delivery::SystemResolver;
use crate::delivery::tests::fixtures::{Reply, TestServer};

const CLIENT_SECRET: &str = "cs-very/secret:value&more";

fn config(token_url: &str, auth: &str) -> OAuth2Config {
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
    let (headers, body) = grant_of(&config("https://id.example/token", "basic"));
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

    let (headers, body) = grant_of(&config("https://id.example/token", "post"));
    assert!(headers.iter().all(|(k, _)| k != "authorization"));
    let fields = form(&body);
    assert!(fields.contains(&("client_id".into(), "app:one".into())));
    assert!(fields.contains(&("client_secret".into(), CLIENT_SECRET.into())));
}

#[test]
fn answers_are_read_strictly() {
    let ok = |body: &str| {
        parse(body.as_bytes(), &|t| t.to_owned()).map(|t| (t.value.expose().to_owned(), t.lifetime))
    };
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
        let got = parse(body.as_bytes(), &|t| t.to_owned()).unwrap_err();
        assert!(got.contains(want), "{body}: {got}");
    }
}

#[test]
fn refusals_of_fresh_tokens_space_the_fetches_they_bring_further_apart() {
    let mut refusals = Refusals::default();
    let secs = |s| Duration::from_secs(s);
    // A refusal of a token fetched on schedule: 5 s after that fetch.
    refusals.fetching(false);
    assert_eq!(refusals.gap(secs(1)), secs(5));
    // Each token such a fetch brings, refused again, waits twice as long.
    let mut gaps = Vec::new();
    for _ in 0..8 {
        refusals.fetching(true);
        gaps.push(refusals.gap(secs(1)).as_secs());
    }
    assert_eq!(gaps, [10, 20, 40, 80, 160, 300, 300, 300]);
    // A token that lived 5 minutes before its refusal starts again at 5 s,
    // as does a fetch on schedule.
    assert_eq!(refusals.gap(secs(300)), secs(5));
    refusals.fetching(true);
    assert_eq!(refusals.gap(secs(2)), secs(10));
    refusals.fetching(false);
    assert_eq!(refusals.gap(secs(2)), secs(5));
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
    start_pinned(url, Default::default())
}

/// A source for `url` whose client resolves through `pins`.
fn start_pinned(url: &str, pins: crate::config::DnsConfig) -> Arc<TokenSource> {
    TokenSource::start(
        "crm",
        "SF_TOKEN",
        &config(url, "basic"),
        Vec::new(),
        Arc::new(SystemResolver),
        None,
        pins,
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

/// Quoted where the description is cut short, or form-encoded as the
/// request sent it: no part of the secret survives.
/// Why the first fetch failed, from an endpoint refusing with
/// `invalid_client` and this description.
async fn refused_with(description: &str) -> String {
    let answer = serde_json::json!({"error": "invalid_client", "error_description": description});
    let body = Box::leak(answer.to_string().into_bytes().into_boxed_slice());
    let server = TestServer::start(Reply::status(401).body(body)).await;
    let source = start(&server.url("/token"));
    source
        .first_fetch(Duration::from_secs(10))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn a_secret_quoted_across_the_cut_or_encoded_is_redacted() {
    let description = format!(
        "{} secret cs-very/secret:value&more is revoked",
        "x".repeat(190)
    );
    let why = refused_with(&description).await;
    assert!(!why.contains("cs-very"), "{why}");
    assert!(why.contains("secret *"), "the cut falls in the mark: {why}");

    let encoded: String = url::form_urlencoded::byte_serialize(CLIENT_SECRET.as_bytes()).collect();
    assert_ne!(encoded, CLIENT_SECRET);
    let why = refused_with(&format!("got client_secret={encoded}")).await;
    assert!(why.contains("client_secret=***"), "{why}");
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
    verified_with(jwt, &ring::signature::RSA_PKCS1_2048_8192_SHA256)
}

/// The same, for an `alg` of RS256 or PS256.
fn verified_with(
    jwt: &str,
    alg: &'static ring::signature::RsaParameters,
) -> (serde_json::Value, serde_json::Value) {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (input, signature) = jwt.rsplit_once('.').unwrap();
    ring::signature::UnparsedPublicKey::new(alg, TEST_PUBLIC_KEY)
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
    let signer = JwtSigner::new(grant_.assertion_key().unwrap()).unwrap();
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
    let signer = JwtSigner::new(grant_.assertion_key().unwrap()).unwrap();
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
        None,
        Default::default(),
    )
    .unwrap();
    source.first_fetch(Duration::from_secs(10)).await.unwrap();
    assert_eq!(source.current().ok().unwrap().expose(), "ya29.test");
    let seen = server.requests();
    let fields = form(&seen[0].body);
    let (_, claims) = verified(&fields[1].1);
    assert_eq!(claims["aud"], server.url("/token"));
}

const TEST_JWK: &str = include_str!("testdata/test-only-rsa.jwk.json");

/// The fields of a form body, by name.
fn field(fields: &[(String, String)], name: &str) -> Option<String> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

#[test]
fn private_key_jwt_sends_client_id_and_an_assertion_signed_with_a_jwk() {
    // LINE's v2.1 channel token: the key as the JWK the console takes, the
    // kid LINE assigned, aud of its own, and a token_exp claim.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("line.jwk.json");
    std::fs::write(&key, TEST_JWK).unwrap();
    let config = OAuth2Config::from_toml(&format!(
        r#"
token_url = "https://api.line.me/oauth2/v2.1/token"
client_id = "1657000000"
client_auth = "private_key_jwt"
private_key_file = "{}"
key_id = "line-kid-1"
audience = "https://api.line.me/"
claims = {{ token_exp = 2592000 }}
"#,
        key.display()
    ))
    .unwrap();
    let grant_ = config.grant.clone().unwrap();
    let signer = JwtSigner::new(grant_.assertion_key().unwrap()).unwrap();
    let (headers, body) = grant(&config, &grant_, Some(&signer), 1_700_000_000).unwrap();
    assert!(headers.iter().all(|(k, _)| k != "authorization"));
    let fields = form(&body);
    assert_eq!(
        fields.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        [
            "grant_type",
            "client_id",
            "client_assertion_type",
            "client_assertion"
        ]
    );
    assert_eq!(field(&fields, "grant_type").unwrap(), "client_credentials");
    assert_eq!(field(&fields, "client_id").unwrap(), "1657000000");
    assert_eq!(
        field(&fields, "client_assertion_type").unwrap(),
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    // Signed by the JWK: the PEM key's public half verifies it.
    let (header, mut claims) = verified(&field(&fields, "client_assertion").unwrap());
    assert_eq!(
        header,
        serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": "line-kid-1"})
    );
    let jti = claims.as_object_mut().unwrap().remove("jti").unwrap();
    assert!(
        uuid::Uuid::parse_str(jti.as_str().unwrap()).is_ok(),
        "{jti}"
    );
    assert_eq!(
        claims,
        serde_json::json!({
            "iss": "1657000000",
            "sub": "1657000000",
            "aud": "https://api.line.me/",
            "iat": 1_700_000_000u64,
            "exp": 1_700_000_180u64,
            "token_exp": 2_592_000,
        })
    );
    // Each assertion has its own id.
    let (_, again) = grant(&config, &grant_, Some(&signer), 1_700_000_000).unwrap();
    let (_, again) = verified(&field(&form(&again), "client_assertion").unwrap());
    assert_ne!(again["jti"], jti);
}

#[test]
fn a_certificate_puts_its_thumbprints_in_the_header_and_ps256_signs() {
    // Microsoft Entra's certificate credential: x5t / x5t#S256, PS256, the
    // token endpoint as aud, a scope in the form.
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("app.key");
    std::fs::write(&key_file, TEST_KEY).unwrap();
    let key_pair = rcgen::KeyPair::from_pem(TEST_KEY).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["wasmhook-app".into()])
        .unwrap()
        .self_signed(&key_pair)
        .unwrap();
    let cert_file = dir.path().join("app.crt");
    std::fs::write(&cert_file, cert.pem()).unwrap();
    let settings = |cert_file: &std::path::Path| {
        format!(
            r#"
token_url = "https://login.microsoftonline.com/tenant-1/oauth2/v2.0/token"
client_id = "6731de76-14a6-49ae-97bc-6eba6914391e"
client_auth = "private_key_jwt"
private_key_file = "{}"
certificate_file = "{}"
signing_alg = "PS256"
scope = "https://graph.microsoft.com/.default"
"#,
            key_file.display(),
            cert_file.display()
        )
    };
    let config = OAuth2Config::from_toml(&settings(&cert_file)).unwrap();
    let grant_ = config.grant.clone().unwrap();
    let signer = JwtSigner::new(grant_.assertion_key().unwrap()).unwrap();
    let (_, body) = grant(&config, &grant_, Some(&signer), 1_000).unwrap();
    let fields = form(&body);
    assert_eq!(
        field(&fields, "scope").unwrap(),
        "https://graph.microsoft.com/.default"
    );
    let assertion = field(&fields, "client_assertion").unwrap();
    let (header, claims) = verified_with(&assertion, &ring::signature::RSA_PSS_2048_8192_SHA256);
    let b64 = |d: ring::digest::Digest| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_ref())
    };
    let der = cert.der();
    assert_eq!(
        header,
        serde_json::json!({
            "alg": "PS256",
            "typ": "JWT",
            "x5t": b64(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, der)),
            "x5t#S256": b64(ring::digest::digest(&ring::digest::SHA256, der)),
        })
    );
    assert_eq!(
        claims["aud"],
        "https://login.microsoftonline.com/tenant-1/oauth2/v2.0/token"
    );
    // An RS256 signature would not verify as PS256.
    let pkcs1 = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        TEST_PUBLIC_KEY,
    );
    let (input, signature) = assertion.rsplit_once('.').unwrap();
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(signature)
        .unwrap();
    assert!(pkcs1.verify(input.as_bytes(), &signature).is_err());

    // A certificate of another key is refused at load.
    let other = rcgen::CertificateParams::new(vec!["other".into()])
        .unwrap()
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let other_file = dir.path().join("other.crt");
    std::fs::write(&other_file, other.pem()).unwrap();
    let err = OAuth2Config::from_toml(&settings(&other_file)).unwrap_err();
    assert!(
        err.contains("certificate_file")
            && err.contains("the certificate is not for this private key"),
        "{err}"
    );
}

#[test]
fn json_web_keys_that_cannot_sign_are_named() {
    let key = |jwk: serde_json::Value| {
        JwtSigner::new(&crate::config::AssertionKey {
            private_key: crate::model::Secret::new(jwk.to_string()),
            key_id: None,
            certificate: None,
            alg: crate::config::SigningAlg::Rs256,
        })
        .err()
        .unwrap()
    };
    let full: serde_json::Value = serde_json::from_str(TEST_JWK).unwrap();
    let mut public = full.clone();
    for name in ["d", "p", "q", "dp", "dq", "qi"] {
        public.as_object_mut().unwrap().remove(name);
    }
    assert_eq!(
        key(public),
        "holds a public JSON Web Key; the private key (with \"d\") signs"
    );
    let mut no_crt = full.clone();
    no_crt.as_object_mut().unwrap().remove("qi");
    assert!(key(no_crt).contains("has no \"qi\""));
    let mut wrong = full.clone();
    wrong["d"] = full["p"].clone();
    assert_eq!(key(wrong), "the private key cannot be read");
    assert!(key(serde_json::json!({"kty": "EC", "crv": "P-256", "d": "x"})).contains("\"EC\""));
    assert!(key(serde_json::json!({"keys": [full]})).contains("JWK set"));
}

#[test]
fn an_assertion_quoted_back_is_redacted() {
    // Provider error texts are cut to 200 characters, shorter than any
    // assertion; a reason that holds one whole still never shows it.
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.pem");
    std::fs::write(&key, TEST_KEY).unwrap();
    let config = OAuth2Config::from_toml(&format!(
        "token_url = \"https://id.example/token\"\nclient_id = \"c\"\nclient_auth = \"private_key_jwt\"\nprivate_key_file = \"{}\"",
        key.display()
    ))
    .unwrap();
    let grant_ = config.grant.clone().unwrap();
    let signer = JwtSigner::new(grant_.assertion_key().unwrap()).unwrap();
    let (_, body) = grant(&config, &grant_, Some(&signer), 1_000).unwrap();
    let assertion = field(&form(&body), "client_assertion").unwrap();
    let reason = format!("token endpoint answered HTTP 400: invalid_client ({assertion} expired)");
    assert_eq!(
        redact(reason, &grant_, &body),
        "token endpoint answered HTTP 400: invalid_client (*** expired)"
    );
}

/// A reload keeps a source only if its `[dns]` pins are unchanged: its
/// client resolves the token endpoint through them.
#[test]
fn a_source_is_kept_only_for_the_same_dns_pins() {
    let url = "https://login.test/token";
    let pinned = |ip: &str| crate::config::DnsConfig {
        static_hosts: [(
            "login.test".to_owned(),
            vec![crate::config::ConfigIp(ip.parse().unwrap())],
        )]
        .into(),
    };
    let source = start_pinned(url, pinned("192.0.2.1"));
    let same = config(url, "basic");
    assert!(source.is_for(&same, &[], None, &pinned("192.0.2.1")));
    assert!(!source.is_for(&same, &[], None, &pinned("192.0.2.2")));
    assert!(!source.is_for(&same, &[], None, &Default::default()));
}
