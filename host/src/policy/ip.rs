//! Private-network classification of IP addresses, and the CIDR blocks of
//! `allow_private_networks` that exempt some of them.
//!
//! Pure functions over `std::net` types; knows nothing about URLs, DNS or
//! sockets. [`classify`] says *why* an address is not public unicast, so
//! denial messages can explain themselves.
//!
//! IPv6 addresses that embed an IPv4 address (IPv4-mapped `::ffff:0:0/96`,
//! IPv4-compatible `::/96`, NAT64, 6to4, Teredo) are classified with their
//! embedded address for the message, and refused whatever that address is:
//! a legitimate destination resolves to its IPv4 address directly, and
//! these forms are how SSRF payloads smuggle `127.0.0.1` past naive
//! checks. Only an `allow_private_networks` entry containing the IPv6
//! address itself exempts one.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::error::CidrError;

/// Why an address is (or is not) a public unicast destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpClass {
    /// Public unicast: deliverable.
    Public,
    /// `0.0.0.0/8` ("this network") or `::`.
    Unspecified,
    /// `127.0.0.0/8` or `::1`.
    Loopback,
    /// RFC 1918: `10/8`, `172.16/12`, `192.168/16`.
    Private,
    /// Carrier-grade NAT, `100.64.0.0/10` (RFC 6598).
    SharedAddressSpace,
    /// `169.254.0.0/16` or `fe80::/10`; where cloud metadata services live.
    LinkLocal,
    /// `224.0.0.0/4` or `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `240.0.0.0/4`, the 6to4 relay anycast `192.88.99/24`, or IPv6
    /// outside global unicast `2000::/3` not covered by another class.
    Reserved,
    /// IETF protocol assignments: `192.0.0.0/24`, `2001::/23` (outside
    /// Teredo, ORCHID and documentation).
    IetfProtocolAssignments,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`,
    /// `3fff::/20`.
    Documentation,
    /// `198.18.0.0/15`, `2001:2::/48`.
    Benchmarking,
    /// `fc00::/7`.
    UniqueLocal,
    /// Deprecated site-local `fec0::/10`.
    SiteLocal,
    /// Discard-only `100::/64`.
    Discard,
    /// ORCHID `2001:10::/28` and ORCHIDv2 `2001:20::/28`.
    Orchid,
    /// `::ffff:a.b.c.d`.
    Ipv4Mapped(Ipv4Addr),
    /// `::a.b.c.d` (deprecated IPv4-compatible).
    Ipv4Compatible(Ipv4Addr),
    /// NAT64 `64:ff9b::/96` or local-use `64:ff9b:1::/48`.
    Nat64(Ipv4Addr),
    /// 6to4 `2002::/16`.
    SixToFour(Ipv4Addr),
    /// Teredo `2001::/32`; the embedded address is the client's.
    Teredo(Ipv4Addr),
}

impl IpClass {
    /// Whether the address may be delivered to without an exemption.
    pub fn is_public(self) -> bool {
        self == IpClass::Public
    }

    /// A short human name, e.g. `"link-local (cloud metadata)"`.
    pub fn name(self) -> &'static str {
        match self {
            IpClass::Public => "public unicast",
            IpClass::Unspecified => "unspecified (this network)",
            IpClass::Loopback => "loopback",
            IpClass::Private => "private (RFC 1918)",
            IpClass::SharedAddressSpace => "shared address space (carrier-grade NAT)",
            IpClass::LinkLocal => "link-local (cloud metadata)",
            IpClass::Multicast => "multicast",
            IpClass::Broadcast => "broadcast",
            IpClass::Reserved => "reserved",
            IpClass::IetfProtocolAssignments => "reserved for IETF protocol assignments",
            IpClass::Documentation => "a documentation address",
            IpClass::Benchmarking => "a benchmarking address",
            IpClass::UniqueLocal => "IPv6 unique-local",
            IpClass::SiteLocal => "IPv6 site-local (deprecated)",
            IpClass::Discard => "IPv6 discard-only",
            IpClass::Orchid => "ORCHID (non-routable)",
            IpClass::Ipv4Mapped(_) => "IPv4-mapped IPv6",
            IpClass::Ipv4Compatible(_) => "IPv4-compatible IPv6 (deprecated)",
            IpClass::Nat64(_) => "NAT64",
            IpClass::SixToFour(_) => "6to4",
            IpClass::Teredo(_) => "Teredo",
        }
    }

    /// The IPv4 address embedded in an IPv6 transition address, if any.
    pub fn embedded_ipv4(self) -> Option<Ipv4Addr> {
        match self {
            IpClass::Ipv4Mapped(v4)
            | IpClass::Ipv4Compatible(v4)
            | IpClass::Nat64(v4)
            | IpClass::SixToFour(v4)
            | IpClass::Teredo(v4) => Some(v4),
            _ => None,
        }
    }
}

impl fmt::Display for IpClass {
    /// The name, plus the embedded IPv4 address and its class if any:
    /// `IPv4-mapped IPv6 (embeds 127.0.0.1, loopback)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        if let Some(v4) = self.embedded_ipv4() {
            write!(f, " (embeds {v4}, {})", classify_v4(v4).name())?;
        }
        Ok(())
    }
}

