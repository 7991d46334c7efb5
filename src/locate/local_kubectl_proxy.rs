//! The `localKubectlProxy` locator: Backstage's one cluster `local` at
//! `http://127.0.0.1:8001`, where `kubectl proxy` listens by default; no credential.

use crate::cluster::ClusterSpec;

/// The address `kubectl proxy` listens on by default.
pub(crate) const URL: &str = "http://127.0.0.1:8001";

/// The one cluster `local`.
pub(crate) fn locate() -> Vec<ClusterSpec> {
    vec![ClusterSpec::new(
        "local",
        url::Url::parse(URL).expect("static URL parses"),
    )]
}
