//! Delivery under a real [`EgressPolicy`]: the policy as address guard, and
//! redirects re-checked and re-filled by [`PolicyRedirects`].

use std::collections::BTreeMap;
use std::sync::Arc;

use super::fixtures::*;
use crate::delivery::{AttemptOutcome, ClientOptions, PolicyRedirects, StaticResolver};
use crate::model::{Method, OutboundRequest, Secret};
use crate::policy::{EgressPolicy, PolicySpec, SecretRule};

const TOKEN: &str = "tok-123-very-secret";

/// Policy: `hook.test` and `other.test` on any port, loopback exempted,
/// `TOKEN` allowed for `token_hosts`.
fn policy(token_hosts: &[&str], follow_redirects: u32, exempt_loopback: bool) -> EgressPolicy {
    let mut secrets = BTreeMap::new();
    secrets.insert(
        "TOKEN".to_string(),
        SecretRule {
            value: Secret::new(TOKEN).into(),
            hosts: token_hosts.iter().map(|h| h.to_string()).collect(),
        },
    );
    EgressPolicy::new(PolicySpec {
        allowed_hosts: vec!["http://hook.test:*".into(), "http://other.test:*".into()],
        allow_private_networks: if exempt_loopback {
            vec!["127.0.0.1/32".into()]
        } else {
            vec![]
        },
        secrets,
        follow_redirects,
        ..PolicySpec::default()
    })
    .unwrap()
}

fn options() -> ClientOptions {
    let lo = "127.0.0.1".parse().unwrap();
    ClientOptions {
        resolver: Arc::new(
            StaticResolver::new()
                .with("hook.test", [lo])
                .with("other.test", [lo]),
        ),
        ..ClientOptions::default()
    }
}

fn original(url: String) -> OutboundRequest {
    OutboundRequest {
        method: Method::Post,
        url,
        headers: vec![("Authorization".into(), "Bearer {{secret:TOKEN}}".into())],
        body: br#"{"token":"{{secret:TOKEN}}"}"#.to_vec(),
    }
}

/// What the worker does: check, fill, send with the policy as guards.
async fn send_under(
    policy: &Arc<EgressPolicy>,
    original: &OutboundRequest,
) -> crate::delivery::AttemptReport {
    let dest = policy.check_request(original).unwrap();
    let filled = policy.fill_secrets(original, &dest).unwrap();
    send_filled(policy, original, &filled).await
}

/// Send `filled`, the filled form of `original`, with the policy as guards.
async fn send_filled(
    policy: &Arc<EgressPolicy>,
    original: &OutboundRequest,
    filled: &OutboundRequest,
) -> crate::delivery::AttemptReport {
    let client = deliverer(policy.clone(), options());
    let redirects = PolicyRedirects::new(policy, original);
    let mut req = post(&filled.url);
    req.headers = &filled.headers;
    req.body = &filled.body;
    req.redirects = redirects.as_ref().map(|r| r as _);
    client.send(req).await
}

