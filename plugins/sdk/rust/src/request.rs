//! A builder for [`Request`], the outbound HTTP request a plugin asks the
//! host to send, and [`secret`] for `{{secret:NAME}}` placeholders.
//!
//! The builder does not validate: the host checks every request (absolute
//! http(s) URL, header syntax, size caps, egress policy) and fills in
//! secrets. [`Request::validate`] (and [`crate::validate`]) runs the same
//! checks in a unit test; [`crate::testing::run`] applies them to what a
//! plugin returns. Only [`secret`] checks its argument, and panics.

use serde::Serialize;

use crate::{Method, Request};

/// The placeholder `{{secret:NAME}}`, which the host replaces with the
/// secret's value when it sends the request (in the URL, a header value or
/// a UTF-8 body). The plugin never sees the value.
///
/// # Panics
/// When `name` is not a secret name, `[A-Za-z0-9_]+`: the host would
/// refuse the placeholder (a malformed one) or leave it unfilled. Secret
/// names are constants of the plugin, so this is a bug to fix, not input
/// to handle; see [`crate::is_secret_name`] to check first.
pub fn secret(name: &str) -> String {
    assert!(
        crate::check::is_secret_name(name),
        "secret name {name:?} is invalid: use letters, digits and _ only"
    );
    format!("{{{{secret:{name}}}}}")
}

impl Request {
    /// A request with `method` to `url`, no headers and an empty body.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A GET request to `url`.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::Get, url)
    }

    /// A POST request to `url`.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new(Method::Post, url)
    }

    /// A PUT request to `url`.
    pub fn put(url: impl Into<String>) -> Self {
        Self::new(Method::Put, url)
    }

    /// A PATCH request to `url`.
    pub fn patch(url: impl Into<String>) -> Self {
        Self::new(Method::Patch, url)
    }

    /// A DELETE request to `url`.
    pub fn delete(url: impl Into<String>) -> Self {
        Self::new(Method::Delete, url)
    }

    /// Append the header `name: value` (earlier headers are kept).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Set header `name` to `value`, removing any earlier header of that
    /// name (compared case-insensitively).
    pub fn set_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        self.headers.push((name, value.into()));
        self
    }

    /// Use `body` as the body, as is.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Use `value` serialized as JSON as the body and set
    /// `content-type: application/json`.
    ///
    /// # Panics
    /// When `value` cannot be serialized, which for `serde_json::Value` and
    /// derived types with string map keys never happens; see
    /// [`Request::try_json`] otherwise.
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Self {
        match self.try_json(value) {
            Ok(request) => request,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`Request::json`], but returns the serialization error.
    pub fn try_json<T: Serialize + ?Sized>(self, value: &T) -> Result<Self, String> {
        let body =
            serde_json::to_vec(value).map_err(|e| format!("request body is not JSON: {e}"))?;
        Ok(self
            .set_header("content-type", "application/json")
            .body(body))
    }

    /// Set `authorization: Bearer {{secret:NAME}}`.
    ///
    /// # Panics
    /// When `name` is not a secret name (see [`secret`]).
    pub fn bearer_secret(self, name: &str) -> Self {
        self.set_header("authorization", format!("Bearer {}", secret(name)))
    }

    /// Set `authorization: Basic {{secret:NAME}}`. The secret must hold the
    /// already base64-encoded `user:password`, since the plugin cannot
    /// encode a value it never sees.
    ///
    /// # Panics
    /// When `name` is not a secret name (see [`secret`]).
    pub fn basic_auth_secret(self, name: &str) -> Self {
        self.set_header("authorization", format!("Basic {}", secret(name)))
    }

    /// The value of the first header named `name` (case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Check this request as the host does before sending it (URL, header
    /// names, values and size, forbidden headers, body size, placeholder
    /// syntax); the error says what the host would refuse. See
    /// [`crate::validate`].
    pub fn validate(&self) -> Result<(), String> {
        crate::check::validate(self)
    }

    /// The body parsed as JSON, handy in tests.
    pub fn body_json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("request body is not JSON: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    #[test]
    fn secret_makes_a_placeholder() {
        assert_eq!(secret("TOKEN"), "{{secret:TOKEN}}");
        assert_eq!(secret("a_1"), "{{secret:a_1}}");
    }

    #[test]
    fn secret_refuses_names_the_host_would_not_fill() {
        for bad in ["", "API-TOKEN", "A B", "X}}", "TOKEN\n", "é"] {
            let panicked = std::panic::catch_unwind(|| secret(bad));
            assert!(panicked.is_err(), "{bad:?}");
        }
        assert!(std::panic::catch_unwind(|| Request::get("u").bearer_secret("A-B")).is_err());
        assert!(std::panic::catch_unwind(|| Request::get("u").basic_auth_secret("")).is_err());
    }

    #[test]
    fn validate_reports_what_the_host_refuses() {
        assert_eq!(
            Request::post("https://x.test/")
                .bearer_secret("T")
                .json(&json!({}))
                .validate(),
            Ok(())
        );
        let err = Request::post("https://x.test/")
            .header("Content-Length", "2")
            .validate()
            .unwrap_err();
        assert!(err.contains("content-length"), "{err}");
        assert!(Request::get("u").validate().is_err());
    }

    #[test]
    fn each_constructor_sets_its_method() {
        let cases = [
            (Request::get("u"), Method::Get),
            (Request::post("u"), Method::Post),
            (Request::put("u"), Method::Put),
            (Request::patch("u"), Method::Patch),
            (Request::delete("u"), Method::Delete),
        ];
        for (request, method) in cases {
            assert_eq!(request.method, method);
            assert_eq!(request.url, "u");
            assert!(request.headers.is_empty() && request.body.is_empty());
        }
    }

    #[test]
    fn json_sets_body_and_a_single_content_type() {
        let request = Request::post("https://x.test/")
            .header("Content-Type", "text/plain")
            .header("x-a", "1")
            .json(&json!({"a": [1, 2]}));
        assert_eq!(request.body, br#"{"a":[1,2]}"#);
        assert_eq!(
            request.headers,
            vec![
                ("x-a".to_owned(), "1".to_owned()),
                ("content-type".to_owned(), "application/json".to_owned()),
            ]
        );
        assert_eq!(request.body_json(), Ok(json!({"a": [1, 2]})));
    }

    #[test]
    fn try_json_reports_unserializable_values() {
        let mut map = BTreeMap::new();
        map.insert(vec![1u8], 1);
        let err = Request::post("u").try_json(&map).unwrap_err();
        assert!(err.contains("not JSON"), "{err}");
    }

    #[test]
    fn header_keeps_order_and_duplicates() {
        let request = Request::get("u").header("a", "1").header("a", "2");
        assert_eq!(request.headers.len(), 2);
        assert_eq!(request.header_value("A"), Some("1"));
    }

    #[test]
    fn auth_helpers_use_placeholders_and_replace_each_other() {
        let bearer = Request::get("u").bearer_secret("TOKEN");
        assert_eq!(
            bearer.header_value("authorization"),
            Some("Bearer {{secret:TOKEN}}")
        );
        let basic = bearer.basic_auth_secret("CREDS");
        assert_eq!(basic.headers.len(), 1);
        assert_eq!(
            basic.header_value("Authorization"),
            Some("Basic {{secret:CREDS}}")
        );
    }

    #[test]
    fn body_takes_bytes_and_strings() {
        assert_eq!(Request::put("u").body(vec![0u8, 1]).body, vec![0, 1]);
        assert_eq!(Request::put("u").body("hi").body, b"hi");
    }
}
