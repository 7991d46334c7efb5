//! What a simulated cluster is configured with: its name, seed, accepted tokens, injected
//! faults, the `backends` allow-list of its Service `proxy` subresource and whether it
//! serves HTTPS ([`SimTls`]). The simulator owns these types; kubeplex's configuration
//! readers (`simulated` locator) and the `kubeplex sim` command build them.

use ipnet::IpNet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The seed shipped in `config/seed.yaml`, embedded for the default configuration.
pub const DEFAULT_SEED: &str = include_str!("../../config/seed.yaml");

/// The seeds the embedded default configuration names, by file name: `seed.yaml` (the demo
/// apps) and `seed-next.yaml` (their next release, for `staging:prod`).
pub const EMBEDDED_SEEDS: &[(&str, &str)] = &[
    ("seed.yaml", DEFAULT_SEED),
    (
        "seed-next.yaml",
        include_str!("../../config/seed-next.yaml"),
    ),
];

/// The backends a simulated cluster's Service proxy may reach unless configured otherwise:
/// loopback only (`127.0.0.0/8`, `::1/128`).
pub fn default_backends() -> Vec<IpNet> {
    vec![
        IpNet::V4(ipnet::Ipv4Net::new(std::net::Ipv4Addr::new(127, 0, 0, 0), 8).expect("/8")),
        IpNet::V6(ipnet::Ipv6Net::new(std::net::Ipv6Addr::LOCALHOST, 128).expect("/128")),
    ]
}

/// Parses one entry of a `backends` allow-list: a CIDR (`10.0.0.0/8`, `fd00::/8`) or a
/// single address (`192.0.2.7`, taken as `/32` or `/128`). A CIDR with host bits set
/// (`10.0.0.1/8`) is refused, as it is most likely a typo.
pub fn parse_backend(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        if net.addr() != net.network() {
            return Err(format!(
                "{s} has host bits set (did you mean {}?)",
                net.trunc()
            ));
        }
        return Ok(net);
    }
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    Err(format!(
        "not a CIDR: {s:?} (expected an address/prefix such as 127.0.0.0/8 or ::1/128)"
    ))
}

/// A simulated cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct SimClusterConfig {
    pub name: String,
    /// Optional YAML seed of Namespace and Service objects.
    pub seed: Option<SeedSource>,
    /// Accepted bearer tokens; empty allows anonymous.
    pub tokens: Vec<SimToken>,
    /// Faults to inject (tests).
    pub faults: SimFaults,
    /// The networks the Service `proxy` subresource may connect to (every address a
    /// backend's host resolves to must be in one); default [`default_backends`].
    pub backends: Vec<IpNet>,
    /// Custom resource types served besides the built-in kinds (a seed may declare more
    /// with `CustomResourceDefinition` objects).
    pub custom_types: Vec<super::kinds::CustomType>,
    /// Plain HTTP (the default) or HTTPS.
    pub tls: SimTls,
    /// Which tokens may act as another user (`Impersonate-User`), and what the users and
    /// groups they act as may do; default: nobody may impersonate.
    pub impersonation: SimImpersonation,
}

impl Default for SimClusterConfig {
    fn default() -> Self {
        SimClusterConfig {
            name: String::new(),
            seed: None,
            tokens: Vec::new(),
            faults: SimFaults::default(),
            backends: default_backends(),
            custom_types: Vec::new(),
            tls: SimTls::Off,
            impersonation: SimImpersonation::default(),
        }
    }
}

impl SimClusterConfig {
    /// A simulated cluster named `name`, seeded from `seed`, accepting exactly `tokens`
    /// (none: anonymous), without limits or faults, reaching loopback backends only.
    pub fn new<T: Into<String>>(
        name: impl Into<String>,
        seed: Option<SeedSource>,
        tokens: impl IntoIterator<Item = T>,
    ) -> Self {
        SimClusterConfig {
            name: name.into(),
            seed,
            tokens: tokens
                .into_iter()
                .map(|t| SimToken {
                    token: t.into(),
                    ..SimToken::default()
                })
                .collect(),
            ..SimClusterConfig::default()
        }
    }
}

