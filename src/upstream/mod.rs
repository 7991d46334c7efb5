//! Talking to a cluster: per-cluster TLS configuration ([`tls`]), the credential rules of
//! SPEC §3 ([`credential`]) and the per-worker HTTP clients ([`client`]).

pub mod client;
pub mod connector;
pub mod credential;
pub mod tls;
