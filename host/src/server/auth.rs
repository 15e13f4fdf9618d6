//! Bearer-token authentication of the audiences: senders (ingest tokens),
//! operators (admin tokens), and readers of the management API (read
//! tokens: its `GET`s and `/metrics`; admin tokens read too). No token
//! opens another audience's endpoints. Comparison is constant-time over SHA-256 digests, so
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
    /// The management API's calls that change something or run a plugin.
    Admin,
    /// The management API's reads and metrics.
    Read,
}

/// The configured tokens.
pub struct Tokens {
    ingest: Vec<[u8; 32]>,
    admin: Vec<[u8; 32]>,
    read: Vec<[u8; 32]>,
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
    pub fn new(
        ingest: &[Secret],
        admin: &[Secret],
        read: &[Secret],
        insecure_no_auth: bool,
    ) -> Self {
        let digests = |tokens: &[Secret]| tokens.iter().map(|s| digest(s.expose())).collect();
        Self {
            ingest: digests(ingest),
            admin: digests(admin),
            read: digests(read),
            insecure_no_auth,
        }
    }

    /// Check the `authorization` header value for an audience.
    pub(crate) fn check(&self, header: Option<&str>, audience: Audience) -> Result<(), Refusal> {
        self.holder(header, audience).map(drop)
    }

    /// Like [`Self::check`], and who is calling: the digest of the token
    /// presented (all zeros without auth), which keys per-token limits.
    pub(crate) fn holder(
        &self,
        header: Option<&str>,
        audience: Audience,
    ) -> Result<[u8; 32], Refusal> {
        if self.insecure_no_auth {
            return Ok([0; 32]);
        }
        // The scheme is case-insensitive (RFC 9110 §11.1), followed by
        // spaces or tabs.
        let token = header
            .and_then(|h| h.trim_start().split_once([' ', '\t']))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|t| !t.is_empty())
            .ok_or(Refusal::Missing)?;
        let presented = digest(token);
        let valid: &[&[[u8; 32]]] = match audience {
            Audience::Ingest => &[&self.ingest],
            Audience::Admin => &[&self.admin],
            Audience::Read => &[&self.admin, &self.read],
        };
        // Compare against every token without short-circuiting.
        let mut ok = subtle::Choice::from(0);
        for t in valid.iter().flat_map(|list| list.iter()) {
            ok |= t.ct_eq(&presented);
        }
        if bool::from(ok) {
            Ok(presented)
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
        let t = Tokens::new(
            &[Secret::new("ing")],
            &[Secret::new("adm")],
            &[Secret::new("rd")],
            false,
        );
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
        // Read tokens read; admin tokens read too; neither ingest.
        assert_eq!(t.check(Some("Bearer rd"), Audience::Read), Ok(()));
        assert_eq!(t.check(Some("Bearer adm"), Audience::Read), Ok(()));
        assert_eq!(
            t.check(Some("Bearer rd"), Audience::Admin),
            Err(Refusal::Wrong)
        );
        assert_eq!(
            t.check(Some("Bearer ing"), Audience::Read),
            Err(Refusal::Wrong)
        );
        assert_eq!(
            t.check(Some("Bearer rd"), Audience::Ingest),
            Err(Refusal::Wrong)
        );
        assert_eq!(
            t.check(Some("Basic abc"), Audience::Admin),
            Err(Refusal::Missing)
        );
        assert_eq!(
            t.check(Some("Bearer "), Audience::Admin),
            Err(Refusal::Missing)
        );
        for header in ["BEARER adm", "bearer\tadm", "Bearer   adm  "] {
            assert_eq!(t.check(Some(header), Audience::Admin), Ok(()), "{header:?}");
        }
        assert_eq!(
            t.check(Some("Bearerx adm"), Audience::Admin),
            Err(Refusal::Missing)
        );
    }

    #[test]
    fn insecure_mode_lets_everything_in() {
        let t = Tokens::new(&[], &[], &[], true);
        assert_eq!(t.check(None, Audience::Admin), Ok(()));
    }
}
