//! Table-driven tests for the egress policy: the SSRF matrix (requests,
//! addresses, redirects), secret substitution, and config validation.

mod config;
mod ip;
mod redirects;
mod requests;
mod secrets;
mod ssrf;

use std::collections::BTreeMap;

use crate::model::{Method, OutboundRequest, Secret};

use super::{EgressPolicy, PolicyDenied, PolicySpec, SecretRule};

/// The variant's name, so tables can say which reason they expect without
/// matching on message text.
fn kind(e: &PolicyDenied) -> &'static str {
    match e {
        PolicyDenied::UrlTooLong { .. } => "UrlTooLong",
        PolicyDenied::InvalidUrl { .. } => "InvalidUrl",
        PolicyDenied::Backslash => "Backslash",
        PolicyDenied::ControlCharacter => "ControlCharacter",
        PolicyDenied::SchemeNotAllowed { .. } => "SchemeNotAllowed",
        PolicyDenied::UserInfo => "UserInfo",
        PolicyDenied::ZoneId => "ZoneId",
        PolicyDenied::PlaceholderInAuthority => "PlaceholderInAuthority",
        PolicyDenied::DestinationMismatch => "DestinationMismatch",
        PolicyDenied::MalformedPlaceholder { .. } => "MalformedPlaceholder",
        PolicyDenied::HostNotAllowed { .. } => "HostNotAllowed",
        PolicyDenied::MethodNotAllowed { .. } => "MethodNotAllowed",
        PolicyDenied::ForbiddenHeader { .. } => "ForbiddenHeader",
        PolicyDenied::InvalidHeader { .. } => "InvalidHeader",
        PolicyDenied::BlockedAddress { .. } => "BlockedAddress",
        PolicyDenied::ResolvedToBlocked { .. } => "ResolvedToBlocked",
        PolicyDenied::NoAddresses { .. } => "NoAddresses",
        PolicyDenied::UnknownSecret { .. } => "UnknownSecret",
        PolicyDenied::SecretNotAllowedForHost { .. } => "SecretNotAllowedForHost",
        PolicyDenied::SecretValueInvalid { .. } => "SecretValueInvalid",
        PolicyDenied::SecretUnavailable { .. } => "SecretUnavailable",
        PolicyDenied::SecretArriving { .. } => "SecretArriving",
        PolicyDenied::TooManyRedirects { .. } => "TooManyRedirects",
    }
}

fn policy(hosts: &[&str], private: &[&str]) -> EgressPolicy {
    EgressPolicy::new(PolicySpec {
        allowed_hosts: hosts.iter().map(|s| s.to_string()).collect(),
        allow_private_networks: private.iter().map(|s| s.to_string()).collect(),
        ..PolicySpec::default()
    })
    .expect("test policy is valid")
}

/// Allows every host and port on both schemes: only the private-network
/// block and the URL rules stand between a plugin and the network.
fn any_host() -> EgressPolicy {
    policy(&["http://*:*", "https://*:*"], &[])
}

fn post(url: &str) -> OutboundRequest {
    OutboundRequest {
        method: Method::Post,
        url: url.to_owned(),
        headers: Vec::new(),
        body: Vec::new(),
    }
}

fn secrets(entries: &[(&str, &str, &[&str])]) -> BTreeMap<String, SecretRule> {
    entries
        .iter()
        .map(|(name, value, hosts)| {
            let rule = SecretRule {
                value: Secret::new(*value).into(),
                hosts: hosts.iter().map(|h| h.to_string()).collect(),
            };
            (name.to_string(), rule)
        })
        .collect()
}
