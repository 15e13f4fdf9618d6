//! Load-time checks of a plugin's egress settings: `allowed_hosts`,
//! `allowed_methods`, `allow_private_networks` and the names and `hosts`
//! of its secrets, plus the [`PolicySpec`] the wiring code hands to
//! `policy`.
//!
//! The syntax of patterns and networks belongs to `policy`: this module
//! only runs its parsers on every entry, so a typo stops start-up with the
//! entry's key path instead of surfacing as a denied delivery later.

use crate::policy::{
    Cidr, EgressPolicy, HostName, HostPattern, PolicyConfigError, PolicySpec, SecretRule,
};

use super::error::{Issue, KeyPath};
use super::plugin::PluginConfig;

impl PluginConfig {
    /// This plugin's egress settings in the form `policy` compiles
    /// ([`EgressPolicy::new`]); secrets carry their resolved values. A
    /// config that [`Config::load`](super::Config::load) accepted always
    /// compiles.
    pub fn policy_spec(&self) -> PolicySpec {
        PolicySpec {
            allowed_hosts: self.allowed_hosts.clone(),
            allowed_methods: self.allowed_methods.clone(),
            allow_private_networks: self.allow_private_networks.clone(),
            secrets: self
                .secrets
                .iter()
                .map(|(name, s)| {
                    let rule = SecretRule {
                        value: s.value.clone().into(),
                        hosts: s.hosts.clone(),
                    };
                    (name.clone(), rule)
                })
                .collect(),
            follow_redirects: self.follow_redirects,
        }
    }
}

/// Check every egress entry of `plugin`, found at `path`, then compile the
/// whole policy once for the rules that span entries.
pub(crate) fn check(plugin: &PluginConfig, path: &KeyPath) -> Result<(), Issue> {
    let hosts = path.key("allowed_hosts");
    for (i, entry) in plugin.allowed_hosts.iter().enumerate() {
        entry
            .parse::<HostPattern>()
            .map_err(|e| Issue::at(hosts.index(i), e.to_string()))?;
    }
    if plugin.allowed_methods.as_ref().is_some_and(Vec::is_empty) {
        return Err(Issue::at(
            path.key("allowed_methods"),
            "is empty; list at least one method, or omit the key to allow all five",
        ));
    }
    let networks = path.key("allow_private_networks");
    for (i, entry) in plugin.allow_private_networks.iter().enumerate() {
        entry
            .parse::<Cidr>()
            .map_err(|e| Issue::at(networks.index(i), e.to_string()))?;
    }
    for (name, secret) in &plugin.secrets {
        let at = path.key("secrets").key(name.as_str());
        if !is_secret_name(name) {
            return Err(Issue::at(
                at,
                format!("secret name {name:?} is invalid; use letters, digits and _ only"),
            ));
        }
        if secret.hosts.is_empty() {
            return Err(Issue::at(
                at.key("hosts"),
                "is empty; a secret must say which hosts it may be sent to",
            ));
        }
        for (i, host) in secret.hosts.iter().enumerate() {
            host.parse::<HostName>().map_err(|e| {
                Issue::at(
                    at.key("hosts").index(i),
                    format!("{:?} is not a host name: {}", e.pattern, e.reason),
                )
            })?;
        }
    }
    EgressPolicy::new(plugin.policy_spec()).map_err(|e| {
        if let PolicyConfigError::UnreachableHostPattern { pattern, ip, class } = &e {
            let i = plugin.allowed_hosts.iter().position(|h| h == pattern);
            return Issue::at(
                i.map_or_else(|| hosts.clone(), |i| hosts.index(i)),
                format!(
                    "{pattern:?} names {ip}, which is {class}; it can never be reached \
                     unless you also add {ip} to allow_private_networks"
                ),
            );
        }
        Issue::at(path.clone(), e.to_string())
    })?;
    Ok(())
}

/// `[A-Za-z0-9_]+`, the names `{{secret:NAME}}` placeholders accept.
fn is_secret_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_placeholder_names() {
        let cases = [
            ("HUBSPOT_TOKEN", true),
            ("a1", true),
            ("1", true),
            ("", false),
            ("A-B", false),
            ("A B", false),
        ];
        for (name, want) in cases {
            assert_eq!(is_secret_name(name), want, "{name:?}");
        }
    }
}
