//! Secret substitution: where placeholders are filled, for which hosts, and
//! that no denial ever carries a secret value.

use super::*;
use crate::policy::Destination;

const TOKEN: &str = "tok-SUPER-s3cret";
const PATH: &str = "T000/B000/XXXX";
const WILD: &str = "wild-VALUE-42";
const CRLF: &str = "line1\r\nHost: evil";
const NESTED: &str = "{{secret:TOKEN}}";

fn secret_policy() -> EgressPolicy {
    EgressPolicy::new(PolicySpec {
        allowed_hosts: vec![
            "https://api.allowed.com".into(),
            "https://*.wild.com".into(),
        ],
        secrets: secrets(&[
            ("TOKEN", TOKEN, &["api.allowed.com"]),
            ("PATH", PATH, &["API.Allowed.com."]),
            ("WILD", WILD, &["*.wild.com"]),
            ("CRLF", CRLF, &["api.allowed.com"]),
            ("NESTED", NESTED, &["api.allowed.com"]),
        ]),
        ..PolicySpec::default()
    })
    .unwrap()
}

fn checked(policy: &EgressPolicy, req: &OutboundRequest) -> Destination {
    policy
        .check_request(req)
        .expect("request passes the policy")
}

#[test]
fn placeholders_are_filled_in_path_query_headers_and_body() {
    let policy = secret_policy();
    let req = OutboundRequest {
        method: Method::Post,
        url: "https://api.allowed.com/services/{{secret:PATH}}?key={{secret:TOKEN}}#frag".into(),
        headers: vec![
            ("authorization".into(), "Bearer {{secret:TOKEN}}".into()),
            ("x-plain".into(), "no placeholders".into()),
        ],
        body: br#"{"token":"{{secret:TOKEN}}","again":"{{secret:TOKEN}}"}"#.to_vec(),
    };
    let dest = checked(&policy, &req);
    let filled = policy.fill_secrets(&req, &dest).unwrap();
    assert_eq!(
        filled.url,
        format!("https://api.allowed.com/services/{PATH}?key={TOKEN}")
    );
    assert_eq!(
        filled.headers[0],
        ("authorization".into(), format!("Bearer {TOKEN}"))
    );
    assert_eq!(
        filled.headers[1],
        ("x-plain".into(), "no placeholders".into())
    );
    assert_eq!(
        String::from_utf8(filled.body).unwrap(),
        format!(r#"{{"token":"{TOKEN}","again":"{TOKEN}"}}"#)
    );
    assert_eq!(filled.method, Method::Post);

    let masked = policy.mask_secrets(&req, &dest).unwrap();
    assert_eq!(
        masked.url,
        "https://api.allowed.com/services/{{secret:PATH}}?key={{secret:TOKEN}}"
    );
    assert_eq!(masked.headers, req.headers);
    assert_eq!(masked.body, req.body);
}

#[test]
fn values_stay_one_value_in_paths_queries_json_and_form_bodies() {
    // A password with every character that means something somewhere.
    const ODD: &str = r#"p+q/r?s#t&u=v"w\x y%41"#;
    const LINES: &str = "line1\nline2 \"quoted\"\u{7}";
    let policy = EgressPolicy::new(PolicySpec {
        allowed_hosts: vec!["https://api.allowed.com".into()],
        secrets: secrets(&[
            ("ODD", ODD, &["api.allowed.com"]),
            ("LINES", LINES, &["api.allowed.com"]),
        ]),
        ..PolicySpec::default()
    })
    .unwrap();
    let fill = |req: &OutboundRequest| {
        let dest = checked(&policy, req);
        policy.fill_secrets(req, &dest).unwrap()
    };
    let decode = |s: &str| percent_encoding_decode(s);

    // The path keeps `/` (it may be meant, as in a Slack webhook path);
    // nothing else of the value escapes its place.
    let filled = fill(&post(
        "https://api.allowed.com/a/{{secret:ODD}}/z?k={{secret:ODD}}&n=1",
    ));
    let url = url::Url::parse(&filled.url).unwrap();
    let segments: Vec<&str> = url.path_segments().unwrap().collect();
    assert_eq!(segments.len(), 4, "{}", filled.url);
    assert_eq!(decode(&segments[1..3].join("/")), ODD, "{}", filled.url);
    assert_eq!(segments[3], "z");
    let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert_eq!(
        pairs,
        [("k".into(), ODD.into()), ("n".into(), "1".into())],
        "{}",
        filled.url
    );
    assert_eq!(url.fragment(), None);

    // JSON bodies (any +json type, any parameters) stay JSON.
    for content_type in [
        "application/json",
        "Application/JSON; charset=utf-8",
        "application/vnd.api+json",
    ] {
        let mut req = post("https://api.allowed.com/");
        req.headers = vec![("Content-Type".into(), content_type.into())];
        req.body = br#"{"password":"{{secret:ODD}}","note":"{{secret:LINES}}"}"#.to_vec();
        let body: serde_json::Value = serde_json::from_slice(&fill(&req).body)
            .unwrap_or_else(|e| panic!("{content_type}: {e}"));
        assert_eq!(body, serde_json::json!({"password": ODD, "note": LINES}));
    }

    // Form bodies stay forms.
    let mut req = post("https://api.allowed.com/");
    req.headers = vec![(
        "content-type".into(),
        "application/x-www-form-urlencoded".into(),
    )];
    req.body = b"user=ada&pass={{secret:ODD}}".to_vec();
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&fill(&req).body)
        .into_owned()
        .collect();
    assert_eq!(
        form,
        [("user".into(), "ada".into()), ("pass".into(), ODD.into())]
    );

    // Headers and other bodies get the value as it is.
    let mut req = post("https://api.allowed.com/");
    req.headers = vec![
        ("content-type".into(), "text/plain".into()),
        ("x-key".into(), "{{secret:ODD}}".into()),
    ];
    req.body = b"{{secret:LINES}}".to_vec();
    let filled = fill(&req);
    assert_eq!(filled.headers[1].1, ODD);
    assert_eq!(filled.body, LINES.as_bytes());
}

