//! Egress URL checks and allowlist matching: arbitrary URLs never panic;
//! a URL a pattern accepts really has the pattern's scheme, host and port;
//! any other host is refused; and userinfo, backslash and encoding tricks
//! never make the host the policy checked differ from the host the client
//! would connect to (delivery sends `dest.url()` through `http::Uri`).

use proptest::prelude::*;
use wasmhook::model::{Method, OutboundRequest};
use wasmhook::policy::{Destination, EgressPolicy, Host, HostPattern, PolicySpec, Scheme};

use super::check;

fn policy(allowed: &[String]) -> EgressPolicy {
    EgressPolicy::new(PolicySpec {
        allowed_hosts: allowed.to_vec(),
        ..PolicySpec::default()
    })
    .expect("valid policy")
}

fn post(url: &str) -> OutboundRequest {
    OutboundRequest {
        method: Method::Post,
        url: url.to_owned(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// What `http::Uri` (hence hyper and the connector) makes of a URL:
/// scheme, host without brackets or trailing dot, effective port.
fn hyper_view(url: &str) -> Option<(String, String, u16)> {
    let uri: http::Uri = url.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let default = if scheme == "https" { 443 } else { 80 };
    Some((scheme, host, uri.port_u16().unwrap_or(default)))
}

/// The policy's destination and the connector's view of the URL that is
/// sent agree.
fn agrees_with_hyper(dest: &Destination) -> Result<(), TestCaseError> {
    let sent = dest.url().as_str();
    let view = hyper_view(sent);
    prop_assert!(
        view.is_some(),
        "{sent} passed the policy but is not a valid URI"
    );
    let (scheme, host, port) = view.unwrap_or_default();
    prop_assert_eq!(scheme.as_str(), dest.scheme().as_str());
    prop_assert_eq!(host.as_str(), dest.host());
    prop_assert_eq!(port, dest.port());
    let authority = sent
        .split("://")
        .nth(1)
        .and_then(|r| r.split(['/', '?', '#']).next())
        .unwrap_or("");
    prop_assert!(
        !authority.contains('@'),
        "userinfo reached the wire: {sent}"
    );
    Ok(())
}

fn label() -> impl Strategy<Value = String> {
    "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?"
        .prop_filter("no IDNA ACE prefix", |l| l.get(2..4) != Some("--"))
}

/// A domain name whose last label is letters only (so never read as an
/// IPv4 number form).
fn domain() -> impl Strategy<Value = String> {
    (prop::collection::vec(label(), 1..3), "[g-z][a-z]{1,5}")
        .prop_map(|(labels, tld)| format!("{}.{tld}", labels.join(".")))
}

/// A path, query and fragment with the characters that confuse parsers,
/// but none the policy refuses outright (backslash, whitespace).
fn tail() -> impl Strategy<Value = String> {
    "(/[a-zA-Z0-9._~!$&'()*+,;=:@%{}-]{0,12}){0,3}(\\?[a-zA-Z0-9=&@:/.]{0,12})?(#[a-z0-9@:/]{0,8})?"
}

fn scheme() -> impl Strategy<Value = Scheme> {
    prop::sample::select(vec![Scheme::Http, Scheme::Https])
}

#[test]
fn arbitrary_urls_never_panic_and_accepted_ones_agree_with_hyper() {
    let allow_all = policy(&["http://*:*".into(), "https://*:*".into()]);
    let url = prop_oneof![
        ".{0,80}",
        (
            prop::sample::select(vec![
                "http://",
                "https://",
                "HTTP://",
                "http:",
                "https:/",
                "//",
                "ftp://",
                "http:\\\\"
            ]),
            ".{0,60}"
        )
            .prop_map(|(s, r)| format!("{s}{r}")),
        (
            prop::sample::select(vec!["http://", "https://"]),
            "[a-zA-Z0-9.:@\\[\\]%#?/\\\\-]{0,40}"
        )
            .prop_map(|(s, r)| format!("{s}{r}")),
    ];
    check("url", url, |url| {
        if let Ok(dest) = allow_all.check_request(&post(&url)) {
            agrees_with_hyper(&dest)?;
        }
        Ok(())
    });
}

#[test]
fn a_url_on_an_allowed_host_is_allowed_with_that_destination() {
    let strategy = (scheme(), domain(), prop::option::of(1u16..), tail());
    check("allowlist", strategy, |(scheme, host, port, tail)| {
        let authority = port.map_or(host.clone(), |p| format!("{host}:{p}"));
        let pattern = format!("{scheme}://{authority}");
        let url = format!("{scheme}://{}{tail}", authority.to_ascii_uppercase());
        let dest = policy(std::slice::from_ref(&pattern))
            .check_request(&post(&url))
            .map_err(|e| TestCaseError::fail(format!("{url} refused by {pattern}: {e}")))?;
        prop_assert_eq!(dest.scheme(), scheme);
        prop_assert_eq!(dest.host(), host.as_str());
        prop_assert_eq!(dest.port(), port.unwrap_or(scheme.default_port()));
        agrees_with_hyper(&dest)
    });
}

#[test]
fn any_other_host_port_or_scheme_is_refused() {
    let strategy = (scheme(), domain(), domain(), 1u16.., 1u16.., tail());
    check(
        "allowlist",
        strategy,
        |(scheme, allowed, other, port, other_port, tail)| {
            prop_assume!(allowed != other);
            let p = policy(&[format!("{scheme}://{allowed}:{port}")]);
            let other_scheme = if scheme == Scheme::Http {
                "https"
            } else {
                "http"
            };
            let mut refused = vec![
                format!("{scheme}://{other}:{port}{tail}"),
                format!("{other_scheme}://{allowed}:{port}{tail}"),
                format!("{scheme}://{allowed}.{other}:{port}{tail}"),
                format!("{scheme}://{other}.{allowed}:{port}{tail}"),
                format!("{scheme}://{allowed}@{other}:{port}{tail}"),
                format!("{scheme}://{other}@{allowed}:{port}{tail}"),
                format!("{scheme}://{allowed}:{port}@{other}:{port}{tail}"),
                format!("{scheme}://{allowed}\\@{other}:{port}{tail}"),
                format!("{scheme}://{other}\\{allowed}:{port}{tail}"),
                format!("{scheme}://{other}:{port}\\@{allowed}:{port}{tail}"),
                format!("{scheme}://{allowed}%40{other}:{port}{tail}"),
            ];
            if other_port != port {
                refused.push(format!("{scheme}://{allowed}:{other_port}{tail}"));
            }
            for url in refused {
                if let Ok(dest) = p.check_request(&post(&url)) {
                    // only acceptable if it really goes to the allowed host
                    prop_assert_eq!(dest.host(), allowed.as_str(), "{} accepted", url);
                    agrees_with_hyper(&dest)?;
                    prop_assert!(false, "{url} accepted as {dest}");
                }
            }
            Ok(())
        },
    );
}

#[test]
fn wildcard_patterns_match_subdomains_only() {
    let strategy = (domain(), prop::collection::vec(label(), 1..3), label());
    check("allowlist", strategy, |(suffix, subs, glued)| {
        let pattern: HostPattern = format!("https://*.{suffix}")
            .parse()
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let sub = format!("{}.{suffix}", subs.join("."));
        let https = |h: &str| pattern.matches(Scheme::Https, &Host::Domain(h.to_owned()), 443);
        prop_assert!(https(&sub), "{sub}");
        prop_assert!(!https(&suffix), "the bare suffix {suffix} matched");
        prop_assert!(
            !https(&format!("{glued}{suffix}")),
            "{glued}{suffix} matched"
        );
        prop_assert!(!pattern.matches(Scheme::Http, &Host::Domain(sub.clone()), 443));
        prop_assert!(!pattern.matches(Scheme::Https, &Host::Domain(sub), 8443));
        Ok(())
    });
}

#[test]
fn arbitrary_patterns_never_panic() {
    check("allowlist", ".{0,40}", |s| {
        if let Ok(p) = s.parse::<HostPattern>() {
            // a parsed pattern matches something consistently
            let _ = p.matches(Scheme::Https, &Host::Domain("example.com".into()), 443);
        }
        Ok(())
    });
}
