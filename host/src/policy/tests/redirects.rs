//! Redirect hops: the hop limit, relative resolution, and the same URL
//! checks as a request on every new location.

use super::*;

fn redirecting(follow: u32) -> EgressPolicy {
    EgressPolicy::new(PolicySpec {
        allowed_hosts: vec![
            "https://api.allowed.com".into(),
            "http://api.allowed.com".into(),
            "https://*.wild.com".into(),
        ],
        follow_redirects: follow,
        ..PolicySpec::default()
    })
    .unwrap()
}

#[test]
fn redirects_are_checked_like_requests() {
    let policy = redirecting(2);
    let from = policy
        .check_request(&post("https://api.allowed.com/v1/hooks/1?x=y"))
        .unwrap();
    let cases: &[(&str, u32, Result<&str, &str>)] = &[
        ("/next", 1, Ok("https://api.allowed.com/next")),
        (
            "../other?q=1",
            1,
            Ok("https://api.allowed.com/v1/other?q=1"),
        ),
        ("2", 2, Ok("https://api.allowed.com/v1/hooks/2")),
        ("https://a.wild.com/x#frag", 1, Ok("https://a.wild.com/x")),
        (
            "HTTP://API.ALLOWED.COM:80/",
            1,
            Ok("http://api.allowed.com/"),
        ),
        ("/next", 3, Err("TooManyRedirects")),
        (
            "http://169.254.169.254/latest/meta-data/",
            1,
            Err("BlockedAddress"),
        ),
        ("http://127.1:8080/", 1, Err("BlockedAddress")),
        ("//127.0.0.1/admin", 1, Err("BlockedAddress")),
        ("//[::ffff:10.0.0.1]/", 1, Err("BlockedAddress")),
        ("https://evil.com/", 1, Err("HostNotAllowed")),
        ("https://api.allowed.com:8443/", 1, Err("HostNotAllowed")),
        ("https://wild.com/", 1, Err("HostNotAllowed")),
        ("https://api.allowed.com@127.0.0.1/", 1, Err("UserInfo")),
        ("\\\\127.0.0.1\\", 1, Err("Backslash")),
        ("/a\r\nSet-Cookie: x", 1, Err("ControlCharacter")),
        ("file:///etc/passwd", 1, Err("SchemeNotAllowed")),
        ("gopher://api.allowed.com/", 1, Err("SchemeNotAllowed")),
        ("http://[fe80::1%25eth0]/", 1, Err("InvalidUrl")),
    ];
    for (location, hop, want) in cases {
        let got = policy.check_redirect(&from, location, *hop);
        match (want, got) {
            (Ok(url), Result::Ok((dest, got_url))) => {
                assert_eq!(got_url.as_str(), *url, "{location}");
                assert_eq!(dest.url().as_str(), *url, "{location}");
            }
            (Err(k), Err(e)) => assert_eq!(kind(&e), *k, "{location}: {e}"),
            (want, got) => panic!("{location} hop {hop}: want {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn redirects_are_refused_unless_enabled() {
    let policy = redirecting(0);
    let from = policy
        .check_request(&post("https://api.allowed.com/"))
        .unwrap();
    let err = policy
        .check_redirect(&from, "https://api.allowed.com/next", 1)
        .unwrap_err();
    assert_eq!(kind(&err), "TooManyRedirects");
    assert!(err.to_string().contains("follow_redirects = 0"), "{err}");
    assert_eq!(policy.follow_redirects(), 0);
}
