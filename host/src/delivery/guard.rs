//! The seams through which the egress policy and name resolution plug into
//! the HTTP client.
//!
//! [`AddressGuard`] vets resolved addresses at connect time, [`RedirectGuard`]
//! vets redirect targets, [`Resolver`] turns a host name into addresses (the
//! system resolver by default, a fixed map in tests, [`PinnedResolver`] for
//! the operator's `[dns] static` names). Delivery defines these
//! small traits so it does not depend on the policy module's types; the
//! integrator implements them for the plugin's egress policy.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};

use crate::model::Method;

/// The egress guard refused a destination. The text names the address or
/// host and the rule; it never contains a URL path, query or secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AddressDenied(pub String);

/// Vets the addresses a host name resolved to, for each new connection.
pub trait AddressGuard: Send + Sync {
    /// Of `addrs` (what `host` resolved to, or the literal IP of the URL),
    /// return those the client may connect to, in preference order, or why
    /// none may be used. The client connects only to returned addresses
    /// that were among `addrs`.
    fn check(&self, host: &str, addrs: &[IpAddr]) -> Result<Vec<IpAddr>, AddressDenied>;
}

/// One redirect the client was told to follow.
#[derive(Debug, Clone, Copy)]
pub struct RedirectHop<'a> {
    /// The URL that answered with the redirect (as sent, secrets filled).
    pub from: &'a url::Url,
    /// The raw `Location` header, possibly relative.
    pub location: &'a str,
    /// The 3xx status.
    pub status: u16,
    /// Which hop this would be, from 1.
    pub hop: u32,
    /// The next hop's method (303, and 301/302 after POST, turn into GET).
    pub method: Method,
    /// Whether the next hop carries the request body (false when the
    /// method changed to GET).
    pub keep_body: bool,
}

/// The request for the next hop: vetted, with secrets filled in for its
/// destination only. `Debug` hides headers and body (they hold secrets).
#[derive(Clone)]
pub struct NextHop {
    /// Absolute http(s) URL to send to.
    pub url: String,
    /// Plugin headers for this hop (the client adds `webhook-*`,
    /// `user-agent`, `content-length`).
    pub headers: Vec<(String, String)>,
    /// Body for this hop (ignored and left empty when `keep_body` was
    /// false).
    pub body: Vec<u8>,
}

impl std::fmt::Debug for NextHop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NextHop").finish_non_exhaustive()
    }
}

/// Decides whether and how redirects of one request are followed. It sees
/// every hop before the client follows it, and builds the hop's request,
/// so secrets are filled in again for the new destination (or the hop is
/// refused). The new host's addresses then also pass the [`AddressGuard`]
/// at connect time. Without one, a 3xx is the final answer.
pub trait RedirectGuard: Send + Sync {
    /// Most hops to follow; the 3xx after the last is a failure.
    fn max_hops(&self) -> u32;

    /// Vet `hop` (scheme, allowed hosts, method) and build its request, or
    /// refuse it.
    fn next_hop(&self, hop: &RedirectHop<'_>) -> Result<NextHop, HopRefused>;
}

/// Why a redirect is not followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HopRefused {
    /// The hop breaks the rules: the attempt fails for good.
    #[error("{0}")]
    Denied(#[from] AddressDenied),
    /// Something the hop needs is missing for now (a secret whose token is
    /// being renewed): the attempt fails and is retried. Never a secret.
    #[error("{0}")]
    Unavailable(String),
}

/// Turns a host name into IP addresses.
#[async_trait::async_trait]
pub trait Resolver: Send + Sync {
    /// All addresses of `host` (a DNS name, never an IP literal). `port` is
    /// passed for resolvers that need it (the system resolver does).
    async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<IpAddr>>;
}

/// The operating system's resolver, through `tokio::net::lookup_host`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

#[async_trait::async_trait]
impl Resolver for SystemResolver {
    async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<IpAddr>> {
        let addrs = tokio::net::lookup_host((host, port)).await?;
        let mut ips: Vec<IpAddr> = Vec::new();
        for ip in addrs.map(|a: SocketAddr| a.ip()) {
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
        Ok(ips)
    }
}

/// A fixed name → addresses map, for tests and for pinning hosts. Names
/// are matched case-insensitively; unknown names fail like NXDOMAIN.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    names: HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Map `name` to `addrs` (replacing earlier entries).
    pub fn with(mut self, name: &str, addrs: impl IntoIterator<Item = IpAddr>) -> Self {
        self.names
            .insert(name.to_ascii_lowercase(), addrs.into_iter().collect());
        self
    }
}

#[async_trait::async_trait]
impl Resolver for StaticResolver {
    async fn resolve(&self, host: &str, _port: u16) -> io::Result<Vec<IpAddr>> {
        self.names
            .get(&host.to_ascii_lowercase())
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("unknown host {host}")))
    }
}

/// Operator-pinned names (`[dns] static`, like curl's `--resolve`) resolve
/// to exactly their listed addresses; every other name goes to `fallback`.
/// A pinned name never reaches the fallback, so it cannot be steered by
/// DNS. What comes back still passes the [`AddressGuard`]: pinning decides
/// where a name points, never whether the policy allows it.
pub struct PinnedResolver {
    pinned: StaticResolver,
    fallback: std::sync::Arc<dyn Resolver>,
}

impl PinnedResolver {
    /// `pinned` names first, then `fallback`.
    pub fn new(pinned: StaticResolver, fallback: std::sync::Arc<dyn Resolver>) -> Self {
        Self { pinned, fallback }
    }
}

#[async_trait::async_trait]
impl Resolver for PinnedResolver {
    async fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<IpAddr>> {
        // A URL host may end in the root dot; the pin applies all the same.
        let name = host.strip_suffix('.').unwrap_or(host);
        match self.pinned.names.get(&name.to_ascii_lowercase()) {
            Some(addrs) => Ok(addrs.clone()),
            None => self.fallback.resolve(host, port).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn static_resolver_maps_names_case_insensitively() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let r = StaticResolver::new().with("Allowed.Test", [ip]);
        assert_eq!(r.resolve("allowed.test", 80).await.unwrap(), vec![ip]);
        let err = r.resolve("other.test", 80).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn pinned_names_never_reach_the_fallback() {
        let pinned: IpAddr = "10.0.0.7".parse().unwrap();
        let other: IpAddr = "192.0.2.1".parse().unwrap();
        let fallback = StaticResolver::new()
            .with("internal.test", [other])
            .with("public.test", [other]);
        let r = PinnedResolver::new(
            StaticResolver::new().with("Internal.Test", [pinned]),
            std::sync::Arc::new(fallback),
        );
        for name in ["internal.test", "INTERNAL.test", "internal.test."] {
            assert_eq!(r.resolve(name, 80).await.unwrap(), vec![pinned], "{name}");
        }
        assert_eq!(r.resolve("public.test", 80).await.unwrap(), vec![other]);
        let err = r.resolve("unknown.test", 80).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn system_resolver_resolves_localhost_without_network() {
        let ips = SystemResolver.resolve("localhost", 80).await.unwrap();
        assert!(ips.iter().all(|ip| ip.is_loopback()), "{ips:?}");
        assert!(!ips.is_empty());
    }
}
