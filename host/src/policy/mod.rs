//! The egress policy: which requests a plugin may send, where, and with
//! which secrets.
//!
//! Pure functions, applied between the runtime (which produced the request)
//! and delivery (which sends it): destination allowlist matching
//! ([`HostPattern`]), private-network classification of IP literals and
//! resolved addresses ([`classify`], [`Cidr`]), header rules, the URL size
//! cap, redirect checks and secret substitution. Must not know about
//! wasmtime, hyper, sockets, DNS or the store; it never performs I/O.
//!
//! How delivery uses it, per request:
//! 1. [`EgressPolicy::check_request`] on the plugin's request (placeholder
//!    form) → a [`Destination`].
//! 2. [`EgressPolicy::fill_secrets`] with that destination → the request to
//!    put on the wire (normalised URL; never logged).
//! 3. Resolve `dest.host()` (unless an IP literal), then
//!    [`EgressPolicy::filter_resolved`], and connect only to the addresses
//!    it returned.
//! 4. On a 3xx with redirects enabled, [`EgressPolicy::check_redirect`] for
//!    the `Location`, then back to 2 with the new URL and the original
//!    placeholder-form headers and body, so secrets follow only to hosts
//!    allowed for them. ([`EgressPolicy::check_url`] runs the same URL
//!    checks on a URL the client already resolved.)

mod check;
mod destination;
mod error;
mod ip;
mod live;
mod pattern;
mod secrets;

#[cfg(test)]
mod tests;

pub use check::{EgressPolicy, FORBIDDEN_HEADERS, PolicySpec, SecretRule};
pub use destination::{Destination, MAX_URL_BYTES};
pub(crate) use destination::{check_raw_text, raw_authority};
pub use error::{CidrError, PatternError, PolicyConfigError, PolicyDenied};
pub use ip::{Cidr, IpClass, classify};
pub use live::{LiveSecret, SecretValue, Unavailable};
pub use pattern::{Host, HostName, HostPattern, Scheme};
pub(crate) use secrets::written_forms;
