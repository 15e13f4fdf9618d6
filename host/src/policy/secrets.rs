//! Secret substitution: `{{secret:NAME}}` in the URL's path and query, in
//! header values and in a UTF-8 body is replaced by the secret's value, but
//! only for a [`Destination`] that already passed the policy and whose host
//! is in that secret's `hosts`.
//!
//! The filled request is for the wire only: never log it, store it or
//! return it from the API (they keep the placeholder form, or use
//! [`EgressPolicy::mask_secrets`]). Errors name secrets, never values.
//! Substitution is a single pass: a value that itself contains
//! `{{secret:…}}` is not expanded again. A body that is not UTF-8 is left
//! as it is.
//!
//! A value is written so that it stays one value where it lands: in the
//! URL's path `%`, `?`, `#` and `\` are percent-encoded (`/` is kept: a
//! Slack webhook path is a secret), in its query `%`, `#`, `&` and `+` (a
//! base64 token's `+` would otherwise arrive as a space); in a body whose
//! `content-type` is JSON it is escaped as JSON string content (a `"` or
//! `\` in a password cannot break the document), in a form body it is
//! form-encoded. Header values and other bodies get it as it is.

use std::borrow::Cow;

use url::Url;

use crate::model::OutboundRequest;

use super::check::{EgressPolicy, has_control};
use super::destination::{Destination, raw_before_path};
use super::error::PolicyDenied;
use super::live::{SecretValue, Unavailable};

const OPEN: &str = "{{secret:";
const CLOSE: &str = "}}";

/// Where a placeholder is being replaced.
#[derive(Clone, Copy)]
enum Place<'a> {
    Url,
    Header(&'a str),
    Body(BodyKind),
}

/// How a body is encoded, from its `content-type`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum BodyKind {
    Json,
    Form,
    Other,
}

impl BodyKind {
    fn of(headers: &[(String, String)]) -> Self {
        let Some((_, value)) = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        else {
            return BodyKind::Other;
        };
        let media = value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if media == "application/json" || media.ends_with("+json") {
            BodyKind::Json
        } else if media == "application/x-www-form-urlencoded" {
            BodyKind::Form
        } else {
            BodyKind::Other
        }
    }
}

impl Place<'_> {
    fn describe(self) -> String {
        match self {
            Place::Url => "the URL".into(),
            Place::Header(name) => format!("header {name:?}"),
            Place::Body(_) => "the body".into(),
        }
    }
}

/// `value` written so that it stays one value at `place`; `in_query`:
/// the placeholder is after the URL's `?`.
fn encoded<'v>(value: &'v str, place: Place<'_>, in_query: bool) -> Cow<'v, str> {
    match place {
        Place::Url if in_query => percent_escaped(value, &['%', '#', '&', '+']),
        // WHATWG URLs read `\` in an http(s) path as `/`.
        Place::Url => percent_escaped(value, &['%', '?', '#', '\\']),
        Place::Body(BodyKind::Json) => {
            let quoted = serde_json::Value::from(value).to_string();
            Cow::Owned(quoted[1..quoted.len() - 1].to_owned())
        }
        Place::Body(BodyKind::Form) => {
            Cow::Owned(url::form_urlencoded::byte_serialize(value.as_bytes()).collect())
        }
        Place::Header(_) | Place::Body(BodyKind::Other) => Cow::Borrowed(value),
    }
}

/// `value` with each of the ASCII `special` characters as `%XX`.
fn percent_escaped<'v>(value: &'v str, special: &[char]) -> Cow<'v, str> {
    if !value.contains(special) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if special.contains(&c) {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// What to put in place of a placeholder.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The secret's value.
    Fill,
    /// The placeholder itself (after all the same checks).
    Mask,
}

impl EgressPolicy {
    /// Replace every `{{secret:NAME}}` with the secret's value. Call only
    /// with the [`Destination`] that `check_request` (or `check_redirect`)
    /// returned for this request. Refuses unknown secrets, secrets whose
    /// `hosts` do not include `dest.host()`, placeholders outside the URL's
    /// path and query, and values with control characters in headers.
    ///
    /// The returned URL is the `url` crate's normalised serialisation
    /// (without fragment): send exactly that, so the client cannot read the
    /// URL differently from the policy.
    pub fn fill_secrets(
        &self,
        req: &OutboundRequest,
        dest: &Destination,
    ) -> Result<OutboundRequest, PolicyDenied> {
        self.render(req, dest, Mode::Fill)
    }

