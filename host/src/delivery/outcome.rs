//! Attempt outcomes: what one finished HTTP attempt means for the delivery.
//!
//! Pure classification of a status code or a transport failure into
//! [`AttemptOutcome`] (succeeded, retry later, failed for good), plus the
//! [`AttemptReport`] the client hands back for the delivery log. This module
//! does not schedule retries (see [`super::retry`]) and never sees secret
//! values: reasons are built from status codes and error kinds only.

use std::net::SocketAddr;
use std::time::Duration;

/// What one attempt means for its delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver answered 2xx: the delivery is done.
    Succeeded,
    /// Worth trying again later (connection error, timeout, 408, 429, 5xx).
    Retry {
        /// The receiver's `Retry-After`, already clamped; `None` means
        /// "use the retry schedule".
        after: Option<Duration>,
        /// Short human-readable reason, e.g. `HTTP 503` or `timed out`.
        reason: String,
    },
    /// Trying again cannot help (410, other 4xx, unfollowed 3xx, policy
    /// denial, malformed request): the delivery fails now.
    Failed {
        /// Short human-readable reason.
        reason: String,
    },
}

impl AttemptOutcome {
    /// Whether the outcome says the destination host is unhealthy (a
    /// retryable failure). Feed this to [`crate::breaker::Breaker::record`] as
    /// `!counts_against_host()`; a 4xx means the host is up.
    pub fn counts_against_host(&self) -> bool {
        matches!(self, AttemptOutcome::Retry { .. })
    }
}

/// Why an attempt ended without a usable HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportFailure {
    /// The total attempt timeout elapsed (connect, headers or body).
    Timeout,
    /// Name resolution, TCP connect, TLS handshake or the HTTP exchange
    /// failed; the text is for the log.
    Connection(String),
    /// The egress guard refused the destination (resolved address or
    /// redirect target). Permanent: the same request would be refused again.
    Denied(String),
    /// The request itself cannot be sent (bad URL, bad header). Permanent.
    InvalidRequest(String),
}

/// Classify a final HTTP status. `retry_after` is the parsed, clamped
/// `Retry-After` header, used only when the status is retryable. A 3xx
/// reaching this point was not followed (redirects off, hops exhausted or no
/// `Location`), so it is a failure.
pub fn classify_status(status: u16, retry_after: Option<Duration>) -> AttemptOutcome {
    match status {
        200..=299 => AttemptOutcome::Succeeded,
        408 | 429 | 500..=599 => AttemptOutcome::Retry {
            after: retry_after,
            reason: format!("HTTP {status}"),
        },
        300..=399 => AttemptOutcome::Failed {
            reason: format!("HTTP {status}: redirect not followed"),
        },
        410 => AttemptOutcome::Failed {
            reason: "HTTP 410: receiver is gone".into(),
        },
        _ => AttemptOutcome::Failed {
            reason: format!("HTTP {status}"),
        },
    }
}

/// Classify an attempt that produced no response: connection trouble and
/// timeouts are retried, denials and malformed requests are not.
pub fn classify_failure(failure: &TransportFailure) -> AttemptOutcome {
    match failure {
        TransportFailure::Timeout => AttemptOutcome::Retry {
            after: None,
            reason: "timed out".into(),
        },
        TransportFailure::Connection(e) => AttemptOutcome::Retry {
            after: None,
            reason: format!("connection failed: {e}"),
        },
        TransportFailure::Denied(e) => AttemptOutcome::Failed {
            reason: format!("denied by egress policy: {e}"),
        },
        TransportFailure::InvalidRequest(e) => AttemptOutcome::Failed {
            reason: format!("invalid request: {e}"),
        },
    }
}

/// Everything the delivery log needs about one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptReport {
    /// Final HTTP status, when a response arrived.
    pub status_code: Option<u16>,
    /// Transport or policy error text, when the attempt failed without a
    /// usable response; never contains secret values or URL paths.
    pub error: Option<String>,
    /// Wall time of the whole attempt, redirects included.
    pub duration: Duration,
    /// What the attempt means for the delivery.
    pub outcome: AttemptOutcome,
    /// The first bytes of the final response body, at most the request's
    /// `response_body_limit`.
    pub response_bytes: Vec<u8>,
    /// True when the response body was longer than the limit (or did not
    /// finish within the timeout) and was cut.
    pub response_truncated: bool,
    /// The final response's `content-type`, when it had one.
    pub response_content_type: Option<String>,
    /// The address the final request was sent to (after the guard's check).
    pub remote_addr: Option<SocketAddr>,
    /// Redirect hops followed.
    pub redirects: u32,
    /// True when the egress guard refused the destination; the worker logs
    /// these as policy errors.
    pub denied_by_policy: bool,
    /// True when no response arrived within the timeout.
    pub timed_out: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classification() {
        let ra = Some(Duration::from_secs(7));
        // (status, want: 's'ucceeded, 'r'etry, 'f'ailed, keeps retry-after)
        let cases: &[(u16, char)] = &[
            (200, 's'),
            (201, 's'),
            (204, 's'),
            (299, 's'),
            (301, 'f'),
            (302, 'f'),
            (304, 'f'),
            (308, 'f'),
            (400, 'f'),
            (401, 'f'),
            (403, 'f'),
            (404, 'f'),
            (408, 'r'),
            (409, 'f'),
            (410, 'f'),
            (413, 'f'),
            (422, 'f'),
            (429, 'r'),
            (500, 'r'),
            (502, 'r'),
            (503, 'r'),
            (599, 'r'),
            (100, 'f'),
            (600, 'f'),
        ];
        for &(status, want) in cases {
            let got = classify_status(status, ra);
            let kind = match &got {
                AttemptOutcome::Succeeded => 's',
                AttemptOutcome::Retry { after, reason } => {
                    assert_eq!(*after, ra, "{status} keeps Retry-After");
                    assert_eq!(reason, &format!("HTTP {status}"));
                    'r'
                }
                AttemptOutcome::Failed { reason } => {
                    assert!(reason.starts_with(&format!("HTTP {status}")), "{reason}");
                    'f'
                }
            };
            assert_eq!(kind, want, "status {status}");
        }
    }

    #[test]
    fn failure_classification() {
        let retry = |after: Option<Duration>, reason: &str| AttemptOutcome::Retry {
            after,
            reason: reason.into(),
        };
        let failed = |reason: &str| AttemptOutcome::Failed {
            reason: reason.into(),
        };
        let cases = [
            (TransportFailure::Timeout, retry(None, "timed out")),
            (
                TransportFailure::Connection("refused".into()),
                retry(None, "connection failed: refused"),
            ),
            (
                TransportFailure::Denied("10.0.0.1 is private".into()),
                failed("denied by egress policy: 10.0.0.1 is private"),
            ),
            (
                TransportFailure::InvalidRequest("bad header".into()),
                failed("invalid request: bad header"),
            ),
        ];
        for (failure, want) in cases {
            assert_eq!(classify_failure(&failure), want, "{failure:?}");
        }
    }

    #[test]
    fn only_retryable_outcomes_count_against_the_host() {
        assert!(classify_status(503, None).counts_against_host());
        assert!(classify_failure(&TransportFailure::Timeout).counts_against_host());
        assert!(!classify_status(200, None).counts_against_host());
        assert!(!classify_status(404, None).counts_against_host());
    }
}
