//! Talking to a cluster: the per-worker clients (`client`: hyper's HTTP/1 client with its
//! idle pool for forwarded requests, awc's tunnel for WebSocket upgrades), their connectors
//! ([`connect`] for hyper, [`connector`] for awc: TCP, the catalog's connect guard, then TLS
//! with the cluster's configuration built once in [`crate::cluster`]), what they connect
//! to (`target`: a registry cluster, or a plugin's Service reached directly) and the
//! credential rules of SPEC §3 (`credential`). A bodyless `GET` or `HEAD` to a plain
//! `http://` target takes the direct HTTP/1.1 path instead ([`h1`]).

pub(crate) mod client;
pub mod connect;
pub mod connector;
pub(crate) mod credential;
pub(crate) mod fetch;
pub(crate) mod h1;
pub(crate) mod target;
