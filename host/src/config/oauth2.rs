//! `oauth2 = { … }` in `[plugins.secrets]`: a secret whose value is an
//! OAuth2 access token, fetched by the host and renewed before it expires.
//! Two grants, told apart by the keys set:
//!
//! - client credentials (RFC 6749 §4.4): `client_id` and `client_secret`.
//!   Salesforce, LINE's short-lived channel tokens, Microsoft Graph, Auth0
//!   and most CRMs hand out tokens this way.
//!   With `client_auth = "private_key_jwt"` the client proves itself with
//!   an assertion signed by `private_key_file` instead of a secret (LINE's
//!   v2.1 channel tokens, Microsoft Entra's certificate credentials).
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
    "client_assertion",
    "client_assertion_type",
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
    /// JWT bearer and `private_key_jwt`: the RSA private key that signs
    /// the assertion, PEM or a JSON Web Key.
    pub private_key_file: Option<PathBuf>,
    /// The `kid` of that key, when the provider names its keys (LINE).
    pub key_id: Option<String>,
    /// The key's X.509 certificate (PEM), whose thumbprints the assertion's
    /// header carries as `x5t` and `x5t#S256` (Microsoft Entra).
    pub certificate_file: Option<PathBuf>,
    /// `RS256` (the default) or `PS256`.
    #[serde(default)]
    pub signing_alg: SigningAlg,
    /// Further claims of the assertion (LINE's `token_exp`).
    #[serde(default)]
    pub claims: BTreeMap<String, serde_json::Value>,
    /// JWT bearer: the assertion's `iss` (with `private_key_file`).
    pub issuer: Option<String>,
    /// JWT bearer: the assertion's `sub`, when the provider acts for a user.
    pub subject: Option<String>,
    /// JWT bearer and `private_key_jwt`: the assertion's `aud`; the token
    /// endpoint by default.
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
    /// No secret: `client_id` and a `client_assertion` signed with
    /// `private_key_file` (RFC 7523 §2.2, OpenID Connect's
    /// `private_key_jwt`).
    PrivateKeyJwt,
}

/// How assertions are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    #[default]
    #[serde(rename = "RS256")]
    Rs256,
    /// RSASSA-PSS with SHA-256 (what Microsoft Entra asks for now).
    #[serde(rename = "PS256")]
    Ps256,
}

/// A key that signs assertions, read at load.
#[derive(Debug, Clone, PartialEq)]
pub struct AssertionKey {
    /// The private key: PEM, or an RSA JSON Web Key.
    pub private_key: Secret,
    /// `kid` in the header.
    pub key_id: Option<String>,
    /// The DER of the key's certificate, for the thumbprints.
    pub certificate: Option<Vec<u8>>,
    /// The algorithm.
    pub alg: SigningAlg,
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
    /// Client credentials with a signed `client_assertion` instead of a
    /// secret (`private_key_jwt`): `iss` and `sub` are the client's id.
    ClientAssertion {
        /// The token endpoint.
        token_url: String,
        /// The client's id.
        client_id: String,
        /// `aud`.
        audience: String,
        /// What signs the assertion.
        key: AssertionKey,
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
        /// What signs the assertion.
        key: AssertionKey,
    },
}

impl OAuth2Grant {
    /// The token endpoint.
    pub fn token_url(&self) -> &str {
        match self {
            OAuth2Grant::ClientCredentials { token_url, .. }
            | OAuth2Grant::ClientAssertion { token_url, .. }
            | OAuth2Grant::JwtBearer { token_url, .. } => token_url,
        }
    }

    /// The key that signs its assertions, if it signs any.
    pub fn assertion_key(&self) -> Option<&AssertionKey> {
        match self {
            OAuth2Grant::ClientCredentials { .. } => None,
            OAuth2Grant::ClientAssertion { key, .. } | OAuth2Grant::JwtBearer { key, .. } => {
                Some(key)
            }
        }
    }
}

