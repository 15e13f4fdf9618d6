//! The SSRF matrix: URLs, IP literals in every spelling, resolved
//! addresses, headers and methods.

use std::net::IpAddr;

use super::*;
use crate::policy::{IpClass, Scheme};

enum Want {
    /// Allowed: the normalised scheme, host and port.
    Ok(Scheme, &'static str, u16),
    /// Refused for this reason (a `PolicyDenied` variant name).
    Deny(&'static str),
}
use Want::{Deny, Ok};

fn run(policy: &EgressPolicy, cases: &[(&str, Want)]) {
    for (url, want) in cases {
        let got = policy.check_request(&post(url));
        match (want, got) {
            (Ok(scheme, host, port), Result::Ok(dest)) => {
                assert_eq!(
                    (dest.scheme(), dest.host(), dest.port()),
                    (*scheme, *host, *port),
                    "{url}"
                );
            }
            (Deny(kind_), Err(e)) => assert_eq!(kind(&e), *kind_, "{url}: {e}"),
            (Ok(..), Err(e)) => panic!("{url} should be allowed, got: {e}"),
            (Deny(k), Result::Ok(dest)) => panic!("{url} should be denied ({k}), got {dest}"),
        }
    }
}

#[test]
fn private_and_special_addresses_are_blocked_in_every_spelling() {
    let long = format!("https://example.com/{}", "a".repeat(8 * 1024));
    let cases = [
        ("http://127.0.0.1/", Deny("BlockedAddress")),
        ("http://127.1/", Deny("BlockedAddress")),
        ("http://2130706433/", Deny("BlockedAddress")),
        ("http://0x7f000001/", Deny("BlockedAddress")),
        ("http://017700000001/", Deny("BlockedAddress")),
        ("http://0x7f.1/", Deny("BlockedAddress")),
        ("http://%31%32%37.0.0.1/", Deny("BlockedAddress")),
        ("http://１２７.０.０.１/", Deny("BlockedAddress")),
        ("http://127.0.0.1./", Deny("BlockedAddress")),
        ("HTTP://127.0.0.1:8080/", Deny("BlockedAddress")),
        ("http://0.0.0.0/", Deny("BlockedAddress")),
        ("http://0/", Deny("BlockedAddress")),
        ("http://[::1]/", Deny("BlockedAddress")),
        ("http://[::]/", Deny("BlockedAddress")),
        ("http://[::ffff:127.0.0.1]/", Deny("BlockedAddress")),
        ("http://[::ffff:7f00:1]/", Deny("BlockedAddress")),
        ("http://[0:0:0:0:0:ffff:127.0.0.1]/", Deny("BlockedAddress")),
        ("http://[::ffff:8.8.8.8]/", Deny("BlockedAddress")),
        ("http://[::127.0.0.1]/", Deny("BlockedAddress")),
        (
            "http://169.254.169.254/latest/meta-data/",
            Deny("BlockedAddress"),
        ),
        ("http://[fd00::1]/", Deny("BlockedAddress")),
        ("http://[fd00:ec2::254]/", Deny("BlockedAddress")),
        ("http://[fe80::1]/", Deny("BlockedAddress")),
        ("http://[fe80::1%25lo]/", Deny("ZoneId")),
        ("http://[fe80::1%lo]/", Deny("ZoneId")),
        ("http://10.0.0.1/", Deny("BlockedAddress")),
        ("http://10.255.255.254/", Deny("BlockedAddress")),
        ("http://172.16.0.1/", Deny("BlockedAddress")),
        ("http://172.31.255.254/", Deny("BlockedAddress")),
        ("http://192.168.1.1/", Deny("BlockedAddress")),
        ("http://100.64.0.1/", Deny("BlockedAddress")),
        ("http://100.100.100.200/", Deny("BlockedAddress")),
        ("http://198.18.0.1/", Deny("BlockedAddress")),
        ("http://224.0.0.1/", Deny("BlockedAddress")),
        ("http://255.255.255.255/", Deny("BlockedAddress")),
        ("http://240.0.0.1/", Deny("BlockedAddress")),
        ("http://192.0.2.1/", Deny("BlockedAddress")),
        ("http://[2001:db8::1]/", Deny("BlockedAddress")),
        ("http://[64:ff9b::7f00:1]/", Deny("BlockedAddress")),
        ("http://[2002:7f00:1::]/", Deny("BlockedAddress")),
        (
            "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",
            Deny("BlockedAddress"),
        ),
        ("http://[ff02::1]/", Deny("BlockedAddress")),
        // Credentials and parser-differential tricks.
        ("http://api.allowed.com@127.0.0.1/", Deny("UserInfo")),
        ("http://user:pass@example.com/", Deny("UserInfo")),
        ("http://@example.com/", Deny("UserInfo")),
        ("http://example.com%2F@127.0.0.1/", Deny("UserInfo")),
        ("http://allowed.com\\@127.0.0.1/", Deny("Backslash")),
        ("http:\\\\127.0.0.1\\", Deny("Backslash")),
        ("https://example.com/a\\b", Deny("Backslash")),
        // Schemes.
        ("file:///etc/passwd", Deny("SchemeNotAllowed")),
        ("ftp://example.com/", Deny("SchemeNotAllowed")),
        ("gopher://127.0.0.1:6379/_INFO", Deny("SchemeNotAllowed")),
        ("data:text/plain,hello", Deny("SchemeNotAllowed")),
        ("javascript:alert(1)", Deny("SchemeNotAllowed")),
        ("ws://example.com/", Deny("SchemeNotAllowed")),
        // Malformed.
        (long.as_str(), Deny("UrlTooLong")),
        ("https://example.com/a b", Deny("ControlCharacter")),
        (
            "https://example.com/\r\nX-Injected: 1",
            Deny("ControlCharacter"),
        ),
        ("https://exam\tple.com/", Deny("ControlCharacter")),
        ("/relative/path", Deny("InvalidUrl")),
        ("http://", Deny("InvalidUrl")),
        ("http://[::1/", Deny("InvalidUrl")),
        ("https://example.com:99999/", Deny("InvalidUrl")),
        // Public destinations pass when the allowlist says any host.
        ("http://8.8.8.8/", Ok(Scheme::Http, "8.8.8.8", 80)),
        (
            "https://[2606:4700::1111]/",
            Ok(Scheme::Https, "2606:4700::1111", 443),
        ),
        (
            "https://example.com:8443/x",
            Ok(Scheme::Https, "example.com", 8443),
        ),
        (
            "https://example.com#@127.0.0.1",
            Ok(Scheme::Https, "example.com", 443),
        ),
        (
            "https://example.com?@127.0.0.1",
            Ok(Scheme::Https, "example.com", 443),
        ),
        // A name: allowed here, refused by filter_resolved once resolved.
        ("http://localhost/", Ok(Scheme::Http, "localhost", 80)),
    ];
    run(&any_host(), &cases);
}

#[test]
fn the_allowlist_decides_scheme_host_and_port() {
    let policy = policy(
        &[
            "https://api.allowed.com",
            "http://api.allowed.com",
            "*.wild.com",
            "http://localhost:9000",
            "http://8.8.8.8",
            "https://[2606:4700::1111]",
            "https://1.1.1.1:8443",
        ],
        &[],
    );
    let cases = [
        (
            "https://api.allowed.com/v1?x=1",
            Ok(Scheme::Https, "api.allowed.com", 443),
        ),
        (
            "HTTP://API.Allowed.COM/",
            Ok(Scheme::Http, "api.allowed.com", 80),
        ),
        (
            "https://API.ALLOWED.COM./v1",
            Ok(Scheme::Https, "api.allowed.com", 443),
        ),
        (
            "https://api.allowed.com:443/",
            Ok(Scheme::Https, "api.allowed.com", 443),
        ),
        (
            "https://ａｐｉ.allowed.com/",
            Ok(Scheme::Https, "api.allowed.com", 443),
        ),
        ("https://api.allowed.com:8443/", Deny("HostNotAllowed")),
        ("http://api.allowed.com:8080/", Deny("HostNotAllowed")),
        ("https://api.allowed.com:80/", Deny("HostNotAllowed")),
        ("https://evil.com/", Deny("HostNotAllowed")),
        ("https://api.allowed.com.evil.com/", Deny("HostNotAllowed")),
        ("https://evilapi.allowed.com/", Deny("HostNotAllowed")),
        ("https://allowed.com/", Deny("HostNotAllowed")),
        ("https://a.wild.com/", Ok(Scheme::Https, "a.wild.com", 443)),
        (
            "https://A.B.Wild.Com/",
            Ok(Scheme::Https, "a.b.wild.com", 443),
        ),
        ("https://wild.com/", Deny("HostNotAllowed")),
        ("https://xwild.com/", Deny("HostNotAllowed")),
        ("http://a.wild.com/", Deny("HostNotAllowed")),
        (
            "http://localhost:9000/hook",
            Ok(Scheme::Http, "localhost", 9000),
        ),
        (
            "http://LOCALHOST:9000/",
            Ok(Scheme::Http, "localhost", 9000),
        ),
        ("http://localhost/", Deny("HostNotAllowed")),
        ("http://8.8.8.8/", Ok(Scheme::Http, "8.8.8.8", 80)),
        ("http://134744072/", Ok(Scheme::Http, "8.8.8.8", 80)),
        ("http://8.8.8.8:81/", Deny("HostNotAllowed")),
        ("https://8.8.8.8/", Deny("HostNotAllowed")),
        (
            "https://[2606:4700:0::1111]:443/",
            Ok(Scheme::Https, "2606:4700::1111", 443),
        ),
        ("https://1.1.1.1:8443/", Ok(Scheme::Https, "1.1.1.1", 8443)),
        ("https://1.1.1.1/", Deny("HostNotAllowed")),
        ("http://127.0.0.1:9000/", Deny("BlockedAddress")),
    ];
    run(&policy, &cases);
}

#[test]
fn allow_private_networks_exempts_only_what_it_lists() {
    let policy = policy(&["http://*:*"], &["127.0.0.0/8", "fd00::/8"]);
    let cases = [
        (
            "http://127.0.0.1:9000/",
            Ok(Scheme::Http, "127.0.0.1", 9000),
        ),
        ("http://127.1/", Ok(Scheme::Http, "127.0.0.1", 80)),
        ("http://[fd00::1]:8080/", Ok(Scheme::Http, "fd00::1", 8080)),
        ("http://10.0.0.1/", Deny("BlockedAddress")),
        ("http://169.254.169.254/", Deny("BlockedAddress")),
        ("http://[::1]/", Deny("BlockedAddress")),
        ("http://[::ffff:127.0.0.1]/", Deny("BlockedAddress")),
        ("https://127.0.0.1/", Deny("HostNotAllowed")),
    ];
    run(&policy, &cases);
}

#[test]
fn check_ip_blocks_non_public_addresses_and_honours_exemptions() {
    let plain = any_host();
    let exempt = policy(&[], &["127.0.0.0/8", "10.1.2.3"]);
    let cases: &[(&str, bool, bool)] = &[
        // (address, allowed by plain, allowed with exemptions)
        ("8.8.8.8", true, true),
        ("2606:4700::1111", true, true),
        ("127.0.0.1", false, true),
        ("127.9.9.9", false, true),
        ("10.1.2.3", false, true),
        ("10.1.2.4", false, false),
        ("10.0.0.1", false, false),
        ("169.254.169.254", false, false),
        ("::1", false, false),
        ("::ffff:127.0.0.1", false, false),
        ("64:ff9b::7f00:1", false, false),
        ("2002:7f00:1::", false, false),
    ];
    for (ip, plain_ok, exempt_ok) in cases {
        let ip: IpAddr = ip.parse().unwrap();
        assert_eq!(plain.check_ip(ip).is_ok(), *plain_ok, "{ip} plain");
        assert_eq!(exempt.check_ip(ip).is_ok(), *exempt_ok, "{ip} exempt");
    }
}

#[test]
fn denials_explain_why_and_how_to_allow() {
    let err = any_host()
        .check_ip("169.254.169.254".parse().unwrap())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "169.254.169.254 is link-local (cloud metadata); add it to allow_private_networks to allow it"
    );
    let err = any_host()
        .check_request(&post("http://[::ffff:127.0.0.1]/"))
        .unwrap_err();
    assert!(
        err.to_string().contains("embeds 127.0.0.1, loopback"),
        "{err}"
    );
    let err = policy(&[], &[])
        .check_request(&post("https://evil.com:8443/"))
        .unwrap_err();
    assert!(err.to_string().contains("allowed_hosts"), "{err}");
    assert!(err.to_string().contains("https://evil.com:8443"), "{err}");
}

#[test]
fn filter_resolved_refuses_a_name_with_any_blocked_address() {
    let plain = any_host();
    let v = |ips: &[&str]| {
        ips.iter()
            .map(|s| s.parse().unwrap())
            .collect::<Vec<IpAddr>>()
    };
    let err = plain
        .filter_resolved("localhost", &v(&["127.0.0.1"]))
        .unwrap_err();
    assert_eq!(kind(&err), "ResolvedToBlocked");
    assert!(
        err.to_string()
            .starts_with("localhost resolved to 127.0.0.1, which is loopback"),
        "{err}"
    );
    let err = plain
        .filter_resolved("mixed.example", &v(&["8.8.8.8", "10.0.0.1"]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            PolicyDenied::ResolvedToBlocked {
                class: IpClass::Private,
                ..
            }
        ),
        "{err}"
    );
    let err = plain.filter_resolved("empty.example", &[]).unwrap_err();
    assert_eq!(kind(&err), "NoAddresses");
    let ok = plain
        .filter_resolved("ok.example", &v(&["8.8.8.8", "2606:4700::1111", "8.8.8.8"]))
        .unwrap();
    assert_eq!(ok, v(&["8.8.8.8", "2606:4700::1111"]));
    let exempt = policy(&[], &["127.0.0.0/8"]);
    assert_eq!(
        exempt
            .filter_resolved("localhost", &v(&["127.0.0.1"]))
            .unwrap(),
        v(&["127.0.0.1"])
    );
    assert!(
        exempt
            .filter_resolved("localhost", &v(&["127.0.0.1", "::1"]))
            .is_err()
    );
}
