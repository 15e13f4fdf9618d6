//! `[dns]`: operator-pinned name resolution, like curl's `--resolve`.
//!
//! `static = { "internal.test" = ["10.0.0.7"] }` makes the delivery clients
//! resolve those names to exactly those addresses (every other name goes to
//! the system resolver). Pinning changes only where a name points: the
//! pinned addresses still pass every egress check of the plugin's policy,
//! so a name pinned to a private address is refused like any other unless
//! the plugin's `allow_private_networks` covers it.
//!
//! Plain data and its checks; the wiring code turns it into a resolver.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::error::{Issue, KeyPath};

/// `[dns]`: name resolution overrides for the delivery clients.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsConfig {
    /// `static`: host name → the only addresses it resolves to. Names are
    /// stored lower-case without a trailing dot (after validation), so they
    /// compare like the host of a parsed URL.
    #[serde(rename = "static")]
    pub static_hosts: BTreeMap<String, Vec<ConfigIp>>,
}

impl DnsConfig {
    /// The pinned names and their addresses, as plain values.
    pub fn pinned(&self) -> impl Iterator<Item = (&str, Vec<IpAddr>)> {
        self.static_hosts
            .iter()
            .map(|(name, ips)| (name.as_str(), ips.iter().map(|ip| ip.0).collect()))
    }
}

/// An IP address written as a string in the config; the error names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigIp(pub IpAddr);

impl<'de> Deserialize<'de> for ConfigIp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ConfigIp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an IP address string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ConfigIp, E> {
                v.parse().map(ConfigIp).map_err(|_| {
                    E::custom(format!(
                        "{v:?} is not an IP address, e.g. \"10.0.0.7\" or \"fd00::7\""
                    ))
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// Check the `[dns]` section at `path` and normalise its names in place:
/// each key must be a host name (not an IP literal, wildcard, URL or
/// `host:port`) with at least one address, and no two keys may name the
/// same host.
pub(crate) fn check(dns: &mut DnsConfig, path: &KeyPath) -> Result<(), Issue> {
    let table = path.key("static");
    let mut normalised = BTreeMap::new();
    for (name, ips) in std::mem::take(&mut dns.static_hosts) {
        let at = table.key(name.as_str());
        let host = host_name(&name).map_err(|reason| Issue::at(at.clone(), reason))?;
        if ips.is_empty() {
            return Err(Issue::at(
                at,
                "lists no addresses; give at least one, or remove the entry",
            ));
        }
        if normalised.contains_key(&host) {
            return Err(Issue::at(
                at,
                format!("names {host:?} again (names are compared case-insensitively)"),
            ));
        }
        normalised.insert(host, ips);
    }
    dns.static_hosts = normalised;
    Ok(())
}

/// `name` as a URL host would carry it: lower-case, punycode, without a
/// trailing dot. Refuses IP literals, wildcards, ports, schemes and paths.
fn host_name(name: &str) -> Result<String, String> {
    let refuse = |why: &str| Err(format!("{name:?} is not a host name: {why}"));
    if name.contains(['/', ':', '@', '\\', '[', ']']) {
        return refuse("write a host name only, without scheme, port or path");
    }
    if name.contains('*') {
        return refuse("wildcards are not supported; list each name");
    }
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    match url::Host::parse(trimmed) {
        Ok(url::Host::Domain(d)) if !d.is_empty() && !d.split('.').any(str::is_empty) => Ok(d),
        Ok(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => {
            refuse("it is an IP address, which needs no resolving")
        }
        _ => refuse("expected labels of letters, digits and - separated by dots"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_like_url_hosts_or_refused() {
        let cases: &[(&str, Option<&str>)] = &[
            ("internal.test", Some("internal.test")),
            ("API.Allowed.Test", Some("api.allowed.test")),
            ("internal.test.", Some("internal.test")),
            ("bücher.example", Some("xn--bcher-kva.example")),
            ("localhost", Some("localhost")),
            ("10.0.0.7", None),
            ("127.1", None),
            ("0x7f000001", None),
            ("::1", None),
            ("[::1]", None),
            ("*.internal.test", None),
            ("internal.test:80", None),
            ("http://internal.test", None),
            ("a..b", None),
            ("", None),
            (".", None),
            ("a b", None),
        ];
        for (name, want) in cases {
            assert_eq!(host_name(name).ok().as_deref(), *want, "{name:?}");
        }
    }
}
