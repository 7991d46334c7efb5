//! The plugin service proxy (SPEC §7): the OpenShift console's `ConsolePlugin` `spec.proxy`,
//! for any portal. A plugin declares proxy entries (inline under
//! `kubeplex.pluginProxy.plugins`, or in ConsolePlugin resources exactly as written for the
//! console, read by [`crate::config::plugin_proxy`]), and
//! `ANY /api/proxy/plugin/{plugin}/{alias}/{path}?{query}` reaches the entry's in-cluster
//! Service:
//!
//! - `via: direct` (the default): `https://{name}.{namespace}.svc.{clusterDomain}:{port}`,
//!   HTTPS only, verified against the entry's `caCertificate` or else the service CA
//!   bundle file, with `resolve` for split DNS and tests ([`table`]);
//! - `via: apiserver`: the cluster's Service proxy subresource, with the cluster's
//!   credential (SPEC §3), for Services in clusters kubeplex does not run in.
//!
//! Requests travel the proxy's own machinery: the SPEC §3 path checks, the header filter,
//! the streaming forward and the WebSocket tunnel of [`crate::proxy`], on a
//! [`crate::upstream::target::Target`] (a plugin's Service) or a registry cluster, with
//! the plugin's header rules ([`headers`]) around them ([`route`]). Errors are
//! [`error::RequestError`]s, answered as Kubernetes `Status` objects naming the plugin and
//! alias (404 unknown plugin or alias, 401 no token for `UserToken`, 502 unreachable or TLS
//! failure); each request gets one audit line (plugin, alias, method, path without query,
//! status, bytes, duration; never a token or a query).
//!
//! The table is built at start and at every reload with the registry ([`Table::build`]),
//! and swapped atomically ([`PluginHandle`]): a reload that changes nothing keeps each
//! entry's target, and so each worker's pooled connections.

pub(crate) mod error;
pub(crate) mod headers;
pub(crate) mod route;
pub(crate) mod table;

pub(crate) use table::{PluginHandle, Table};

use actix_web::web;

/// The route's prefix.
pub(crate) const ROUTE: &str = "/api/proxy/plugin";

/// What the plugin route needs besides the proxy's state: the current table.
pub(crate) struct PluginState {
    /// The plugin table (swapped by the background owner on reload).
    pub table: PluginHandle,
}

/// The table's entries as the status page lists them: no Service URL, no credential.
pub(crate) fn status_rows(table: &Table) -> Vec<crate::ops::status::PluginRow> {
    table
        .entries()
        .into_iter()
        .map(|e| crate::ops::status::PluginRow {
            plugin: e.plugin.to_string(),
            alias: e.alias.to_string(),
            via: match e.route {
                table::Route::Direct { .. } => "direct",
                table::Route::Apiserver { .. } => "apiserver",
            },
            cluster: e.cluster.clone(),
            namespace: e.namespace.clone(),
            authorization: match e.authorization {
                crate::config::plugin_proxy::Authorization::None => "None",
                crate::config::plugin_proxy::Authorization::UserToken => "UserToken",
            },
        })
        .collect()
}

/// Registers `ANY /api/proxy/plugin/...` (a static prefix: the handler splits the path).
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope(ROUTE).default_service(web::to(route::handle)));
}
