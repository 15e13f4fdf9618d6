//! Standard Webhooks signatures (<https://www.standardwebhooks.com>).
//!
//! A [`SigningKey`] signs `"{msg_id}.{timestamp}.{body}"` with HMAC-SHA256
//! and verifies incoming signatures (for `wasmhook sink` and tests). Pure
//! functions of their inputs: the caller passes the clock. This module knows
//! nothing of HTTP clients, plugins or the store; it never prints the key.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Prefix of a Standard Webhooks secret in its textual form.
const WHSEC_PREFIX: &str = "whsec_";
/// Shortest key the specification accepts, in bytes.
const MIN_KEY_BYTES: usize = 24;
/// Longest key the specification accepts, in bytes.
const MAX_KEY_BYTES: usize = 64;

/// Why a `whsec_…` string is not a usable key. Never contains the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The part after `whsec_` is not standard base64.
    #[error("signing secret is not valid base64 after the `whsec_` prefix")]
    NotBase64,
    /// The decoded key is shorter or longer than the specification allows.
    #[error("signing secret decodes to {0} bytes; Standard Webhooks keys are 24 to 64 bytes")]
    BadLength(usize),
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The `webhook-timestamp` header is not an integer number of seconds.
    #[error("webhook-timestamp is not an integer")]
    BadTimestamp,
    /// The timestamp is further from `now` than the tolerance allows
    /// (replayed, or clocks far apart).
    #[error("webhook-timestamp is {skew_s} s away from now, tolerance is {tolerance_s} s")]
    OutsideTolerance {
        /// Signed distance `now - timestamp`, in seconds.
        skew_s: i64,
        /// The tolerance the caller allowed.
        tolerance_s: u64,
    },
    /// No `v1,` entry of the signature header matches.
    #[error("no webhook-signature entry matches")]
    NoMatch,
}

/// An HMAC-SHA256 key for Standard Webhooks signatures. `Debug` hides the
/// key bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    key: Vec<u8>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

