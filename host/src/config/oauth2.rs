//! `oauth2 = { … }` in `[plugins.secrets]`: a secret whose value is an
//! OAuth2 access token, fetched by the host with the client-credentials
//! grant (RFC 6749 §4.4) and renewed before it expires. Salesforce, LINE's
//! short-lived channel tokens, Microsoft Graph, Auth0 and most CRMs hand
//! out tokens this way. This module reads and checks the settings; the
//! `tokens` module fetches.

use std::collections::BTreeMap;

use serde::Deserialize;
use url::Url;

use super::de;
use super::error::{Issue, KeyPath};
use crate::model::Secret;

/// Form fields the grant itself sets; `params` may not override them.
const RESERVED_PARAMS: &[&str] = &["grant_type", "client_id", "client_secret", "scope"];

/// How to fetch the token.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Config {
    /// The provider's token endpoint. `https`; `http` only to a loopback
    /// address (a local proxy or test server), as the client secret
    /// travels in the request.
    pub token_url: String,
    /// The client's id.
    pub client_id: String,
    /// The client's secret (`${VAR}` or `${file:…}`: keep it out of the
    /// config file).
    #[serde(deserialize_with = "de::secret")]
    pub client_secret: Secret,
    /// Space-separated scopes to ask for, when the provider wants them.
    #[serde(default)]
    pub scope: Option<String>,
    /// How the client authenticates to the token endpoint.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// Further form fields for the token request (`audience` for Auth0,
    /// `resource` for ADFS).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

/// Where the client's credentials go in the token request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic authentication (`client_secret_basic`), the default the
    /// RFC asks every server to support.
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body
    /// (`client_secret_post`), for providers that want them there
    /// (Salesforce, LINE).
    Post,
}

/// Check the settings of the secret at `at`.
pub(crate) fn check(oauth: &OAuth2Config, at: &KeyPath) -> Result<(), Issue> {
    let url_at = at.key("token_url");
    let url = Url::parse(&oauth.token_url)
        .map_err(|e| Issue::at(url_at.clone(), format!("not a URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(Issue::at(
                url_at,
                "must be https: the client secret travels in the request (http is accepted only to a loopback address)",
            ));
        }
        other => {
            return Err(Issue::at(
                url_at,
                format!("scheme {other:?} is not http(s)"),
            ));
        }
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Issue::at(
            url_at,
            "must not hold credentials; set client_id and client_secret",
        ));
    }
    if url.fragment().is_some() {
        return Err(Issue::at(url_at, "must not have a #fragment"));
    }
    let printable = |s: &str| !s.is_empty() && !s.chars().any(char::is_control);
    if !printable(&oauth.client_id) {
        return Err(Issue::at(
            at.key("client_id"),
            "must be a non-empty string without control characters",
        ));
    }
    if !printable(oauth.client_secret.expose()) {
        return Err(Issue::at(
            at.key("client_secret"),
            "must be a non-empty string without control characters",
        ));
    }
    for key in oauth.params.keys() {
        if key.is_empty() || RESERVED_PARAMS.contains(&key.as_str()) {
            return Err(Issue::at(
                at.key("params").key(key),
                format!(
                    "cannot be set here: the grant sets {}",
                    RESERVED_PARAMS.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
