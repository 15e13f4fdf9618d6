//! `oauth2 = { … }` in `[plugins.secrets]`: a secret whose value is an
//! OAuth2 access token, fetched by the host and renewed before it expires.
//! Two grants, told apart by the keys set:
//!
//! - client credentials (RFC 6749 §4.4): `client_id` and `client_secret`.
//!   Salesforce, LINE's short-lived channel tokens, Microsoft Graph, Auth0
//!   and most CRMs hand out tokens this way.
//! - JWT bearer (RFC 7523): an assertion signed with an RSA key, from a
//!   Google service account file (`service_account_file`: Firebase Cloud
//!   Messaging, Google APIs) or from `private_key_file` with `issuer`
//!   (Salesforce's JWT flow).
//!
//! This module reads and checks the settings into an [`OAuth2Grant`]; the
//! `tokens` module fetches.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

use super::de;
use super::error::{Issue, KeyPath};
use crate::model::Secret;

/// Form fields the grants themselves set; `params` may not override them.
const RESERVED_PARAMS: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "scope",
    "assertion",
];

/// How to fetch the token, as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Config {
    /// The provider's token endpoint. `https`; `http` only to a loopback
    /// address (a local proxy or test server), as credentials travel in
    /// the request. A service account file supplies its own.
    pub token_url: Option<String>,
    /// Client credentials: the client's id.
    pub client_id: Option<String>,
    /// Client credentials: the client's secret (`${VAR}` or `${file:…}`:
    /// keep it out of the config file).
    #[serde(default, deserialize_with = "de::opt_secret")]
    pub client_secret: Option<Secret>,
    /// Client credentials: how the client authenticates.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// JWT bearer: a Google service account key file (JSON), which names
    /// the issuer, the key and the token endpoint.
    pub service_account_file: Option<PathBuf>,
    /// JWT bearer: the PEM RSA private key that signs the assertion.
    pub private_key_file: Option<PathBuf>,
    /// JWT bearer: the assertion's `iss` (with `private_key_file`).
    pub issuer: Option<String>,
    /// JWT bearer: the assertion's `sub`, when the provider acts for a user.
    pub subject: Option<String>,
    /// JWT bearer: the assertion's `aud`; the token endpoint by default.
    pub audience: Option<String>,
    /// Space-separated scopes to ask for, when the provider wants them
    /// (in the form for client credentials, in the assertion for JWT).
    #[serde(default)]
    pub scope: Option<String>,
    /// Further form fields for the token request (`audience` for Auth0,
    /// `resource` for ADFS).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// The grant these settings make, filled in at load.
    #[serde(skip)]
    pub grant: Option<OAuth2Grant>,
}

/// Where the client's credentials go in a client-credentials request.
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

/// A grant, checked and with its files read.
#[derive(Debug, Clone, PartialEq)]
pub enum OAuth2Grant {
    /// Client credentials.
    ClientCredentials {
        /// The token endpoint.
        token_url: String,
        /// The client's id.
        client_id: String,
        /// The client's secret.
        client_secret: Secret,
        /// Where the credentials go.
        auth: ClientAuth,
    },
    /// JWT bearer.
    JwtBearer {
        /// The token endpoint.
        token_url: String,
        /// `iss`.
        issuer: String,
        /// `sub`.
        subject: Option<String>,
        /// `aud`.
        audience: String,
        /// `kid`, from a service account file.
        key_id: Option<String>,
        /// The PEM private key.
        private_key: Secret,
    },
}

impl OAuth2Grant {
    /// The token endpoint.
    pub fn token_url(&self) -> &str {
        match self {
            OAuth2Grant::ClientCredentials { token_url, .. }
            | OAuth2Grant::JwtBearer { token_url, .. } => token_url,
        }
    }
}

/// Check the settings of the secret at `at`, read its key files, and fill
/// in `oauth.grant`.
pub(crate) fn resolve(oauth: &mut OAuth2Config, at: &KeyPath) -> Result<(), Issue> {
    let client = oauth.client_id.is_some() || oauth.client_secret.is_some();
    let jwt = oauth.service_account_file.is_some() || oauth.private_key_file.is_some();
    let grant = match (client, jwt) {
        (true, true) => {
            return Err(Issue::at(
                at.clone(),
                "mixes client_id/client_secret with a JWT key; use one grant",
            ));
        }
        (false, false) => {
            return Err(Issue::at(
                at.clone(),
                "needs client_id and client_secret (client credentials), or service_account_file or private_key_file (JWT bearer)",
            ));
        }
        (true, false) => client_credentials(oauth, at)?,
        (false, true) => jwt_bearer(oauth, at)?,
    };
    check_url(grant.token_url(), oauth.token_url.is_some(), at)?;
    for key in oauth.params.keys() {
        if key.is_empty() || RESERVED_PARAMS.contains(&key.as_str()) {
            return Err(Issue::at(
                at.key("params").key(key),
                format!(
                    "cannot be set here: the grants set {}",
                    RESERVED_PARAMS.join(", ")
                ),
            ));
        }
    }
    oauth.grant = Some(grant);
    Ok(())
}

/// A non-empty string without control characters, or why not.
fn printable(value: Option<&str>, key: &str, at: &KeyPath) -> Result<String, Issue> {
    match value {
        Some(v) if !v.is_empty() && !v.chars().any(char::is_control) => Ok(v.to_owned()),
        Some(_) => Err(Issue::at(
            at.key(key),
            "must be a non-empty string without control characters",
        )),
        None => Err(Issue::at(at.clone(), format!("needs {key}"))),
    }
}

