//! Talking to a cluster: the connector ([`connector`]: TCP, then TLS with the cluster's
//! configuration built once in [`crate::cluster`]), the credential rules of SPEC §3
//! (`credential`) and the per-worker HTTP clients (`client`).

pub(crate) mod client;
pub mod connector;
pub(crate) mod credential;
