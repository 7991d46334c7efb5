//! What operators see of a running kubeplex: liveness and readiness ([`readiness`]), the
//! Prometheus metrics ([`metrics`]), the graceful drain on SIGTERM ([`drain`]) and CORS
//! ([`cors`]).

pub(crate) mod cors;
pub(crate) mod drain;
pub(crate) mod metrics;
pub(crate) mod readiness;
