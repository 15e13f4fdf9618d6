//! One token request: the client-credentials grant (RFC 6749 §4.4, the
//! client proven by its secret or by a signed assertion) or the JWT-bearer
//! grant (RFC 7523) sent with the delivery client, and its
//! answer read into a [`Token`] or a reason that names the endpoint and the
//! provider's `error`, never a credential.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use url::Url;

use super::jwt::{Claims, JwtSigner};
use crate::config::{ClientAuth, OAuth2Config, OAuth2Grant};
use crate::delivery::{AddressDenied, AddressGuard, Deliverer, SendRequest};
use crate::model::{Method, Secret};

/// Bound on one token request.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Most of a token response that is read.
const RESPONSE_LIMIT: usize = 64 * 1024;

/// Longest provider `error_description` quoted in a reason.
const DESCRIPTION_CHARS: usize = 200;

/// A token the endpoint handed out.
#[derive(Debug)]
pub(crate) struct Token {
    /// `access_token`.
    pub(crate) value: Secret,
    /// `expires_in`, when the provider says.
    pub(crate) lifetime: Option<Duration>,
}

/// The token endpoint is configured by the operator, not written by a
/// plugin, so it is not held to the plugin's egress policy: any address.
struct OperatorChosen;

impl AddressGuard for OperatorChosen {
    fn check(
        &self,
        _host: &str,
        addrs: &[std::net::IpAddr],
    ) -> Result<Vec<std::net::IpAddr>, AddressDenied> {
        Ok(addrs.to_vec())
    }
}

/// The guard for token clients.
pub(crate) fn guard() -> Arc<dyn AddressGuard> {
    Arc::new(OperatorChosen)
}

/// A token request's headers and form body.
pub(crate) type Form = (Vec<(String, String)>, Vec<u8>);

