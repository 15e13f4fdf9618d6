//! The egress (SSRF) matrix, end to end through the real `wasmhook serve`.
//!
//! One host runs the hostile fixture in `from-event` mode under several
//! plugin names (each a different egress policy); every vector is one event
//! whose `properties.url` is the destination the plugin asks for. Each row
//! says where the host must refuse it:
//!
//! - `Output`: the runtime refuses the plugin's decision as invalid output
//!   (no delivery is even created);
//! - `PreCheck`: the worker's policy check refuses the request before any
//!   lookup or connection;
//! - `Connect`: the connector resolved the name (through `[dns] static`
//!   pins or the system resolver) and the address guard refused it;
//! - `Redirect`: an allowed receiver answered 302 and the redirect guard (or
//!   the address guard on the next hop) refused the target; `NotFollowed`
//!   when the plugin does not follow redirects at all.
//!
//! Leaks are caught, not inferred: loopback vectors point at a recording
//! `TestReceiver` on 127.0.0.1 or at tripwires (listeners that count every
//! accepted connection) on 127.0.0.1, 127.0.0.2, 127.0.0.3 and `[::1]`, and
//! the test ends by checking that they saw exactly the control requests.
//! Vectors to non-loopback addresses (10/8, 169.254.169.254, …) never leave
//! the machine because they are refused before any connect; the recorded
//! attempt proves that. Controls that must be delivered prove the apparatus
//! can see a leak.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use support::host::{Host, component, config_head};
use support::receiver::{Reply, TestReceiver};

/// A listener that only counts accepted connections: any count above zero
/// means a request got through to an address that should be unreachable.
struct Tripwire {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Tripwire {
    async fn bind(addr: &str) -> Tripwire {
        Self::try_bind(addr)
            .await
            .unwrap_or_else(|e| panic!("binding a tripwire on {addr}: {e}"))
    }

