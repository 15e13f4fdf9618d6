//! One token request: the client-credentials grant (RFC 6749 §4.4) sent
//! with the delivery client, and its answer read into a [`Token`] or a
//! reason that names the endpoint and the provider's `error`, never a
//! credential.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use url::Url;

use crate::config::{ClientAuth, OAuth2Config};
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

/// The form body and headers of the grant.
pub(crate) fn grant(config: &OAuth2Config) -> (Vec<(String, String)>, Vec<u8>) {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials");
    if let Some(scope) = &config.scope {
        form.append_pair("scope", scope);
    }
    for (k, v) in &config.params {
        form.append_pair(k, v);
    }
    let mut headers = vec![
        (
            "content-type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        ),
        ("accept".to_owned(), "application/json".to_owned()),
    ];
    match config.client_auth {
        ClientAuth::Basic => {
            // RFC 6749 §2.3.1: each part form-encoded, then Basic.
            let enc =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!(
                "{}:{}",
                enc(&config.client_id),
                enc(config.client_secret.expose())
            );
            let basic = base64::engine::general_purpose::STANDARD.encode(pair);
            headers.push(("authorization".to_owned(), format!("Basic {basic}")));
        }
        ClientAuth::Post => {
            form.append_pair("client_id", &config.client_id);
            form.append_pair("client_secret", config.client_secret.expose());
        }
    }
    (headers, form.finish().into_bytes())
}

/// The endpoint as reasons show it: no query (it could hold anything).
pub(crate) fn shown(token_url: &str) -> String {
    match Url::parse(token_url) {
        Ok(url) => format!("{}{}", url.origin().ascii_serialization(), url.path()),
        Err(_) => "the token endpoint".to_owned(),
    }
}

/// Ask `config.token_url` for a token.
pub(crate) async fn fetch(client: &Deliverer, config: &OAuth2Config) -> Result<Token, String> {
    let (headers, body) = grant(config);
    let report = client
        .send(SendRequest {
            method: Method::Post,
            url: &config.token_url,
            headers: &headers,
            body: &body,
            webhook_id: "",
            signing: &[],
            timeout: FETCH_TIMEOUT,
            response_body_limit: RESPONSE_LIMIT,
            redirects: None,
        })
        .await;
    let endpoint = shown(&config.token_url);
    let result = match report.status_code {
        None => Err(format!(
            "token endpoint {endpoint} did not answer: {}",
            report.error.as_deref().unwrap_or("no response")
        )),
        Some(status) if (200..300).contains(&status) => {
            parse(&report.response_bytes).map_err(|e| format!("token endpoint {endpoint}: {e}"))
        }
        Some(status) => Err(format!(
            "token endpoint {endpoint} answered HTTP {status}{}",
            provider_error(&report.response_bytes)
        )),
    };
    // A provider that quotes the credentials back in its error text must
    // not put them in the log.
    result.map_err(|reason| redact(reason, config))
}

fn redact(reason: String, config: &OAuth2Config) -> String {
    let secret = config.client_secret.expose();
    if secret.is_empty() || !reason.contains(secret) {
        return reason;
    }
    reason.replace(secret, "***")
}

/// A successful answer: `access_token` and `expires_in` (a number, or a
/// numeric string as some providers send it).
pub(crate) fn parse(body: &[u8]) -> Result<Token, String> {
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| "the answer is not JSON".to_owned())?;
    let value = match json.get("access_token") {
        Some(serde_json::Value::String(s)) if !s.is_empty() => s,
        Some(serde_json::Value::String(_)) => return Err("access_token is empty".into()),
        Some(_) => return Err("access_token is not a string".into()),
        None => {
            return Err(format!(
                "the answer has no access_token{}",
                provider_error(body)
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
fn provider_error(body: &[u8]) -> String {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let clean = |v: Option<&serde_json::Value>| {
        v.and_then(|v| v.as_str()).map(|s| {
            s.chars()
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