#[tokio::test]
async fn a_policy_checked_request_is_delivered_with_its_secret() {
    let server = TestServer::start(Reply::status(200)).await;
    let policy = Arc::new(policy(&["hook.test"], 0, true));
    let url = format!("http://hook.test:{}/in", server.addr.port());
    let report = send_under(&policy, &original(url)).await;
    assert_eq!(report.outcome, AttemptOutcome::Succeeded, "{report:?}");
    let seen = &server.requests()[0];
    assert_eq!(
        seen.headers["authorization"],
        format!("Bearer {TOKEN}").as_str()
    );
    assert_eq!(
        seen.body.as_ref(),
        format!(r#"{{"token":"{TOKEN}"}}"#).as_bytes()
    );
}

#[tokio::test]
async fn the_policy_blocks_a_name_resolving_to_loopback() {
    let server = TestServer::start(Reply::status(200)).await;
    let policy = Arc::new(policy(&["hook.test"], 0, false));
    let url = format!("http://hook.test:{}/in", server.addr.port());
    let report = send_under(&policy, &original(url)).await;
    assert!(report.denied_by_policy, "{report:?}");
    let error = report.error.unwrap();
    assert!(error.contains("127.0.0.1"), "{error}");
    assert!(!error.contains(TOKEN));
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn a_secret_does_not_follow_a_redirect_to_a_host_it_is_not_for() {
    let target = TestServer::start(Reply::status(200)).await;
    let location = format!("http://other.test:{}/x", target.addr.port());
    let server = TestServer::start(Reply::status(307).header("location", location)).await;
    let policy = Arc::new(policy(&["hook.test"], 2, true));
    let url = format!("http://hook.test:{}/in", server.addr.port());
    let report = send_under(&policy, &original(url)).await;
    assert!(report.denied_by_policy, "{report:?}");
    assert!(matches!(report.outcome, AttemptOutcome::Failed { .. }));
    let error = report.error.unwrap();
    assert!(error.contains("TOKEN"), "names the secret: {error}");
    assert!(!error.contains(TOKEN), "never its value: {error}");
    assert_eq!(target.connections(), 0, "the redirect was not followed");
}

#[tokio::test]
async fn a_redirect_within_the_policy_is_refilled_for_the_new_host() {
    let target = TestServer::start(Reply::status(200)).await;
    let location = format!("http://other.test:{}/x", target.addr.port());
    let server = TestServer::start(Reply::status(308).header("location", location)).await;
    let policy = Arc::new(policy(&["hook.test", "other.test"], 2, true));
    let url = format!("http://hook.test:{}/in", server.addr.port());
    let report = send_under(&policy, &original(url)).await;
    assert_eq!(report.outcome, AttemptOutcome::Succeeded, "{report:?}");
    assert_eq!(report.redirects, 1);
    let landed = &target.requests()[0];
    assert_eq!(
        landed.headers["authorization"],
        format!("Bearer {TOKEN}").as_str()
    );
    assert_eq!(
        landed.headers["host"],
        format!("other.test:{}", target.addr.port()).as_str()
    );
}

#[tokio::test]
async fn policy_redirect_limits_and_blocked_targets() {
    let policy_ = Arc::new(policy(&["hook.test"], 1, true));
    for location in [
        "http://169.254.169.254/latest/meta-data/",
        "http://evil.test/",
    ] {
        let server = TestServer::start(Reply::status(302).header("location", location)).await;
        let url = format!("http://hook.test:{}/in", server.addr.port());
        let report = send_under(&policy_, &original(url)).await;
        assert!(report.denied_by_policy, "{location}: {report:?}");
        let error = report.error.unwrap();
        assert!(error.starts_with("redirect: "), "{location}: {error}");
        assert!(!error.contains("meta-data"), "no paths in errors: {error}");
    }
    // No redirects configured: the 3xx is the final answer.
    let none = Arc::new(policy(&["hook.test"], 0, true));
    assert!(PolicyRedirects::new(&none, &original("http://hook.test/".into())).is_none());
}

/// `hook.test` and `other.test` on loopback, one redirect followed.
fn one_hop_policy(secrets: BTreeMap<String, SecretRule>) -> Arc<EgressPolicy> {
    Arc::new(
        EgressPolicy::new(PolicySpec {
            allowed_hosts: vec!["http://hook.test:*".into(), "http://other.test:*".into()],
            allow_private_networks: vec!["127.0.0.1/32".into()],
            secrets,
            follow_redirects: 1,
            ..PolicySpec::default()
        })
        .unwrap(),
    )
}

/// A receiver on `other.test`, and a server redirecting (307) to it.
async fn redirect_to_other() -> (TestServer, TestServer) {
    let target = TestServer::start(Reply::status(200)).await;
    let location = format!("http://other.test:{}/x", target.addr.port());
    let server = TestServer::start(Reply::status(307).header("location", location)).await;
    (target, server)
}

/// The URL that answered a redirect is the base of its Location, not a
/// request to check again: with a long token filled into its query it may
/// be longer than a plugin's URL may be, and the redirect is followed.
#[tokio::test]
async fn a_redirect_from_a_url_made_long_by_its_secret_is_followed() {
    let long = "L".repeat(9_000);
    let mut secrets = BTreeMap::new();
    secrets.insert(
        "LONG".to_string(),
        SecretRule {
            value: Secret::new(long.clone()).into(),
            hosts: vec!["hook.test".into()],
        },
    );
    let policy = one_hop_policy(secrets);
    let (target, server) = redirect_to_other().await;
    let original = OutboundRequest {
        method: Method::Post,
        url: format!(
            "http://hook.test:{}/in?t={{{{secret:LONG}}}}",
            server.addr.port()
        ),
        headers: Vec::new(),
        body: Vec::new(),
    };
    let report = send_under(&policy, &original).await;
    assert_eq!(report.outcome, AttemptOutcome::Succeeded, "{report:?}");
    assert_eq!(report.redirects, 1);
    assert_eq!(target.requests().len(), 1);
}

/// A token there when the request was filled and gone (expired, renewal
/// failing) when its redirect is followed: the attempt is retried, as on
/// a first hop, not failed for good.
#[tokio::test]
async fn a_hop_whose_token_is_missing_for_now_is_retried() {
    /// A token until `gone` is set.
    #[derive(Default)]
    struct Expiring {
        gone: std::sync::atomic::AtomicBool,
    }
    impl crate::policy::LiveSecret for Expiring {
        fn current(&self) -> Result<Secret, crate::policy::Unavailable> {
            if self.gone.load(std::sync::atomic::Ordering::SeqCst) {
                Err(crate::policy::Unavailable::Missing(
                    "the OAuth2 token expired and renewing it failed".into(),
                ))
            } else {
                Ok(Secret::new(TOKEN))
            }
        }
        fn rejected(&self) {}
    }
    let token = Arc::new(Expiring::default());
    let mut secrets = BTreeMap::new();
    secrets.insert(
        "TOKEN".to_string(),
        SecretRule {
            value: crate::policy::SecretValue::Live(token.clone()),
            hosts: vec!["hook.test".into(), "other.test".into()],
        },
    );
    let policy = one_hop_policy(secrets);
    let (target, server) = redirect_to_other().await;
    let original = original(format!("http://hook.test:{}/in", server.addr.port()));
    let dest = policy.check_request(&original).unwrap();
    let filled = policy.fill_secrets(&original, &dest).unwrap();
    token.gone.store(true, std::sync::atomic::Ordering::SeqCst);
    let report = send_filled(&policy, &original, &filled).await;
    assert!(
        matches!(report.outcome, AttemptOutcome::Retry { .. }),
        "{report:?}"
    );
    assert!(!report.denied_by_policy, "{report:?}");
    assert!(
        report
            .error
            .as_deref()
            .is_some_and(|e| e.contains("renewing it failed")),
        "{report:?}"
    );
    assert_eq!(target.connections(), 0);
}
