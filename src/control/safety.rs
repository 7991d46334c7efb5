//! Refusals before a configuration serves (SPEC §5, §11), at start and at every reload:
//!
//! - no clusters at all (unless a catalog locator may still fill them in);
//! - `auth.mode: none` on a listener that is not loopback while a cluster has a server-side
//!   credential: every caller would borrow it (unless
//!   `kubeplex.auth.dangerouslyAllowUnauthenticated`, then a warning);
//! - `skipTLSVerify` together with a server-side credential: the token would go to any
//!   server that answers (unless `kubeplex.dangerouslySkipTLSVerifyWithCredentials`).
//!
//! These need the located clusters (a kubeconfig's token, the pod's service account), so
//! they run after the locators, on the registry about to serve.

use crate::cluster::Registry;
use crate::config::Settings;

/// Why a configuration may not serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SafetyError {
    /// The locators found no cluster.
    #[error("no clusters: the configured locators found none (kubernetes.clusterLocatorMethods)")]
    NoClusters,
    /// Unauthenticated, reachable from the network, and lending server credentials.
    #[error(
        "refusing to listen on {listen} with kubeplex.auth.mode none while clusters have a \
         server-side credential ({clusters}): anyone who reaches kubeplex would use it. Listen \
         on a loopback address, remove the credentials, or set \
         kubeplex.auth.dangerouslyAllowUnauthenticated: true"
    )]
    Unauthenticated {
        /// The listen address.
        listen: String,
        /// The keys of the clusters with a server-side credential.
        clusters: String,
    },
    /// `skipTLSVerify` with a server-side token.
    #[error(
        "cluster {cluster}: skipTLSVerify together with a server-side credential would send \
         the token to any server that answers; verify the server (caData, caFile) or set \
         kubeplex.dangerouslySkipTLSVerifyWithCredentials: true"
    )]
    SkipVerifyWithCredentials {
        /// The cluster key.
        cluster: String,
    },
}

/// Checks `registry` against `settings`; warns when a dangerous setting lets it pass.
pub(crate) fn check(settings: &Settings, registry: &Registry) -> Result<(), SafetyError> {
    let clusters = registry.clusters();
    // A catalog may be down at start: it fills in later (and `/readyz` says not ready).
    let may_fill_in = settings
        .locators
        .iter()
        .any(|l| matches!(l.kind, crate::config::LocatorKind::Catalog(_)));
    if clusters.is_empty() && !may_fill_in {
        return Err(SafetyError::NoClusters);
    }
    for c in clusters {
        let skip = c.spec.tls.skip_verify && c.spec.url.scheme() == "https";
        if skip
            && c.spec.credential.is_some()
            && !settings.dangerously_skip_tls_verify_with_credentials
        {
            return Err(SafetyError::SkipVerifyWithCredentials {
                cluster: c.key.to_string(),
            });
        }
    }
    let lending: Vec<&str> = clusters
        .iter()
        .filter(|c| c.spec.credential.is_some())
        .map(|c| c.key.as_str())
        .collect();
    if settings.auth.mode == crate::config::AuthMode::None
        && !lending.is_empty()
        && !is_loopback(&settings.server.listen)
    {
        if !settings.auth.dangerously_allow_unauthenticated {
            return Err(SafetyError::Unauthenticated {
                listen: settings.server.listen.clone(),
                clusters: lending.join(", "),
            });
        }
        tracing::warn!(
            listen = %settings.server.listen,
            clusters = %lending.join(", "),
            "kubeplex.auth.dangerouslyAllowUnauthenticated: anyone who reaches kubeplex uses \
             these clusters' server-side credentials"
        );
    }
    Ok(())
}

/// Whether a `host:port` listen address is loopback only.
pub(crate) fn is_loopback(listen: &str) -> bool {
    let host = listen.rsplit_once(':').map_or(listen, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_listeners() {
        assert!(super::is_loopback("127.0.0.1:7007"));
        assert!(super::is_loopback("127.1.2.3:0"));
        assert!(super::is_loopback("[::1]:7007"));
        assert!(super::is_loopback("localhost:7007"));
        assert!(!super::is_loopback("0.0.0.0:7007"));
        assert!(!super::is_loopback("[::]:7007"));
        assert!(!super::is_loopback("10.0.0.1:7007"));
        assert!(!super::is_loopback("kubeplex.example.com:7007"));
    }
}
