//! `oauth2` secrets end to end: the real `wasmhook serve`, the Rust
//! `login-to-salesforce` plugin, a token endpoint and a receiver on
//! 127.0.0.1. The host fetches a token with the client-credentials grant,
//! fills it in at send time, renews it before it expires and after a
//! receiver's 401, and shows neither the token nor the client secret in
//! its log, its API or its metrics.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use support::host::{Host, component, config_head, game_config};
use support::receiver::{Reply, TestReceiver};

const CLIENT_SECRET: &str = "sf-client-secret-VALUE";

/// login-to-salesforce posting Leads to `rx`, its token from `tokens`.
fn salesforce_config(rx: &TestReceiver, tokens: &TestReceiver, schedule: &str) -> String {
    format!(
        r#"{head}
[[plugins]]
name = "login-to-salesforce"
component = "{c}"
events = ["user.login"]
allowed_hosts = ["{url}"]
allow_private_networks = ["127.0.0.1/32"]
[plugins.config]
base_url = "{url}"
[plugins.secrets.SALESFORCE_TOKEN]
hosts = ["127.0.0.1"]
oauth2 = {{ token_url = "{token_url}/services/oauth2/token", client_id = "wasmhook-app", client_secret = "${{SF_CLIENT_SECRET}}", client_auth = "post", scope = "api" }}
[plugins.delivery]
timeout_s = 5
retry_schedule_s = {schedule}
"#,
        head = config_head(),
        c = component("login-to-salesforce"),
        url = rx.url(),
        token_url = tokens.url(),
    )
}

fn login(id: &str, email: &str) -> String {
    json!({"id": id, "name": "user.login", "user_id": "u-1",
           "properties": {"email": email, "first_name": "Ada", "last_name": "Lovelace"}})
    .to_string()
}

fn token(value: &str, expires_in: u64) -> Reply {
    Reply::json(
        200,
        json!({"access_token": value, "token_type": "Bearer", "expires_in": expires_in}),
    )
}

fn bearers(rx: &TestReceiver) -> Vec<String> {
    rx.requests()
        .iter()
        .map(|r| r.header("authorization").unwrap_or_default().to_owned())
        .collect()
}

