//! Headers, methods and the `Destination` a checked request yields.

use super::*;

#[test]
fn plugins_may_not_set_host_owned_or_malformed_headers() {
    let policy = any_host();
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("content-type", "application/json", None),
        ("authorization", "Bearer {{secret:TOKEN}}", None),
        ("x-tab", "a\tb", None),
        ("x-utf8", "café", None),
        ("Host", "127.0.0.1", Some("ForbiddenHeader")),
        ("content-length", "0", Some("ForbiddenHeader")),
        ("Transfer-Encoding", "chunked", Some("ForbiddenHeader")),
        ("CONNECTION", "close", Some("ForbiddenHeader")),
        ("keep-alive", "timeout=5", Some("ForbiddenHeader")),
        ("proxy-authorization", "x", Some("ForbiddenHeader")),
        ("Proxy-Authenticate", "x", Some("ForbiddenHeader")),
        ("proxy-connection", "x", Some("ForbiddenHeader")),
        ("TE", "trailers", Some("ForbiddenHeader")),
        ("trailer", "x", Some("ForbiddenHeader")),
        ("upgrade", "h2c", Some("ForbiddenHeader")),
        ("webhook-id", "x", Some("ForbiddenHeader")),
        ("Webhook-Timestamp", "1", Some("ForbiddenHeader")),
        ("webhook-signature", "v1,x", Some("ForbiddenHeader")),
        ("x-evil", "a\r\nHost: 127.0.0.1", Some("InvalidHeader")),
        ("x-evil", "a\nb", Some("InvalidHeader")),
        ("x-evil", "a\0b", Some("InvalidHeader")),
        ("x-evil\r\nHost", "v", Some("InvalidHeader")),
        ("bad name", "v", Some("InvalidHeader")),
        ("", "v", Some("InvalidHeader")),
    ];
    for (name, value, want) in cases {
        let mut req = post("https://example.com/");
        req.headers = vec![(name.to_string(), value.to_string())];
        match (policy.check_request(&req), want) {
            (Result::Ok(_), None) => {}
            (Err(e), Some(k)) => assert_eq!(kind(&e), *k, "{name:?}: {e}"),
            (got, want) => panic!("{name:?}: {value:?}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn methods_outside_allowed_methods_are_refused() {
    let mut spec = PolicySpec {
        allowed_hosts: vec!["https://example.com".into()],
        allowed_methods: Some(vec![Method::Put, Method::Post]),
        ..PolicySpec::default()
    };
    let restricted = EgressPolicy::new(spec.clone()).unwrap();
    spec.allowed_methods = None;
    let all = EgressPolicy::new(spec).unwrap();
    for method in [
        Method::Get,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
    ] {
        let mut req = post("https://example.com/");
        req.method = method;
        let allowed = matches!(method, Method::Put | Method::Post);
        assert_eq!(restricted.check_request(&req).is_ok(), allowed, "{method}");
        assert!(all.check_request(&req).is_ok(), "{method}");
    }
    let err = restricted.check_method(Method::Delete).unwrap_err();
    assert_eq!(
        err.to_string(),
        "method DELETE is not allowed; add \"DELETE\" to allowed_methods to allow it"
    );
}

#[test]
fn destination_exposes_normalised_parts_and_never_prints_the_path() {
    let dest = any_host()
        .check_request(&post(
            "https://[2606:4700::1111]:8443/secret-path?token=abc",
        ))
        .unwrap();
    assert_eq!(dest.ip_literal(), Some("2606:4700::1111".parse().unwrap()));
    assert!(dest.is_ip_literal());
    assert_eq!(dest.host(), "2606:4700::1111");
    assert_eq!(dest.to_string(), "https://[2606:4700::1111]:8443");
    assert_eq!(
        format!("{dest:?}"),
        "Destination(https://[2606:4700::1111]:8443)"
    );
    let dest = any_host()
        .check_request(&post("https://Example.COM/"))
        .unwrap();
    assert!(!dest.is_ip_literal());
    assert_eq!(dest.url().as_str(), "https://example.com/");
}
