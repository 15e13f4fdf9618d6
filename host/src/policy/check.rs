//! [`EgressPolicy`]: one plugin's egress rules, compiled once from its
//! config ([`PolicySpec`]) and applied to every request it builds, every
//! address its destinations resolve to, and every redirect hop.
//!
//! Pure: no DNS, no sockets, no clock. The delivery connector calls
//! [`EgressPolicy::check_request`] before sending,
//! [`EgressPolicy::filter_resolved`] after resolving and before connecting
//! (to the checked addresses only, so DNS rebinding cannot slip through),
//! and [`EgressPolicy::check_redirect`] for each `Location`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::model::{Method, OutboundRequest};

use super::destination::{Destination, check_raw_text};
use super::error::{PolicyConfigError, PolicyDenied};
use super::ip::{Cidr, classify};
use super::live::SecretValue;
use super::pattern::{HostName, HostPattern};

/// Headers a plugin may not set: hop-by-hop and framing headers (the client
/// owns the connection and the body's framing) and the signing headers the
/// host adds itself. Compared lower-case.
pub const FORBIDDEN_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "http2-settings",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// A plugin's egress settings as read from its config section.
#[derive(Debug, Clone, Default)]
pub struct PolicySpec {
    /// `allowed_hosts`: [`HostPattern`] strings.
    pub allowed_hosts: Vec<String>,
    /// `allowed_methods`; `None` allows all five.
    pub allowed_methods: Option<Vec<Method>>,
    /// `allow_private_networks`: CIDR blocks or bare addresses exempted
    /// from the private-network block.
    pub allow_private_networks: Vec<String>,
    /// `secrets`, by name (`[A-Za-z0-9_]+`).
    pub secrets: BTreeMap<String, SecretRule>,
    /// `follow_redirects`: how many redirect hops to follow (0 = none).
    pub follow_redirects: u32,
}

/// One secret: its value and the hosts it may be sent to.
#[derive(Debug, Clone)]
pub struct SecretRule {
    /// The value (read from the environment or a file, or fetched while
    /// the host runs).
    pub value: SecretValue,
    /// Host names (or `*.suffix`) the value may be sent to.
    pub hosts: Vec<String>,
}

/// A secret, compiled.
#[derive(Debug, Clone)]
pub(crate) struct CompiledSecret {
    pub(crate) value: SecretValue,
    pub(crate) hosts: Vec<HostName>,
}

/// One plugin's compiled egress policy. Cheap to share (`Arc`) and
/// immutable: a reload builds a new one.
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    allowed_hosts: Vec<HostPattern>,
    allowed_methods: Option<Vec<Method>>,
    allow_private_networks: Vec<Cidr>,
    pub(crate) secrets: BTreeMap<String, CompiledSecret>,
    follow_redirects: u32,
}

