//! Conversions between generated WIT types and `crate::model`, and the
//! validation of everything a plugin returns. Nothing a plugin builds is
//! seen by the rest of the host before it passes these checks.

use super::bindings::types;
use super::error::PluginError;
use super::limits::PluginLimits;
use crate::model::{Decision, Event, Method, OutboundRequest};

/// Longest skip reason or error message kept from a plugin, in bytes;
/// longer ones are cut (marked). They are stored with every invocation,
/// logged and served by the API, so their size must not be the plugin's
/// to choose.
pub const MAX_REASON_BYTES: usize = 4 * 1024;

/// Most bytes of header names and values on one request. Receivers
/// refuse far less (8–16 KiB is common); this bounds what is stored.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// How much of an invalid header name an error message quotes.
const QUOTED_NAME_BYTES: usize = 64;
/// How much of an invalid URL an error message quotes.
const QUOTED_URL_BYTES: usize = 256;

/// The event as the guest sees it.
pub(crate) fn to_wit_event(event: &Event) -> types::Event {
    types::Event {
        id: event.id.clone(),
        name: event.name.clone(),
        user_id: event.user_id.clone(),
        timestamp_ms: event.timestamp_ms,
        properties: serde_json::Value::Object(event.properties.clone()).to_string(),
    }
}

/// Whether the event's own data (id, name, user id, any key or value of
/// its properties) holds the text that opens a secret placeholder. In the
/// properties' JSON text that text appears only inside a string: JSON
/// escapes none of its characters, and no two tokens join to form it.
pub(crate) fn event_holds_placeholder(event: &types::Event) -> bool {
    [&event.id, &event.name, &event.properties]
        .into_iter()
        .chain(&event.user_id)
        .any(|text| text.contains(PLACEHOLDER_OPEN))
}

/// Whether a request holds the text of a placeholder where the host would
/// fill one: in the URL, a header value, or a UTF-8 body.
fn holds_placeholder(r: &types::Request) -> bool {
    r.url.contains(PLACEHOLDER_OPEN)
        || r.headers.iter().any(|(_, v)| v.contains(PLACEHOLDER_OPEN))
        || std::str::from_utf8(&r.body).is_ok_and(|b| b.contains(PLACEHOLDER_OPEN))
}

