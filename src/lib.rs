//! kubeplex: a multi-cluster Kubernetes proxy backend for developer portals.
//!
//! The modules follow the way a request travels:
//! [`config`] and [`locate`] build the ordered [`registry`] of clusters; [`proxy`] chooses a
//! cluster for each request, applies the credential rules of [`upstream`] and forwards the
//! request (streamed, or tunnelled on upgrade); every error kubeplex itself produces is an
//! [`status::Error`], turned into a Kubernetes `Status` in one place. [`sim`] is the
//! simulated API server used by the default config and by the tests. [`app`] wires it all
//! into a running HTTP server, for `main` and for the integration tests alike.

pub mod app;
pub mod config;
pub mod locate;
pub mod proxy;
pub mod registry;
pub mod reload;
pub mod server_tls;
pub mod sim;
pub mod status;
pub mod telemetry;
pub mod upstream;