    /// [`Self::fill_secrets`] with every check, but leaving the
    /// placeholders in place: the request exactly as it would be sent, with
    /// secrets masked (for dry runs and the API).
    pub fn mask_secrets(
        &self,
        req: &OutboundRequest,
        dest: &Destination,
    ) -> Result<OutboundRequest, PolicyDenied> {
        self.render(req, dest, Mode::Mask)
    }

    /// A receiver answered 401 to `req` (in placeholder form): every live
    /// secret it names (an OAuth2 token) is asked to renew itself. True
    /// when there was one, so the refusal may be the token's, not the
    /// request's.
    pub fn report_rejected(&self, req: &OutboundRequest) -> bool {
        let mut any = false;
        for (name, secret) in &self.secrets {
            let SecretValue::Live(live) = &secret.value else {
                continue;
            };
            if names(req, &format!("{OPEN}{name}{CLOSE}")) {
                live.rejected();
                any = true;
            }
        }
        any
    }

    /// `text`, a receiver's answer, with the value of every secret of the
    /// plugin replaced by its placeholder, in each form filling may have
    /// written it (as it is, percent-, JSON- or form-encoded): an API that
    /// quotes a request back in its error must not put a secret in the
    /// delivery log. Every secret, not only those of the request answered:
    /// the same host may have been sent another in an earlier request.
    /// For a live secret, the value it had when the request was filled
    /// too, if it has changed or expired since.
    /// `cut`: `text` was cut short, so an end that begins one of those
    /// forms goes too.
    pub fn redact_secrets(&self, text: &str, cut: bool) -> String {
        let mut forms: Vec<(String, String)> = Vec::new();
        for (name, secret) in &self.secrets {
            let placeholder = format!("{OPEN}{name}{CLOSE}");
            for value in secret.value.recent() {
                let value = value.expose();
                if value.is_empty() {
                    continue;
                }
                for form in written_forms(value) {
                    forms.push((form, placeholder.clone()));
                }
            }
        }
        // Longest first: a value is not left half-replaced by a shorter
        // one it contains.
        forms.sort_by_key(|f| std::cmp::Reverse(f.0.len()));
        forms.dedup();
        let mut out = text.to_owned();
        for (form, placeholder) in &forms {
            if out.contains(form.as_str()) {
                out = out.replace(form.as_str(), placeholder);
            }
        }
        if cut {
            for (form, _) in &forms {
                let longest = (1..form.len())
                    .rev()
                    .find(|&n| form.is_char_boundary(n) && out.ends_with(&form[..n]));
                if let Some(n) = longest {
                    out.truncate(out.len() - n);
                }
            }
        }
        out
    }

    fn render(
        &self,
        req: &OutboundRequest,
        dest: &Destination,
        mode: Mode,
    ) -> Result<OutboundRequest, PolicyDenied> {
        if raw_before_path(&req.url).contains("{{") {
            return Err(PolicyDenied::PlaceholderInAuthority);
        }
        // In mask mode the URL gets an inert, URL-safe marker per secret so
        // that normalisation leaves it intact; it becomes the placeholder
        // again afterwards.
        let url = self.substitute(&req.url, Place::Url, dest, mode, |name| match mode {
            Mode::Fill => None,
            Mode::Mask => Some(marker(name)),
        })?;
        let mut parsed = Url::parse(&url).map_err(|e| PolicyDenied::InvalidUrl {
            reason: format!("after filling in secrets: {e}"),
        })?;
        parsed.set_fragment(None);
        let filled = Destination::from_url(parsed, false)?;
        if !filled.same_origin(dest) {
            return Err(PolicyDenied::DestinationMismatch);
        }
        let mut url = filled.url().as_str().to_owned();
        if mode == Mode::Mask {
            for name in self.secrets.keys() {
                url = url.replace(&marker(name), &format!("{OPEN}{name}{CLOSE}"));
            }
        }

        let mut headers = Vec::with_capacity(req.headers.len());
        for (name, value) in &req.headers {
            let value = self.substitute(value, Place::Header(name), dest, mode, |_| None)?;
            headers.push((name.clone(), value.into_owned()));
        }
        let body = match std::str::from_utf8(&req.body) {
            // The body's kind matters only when there is a placeholder.
            Ok(text) if text.contains(OPEN) => self
                .substitute(
                    text,
                    Place::Body(BodyKind::of(&req.headers)),
                    dest,
                    mode,
                    |_| None,
                )?
                .into_owned()
                .into_bytes(),
            Ok(_) => req.body.clone(),
            Err(_) => req.body.clone(),
        };
        Ok(OutboundRequest {
            method: req.method,
            url,
            headers,
            body,
        })
    }

