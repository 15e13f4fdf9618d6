//! Destination patterns: the entries of a plugin's `allowed_hosts`
//! ([`HostPattern`]) and of a secret's `hosts` ([`HostName`]).
//!
//! Forms of a [`HostPattern`]:
//! - `https://api.example.com`, `http://api.example.com:8080`: one host; the
//!   port is the scheme's default (443/80) unless written.
//! - `https://*.example.com`: any subdomain, at any depth
//!   (`a.example.com`, `a.b.example.com`), but **not** `example.com`
//!   itself; list both if both are wanted.
//! - `https://*`, `https://*:*`: any host; `:*` means any port. Private
//!   networks stay blocked whatever the pattern says.
//! - `http://127.0.0.1:9000`, `http://[::1]:8080`: IP literals (still subject
//!   to the private-network block; see `allow_private_networks`).
//! - `api.example.com`, `*.example.com` (no scheme): https only.
//!
//! Host names are compared after the same normalisation the `url` crate
//! applies to request URLs (lower case, IDNA/punycode, IPv4 number forms),
//! ignoring one trailing dot. Knows nothing about requests, DNS or secrets.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use super::error::PatternError;

/// The two schemes the host delivers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// Parse a lower-case scheme name; `None` for anything but http/https.
    pub fn from_name(name: &str) -> Option<Scheme> {
        match name {
            "http" => Some(Scheme::Http),
            "https" => Some(Scheme::Https),
            _ => None,
        }
    }

    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// 80 or 443.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A normalised request host: a lower-case domain without trailing dot, or
/// an IP address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name, lower-case ASCII (punycode), no trailing dot.
    Domain(String),
    /// An IP literal.
    Ip(IpAddr),
}

impl Host {
    /// Normalise a host as parsed by the `url` crate.
    pub(crate) fn from_url_host(host: url::Host<&str>) -> Host {
        match host {
            url::Host::Domain(d) => Host::Domain(normalise_domain(d)),
            url::Host::Ipv4(v4) => Host::Ip(IpAddr::V4(v4)),
            url::Host::Ipv6(v6) => Host::Ip(IpAddr::V6(v6)),
        }
    }
}

fn normalise_domain(d: &str) -> String {
    d.strip_suffix('.').unwrap_or(d).to_ascii_lowercase()
}

/// The host part of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Any,
    Exact(String),
    /// Stored with its leading dot: `.example.com`.
    Suffix(String),
    Ip(IpAddr),
}

impl HostMatch {
    fn parse(host: &str, allow_any: bool) -> Result<HostMatch, String> {
        if host == "*" {
            return if allow_any {
                Ok(HostMatch::Any)
            } else {
                Err("`*` is not allowed here; list the hosts".into())
            };
        }
        if let Some(suffix) = host.strip_prefix("*.") {
            return match parse_host(suffix)? {
                Host::Domain(d) if !d.is_empty() && !d.contains('*') => {
                    Ok(HostMatch::Suffix(format!(".{d}")))
                }
                _ => Err("a `*.` wildcard must be followed by a domain name".into()),
            };
        }
        if host.contains('*') {
            return Err("`*` is allowed only as the whole host or as a leading `*.`".into());
        }
        Ok(match parse_host(host)? {
            Host::Domain(d) => HostMatch::Exact(d),
            Host::Ip(ip) => HostMatch::Ip(ip),
        })
    }

    fn matches(&self, host: &Host) -> bool {
        match (self, host) {
            (HostMatch::Any, _) => true,
            (HostMatch::Exact(want), Host::Domain(d)) => want == d,
            (HostMatch::Suffix(suffix), Host::Domain(d)) => d.ends_with(suffix.as_str()),
            (HostMatch::Ip(want), Host::Ip(ip)) => want == ip,
            _ => false,
        }
    }
}