/// The header and claims of `jwt`, after checking its RS256 signature
/// with the test key's public half.
fn verified(jwt: &str) -> (Value, Value) {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (input, signature) = jwt.rsplit_once('.').unwrap();
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        include_bytes!("../host/src/tokens/testdata/test-only-rsa.pkcs1.pub.der"),
    )
    .verify(input.as_bytes(), &b64.decode(signature).unwrap())
    .expect("signed with the test key");
    let part = |i: usize| -> Value {
        serde_json::from_slice(&b64.decode(input.split('.').nth(i).unwrap()).unwrap()).unwrap()
    };
    (part(0), part(1))
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// Nothing secret in the log, the event's API view or the metrics.
async fn assert_nothing_shown(host: &Host, event: &str, secrets: &[&str]) {
    let v: Value = host.settled_event(event, 30).await;
    let api = v.to_string();
    assert!(api.contains("{{secret:SALESFORCE_TOKEN}}"), "{api}");
    let metrics = host.metrics().await;
    for secret in secrets.iter().chain([&CLIENT_SECRET]) {
        assert!(!api.contains(secret), "{secret} in the API: {api}");
        assert!(!host.log().contains(secret), "{secret} in the log");
        assert!(!metrics.contains(secret), "{secret} in the metrics");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_is_fetched_filled_in_and_renewed_before_it_expires() {
    let rx = TestReceiver::start().await;
    let tokens = TestReceiver::start().await;
    // The first token takes a second to come and lives 4 s, so it is
    // renewed 3 s after it was asked for.
    tokens.script([token("sf-token-one", 4).after(Duration::from_secs(1))]);
    tokens.set_default(token("sf-token-two", 3600));
    let host = Host::start(
        &salesforce_config(&rx, &tokens, "[1]"),
        &[("SF_CLIENT_SECRET", CLIENT_SECRET)],
    );
    // An event before the first token: its delivery waits for the token
    // without spending an attempt.
    let (status, _) = host.ingest(&login("login-1", "ada@example.com")).await;
    assert_eq!(status, 202);
    // The grant, as Salesforce wants it (client_secret_post).
    let asked = tokens.wait_for(1, 30).await;
    assert_eq!(asked[0].method, "POST");
    assert_eq!(asked[0].path, "/services/oauth2/token");
    assert_eq!(
        asked[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(asked[0].header("webhook-id"), None);
    let grant = form(&asked[0].body);
    for field in [
        ("grant_type", "client_credentials"),
        ("scope", "api"),
        ("client_id", "wasmhook-app"),
        ("client_secret", CLIENT_SECRET),
    ] {
        assert!(
            grant.contains(&(field.0.to_owned(), field.1.to_owned())),
            "{field:?} not in {grant:?}"
        );
    }

    rx.wait_for(1, 30).await;
    assert_eq!(bearers(&rx), ["Bearer sf-token-one"]);
    let v = host.settled_event("login-1", 30).await;
    let attempts = v["deliveries"][0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{v}");

    // Renewed without being asked: the next Lead carries the new token.
    tokens.wait_for(2, 30).await;
    assert_eq!(
        host.ingest(&login("login-2", "bob@example.com")).await.0,
        202
    );
    rx.wait_for(2, 30).await;
    assert_eq!(bearers(&rx), ["Bearer sf-token-one", "Bearer sf-token-two"]);
    host.wait_for_log("fetched an OAuth2 token", 5).await;
    let metrics = host.metrics().await;
    assert!(
        metrics.contains(
            "wasmhook_oauth2_token_fetches_total{plugin=\"login-to-salesforce\",secret=\"SALESFORCE_TOKEN\",outcome=\"ok\"} 2\n"
        ) && metrics.contains(
            "wasmhook_oauth2_token_valid{plugin=\"login-to-salesforce\",secret=\"SALESFORCE_TOKEN\"} 1\n"
        ),
        "{metrics}"
    );
    // A reload that leaves the secret's settings alone keeps its token.
    host.reload().await;
    assert_eq!(
        host.ingest(&login("login-3", "cy@example.com")).await.0,
        202
    );
    rx.wait_for(3, 30).await;
    assert_eq!(bearers(&rx)[2], "Bearer sf-token-two");
    assert_eq!(tokens.requests().len(), 2, "fetched again on reload");
    assert_nothing_shown(&host, "login-3", &["sf-token-one", "sf-token-two"]).await;
}

/// A token refused by the receiver (revoked, or expired early) is renewed,
/// and the delivery is retried with the new one instead of failing.
#[tokio::test(flavor = "multi_thread")]
async fn a_401_renews_the_token_and_the_retry_carries_the_new_one() {
    let rx = TestReceiver::start().await;
    let tokens = TestReceiver::start().await;
    tokens.script([token("sf-revoked", 3600)]);
    tokens.set_default(token("sf-fresh", 3600));
    rx.script([Reply::status(401)]);
    // The retry comes 6.4 to 9.6 s later, after the renewal (5 s after
    // the first fetch at the earliest).
    let host = Host::start(
        &salesforce_config(&rx, &tokens, "[8]"),
        &[("SF_CLIENT_SECRET", CLIENT_SECRET)],
    );
    tokens.wait_for(1, 30).await;
    assert_eq!(
        host.ingest(&login("login-401", "cy@example.com")).await.0,
        202
    );
    rx.wait_for(2, 60).await;
    assert_eq!(bearers(&rx), ["Bearer sf-revoked", "Bearer sf-fresh"]);
    assert_eq!(tokens.requests().len(), 2, "renewed once");
    let v = host.settled_event("login-401", 30).await;
    let delivery = &v["deliveries"][0];
    assert_eq!(delivery["status"], "succeeded", "{v}");
    let codes: Vec<&Value> = delivery["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status_code"])
        .collect();
    assert_eq!(codes, [&json!(401), &json!(200)], "{v}");
    assert_nothing_shown(&host, "login-401", &["sf-revoked", "sf-fresh"]).await;
}

/// While the token endpoint refuses the client, deliveries wait on the
/// retry schedule with the provider's reason, and go out once it answers.
#[tokio::test(flavor = "multi_thread")]
async fn deliveries_wait_while_the_token_endpoint_refuses_and_say_why() {
    let rx = TestReceiver::start().await;
    let tokens = TestReceiver::start().await;
    let refused = Reply::json(
        401,
        json!({"error": "invalid_client", "error_description": "client identifier invalid"}),
    );
    tokens.set_default(refused);
    let host = Host::start(
        &salesforce_config(&rx, &tokens, "[1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"),
        &[("SF_CLIENT_SECRET", CLIENT_SECRET)],
    );
    tokens.wait_for(1, 30).await;
    assert_eq!(
        host.ingest(&login("login-wait", "di@example.com")).await.0,
        202
    );
    // The first attempt finds no token: recorded, not sent, retried.
    let reason = loop {
        let (_, v) = host.admin("GET", "/v1/events/login-wait", "").await;
        if let Some(error) = v["deliveries"][0]["attempts"][0]["error"].as_str() {
            assert_eq!(v["deliveries"][0]["status"], "pending", "{v}");
            break error.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        reason,
        format!(
            "secret SALESFORCE_TOKEN is not available: no OAuth2 token yet: token endpoint {}/services/oauth2/token answered HTTP 401: invalid_client (client identifier invalid)",
            tokens.url()
        )
    );
    assert!(rx.requests().is_empty());
    host.wait_for_log("fetching an OAuth2 token failed", 5)
        .await;
    let (_, plugins) = host.admin("GET", "/v1/plugins", "").await;
    let state = &plugins["plugins"][0]["oauth2_tokens"][0];
    assert_eq!(state["secret"], "SALESFORCE_TOKEN", "{plugins}");
    assert_eq!(state["valid"], false, "{plugins}");
    assert!(
        state["last_error"]
            .as_str()
            .unwrap()
            .ends_with("invalid_client (client identifier invalid)"),
        "{plugins}"
    );

    // The provider comes round (the next fetch is within 2 s).
    tokens.set_default(token("sf-late", 3600));
    rx.wait_for(1, 30).await;
    assert_eq!(bearers(&rx), ["Bearer sf-late"]);
    let (_, plugins) = host.admin("GET", "/v1/plugins", "").await;
    let state = &plugins["plugins"][0]["oauth2_tokens"][0];
    assert_eq!(state["valid"], true, "{plugins}");
    assert_eq!(state["last_error"], Value::Null, "{plugins}");
    assert!(state["expires_in_s"].as_u64().unwrap() > 3500, "{plugins}");
    assert_nothing_shown(&host, "login-wait", &["sf-late"]).await;
    let basic = base64::engine::general_purpose::STANDARD.encode(CLIENT_SECRET);
    assert!(!host.log().contains(&basic));
}

/// `serve --check` fetches each OAuth2 token as a start would: wrong
/// client credentials fail the check, naming the plugin, the secret and
/// the provider's reason, and never the client secret.
#[tokio::test(flavor = "multi_thread")]
async fn serve_check_fetches_each_token_and_names_a_refused_client() {
    let rx = TestReceiver::start().await;
    let tokens = TestReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("wasmhook.toml");
    std::fs::write(&config, salesforce_config(&rx, &tokens, "[1]")).unwrap();
    let check = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmhook"))
            .args(["serve", "--check", "--config"])
            .arg(&config)
            .env("SF_CLIENT_SECRET", CLIENT_SECRET)
            .output()
            .expect("run wasmhook");
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
        (out.status.code(), text(out.stdout), text(out.stderr))
    };

    tokens.set_default(Reply::json(
        400,
        json!({"error": "invalid_client", "error_description": "client secret mismatch"}),
    ));
    let (code, stdout, stderr) = check();
    assert_eq!(code, Some(2), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "plugin login-to-salesforce: secrets.SALESFORCE_TOKEN: no OAuth2 token yet: token endpoint {}/services/oauth2/token answered HTTP 400: invalid_client (client secret mismatch)",
            tokens.url()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains(CLIENT_SECRET), "{stderr}");

    tokens.set_default(token("sf-checked", 3600));
    let (code, stdout, stderr) = check();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("1 plugins (login-to-salesforce), 1 OAuth2 tokens fetched"),
        "{stdout}"
    );
    assert!(!stdout.contains("sf-checked") && !stderr.contains("sf-checked"));
    assert!(rx.requests().is_empty(), "a check sends no webhook");
}

/// A Google service account (`service_account_file`): game-reward's push
/// token comes from the JWT-bearer grant, the assertion signed with the
/// account's key, as Firebase Cloud Messaging wants it.
#[tokio::test(flavor = "multi_thread")]
async fn a_service_account_token_is_fetched_with_a_signed_assertion() {
    let rx = TestReceiver::start().await;
    let tokens = TestReceiver::start().await;
    tokens.set_default(token("ya29.fcm-token", 3600));
    let dir = tempfile::tempdir().unwrap();
    let account = dir.path().join("fcm-sa.json");
    let key = include_str!("../host/src/tokens/testdata/test-only-rsa.pem");
    let json = json!({
        "type": "service_account",
        "private_key_id": "k1",
        "private_key": key,
        "client_email": "pusher@my-game.iam.gserviceaccount.com",
        "token_uri": format!("{}/token", tokens.url()),
    });
    std::fs::write(&account, json.to_string()).unwrap();
    let from_env = r#"PUSH_TOKEN = { env = "PUSH_KEY", hosts = ["127.0.0.1"] }"#;
    let config = game_config(&rx.url(), "[1]");
    assert!(config.contains(from_env));
    let config = config.replace(
        from_env,
        &format!(
            r#"PUSH_TOKEN = {{ oauth2 = {{ service_account_file = "{}", scope = "https://www.googleapis.com/auth/firebase.messaging" }}, hosts = ["127.0.0.1"] }}"#,
            account.display()
        ),
    );
    let host = Host::start(&config, &[("GAME_KEY", "game-key-VALUE")]);
    tokens.wait_for(1, 30).await;
    let event = json!({"id": "lvl-1", "name": "level.reached", "user_id": "p-1",
        "properties": {"level": 12, "player_id": "p-1", "push_token": "device-1"}});
    assert_eq!(host.ingest(&event.to_string()).await.0, 202);
    let seen = rx.wait_for(2, 30).await;
    let push = seen.iter().find(|r| r.path == "/push").expect("push");
    assert_eq!(push.header("authorization"), Some("Bearer ya29.fcm-token"));

    let asked = tokens.requests();
    let grant = form(&asked[0].body);
    assert_eq!(
        grant[0],
        (
            "grant_type".to_owned(),
            "urn:ietf:params:oauth:grant-type:jwt-bearer".to_owned()
        )
    );
    let (_, claims) = verified(&grant[1].1);
    assert_eq!(claims["iss"], "pusher@my-game.iam.gserviceaccount.com");
    assert_eq!(claims["aud"], format!("{}/token", tokens.url()));
    assert_eq!(
        claims["scope"],
        "https://www.googleapis.com/auth/firebase.messaging"
    );
    let log = host.log();
    assert!(!log.contains("ya29.fcm-token") && !log.contains("PRIVATE KEY"));
}

/// LINE's v2.1 channel access token: the messenger plugin's
/// `LINE_CHANNEL_TOKEN` comes from a client-credentials grant whose client
/// proves itself with an assertion signed by the channel's JSON Web Key
/// (`client_auth = "private_key_jwt"`), carrying the `kid` LINE assigned
/// and LINE's own `token_exp` claim.
#[tokio::test(flavor = "multi_thread")]
async fn a_line_channel_token_is_fetched_with_private_key_jwt() {
    let rx = TestReceiver::start().await;
    let tokens = TestReceiver::start().await;
    tokens.set_default(token("line-v21-channel-token", 2_592_000));
    let dir = tempfile::tempdir().unwrap();
    let jwk = dir.path().join("line-assertion-key.json");
    std::fs::copy(
        support::repo_root().join("host/src/tokens/testdata/test-only-rsa.jwk.json"),
        &jwk,
    )
    .unwrap();
    let config = format!(
        r#"{head}
[[plugins]]
name = "messenger-transactional"
component = "{c}"
events = ["order.shipped"]
allowed_hosts = ["{url}"]
allow_private_networks = ["127.0.0.1/32"]
instance_reuse = 4
timeout_ms = 1000
[plugins.config]
line_push_url = "{url}/v2/bot/message/push"
[plugins.secrets]
MESSENGER_PAGE_TOKEN = {{ env = "PAGE_TOKEN", hosts = ["graph.facebook.com"] }}
[plugins.secrets.LINE_CHANNEL_TOKEN]
hosts = ["127.0.0.1"]
oauth2 = {{ token_url = "{token_url}/oauth2/v2.1/token", client_id = "1657000000", client_auth = "private_key_jwt", private_key_file = "{key}", key_id = "line-kid-1", audience = "https://api.line.me/", claims = {{ token_exp = 2592000 }} }}
[plugins.delivery]
retry_schedule_s = [1]
"#,
        head = config_head(),
        c = component("messenger-transactional"),
        url = rx.url(),
        token_url = tokens.url(),
        key = jwk.display(),
    );
    let host = Host::start(&config, &[("PAGE_TOKEN", "page-VALUE")]);
    let event = std::fs::read_to_string(
        support::repo_root().join("examples/events/messenger-transactional.json"),
    )
    .unwrap();
    assert_eq!(host.ingest(&event).await.0, 202);
    let seen = rx.wait_for(1, 30).await;
    assert_eq!(seen[0].path, "/v2/bot/message/push");
    assert_eq!(
        seen[0].header("authorization"),
        Some("Bearer line-v21-channel-token")
    );

    let asked = tokens.requests();
    assert_eq!(asked[0].path, "/oauth2/v2.1/token");
    assert_eq!(asked[0].header("authorization"), None);
    let grant = form(&asked[0].body);
    let field = |name: &str| {
        grant
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} in {grant:?}"))
    };
    assert_eq!(field("grant_type"), "client_credentials");
    assert_eq!(
        field("client_assertion_type"),
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    let jwt = field("client_assertion");
    let (header, claims) = verified(jwt);
    assert_eq!(header["kid"], "line-kid-1");
    assert_eq!(claims["iss"], "1657000000");
    assert_eq!(claims["sub"], "1657000000");
    assert_eq!(claims["aud"], "https://api.line.me/");
    assert_eq!(claims["token_exp"], 2_592_000);
    assert!(claims["exp"].as_u64().unwrap() <= claims["iat"].as_u64().unwrap() + 30 * 60);

    let v = host.settled_event("evt-ship-0001", 30).await;
    let shown = format!("{v}{}{}", host.log(), host.metrics().await);
    assert!(shown.contains("{{secret:LINE_CHANNEL_TOKEN}}"), "{v}");
    for secret in ["line-v21-channel-token", jwt, "\"d\":"] {
        assert!(!shown.contains(secret), "{secret} shown");
    }
}
