//! kubeplex: a multi-cluster Kubernetes proxy backend for developer portals.
//!
//! The modules follow the way a request travels:
//! [`config`] and [`locate`] find the clusters; [`cluster`] holds what a cluster is (spec,
//! key, TLS configuration built once) and the ordered registry that chooses one; [`control`]
//! is the one background writer of the registry (reload, catalog refresh, simulated
//! servers); `proxy` chooses a cluster for each request, applies the credential rules of
//! [`upstream`] and forwards the request (streamed, or tunnelled on upgrade); `aggregate`
//! reads from many clusters at once and merges their answers (lists, gets, Tables,
//! discovery) on the same forwarding preparation; `plugin_proxy` serves the OpenShift
//! console's ConsolePlugin proxy entries through the same forwarding; `ops`
//! answers health and readiness. Every error a request gets from kubeplex itself is a
//! `status::Error`, turned into a Kubernetes `Status` in one place. [`tls`] holds PEM
//! parsing, verifiers, the listener configuration and TLS error descriptions; `redact`
//! keeps secrets out of messages. [`sim`] is the simulated API server used by the default
//! config and by the tests, and depends on nothing of the proxy. [`app`] wires it all into a
//! running HTTP server, for `main` and for the integration tests alike.

// Only what `main`, the integration tests and the benches use is `pub`; the rest is
// `pub(crate)`, so the compiler reports dead code.
#![warn(unreachable_pub)]
pub(crate) mod aggregate;
pub mod app;
pub(crate) mod backstage;
pub mod cluster;
pub mod config;
pub mod control;
pub(crate) mod identity;
pub mod locate;
pub(crate) mod ops;
pub(crate) mod plugin_proxy;
pub(crate) mod proxy;
pub(crate) mod redact;
pub mod sim;
pub(crate) mod status;
pub mod telemetry;
pub mod tls;
pub mod upstream;
pub mod url_guard;