/// Validate a guest decision and convert it. `event_placeholder`: the
/// event the plugin ran on holds placeholder text (see
/// [`event_holds_placeholder`]); then no request may hold any, since the
/// host cannot tell a placeholder the plugin wrote from one it copied out
/// of the event, and filling the second would send a secret wherever the
/// event's author chose to have it written (their own CRM record, a
/// message to themselves).
pub(crate) fn validate_decision(
    decision: types::Decision,
    limits: &PluginLimits,
    event_placeholder: bool,
) -> Result<Decision, PluginError> {
    match decision {
        types::Decision::Skip(reason) => Ok(Decision::Skip {
            reason: bounded_reason(reason),
        }),
        types::Decision::Fire(requests) => {
            if requests.len() > limits.max_requests {
                return Err(PluginError::InvalidOutput(format!(
                    "the plugin returned {} requests; at most {} are allowed per event (max_requests)",
                    requests.len(),
                    limits.max_requests
                )));
            }
            if event_placeholder && let Some(i) = requests.iter().position(holds_placeholder) {
                return Err(PluginError::Refused(format!(
                    "request {i} holds a secret placeholder, and the event's own data holds \
                     the text {PLACEHOLDER_OPEN:?}: the host fills no placeholder it cannot \
                     tell from event text"
                )));
            }
            let requests = requests
                .into_iter()
                .enumerate()
                .map(|(i, r)| {
                    validate_request(r, limits).map_err(|msg| {
                        // The message may quote the plugin's output.
                        PluginError::InvalidOutput(bounded_reason(format!("request {i}: {msg}")))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Decision::Fire { requests })
        }
    }
}

fn validate_request(r: types::Request, limits: &PluginLimits) -> Result<OutboundRequest, String> {
    validate_url(&r.url, limits.max_url_bytes)?;
    if r.headers.len() > limits.max_headers {
        return Err(format!(
            "{} headers; at most {} are allowed",
            r.headers.len(),
            limits.max_headers
        ));
    }
    let header_bytes: usize = r.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Err(format!(
            "headers of {header_bytes} bytes exceed the {MAX_HEADER_BYTES}-byte limit (names and values)"
        ));
    }
    for (name, value) in &r.headers {
        // Parsed names are lower-case: the list of host-owned headers is too.
        let parsed = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name {:?}", short(name)))?;
        if crate::policy::FORBIDDEN_HEADERS.contains(&parsed.as_str()) {
            // Refused here, not only when the request is sent, so that
            // `wasmhook run` and a dry run show it.
            return Err(format!(
                "header {:?} is set by the host (hop-by-hop, framing or signing header); remove it from the request",
                parsed.as_str()
            ));
        }
        http::HeaderValue::from_bytes(value.as_bytes()).map_err(|_| {
            format!(
                "invalid value for header {:?} (control characters such as CR/LF are not allowed)",
                short(name)
            )
        })?;
        check_placeholders(value).map_err(|e| format!("header {:?}: {e}", short(name)))?;
    }
    if r.body.len() > limits.max_body_bytes {
        return Err(format!(
            "body of {} bytes exceeds the {}-byte limit (max_body_bytes)",
            r.body.len(),
            limits.max_body_bytes
        ));
    }
    if let Ok(text) = std::str::from_utf8(&r.body) {
        check_placeholders(text).map_err(|e| format!("body: {e}"))?;
    }
    Ok(OutboundRequest {
        method: match r.method {
            types::Method::Get => Method::Get,
            types::Method::Post => Method::Post,
            types::Method::Put => Method::Put,
            types::Method::Patch => Method::Patch,
            types::Method::Delete => Method::Delete,
        },
        url: r.url,
        headers: r.headers,
        body: r.body,
    })
}

/// The start of a header name of the plugin's, to quote in a message.
fn short(name: &str) -> String {
    super::state::truncate(name, QUOTED_NAME_BYTES)
}

/// The start of a URL of the plugin's, to quote in a message.
fn short_url(url: &str) -> String {
    super::state::truncate(url, QUOTED_URL_BYTES)
}

/// A skip reason or error message cut to [`MAX_REASON_BYTES`].
pub(crate) fn bounded_reason(text: String) -> String {
    if text.len() <= MAX_REASON_BYTES {
        text
    } else {
        super::state::truncate(&text, MAX_REASON_BYTES)
    }
}

const PLACEHOLDER_OPEN: &str = "{{secret:";

/// Every `{{secret:` must be followed by a name of `[A-Za-z0-9_]` and `}}`.
fn check_placeholders(s: &str) -> Result<(), String> {
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

/// An absolute http(s) URL with a host; no control characters or spaces
/// (which URL parsers silently strip); secret placeholders only after the
/// authority, since the destination must be known before secrets are
/// filled in.
fn validate_url(url: &str, max_bytes: usize) -> Result<(), String> {
    if url.len() > max_bytes {
        return Err(format!(
            "URL of {} bytes exceeds the {max_bytes}-byte limit",
            url.len()
        ));
    }
    if url.chars().any(|c| c.is_control() || c == ' ') {
        return Err("URL contains whitespace or control characters".into());
    }
    // What the policy would refuse when sending, refused here too, so
    // that `wasmhook run` and a dry run show it: a backslash or Unicode
    // whitespace (parsers disagree about them), credentials before the host.
    crate::policy::check_raw_text(url).map_err(|denied| denied.to_string())?;
    if crate::policy::raw_authority(url).contains('@') {
        return Err(crate::policy::PolicyDenied::UserInfo.to_string());
    }
    check_placeholders(url).map_err(|e| format!("URL: {e}"))?;
    let authority_end = url.find("://").map(|i| {
        i + 3
            + url[i + 3..]
                .find(['/', '?', '#'])
                .unwrap_or(url.len() - i - 3)
    });
    if let Some(end) = authority_end
        && url[..end].contains("{{")
    {
        return Err("secret placeholders are not allowed in the URL's scheme, host or port".into());
    }
    let parsed = url::Url::parse(&url.replace(PLACEHOLDER_OPEN, "secret-").replace("}}", ""))
        .map_err(|e| format!("URL {:?} is not an absolute URL: {e}", short_url(url)))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "URL scheme {:?} is not allowed; use http or https",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("URL {:?} has no host", short_url(url)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(url: &str) -> types::Request {
        types::Request {
            method: types::Method::Post,
            url: url.into(),
            headers: vec![],
            body: vec![],
        }
    }

    #[test]
    fn url_rules() {
        let max = 8192;
        for ok in [
            "https://api.example.com/v1/x",
            "http://example.com",
            "https://example.com:8443/a?b=c#d",
            "https://hooks.slack.com/services/{{secret:SLACK_PATH}}",
            "https://graph.facebook.com/me?access_token={{secret:TOKEN}}",
        ] {
            assert!(
                validate_url(ok, max).is_ok(),
                "{ok}: {:?}",
                validate_url(ok, max)
            );
        }
        for (bad, why) in [
            ("not a url", "whitespace"),
            ("/relative/path", "absolute"),
            ("ftp://example.com/x", "scheme"),
            ("file:///etc/passwd", "scheme"),
            ("https://exa\nmple.com", "control"),
            ("https://{{secret:HOST}}/x", "host"),
            ("https://example.com/{{secret:}}", "malformed"),
            ("https://example.com/{{secret:A", "malformed"),
            ("data:text/plain,hi", "scheme"),
        ] {
            let err = validate_url(bad, max).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        let long = format!("https://example.com/{}", "a".repeat(9000));
        assert!(validate_url(&long, max).unwrap_err().contains("limit"));
    }

    #[test]
    fn header_and_body_rules() {
        let limits = PluginLimits::default();
        let mut r = req("https://example.com");
        r.headers = vec![
            ("x-ok".into(), "fine".into()),
            ("x-bad".into(), "a\r\nInjected: 1".into()),
        ];
        let err = validate_request(r, &limits).unwrap_err();
        assert!(err.contains("x-bad") && err.contains("CR/LF"), "{err}");

        let mut r = req("https://example.com");
        r.headers = vec![("bad name".into(), "v".into())];
        assert!(
            validate_request(r, &limits)
                .unwrap_err()
                .contains("header name")
        );

        let mut r = req("https://example.com");
        r.body = vec![b'x'; limits.max_body_bytes + 1];
        assert!(
            validate_request(r, &limits)
                .unwrap_err()
                .contains("max_body_bytes")
        );

        let mut r = req("https://example.com");
        r.headers = vec![("authorization".into(), "Bearer {{secret:TOKEN}}".into())];
        r.body = b"{\"key\":\"{{secret:KEY}}\"}".to_vec();
        let ok = validate_request(r, &limits).unwrap();
        assert_eq!(ok.headers[0].1, "Bearer {{secret:TOKEN}}");
    }

    #[test]
    fn request_count_is_capped_and_errors_name_the_index() {
        let limits = PluginLimits {
            max_requests: 2,
            ..PluginLimits::default()
        };
        let three = types::Decision::Fire(vec![
            req("https://a.com"),
            req("https://b.com"),
            req("https://c.com"),
        ]);
        let err = validate_decision(three, &limits, false).unwrap_err();
        assert!(
            matches!(&err, PluginError::InvalidOutput(m) if m.contains("3 requests") && m.contains("max_requests")),
            "{err}"
        );

        let second_bad = types::Decision::Fire(vec![req("https://a.com"), req("gopher://b.com")]);
        let err = validate_decision(second_bad, &limits, false).unwrap_err();
        assert!(err.to_string().contains("request 1:"), "{err}");
    }
}