impl SigningKey {
    /// Parse a `whsec_<base64>` secret. The prefix is optional (some
    /// providers hand out the bare base64 key); the key must decode to 24–64
    /// bytes as the specification requires.
    pub fn from_whsec(secret: &str) -> Result<Self, KeyError> {
        let b64 = secret
            .trim()
            .strip_prefix(WHSEC_PREFIX)
            .unwrap_or(secret.trim());
        let key = BASE64.decode(b64).map_err(|_| KeyError::NotBase64)?;
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&key.len()) {
            return Err(KeyError::BadLength(key.len()));
        }
        Ok(Self { key })
    }

    /// Build a key from raw bytes (any length HMAC accepts). For tests and
    /// for generating new secrets; configuration goes through
    /// [`SigningKey::from_whsec`].
    pub fn from_bytes(key: impl Into<Vec<u8>>) -> Self {
        Self { key: key.into() }
    }

    /// The key in its `whsec_<base64>` form, e.g. to hand to a receiver.
    pub fn to_whsec(&self) -> String {
        format!("{WHSEC_PREFIX}{}", BASE64.encode(&self.key))
    }

    fn mac(&self, msg_id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
        // HMAC accepts keys of any length; `new_from_slice` cannot fail.
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `webhook-signature` header value for one message:
    /// `v1,` + base64(HMAC-SHA256(key, "{msg_id}.{timestamp_s}.{body}")).
    pub fn sign(&self, msg_id: &str, timestamp_s: i64, body: &[u8]) -> String {
        let tag = self.mac(msg_id, &timestamp_s.to_string(), body).finalize();
        format!("v1,{}", BASE64.encode(tag.into_bytes()))
    }

    /// Verify a received message. `signature_header` is the space-separated
    /// list of `version,signature` entries; entries of other versions are
    /// ignored. The comparison is constant-time. The timestamp must be within
    /// `tolerance_s` seconds of `now_s`, in either direction.
    pub fn verify(
        &self,
        msg_id: &str,
        timestamp_header: &str,
        signature_header: &str,
        body: &[u8],
        now_s: i64,
        tolerance_s: u64,
    ) -> Result<(), VerifyError> {
        let timestamp = timestamp_header.trim();
        let ts: i64 = timestamp.parse().map_err(|_| VerifyError::BadTimestamp)?;
        let skew_s = now_s.saturating_sub(ts);
        if skew_s.unsigned_abs() > tolerance_s {
            return Err(VerifyError::OutsideTolerance {
                skew_s,
                tolerance_s,
            });
        }
        let mac = self.mac(msg_id, timestamp, body);
        let matched = signature_header
            .split_ascii_whitespace()
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .filter_map(|b64| BASE64.decode(b64).ok())
            .any(|sig| mac.clone().verify_slice(&sig).is_ok());
        if matched {
            Ok(())
        } else {
            Err(VerifyError::NoMatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The published test vector of the Standard Webhooks specification.
    const KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn key() -> SigningKey {
        SigningKey::from_whsec(KEY).unwrap()
    }

    #[test]
    fn signs_the_published_test_vector() {
        assert_eq!(key().sign(MSG_ID, TS, BODY), SIG);
    }

    #[test]
    fn key_parsing() {
        let cases: &[(&str, Result<(), KeyError>)] = &[
            (KEY, Ok(())),
            ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", Ok(())),
            (" whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n", Ok(())),
            ("whsec_not base64!", Err(KeyError::NotBase64)),
            ("whsec_c2hvcnQ=", Err(KeyError::BadLength(5))),
            ("whsec_", Err(KeyError::BadLength(0))),
        ];
        for (input, want) in cases {
            let got = SigningKey::from_whsec(input).map(|_| ());
            assert_eq!(&got, want, "input {input:?}");
        }
    }

    #[test]
    fn whsec_round_trips_and_debug_hides_the_key() {
        let k = key();
        assert_eq!(k.to_whsec(), KEY);
        assert_eq!(format!("{k:?}"), "SigningKey(***)");
    }

    #[test]
    fn verify_cases() {
        let other = SigningKey::from_bytes(vec![7u8; 32]);
        let other_sig = other.sign(MSG_ID, TS, BODY);
        let ts = TS.to_string();
        // (key, msg_id, timestamp, signature header, body, now, want)
        type Case<'a> = (
            &'a SigningKey,
            &'a str,
            &'a str,
            String,
            &'a [u8],
            i64,
            Result<(), VerifyError>,
        );
        let k = key();
        let cases: Vec<Case> = vec![
            (&k, MSG_ID, &ts, SIG.into(), BODY, TS, Ok(())),
            // Within tolerance on both sides.
            (&k, MSG_ID, &ts, SIG.into(), BODY, TS + 300, Ok(())),
            (&k, MSG_ID, &ts, SIG.into(), BODY, TS - 300, Ok(())),
            // Several entries: one matching is enough; unknown versions skipped.
            (
                &k,
                MSG_ID,
                &ts,
                format!("v2,abc {other_sig} {SIG}"),
                BODY,
                TS,
                Ok(()),
            ),
            // Wrong key.
            (
                &other,
                MSG_ID,
                &ts,
                SIG.into(),
                BODY,
                TS,
                Err(VerifyError::NoMatch),
            ),
            // Tampered body, id, timestamp.
            (
                &k,
                MSG_ID,
                &ts,
                SIG.into(),
                br#"{"test": 2432232315}"#,
                TS,
                Err(VerifyError::NoMatch),
            ),
            (
                &k,
                "msg_other",
                &ts,
                SIG.into(),
                BODY,
                TS,
                Err(VerifyError::NoMatch),
            ),
            (
                &k,
                MSG_ID,
                "1614265331",
                SIG.into(),
                BODY,
                TS,
                Err(VerifyError::NoMatch),
            ),
            // Signature garbage, missing version, empty.
            (
                &k,
                MSG_ID,
                &ts,
                "v1,!!!".into(),
                BODY,
                TS,
                Err(VerifyError::NoMatch),
            ),
            (
                &k,
                MSG_ID,
                &ts,
                SIG[3..].into(),
                BODY,
                TS,
                Err(VerifyError::NoMatch),
            ),
            (
                &k,
                MSG_ID,
                &ts,
                String::new(),
                BODY,
                TS,
                Err(VerifyError::NoMatch),
            ),
            // Expired and from the future.
            (
                &k,
                MSG_ID,
                &ts,
                SIG.into(),
                BODY,
                TS + 301,
                Err(VerifyError::OutsideTolerance {
                    skew_s: 301,
                    tolerance_s: 300,
                }),
            ),
            (
                &k,
                MSG_ID,
                &ts,
                SIG.into(),
                BODY,
                TS - 301,
                Err(VerifyError::OutsideTolerance {
                    skew_s: -301,
                    tolerance_s: 300,
                }),
            ),
            (
                &k,
                MSG_ID,
                "soon",
                SIG.into(),
                BODY,
                TS,
                Err(VerifyError::BadTimestamp),
            ),
        ];
        for (i, (key, id, ts, sig, body, now, want)) in cases.into_iter().enumerate() {
            assert_eq!(key.verify(id, ts, &sig, body, now, 300), want, "case {i}");
        }
    }
}
