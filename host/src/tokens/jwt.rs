//! The JWT-bearer grant's assertion (RFC 7523): a short-lived JWT signed
//! with the client's RSA key (RS256, what Google service accounts and
//! Salesforce's JWT flow accept), sent instead of a client secret. The key
//! is parsed once, when the token source starts (and at load, to check
//! it); errors never hold key bytes.

use std::sync::Arc;

use base64::Engine as _;
use rustls::SignatureScheme;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use rustls::sign::SigningKey;

use crate::model::Secret;

/// How long an assertion is valid. Salesforce wants at most 3 minutes,
/// Google at most an hour.
const ASSERTION_LIFETIME_S: u64 = 180;

/// Signs assertions with one RSA key.
#[derive(Clone)]
pub struct JwtSigner {
    key: Arc<dyn SigningKey>,
}

/// What an assertion claims.
#[derive(Debug, Clone, Copy)]
pub struct Claims<'a> {
    /// `iss`: the client (a service account's email, a connected app's
    /// consumer key).
    pub issuer: &'a str,
    /// `sub`: the user acted for, when the provider wants one.
    pub subject: Option<&'a str>,
    /// `aud`: who the assertion is for (usually the token endpoint).
    pub audience: &'a str,
    /// `scope`, for providers that take it in the assertion (Google).
    pub scope: Option<&'a str>,
    /// `kid` in the header, when the provider names its keys.
    pub key_id: Option<&'a str>,
}

impl JwtSigner {
    /// A signer for the PEM private key in `pem` (PKCS#8 or PKCS#1 RSA).
    pub fn new(pem: &Secret) -> Result<Self, String> {
        let der = PrivateKeyDer::from_pem_slice(pem.expose().as_bytes())
            .map_err(|_| "holds no PEM private key".to_owned())?;
        let key = rustls::crypto::ring::sign::any_supported_type(&der)
            .map_err(|_| "the private key cannot be read".to_owned())?;
        if key
            .choose_scheme(&[SignatureScheme::RSA_PKCS1_SHA256])
            .is_none()
        {
            return Err("the private key is not an RSA key; the JWT grant signs with RS256".into());
        }
        Ok(Self { key })
    }

    /// An assertion issued at `now_s` (Unix seconds).
    pub fn assertion(&self, claims: Claims<'_>, now_s: u64) -> Result<String, String> {
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = claims.key_id {
            header["kid"] = kid.into();
        }
        let mut body = serde_json::json!({
            "iss": claims.issuer,
            "aud": claims.audience,
            "iat": now_s,
            "exp": now_s + ASSERTION_LIFETIME_S,
        });
        if let Some(sub) = claims.subject {
            body["sub"] = sub.into();
        }
        if let Some(scope) = claims.scope {
            body["scope"] = scope.into();
        }
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(body.to_string().as_bytes())
        );
        let signer = self
            .key
            .choose_scheme(&[SignatureScheme::RSA_PKCS1_SHA256])
            .ok_or("the private key cannot sign with RS256")?;
        let signature = signer
            .sign(input.as_bytes())
            .map_err(|e| format!("signing the assertion failed: {e}"))?;
        Ok(format!("{input}.{}", b64(&signature)))
    }
}