#[test]
fn an_answer_quoting_the_request_back_is_redacted_in_every_form() {
    const ODD: &str = r#"p+q/r?s#"w"#;
    let policy = EgressPolicy::new(PolicySpec {
        allowed_hosts: vec!["https://api.allowed.com".into()],
        secrets: secrets(&[
            ("TOKEN", TOKEN, &["api.allowed.com"]),
            ("ODD", ODD, &["api.allowed.com"]),
            ("UNUSED", WILD, &["api.allowed.com"]),
        ]),
        ..PolicySpec::default()
    })
    .unwrap();
    let mut req = post("https://api.allowed.com/x?k={{secret:ODD}}");
    req.headers = vec![("authorization".into(), "Bearer {{secret:TOKEN}}".into())];
    let dest = checked(&policy, &req);
    let filled = policy.fill_secrets(&req, &dest).unwrap();
    let json_odd = serde_json::Value::from(ODD).to_string();
    let answer = format!(
        "bad token Bearer {TOKEN} for {} (parsed {}), {json_odd}, other {WILD}",
        filled.url, ODD
    );
    let redacted = policy.redact_secrets(&answer, false);
    // Every secret of the plugin, the request's or not.
    assert_eq!(
        redacted,
        "bad token Bearer {{secret:TOKEN}} for https://api.allowed.com/x?k={{secret:ODD}} (parsed {{secret:ODD}}), \"{{secret:ODD}}\", other {{secret:UNUSED}}"
    );
    // An answer cut inside a secret loses the part shown.
    let cut = format!("token {}", &TOKEN[..7]);
    assert_eq!(policy.redact_secrets(&cut, true), "token ");
    assert_eq!(policy.redact_secrets(&cut, false), cut);
}

/// `s` with `%XX` escapes decoded.
fn percent_encoding_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn filling_is_single_pass_and_leaves_binary_bodies_alone() {
    let policy = secret_policy();
    let mut req = post("https://api.allowed.com/");
    req.headers = vec![("x-nested".into(), "{{secret:NESTED}}".into())];
    req.body = vec![0xff, 0xfe, b'{', b'{'];
    let dest = checked(&policy, &req);
    let filled = policy.fill_secrets(&req, &dest).unwrap();
    assert_eq!(filled.headers[0].1, NESTED);
    assert_eq!(filled.body, req.body);
}

