//! The plugin proxy's two error types: [`BuildError`] when the plugin table cannot be
//! built from the configuration and the located clusters (start, reload), and
//! [`RequestError`] for a request, turned into a Kubernetes `Status` through
//! [`crate::status::Error`] (the one place errors become responses). Messages name the
//! plugin and alias, never a token or a query string.

use crate::config::ConfigErrors;
use crate::status::{Error, Reason};

/// Why the plugin table cannot be built: entries whose `cluster` the located clusters do
/// not have (or cannot choose), each as `file: key.path: problem`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct BuildError(pub ConfigErrors);

/// What went wrong with one request on `/api/proxy/plugin/...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RequestError {
    /// The path names no plugin, or no alias.
    #[error("name a plugin and an alias: /api/proxy/plugin/{{plugin}}/{{alias}}/{{path}}")]
    Incomplete,
    /// The route's prefix itself is percent-encoded.
    #[error("the route prefix of the path is percent-encoded; send it plainly")]
    EncodedPrefix,
    /// No plugin of that name.
    #[error("no plugin {plugin:?} has a proxy here (plugins: {known})")]
    UnknownPlugin {
        /// The name asked for.
        plugin: String,
        /// The configured plugins.
        known: String,
    },
    /// The plugin has no proxy entry of that alias.
    #[error("plugin {plugin:?} has no proxy alias {alias:?} (aliases: {known})")]
    UnknownAlias {
        /// The plugin.
        plugin: String,
        /// The alias asked for.
        alias: String,
        /// The plugin's aliases.
        known: String,
    },
    /// `authorization: UserToken` and the caller sent no Kubernetes token.
    #[error(
        "plugin {plugin} alias {alias} proxies with the caller's Kubernetes token \
         (authorization: UserToken) and the request carries none: send Authorization: Bearer \
         <token>, or Backstage-Kubernetes-Authorization when kubeplex.auth verifies portal tokens"
    )]
    NoToken {
        /// The plugin.
        plugin: String,
        /// The alias.
        alias: String,
    },
    /// The access policy (SPEC §5) does not let the caller proxy to the entry's Service.
    #[error("{subject} may not proxy services in namespace {namespace} in cluster {cluster}")]
    Forbidden {
        /// The verified caller.
        subject: String,
        /// The Service's namespace.
        namespace: String,
        /// The cluster key the policy decided on.
        cluster: String,
    },
    /// The entry cannot reach its Service: no usable CA, or its cluster is gone.
    #[error("plugin {plugin} alias {alias}: {why}")]
    Unreachable {
        /// The plugin.
        plugin: String,
        /// The alias.
        alias: String,
        /// Why.
        why: String,
    },
    /// A failure of the shared forwarding (path checks, connect, TLS, timeouts, ...), as
    /// the proxy routes report it (already naming the plugin and alias).
    #[error("{}", .0.message)]
    Forward(Error),
}

impl From<Error> for RequestError {
    fn from(e: Error) -> Self {
        RequestError::Forward(e)
    }
}

/// The hints of [`crate::tls::describe`] are the cluster's settings; a plugin's Service has
/// its own.
const PLUGIN_CA_HINT: &str = "set caCertificate on the proxy entry to the Service's CA, or \
     kubeplex.pluginProxy.serviceCaFile to the service CA bundle";
const PLUGIN_NAME_HINT: &str =
    "the Service's certificate must name {name}.{namespace}.svc.{clusterDomain}";

impl From<RequestError> for Error {
    fn from(e: RequestError) -> Error {
        let reason = match &e {
            RequestError::Incomplete | RequestError::UnknownPlugin { .. } => Reason::NotFound,
            RequestError::UnknownAlias { .. } => Reason::NotFound,
            RequestError::EncodedPrefix => Reason::BadRequest,
            RequestError::NoToken { .. } => Reason::Unauthorized,
            RequestError::Forbidden { .. } => Reason::Forbidden,
            RequestError::Unreachable { .. } => Reason::BadGateway,
            RequestError::Forward(inner) => {
                let message = inner
                    .message
                    .replace(crate::tls::describe::CLUSTER_CA_HINT, PLUGIN_CA_HINT)
                    .replace(crate::tls::describe::CLUSTER_NAME_HINT, PLUGIN_NAME_HINT);
                return Error::new(inner.reason, message);
            }
        };
        Error::new(reason, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_and_hints() {
        let e: Error = RequestError::NoToken {
            plugin: "acm".into(),
            alias: "search".into(),
        }
        .into();
        assert_eq!(e.reason, Reason::Unauthorized);
        let e: Error = RequestError::UnknownAlias {
            plugin: "acm".into(),
            alias: "x".into(),
            known: "search".into(),
        }
        .into();
        assert_eq!(e.reason, Reason::NotFound);
        let inner = Error::bad_gateway(format!(
            "cannot connect to plugin acm alias search: TLS: server certificate signed by an \
             unknown CA (UnknownIssuer); {}",
            crate::tls::describe::CLUSTER_CA_HINT
        ));
        let e: Error = RequestError::Forward(inner).into();
        assert_eq!(e.reason, Reason::BadGateway);
        assert!(e.message.ends_with(PLUGIN_CA_HINT), "{}", e.message);
    }
}
