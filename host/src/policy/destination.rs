//! URL-level checks and the [`Destination`] they produce: where a request
//! goes (scheme, normalised host, effective port), decided once by the `url`
//! crate so that the policy, the connector and the wire agree.
//!
//! Refuses what parsers disagree about or what smuggles a second host:
//! backslashes, whitespace and control characters, `user:pass@`, IPv6 zone
//! ids, over-long URLs, and non-http(s) schemes. Knows nothing about the
//! allowlist, IP classes or secrets.

use std::fmt;
use std::net::IpAddr;

use url::Url;

use super::error::PolicyDenied;
use super::pattern::{Host, Scheme};

/// Longest URL (in bytes) the policy accepts, for requests and redirects.
pub const MAX_URL_BYTES: usize = 8 * 1024;

/// Where a checked request goes. Only [`super::EgressPolicy`] creates one,
/// so holding a `Destination` means the URL passed the policy.
///
/// `Debug` and `Display` show `scheme://host:port` only, never the path or
/// query (which may hold filled-in secrets).
#[derive(Clone, PartialEq, Eq)]
pub struct Destination {
    scheme: Scheme,
    host: Host,
    host_str: String,
    port: u16,
    url: Url,
}

impl Destination {
    /// http or https.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host: lower-case, punycode, no trailing dot; an IP literal in
    /// its canonical form without brackets (`127.0.0.1`, `::1`). This is
    /// the name to resolve and to send as TLS SNI (unless an IP literal).
    pub fn host(&self) -> &str {
        &self.host_str
    }

    /// The host as a domain-or-IP value.
    pub fn host_kind(&self) -> &Host {
        &self.host
    }

    /// The effective port (the scheme's default when the URL has none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The IP address, when the URL's host is an IP literal.
    pub fn ip_literal(&self) -> Option<IpAddr> {
        match self.host {
            Host::Ip(ip) => Some(ip),
            Host::Domain(_) => None,
        }
    }

    /// Whether the URL's host is an IP literal (no DNS lookup needed).
    pub fn is_ip_literal(&self) -> bool {
        self.ip_literal().is_some()
    }

    /// The parsed URL the checks ran on (placeholder form when it came from
    /// `check_request` before `fill_secrets`). Relative redirects are
    /// resolved against it.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Parse and check a URL, without the allowlist or IP checks.
    pub(crate) fn parse(raw: &str) -> Result<Destination, PolicyDenied> {
        check_raw_text(raw)?;
        if raw_before_path(raw).contains("{{") {
            return Err(PolicyDenied::PlaceholderInAuthority);
        }
        let authority = raw_authority(raw);
        if authority.contains('[') && authority.contains('%') {
            return Err(PolicyDenied::ZoneId);
        }
        let url = Url::parse(raw).map_err(|e| PolicyDenied::InvalidUrl {
            reason: e.to_string(),
        })?;
        Destination::from_url(url, authority.contains('@'))
    }

    /// Check an already-parsed URL. `raw_userinfo` says whether the raw
    /// text had an `@` in its authority (the `url` crate drops an empty
    /// `@`; we refuse it all the same).
    pub(crate) fn from_url(url: Url, raw_userinfo: bool) -> Result<Destination, PolicyDenied> {
        let scheme =
            Scheme::from_name(url.scheme()).ok_or_else(|| PolicyDenied::SchemeNotAllowed {
                scheme: url.scheme().to_owned(),
            })?;
        if raw_userinfo || !url.username().is_empty() || url.password().is_some() {
            return Err(PolicyDenied::UserInfo);
        }
        let host = match url.host() {
            Some(h) => Host::from_url_host(h),
            None => {
                return Err(PolicyDenied::InvalidUrl {
                    reason: "the URL has no host".into(),
                });
            }
        };
        let host_str = match &host {
            Host::Domain(d) if d.is_empty() => {
                return Err(PolicyDenied::InvalidUrl {
                    reason: "the URL has no host".into(),
                });
            }
            Host::Domain(d) if d.contains(['{', '}']) => {
                return Err(PolicyDenied::PlaceholderInAuthority);
            }
            // The URL standard allows e.g. `"` and `` ` `` in a host; the
            // client's URI parser (RFC 3986 reg-name) does not. Refuse here,
            // so the policy and the connector agree on every host it passes.
            Host::Domain(d) if !d.chars().all(is_reg_name_char) => {
                return Err(PolicyDenied::InvalidUrl {
                    reason: format!("the host {d:?} has characters an HTTP client refuses"),
                });
            }
            Host::Domain(d) => d.clone(),
            Host::Ip(ip) => ip.to_string(),
        };
        let port = url.port_or_known_default().unwrap_or(scheme.default_port());
        Ok(Destination {
            scheme,
            host,
            host_str,
            port,
            url,
        })
    }

    /// Same scheme, host and port.
    pub(crate) fn same_origin(&self, other: &Destination) -> bool {
        self.scheme == other.scheme && self.host == other.host && self.port == other.port
    }
}

/// RFC 3986 `reg-name` characters (unreserved and sub-delims), as the
/// lower-case, percent-decoded host the `url` crate produces.
fn is_reg_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=".contains(c)
}

/// Textual checks on a raw URL or `Location`, before any parser sees it:
/// length, backslashes, whitespace and control characters.
pub(crate) fn check_raw_text(raw: &str) -> Result<(), PolicyDenied> {
    if raw.len() > MAX_URL_BYTES {
        return Err(PolicyDenied::UrlTooLong {
            len: raw.len(),
            max: MAX_URL_BYTES,
        });
    }
    if raw.contains('\\') {
        return Err(PolicyDenied::Backslash);
    }
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(PolicyDenied::ControlCharacter);
    }
    Ok(())
}

/// The raw text between `scheme:` (and its slashes) and the first `/`,
/// `?` or `#`: where the host and any userinfo are.
pub(crate) fn raw_authority(raw: &str) -> &str {
    &raw[authority_range(raw)]
}

/// The raw text before the path: scheme, slashes and authority.
pub(crate) fn raw_before_path(raw: &str) -> &str {
    &raw[..authority_range(raw).end]
}

fn authority_range(raw: &str) -> std::ops::Range<usize> {
    let mut start = raw.find(':').map_or(0, |i| i + 1);
    start += raw[start..].len() - raw[start..].trim_start_matches('/').len();
    let end = raw[start..]
        .find(['/', '?', '#'])
        .map_or(raw.len(), |i| start + i);
    start..end
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host {
            Host::Ip(IpAddr::V6(v6)) => write!(f, "{}://[{v6}]:{}", self.scheme, self.port),
            _ => write!(f, "{}://{}:{}", self.scheme, self.host_str, self.port),
        }
    }
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Destination({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `fuzz::egress::arbitrary_urls_never_panic_and_accepted_ones_agree_with_hyper`:
    /// `http://"` passed the policy, then failed as an invalid URI at send.
    #[test]
    fn hosts_an_http_client_refuses_are_refused_by_the_policy() {
        for raw in ["http://\"/", "https://a`b.example/", "http://x\"y.com/"] {
            assert!(
                matches!(
                    Destination::parse(raw),
                    Err(PolicyDenied::InvalidUrl { .. })
                ),
                "{raw}: {:?}",
                Destination::parse(raw)
            );
        }
        assert!(Destination::parse("https://a-b.example.com/x").is_ok());
    }
}
