//! What the proxy routes need, and nothing else: the registry handle and the settings of
//! `kubeplex.server` that a request uses. The app builds it once and hands it to the routes;
//! the proxy never reaches into the app's wiring.

use crate::cluster::RegistryHandle;
use crate::config::ServerSettings;
use std::time::Duration;

/// The proxy's shared state.
pub(crate) struct ProxyState {
    /// The current registry (swapped by the background owner on reload or refresh).
    pub registry: RegistryHandle,
    /// Per-request settings.
    pub settings: ProxySettings,
    /// Who is calling (`kubeplex.auth`) and the policy.
    pub auth: std::sync::Arc<crate::identity::Authenticator>,
}

/// The `kubeplex.server` settings a proxied request uses.
#[derive(Debug, Clone)]
pub(crate) struct ProxySettings {
    /// `basePath`, without a trailing slash.
    pub base_path: String,
    /// TCP connect (and, separately, TLS handshake) timeout.
    pub connect_timeout: Duration,
    /// Until the response head; never bounds a body.
    pub response_head_timeout: Duration,
    /// The longest pause inside a request body.
    pub body_idle_timeout: Duration,
    /// The most request header bytes forwarded.
    pub max_header_bytes: usize,
    /// Peers whose `X-Forwarded-For`, `X-Real-Ip` and `Forwarded` are kept (SPEC §11).
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl From<&ServerSettings> for ProxySettings {
    fn from(s: &ServerSettings) -> Self {
        ProxySettings {
            base_path: s.base_path.trim_end_matches('/').to_owned(),
            connect_timeout: s.connect_timeout,
            response_head_timeout: s.response_head_timeout,
            body_idle_timeout: s.body_idle_timeout,
            max_header_bytes: s.max_header_bytes,
            trusted_proxies: s.trusted_proxies.clone(),
        }
    }
}
