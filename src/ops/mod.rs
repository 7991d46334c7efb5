//! What operators see of a running kubeplex: liveness and readiness ([`readiness`]), the
//! Prometheus metrics ([`metrics`]) and the graceful drain on SIGTERM ([`drain`]).

pub(crate) mod drain;
pub(crate) mod metrics;
pub(crate) mod readiness;
