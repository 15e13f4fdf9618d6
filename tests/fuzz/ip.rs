//! `classify` against an oracle written here from the IANA special-purpose
//! registries (RFC 6890 and successors): an address is public exactly when
//! it is in no listed block; IPv6 forms embedding an IPv4 address are
//! never public, whatever they embed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use wasmhook::policy::classify;

use super::check;

/// IPv4 blocks that are not public unicast (network, prefix length).
const V4_NOT_PUBLIC: &[(u32, u8)] = &[
    (0x0000_0000, 8),  // 0.0.0.0/8 this network (RFC 791)
    (0x0a00_0000, 8),  // 10/8 (RFC 1918)
    (0x6440_0000, 10), // 100.64/10 shared (RFC 6598)
    (0x7f00_0000, 8),  // 127/8 loopback
    (0xa9fe_0000, 16), // 169.254/16 link-local (RFC 3927)
    (0xac10_0000, 12), // 172.16/12 (RFC 1918)
    (0xc000_0000, 24), // 192.0.0/24 IETF (RFC 6890)
    (0xc000_0200, 24), // 192.0.2/24 TEST-NET-1 (RFC 5737)
    (0xc058_6300, 24), // 192.88.99/24 6to4 relay (RFC 7526)
    (0xc0a8_0000, 16), // 192.168/16 (RFC 1918)
    (0xc612_0000, 15), // 198.18/15 benchmarking (RFC 2544)
    (0xc633_6400, 24), // 198.51.100/24 TEST-NET-2
    (0xcb00_7100, 24), // 203.0.113/24 TEST-NET-3
    (0xe000_0000, 4),  // 224/4 multicast (RFC 5771)
    (0xf000_0000, 4),  // 240/4 reserved, incl. broadcast (RFC 1112, 919)
];

/// IPv6: public only inside global unicast 2000::/3 and outside these.
const V6_NOT_PUBLIC_IN_GLOBAL: &[(u128, u8)] = &[
    (0x2001_0000 << 96, 23), // 2001::/23 IETF protocol assignments (RFC 2928), incl. Teredo, ORCHID
    (0x2001_0db8 << 96, 32), // 2001:db8::/32 documentation (RFC 3849)
    (0x2002 << 112, 16),     // 2002::/16 6to4 (RFC 3056)
    (0x3fff << 112, 20),     // 3fff::/20 documentation (RFC 9637)
];

fn in_v4(ip: u32, (net, len): (u32, u8)) -> bool {
    ip >> (32 - len) == net >> (32 - len)
}

fn in_v6(ip: u128, (net, len): (u128, u8)) -> bool {
    ip >> (128 - len) == net >> (128 - len)
}

fn oracle_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !V4_NOT_PUBLIC.iter().any(|b| in_v4(v4.to_bits(), *b)),
        IpAddr::V6(v6) => {
            let bits = v6.to_bits();
            in_v6(bits, (0x1 << 125, 3)) && !V6_NOT_PUBLIC_IN_GLOBAL.iter().any(|b| in_v6(bits, *b))
        }
    }
}

/// Addresses near the edges of every listed block, and anywhere at all.
fn v4() -> impl Strategy<Value = Ipv4Addr> {
    let edge = (
        prop::sample::select(V4_NOT_PUBLIC.to_vec()),
        any::<bool>(),
        -2i64..=2,
    )
        .prop_map(|((net, len), end, delta)| {
            let size = 1u64 << (32 - len);
            let base = if end {
                u64::from(net) + size - 1
            } else {
                u64::from(net)
            };
            Ipv4Addr::from((base as i64 + delta).clamp(0, u32::MAX as i64) as u32)
        });
    prop_oneof![any::<u32>().prop_map(Ipv4Addr::from), edge]
}

fn v6() -> impl Strategy<Value = Ipv6Addr> {
    let blocks: Vec<(u128, u8)> = V6_NOT_PUBLIC_IN_GLOBAL
        .iter()
        .copied()
        .chain([
            (0x1 << 125, 3),
            (0xfc00 << 112, 7),
            (0xfe80 << 112, 10),
            (0xff00 << 112, 8),
            (0x64ff9b << 96, 96),
        ])
        .collect();
    let edge = (prop::sample::select(blocks), any::<u128>(), any::<bool>()).prop_map(
        |((net, len), r, end)| {
            let host_mask = u128::MAX >> len;
            let within = net | (r & host_mask);
            let addr = match end {
                true if r % 3 == 0 => net | host_mask,
                true => net.wrapping_sub(1),
                false => within,
            };
            Ipv6Addr::from(addr)
        },
    );
    prop_oneof![any::<u128>().prop_map(Ipv6Addr::from), edge]
}

#[test]
fn ipv4_classification_matches_the_rfc_oracle() {
    check("ip", v4(), |ip| {
        let class = classify(IpAddr::V4(ip));
        prop_assert_eq!(
            class.is_public(),
            oracle_public(IpAddr::V4(ip)),
            "{} is {:?}",
            ip,
            class
        );
        Ok(())
    });
}

#[test]
fn ipv6_classification_matches_the_rfc_oracle() {
    check("ip", v6(), |ip| {
        let class = classify(IpAddr::V6(ip));
        prop_assert_eq!(
            class.is_public(),
            oracle_public(IpAddr::V6(ip)),
            "{} is {:?}",
            ip,
            class
        );
        Ok(())
    });
}

#[test]
fn ipv6_forms_embedding_an_ipv4_address_are_never_public() {
    check(
        "ip",
        (v4(), any::<u64>(), any::<u16>()),
        |(v4, rest, port)| {
            let b = u128::from(v4.to_bits());
            let forms = [
                ("mapped", (0xffff << 32) | b, Some(v4)),
                ("compatible", b, None),
                ("nat64", (0x64_ff9b << 96) | b, Some(v4)),
                ("nat64 local", (0x64_ff9b_0001 << 80) | b, None),
                (
                    "6to4",
                    (0x2002 << 112) | (b << 80) | u128::from(rest & 0xffff_ffff_ffff),
                    Some(v4),
                ),
                // Teredo: 2001:0:server:flags:port:client, client and port
                // stored inverted (RFC 4380)
                (
                    "teredo",
                    (0x2001_0000 << 96)
                        | (u128::from(rest as u32) << 64)
                        | (u128::from(!port) << 32)
                        | u128::from(!v4.to_bits()),
                    Some(v4),
                ),
            ];
            for (name, bits, embeds) in forms {
                let ip = Ipv6Addr::from(bits);
                let class = classify(IpAddr::V6(ip));
                if ip.is_unspecified() || ip.is_loopback() {
                    prop_assert!(!class.is_public());
                    continue;
                }
                prop_assert!(!class.is_public(), "{name} {ip} (embeds {v4}) is public");
                if let Some(want) = embeds {
                    prop_assert_eq!(class.embedded_ipv4(), Some(want), "{} {}", name, ip);
                }
            }
            Ok(())
        },
    );
}
