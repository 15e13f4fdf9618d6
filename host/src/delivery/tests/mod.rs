//! Socket-level tests of the delivery client against recording servers on
//! 127.0.0.1 (random ports, no other network).

pub(crate) mod fixtures;
mod http;
mod policy;
mod tls;
