//! The host's checks on what a plugin returns, so that a unit test fails
//! where the host would refuse: [`validate`] for one request,
//! [`validate_decision`] for a whole decision (request count, the
//! `refused` rule, every request), as `host/src/runtime/output.rs` and the
//! egress policy (`host/src/policy`) apply them.
//!
//! The checks use the host's default limits (see the constants below);
//! an operator may set `max_requests`, `max_body_bytes` and `max_headers`
//! per plugin. Not checked here, because they depend on the operator's
//! configuration: `allowed_hosts`, `allowed_methods`, the private-network
//! block, and whether a named secret exists or may go to that host.
//!
//! URLs are checked without a URL library: the rules below follow the URL
//! standard's host parsing (as the host's `url` crate does) for what a
//! plugin realistically builds. Non-ASCII host names are accepted as the
//! host's IDNA mapping would accept them, without applying the mapping.
//!
//! Everything here is plain Rust, on every target: a plugin may call
//! [`validate`] at run time too, e.g. to skip an event whose data would
//! make an invalid request.

use std::fmt;

use crate::{Decision, Event, Request};

/// Most requests one decision may hold (the default `max_requests`).
pub const MAX_REQUESTS: usize = 16;
/// Largest request body, in bytes (the default `max_body_bytes`).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Longest URL, in bytes.
pub const MAX_URL_BYTES: usize = 8 * 1024;
/// Most headers on one request (the default `max_headers`).
pub const MAX_HEADERS: usize = 64;
/// Most bytes of header names and values on one request.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Longest skip reason or error message the host keeps, in bytes.
pub const MAX_REASON_BYTES: usize = 4 * 1024;

/// Headers a plugin may not set (compared case-insensitively): hop-by-hop
/// and framing headers, and the signing headers the host adds itself.
pub const FORBIDDEN_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "http2-settings",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// The text that opens a secret placeholder.
pub const PLACEHOLDER_OPEN: &str = "{{secret:";

/// Why the host would not accept a decision, with the error kind it
/// records (`wasmhook run` prints the kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// The decision breaks the contract (kind `invalid_output`).
    InvalidOutput(String),
    /// The event's own data holds `{{secret:` and so does a request: the
    /// host fills nothing and sends nothing (kind `refused`).
    Refused(String),
}

impl Rejection {
    /// The error kind the host records: `invalid_output` or `refused`.
    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::InvalidOutput(_) => "invalid_output",
            Rejection::Refused(_) => "refused",
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        match self {
            Rejection::InvalidOutput(m) | Rejection::Refused(m) => m,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind(), self.message())
    }
}

impl std::error::Error for Rejection {}

/// Whether `name` is a valid secret name: `[A-Za-z0-9_]+`.
pub fn is_secret_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Truncate to at most `max` bytes on a char boundary, marking the cut as
/// the host does (`… (N bytes truncated)`).
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes truncated)", &s[..end], s.len() - end)
}

/// Whether the event's own data (id, name, user id, any key or value of
/// its properties) holds `{{secret:`, as the host decides it.
pub fn event_holds_placeholder(event: &Event) -> bool {
    // The host looks at the properties as it re-serializes them, where
    // `\u007b` and the like are decoded: so does this.
    let properties = match serde_json::from_str::<serde_json::Value>(&event.properties) {
        Ok(value) => value.to_string(),
        Err(_) => event.properties.clone(),
    };
    [&event.id, &event.name, &properties]
        .into_iter()
        .chain(&event.user_id)
        .any(|text| text.contains(PLACEHOLDER_OPEN))
}

/// Whether a request holds `{{secret:` where the host would fill one: the
/// URL, a header value, or a UTF-8 body.
pub fn request_holds_placeholder(r: &Request) -> bool {
    r.url.contains(PLACEHOLDER_OPEN)
        || r.headers.iter().any(|(_, v)| v.contains(PLACEHOLDER_OPEN))
        || std::str::from_utf8(&r.body).is_ok_and(|b| b.contains(PLACEHOLDER_OPEN))
}

