//! Signed JWT assertions (RFC 7523): the JWT-bearer grant's `assertion`,
//! and the `client_assertion` of `private_key_jwt` client authentication
//! (OpenID Connect Core §9: LINE's v2.1 channel tokens, Microsoft Entra's
//! certificate credentials). Signed with the client's RSA key, RS256 or
//! PS256, with rustls's ring signer. The key is parsed once, when the token
//! source starts (and at load, to check it); errors never hold key bytes.
//!
//! A key is a PEM private key (PKCS#8 or PKCS#1), or an RSA JSON Web Key,
//! the form LINE's console and `jwcrypto` hand out.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use rustls::SignatureScheme;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs1KeyDer};
use rustls::sign::{CertifiedKey, SigningKey};

use crate::config::{AssertionKey, SigningAlg};
use crate::model::Secret;

/// How long an assertion is valid. Salesforce wants at most 3 minutes,
/// LINE 30, Google an hour.
const ASSERTION_LIFETIME_S: u64 = 180;

/// Claims the signer sets itself; `claims` in the config may not.
pub const RESERVED_CLAIMS: &[&str] = &["iss", "sub", "aud", "iat", "exp", "nbf", "jti", "scope"];

/// Signs assertions with one RSA key.
#[derive(Clone)]
pub struct JwtSigner {
    key: Arc<dyn SigningKey>,
    scheme: SignatureScheme,
    /// The JOSE header, the same for every assertion.
    header: String,
}

/// What an assertion claims.
#[derive(Debug, Clone, Copy)]
pub struct Claims<'a> {
    /// `iss`: the client (a service account's email, a connected app's
    /// consumer key, a client id).
    pub issuer: &'a str,
    /// `sub`: the user acted for, or the client itself.
    pub subject: Option<&'a str>,
    /// `aud`: who the assertion is for (usually the token endpoint).
    pub audience: &'a str,
    /// `scope`, for providers that take it in the assertion (Google).
    pub scope: Option<&'a str>,
    /// `jti`: a unique id, for providers that refuse a replayed assertion.
    pub jwt_id: Option<&'a str>,
    /// Further claims the provider wants (LINE's `token_exp`).
    pub extra: &'a BTreeMap<String, serde_json::Value>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl JwtSigner {
    /// A signer for `key`: its private key, algorithm, and the `kid` and
    /// certificate thumbprints (`x5t`, `x5t#S256`) its header carries.
    pub fn new(key: &AssertionKey) -> Result<Self, String> {
        let der = private_key_der(&key.private_key)?;
        let signing = rustls::crypto::ring::sign::any_supported_type(&der)
            .map_err(|_| "the private key cannot be read".to_owned())?;
        let (scheme, alg) = match key.alg {
            SigningAlg::Rs256 => (SignatureScheme::RSA_PKCS1_SHA256, "RS256"),
            SigningAlg::Ps256 => (SignatureScheme::RSA_PSS_SHA256, "PS256"),
        };
        if signing.choose_scheme(&[scheme]).is_none() {
            return Err(format!(
                "the private key is not an RSA key; JWT assertions are signed with {alg}"
            ));
        }
        let mut header = serde_json::json!({"alg": alg, "typ": "JWT"});
        if let Some(kid) = &key.key_id {
            header["kid"] = kid.as_str().into();
        }
        if let Some(cert) = &key.certificate {
            let certified =
                CertifiedKey::new(vec![CertificateDer::from(cert.clone())], signing.clone());
            if certified.keys_match().is_err() {
                return Err("the certificate is not for this private key".into());
            }
            let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, cert);
            let sha256 = ring::digest::digest(&ring::digest::SHA256, cert);
            header["x5t"] = b64(sha1.as_ref()).into();
            header["x5t#S256"] = b64(sha256.as_ref()).into();
        }
        Ok(Self {
            key: signing,
            scheme,
            header: b64(header.to_string().as_bytes()),
        })
    }

    /// An assertion issued at `now_s` (Unix seconds).
    pub fn assertion(&self, claims: Claims<'_>, now_s: u64) -> Result<String, String> {
        let mut body = serde_json::Map::new();
        body.insert("iss".into(), claims.issuer.into());
        if let Some(sub) = claims.subject {
            body.insert("sub".into(), sub.into());
        }
        body.insert("aud".into(), claims.audience.into());
        if let Some(jti) = claims.jwt_id {
            body.insert("jti".into(), jti.into());
        }
        body.insert("iat".into(), now_s.into());
        body.insert("exp".into(), (now_s + ASSERTION_LIFETIME_S).into());
        if let Some(scope) = claims.scope {
            body.insert("scope".into(), scope.into());
        }
        for (name, value) in claims.extra {
            body.insert(name.clone(), value.clone());
        }
        let body = serde_json::Value::Object(body).to_string();
        let input = format!("{}.{}", self.header, b64(body.as_bytes()));
        let signer = self
            .key
            .choose_scheme(&[self.scheme])
            .ok_or("the private key cannot sign with its algorithm")?;
        let signature = signer
            .sign(input.as_bytes())
            .map_err(|e| format!("signing the assertion failed: {e}"))?;
        Ok(format!("{input}.{}", b64(&signature)))
    }
}