#[test]
fn secrets_go_only_where_they_are_allowed() {
    let policy = secret_policy();
    // (url, header value, body, expected denial or None)
    let cases: &[(&str, &str, &str, Option<&str>)] = &[
        ("https://a.wild.com/", "{{secret:WILD}}", "", None),
        ("https://a.b.wild.com/{{secret:WILD}}", "", "", None),
        (
            "https://a.wild.com/",
            "Bearer {{secret:TOKEN}}",
            "",
            Some("SecretNotAllowedForHost"),
        ),
        (
            "https://a.wild.com/?t={{secret:TOKEN}}",
            "",
            "",
            Some("SecretNotAllowedForHost"),
        ),
        (
            "https://a.wild.com/",
            "",
            "{{secret:PATH}}",
            Some("SecretNotAllowedForHost"),
        ),
        (
            "https://api.allowed.com/",
            "{{secret:WILD}}",
            "",
            Some("SecretNotAllowedForHost"),
        ),
        (
            "https://api.allowed.com/",
            "{{secret:NOPE}}",
            "",
            Some("UnknownSecret"),
        ),
        (
            "https://api.allowed.com/",
            "",
            "{{secret:token}}",
            Some("UnknownSecret"),
        ),
        (
            "https://api.allowed.com/",
            "{{secret:}}",
            "",
            Some("MalformedPlaceholder"),
        ),
        (
            "https://api.allowed.com/",
            "",
            "{{secret:TOKEN",
            Some("MalformedPlaceholder"),
        ),
        (
            "https://api.allowed.com/{{secret:TOKEN}",
            "",
            "",
            Some("MalformedPlaceholder"),
        ),
        (
            "https://api.allowed.com/",
            "{{secret:CRLF}}",
            "",
            Some("SecretValueInvalid"),
        ),
        (
            "https://api.allowed.com/{{secret:CRLF}}",
            "",
            "",
            Some("SecretValueInvalid"),
        ),
        ("https://api.allowed.com/", "", "{{secret:CRLF}}", None),
    ];
    let values = [TOKEN, PATH, WILD, CRLF];
    for (url, header, body, want) in cases {
        let mut req = post(url);
        req.headers = vec![("x-h".into(), header.to_string())];
        req.body = body.as_bytes().to_vec();
        let dest = checked(&policy, &req);
        for mode in ["fill", "mask"] {
            let got = match mode {
                "fill" => policy.fill_secrets(&req, &dest),
                _ => policy.mask_secrets(&req, &dest),
            };
            match (got, want) {
                (Result::Ok(_), None) => {}
                (Err(e), Some(k)) => {
                    assert_eq!(kind(&e), *k, "{mode} {url} {header} {body}: {e}");
                    let shown = format!("{e} {e:?}");
                    for v in values {
                        assert!(!shown.contains(v), "{shown} leaks a secret value");
                    }
                    if let PolicyDenied::SecretNotAllowedForHost { secret, .. } = &e {
                        assert!(
                            shown.contains(&format!("secrets.{secret}.hosts")),
                            "{shown}"
                        );
                    }
                }
                (got, want) => panic!("{mode} {url}: got {got:?}, want {want:?}"),
            }
        }
    }
}

#[test]
fn placeholders_may_not_move_the_destination() {
    let policy = secret_policy();
    // The runtime refuses these already; the policy refuses them again.
    for url in [
        "https://{{secret:TOKEN}}.allowed.com/",
        "https://api.allowed.com:{{secret:TOKEN}}/",
        "https://{{secret:TOKEN}}@api.allowed.com/",
    ] {
        let req = post(url);
        let got = policy
            .check_request(&req)
            .and_then(|dest| policy.fill_secrets(&req, &dest));
        let err = got.expect_err(url);
        let reason = kind(&err);
        assert!(
            ["PlaceholderInAuthority", "InvalidUrl", "UserInfo"].contains(&reason),
            "{url}: {err}"
        );
    }
    // A destination checked for one URL cannot be used to fill another.
    let dest = checked(&policy, &post("https://api.allowed.com/"));
    let other = post("https://a.wild.com/{{secret:TOKEN}}");
    let err = policy.fill_secrets(&other, &dest).unwrap_err();
    assert_eq!(kind(&err), "DestinationMismatch");
}

#[test]
fn the_policy_and_its_spec_never_print_secret_values() {
    let policy = secret_policy();
    let shown = format!("{policy:?}");
    for v in [TOKEN, PATH, WILD] {
        assert!(!shown.contains(v), "{shown}");
    }
}

/// A stand-in for a token source: a value that can change or be missing,
/// counting the receivers' refusals.
#[derive(Default)]
struct FakeToken {
    value: std::sync::Mutex<Option<String>>,
    /// Values it had before, as a token source remembers the last one.
    before: std::sync::Mutex<Vec<String>>,
    rejected: std::sync::atomic::AtomicUsize,
}

