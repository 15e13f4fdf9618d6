//! Constructors and accessors on [`Decision`], what a plugin returns.

use crate::{Decision, Request};

impl Decision {
    /// Do nothing with the event; `reason` is recorded in the delivery log.
    pub fn skip(reason: impl Into<String>) -> Self {
        Decision::Skip(reason.into())
    }

    /// Send `requests`, each delivered and retried independently (an empty
    /// list sends nothing).
    pub fn fire(requests: impl IntoIterator<Item = Request>) -> Self {
        Decision::Fire(requests.into_iter().collect())
    }

    /// Send exactly one request.
    pub fn fire_one(request: Request) -> Self {
        Decision::Fire(vec![request])
    }

    /// The skip reason, or `None` when this decision fires.
    pub fn skip_reason(&self) -> Option<&str> {
        match self {
            Decision::Skip(reason) => Some(reason),
            Decision::Fire(_) => None,
        }
    }

    /// The requests to send (empty when this decision skips).
    pub fn requests(&self) -> &[Request] {
        match self {
            Decision::Skip(_) => &[],
            Decision::Fire(requests) => requests,
        }
    }
}

impl From<Request> for Decision {
    fn from(request: Request) -> Self {
        Decision::fire_one(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_keeps_its_reason_and_sends_nothing() {
        let decision = Decision::skip("address incomplete");
        assert_eq!(decision, Decision::Skip("address incomplete".to_owned()));
        assert_eq!(decision.skip_reason(), Some("address incomplete"));
        assert!(decision.requests().is_empty());
    }

    #[test]
    fn fire_collects_requests_in_order() {
        let decision = Decision::fire([Request::get("a"), Request::get("b")]);
        let urls: Vec<_> = decision.requests().iter().map(|r| r.url.as_str()).collect();
        assert_eq!(urls, ["a", "b"]);
        assert_eq!(decision.skip_reason(), None);
    }

    #[test]
    fn one_request_shortcuts_agree() {
        let request = Request::delete("https://x.test/1");
        assert_eq!(
            Decision::fire_one(request.clone()),
            Decision::from(request.clone())
        );
        assert_eq!(Decision::fire_one(request.clone()).requests(), [request]);
    }
}