fn parse_host(host: &str) -> Result<Host, String> {
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if host.contains('%') {
        return Err("percent-encoding and IPv6 zone ids are not allowed".into());
    }
    let parsed = url::Host::parse(host).map_err(|e| format!("bad host: {e}"))?;
    Ok(match parsed {
        url::Host::Domain(d) => Host::Domain(normalise_domain(&d)),
        url::Host::Ipv4(v4) => Host::Ip(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Host::Ip(IpAddr::V6(v6)),
    })
}

/// One `allowed_hosts` entry: scheme, host (exact, `*.suffix` or `*`) and
/// port (exact, scheme default, or `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    source: String,
    scheme: Scheme,
    host: HostMatch,
    /// `None` = any port.
    port: Option<u16>,
}

impl HostPattern {
    /// Whether a request to `scheme://host:port` matches.
    pub fn matches(&self, scheme: Scheme, host: &Host, port: u16) -> bool {
        self.scheme == scheme && self.port.is_none_or(|p| p == port) && self.host.matches(host)
    }

    /// The IP address, when the pattern names a single IP literal.
    pub fn ip_literal(&self) -> Option<IpAddr> {
        match self.host {
            HostMatch::Ip(ip) => Some(ip),
            _ => None,
        }
    }
}

impl FromStr for HostPattern {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| PatternError {
            pattern: s.to_owned(),
            reason,
        };
        let (scheme, rest) = match s.split_once("://") {
            Some((scheme, rest)) => {
                let scheme = Scheme::from_name(&scheme.to_ascii_lowercase())
                    .ok_or_else(|| err("the scheme must be http or https".into()))?;
                (scheme, rest)
            }
            None => (Scheme::Https, s),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@', '\\']) || rest.chars().any(char::is_whitespace) {
            return Err(err(
                "a pattern is scheme://host[:port] only: no path, query, credentials or spaces"
                    .into(),
            ));
        }
        let (host, port) = split_host_port(rest).map_err(err)?;
        let port = match port {
            None => Some(scheme.default_port()),
            Some("*") => None,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p != 0 => Some(p),
                _ => {
                    return Err(err(format!(
                        "port {p:?} must be a number from 1 to 65535 or *"
                    )));
                }
            },
        };
        let host = HostMatch::parse(host, true).map_err(err)?;
        Ok(HostPattern {
            source: s.to_owned(),
            scheme,
            host,
            port,
        })
    }
}

fn split_host_port(s: &str) -> Result<(&str, Option<&str>), String> {
    if s.starts_with('[') {
        let end = s.find(']').ok_or("unterminated [ in an IPv6 literal")?;
        return match &s[end + 1..] {
            "" => Ok((&s[..=end], None)),
            after => match after.strip_prefix(':') {
                Some(port) => Ok((&s[..=end], Some(port))),
                None => Err("unexpected text after the IPv6 literal".into()),
            },
        };
    }
    match s.split_once(':') {
        Some((_, port)) if port.contains(':') => {
            Err("put IPv6 addresses in brackets: http://[::1]:8080".into())
        }
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((s, None)),
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// One entry of a secret's `hosts`: an exact host name (or IP literal), or
/// `*.example.com` for any subdomain (not `example.com` itself). Any scheme
/// and port: the request already passed `allowed_hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostName(HostMatch);

impl HostName {
    /// Whether the secret may be sent to `host`.
    pub fn matches(&self, host: &Host) -> bool {
        self.0.matches(host)
    }
}

impl FromStr for HostName {
    type Err = PatternError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| PatternError {
            pattern: s.to_owned(),
            reason,
        };
        if s.contains("://") || s.contains(['/', '@', '\\']) {
            return Err(err(
                "write a host name only, without scheme, port or path".into()
            ));
        }
        let (host, port) = split_host_port(s).map_err(err)?;
        if port.is_some() {
            return Err(err("write a host name only, without a port".into()));
        }
        HostMatch::parse(host, false).map(HostName).map_err(err)
    }
}