impl crate::policy::LiveSecret for FakeToken {
    fn current(&self) -> Result<crate::model::Secret, crate::policy::Unavailable> {
        match self.value.lock().unwrap().clone() {
            Some(value) if value == "arriving" => Err(crate::policy::Unavailable::Arriving),
            Some(value) => Ok(crate::model::Secret::new(value)),
            None => Err(crate::policy::Unavailable::Missing("no token yet".into())),
        }
    }

    fn rejected(&self) {
        self.rejected
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn recent(&self) -> Vec<crate::model::Secret> {
        let before = self.before.lock().unwrap().clone();
        self.current()
            .into_iter()
            .chain(before.into_iter().map(crate::model::Secret::new))
            .collect()
    }
}

/// A receiver quoting a token that was renewed, or expired, while its
/// answer was on the way: the value sent is hidden all the same.
/// A policy whose `TOKEN` is `token`, and a request carrying it.
fn live_token_policy(
    token: &std::sync::Arc<FakeToken>,
) -> (EgressPolicy, OutboundRequest, Destination) {
    let mut spec = PolicySpec {
        allowed_hosts: vec!["https://api.allowed.com".into()],
        secrets: secrets(&[("TOKEN", TOKEN, &["api.allowed.com"])]),
        ..PolicySpec::default()
    };
    spec.secrets.get_mut("TOKEN").unwrap().value = crate::policy::SecretValue::Live(token.clone());
    let policy = EgressPolicy::new(spec).unwrap();
    let mut req = post("https://api.allowed.com/v1");
    req.headers = vec![("authorization".into(), "Bearer {{secret:TOKEN}}".into())];
    let dest = checked(&policy, &req);
    (policy, req, dest)
}

#[test]
fn a_token_renewed_or_expired_in_flight_is_redacted() {
    let token = std::sync::Arc::new(FakeToken::default());
    let (policy, req, dest) = live_token_policy(&token);
    *token.value.lock().unwrap() = Some("tok-1".into());
    assert_eq!(
        policy.fill_secrets(&req, &dest).unwrap().headers[0].1,
        "Bearer tok-1"
    );
    // Renewed while the request was out.
    *token.value.lock().unwrap() = Some("tok-2".into());
    token.before.lock().unwrap().push("tok-1".into());
    assert_eq!(
        policy.redact_secrets("invalid token tok-1", false),
        "invalid token {{secret:TOKEN}}"
    );
    // Expired, with renewal failing: no current value, the last one kept.
    *token.value.lock().unwrap() = None;
    token.before.lock().unwrap().push("tok-2".into());
    assert_eq!(
        policy.redact_secrets("tok-2 / tok-1", false),
        "{{secret:TOKEN}} / {{secret:TOKEN}}"
    );
}

#[test]
fn a_live_secret_is_read_at_every_fill_and_its_absence_is_transient() {
    let token = std::sync::Arc::new(FakeToken::default());
    let (policy, req, dest) = live_token_policy(&token);

    let denied = policy.fill_secrets(&req, &dest).unwrap_err();
    assert_eq!(kind(&denied), "SecretUnavailable");
    assert!(denied.is_transient());
    assert_eq!(
        denied.to_string(),
        "secret TOKEN is not available: no token yet"
    );
    *token.value.lock().unwrap() = Some("arriving".into());
    let denied = policy.fill_secrets(&req, &dest).unwrap_err();
    assert_eq!(kind(&denied), "SecretArriving");
    assert!(denied.is_transient());
    *token.value.lock().unwrap() = None;
    // A dry run shows the request without needing the value.
    let masked = policy.mask_secrets(&req, &dest).unwrap();
    assert_eq!(masked.headers[0].1, "Bearer {{secret:TOKEN}}");

    for value in ["live-1", "live-2"] {
        *token.value.lock().unwrap() = Some(value.into());
        let filled = policy.fill_secrets(&req, &dest).unwrap();
        assert_eq!(filled.headers[0].1, format!("Bearer {value}"));
    }
    *token.value.lock().unwrap() = Some("bad\r\nvalue".into());
    let denied = policy.fill_secrets(&req, &dest).unwrap_err();
    assert_eq!(kind(&denied), "SecretValueInvalid");
    assert!(!denied.is_transient());

    // A 401 reaches the token only when the request named it.
    assert!(policy.report_rejected(&req));
    assert!(!policy.report_rejected(&post("https://api.allowed.com/v1")));
    assert_eq!(token.rejected.load(std::sync::atomic::Ordering::SeqCst), 1);
}