/// The DER of a PEM private key, or of an RSA JSON Web Key.
fn private_key_der(key: &Secret) -> Result<PrivateKeyDer<'static>, String> {
    let text = key.expose().trim_start();
    if text.starts_with('{') {
        return jwk_to_pkcs1(text).map(|der| PrivatePkcs1KeyDer::from(der).into());
    }
    PrivateKeyDer::from_pem_slice(text.as_bytes())
        .map_err(|_| "holds no PEM private key (nor a JSON Web Key)".to_owned())
}

/// An RSA private JWK (RFC 7518 §6.3) as a PKCS#1 `RSAPrivateKey`.
fn jwk_to_pkcs1(text: &str) -> Result<Vec<u8>, String> {
    let json: serde_json::Value = serde_json::from_str(text)
        .map_err(|_| "starts with { but is not a JSON Web Key (not JSON)".to_owned())?;
    if json.get("keys").is_some() {
        return Err("holds a JWK set; write the one private key on its own".into());
    }
    match json.get("kty").and_then(|v| v.as_str()) {
        Some("RSA") => {}
        Some(other) => {
            return Err(format!(
                "holds a {other:?} JSON Web Key; JWT assertions are signed with RSA keys"
            ));
        }
        None => return Err("is not a JSON Web Key (no \"kty\")".into()),
    }
    if json.get("d").is_none() {
        return Err("holds a public JSON Web Key; the private key (with \"d\") signs".into());
    }
    // version 0, then the eight integers in PKCS#1's order.
    let mut content = vec![0x02, 0x01, 0x00];
    for name in ["n", "e", "d", "p", "q", "dp", "dq", "qi"] {
        let field = json.get(name).and_then(|v| v.as_str()).ok_or_else(|| {
            format!(
                "the JSON Web Key has no \"{name}\" (the key needs n, e, d, p, q, dp, dq and qi)"
            )
        })?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(field.trim_end_matches('='))
            .map_err(|_| format!("the JSON Web Key's \"{name}\" is not base64url"))?;
        der_unsigned(&bytes, &mut content);
    }
    let mut der = vec![0x30];
    der_length(content.len(), &mut der);
    der.extend(content);
    Ok(der)
}

/// A DER INTEGER holding the unsigned big-endian `bytes`.
fn der_unsigned(bytes: &[u8], out: &mut Vec<u8>) {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let digits = &bytes[start..];
    let pad = digits.first().is_none_or(|b| b & 0x80 != 0);
    out.push(0x02);
    der_length(digits.len() + usize::from(pad), out);
    if pad {
        out.push(0);
    }
    out.extend_from_slice(digits);
}

fn der_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.push(0x80 | (bytes.len() - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}
