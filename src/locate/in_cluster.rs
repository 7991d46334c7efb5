//! In-cluster credentials (SPEC §3 rule 4, as Backstage does): a cluster with
//! `authProvider: serviceAccount` and no token of its own, when kubeplex runs in a pod,
//! uses the pod's service-account token (re-read on change: projected tokens rotate) and
//! the pod's CA, and `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT` when the
//! cluster has no URL. The folder is injectable ([`apply_from`], or the
//! `KUBEPLEX_SERVICE_ACCOUNT_DIR` environment variable) so tests need no pod.

use crate::cluster::{ClusterSpec, ServerCredential};
use std::path::{Path, PathBuf};

/// Where a pod's service-account token, CA and namespace are mounted.
pub(crate) const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Whether this cluster should use the pod's service account: `serviceAccount` without a
/// token of its own.
pub(crate) fn wants_pod_account(spec: &ClusterSpec) -> bool {
    spec.auth_provider.as_deref() == Some("serviceAccount")
        && spec.credential == ServerCredential::None
}

/// Overrides [`SERVICE_ACCOUNT_DIR`] (a token mounted elsewhere, tests).
pub(crate) const DIR_ENV: &str = "KUBEPLEX_SERVICE_ACCOUNT_DIR";

/// The service-account folder: `$KUBEPLEX_SERVICE_ACCOUNT_DIR`, else [`SERVICE_ACCOUNT_DIR`].
pub(crate) fn dir() -> PathBuf {
    std::env::var_os(DIR_ENV)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(SERVICE_ACCOUNT_DIR))
}

/// Applies the pod's service account from [`dir`]; see [`apply_from`].
pub(crate) fn apply(spec: &mut ClusterSpec) -> bool {
    apply_from(spec, &dir())
}

/// When the cluster wants the pod's account and `dir/token` exists: the credential becomes
/// that token file, and the CA `dir/ca.crt` unless the cluster has its own CA. Returns
/// whether it applied.
pub(crate) fn apply_from(spec: &mut ClusterSpec, dir: &Path) -> bool {
    if !wants_pod_account(spec) {
        return false;
    }
    let token = dir.join("token");
    if !token.is_file() {
        return false;
    }
    spec.credential = ServerCredential::TokenFile(token);
    if spec.tls.ca_pem.is_none() && !spec.tls.skip_verify {
        match std::fs::read(dir.join("ca.crt")) {
            Ok(ca) => spec.tls.ca_pem = Some(ca),
            Err(e) => tracing::warn!(
                cluster = %spec.name,
                "in-cluster CA {} not readable ({e}); using the default roots",
                dir.join("ca.crt").display()
            ),
        }
    }
    true
}

/// The in-cluster API server URL from the environment, when running in a pod.
pub(crate) fn url() -> Option<String> {
    url_from(
        std::env::var("KUBERNETES_SERVICE_HOST").ok().as_deref(),
        std::env::var("KUBERNETES_SERVICE_PORT").ok().as_deref(),
    )
}

/// `https://host:port` (IPv6 bracketed, port 443 by default); `None` without a host.
pub(crate) fn url_from(host: Option<&str>, port: Option<&str>) -> Option<String> {
    let host = host.filter(|h| !h.is_empty())?;
    let port = port.filter(|p| !p.is_empty()).unwrap_or("443");
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    Some(format!("https://{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa_spec() -> ClusterSpec {
        let mut s = ClusterSpec::new("in", url::Url::parse("https://10.0.0.1").unwrap());
        s.auth_provider = Some("serviceAccount".into());
        s
    }

    #[test]
    fn uses_pod_token_and_ca() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "pod-token").unwrap();
        std::fs::write(dir.path().join("ca.crt"), "CA").unwrap();
        let mut s = sa_spec();
        assert!(apply_from(&mut s, dir.path()));
        assert_eq!(
            s.credential,
            ServerCredential::TokenFile(dir.path().join("token"))
        );
        assert_eq!(s.tls.ca_pem.as_deref(), Some(&b"CA"[..]));
    }

    #[test]
    fn own_token_own_ca_or_no_pod_win() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sa_spec();
        assert!(
            !apply_from(&mut s, dir.path()),
            "no token file: not in a pod"
        );
        assert_eq!(s.credential, ServerCredential::None);
        std::fs::write(dir.path().join("token"), "pod-token").unwrap();
        std::fs::write(dir.path().join("ca.crt"), "CA").unwrap();
        let mut own = sa_spec();
        own.credential = ServerCredential::token("mine");
        assert!(!apply_from(&mut own, dir.path()));
        assert_eq!(own.credential, ServerCredential::token("mine"));
        let mut own_ca = sa_spec();
        own_ca.tls.ca_pem = Some(b"MINE".to_vec());
        assert!(apply_from(&mut own_ca, dir.path()));
        assert_eq!(own_ca.tls.ca_pem.as_deref(), Some(&b"MINE"[..]));
        let mut other = sa_spec();
        other.auth_provider = Some("google".into());
        assert!(!apply_from(&mut other, dir.path()));
    }

    #[test]
    fn url_from_environment_values() {
        assert_eq!(
            url_from(Some("10.96.0.1"), Some("443")).unwrap(),
            "https://10.96.0.1:443"
        );
        assert_eq!(
            url_from(Some("fd00::1"), None).unwrap(),
            "https://[fd00::1]:443"
        );
        assert_eq!(url_from(None, Some("443")), None);
    }
}
