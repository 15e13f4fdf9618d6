//! `[egress]`: how deliveries and OAuth2 token requests leave the host
//! (a plugin's own egress rules are checked in `egress.rs`).
//!
//! `proxy = "http://[user:password@]host:port"` sends every connection
//! through that HTTP proxy as a `CONNECT` tunnel, for networks whose only
//! way out is a proxy. The host still resolves and vets each destination
//! itself and asks the proxy for the checked address, never a name, so the
//! private-network block and the no-rebinding rule hold as without a
//! proxy; TLS runs end to end through the tunnel. Credentials in the URL
//! become `Proxy-Authorization: Basic …` (write them as `${VAR}`).
//! `no_proxy` lists destinations reached directly (internal services the
//! proxy cannot reach): networks (`10.0.0.0/8`, an address) matched on the
//! checked address, names (`crm.internal`) and domains (`*.corp.example`
//! or `.corp.example`: the name and every name under it).

use serde::Deserialize;
use url::Url;

use super::de;
use super::error::{Issue, KeyPath};
use crate::model::Secret;

/// The section as written.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EgressConfig {
    /// The proxy URL; a secret, as it may hold credentials.
    #[serde(deserialize_with = "de::opt_secret")]
    pub proxy: Option<Secret>,
    /// Destinations reached without the proxy.
    pub no_proxy: Vec<String>,
    /// The proxy, checked at load.
    #[serde(skip)]
    pub proxy_parsed: Option<ProxyConfig>,
}

/// A checked proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Host name or IP address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// `Basic …` for `Proxy-Authorization`, from the URL's credentials.
    pub authorization: Option<Secret>,
    /// Destinations reached directly.
    pub no_proxy: Vec<Bypass>,
}

/// One `no_proxy` entry, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bypass {
    /// A network: address and prefix length.
    Network(std::net::IpAddr, u8),
    /// A host name (lower case), and with `subdomains` the names under it.
    Name {
        /// The name.
        name: String,
        /// Whether names under it match too.
        subdomains: bool,
    },
}