/// Check `decision` as the host checks what `transform` returned for
/// `event`: at most [`MAX_REQUESTS`] requests, then the `refused` rule,
/// then [`validate`] on each request. A skip always passes.
pub fn validate_decision(event: &Event, decision: &Decision) -> Result<(), Rejection> {
    let Decision::Fire(requests) = decision else {
        return Ok(());
    };
    if requests.len() > MAX_REQUESTS {
        return Err(Rejection::InvalidOutput(format!(
            "the plugin returned {} requests; at most {MAX_REQUESTS} are allowed per event (max_requests)",
            requests.len()
        )));
    }
    if event_holds_placeholder(event)
        && let Some(i) = requests.iter().position(request_holds_placeholder)
    {
        return Err(Rejection::Refused(format!(
            "request {i} holds a secret placeholder, and the event's own data holds the text \
             {PLACEHOLDER_OPEN:?}: the host fills no placeholder it cannot tell from event text"
        )));
    }
    for (i, r) in requests.iter().enumerate() {
        validate(r).map_err(|msg| {
            Rejection::InvalidOutput(truncate(&format!("request {i}: {msg}"), MAX_REASON_BYTES))
        })?;
    }
    Ok(())
}

/// Check one request as the host does before sending it: the URL (see
/// [`validate_url`]), at most [`MAX_HEADERS`] headers of
/// [`MAX_HEADER_BYTES`] in all, valid header names that are not in
/// [`FORBIDDEN_HEADERS`], values without control characters (TAB
/// allowed), a body of at most [`MAX_BODY_BYTES`], and well-formed
/// `{{secret:NAME}}` placeholders in header values and a UTF-8 body.
pub fn validate(r: &Request) -> Result<(), String> {
    validate_url(&r.url)?;
    if r.headers.len() > MAX_HEADERS {
        return Err(format!(
            "{} headers; at most {MAX_HEADERS} are allowed",
            r.headers.len()
        ));
    }
    let header_bytes: usize = r.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Err(format!(
            "headers of {header_bytes} bytes exceed the {MAX_HEADER_BYTES}-byte limit (names and values)"
        ));
    }
    for (name, value) in &r.headers {
        if !is_header_name(name) {
            return Err(format!("invalid header name {:?}", truncate(name, 64)));
        }
        let lower = name.to_ascii_lowercase();
        if FORBIDDEN_HEADERS.contains(&lower.as_str()) {
            return Err(format!(
                "header {lower:?} is set by the host (hop-by-hop, framing or signing header); remove it from the request"
            ));
        }
        if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(format!(
                "invalid value for header {:?} (control characters such as CR/LF are not allowed)",
                truncate(name, 64)
            ));
        }
        check_placeholders(value).map_err(|e| format!("header {:?}: {e}", truncate(name, 64)))?;
    }
    if r.body.len() > MAX_BODY_BYTES {
        return Err(format!(
            "body of {} bytes exceeds the {MAX_BODY_BYTES}-byte limit (max_body_bytes)",
            r.body.len()
        ));
    }
    if let Ok(text) = std::str::from_utf8(&r.body) {
        check_placeholders(text).map_err(|e| format!("body: {e}"))?;
    }
    Ok(())
}

