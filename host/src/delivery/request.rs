//! Turning a [`super::SendRequest`] into wire headers, and the method rules
//! of a redirect.
//!
//! Pure functions: header validation, the host-owned `webhook-*` headers
//! and signature, content length, the method of the next hop.
//! Error texts name headers, never their values (those may hold secrets).

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use super::sign::SigningKey;
use crate::model::Method;

/// Framing and hop-by-hop headers only the client may set; a plugin
/// request carrying one is refused (the policy should have caught it).
const HOST_OWNED: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-connection",
];

/// Standard Webhooks headers the client always sets itself; a plugin's own
/// values are replaced.
const WEBHOOK_HEADERS: &[&str] = &["webhook-id", "webhook-timestamp", "webhook-signature"];

/// The header map for the first hop: the plugin's headers (validated),
/// `webhook-id`, with a key `webhook-timestamp` and `webhook-signature`,
/// a default `user-agent`, and `content-length`.
pub(crate) fn build_headers(
    method: Method,
    plugin_headers: &[(String, String)],
    body: &[u8],
    webhook_id: &str,
    signing: Option<(&[SigningKey], i64)>,
    user_agent: &str,
) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::with_capacity(plugin_headers.len() + 5);
    for (name, value) in plugin_headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name {name:?}"))?;
        if HOST_OWNED.contains(&name.as_str()) {
            return Err(format!("header {name} is set by the host"));
        }
        if WEBHOOK_HEADERS.contains(&name.as_str()) {
            continue;
        }
        let value =
            HeaderValue::from_str(value).map_err(|_| format!("invalid value for header {name}"))?;
        headers.append(name, value);
    }
    // An empty id is a request that is not a webhook (a token request).
    if !webhook_id.is_empty() {
        let id = HeaderValue::from_str(webhook_id).map_err(|_| "invalid webhook id".to_string())?;
        headers.insert("webhook-id", id);
    }
    if let Some((keys, timestamp_s)) = signing {
        // One `v1,` entry per key, space-separated (key rotation).
        let signature = keys
            .iter()
            .map(|key| key.sign(webhook_id, timestamp_s, body))
            .collect::<Vec<_>>()
            .join(" ");
        headers.insert("webhook-timestamp", HeaderValue::from(timestamp_s));
        headers.insert(
            "webhook-signature",
            HeaderValue::from_str(&signature).expect("base64 is a valid header value"),
        );
    }
    if !headers.contains_key(header::USER_AGENT) {
        let ua = HeaderValue::from_str(user_agent).map_err(|_| "invalid user agent".to_string())?;
        headers.insert(header::USER_AGENT, ua);
    }
    set_content_length(&mut headers, method, body.len());
    Ok(headers)
}

fn set_content_length(headers: &mut HeaderMap, method: Method, len: usize) {
    if len > 0 || matches!(method, Method::Post | Method::Put | Method::Patch) {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    } else {
        headers.remove(header::CONTENT_LENGTH);
    }
}

/// Statuses whose `Location` the client follows when redirects are on.
pub(crate) fn is_followable(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Method and body of the next hop, as browsers and HTTP clients do: 303
/// turns anything into a body-less GET, 301/302 turn POST into GET, 307
/// and 308 keep both.
pub(crate) fn redirected_method(status: u16, method: Method) -> (Method, bool) {
    match (status, method) {
        (303, _) | (301 | 302, Method::Post) => (Method::Get, false),
        (_, m) => (m, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn builds_webhook_headers_and_signature() {
        let key = SigningKey::from_bytes(vec![1u8; 32]);
        let headers = build_headers(
            Method::Post,
            &h(&[
                ("Content-Type", "application/json"),
                ("webhook-id", "spoofed"),
            ]),
            b"{}",
            "msg_1",
            Some((std::slice::from_ref(&key), 1700000000)),
            "wasmhook/test",
        )
        .unwrap();
        assert_eq!(headers["webhook-id"], "msg_1");
        assert_eq!(headers.get_all("webhook-id").iter().count(), 1);
        assert_eq!(headers["webhook-timestamp"], "1700000000");
        assert_eq!(
            headers["webhook-signature"],
            key.sign("msg_1", 1700000000, b"{}").as_str()
        );
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["content-length"], "2");
        assert_eq!(headers["user-agent"], "wasmhook/test");
    }

    #[test]
    fn every_key_signs_while_a_secret_is_rotated() {
        let (new, old) = (
            SigningKey::from_bytes(vec![1u8; 32]),
            SigningKey::from_bytes(vec![2u8; 32]),
        );
        let headers = build_headers(
            Method::Post,
            &[],
            b"{}",
            "msg_1",
            Some((&[new.clone(), old.clone()], 1700000000)),
            "ua",
        )
        .unwrap();
        let signature = headers["webhook-signature"].to_str().unwrap();
        assert_eq!(
            signature,
            format!(
                "{} {}",
                new.sign("msg_1", 1700000000, b"{}"),
                old.sign("msg_1", 1700000000, b"{}")
            )
        );
        // A receiver that knows either key accepts the message.
        for key in [&new, &old] {
            key.verify("msg_1", "1700000000", signature, b"{}", 1700000000, 300)
                .unwrap();
        }
        let other = SigningKey::from_bytes(vec![3u8; 32]);
        assert!(
            other
                .verify("msg_1", "1700000000", signature, b"{}", 1700000000, 300)
                .is_err()
        );
    }

    #[test]
    fn unsigned_get_has_no_signature_or_length() {
        let headers = build_headers(
            Method::Get,
            &h(&[("User-Agent", "mine")]),
            b"",
            "m",
            None,
            "ua",
        )
        .unwrap();
        assert!(!headers.contains_key("webhook-signature"));
        assert!(!headers.contains_key("webhook-timestamp"));
        assert!(!headers.contains_key("content-length"));
        assert_eq!(headers["user-agent"], "mine");
    }

    #[test]
    fn refuses_host_owned_and_malformed_headers() {
        let cases: &[((&str, &str), &str)] = &[
            (("Host", "evil"), "header host is set by the host"),
            (
                ("Content-Length", "1"),
                "header content-length is set by the host",
            ),
            (
                ("Transfer-Encoding", "chunked"),
                "header transfer-encoding is set by the host",
            ),
            (
                ("Connection", "close"),
                "header connection is set by the host",
            ),
            (("bad name", "x"), "invalid header name \"bad name\""),
            (
                ("x-token", "line\nbreak secret"),
                "invalid value for header x-token",
            ),
        ];
        for ((name, value), want) in cases {
            let err = build_headers(Method::Post, &h(&[(name, value)]), b"", "m", None, "ua")
                .unwrap_err();
            assert_eq!(&err, want);
            assert!(!err.contains("secret"), "values never echoed");
        }
    }

    #[test]
    fn redirect_methods() {
        use Method::*;
        let cases = [
            (301, Post, (Get, false)),
            (302, Post, (Get, false)),
            (303, Put, (Get, false)),
            (301, Put, (Put, true)),
            (307, Post, (Post, true)),
            (308, Patch, (Patch, true)),
        ];
        for (status, method, want) in cases {
            assert_eq!(redirected_method(status, method), want, "{status} {method}");
        }
    }
}
