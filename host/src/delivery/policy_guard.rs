//! The egress policy behind delivery's guard traits.
//!
//! [`EgressPolicy`] is the [`AddressGuard`] of its plugin's client (through
//! `filter_resolved`), and [`PolicyRedirects`] follows redirects of one
//! request under that policy: every hop is checked like a request and its
//! secrets are filled in again from the plugin's placeholder-form request,
//! so a secret never follows a redirect to a host it is not allowed for.
//! Only adapts; the rules themselves live in `policy/`.

use crate::model::OutboundRequest;
use crate::policy::{Destination, EgressPolicy, PolicyDenied};

use super::guard::{AddressDenied, AddressGuard, HopRefused, NextHop, RedirectGuard, RedirectHop};

fn denied(e: PolicyDenied) -> AddressDenied {
    AddressDenied(e.to_string())
}

impl AddressGuard for EgressPolicy {
    fn check(
        &self,
        host: &str,
        addrs: &[std::net::IpAddr],
    ) -> Result<Vec<std::net::IpAddr>, AddressDenied> {
        self.filter_resolved(host, addrs).map_err(denied)
    }
}

/// Follows the redirects of one request under its plugin's policy, up to
/// the policy's `follow_redirects` hops. Build one per send, from the
/// plugin's original request (secrets still as placeholders).
#[derive(Debug, Clone, Copy)]
pub struct PolicyRedirects<'a> {
    policy: &'a EgressPolicy,
    original: &'a OutboundRequest,
}

impl<'a> PolicyRedirects<'a> {
    /// Redirect handling for `original` under `policy`; `None` when the
    /// policy follows no redirects (then a 3xx is the final answer).
    pub fn new(policy: &'a EgressPolicy, original: &'a OutboundRequest) -> Option<Self> {
        (policy.follow_redirects() > 0).then_some(Self { policy, original })
    }
}

impl RedirectGuard for PolicyRedirects<'_> {
    fn max_hops(&self) -> u32 {
        self.policy.follow_redirects()
    }

    fn next_hop(&self, hop: &RedirectHop<'_>) -> Result<NextHop, HopRefused> {
        // The URL that answered was checked before it was sent; it is only
        // the base of a relative Location here. Not checked again: with its
        // secrets filled in it may be longer than a plugin's URL may be.
        let from = Destination::from_url(hop.from.clone(), false).map_err(denied)?;
        let (dest, url) = self
            .policy
            .check_redirect(&from, hop.location, hop.hop)
            .map_err(denied)?;
        self.policy.check_method(hop.method).map_err(denied)?;
        let mut headers = self.original.headers.clone();
        let body = if hop.keep_body {
            self.original.body.clone()
        } else {
            headers.retain(|(name, _)| !name.eq_ignore_ascii_case("content-type"));
            Vec::new()
        };
        let next = OutboundRequest {
            method: hop.method,
            url: url.to_string(),
            headers,
            body,
        };
        // A token on its way is worth another attempt, as on a first hop.
        let filled = self.policy.fill_secrets(&next, &dest).map_err(|e| {
            if e.is_transient() {
                HopRefused::Unavailable(e.to_string())
            } else {
                denied(e).into()
            }
        })?;
        Ok(NextHop {
            url: filled.url,
            headers: filled.headers,
            body: filled.body,
        })
    }
}