/// An HTTP token (RFC 9110 `tchar`), 1 to 65 535 bytes.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 1 << 16
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Every `{{secret:` must be followed by a name of `[A-Za-z0-9_]` and `}}`.
pub fn check_placeholders(s: &str) -> Result<(), String> {
    let mut rest = s;
    while let Some(at) = rest.find(PLACEHOLDER_OPEN) {
        let after = &rest[at + PLACEHOLDER_OPEN.len()..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if name_len == 0 || !after[name_len..].starts_with("}}") {
            return Err("malformed secret placeholder: expected {{secret:NAME}} with NAME of letters, digits and _".into());
        }
        rest = &after[name_len + 2..];
    }
    Ok(())
}

/// Check a request URL as the host and its egress policy do: at most
/// [`MAX_URL_BYTES`]; no whitespace, control character or backslash;
/// well-formed placeholders, none in the scheme, host or port; an
/// absolute `http` or `https` URL with a host; no `user:pass@`; no IPv6
/// zone id; a port of at most 65535; a host name of characters an HTTP
/// client accepts; a numeric host that is a valid IPv4 address.
pub fn validate_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL_BYTES {
        return Err(format!(
            "URL of {} bytes exceeds the {MAX_URL_BYTES}-byte limit",
            url.len()
        ));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("URL contains whitespace or control characters".into());
    }
    if url.contains('\\') {
        return Err("URL contains a backslash (refused by the egress policy)".into());
    }
    check_placeholders(url).map_err(|e| format!("URL: {e}"))?;
    let shown = || truncate(url, 256);
    let Some(colon) = url.find(':') else {
        return Err(format!("URL {:?} is not an absolute URL", shown()));
    };
    let scheme = &url[..colon];
    let mut chars = scheme.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        || !chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return Err(format!("URL {:?} is not an absolute URL", shown()));
    }
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "URL scheme {scheme:?} is not allowed; use http or https"
        ));
    }
    let rest = url[colon + 1..].trim_start_matches('/');
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if authority.contains("{{") {
        return Err("secret placeholders are not allowed in the URL's scheme, host or port".into());
    }
    if authority.contains('@') {
        return Err(
            "URL holds credentials (user:pass@), refused by the egress policy; send them in a header"
                .into(),
        );
    }
    let (host, port) = split_host_port(authority)?;
    if let Some(port) = port
        && !port.is_empty()
        && !(port.bytes().all(|b| b.is_ascii_digit())
            && port
                .trim_start_matches('0')
                .parse::<u32>()
                .map_or(port.trim_start_matches('0').is_empty(), |p| p <= 65535))
    {
        return Err(format!("URL {:?} has an invalid port", shown()));
    }
    if host.is_empty() {
        return Err(format!("URL {:?} has no host", shown()));
    }
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').unwrap_or(inner);
        if inner.contains('%') {
            return Err("URL has an IPv6 zone id, refused by the egress policy".into());
        }
        return inner
            .parse::<std::net::Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| format!("URL {:?} has an invalid IPv6 address", shown()));
    }
    check_domain(host).map_err(|why| format!("URL {:?}: {why}", shown()))
}