/// Whether and how a simulated cluster serves HTTPS.
#[derive(Clone, Default)]
pub enum SimTls {
    /// Plain HTTP.
    #[default]
    Off,
    /// HTTPS with a self-signed certificate (no CA) generated when the server starts, for
    /// the listen address: its IP addresses (or host name), plus `localhost`, `127.0.0.1`
    /// and `::1` when it is a loopback or unspecified address. The server's
    /// [`ca_pem`](crate::sim::SimServer::ca_pem) is that certificate.
    SelfSigned,
    /// HTTPS with a given certificate chain and key ([`SimTls::from_files`]).
    Certificate(SimCertificate),
}

impl SimTls {
    /// HTTPS with the PEM certificate chain in `cert_file` and the PEM private key (PKCS#8,
    /// PKCS#1 or SEC1) in `key_file`, as `kubeplex sim --tls-cert --tls-key` gives them.
    /// Errors name the flag and the file, never what the key holds.
    pub fn from_files(cert_file: &Path, key_file: &Path) -> Result<SimTls, crate::tls::TlsError> {
        let served = crate::tls::listener::from_files(
            cert_file,
            key_file,
            crate::tls::listener::FileSettings {
                both: "--tls-cert/--tls-key",
                cert: "--tls-cert",
                key: "--tls-key",
            },
        )?;
        Ok(SimTls::Certificate(SimCertificate {
            config: Arc::new(served.config),
            chain_pem: served.chain_pem,
        }))
    }

    /// Whether the server speaks HTTPS.
    pub fn enabled(&self) -> bool {
        !matches!(self, SimTls::Off)
    }
}

/// Two configurations are equal when both are off, both self-signed, or both the very
/// same loaded certificate.
impl PartialEq for SimTls {
    fn eq(&self, o: &Self) -> bool {
        match (self, o) {
            (SimTls::Off, SimTls::Off) | (SimTls::SelfSigned, SimTls::SelfSigned) => true,
            (SimTls::Certificate(a), SimTls::Certificate(b)) => {
                Arc::ptr_eq(&a.config, &b.config) && a.chain_pem == b.chain_pem
            }
            _ => false,
        }
    }
}

/// Shows the kind only: no key material.
impl std::fmt::Debug for SimTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SimTls::Off => f.write_str("Off"),
            SimTls::SelfSigned => f.write_str("SelfSigned"),
            SimTls::Certificate(_) => f.write_str("Certificate(<loaded>)"),
        }
    }
}

/// A loaded certificate chain and key: the rustls server configuration (ring) and the
/// chain as PEM, which clients trust.
#[derive(Clone)]
pub struct SimCertificate {
    pub(crate) config: Arc<rustls::ServerConfig>,
    pub(crate) chain_pem: Vec<u8>,
}

/// Where a simulated cluster's seed comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum SeedSource {
    /// A YAML file (several documents, or a `kind: List`).
    File(PathBuf),
    /// YAML text embedded in the binary (the default config's `config/seed.yaml`).
    Text {
        /// Name for messages.
        name: String,
        /// The YAML.
        text: String,
    },
}

/// An accepted token of a simulated cluster, optionally limited. Its `Debug` output does
/// not show the token.
#[derive(Clone, PartialEq, Default)]
pub struct SimToken {
    pub token: String,
    /// Namespaces this token may touch; `None` means all.
    pub namespaces: Option<Vec<String>>,
    /// Verbs (get, list, watch, create, update, patch, delete, proxy, exec); `None` means all.
    pub verbs: Option<Vec<String>>,
}

impl std::fmt::Debug for SimToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimToken")
            .field("token", &"<redacted>")
            .field("namespaces", &self.namespaces)
            .field("verbs", &self.verbs)
            .finish()
    }
}

