//! What operators see of a running kubeplex: liveness and readiness ([`readiness`]), the
//! Prometheus metrics ([`metrics`]), the graceful drain on SIGTERM ([`drain`]), CORS
//! ([`cors`]) and the status page at `/` ([`status`]).

pub(crate) mod cors;
pub(crate) mod drain;
pub(crate) mod metrics;
pub(crate) mod readiness;
pub(crate) mod status;