/// Check one `no_proxy` entry.
fn bypass(entry: &str) -> Result<Bypass, String> {
    let entry = entry.trim();
    let looks_like_ip =
        entry.contains('/') || entry.contains(':') || entry.parse::<std::net::IpAddr>().is_ok();
    if looks_like_ip {
        let cidr: crate::policy::Cidr = entry
            .parse()
            .map_err(|e: crate::policy::CidrError| e.reason)?;
        return Ok(Bypass::Network(cidr.network(), cidr.prefix()));
    }
    let (name, subdomains) = match entry.strip_prefix("*.").or_else(|| entry.strip_prefix('.')) {
        Some(rest) => (rest, true),
        None => (entry, false),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !name.split('.').any(str::is_empty);
    if !valid {
        return Err(format!(
            "{entry:?} is not a network (10.0.0.0/8), a host name (crm.internal) or a domain (*.corp.example)"
        ));
    }
    Ok(Bypass::Name { name, subdomains })
}

/// Check `proxy` and fill in `proxy_parsed`. Messages never quote the URL:
/// it may hold a password.
pub(crate) fn check(egress: &mut EgressConfig, at: &KeyPath) -> Result<(), Issue> {
    let Some(proxy) = &egress.proxy else {
        if !egress.no_proxy.is_empty() {
            return Err(Issue::at(
                at.key("no_proxy"),
                "is set without proxy; it lists destinations the proxy is not used for",
            ));
        }
        return Ok(());
    };
    let no_proxy = egress
        .no_proxy
        .iter()
        .enumerate()
        .map(|(i, entry)| bypass(entry).map_err(|m| Issue::at(at.key("no_proxy").index(i), m)))
        .collect::<Result<Vec<_>, _>>()?;
    let at = at.key("proxy");
    let url =
        Url::parse(proxy.expose()).map_err(|e| Issue::at(at.clone(), format!("not a URL: {e}")))?;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(Issue::at(
                at,
                "must be an http:// proxy (the tunnel carries TLS to the receiver end to end; TLS to the proxy itself is not supported)",
            ));
        }
        other => {
            return Err(Issue::at(
                at,
                format!("scheme {other:?} is not supported; write http://host:port"),
            ));
        }
    }
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        Some(host) => host.to_string(),
        None => return Err(Issue::at(at, "has no host")),
    };
    // The URL parser drops a port equal to the scheme's default.
    let port = url
        .port_or_known_default()
        .ok_or_else(|| Issue::at(at.clone(), "needs a port, as in http://proxy:3128"))?;
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err(Issue::at(
            at,
            "must be only scheme, optional credentials, host and port",
        ));
    }
    let authorization = if url.username().is_empty() && url.password().is_none() {
        None
    } else {
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let pair = format!(
            "{}:{}",
            decode(url.username()),
            decode(url.password().unwrap_or(""))
        );
        use base64::Engine as _;
        Some(Secret::new(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )))
    };
    egress.proxy_parsed = Some(ProxyConfig {
        host,
        port,
        authorization,
        no_proxy,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(url: &str) -> Result<ProxyConfig, String> {
        let mut egress = EgressConfig {
            proxy: Some(Secret::new(url)),
            ..EgressConfig::default()
        };
        check(&mut egress, &KeyPath::root().key("egress")).map_err(|e| format!("{e:?}"))?;
        Ok(egress.proxy_parsed.unwrap())
    }

    #[test]
    fn proxies_are_http_with_a_port_and_credentials_become_basic() {
        assert_eq!(
            parsed("http://proxy.internal:3128").unwrap(),
            ProxyConfig {
                host: "proxy.internal".into(),
                port: 3128,
                authorization: None,
                no_proxy: Vec::new(),
            }
        );
        let p = parsed("http://svc%40acme:p%3Ass+w@10.0.0.5:8080/").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("10.0.0.5", 8080));
        // RFC 7617: user-id ":" password, base64.
        assert_eq!(
            p.authorization.unwrap().expose(),
            format!(
                "Basic {}",
                base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    "svc@acme:p:ss+w"
                )
            )
        );
        assert_eq!(parsed("http://[::1]:3128").unwrap().host, "::1");
        assert_eq!(parsed("http://proxy").unwrap().port, 80);
        for (url, why) in [
            ("https://proxy:3128", "must be an http:// proxy"),
            ("socks5://proxy:1080", "is not supported"),
            ("http://proxy:3128/path", "must be only scheme"),
            ("proxy:3128", "is not supported"),
            ("not a url", "not a URL"),
        ] {
            let err = parsed(url).unwrap_err();
            assert!(err.contains(why), "{url}: {err}");
        }
        // The password never shows in a message.
        assert!(
            !parsed("https://u:hunter2@proxy:1")
                .unwrap_err()
                .contains("hunter2")
        );
    }

    #[test]
    fn no_proxy_takes_networks_names_and_domains() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        assert_eq!(bypass("10.0.0.0/8"), Ok(Bypass::Network(ip("10.0.0.0"), 8)));
        assert_eq!(bypass("10.0.0.7"), Ok(Bypass::Network(ip("10.0.0.7"), 32)));
        assert_eq!(bypass("fd00::/8"), Ok(Bypass::Network(ip("fd00::"), 8)));
        let name = |n: &str, subdomains| Bypass::Name {
            name: n.into(),
            subdomains,
        };
        assert_eq!(bypass("CRM.internal."), Ok(name("crm.internal", false)));
        assert_eq!(bypass("*.corp.example"), Ok(name("corp.example", true)));
        assert_eq!(bypass(".corp.example"), Ok(name("corp.example", true)));
        for bad in ["10.1.2.3/8", "http://x", "a..b", "*", "", "10.0.0.0/33"] {
            assert!(bypass(bad).is_err(), "{bad}");
        }
        let mut egress = EgressConfig {
            no_proxy: vec!["10.0.0.0/8".into()],
            ..EgressConfig::default()
        };
        let err = check(&mut egress, &KeyPath::root().key("egress")).unwrap_err();
        assert!(format!("{err:?}").contains("without proxy"), "{err:?}");
    }
}