/// Impersonation as kube-apiserver does it (`Impersonate-User`, `Impersonate-Group`,
/// `Impersonate-Extra-*`): a request whose token is one of `tokens` and that names a user
/// is authorized as that user and the groups it names, with the rights of the matching
/// `users` and `groups` grants together (RBAC is additive; no grant: no rights). Any other
/// token asking to impersonate is refused with a 403 like the API server's.
#[derive(Clone, PartialEq, Default)]
pub struct SimImpersonation {
    /// The token values that may impersonate (each must also be one of the cluster's
    /// `tokens`).
    pub tokens: Vec<String>,
    /// What impersonated users may do, by user name.
    pub users: Vec<SimGrant>,
    /// What impersonated groups may do, by group name.
    pub groups: Vec<SimGrant>,
}

impl std::fmt::Debug for SimImpersonation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimImpersonation")
            .field("tokens", &format!("<{} redacted>", self.tokens.len()))
            .field("users", &self.users)
            .field("groups", &self.groups)
            .finish()
    }
}

/// What an impersonated user or group (named `name`) may do.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SimGrant {
    /// The user or group name.
    pub name: String,
    /// Namespaces it may touch; `None` means all.
    pub namespaces: Option<Vec<String>>,
    /// Verbs it may use; `None` means all.
    pub verbs: Option<Vec<String>>,
}

/// Faults a simulated cluster injects.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SimFaults {
    /// Added before every response head.
    pub latency: Option<Duration>,
    /// Fail every Nth request with `fail_code`.
    pub fail_every: Option<u64>,
    /// Code for `fail_every`, default 500.
    pub fail_code: Option<u16>,
    /// Close each watch after this many events.
    pub close_watch_after: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends() {
        assert_eq!(
            default_backends()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["127.0.0.0/8", "::1/128"]
        );
        assert_eq!(
            parse_backend("10.0.0.0/8").unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            parse_backend("192.0.2.7").unwrap().to_string(),
            "192.0.2.7/32"
        );
        assert_eq!(parse_backend("::1").unwrap().to_string(), "::1/128");
        assert_eq!(
            parse_backend("10.0.0.1/8").unwrap_err(),
            "10.0.0.1/8 has host bits set (did you mean 10.0.0.0/8?)"
        );
        assert_eq!(
            parse_backend("10.0.0.0/33").unwrap_err(),
            r#"not a CIDR: "10.0.0.0/33" (expected an address/prefix such as 127.0.0.0/8 or ::1/128)"#
        );
    }

    #[test]
    fn tls_debug_shows_no_material() {
        let dir = tempfile::tempdir().unwrap();
        let served =
            crate::tls::listener::self_signed("t", &[], &["localhost".to_string()]).unwrap();
        let cert = dir.path().join("c.pem");
        std::fs::write(&cert, &served.chain_pem).unwrap();
        let loaded = SimTls::from_files(&cert, &cert);
        // The chain file holds no key: the error names the flag and the file.
        let err = loaded.err().unwrap().to_string();
        assert!(err.starts_with("--tls-key: "), "{err}");
        let tls = SimTls::Certificate(SimCertificate {
            config: Arc::new(served.config),
            chain_pem: served.chain_pem,
        });
        assert_eq!(format!("{tls:?}"), "Certificate(<loaded>)");
        assert_eq!(tls, tls.clone());
        assert_ne!(tls, SimTls::SelfSigned);
        assert!(tls.enabled() && SimTls::SelfSigned.enabled() && !SimTls::Off.enabled());
    }

    #[test]
    fn token_debug_is_redacted() {
        let t = SimToken {
            token: "canary-secret".into(),
            ..SimToken::default()
        };
        assert!(!format!("{t:?}").contains("canary-secret"));
        let i = SimImpersonation {
            tokens: vec!["canary-secret".into()],
            ..SimImpersonation::default()
        };
        assert!(!format!("{i:?}").contains("canary-secret"));
    }
}