/// Classify an address. Anything but [`IpClass::Public`] is refused unless
/// exempted by `allow_private_networks`.
pub fn classify(ip: IpAddr) -> IpClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> IpClass {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (0, _, _) => IpClass::Unspecified,
        (10, _, _) => IpClass::Private,
        (100, 64..=127, _) => IpClass::SharedAddressSpace,
        (127, _, _) => IpClass::Loopback,
        (169, 254, _) => IpClass::LinkLocal,
        (172, 16..=31, _) => IpClass::Private,
        (192, 0, 0) => IpClass::IetfProtocolAssignments,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => IpClass::Documentation,
        (192, 88, 99) => IpClass::Reserved,
        (192, 168, _) => IpClass::Private,
        (198, 18..=19, _) => IpClass::Benchmarking,
        (224..=239, _, _) => IpClass::Multicast,
        _ if ip == Ipv4Addr::BROADCAST => IpClass::Broadcast,
        (240..=255, _, _) => IpClass::Reserved,
        _ => IpClass::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> IpClass {
    let s = ip.segments();
    let low32 = Ipv4Addr::from(ip.to_bits() as u32);
    if ip.is_unspecified() {
        return IpClass::Unspecified;
    }
    if ip.is_loopback() {
        return IpClass::Loopback;
    }
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => IpClass::Ipv4Mapped(low32),
        [0, 0, 0, 0, 0, 0, _, _] => IpClass::Ipv4Compatible(low32),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => IpClass::Nat64(low32),
        [0x64, 0xff9b, 1, ..] => IpClass::Nat64(low32),
        [0x100, 0, 0, 0, ..] => IpClass::Discard,
        [0x2001, 0, ..] => IpClass::Teredo(!low32),
        [0x2001, 0xdb8, ..] => IpClass::Documentation,
        [0x2001, 2, 0, ..] => IpClass::Benchmarking,
        [0x2001, 0x10..=0x2f, ..] => IpClass::Orchid,
        [0x2001, 0..=0x1ff, ..] => IpClass::IetfProtocolAssignments,
        [0x2002, a, b, ..] => {
            IpClass::SixToFour(Ipv4Addr::from((u32::from(a) << 16) | u32::from(b)))
        }
        [0x3fff, 0..=0x0fff, ..] => IpClass::Documentation,
        [0x2000..=0x3fff, ..] => IpClass::Public,
        [0xfc00..=0xfdff, ..] => IpClass::UniqueLocal,
        [0xfe80..=0xfebf, ..] => IpClass::LinkLocal,
        [0xfec0..=0xfeff, ..] => IpClass::SiteLocal,
        [0xff00..=0xffff, ..] => IpClass::Multicast,
        _ => IpClass::Reserved,
    }
}

/// A block of addresses, as written in `allow_private_networks`:
/// `10.0.0.0/8`, `fd00::/8`, or a bare address meaning `/32` or `/128`.
///
/// Host bits must be zero (`10.1.2.3/8` is refused as a likely typo). An
/// IPv4 block never contains IPv6 addresses, not even IPv4-mapped ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The network address.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// The prefix length in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is inside this block (same address family only).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(ip) & mask == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                ip.to_bits() & mask == net.to_bits()
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| CidrError {
            entry: s.to_owned(),
            reason,
        };
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let network: IpAddr = addr.trim().parse().map_err(|_| {
            err("expected an IP address or CIDR block such as 10.0.0.0/8 or fd00::/8".into())
        })?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => {
                    return Err(err(format!(
                        "prefix length must be a number from 0 to {max}"
                    )));
                }
            },
        };
        let cidr = Cidr { network, prefix };
        if network != cidr.masked() {
            return Err(err(format!(
                "host bits are set; did you mean {}/{prefix}?",
                cidr.masked()
            )));
        }
        Ok(cidr)
    }
}

impl Cidr {
    fn masked(&self) -> IpAddr {
        match self.network {
            IpAddr::V4(n) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(n) & mask))
            }
            IpAddr::V6(n) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from_bits(n.to_bits() & mask))
            }
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}