    /// Replace the placeholders in `text`; `override_with` may supply the
    /// replacement for a name (used for mask markers).
    fn substitute<'t>(
        &self,
        text: &'t str,
        place: Place<'_>,
        dest: &Destination,
        mode: Mode,
        override_with: impl Fn(&str) -> Option<String>,
    ) -> Result<Cow<'t, str>, PolicyDenied> {
        if !text.contains(OPEN) {
            return Ok(Cow::Borrowed(text));
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find(OPEN) {
            out.push_str(&rest[..at]);
            let after = &rest[at + OPEN.len()..];
            let name_len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if name_len == 0 || !after[name_len..].starts_with(CLOSE) {
                return Err(PolicyDenied::MalformedPlaceholder {
                    location: place.describe(),
                });
            }
            let name = &after[..name_len];
            let secret = self
                .secrets
                .get(name)
                .ok_or_else(|| PolicyDenied::UnknownSecret {
                    secret: name.to_owned(),
                })?;
            if !secret.hosts.iter().any(|h| h.matches(dest.host_kind())) {
                return Err(PolicyDenied::SecretNotAllowedForHost {
                    secret: name.to_owned(),
                    host: dest.host().to_owned(),
                });
            }
            // A masked request needs no value: a token not fetched yet
            // still lets a dry run show the request.
            let value = match mode {
                Mode::Fill => Some(secret.value.current().map_err(|why| match why {
                    Unavailable::Arriving => PolicyDenied::SecretArriving {
                        secret: name.to_owned(),
                    },
                    Unavailable::Missing(reason) => PolicyDenied::SecretUnavailable {
                        secret: name.to_owned(),
                        reason,
                    },
                })?),
                Mode::Mask => match &secret.value {
                    SecretValue::Fixed(value) => Some(value.clone()),
                    SecretValue::Live(_) => None,
                },
            };
            if let Some(value) = &value
                && !matches!(place, Place::Body(_))
                && has_control(value.expose())
            {
                return Err(PolicyDenied::SecretValueInvalid {
                    secret: name.to_owned(),
                    location: place.describe(),
                });
            }
            match (override_with(name), mode, value) {
                (Some(replacement), _, _) => out.push_str(&replacement),
                (None, Mode::Fill, Some(value)) => {
                    // The template's own `?` (values cannot add one before it).
                    let in_query = text[..text.len() - rest.len() + at].contains('?');
                    out.push_str(&encoded(value.expose(), place, in_query));
                }
                (None, _, _) => out.push_str(&rest[at..at + OPEN.len() + name_len + CLOSE.len()]),
            }
            rest = &after[name_len + CLOSE.len()..];
        }
        out.push_str(rest);
        Ok(Cow::Owned(out))
    }
}

/// Every form in which filling may have written `value`: as it is,
/// JSON-escaped, form-encoded, and in a URL's path and query as the URL
/// parser normalises them (it encodes further characters, such as `"`).
pub(crate) fn written_forms(value: &str) -> Vec<String> {
    let (path, query) = (
        encoded(value, Place::Url, false),
        encoded(value, Place::Url, true),
    );
    let mut forms = vec![
        value.to_owned(),
        encoded(value, Place::Body(BodyKind::Json), false).into_owned(),
        encoded(value, Place::Body(BodyKind::Form), false).into_owned(),
    ];
    if let Ok(url) = Url::parse(&format!("https://h.invalid/p/{path}?q={query}")) {
        if let Some(p) = url.path().strip_prefix("/p/") {
            forms.push(p.to_owned());
        }
        if let Some(q) = url.query().and_then(|q| q.strip_prefix("q=")) {
            forms.push(q.to_owned());
        }
    }
    forms.extend([path.into_owned(), query.into_owned()]);
    forms
}

/// Whether `req` holds `placeholder` anywhere a secret is filled in.
fn names(req: &OutboundRequest, placeholder: &str) -> bool {
    req.url.contains(placeholder)
        || req.headers.iter().any(|(_, v)| v.contains(placeholder))
        || std::str::from_utf8(&req.body).is_ok_and(|b| b.contains(placeholder))
}

/// A URL-safe stand-in for a placeholder while a masked URL is normalised.
fn marker(name: &str) -> String {
    format!("wasmhook-masked-secret-{name}-")
}
