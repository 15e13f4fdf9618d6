//! Compiling a plugin's settings: patterns, CIDRs, methods and secrets.

use super::*;
use crate::policy::{HostPattern, PolicyConfigError, Scheme};

#[test]
fn host_patterns_parse_or_say_why_not() {
    let ok = [
        "https://api.example.com",
        "https://api.example.com/",
        "HTTPS://API.Example.COM",
        "http://api.example.com:8080",
        "https://*.example.com",
        "https://*",
        "https://*:*",
        "http://*:9000",
        "api.example.com",
        "*.example.com",
        "api.example.com:8443",
        "http://127.0.0.1:9000",
        "http://[::1]:8080",
        "https://[2606:4700::1111]",
        "https://bücher.example",
    ];
    for p in ok {
        p.parse::<HostPattern>()
            .unwrap_or_else(|e| panic!("{p}: {e}"));
    }
    let bad: &[(&str, &str)] = &[
        ("", "empty"),
        ("ftp://example.com", "http or https"),
        ("https://", "empty"),
        ("https://example.com/path", "no path"),
        ("https://user@example.com", "credentials"),
        ("https://exa mple.com", "spaces"),
        ("https://*.*.example.com", "followed by a domain"),
        ("https://api*.example.com", "leading"),
        ("https://*.", "empty"),
        ("https://example.com:0", "1 to 65535"),
        ("https://example.com:99999", "1 to 65535"),
        ("https://example.com:http", "1 to 65535"),
        ("http://::1:8080", "brackets"),
        ("http://[::1", "unterminated"),
        ("http://[::1]x", "after the IPv6"),
        ("http://[fe80::1%25lo]", "zone"),
        ("https://*.[::1]", "brackets"),
    ];
    for (p, needle) in bad {
        let err = p.parse::<HostPattern>().expect_err(p);
        assert_eq!(err.pattern, *p);
        assert!(err.to_string().contains(needle), "{p}: {err}");
    }
}

#[test]
fn pattern_matching_table() {
    use crate::policy::Host;
    let d = |s: &str| Host::Domain(s.into());
    let ip = |s: &str| Host::Ip(s.parse().unwrap());
    let cases: &[(&str, Scheme, Host, u16, bool)] = &[
        (
            "https://api.example.com",
            Scheme::Https,
            d("api.example.com"),
            443,
            true,
        ),
        (
            "https://api.example.com",
            Scheme::Https,
            d("api.example.com"),
            8443,
            false,
        ),
        (
            "https://api.example.com",
            Scheme::Http,
            d("api.example.com"),
            443,
            false,
        ),
        (
            "http://api.example.com",
            Scheme::Http,
            d("api.example.com"),
            80,
            true,
        ),
        (
            "https://API.example.com.",
            Scheme::Https,
            d("api.example.com"),
            443,
            true,
        ),
        (
            "api.example.com",
            Scheme::Https,
            d("api.example.com"),
            443,
            true,
        ),
        (
            "api.example.com",
            Scheme::Http,
            d("api.example.com"),
            80,
            false,
        ),
        (
            "*.example.com",
            Scheme::Https,
            d("a.example.com"),
            443,
            true,
        ),
        ("*.example.com", Scheme::Https, d("example.com"), 443, false),
        (
            "https://*.example.com:*",
            Scheme::Https,
            d("a.b.example.com"),
            1,
            true,
        ),
        ("https://*", Scheme::Https, d("anything.test"), 443, true),
        ("https://*", Scheme::Https, d("anything.test"), 444, false),
        ("https://*:*", Scheme::Https, ip("8.8.8.8"), 9, true),
        ("https://*:*", Scheme::Http, ip("8.8.8.8"), 9, false),
        ("*.example.com", Scheme::Https, ip("8.8.8.8"), 443, false),
        (
            "http://127.0.0.1:9000",
            Scheme::Http,
            ip("127.0.0.1"),
            9000,
            true,
        ),
        (
            "http://127.1:9000",
            Scheme::Http,
            ip("127.0.0.1"),
            9000,
            true,
        ),
        ("http://[::1]:8080", Scheme::Http, ip("::1"), 8080, true),
        (
            "http://[::1]:8080",
            Scheme::Http,
            ip("::ffff:0.0.0.1"),
            8080,
            false,
        ),
        (
            "https://bücher.example",
            Scheme::Https,
            d("xn--bcher-kva.example"),
            443,
            true,
        ),
    ];
    for (pattern, scheme, host, port, want) in cases {
        let p: HostPattern = pattern.parse().unwrap();
        assert_eq!(
            p.matches(*scheme, host, *port),
            *want,
            "{pattern} vs {scheme}://{host:?}:{port}"
        );
    }
}

#[test]
fn invalid_settings_are_refused_naming_the_key() {
    let base = || PolicySpec {
        allowed_hosts: vec!["https://api.example.com".into()],
        ..PolicySpec::default()
    };
    let hosts = |h: &str| PolicySpec {
        allowed_hosts: vec![h.into()],
        ..base()
    };
    let private = |n: &str| PolicySpec {
        allow_private_networks: vec![n.into()],
        ..base()
    };
    let secret = |name: &str, host: &str| PolicySpec {
        secrets: secrets(&[(name, "v", &[host])]),
        ..base()
    };
    let no_methods = PolicySpec {
        allowed_methods: Some(vec![]),
        ..base()
    };
    let cases = [
        (hosts("ftp://x"), "allowed_hosts"),
        (no_methods, "allowed_methods"),
        (private("10.0.0.0/33"), "allow_private_networks"),
        (
            hosts("http://127.0.0.1:9000"),
            "127.0.0.1 to allow_private_networks",
        ),
        (secret("BAD-NAME", "a.com"), "secrets: name"),
        (secret("K", "https://a.com"), "secrets.K.hosts"),
        (secret("K", "*"), "secrets.K.hosts"),
        (secret("K", "a.com:443"), "secrets.K.hosts"),
    ];
    for (spec, needle) in cases {
        let shown = format!("{spec:?}");
        let err = EgressPolicy::new(spec).expect_err(&shown);
        assert!(err.to_string().contains(needle), "{shown}: {err}");
        assert!(!err.to_string().contains("\"v\""), "{err}");
    }
    let unreachable = EgressPolicy::new(PolicySpec {
        allowed_hosts: vec!["http://[::1]:8080".into()],
        ..PolicySpec::default()
    });
    assert!(matches!(
        unreachable,
        Err(PolicyConfigError::UnreachableHostPattern { .. })
    ));
}

#[test]
fn private_ip_patterns_are_accepted_with_a_matching_exemption() {
    let policy = EgressPolicy::new(PolicySpec {
        allowed_hosts: vec!["http://127.0.0.1:9000".into(), "http://[::1]:8080".into()],
        allow_private_networks: vec!["127.0.0.1".into(), "::1/128".into()],
        ..PolicySpec::default()
    })
    .unwrap();
    assert!(
        policy
            .check_request(&post("http://127.0.0.1:9000/hook"))
            .is_ok()
    );
    assert!(
        policy
            .check_request(&post("http://[::1]:8080/hook"))
            .is_ok()
    );
    assert_eq!(
        kind(
            &policy
                .check_request(&post("http://127.0.0.1:9001/"))
                .unwrap_err()
        ),
        "HostNotAllowed"
    );
}
