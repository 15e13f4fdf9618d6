//! `[[destinations]]`: limits shared by every plugin's deliveries to one
//! destination, next to each plugin's own `[plugins.delivery]
//! max_in_flight_per_host` and `max_per_second_per_host`.
//!
//! A third-party API limits the account, not the plugin: two plugins
//! posting to the same CRM with the same token share its rate limit, so
//! each plugin's own limit would have to be set to a fraction of it. An
//! entry names the destination by `scheme://host[:port]` (the scheme's
//! default port when left out) and may cap requests in flight, requests a
//! second, or both, over all plugins together. Every entry also gives the
//! destination one unhealthy-host breaker for all plugins (so an entry
//! without limits only does that). Plain data and its checks.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::error::{Issue, KeyPath};

/// One `[[destinations]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    /// `scheme://host[:port]`, e.g. `https://api.hubapi.com`; http or
    /// https, no path, no wildcard.
    pub url: String,
    /// Most requests in flight to it at once, from all plugins together.
    pub max_in_flight: Option<usize>,
    /// Most requests a second to it, from all plugins together (a burst
    /// of up to one second's worth may go at once).
    pub max_per_second: Option<f64>,
}

/// Bounds of the request rates (`max_per_second` here,
/// `max_per_second_per_host` per plugin): one request in 1000 s at the
/// slowest.
pub(crate) const MIN_RATE: f64 = 0.001;
pub(crate) const MAX_RATE: f64 = 1_000_000.0;

/// Check a rate limit's value.
pub(crate) fn check_rate(rate: f64, path: &KeyPath) -> Result<(), Issue> {
    if (MIN_RATE..=MAX_RATE).contains(&rate) {
        return Ok(());
    }
    Err(Issue::at(
        path.clone(),
        format!("{rate} is out of range; expected {MIN_RATE} to {MAX_RATE}"),
    ))
}

/// Check every entry at `path` (`destinations`): a well-formed URL, at
/// least one limit, limits in range, and no destination named twice
/// (`https://a.example` and `https://a.example:443` are the same one).
pub(crate) fn check(entries: &[DestinationConfig], path: &KeyPath) -> Result<(), Issue> {
    let mut seen: BTreeMap<(String, u16), usize> = BTreeMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let at = path.index(i);
        let key = host_and_port(&entry.url).map_err(|m| Issue::at(at.key("url"), m))?;
        if let Some(first) = seen.insert(key, i) {
            return Err(Issue::at(
                at.key("url"),
                format!(
                    "{:?} is the same destination as destinations[{first}]; \
                     list each destination once",
                    entry.url
                ),
            ));
        }
        if entry.max_in_flight == Some(0) {
            return Err(Issue::at(
                at.key("max_in_flight"),
                "0 is too small; expected at least 1",
            ));
        }
        if let Some(rate) = entry.max_per_second {
            check_rate(rate, &at.key("max_per_second"))?;
        }
    }
    Ok(())
}

/// The lower-case host and port `url` names, or why it names none.
fn host_and_port(url: &str) -> Result<(String, u16), String> {
    if url.contains('*') {
        return Err(format!(
            "{url:?}: wildcards are not allowed here; name one destination"
        ));
    }
    let parsed = url::Url::parse(url)
        .map_err(|e| format!("{url:?} is not a URL ({e}); expected scheme://host[:port]"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{url:?}: the scheme must be http or https"));
    }
    let extra = !parsed.username().is_empty()
        || parsed.password().is_some()
        || !matches!(parsed.path(), "" | "/")
        || parsed.query().is_some()
        || parsed.fragment().is_some();
    if extra {
        return Err(format!(
            "{url:?}: expected scheme://host[:port], without user, path, query or fragment"
        ));
    }
    match (parsed.host_str(), parsed.port_or_known_default()) {
        (Some(host), Some(port)) => Ok((host.to_ascii_lowercase(), port)),
        _ => Err(format!("{url:?}: expected scheme://host[:port]")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_one_host_and_port() {
        let ok = [
            ("https://api.hubapi.com", ("api.hubapi.com", 443)),
            ("https://API.HubAPI.com/", ("api.hubapi.com", 443)),
            ("http://127.0.0.1:9000", ("127.0.0.1", 9000)),
            ("http://[::1]:80", ("[::1]", 80)),
        ];
        for (url, (host, port)) in ok {
            assert_eq!(host_and_port(url), Ok((host.to_owned(), port)), "{url}");
        }
        for bad in [
            "api.hubapi.com",
            "ftp://example.com",
            "https://*.example.com",
            "https://example.com/v1",
            "https://example.com?x=1",
            "https://user@example.com",
            "https://",
        ] {
            assert!(host_and_port(bad).is_err(), "{bad} accepted");
        }
    }
}
