//! What operators see of a running kubeplex: liveness and readiness ([`readiness`]) and
//! the Prometheus metrics ([`metrics`]).

pub(crate) mod metrics;
pub(crate) mod readiness;