impl EgressPolicy {
    /// Compile a plugin's settings. Refuses malformed patterns, CIDRs,
    /// secret names and hosts, an empty `allowed_methods`, and IP-literal
    /// patterns that the private-network block would make unreachable.
    pub fn new(spec: PolicySpec) -> Result<EgressPolicy, PolicyConfigError> {
        let allow_private_networks = spec
            .allow_private_networks
            .iter()
            .map(|s| s.parse::<Cidr>())
            .collect::<Result<Vec<_>, _>>()?;
        if spec.allowed_methods.as_ref().is_some_and(Vec::is_empty) {
            return Err(PolicyConfigError::NoMethods);
        }
        let mut secrets = BTreeMap::new();
        for (name, rule) in spec.secrets {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(PolicyConfigError::SecretName { name });
            }
            let hosts = rule
                .hosts
                .iter()
                .map(|h| {
                    h.parse::<HostName>()
                        .map_err(|reason| PolicyConfigError::SecretHost {
                            secret: name.clone(),
                            host: h.clone(),
                            reason: reason.reason,
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            secrets.insert(
                name,
                CompiledSecret {
                    value: rule.value,
                    hosts,
                },
            );
        }
        let mut policy = EgressPolicy {
            allowed_hosts: Vec::new(),
            allowed_methods: spec.allowed_methods,
            allow_private_networks,
            secrets,
            follow_redirects: spec.follow_redirects,
        };
        for s in &spec.allowed_hosts {
            let pattern: HostPattern = s.parse()?;
            if let Some(ip) = pattern.ip_literal()
                && policy.check_ip(ip).is_err()
            {
                return Err(PolicyConfigError::UnreachableHostPattern {
                    pattern: s.clone(),
                    ip,
                    class: classify(ip),
                });
            }
            policy.allowed_hosts.push(pattern);
        }
        Ok(policy)
    }

    /// How many redirect hops may be followed (0 = none).
    pub fn follow_redirects(&self) -> u32 {
        self.follow_redirects
    }

    /// Check a request a plugin built (secrets still as placeholders): the
    /// URL (size, scheme, no credentials, no backslash or zone id), an IP
    /// literal host against the private-network block, the host and port
    /// against `allowed_hosts`, the method, and the headers.
    pub fn check_request(&self, req: &OutboundRequest) -> Result<Destination, PolicyDenied> {
        let dest = self.check_url(&req.url)?;
        self.check_method(req.method)?;
        for (name, value) in &req.headers {
            check_header(name, value)?;
        }
        Ok(dest)
    }

    /// Check a method against `allowed_methods` (also for a redirect that
    /// changes the method, e.g. 303 → GET).
    pub fn check_method(&self, method: Method) -> Result<(), PolicyDenied> {
        match &self.allowed_methods {
            Some(allowed) if !allowed.contains(&method) => {
                Err(PolicyDenied::MethodNotAllowed { method })
            }
            _ => Ok(()),
        }
    }

    /// Allowed only if public unicast, or inside an
    /// `allow_private_networks` block.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), PolicyDenied> {
        let class = classify(ip);
        if class.is_public() || self.allow_private_networks.iter().any(|c| c.contains(ip)) {
            Ok(())
        } else {
            Err(PolicyDenied::BlockedAddress { ip, class })
        }
    }

    /// Check what `host` resolved to, before connecting. If any address is
    /// blocked the whole name is refused (a name that resolves to a private
    /// address is refused even if it also has public ones). Returns the
    /// addresses, deduplicated, in order: connect only to these.
    pub fn filter_resolved(
        &self,
        host: &str,
        addrs: &[IpAddr],
    ) -> Result<Vec<IpAddr>, PolicyDenied> {
        if addrs.is_empty() {
            return Err(PolicyDenied::NoAddresses {
                host: host.to_owned(),
            });
        }
        let mut out = Vec::with_capacity(addrs.len());
        for &ip in addrs {
            if let Err(PolicyDenied::BlockedAddress { ip, class }) = self.check_ip(ip) {
                return Err(PolicyDenied::ResolvedToBlocked {
                    host: host.to_owned(),
                    ip,
                    class,
                });
            }
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
        Ok(out)
    }

    /// Check a redirect: refuses hop numbers (1-based) above
    /// `follow_redirects`, resolves a relative `location` against
    /// `from.url()`, and runs the URL checks of [`Self::check_request`] on
    /// the result. Returns the new destination and URL (normalised, without
    /// fragment). The method is not re-checked: call [`Self::check_method`]
    /// if the redirect changes it.
    pub fn check_redirect(
        &self,
        from: &Destination,
        location: &str,
        hop: u32,
    ) -> Result<(Destination, url::Url), PolicyDenied> {
        if hop > self.follow_redirects {
            return Err(PolicyDenied::TooManyRedirects {
                hop,
                max: self.follow_redirects,
            });
        }
        // The raw Location gets the same textual checks as a request URL.
        check_raw_text(location)?;
        let mut url = from
            .url()
            .join(location)
            .map_err(|e| PolicyDenied::InvalidUrl {
                reason: format!("redirect Location: {e}"),
            })?;
        url.set_fragment(None);
        let dest = self.check_url(url.as_str())?;
        Ok((dest, url))
    }

    /// The URL checks of [`Self::check_request`] alone, on an absolute
    /// URL: text rules, scheme, no credentials, an IP literal against the
    /// private-network block, and `allowed_hosts`. For a redirect target
    /// already resolved by the client, or to vet a URL without a request.
    pub fn check_url(&self, raw: &str) -> Result<Destination, PolicyDenied> {
        let dest = Destination::parse(raw)?;
        if let Some(ip) = dest.ip_literal() {
            self.check_ip(ip)?;
        }
        let allowed = self
            .allowed_hosts
            .iter()
            .any(|p| p.matches(dest.scheme(), dest.host_kind(), dest.port()));
        if !allowed {
            let host = match dest.ip_literal() {
                Some(IpAddr::V6(v6)) => format!("[{v6}]"),
                _ => dest.host().to_owned(),
            };
            return Err(PolicyDenied::HostNotAllowed {
                scheme: dest.scheme().as_str().to_owned(),
                host,
                port: dest.port(),
            });
        }
        Ok(dest)
    }
}

/// A plugin-set header: a valid name that the host does not own, and a
/// value without CR, LF or other control characters (TAB is allowed).
pub(crate) fn check_header(name: &str, value: &str) -> Result<(), PolicyDenied> {
    let shown = || name.chars().take(64).collect::<String>();
    let parsed =
        http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| PolicyDenied::InvalidHeader {
            name: shown(),
            reason: "not a valid header name".into(),
        })?;
    if FORBIDDEN_HEADERS.contains(&parsed.as_str()) {
        return Err(PolicyDenied::ForbiddenHeader {
            name: parsed.as_str().to_owned(),
        });
    }
    if has_control(value) {
        return Err(PolicyDenied::InvalidHeader {
            name: shown(),
            reason: "the value contains CR, LF or other control characters".into(),
        });
    }
    Ok(())
}

/// Control characters other than TAB, as refused in header values.
pub(crate) fn has_control(value: &str) -> bool {
    value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f)
}