    async fn try_bind(addr: &str) -> std::io::Result<Tripwire> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Ok(Tripwire {
            addr,
            accepted,
            task,
        })
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn count(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Tripwire {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Where a vector must be refused (the needle must appear in the reason).
#[derive(Debug, Clone, Copy)]
enum Want {
    /// Invalid plugin output: invocation error kind `invalid_output`.
    Output(&'static str),
    /// Output the host refuses because of the event (a placeholder the
    /// event itself holds): invocation error kind `refused`.
    Refused(&'static str),
    /// The worker's policy check, before any lookup or connect.
    PreCheck(&'static str),
    /// The connect-time address guard, after resolving a name.
    Connect(&'static str),
    /// The redirect guard, or the address guard of the redirect's hop.
    Redirect(&'static str),
    /// Redirects are off: the 3xx is the final answer.
    NotFollowed,
    /// A control: must be delivered.
    Delivered,
}

/// One row of the matrix.
struct Vector {
    /// Event name, which selects the plugin (and so the policy).
    plugin: &'static str,
    url: String,
    /// Extra event properties (`method`, `headers`).
    extra: Value,
    want: Want,
}

fn v(plugin: &'static str, url: impl Into<String>, want: Want) -> Vector {
    Vector {
        plugin,
        url: url.into(),
        extra: json!({}),
        want,
    }
}

/// Ports of the listeners the vectors aim at.
struct Ports {
    /// Recording receiver on 127.0.0.1 (the strict plugin's allowed host).
    rx: u16,
    /// Tripwires on 127.0.0.1, 127.0.0.2, 127.0.0.3 and [::1].
    t1: u16,
    t2: u16,
    t3: u16,
    t6: u16,
}

/// Every non-redirect vector. `deliver` = permissive allowlist
/// (`http://*:*`, `https://*:*`, only 127.0.0.3 exempt); `strict` = only
/// `http://api.allowed.test:{rx}`, POST only, 127.0.0.1 exempt; `out` rows
/// are spread over several plugins (see `out_plugin`).
fn matrix(p: &Ports) -> Vec<Vector> {
    use Want::*;
    let Ports { rx, t1, t2, t3, t6 } = *p;
    let mut rows = vec![
        // IPv4 loopback in every spelling the URL parser normalises to 127.0.0.1.
        v(
            "deliver",
            format!("http://127.0.0.1:{rx}/"),
            PreCheck("127.0.0.1 is loopback"),
        ),
        v(
            "deliver",
            format!("https://127.0.0.1:{rx}/"),
            PreCheck("127.0.0.1 is loopback"),
        ),
        v(
            "deliver",
            format!("http://127.1:{rx}/"),
            PreCheck("127.0.0.1 is loopback"),
        ),
        v(
            "deliver",
            format!("http://2130706433:{rx}/"),
            PreCheck("127.0.0.1 is loopback"),
        ),
        v(
            "deliver",
            format!("http://0x7f000001:{rx}/"),
            PreCheck("127.0.0.1 is loopback"),
        ),
        v(
            "deliver",
            format!("http://017700000001:{rx}/"),
            PreCheck("127.0.0.1 is loopback"),
        ),
        v(
            "deliver",
            format!("http://0177.0.0.1:{rx}/"),
            PreCheck("127.0.0.1 is loopback"),
        ),
        v(
            "deliver",
            format!("http://127.0.0.1.:{rx}/"),
            PreCheck("127.0.0.1 is loopback"),
        ),
        v(
            "deliver",
            format!("http://%31%32%37.0.0.1:{rx}/"),
            PreCheck("127.0.0.1 is loopback"),
        ),
        // Full-width digits: IDNA maps them to ASCII before the IPv4 parser.
        v(
            "deliver",
            format!("http://１２７.０.０.１:{rx}/"),
            PreCheck("127.0.0.1 is loopback"),
        ),
        v(
            "deliver",
            format!("http://127.0.0.2:{t2}/"),
            PreCheck("127.0.0.2 is loopback"),
        ),
        v(
            "deliver",
            format!("http://0.0.0.0:{rx}/"),
            PreCheck("0.0.0.0 is unspecified"),
        ),
        v(
            "deliver",
            format!("http://0:{rx}/"),
            PreCheck("0.0.0.0 is unspecified"),
        ),
        // IPv6 loopback and IPv6 forms embedding 127.0.0.x.
        v(
            "deliver",
            format!("http://[::1]:{t6}/"),
            PreCheck("::1 is loopback"),
        ),
        v(
            "deliver",
            format!("http://[::]:{t6}/"),
            PreCheck(":: is unspecified"),
        ),
        v(
            "deliver",
            format!("http://[::ffff:127.0.0.1]:{rx}/"),
            PreCheck("IPv4-mapped IPv6 (embeds 127.0.0.1, loopback)"),
        ),
        v(
            "deliver",
            format!("http://[::ffff:7f00:1]:{rx}/"),
            PreCheck("IPv4-mapped IPv6 (embeds 127.0.0.1, loopback)"),
        ),
        v(
            "deliver",
            format!("http://[0:0:0:0:0:ffff:127.0.0.1]:{rx}/"),
            PreCheck("IPv4-mapped IPv6 (embeds 127.0.0.1, loopback)"),
        ),
        // 127.0.0.3 is exempt for this plugin, but only as IPv4.
        v(
            "deliver",
            format!("http://[::ffff:127.0.0.3]:{t3}/"),
            PreCheck("IPv4-mapped IPv6 (embeds 127.0.0.3"),
        ),
        v(
            "deliver",
            format!("http://[::127.0.0.1]:{rx}/"),
            PreCheck("IPv4-compatible IPv6"),
        ),
        v(
            "deliver",
            format!("http://[64:ff9b::7f00:1]:{rx}/"),
            PreCheck("NAT64 (embeds 127.0.0.1, loopback)"),
        ),
        v(
            "deliver",
            format!("http://[2002:7f00:1::]:{rx}/"),
            PreCheck("6to4 (embeds 127.0.0.1, loopback)"),
        ),
        v(
            "deliver",
            "http://[2001:0:4136:e378:8000:63bf:80ff:fefe]/",
            PreCheck("Teredo"),
        ),
        // Private, metadata and special-purpose ranges (never connected to).
        v(
            "deliver",
            "http://169.254.169.254/latest/meta-data/",
            PreCheck("169.254.169.254 is link-local (cloud metadata)"),
        ),
        v(
            "deliver",
            "http://[fe80::1]/",
            PreCheck("fe80::1 is link-local"),
        ),
        v(
            "deliver",
            "http://[fd00::1]/",
            PreCheck("fd00::1 is IPv6 unique-local"),
        ),
        v(
            "deliver",
            "http://10.0.0.1/",
            PreCheck("10.0.0.1 is private (RFC 1918)"),
        ),
        v(
            "deliver",
            "http://172.16.0.1/",
            PreCheck("172.16.0.1 is private (RFC 1918)"),
        ),
        v(
            "deliver",
            "http://172.31.255.254/",
            PreCheck("172.31.255.254 is private (RFC 1918)"),
        ),
        v(
            "deliver",
            "http://192.168.1.1/",
            PreCheck("192.168.1.1 is private (RFC 1918)"),
        ),
        v(
            "deliver",
            "http://100.64.0.1/",
            PreCheck("100.64.0.1 is shared address space (carrier-grade NAT)"),
        ),
        v(
            "deliver",
            "http://198.18.0.1/",
            PreCheck("198.18.0.1 is a benchmarking address"),
        ),
        v(
            "deliver",
            "http://224.0.0.1/",
            PreCheck("224.0.0.1 is multicast"),
        ),
        v(
            "deliver",
            "http://255.255.255.255/",
            PreCheck("255.255.255.255 is broadcast"),
        ),
        v(
            "deliver",
            "http://240.0.0.1/",
            PreCheck("240.0.0.1 is reserved"),
        ),
        // Names: the system resolver (localhost) and `[dns] static` pins.
        v(
            "deliver",
            format!("http://localhost:{rx}/"),
            Connect("localhost resolved to"),
        ),
        v(
            "deliver",
            format!("http://LocalHost:{rx}/"),
            Connect("localhost resolved to"),
        ),
        v(
            "deliver",
            format!("http://loopback.test:{rx}/"),
            Connect("loopback.test resolved to 127.0.0.1, which is loopback"),
        ),
        v(
            "deliver",
            "http://internal.test/",
            Connect("internal.test resolved to 10.0.0.7, which is private (RFC 1918)"),
        ),
        v(
            "deliver",
            "http://InTeRnAl.TeSt./",
            Connect("resolved to 10.0.0.7, which is private (RFC 1918)"),
        ),
        v(
            "deliver",
            "http://metadata.test/",
            Connect("metadata.test resolved to 169.254.169.254, which is link-local"),
        ),
        v(
            "deliver",
            "http://cgnat.test/",
            Connect("cgnat.test resolved to 100.64.0.1, which is shared address space"),
        ),
        v(
            "deliver",
            "http://ula.test/",
            Connect("ula.test resolved to fd00::1, which is IPv6 unique-local"),
        ),
        v(
            "deliver",
            format!("http://v6loop.test:{t6}/"),
            Connect("v6loop.test resolved to ::1, which is loopback"),
        ),
        v(
            "deliver",
            format!("http://mapped.test:{rx}/"),
            Connect("mapped.test resolved to ::ffff:127.0.0.1, which is IPv4-mapped IPv6"),
        ),
        // Allowed and exempt for `strict`, but not exempt here: policies are per plugin.
        v(
            "deliver",
            format!("http://api.allowed.test:{rx}/"),
            Connect("api.allowed.test resolved to 127.0.0.1, which is loopback"),
        ),
        // Allowlist tricks against `strict`. (Credentials and backslashes
        // in the authority are refused as output since session 12, before
        // the policy is asked; the policy refuses them too.)
        v(
            "strict",
            format!("http://api.allowed.test:{t1}/"),
            PreCheck("is not allowed; add"),
        ),
        v(
            "strict",
            format!("https://api.allowed.test:{rx}/"),
            PreCheck("https://api.allowed.test"),
        ),
        v(
            "out",
            format!("http://api.allowed.test@127.0.0.1:{t1}/"),
            Output("URL carries credentials"),
        ),
        v(
            "out",
            format!("http://api.allowed.test:{rx}@127.0.0.1:{t1}/"),
            Output("URL carries credentials"),
        ),
        v(
            "out",
            format!("http://@127.0.0.1:{t1}/"),
            Output("URL carries credentials"),
        ),
        v(
            "strict",
            format!("http://127.0.0.1:{t1}#@api.allowed.test:{rx}/"),
            PreCheck("http://127.0.0.1:"),
        ),
        v(
            "strict",
            format!("http://127.0.0.1:{t1}?@api.allowed.test:{rx}/"),
            PreCheck("http://127.0.0.1:"),
        ),
        v(
            "out",
            format!("http://127.0.0.1:{t1}\\@api.allowed.test:{rx}/"),
            Output("backslash"),
        ),
        v(
            "out",
            format!("http://api.allowed.test:{rx}\\@127.0.0.1:{t1}/"),
            Output("backslash"),
        ),
        v(
            "strict",
            format!("http://api.allowed.test.loopback.test:{rx}/"),
            PreCheck("api.allowed.test.loopback.test"),
        ),
        v(
            "strict",
            format!("http://loopback.test:{rx}/"),
            PreCheck("http://loopback.test:"),
        ),
        // Controls: the allowed host, in any case, is delivered to rx.
        v(
            "strict",
            format!("http://api.allowed.test:{rx}/control"),
            Delivered,
        ),
        v(
            "strict",
            format!("HTTP://API.Allowed.TEST:{rx}/control-upper"),
            Delivered,
        ),
        // Output the runtime refuses before anything is stored or sent.
        v(
            "out",
            "file:///etc/passwd",
            Output("URL scheme \"file\" is not allowed"),
        ),
        v(
            "out",
            format!("ftp://127.0.0.1:{t1}/"),
            Output("URL scheme \"ftp\" is not allowed"),
        ),
        v(
            "out",
            format!("gopher://127.0.0.1:{t1}/_GET%20/"),
            Output("URL scheme \"gopher\" is not allowed"),
        ),
        v(
            "out",
            "data:text/plain,hello",
            Output("URL scheme \"data\" is not allowed"),
        ),
        v(
            "out",
            format!("http://[fe80::1%25lo]:{t1}/"),
            Output("is not an absolute URL"),
        ),
        v(
            "out",
            format!("http://127.0.0.1:{t1}/\r\nx-evil: 1"),
            Output("whitespace or control characters"),
        ),
        v(
            "out",
            format!("http://127.0.0.1:{t1}/{}", "a".repeat(9000)),
            Output("exceeds the 8192-byte limit"),
        ),
        v(
            "out",
            format!("//127.0.0.1:{t1}/"),
            Output("is not an absolute URL"),
        ),
        // The URL comes from the event here, so the placeholder is the
        // event's: refused as such, before the rule against placeholders
        // in the authority (`runtime::output` tests that one).
        v(
            "out",
            format!("http://{{{{secret:X}}}}.internal.test:{t1}/"),
            Refused("the event's own data holds"),
        ),
    ];
    let header = |plugin, url: String, extra: Value, want| Vector {
        plugin,
        url,
        extra,
        want,
    };
    rows.extend([
        // CR/LF in a header value: refused as output (header injection).
        header(
            "out",
            format!("http://127.0.0.1:{t1}/"),
            json!({"headers": {"x-a": "a\r\nhost: 127.0.0.1"}}),
            Output("control characters such as CR/LF are not allowed"),
        ),
        header(
            "out",
            format!("http://127.0.0.1:{t1}/"),
            json!({"headers": {"x-a\r\nx-b": "1"}}),
            Output("invalid header name"),
        ),
        // A Host header could steer virtual hosting or proxies: the host
        // owns it, and refuses it as output, before the policy is asked.
        header(
            "out",
            format!("http://127.0.0.1:{t1}/"),
            json!({"headers": {"Host": "169.254.169.254"}}),
            Output("header \"host\" is set by the host"),
        ),
        header(
            "strict",
            format!("http://api.allowed.test:{rx}/"),
            json!({"method": "DELETE"}),
            PreCheck("method DELETE is not allowed"),
        ),
    ]);
    rows
}

/// Invalid output counts against the plugin's own failure breaker; spread
/// those rows over several plugins so none of them is paused mid-test.
const OUT_PLUGINS: usize = 4;

fn event_name(row: &Vector, index: usize) -> String {
    match row.plugin {
        "out" => format!("out.{}", index % OUT_PLUGINS),
        other => other.to_owned(),
    }
}

fn plugin(name: &str, events: &str, policy: &str) -> String {
    format!(
        r#"
[[plugins]]
name = "{name}"
component = "{c}"
events = [{events}]
{policy}
[plugins.config]
mode = "from-event"
[plugins.delivery]
timeout_s = 5
retry_schedule_s = [1]
"#,
        c = component("hostile"),
    )
}

fn config(p: &Ports, rr: u16) -> String {
    let Ports { rx, t2, .. } = *p;
    let mut text = config_head();
    text.push_str(
        r#"
[dns]
static = { "internal.test" = ["10.0.0.7"], "loopback.test" = ["127.0.0.1"], "metadata.test" = ["169.254.169.254"], "cgnat.test" = ["100.64.0.1"], "ula.test" = ["fd00::1"], "v6loop.test" = ["::1"], "mapped.test" = ["::ffff:127.0.0.1"], "api.allowed.test" = ["127.0.0.1"], "sneaky.test" = ["127.0.0.2"] }
"#,
    );
    text.push_str(&plugin(
        "deliver",
        r#""deliver""#,
        r#"allowed_hosts = ["http://*:*", "https://*:*"]
allow_private_networks = ["127.0.0.3/32"]"#,
    ));
    text.push_str(&plugin(
        "strict",
        r#""strict""#,
        &format!(
            r#"allowed_hosts = ["http://api.allowed.test:{rx}"]
allowed_methods = ["POST"]
allow_private_networks = ["127.0.0.1/32"]"#
        ),
    ));
    let redirecting = format!(
        r#"allowed_hosts = ["http://api.allowed.test:{rr}", "http://sneaky.test:{t2}"]
allow_private_networks = ["127.0.0.1/32"]"#
    );
    text.push_str(&plugin(
        "follow",
        r#""follow""#,
        &format!("{redirecting}\nfollow_redirects = 3"),
    ));
    text.push_str(&plugin("nofollow", r#""nofollow""#, &redirecting));
    for i in 0..OUT_PLUGINS {
        text.push_str(&plugin(
            &format!("out{i}"),
            &format!(r#""out.{i}""#),
            r#"allowed_hosts = ["http://*:*", "https://*:*"]"#,
        ));
    }
    text
}

/// Ingest one vector as event `id`.
async fn send(host: &Host, id: &str, name: &str, url: &str, extra: &Value) {
    let mut properties = json!({"url": url});
    for (k, val) in extra.as_object().unwrap() {
        properties[k] = val.clone();
    }
    let body = json!({"id": id, "name": name, "properties": properties}).to_string();
    let (status, v) = host.ingest(&body).await;
    assert_eq!(status, 202, "{id} {url:?}: {v}");
}

/// Why the event ended as it did, for the matrix printout
/// (`cargo test --test ssrf -- --nocapture`).
fn reason(v: &Value) -> String {
    let invocation = &v["plugins"][0];
    if invocation["decision"] == "error" {
        return format!("{}: {}", invocation["error_kind"], invocation["error"]);
    }
    let d = &v["deliveries"][0];
    let attempt = &d["attempts"][0];
    format!("{} ({}): {}", d["status"], attempt["outcome"], d["failure"])
}

/// Check the settled event `v` against `want`; the failure text on error.
fn check(v: &Value, want: Want) -> Result<(), String> {
    let show = || format!("{want:?} but got {v}");
    let invocation = &v["plugins"][0];
    let deliveries = v["deliveries"].as_array().cloned().unwrap_or_default();
    if let Want::Output(needle) | Want::Refused(needle) = want {
        let kind = match want {
            Want::Output(_) => "invalid_output",
            _ => "refused",
        };
        let ok = invocation["decision"] == "error"
            && invocation["error_kind"] == kind
            && invocation["error"]
                .as_str()
                .is_some_and(|e| e.contains(needle))
            && deliveries.is_empty();
        return if ok { Ok(()) } else { Err(show()) };
    }
    let [d] = &deliveries[..] else {
        return Err(show());
    };
    let failure = d["failure"].as_str().unwrap_or("");
    let attempts = d["attempts"].as_array().cloned().unwrap_or_default();
    let [attempt] = &attempts[..] else {
        return Err(show());
    };
    let ok = match want {
        Want::Output(_) | Want::Refused(_) => unreachable!(),
        Want::Delivered => d["status"] == "succeeded",
        Want::NotFollowed => {
            d["status"] == "failed"
                && attempt["outcome"] == "status"
                && attempt["status_code"] == 302
                && failure.contains("redirect not followed")
        }
        Want::PreCheck(needle) => {
            // Refused by the worker's check: no lookup, no connection.
            d["status"] == "failed"
                && attempt["outcome"] == "policy"
                && attempt["duration_ms"] == 0
                && attempt["status_code"].is_null()
                && !failure.contains("resolved to")
                && failure.contains(needle)
        }
        Want::Connect(needle) => {
            d["status"] == "failed"
                && attempt["outcome"] == "policy"
                && attempt["status_code"].is_null()
                && failure.starts_with("denied by egress policy: ")
                && failure.contains(needle)
        }
        Want::Redirect(needle) => {
            d["status"] == "failed"
                && attempt["outcome"] == "policy"
                && failure.starts_with("denied by egress policy: ")
                && failure.contains(needle)
        }
    };
    if ok { Ok(()) } else { Err(show()) }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_egress_vector_is_refused_before_reaching_a_listener() {
    let rx = TestReceiver::start().await;
    let rr = TestReceiver::start().await;
    let t1 = Tripwire::bind("127.0.0.1:0").await;
    let t2 = Tripwire::bind("127.0.0.2:0").await;
    let t3 = Tripwire::bind("127.0.0.3:0").await;
    // Without IPv6 loopback the [::1] vectors are still refused (and
    // asserted); only their tripwire moves to 127.0.0.1.
    let t6 = match Tripwire::try_bind("[::1]:0").await {
        Ok(t) => t,
        Err(_) => Tripwire::bind("127.0.0.1:0").await,
    };
    let ports = Ports {
        rx: rx.addr.port(),
        t1: t1.port(),
        t2: t2.port(),
        t3: t3.port(),
        t6: t6.port(),
    };
    let host = Host::start(&config(&ports, rr.addr.port()), &[]);

    // Every non-redirect vector at once, one event each.
    let rows = matrix(&ports);
    for (i, row) in rows.iter().enumerate() {
        send(
            &host,
            &format!("v{i}"),
            &event_name(row, i),
            &row.url,
            &row.extra,
        )
        .await;
    }
    let mut failures = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let v = host.settled_event(&format!("v{i}"), 60).await;
        println!(
            "v{i}\t{}\t{:?}\t{:?}\t{}",
            row.plugin,
            row.url,
            row.want,
            reason(&v)
        );
        if let Err(e) = check(&v, row.want) {
            failures.push(format!("v{i} {:?} via {}: {e}", row.url, row.plugin));
        }
    }

    // Redirects, one at a time: rr answers each with the scripted 302.
    let rr_port = rr.addr.port();
    let start = format!("http://api.allowed.test:{rr_port}/start");
    let (p2, p1) = (t2.port(), t1.port());
    // (plugin, Location of each 302, where refused, requests rr must see)
    let redirects: Vec<(&str, Vec<String>, Want, usize)> = vec![
        (
            "follow",
            vec![format!("http://127.0.0.2:{p2}/")],
            Want::Redirect("redirect: 127.0.0.2 is loopback"),
            1,
        ),
        (
            "follow",
            vec!["http://169.254.169.254/latest/meta-data/".into()],
            Want::Redirect("redirect: 169.254.169.254 is link-local"),
            1,
        ),
        (
            "follow",
            vec![format!("//127.0.0.2:{p2}/")],
            Want::Redirect("redirect: 127.0.0.2 is loopback"),
            1,
        ),
        (
            "follow",
            vec![format!("http://[::ffff:127.0.0.1]:{p1}/")],
            Want::Redirect("IPv4-mapped IPv6"),
            1,
        ),
        (
            "follow",
            vec![format!("http://127.0.0.1:{p1}/")],
            Want::Redirect("is not allowed; add"),
            1,
        ),
        (
            "follow",
            vec![format!("http://api.allowed.test@127.0.0.2:{p2}/")],
            Want::Redirect("URL carries credentials"),
            1,
        ),
        (
            "follow",
            vec!["file:///etc/passwd".into()],
            Want::Redirect("scheme \"file\" is not allowed"),
            1,
        ),
        (
            "follow",
            vec![format!(
                "http://api.allowed.test:{rr_port}\\@127.0.0.2:{p2}/"
            )],
            Want::Redirect("backslash"),
            1,
        ),
        // An allowed name that resolves to a blocked address: the address
        // guard refuses the redirect's hop at connect time.
        (
            "follow",
            vec![format!("http://sneaky.test:{p2}/")],
            Want::Redirect("sneaky.test resolved to 127.0.0.2, which is loopback"),
            1,
        ),
        // Two hops: the first to the allowed host again, the second out.
        (
            "follow",
            vec![
                format!("http://api.allowed.test:{rr_port}/hop2"),
                format!("http://127.0.0.2:{p2}/"),
            ],
            Want::Redirect("redirect: 127.0.0.2 is loopback"),
            2,
        ),
        (
            "nofollow",
            vec![format!("http://127.0.0.2:{p2}/")],
            Want::NotFollowed,
            1,
        ),
        (
            "nofollow",
            vec![format!("http://sneaky.test:{p2}/")],
            Want::NotFollowed,
            1,
        ),
        // Control: a redirect to the allowed host itself is followed.
        (
            "follow",
            vec![format!("http://api.allowed.test:{rr_port}/landed")],
            Want::Delivered,
            2,
        ),
    ];
    let mut rr_expected = 0;
    for (i, (plugin, locations, want, hits)) in redirects.iter().enumerate() {
        rr.script(
            locations
                .iter()
                .map(|l| Reply::status(302).header("location", l)),
        );
        rr_expected += hits;
        let id = format!("r{i}");
        send(&host, &id, plugin, &start, &json!({})).await;
        let v = host.settled_event(&id, 60).await;
        println!(
            "{id}\t{plugin}\t302 → {locations:?}\t{want:?}\t{}",
            reason(&v)
        );
        if let Err(e) = check(&v, *want) {
            failures.push(format!("{id} 302 → {locations:?} via {plugin}: {e}"));
        }
    }

    let paths: Vec<String> = rx.requests().iter().map(|r| r.path.clone()).collect();
    let mut want_paths = vec!["/control".to_owned(), "/control-upper".to_owned()];
    let mut got_paths = paths.clone();
    got_paths.sort();
    want_paths.sort();
    assert_eq!(
        got_paths, want_paths,
        "only the controls may reach 127.0.0.1:{}",
        ports.rx
    );
    assert_eq!(
        rr.requests().len(),
        rr_expected,
        "redirect sources: {:?}",
        rr.requests()
    );
    for (name, wire) in [
        ("127.0.0.1", &t1),
        ("127.0.0.2", &t2),
        ("127.0.0.3", &t3),
        ("[::1]", &t6),
    ] {
        assert_eq!(
            wire.count(),
            0,
            "a connection reached the tripwire on {name}"
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} vectors misbehaved:\n{}",
        failures.len(),
        rows.len() + redirects.len(),
        failures.join("\n")
    );
    assert!(
        rows.len() + redirects.len() >= 40,
        "the matrix must keep at least 40 vectors"
    );
}