/// The form body and headers of the grant; `signer` signs a JWT grant's
/// assertion, issued at `now_s`.
pub(crate) fn grant(
    config: &OAuth2Config,
    grant: &OAuth2Grant,
    signer: Option<&JwtSigner>,
    now_s: u64,
) -> Result<Form, String> {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    let mut headers = vec![
        (
            "content-type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        ),
        ("accept".to_owned(), "application/json".to_owned()),
    ];
    match grant {
        OAuth2Grant::ClientCredentials {
            client_id,
            client_secret,
            auth,
            ..
        } => {
            form.append_pair("grant_type", "client_credentials");
            if let Some(scope) = &config.scope {
                form.append_pair("scope", scope);
            }
            match auth {
                ClientAuth::Basic => {
                    // RFC 6749 §2.3.1: each part form-encoded, then Basic.
                    let enc = |s: &str| {
                        url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                    };
                    let pair = format!("{}:{}", enc(client_id), enc(client_secret.expose()));
                    let basic = base64::engine::general_purpose::STANDARD.encode(pair);
                    headers.push(("authorization".to_owned(), format!("Basic {basic}")));
                }
                ClientAuth::Post => {
                    form.append_pair("client_id", client_id);
                    form.append_pair("client_secret", client_secret.expose());
                }
                ClientAuth::PrivateKeyJwt => {
                    return Err("private_key_jwt has no client secret to send".into());
                }
            }
        }
        OAuth2Grant::ClientAssertion {
            client_id,
            audience,
            ..
        } => {
            let signer = signer.ok_or("no key to sign the assertion with")?;
            // A fresh `jti` each time: Microsoft Entra refuses a replay.
            let jwt_id = uuid::Uuid::new_v4().to_string();
            let claims = Claims {
                issuer: client_id,
                subject: Some(client_id),
                audience,
                scope: None,
                jwt_id: Some(&jwt_id),
                extra: &config.claims,
            };
            form.append_pair("grant_type", "client_credentials");
            if let Some(scope) = &config.scope {
                form.append_pair("scope", scope);
            }
            form.append_pair("client_id", client_id);
            form.append_pair(
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            );
            form.append_pair("client_assertion", &signer.assertion(claims, now_s)?);
        }
        OAuth2Grant::JwtBearer {
            issuer,
            subject,
            audience,
            ..
        } => {
            let signer = signer.ok_or("no key to sign the assertion with")?;
            let claims = Claims {
                issuer,
                subject: subject.as_deref(),
                audience,
                scope: config.scope.as_deref(),
                jwt_id: None,
                extra: &config.claims,
            };
            form.append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer");
            form.append_pair("assertion", &signer.assertion(claims, now_s)?);
        }
    }
    for (k, v) in &config.params {
        form.append_pair(k, v);
    }
    Ok((headers, form.finish().into_bytes()))
}

/// The endpoint as reasons show it: no query (it could hold anything).
pub(crate) fn shown(token_url: &str) -> String {
    match Url::parse(token_url) {
        Ok(url) => format!("{}{}", url.origin().ascii_serialization(), url.path()),
        Err(_) => "the token endpoint".to_owned(),
    }
}

/// Ask `config.token_url` for a token.
pub(crate) async fn fetch(
    client: &Deliverer,
    config: &OAuth2Config,
    grant_: &OAuth2Grant,
    signer: Option<&JwtSigner>,
) -> Result<Token, String> {
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (headers, body) = grant(config, grant_, signer, now_s)?;
    let token_url = grant_.token_url();
    let report = client
        .send(SendRequest {
            method: Method::Post,
            url: token_url,
            headers: &headers,
            body: &body,
            webhook_id: "",
            signing: &[],
            timeout: FETCH_TIMEOUT,
            response_body_limit: RESPONSE_LIMIT,
            redirects: None,
        })
        .await;
    let endpoint = shown(token_url);
    // The provider's own words are cleaned before they are cut short, so
    // no prefix of a credential survives the cut.
    let hide = |text: &str| redact(text.to_owned(), grant_, &body);
    let result = match report.status_code {
        None => Err(format!(
            "token endpoint {endpoint} did not answer: {}",
            report.error.as_deref().unwrap_or("no response")
        )),
        Some(status) if (200..300).contains(&status) => parse(&report.response_bytes, &hide)
            .map_err(|e| format!("token endpoint {endpoint}: {e}")),
        Some(status) => Err(format!(
            "token endpoint {endpoint} answered HTTP {status}{}",
            provider_error(&report.response_bytes, &hide)
        )),
    };
    // A provider that quotes the credentials back in its error text must
    // not put them in the log.
    result.map_err(|reason| redact(reason, grant_, &body))
}

/// `reason` without the client secret or the signed assertion the
/// request `body` sent.
pub(super) fn redact(mut reason: String, grant: &OAuth2Grant, body: &[u8]) -> String {
    let mut credentials: Vec<String> = url::form_urlencoded::parse(body)
        .filter(|(k, _)| k == "assertion" || k == "client_assertion")
        .map(|(_, v)| v.into_owned())
        .collect();
    if let OAuth2Grant::ClientCredentials { client_secret, .. } = grant {
        credentials.push(client_secret.expose().to_owned());
    }
    // In every form the request may have carried it (the form body
    // encodes it), longest first.
    let mut forms: Vec<String> = credentials
        .iter()
        .filter(|c| !c.is_empty())
        .flat_map(|c| crate::policy::written_forms(c))
        .collect();
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    for form in forms {
        if reason.contains(&form) {
            reason = reason.replace(&form, "***");
        }
    }
    reason
}

/// A successful answer: `access_token` and `expires_in` (a number, or a
/// numeric string as some providers send it). The provider's words an
/// error quotes pass through `hide` first.
pub(crate) fn parse(body: &[u8], hide: &dyn Fn(&str) -> String) -> Result<Token, String> {
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| "the answer is not JSON".to_owned())?;
    let value = match json.get("access_token") {
        Some(serde_json::Value::String(s)) if !s.is_empty() => s,
        Some(serde_json::Value::String(_)) => return Err("access_token is empty".into()),
        Some(_) => return Err("access_token is not a string".into()),
        None => {
            return Err(format!(
                "the answer has no access_token{}",
                provider_error(body, hide)
            ));
        }
    };
    if value.chars().any(char::is_control) {
        return Err("access_token contains control characters".into());
    }
    let lifetime = match json.get("expires_in") {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => {
            let secs = match v {
                serde_json::Value::Number(n) => n.as_f64(),
                serde_json::Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            }
            .filter(|s| s.is_finite() && *s > 0.0)
            .ok_or("expires_in is not a positive number of seconds")?;
            Some(Duration::from_secs_f64(secs.min(1e9)))
        }
    };
    Ok(Token {
        value: Secret::new(value.as_str()),
        lifetime,
    })
}

/// `: error (error_description)` from an RFC 6749 §5.2 error body, when
/// there is one; printable characters only, shortened.
fn provider_error(body: &[u8], hide: &dyn Fn(&str) -> String) -> String {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let clean = |v: Option<&serde_json::Value>| {
        v.and_then(|v| v.as_str()).map(|s| {
            hide(s)
                .chars()
                .filter(|c| !c.is_control())
                .take(DESCRIPTION_CHARS)
                .collect::<String>()
        })
    };
    match (
        clean(json.get("error")),
        clean(json.get("error_description")),
    ) {
        (Some(e), Some(d)) if !d.is_empty() => format!(": {e} ({d})"),
        (Some(e), _) => format!(": {e}"),
        _ => String::new(),
    }
}
