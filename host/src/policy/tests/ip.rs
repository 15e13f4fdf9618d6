//! Address classification and CIDR blocks.

use std::net::Ipv4Addr;

use crate::policy::{Cidr, IpClass, classify};

#[test]
fn classify_table() {
    let cases: &[(&str, IpClass)] = &[
        ("8.8.8.8", IpClass::Public),
        ("1.1.1.1", IpClass::Public),
        ("100.63.255.255", IpClass::Public),
        ("100.128.0.0", IpClass::Public),
        ("172.15.255.255", IpClass::Public),
        ("172.32.0.0", IpClass::Public),
        ("223.255.255.255", IpClass::Public),
        ("0.0.0.0", IpClass::Unspecified),
        ("0.1.2.3", IpClass::Unspecified),
        ("127.0.0.1", IpClass::Loopback),
        ("127.255.255.254", IpClass::Loopback),
        ("10.0.0.1", IpClass::Private),
        ("172.16.0.1", IpClass::Private),
        ("172.31.255.255", IpClass::Private),
        ("192.168.1.1", IpClass::Private),
        ("100.64.0.1", IpClass::SharedAddressSpace),
        ("100.100.100.200", IpClass::SharedAddressSpace),
        ("169.254.169.254", IpClass::LinkLocal),
        ("224.0.0.1", IpClass::Multicast),
        ("239.255.255.255", IpClass::Multicast),
        ("255.255.255.255", IpClass::Broadcast),
        ("240.0.0.1", IpClass::Reserved),
        ("192.88.99.1", IpClass::Reserved),
        ("192.0.0.8", IpClass::IetfProtocolAssignments),
        ("192.0.2.1", IpClass::Documentation),
        ("198.51.100.7", IpClass::Documentation),
        ("203.0.113.9", IpClass::Documentation),
        ("198.18.0.1", IpClass::Benchmarking),
        ("198.19.255.255", IpClass::Benchmarking),
        ("2606:4700::1111", IpClass::Public),
        ("2a00:1450:4001::1", IpClass::Public),
        ("::", IpClass::Unspecified),
        ("::1", IpClass::Loopback),
        ("::ffff:127.0.0.1", IpClass::Ipv4Mapped(Ipv4Addr::LOCALHOST)),
        (
            "::ffff:8.8.8.8",
            IpClass::Ipv4Mapped(Ipv4Addr::new(8, 8, 8, 8)),
        ),
        ("::127.0.0.1", IpClass::Ipv4Compatible(Ipv4Addr::LOCALHOST)),
        ("64:ff9b::7f00:1", IpClass::Nat64(Ipv4Addr::LOCALHOST)),
        (
            "64:ff9b:1::a00:1",
            IpClass::Nat64(Ipv4Addr::new(10, 0, 0, 1)),
        ),
        ("2002:7f00:1::", IpClass::SixToFour(Ipv4Addr::LOCALHOST)),
        (
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            IpClass::Teredo(Ipv4Addr::new(127, 0, 0, 1)),
        ),
        ("100::1", IpClass::Discard),
        ("2001:db8::1", IpClass::Documentation),
        ("3fff::1", IpClass::Documentation),
        ("2001:2::1", IpClass::Benchmarking),
        ("2001:10::1", IpClass::Orchid),
        ("2001:20::1", IpClass::Orchid),
        ("2001:100::1", IpClass::IetfProtocolAssignments),
        ("fc00::1", IpClass::UniqueLocal),
        ("fd00::1", IpClass::UniqueLocal),
        ("fd00:ec2::254", IpClass::UniqueLocal),
        ("fe80::1", IpClass::LinkLocal),
        ("fec0::1", IpClass::SiteLocal),
        ("ff02::1", IpClass::Multicast),
        ("4000::1", IpClass::Reserved),
        ("5f00::1", IpClass::Reserved),
    ];
    for (ip, want) in cases {
        let got = classify(ip.parse().unwrap());
        assert_eq!(got, *want, "{ip}");
        assert_eq!(got.is_public(), *want == IpClass::Public, "{ip}");
    }
}

#[test]
fn embedded_addresses_are_named_in_the_description() {
    let class = classify("::ffff:7f00:1".parse().unwrap());
    assert_eq!(
        class.to_string(),
        "IPv4-mapped IPv6 (embeds 127.0.0.1, loopback)"
    );
    let class = classify("169.254.169.254".parse().unwrap());
    assert_eq!(class.to_string(), "link-local (cloud metadata)");
}

#[test]
fn cidr_parsing_and_membership() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "127.0.0.0/8",
            &["127.0.0.1", "127.255.0.9"],
            &["10.0.0.1", "128.0.0.1", "::ffff:127.0.0.1"],
        ),
        ("10.1.2.3/32", &["10.1.2.3"], &["10.1.2.4"]),
        ("10.1.2.3", &["10.1.2.3"], &["10.1.2.2"]),
        ("0.0.0.0/0", &["8.8.8.8", "127.0.0.1"], &["::1"]),
        (
            "fd00::/8",
            &["fd00::1", "fdff::1"],
            &["fc00::1", "10.0.0.1"],
        ),
        ("::1", &["::1"], &["::2", "127.0.0.1"]),
        (
            "::ffff:127.0.0.0/104",
            &["::ffff:127.0.0.1"],
            &["127.0.0.1"],
        ),
    ];
    for (entry, inside, outside) in cases {
        let cidr: Cidr = entry.parse().unwrap_or_else(|e| panic!("{entry}: {e}"));
        for ip in *inside {
            assert!(
                cidr.contains(ip.parse().unwrap()),
                "{entry} should contain {ip}"
            );
        }
        for ip in *outside {
            assert!(
                !cidr.contains(ip.parse().unwrap()),
                "{entry} should not contain {ip}"
            );
        }
    }
}

#[test]
fn bad_cidrs_are_refused_with_a_reason() {
    let cases: &[(&str, &str)] = &[
        ("10.1.2.3/8", "did you mean 10.0.0.0/8"),
        ("10.0.0.0/33", "0 to 32"),
        ("fd00::/129", "0 to 128"),
        ("10.0.0.0/x", "prefix length"),
        ("127.1", "expected an IP address"),
        ("localhost", "expected an IP address"),
        ("", "expected an IP address"),
        ("fe80::1%lo", "expected an IP address"),
    ];
    for (entry, needle) in cases {
        let err = entry.parse::<Cidr>().expect_err(entry);
        assert_eq!(err.entry, *entry);
        assert!(err.to_string().contains(needle), "{entry}: {err}");
    }
}
