//! `[egress] proxy`: deliveries leave through an HTTP `CONNECT` proxy (a
//! recording one on 127.0.0.1). The host still vets every destination
//! itself and asks the proxy for the checked address, never a name; TLS
//! runs end to end through the tunnel; the proxy's credentials go in
//! `Proxy-Authorization` and nowhere else; a proxy that refuses is a
//! retried network failure naming it.

#[path = "support/mod.rs"]
mod support;

use base64::Engine as _;
use serde_json::json;
use support::host::{Host, component, config_head, hostile_config};
use support::pki::{new_ca, new_leaf, server_config};
use support::proxy::{TestProxy, Tunnel};
use support::receiver::TestReceiver;

const PROXY_PASSWORD: &str = "pr0xy-p@ss";

/// `config` with an `[egress]` section using `proxy_url`.
fn with_proxy(config: &str, proxy_url: &str) -> String {
    format!("{config}\n[egress]\nproxy = \"{proxy_url}\"\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn deliveries_tunnel_through_the_proxy_to_the_vetted_address() {
    let rx = TestReceiver::start().await;
    let proxy = TestProxy::start(None).await;
    // A second plugin may ask for any https host, but no private one.
    let fetcher = format!(
        r#"
[[plugins]]
name = "fetcher"
component = "{}"
events = ["fetch"]
allowed_hosts = ["https://*:*"]
[plugins.config]
mode = "from-event"
[plugins.delivery]
timeout_s = 2
retry_schedule_s = [1]
"#,
        component("hostile")
    );
    let config = hostile_config(&rx.url(), "ok", "[1]", "")
        .replace("events = [\"*\"]", "events = [\"order.*\"]")
        + &fetcher
        + "\n[dns]\nstatic = { \"metadata.test\" = [\"169.254.169.254\"] }\n";
    let credentials = format!("svc:{}", PROXY_PASSWORD.replace('@', "%40"));
    let host = Host::start(&with_proxy(&config, &proxy.url(Some(&credentials))), &[]);

    assert_eq!(
        host.ingest(r#"{"id":"p-1","name":"order.paid"}"#).await.0,
        202
    );
    let v = host.settled_event("p-1", 30).await;
    assert_eq!(v["deliveries"][0]["status"], "succeeded", "{v}");
    assert_eq!(rx.requests().len(), 1);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("svc:{PROXY_PASSWORD}"));
    assert_eq!(
        proxy.tunnels(),
        [Tunnel {
            target: format!("127.0.0.1:{}", rx.addr.port()),
            authorization: Some(format!("Basic {basic}")),
        }],
        "the proxy is asked for the checked address, with the credentials"
    );

    // A name that resolves to the metadata address is refused by the host
    // before the proxy is asked for anything.
    let fetch = json!({"id": "p-2", "name": "fetch",
        "properties": {"url": "https://metadata.test/latest/meta-data"}});
    assert_eq!(host.ingest(&fetch.to_string()).await.0, 202);
    let v = host.settled_event("p-2", 30).await;
    let d = &v["deliveries"][0];
    assert_eq!(d["attempts"][0]["outcome"], "policy", "{v}");
    assert!(
        d["attempts"][0]["error"]
            .as_str()
            .unwrap()
            .contains("169.254.169.254"),
        "{v}"
    );
    assert_eq!(proxy.tunnels().len(), 1, "no tunnel for a refused address");

    assert!(
        host.log().contains(&format!(
            "; deliveries through proxy 127.0.0.1:{}",
            proxy.addr.port()
        )),
        "{}",
        host.log()
    );
    let shown = format!("{}{}", host.log(), host.metrics().await);
    assert!(!shown.contains(PROXY_PASSWORD) && !shown.contains(&basic));
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_runs_end_to_end_through_the_tunnel() {
    let pki = tempfile::tempdir().unwrap();
    let (ca, issuer) = new_ca();
    let (leaf, key) = new_leaf(&issuer, "127.0.0.1");
    let ca_file = pki.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let rx = TestReceiver::start_tls(server_config(&leaf, &key)).await;
    let proxy = TestProxy::start(None).await;
    let config = hostile_config(&rx.url(), "ok", "[1]", "").replace(
        "timeout_s = 2\n",
        &format!("timeout_s = 2\nca_file = \"{}\"\n", ca_file.display()),
    );
    let host = Host::start(&with_proxy(&config, &proxy.url(None)), &[]);
    assert_eq!(host.ingest(r#"{"id":"tls-1","name":"x"}"#).await.0, 202);
    let v = host.settled_event("tls-1", 30).await;
    assert_eq!(v["deliveries"][0]["status"], "succeeded", "{v}");
    assert_eq!(rx.requests().len(), 1, "the receiver read the request");
    assert_eq!(
        proxy.tunnels(),
        [Tunnel {
            target: format!("127.0.0.1:{}", rx.addr.port()),
            authorization: None,
        }]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_that_refuses_is_a_retried_network_failure_naming_it() {
    let rx = TestReceiver::start().await;
    let proxy = TestProxy::start(Some(403)).await;
    let config = with_proxy(
        &hostile_config(&rx.url(), "ok", "[1]", ""),
        &proxy.url(None),
    );
    let host = Host::start(&config, &[]);
    assert_eq!(host.ingest(r#"{"id":"r-1","name":"x"}"#).await.0, 202);
    let v = host.settled_event("r-1", 30).await;
    let d = &v["deliveries"][0];
    assert_eq!(d["status"], "failed", "{v}");
    let attempts = d["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "retried once: {v}");
    assert_eq!(attempts[0]["outcome"], "network", "{v}");
    let error = attempts[0]["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("proxy 127.0.0.1:{}", proxy.addr.port()))
            && error.contains("refused: HTTP/1.1 403 Forbidden"),
        "{error}"
    );
    assert!(rx.requests().is_empty());
}

/// `no_proxy` destinations (here the receiver's network) are reached
/// directly: a proxy that refuses everything is not even asked.
#[tokio::test(flavor = "multi_thread")]
async fn no_proxy_destinations_are_reached_directly() {
    let rx = TestReceiver::start().await;
    let proxy = TestProxy::start(Some(403)).await;
    let config = format!(
        "{}no_proxy = [\"*.corp.example\", \"127.0.0.0/8\"]\n",
        with_proxy(
            &hostile_config(&rx.url(), "ok", "[1]", ""),
            &proxy.url(None)
        )
    );
    let host = Host::start(&config, &[]);
    assert_eq!(host.ingest(r#"{"id":"d-1","name":"x"}"#).await.0, 202);
    let v = host.settled_event("d-1", 30).await;
    assert_eq!(v["deliveries"][0]["status"], "succeeded", "{v}");
    assert_eq!(rx.requests().len(), 1);
    assert!(proxy.tunnels().is_empty(), "{:?}", proxy.tunnels());
}

/// `no_proxy` is decided for each address a name resolves to: with the
/// first address exempt (and closed) and the second not, the second is
/// reached through the proxy, not directly.
#[tokio::test(flavor = "multi_thread")]
async fn no_proxy_is_decided_for_each_resolved_address() {
    let rx = TestReceiver::start().await;
    let proxy = TestProxy::start(None).await;
    let config = format!(
        r#"{}
[[plugins]]
name = "fetcher"
component = "{}"
events = ["*"]
allowed_hosts = ["http://mixed.test:*"]
allow_private_networks = ["127.0.0.0/8"]
[plugins.config]
mode = "from-event"
[plugins.delivery]
timeout_s = 2
retry_schedule_s = [1]

[dns]
static = {{ "mixed.test" = ["127.0.0.2", "127.0.0.1"] }}

[egress]
proxy = "{}"
no_proxy = ["127.0.0.2/32"]
"#,
        config_head(),
        component("hostile"),
        proxy.url(None)
    );
    let host = Host::start(&config, &[]);
    let event = json!({"id": "m-1", "name": "x",
        "properties": {"url": format!("http://mixed.test:{}/hook", rx.addr.port())}});
    assert_eq!(host.ingest(&event.to_string()).await.0, 202);
    let v = host.settled_event("m-1", 30).await;
    assert_eq!(v["deliveries"][0]["status"], "succeeded", "{v}");
    assert_eq!(
        proxy.tunnels(),
        [Tunnel {
            target: format!("127.0.0.1:{}", rx.addr.port()),
            authorization: None,
        }]
    );
}