/// Check the settings of the secret at `at`, read its key files, and fill
/// in `oauth.grant`.
pub(crate) fn resolve(oauth: &mut OAuth2Config, at: &KeyPath) -> Result<(), Issue> {
    let client = oauth.client_id.is_some() || oauth.client_secret.is_some();
    let jwt = oauth.service_account_file.is_some() || oauth.private_key_file.is_some();
    let grant = match (client, jwt) {
        _ if oauth.client_auth == ClientAuth::PrivateKeyJwt => client_assertion(oauth, at)?,
        (true, true) => {
            return Err(Issue::at(
                at.clone(),
                "mixes client_id/client_secret with a JWT key; use one grant (or client_auth = \"private_key_jwt\" to send client_id with a signed assertion)",
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
    for key in oauth.claims.keys() {
        if crate::tokens::RESERVED_CLAIMS.contains(&key.as_str()) {
            return Err(Issue::at(
                at.key("claims").key(key),
                format!(
                    "cannot be set here: the host sets {}",
                    crate::tokens::RESERVED_CLAIMS.join(", ")
                ),
            ));
        }
    }
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

/// The first of `keys` (name, whether it is set, why it may not be) that
/// is set, as an error at that key.
fn refuse_set(at: &KeyPath, keys: &[(&str, bool, &str)]) -> Result<(), Issue> {
    match keys.iter().find(|(_, set, _)| *set) {
        Some(&(key, _, why)) => Err(Issue::at(at.key(key), why)),
        None => Ok(()),
    }
}

fn client_credentials(oauth: &OAuth2Config, at: &KeyPath) -> Result<OAuth2Grant, Issue> {
    let jwt_keys = [
        ("issuer", oauth.issuer.is_some()),
        ("subject", oauth.subject.is_some()),
        ("audience", oauth.audience.is_some()),
        ("key_id", oauth.key_id.is_some()),
        ("certificate_file", oauth.certificate_file.is_some()),
        ("signing_alg", oauth.signing_alg != SigningAlg::default()),
        ("claims", !oauth.claims.is_empty()),
    ];
    let why = "belongs to grants signed with a key; client credentials send client_id and client_secret (set client_auth = \"private_key_jwt\" to sign instead)";
    refuse_set(at, &jwt_keys.map(|(key, set)| (key, set, why)))?;
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

/// `private_key_jwt`: client credentials proven with a signed assertion.
fn client_assertion(oauth: &OAuth2Config, at: &KeyPath) -> Result<OAuth2Grant, Issue> {
    let misplaced = [
        (
            "client_secret",
            oauth.client_secret.is_some(),
            "is not sent with private_key_jwt: the signed assertion proves the client",
        ),
        (
            "service_account_file",
            oauth.service_account_file.is_some(),
            "belongs to the JWT-bearer grant; private_key_jwt signs with private_key_file",
        ),
        (
            "issuer",
            oauth.issuer.is_some(),
            "is the client_id with private_key_jwt",
        ),
        (
            "subject",
            oauth.subject.is_some(),
            "is the client_id with private_key_jwt",
        ),
    ];
    refuse_set(at, &misplaced)?;
    let client_id = printable(oauth.client_id.as_deref(), "client_id", at)?;
    let Some(file) = &oauth.private_key_file else {
        return Err(Issue::at(
            at.clone(),
            "needs private_key_file: private_key_jwt signs its assertion with it",
        ));
    };
    let pem =
        super::secrets::read_file(file).map_err(|m| Issue::at(at.key("private_key_file"), m))?;
    let key = assertion_key(oauth, Secret::new(pem), oauth.key_id.clone(), at)?;
    let token_url = printable(oauth.token_url.as_deref(), "token_url", at)?;
    Ok(OAuth2Grant::ClientAssertion {
        audience: audience(oauth, &token_url, at)?,
        token_url,
        client_id,
        key,
    })
}

fn jwt_bearer(oauth: &OAuth2Config, at: &KeyPath) -> Result<OAuth2Grant, Issue> {
    if oauth.client_auth != ClientAuth::default() {
        return Err(Issue::at(
            at.key("client_auth"),
            "belongs to client credentials; the JWT grant authenticates with its assertion",
        ));
    }
    let (issuer, key_id, private_key, file_url) = match (
        &oauth.service_account_file,
        &oauth.private_key_file,
    ) {
        (Some(_), Some(_)) => {
            return Err(Issue::at(
                at.key("private_key_file"),
                "the service account file holds the key already; set one of the two",
            ));
        }
        (Some(file), None) => {
            let from_file = [
                (
                    "issuer",
                    oauth.issuer.is_some(),
                    "comes from the service account file (client_email)",
                ),
                (
                    "key_id",
                    oauth.key_id.is_some(),
                    "comes from the service account file (private_key_id)",
                ),
                (
                    "certificate_file",
                    oauth.certificate_file.is_some(),
                    "goes with private_key_file; a service account's assertion names its key by private_key_id",
                ),
            ];
            refuse_set(at, &from_file)?;
            let account =
                service_account(file).map_err(|m| Issue::at(at.key("service_account_file"), m))?;
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
            (issuer, oauth.key_id.clone(), Secret::new(pem), None)
        }
        (None, None) => unreachable!("a JWT key is set"),
    };
    let key = assertion_key(oauth, private_key, key_id, at)?;
    let token_url = match (&oauth.token_url, file_url) {
        (Some(url), _) => url.clone(),
        (None, Some(url)) => url,
        (None, None) => return Err(Issue::at(at.clone(), "needs token_url")),
    };
    let subject = match &oauth.subject {
        Some(s) => Some(printable(Some(s), "subject", at)?),
        None => None,
    };
    Ok(OAuth2Grant::JwtBearer {
        audience: audience(oauth, &token_url, at)?,
        token_url,
        issuer,
        subject,
        key,
    })
}

/// The assertion's `aud`: as written, or the token endpoint.
fn audience(oauth: &OAuth2Config, token_url: &str, at: &KeyPath) -> Result<String, Issue> {
    match &oauth.audience {
        Some(a) => printable(Some(a), "audience", at),
        None => Ok(token_url.to_owned()),
    }
}

/// The signing key with its `kid` and certificate, checked by building
/// the signer that will use it.
fn assertion_key(
    oauth: &OAuth2Config,
    private_key: Secret,
    key_id: Option<String>,
    at: &KeyPath,
) -> Result<AssertionKey, Issue> {
    let key_id = match key_id {
        Some(kid) => Some(printable(Some(&kid), "key_id", at)?),
        None => None,
    };
    let certificate = match &oauth.certificate_file {
        Some(file) => {
            let mut certs = crate::pem::certificates(file)
                .map_err(|e| Issue::at(at.key("certificate_file"), e.to_string()))?;
            Some(certs.swap_remove(0).to_vec())
        }
        None => None,
    };
    let key = AssertionKey {
        private_key,
        key_id,
        certificate,
        alg: oauth.signing_alg,
    };
    crate::tokens::JwtSigner::new(&key).map_err(|m| {
        let blame = if m.contains("certificate") {
            "certificate_file"
        } else if oauth.service_account_file.is_some() {
            "service_account_file"
        } else {
            "private_key_file"
        };
        Issue::at(at.key(blame), m)
    })?;
    Ok(key)
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
