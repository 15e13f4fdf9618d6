//! Outbound delivery: sends one already-vetted HTTP request and reports
//! what happened.
//!
//! The worker hands in a request that the policy has checked and whose
//! secrets are filled in; delivery signs it (Standard Webhooks), sends it
//! over a pooled HTTP/1.1 + HTTP/2 client whose connector re-checks every
//! resolved address, and classifies the result into an explicit
//! [`AttemptOutcome`]. It also provides the pure retry schedule and the
//! per-destination concurrency and rate limiters the worker uses around
//! each attempt (with the unhealthy-host [`crate::breaker`]).
//!
//! Delivery knows nothing of WebAssembly, plugins' decisions or the store's
//! SQL; it plugs into the egress policy only through [`AddressGuard`] and
//! [`RedirectGuard`].
//!
//! # Layout
//! - [`sign`]: Standard Webhooks signing and verification.
//! - [`retry`]: the jittered schedule and `Retry-After` parsing.
//! - [`outcome`]: classifying an attempt; the [`AttemptReport`];
//!   [`excerpt`]: what the delivery log keeps of a refusal's answer.
//! - [`guard`]: the guard and resolver seams; `policy_guard` implements
//!   them for [`crate::policy::EgressPolicy`] ([`PolicyRedirects`]).
//! - [`connect`]: the vetting connector (resolve → guard → TCP → TLS).
//! - [`tls`]: rustls client configuration.
//! - [`client`]: [`Deliverer`], one per plugin.
//! - [`limits`]: per-destination concurrency; [`rate`]: per-destination
//!   request rates.

pub mod client;
pub mod connect;
pub mod excerpt;
pub mod guard;
pub mod limits;
pub mod outcome;
mod policy_guard;
pub mod rate;
mod request;
pub mod retry;
pub mod sign;
pub mod tls;

#[cfg(test)]
pub(crate) mod tests;

pub use client::{ClientOptions, Deliverer, DeliveryError, SendRequest};
pub use connect::{NoProxy, Proxy};
pub use guard::{
    AddressDenied, AddressGuard, HopRefused, NextHop, RedirectGuard, RedirectHop, Resolver,
    StaticResolver, SystemResolver,
};
pub use limits::{DestinationLimiter, DestinationPermit, destination_key};
pub use outcome::{AttemptOutcome, AttemptReport};
pub use policy_guard::PolicyRedirects;
pub use rate::RateLimiter;
pub use retry::{DEFAULT_JITTER, DEFAULT_SCHEDULE, next_delay, parse_retry_after, retry_delay};
pub use sign::{SigningKey, VerifyError};
pub use tls::ClientIdentity;