/// The host and the port text (after `:`) of an authority.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), String> {
    if authority.starts_with('[') {
        let Some(end) = authority.find(']') else {
            return Err("URL has an unclosed IPv6 address".into());
        };
        let (host, rest) = authority.split_at(end + 1);
        return match rest.strip_prefix(':') {
            Some(port) => Ok((host, Some(port))),
            None if rest.is_empty() => Ok((host, None)),
            None => Err("URL has text after its IPv6 address".into()),
        };
    }
    Ok(match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

/// A domain (or IPv4 address) as the URL standard parses it, restricted to
/// what the host's HTTP client accepts.
fn check_domain(raw: &str) -> Result<(), String> {
    let decoded = percent_decode(raw).ok_or("the host is not valid UTF-8 once percent-decoded")?;
    let host = decoded.to_ascii_lowercase();
    if let Some(c) = host
        .chars()
        .find(|&c| c.is_ascii() && !(c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=".contains(c)))
    {
        return Err(format!(
            "the host has a character an HTTP client refuses ({c:?})"
        ));
    }
    if host.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("the host has whitespace or control characters".into());
    }
    let labels: Vec<&str> = host.split('.').collect();
    let last = match labels.as_slice() {
        [.., last, ""] if labels.len() > 1 => last,
        [.., last] => last,
        [] => "",
    };
    if ends_in_number(last) && !is_ipv4(&host) {
        return Err("the host is not a valid IPv4 address".into());
    }
    Ok(())
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && b[i + 1].is_ascii_hexdigit()
            && b[i + 2].is_ascii_hexdigit()
        {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The URL standard's "ends in a number": the last label is decimal
/// digits, or `0x` and hex digits.
fn ends_in_number(label: &str) -> bool {
    if !label.is_empty() && label.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    label
        .strip_prefix("0x")
        .is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The URL standard's IPv4 parser: up to 4 parts, each decimal, `0x` hex
/// or `0` octal; every part but the last at most 255, the last filling the
/// remaining bytes.
fn is_ipv4(host: &str) -> bool {
    let mut parts: Vec<&str> = host.split('.').collect();
    if parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    if parts.is_empty() || parts.len() > 4 {
        return false;
    }
    let mut numbers = Vec::with_capacity(parts.len());
    for part in &parts {
        let parsed = if let Some(hex) = part.strip_prefix("0x") {
            if hex.is_empty() {
                Some(0)
            } else {
                u64::from_str_radix(hex, 16).ok()
            }
        } else if part.len() > 1 && part.starts_with('0') {
            u64::from_str_radix(&part[1..], 8).ok()
        } else if part.is_empty() {
            None
        } else {
            part.parse::<u64>().ok()
        };
        // Digits only (from_str_radix accepts a sign).
        let digits_only = part
            .trim_start_matches("0x")
            .bytes()
            .all(|b| b.is_ascii_hexdigit());
        match parsed {
            Some(n) if digits_only => numbers.push(n),
            _ => return false,
        }
    }
    let (last, init) = numbers.split_last().expect("at least one part");
    init.iter().all(|&n| n <= 255) && *last < 256u64.pow(5 - numbers.len() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Method, Request};

    fn fire(requests: Vec<Request>) -> Decision {
        Decision::Fire(requests)
    }

    #[test]
    fn urls_the_host_accepts() {
        for ok in [
            "https://api.example.com/v1/x",
            "http://example.com",
            "HTTPS://Example.COM:8443/a?b=c#d",
            "https://hooks.slack.com/services/{{secret:SLACK_PATH}}",
            "https://graph.facebook.com/me?access_token={{secret:TOKEN}}",
            "http://127.0.0.1:9000/hook",
            "http://[::1]:8080/x",
            "https://example.com:/x",
            "https://bücher.example/",
            "https://a_b.example.com/{x}",
            "https://example.com/a%20b",
        ] {
            assert_eq!(validate_url(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn urls_the_host_refuses() {
        for (bad, why) in [
            ("not a url", "whitespace"),
            ("/relative/path", "absolute"),
            ("example.com/x", "absolute"),
            ("ftp://example.com/x", "scheme"),
            ("file:///etc/passwd", "scheme"),
            ("data:text/plain,hi", "scheme"),
            ("https://exa\nmple.com", "control"),
            ("https://example.com/\u{a0}", "whitespace"),
            ("https://example.com\\@evil.com/", "backslash"),
            ("https://{{secret:HOST}}/x", "host"),
            ("https://example.com:{{secret:PORT}}/x", "host"),
            ("https://example.com/{{secret:}}", "malformed"),
            ("https://example.com/{{secret:A", "malformed"),
            ("https://example.com/{{secret:A-B}}", "malformed"),
            ("https://user:pass@example.com/", "credentials"),
            ("https://@example.com/", "credentials"),
            ("https://example.com:99999/", "port"),
            ("https://example.com:8o/", "port"),
            ("https://[fe80::1%25eth0]/", "zone"),
            ("https://[nope]/", "IPv6"),
            ("https://", "no host"),
            ("https://:80/", "no host"),
            ("http://a\"b.example/", "refuses"),
            ("http://a`b.example/", "refuses"),
            ("http://a%20b.example/", "refuses"),
            ("http://a<b/", "refuses"),
            ("http://999.1.1.1/", "IPv4"),
            ("http://1.2.3.4.5/", "IPv4"),
            ("http://example.09/", "IPv4"),
        ] {
            let err = validate_url(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        let long = format!("https://example.com/{}", "a".repeat(9000));
        assert!(validate_url(&long).unwrap_err().contains("limit"));
        // Numeric hosts the URL standard reads as IPv4 are fine.
        // So are extra or missing slashes, as the URL standard reads them.
        for ok in [
            "http://0x7f.1/",
            "http://2130706433/",
            "http://1.2.3.4./",
            "https:///x",
            "https:example.com",
        ] {
            assert_eq!(validate_url(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn header_rules() {
        let base = || Request::post("https://example.com/");
        assert_eq!(validate(&base().header("X-Ok", "fine\tstill")), Ok(()));
        let err = validate(&base().header("x-bad", "a\r\nInjected: 1")).unwrap_err();
        assert!(err.contains("x-bad") && err.contains("CR/LF"), "{err}");
        for name in ["bad name", "", "a:b", "é"] {
            let err = validate(&base().header(name, "v")).unwrap_err();
            assert!(err.contains("header name"), "{name}: {err}");
        }
        for name in [
            "Host",
            "content-length",
            "Transfer-Encoding",
            "CONNECTION",
            "expect",
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            "keep-alive",
            "te",
        ] {
            let err = validate(&base().header(name, "x")).unwrap_err();
            assert!(err.contains("set by the host"), "{name}: {err}");
        }
        let many = (0..65).fold(base(), |r, i| r.header(format!("x-{i}"), "v"));
        assert!(validate(&many).unwrap_err().contains("at most 64"));
        let big = base().header("x-big", "v".repeat(MAX_HEADER_BYTES));
        assert!(validate(&big).unwrap_err().contains("65536-byte"));
        let err = validate(&base().header("authorization", "Bearer {{secret:A B}}")).unwrap_err();
        assert!(err.contains("malformed"), "{err}");
    }

    #[test]
    fn body_rules() {
        let base = || Request::post("https://example.com/");
        let err = validate(&base().body(vec![b'x'; MAX_BODY_BYTES + 1])).unwrap_err();
        assert!(err.contains("max_body_bytes"), "{err}");
        assert_eq!(validate(&base().body(vec![b'x'; MAX_BODY_BYTES])), Ok(()));
        let err = validate(&base().body("{\"k\":\"{{secret:KEY\"}")).unwrap_err();
        assert!(err.contains("body: malformed"), "{err}");
        // A binary body is not searched for placeholders.
        assert_eq!(validate(&base().body(b"\xff{{secret:".to_vec())), Ok(()));
        let ok = base()
            .bearer_secret("TOKEN")
            .body("{\"key\":\"{{secret:KEY}}\"}");
        assert_eq!(validate(&ok), Ok(()));
    }

    #[test]
    fn decisions_are_checked_like_the_host() {
        let event = Event::new("e");
        assert_eq!(validate_decision(&event, &Decision::skip("x")), Ok(()));
        let good = Request::new(Method::Get, "https://a.example/");
        let seventeen = fire(vec![good.clone(); 17]);
        let err = validate_decision(&event, &seventeen).unwrap_err();
        assert_eq!(err.kind(), "invalid_output");
        assert!(err.message().contains("17 requests"), "{err}");
        let second_bad = fire(vec![good.clone(), Request::get("gopher://b")]);
        let err = validate_decision(&event, &second_bad).unwrap_err();
        assert!(err.message().starts_with("request 1: "), "{err}");
    }

    #[test]
    fn the_refused_rule() {
        let with_secret = Request::get("https://a.example/").bearer_secret("TOKEN");
        let plain = Request::get("https://a.example/");
        let decision = fire(vec![plain.clone(), with_secret.clone()]);
        for event in [
            Event::new("e").with_id("{{secret:X}}"),
            Event::new("{{secret:X}}"),
            Event::new("e").with_user("u{{secret:"),
            Event::new("e").with_props(serde_json::json!({"note": "hi {{secret:TOKEN}}"})),
            Event::new("e").with_props(serde_json::json!({"{{secret:": 1})),
            // Escaped in the JSON text, the same text once parsed.
            Event {
                properties: r#"{"a":"\u007b{secret:X}}"}"#.into(),
                ..Event::new("e")
            },
        ] {
            let err = validate_decision(&event, &decision).unwrap_err();
            assert_eq!(err.kind(), "refused", "{event:?}");
            assert!(err.message().starts_with("request 1 "), "{err}");
        }
        let event = Event::new("e").with_props(serde_json::json!({"note": "{{secret:"}));
        // No request holds the text: nothing to refuse.
        assert_eq!(
            validate_decision(&event, &fire(vec![plain.clone()])),
            Ok(())
        );
        assert_eq!(validate_decision(&event, &Decision::skip("s")), Ok(()));
        // A body that is not UTF-8 is not searched.
        let binary = plain.clone().body(b"\xff{{secret:X}}".to_vec());
        assert_eq!(validate_decision(&event, &fire(vec![binary])), Ok(()));
        // An event without the text: placeholders are fine.
        assert_eq!(
            validate_decision(&Event::new("e"), &fire(vec![with_secret])),
            Ok(())
        );
    }

    #[test]
    fn secret_names() {
        for ok in ["A", "TOKEN_2", "a_b", "_"] {
            assert!(is_secret_name(ok), "{ok}");
        }
        for bad in ["", "A-B", "A B", "A}}", "é", "A.B"] {
            assert!(!is_secret_name(bad), "{bad}");
        }
    }

    #[test]
    fn truncate_marks_the_cut_on_a_char_boundary() {
        assert_eq!(truncate("héllo", 10), "héllo");
        assert_eq!(truncate("héllo", 2), "h… (5 bytes truncated)");
    }
}
