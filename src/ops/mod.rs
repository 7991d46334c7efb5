//! What operators see of a running kubeplex: liveness and readiness ([`readiness`]).

pub(crate) mod readiness;
