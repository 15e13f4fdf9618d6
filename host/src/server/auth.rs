//! Bearer-token authentication of the two audiences: senders (ingest
//! tokens) and operators (admin tokens). Neither kind of token opens the
//! other's endpoints. Comparison is constant-time over SHA-256 digests, so
//! neither the content nor the length of a valid token leaks through
//! timing.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::model::Secret;

/// Which endpoints a request wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    /// `POST /v1/events`.
    Ingest,
    /// The management API and metrics.
    Admin,
}

/// The configured tokens.
pub struct Tokens {
    ingest: Vec<[u8; 32]>,
    admin: Vec<[u8; 32]>,
    insecure_no_auth: bool,
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No `authorization: Bearer …` header.
    Missing,
    /// A token that is not valid for this audience.
    Wrong,
}

impl Tokens {
    /// Tokens from configuration.
    pub fn new(ingest: &[Secret], admin: &[Secret], insecure_no_auth: bool) -> Self {
        Self {
            ingest: ingest.iter().map(|s| digest(s.expose())).collect(),
            admin: admin.iter().map(|s| digest(s.expose())).collect(),
            insecure_no_auth,
        }
    }

    /// Check the `authorization` header value for an audience.
    pub(crate) fn check(&self, header: Option<&str>, audience: Audience) -> Result<(), Refusal> {
        if self.insecure_no_auth {
            return Ok(());
        }
        let token = header
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(Refusal::Missing)?;
        let presented = digest(token);
        let valid = match audience {
            Audience::Ingest => &self.ingest,
            Audience::Admin => &self.admin,
        };
        // Compare against every token without short-circuiting.
        let mut ok = subtle::Choice::from(0);
        for t in valid {
            ok |= t.ct_eq(&presented);
        }
        if bool::from(ok) {
            Ok(())
        } else {
            Err(Refusal::Wrong)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_are_separate() {
        let t = Tokens::new(&[Secret::new("ing")], &[Secret::new("adm")], false);
        assert_eq!(t.check(Some("Bearer ing"), Audience::Ingest), Ok(()));
        assert_eq!(t.check(Some("Bearer adm"), Audience::Admin), Ok(()));
        assert_eq!(
            t.check(Some("Bearer adm"), Audience::Ingest),
            Err(Refusal::Wrong)
        );
        assert_eq!(
            t.check(Some("Bearer ing"), Audience::Admin),
            Err(Refusal::Wrong)
        );
        assert_eq!(t.check(None, Audience::Admin), Err(Refusal::Missing));
        assert_eq!(
            t.check(Some("Basic abc"), Audience::Admin),
            Err(Refusal::Missing)
        );
        assert_eq!(
            t.check(Some("Bearer "), Audience::Admin),
            Err(Refusal::Missing)
        );
    }

    #[test]
    fn insecure_mode_lets_everything_in() {
        let t = Tokens::new(&[], &[], true);
        assert_eq!(t.check(None, Audience::Admin), Ok(()));
    }
}