fn client_credentials(oauth: &OAuth2Config, at: &KeyPath) -> Result<OAuth2Grant, Issue> {
    let jwt_keys = [
        ("issuer", &oauth.issuer),
        ("subject", &oauth.subject),
        ("audience", &oauth.audience),
    ];
    for (key, value) in jwt_keys {
        if value.is_some() {
            return Err(Issue::at(
                at.key(key),
                "belongs to the JWT grant; client credentials send client_id and client_secret",
            ));
        }
    }
    let client_id = printable(oauth.client_id.as_deref(), "client_id", at)?;
    let secret = oauth.client_secret.as_ref().map(Secret::expose);
    let client_secret = Secret::new(printable(secret, "client_secret", at)?);
    Ok(OAuth2Grant::ClientCredentials {
        token_url: printable(oauth.token_url.as_deref(), "token_url", at)?,
        client_id,
        client_secret,
        auth: oauth.client_auth,
    })
}

fn jwt_bearer(oauth: &OAuth2Config, at: &KeyPath) -> Result<OAuth2Grant, Issue> {
    if oauth.client_auth != ClientAuth::default() {
        return Err(Issue::at(
            at.key("client_auth"),
            "belongs to client credentials; the JWT grant authenticates with its assertion",
        ));
    }
    let (issuer, key_id, private_key, file_url) =
        match (&oauth.service_account_file, &oauth.private_key_file) {
            (Some(_), Some(_)) => {
                return Err(Issue::at(
                    at.key("private_key_file"),
                    "the service account file holds the key already; set one of the two",
                ));
            }
            (Some(file), None) => {
                if oauth.issuer.is_some() {
                    return Err(Issue::at(
                        at.key("issuer"),
                        "comes from the service account file (client_email)",
                    ));
                }
                let account = service_account(file)
                    .map_err(|m| Issue::at(at.key("service_account_file"), m))?;
                (
                    account.client_email,
                    account.private_key_id,
                    account.private_key,
                    account.token_uri,
                )
            }
            (None, Some(file)) => {
                let pem = super::secrets::read_file(file)
                    .map_err(|m| Issue::at(at.key("private_key_file"), m))?;
                let issuer = printable(oauth.issuer.as_deref(), "issuer", at)?;
                (issuer, None, Secret::new(pem), None)
            }
            (None, None) => unreachable!("a JWT key is set"),
        };
    let key_at = if oauth.service_account_file.is_some() {
        at.key("service_account_file")
    } else {
        at.key("private_key_file")
    };
    crate::tokens::JwtSigner::new(&private_key).map_err(|m| Issue::at(key_at, m))?;
    let token_url = match (&oauth.token_url, file_url) {
        (Some(url), _) => url.clone(),
        (None, Some(url)) => url,
        (None, None) => return Err(Issue::at(at.clone(), "needs token_url")),
    };
    let audience = match &oauth.audience {
        Some(a) => printable(Some(a), "audience", at)?,
        None => token_url.clone(),
    };
    let subject = match &oauth.subject {
        Some(s) => Some(printable(Some(s), "subject", at)?),
        None => None,
    };
    Ok(OAuth2Grant::JwtBearer {
        token_url,
        issuer,
        subject,
        audience,
        key_id,
        private_key,
    })
}

/// What a Google service account key file says.
struct ServiceAccount {
    client_email: String,
    private_key: Secret,
    private_key_id: Option<String>,
    token_uri: Option<String>,
}

/// Read a service account key file (the JSON the Google Cloud console
/// hands out). Messages never quote it: it holds a private key.
fn service_account(file: &Path) -> Result<ServiceAccount, String> {
    let text = super::secrets::read_file(file)?;
    let shown = file.display();
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|_| format!("{shown} is not JSON (a service account key file is)"))?;
    let field = |name: &str| json.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    if field("type").as_deref() != Some("service_account") {
        return Err(format!(
            "{shown} is not a service account key file (its \"type\" is not \"service_account\")"
        ));
    }
    let needed = |name: &str| {
        field(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| format!("{shown} has no \"{name}\""))
    };
    Ok(ServiceAccount {
        client_email: needed("client_email")?,
        private_key: Secret::new(needed("private_key")?),
        private_key_id: field("private_key_id"),
        token_uri: field("token_uri"),
    })
}

/// The token endpoint: a URL, https unless to a loopback address.
/// `written`: whether the config names it (else it came from a file).
fn check_url(token_url: &str, written: bool, at: &KeyPath) -> Result<(), Issue> {
    let url_at = if written {
        at.key("token_url")
    } else {
        at.key("service_account_file")
    };
    let url =
        Url::parse(token_url).map_err(|e| Issue::at(url_at.clone(), format!("not a URL: {e}")))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(Issue::at(
                url_at,
                "must be https: credentials travel in the request (http is accepted only to a loopback address)",
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
            "must not hold credentials; set them in their own keys",
        ));
    }
    if url.fragment().is_some() {
        return Err(Issue::at(url_at, "must not have a #fragment"));
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

#[cfg(test)]
impl OAuth2Config {
    /// Settings written as TOML (the inline table's keys, absolute file
    /// paths), checked as a load would.
    pub(crate) fn from_toml(text: &str) -> Result<Self, String> {
        let mut oauth: OAuth2Config = toml::from_str(text).map_err(|e| e.to_string())?;
        resolve(&mut oauth, &KeyPath::root()).map_err(|e| format!("{e:?}"))?;
        Ok(oauth)
    }
}
