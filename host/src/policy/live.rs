//! Secrets whose value changes while the host runs: an OAuth2 access
//! token that a background task fetches and refreshes. The policy reads
//! the value at fill time, through [`LiveSecret`], and knows nothing of
//! where it comes from (no I/O here).

use std::fmt;
use std::sync::Arc;

use crate::model::Secret;

/// A value read when a request is filled in, not at load time.
pub trait LiveSecret: Send + Sync {
    /// The value to send now, or why there is none.
    fn current(&self) -> Result<Secret, Unavailable>;

    /// A receiver refused a request that carried this value (HTTP 401):
    /// get a new one soon.
    fn rejected(&self);

    /// Every value a request in flight may have carried: the current one,
    /// expired or not, and the one it replaced. Redaction hides them all,
    /// since a receiver may quote a token that was renewed (or expired)
    /// while its answer was on the way.
    fn recent(&self) -> Vec<Secret> {
        self.current().into_iter().collect()
    }
}

/// Why a live secret has no value to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// The first value is on its way (a fetch that has not finished):
    /// worth waiting a moment for, not worth an attempt.
    Arriving,
    /// There is none, for this reason (shown in the delivery log, so never
    /// a secret value).
    Missing(String),
}

/// Where a secret's value comes from.
#[derive(Clone)]
pub enum SecretValue {
    /// Read once at load (from the environment or a file).
    Fixed(Secret),
    /// Read at every fill.
    Live(Arc<dyn LiveSecret>),
}

impl SecretValue {
    /// The value to send now, or why there is none.
    pub(crate) fn current(&self) -> Result<Secret, Unavailable> {
        match self {
            SecretValue::Fixed(s) => Ok(s.clone()),
            SecretValue::Live(live) => live.current(),
        }
    }

    /// Every value requests may have carried lately (see
    /// [`LiveSecret::recent`]).
    pub(crate) fn recent(&self) -> Vec<Secret> {
        match self {
            SecretValue::Fixed(s) => vec![s.clone()],
            SecretValue::Live(live) => live.recent(),
        }
    }
}

impl From<Secret> for SecretValue {
    fn from(secret: Secret) -> Self {
        SecretValue::Fixed(secret)
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretValue::Fixed(s) => write!(f, "Fixed({s:?})"),
            SecretValue::Live(_) => f.write_str("Live(***)"),
        }
    }
}
