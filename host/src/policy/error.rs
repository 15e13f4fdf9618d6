//! The policy's two error types: [`PolicyConfigError`] when a plugin's
//! egress settings cannot be understood (start-up, reload), and
//! [`PolicyDenied`] when a request or address is refused (per delivery).
//!
//! Messages say what was refused and which config key would allow it. They
//! never contain a secret value: variants carry secret *names*, header
//! *names*, hosts and addresses only, never URLs, header values or bodies
//! that may already hold filled-in secrets.

use std::net::IpAddr;

use super::ip::IpClass;

/// A host pattern from `allowed_hosts` that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid host pattern {pattern:?}: {reason}")]
pub struct PatternError {
    /// The pattern as written in the config.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

/// An `allow_private_networks` entry that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid network {entry:?}: {reason}")]
pub struct CidrError {
    /// The entry as written in the config.
    pub entry: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A plugin's egress settings are invalid; start-up (or a reload) stops.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyConfigError {
    /// An `allowed_hosts` entry is malformed.
    #[error("allowed_hosts: {0}")]
    HostPattern(#[from] PatternError),
    /// An `allowed_hosts` entry names an IP literal that the private-network
    /// block would always refuse, so it could never be reached.
    #[error(
        "allowed_hosts: {pattern:?} names {ip}, which is {class}; it can never be reached \
         unless you also add {ip} to allow_private_networks"
    )]
    UnreachableHostPattern {
        /// The pattern as written.
        pattern: String,
        /// The IP literal in it.
        ip: IpAddr,
        /// Why that address is blocked.
        class: IpClass,
    },
    /// `allowed_methods` is present but empty.
    #[error(
        "allowed_methods is empty; list at least one method, or omit the key to allow all five"
    )]
    NoMethods,
    /// An `allow_private_networks` entry is malformed.
    #[error("allow_private_networks: {0}")]
    Cidr(#[from] CidrError),
    /// A secret's name is not `[A-Za-z0-9_]+`.
    #[error("secrets: name {name:?} is invalid; use letters, digits and _ only")]
    SecretName {
        /// The name as written.
        name: String,
    },
    /// A secret's `hosts` entry is malformed.
    #[error("secrets.{secret}.hosts: {host:?} is invalid: {reason}")]
    SecretHost {
        /// The secret's name.
        secret: String,
        /// The entry as written.
        host: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A request, redirect or resolved address refused by the egress policy.
///
/// Every message names what was refused and, where something can allow it,
/// the config key to change. No variant carries a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyDenied {
    /// The URL is longer than [`super::MAX_URL_BYTES`].
    #[error("URL of {len} bytes exceeds the {max}-byte limit")]
    UrlTooLong {
        /// Length of the URL in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The URL could not be parsed, or is not an absolute URL with a host.
    #[error("invalid URL: {reason}")]
    InvalidUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// The URL contains a backslash, which parsers disagree about.
    #[error(
        "URL contains a backslash, which URL parsers interpret differently; percent-encode it as %5C"
    )]
    Backslash,
    /// The URL contains whitespace or control characters.
    #[error("URL contains whitespace or control characters")]
    ControlCharacter,
    /// The scheme is not http or https.
    #[error("scheme {scheme:?} is not allowed: only http and https can be delivered")]
    SchemeNotAllowed {
        /// The scheme, lower-case.
        scheme: String,
    },
    /// The URL carries `user[:password]@` before the host.
    #[error(
        "URL carries credentials (user:password@host); send them in a header with a \
         {{{{secret:NAME}}}} placeholder instead"
    )]
    UserInfo,
    /// An IPv6 literal with a zone id (`[fe80::1%25eth0]`).
    #[error("IPv6 zone ids (%25…) are not allowed in URLs")]
    ZoneId,
    /// A placeholder appears in the scheme, host or port.
    #[error(
        "secret placeholders may appear only in the URL's path and query, never in its scheme, host or port"
    )]
    PlaceholderInAuthority,
    /// `fill_secrets` was given a request whose URL does not lead to the
    /// destination that was checked (a bug in the caller).
    #[error(
        "the request's URL does not lead to the destination that was checked; run check_request on it first"
    )]
    DestinationMismatch,
    /// A `{{secret:` without a valid `NAME}}`.
    #[error(
        "malformed secret placeholder in {location}: expected {{{{secret:NAME}}}} with NAME of letters, digits and _"
    )]
    MalformedPlaceholder {
        /// Where: "URL", "header NAME" or "body".
        location: String,
    },
    /// The destination is not in `allowed_hosts`.
    #[error(
        "{scheme}://{host}:{port} is not allowed; add \"{scheme}://{host}:{port}\" to allowed_hosts to allow it"
    )]
    HostNotAllowed {
        /// http or https.
        scheme: String,
        /// The host (IPv6 in brackets).
        host: String,
        /// The effective port.
        port: u16,
    },
    /// The method is not in `allowed_methods`.
    #[error("method {method} is not allowed; add \"{method}\" to allowed_methods to allow it")]
    MethodNotAllowed {
        /// The method.
        method: crate::model::Method,
    },
    /// A header the host sets itself (hop-by-hop, framing, or signing).
    #[error(
        "header {name:?} is set by the host (hop-by-hop, framing or signing header); remove it from the request"
    )]
    ForbiddenHeader {
        /// The header name, lower-case.
        name: String,
    },
    /// A header name or value that is not valid HTTP (e.g. CR/LF).
    #[error("header {name:?} is invalid: {reason}")]
    InvalidHeader {
        /// The header name (as given, truncated).
        name: String,
        /// What is wrong (never the value itself).
        reason: String,
    },
    /// An IP literal or resolved address is not public unicast.
    #[error("{ip} is {class}; add it to allow_private_networks to allow it")]
    BlockedAddress {
        /// The refused address.
        ip: IpAddr,
        /// Why it is refused.
        class: IpClass,
    },
    /// A host name resolved to an address that is not public unicast.
    #[error(
        "{host} resolved to {ip}, which is {class}; add it to allow_private_networks to allow it"
    )]
    ResolvedToBlocked {
        /// The name that was resolved.
        host: String,
        /// The refused address.
        ip: IpAddr,
        /// Why it is refused.
        class: IpClass,
    },
    /// DNS returned no addresses.
    #[error("{host} resolved to no addresses")]
    NoAddresses {
        /// The name that was resolved.
        host: String,
    },
    /// A placeholder names a secret the plugin does not have.
    #[error("unknown secret {secret:?}; define it under the plugin's secrets")]
    UnknownSecret {
        /// The secret's name.
        secret: String,
    },
    /// The secret may not be sent to this host.
    #[error(
        "secret {secret} may not be sent to {host}; add {host:?} to secrets.{secret}.hosts to allow it"
    )]
    SecretNotAllowedForHost {
        /// The secret's name.
        secret: String,
        /// The destination host.
        host: String,
    },
    /// A secret's value cannot go in a URL or header value: it contains
    /// CR, LF or other control characters.
    #[error("secret {secret} cannot be used in {location}: its value contains control characters")]
    SecretValueInvalid {
        /// The secret's name.
        secret: String,
        /// Where: "the URL" or "header NAME".
        location: String,
    },
    /// A secret fetched while the host runs (an OAuth2 token) has no
    /// usable value at the moment. Transient: a later attempt may find one.
    #[error("secret {secret} is not available: {reason}")]
    SecretUnavailable {
        /// The secret's name.
        secret: String,
        /// Why (the token endpoint's last answer); never a secret value.
        reason: String,
    },
    /// A secret fetched while the host runs has its first value on the
    /// way. Transient, and not worth an attempt: wait a moment.
    #[error("secret {secret} is not available yet: its first value is being fetched")]
    SecretArriving {
        /// The secret's name.
        secret: String,
    },
    /// A redirect beyond `follow_redirects`.
    #[error(
        "redirect {hop} refused: follow_redirects = {max}; raise follow_redirects to follow it"
    )]
    TooManyRedirects {
        /// The hop number (the first redirect is hop 1).
        hop: u32,
        /// The configured maximum.
        max: u32,
    },
}

impl PolicyDenied {
    /// Whether a later attempt of the same request may pass: only a live
    /// secret without a value yet. Every other denial holds until the
    /// configuration changes.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            PolicyDenied::SecretUnavailable { .. } | PolicyDenied::SecretArriving { .. }
        )
    }
}
