//! The route `ANY /api/proxy/plugin/{plugin}/{alias}/{path}?{query}` (SPEC §7): find the
//! entry, check the request as the proxy routes do (SPEC §3 path checks, no `TRACE` or
//! `CONNECT`), decide the credential ([`super::headers`]), prepare the upstream request
//! and hand it to the proxy's own streaming forward ([`crate::proxy::forward::send`]) or
//! WebSocket tunnel ([`crate::proxy::upgrade::tunnel`]); then the outgoing header rules.
//!
//! The prefix up to the alias is stripped; the rest of the path goes upstream as sent
//! (percent-encoding and trailing slash kept), the alias alone (`.../search`, no slash)
//! as `/`, the query unchanged. `via: direct` sends it to the Service's own origin;
//! `via: apiserver` appends it to the Service proxy subresource's path on the cluster.
//! Neither has a deadline on the response (the console's proxy has none); connecting does.

use super::error::RequestError;
use super::headers::{is_removed_response_header, sandbox, user_token};
use super::table::{direct_upstream, Entry, Route, Table};
use super::PluginState;
use crate::cluster::ClusterSpec;
use crate::config::plugin_proxy::Authorization;
use crate::proxy::forward::{self, Caller, Dest, Limits, Prepared, Via};
use crate::proxy::headers::{is_trusted, RequestFilter};
use crate::proxy::{upgrade, Ctx, Incoming, ProxyState};
use crate::status::Error;
use crate::upstream::client;
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

/// Serves one request on the plugin route: a response, or a `Status`, with the request id,
/// the outgoing header rules and one audit line naming the plugin and alias.
pub(crate) async fn handle(
    req: HttpRequest,
    payload: web::Payload,
    plugins: web::Data<PluginState>,
    proxy: web::Data<ProxyState>,
) -> HttpResponse {
    let req = Incoming::from(req);
    let mut ctx = Ctx::new(req.headers()).metered(&proxy, crate::ops::metrics::Route::PluginProxy);
    let table = plugins.table.load();
    let result = serve(&req, payload.into_inner(), &table, &proxy, &mut ctx)
        .await
        .map_err(Error::from);
    let mut res = ctx.finish(req, result);
    sandbox(res.headers_mut());
    res
}

/// `{plugin}`, `{alias}` and the rest of the raw path (still percent-encoded; empty for
/// the alias alone).
fn split(path: &str) -> Result<(&str, &str, &str), RequestError> {
    let rest = path
        .strip_prefix(super::ROUTE)
        .ok_or(RequestError::EncodedPrefix)?;
    let rest = rest.strip_prefix('/').ok_or(RequestError::Incomplete)?;
    let (plugin, rest) = rest.split_once('/').ok_or(RequestError::Incomplete)?;
    let (alias, tail) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if plugin.is_empty() || alias.is_empty() {
        return Err(RequestError::Incomplete);
    }
    Ok((plugin, alias, tail))
}

/// Text from the request for a message: at most 128 characters.
fn shown(s: &str) -> String {
    s.chars().take(128).collect()
}

fn find(table: &Table, plugin: &str, alias: &str) -> Result<Arc<Entry>, RequestError> {
    match table.get(plugin, alias) {
        Some(e) => Ok(e.clone()),
        None if table.has_plugin(plugin) => Err(RequestError::UnknownAlias {
            plugin: shown(plugin),
            alias: shown(alias),
            known: table.alias_names(plugin),
        }),
        None => Err(RequestError::UnknownPlugin {
            plugin: shown(plugin),
            known: table.plugin_names(),
        }),
    }
}

/// The cluster rules 1-3 are read for when an entry names no cluster: no provider, so only
/// rules 1 and 3 can apply.
fn no_cluster() -> &'static ClusterSpec {
    static SPEC: OnceLock<ClusterSpec> = OnceLock::new();
    SPEC.get_or_init(|| {
        ClusterSpec::new(
            "-",
            url::Url::parse("https://plugin.invalid").expect("a valid URL"),
        )
    })
}

async fn serve(
    req: &Incoming,
    payload: Payload,
    table: &Table,
    proxy: &ProxyState,
    ctx: &mut Ctx,
) -> Result<HttpResponse, RequestError> {
    let (plugin, alias, tail) = split(req.uri().path())?;
    // Mode `jwt`: the caller's portal token is verified (a 401 otherwise) and consumed.
    let who = crate::identity::identify(&proxy.auth, req).await?;
    let entry = find(table, plugin, alias)?;
    ctx.plugin = Some((entry.plugin.clone(), entry.alias.clone()));
    crate::proxy::check_request(req, tail)?;
    let upgrade = req.headers().contains_key(header::UPGRADE);
    if upgrade {
        upgrade::check(req)?;
    }
    let unreachable = |why: String| RequestError::Unreachable {
        plugin: entry.plugin.to_string(),
        alias: entry.alias.to_string(),
        why,
    };
    let registry = proxy.registry.load();
    let settings = &proxy.settings;
    let user = entry.authorization == Authorization::UserToken;
    // The entry's cluster, when one matters: the API server the request goes through, the
    // provider a caller's token header is for, or what the access policy decides on.
    let apiserver = matches!(entry.route, Route::Apiserver { .. });
    let choice = if apiserver || who.is_some() || (user && entry.cluster.is_some()) {
        let n = registry.clusters().len();
        let c = match entry.cluster.as_deref() {
            None if n != 1 => {
                return Err(unreachable(format!(
                    "the proxy entry names no cluster and {n} clusters are configured; set its cluster (name or key)"
                )))
            }
            c => registry
                .choose(c)
                .map_err(|e| unreachable(format!("cluster: {}", e.message)))?,
        };
        Some(c)
    } else {
        None
    };
    // SPEC §7: verb `proxy` on `services` in the entry's namespace.
    if let (Some(who), Some(choice)) = (&who, &choice) {
        let access = crate::identity::policy::Access {
            cluster: &choice.cluster,
            namespace: &entry.namespace,
            verb: "proxy",
        };
        if !proxy.auth.policy.allows(who, &access) {
            return Err(RequestError::Forbidden {
                subject: who.subject.clone(),
                namespace: entry.namespace.clone(),
                cluster: choice.cluster.key.to_string(),
            });
        }
    }
    let spec: &ClusterSpec = match &choice {
        Some(c) => &c.cluster.spec,
        None => no_cluster(),
    };
    // `UserToken`: the caller's Kubernetes token (SPEC §3 rules 1-3; rule 3 only without
    // identity checking); through an API server whose cluster impersonates, the verified
    // caller impersonated with the cluster's credential will do.
    let mut authorization = None;
    let mut callers_own = false;
    if user {
        authorization = user_token(req.headers(), spec, proxy.auth.checks())?;
        callers_own = authorization.is_some();
        let impersonated = apiserver && who.is_some() && spec.impersonate;
        if !callers_own && !impersonated {
            return Err(RequestError::NoToken {
                plugin: entry.plugin.to_string(),
                alias: entry.alias.to_string(),
            });
        }
    }
    let rest = if tail.is_empty() { "/" } else { tail };
    let (up, path) = match &entry.route {
        Route::Direct { target, .. } => {
            let target = target.as_ref().map_err(|why| {
                unreachable(format!(
                    "{why}; set caCertificate on the proxy entry, or kubeplex.pluginProxy.serviceCaFile"
                ))
            })?;
            (
                direct_upstream(table, target).map_err(unreachable)?,
                Cow::Borrowed(rest),
            )
        }
        Route::Apiserver { path } => {
            let choice = choice
                .as_ref()
                .expect("chosen above for every apiserver entry");
            let cluster = &choice.cluster;
            ctx.choice = Some(choice.clone());
            let up = client::for_cluster(&registry, cluster, settings.connect_timeout)?;
            if !callers_own {
                // SPEC §3 rule 4 (or 5): the cluster's own credential, never the caller's.
                authorization = up.token.current(cluster.key.as_str())?;
            }
            (up, Cow::Owned(format!("{path}{rest}")))
        }
    };
    let caller = Caller::of(req);
    let filter = RequestFilter {
        keep_impersonate: callers_own,
        keep_upgrade: upgrade,
        plugin: true,
        peer: caller.peer,
        peer_trusted: is_trusted(caller.peer, &settings.trusted_proxies),
        max_header_bytes: settings.max_header_bytes,
    };
    // SPEC §5: a cluster with `impersonate: true` sees the verified caller, not the
    // credential's own identity, when the API server is reached with that credential.
    let impersonate = who
        .as_ref()
        .filter(|_| apiserver && !callers_own && spec.impersonate);
    let query = req.uri().query();
    let prepare = |via: Via<'_>| -> Result<Prepared, Error> {
        Prepared::new(
            up.clone(),
            &path,
            query,
            via,
            caller.headers.len() + 2,
            |dst| {
                forward::upstream_headers(&caller, &filter, authorization.as_ref(), dst)?;
                if let Some(who) = impersonate {
                    crate::identity::impersonate(who, dst)?;
                }
                Ok(())
            },
        )
    };
    let dest = Dest::Plugin {
        plugin: &entry.plugin,
        alias: &entry.alias,
    };
    let res = if upgrade {
        upgrade::tunnel(
            req,
            payload,
            prepare(Via::Tunnel)?,
            None,
            dest,
            is_removed_response_header,
            proxy,
        )
        .await?
    } else {
        let limits = Limits {
            response_head: None,
            body_idle: settings.body_idle_timeout,
            metrics: proxy.metrics.clone(),
            response_rule: is_removed_response_header,
        };
        forward::send(req, payload, &limits, dest, prepare).await?
    };
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        fn ok(p: &str) -> (&str, &str, &str) {
            split(p).unwrap()
        }
        assert_eq!(ok("/api/proxy/plugin/acm/search"), ("acm", "search", ""));
        assert_eq!(ok("/api/proxy/plugin/acm/search/"), ("acm", "search", "/"));
        assert_eq!(
            ok("/api/proxy/plugin/acm/search/pods/a%2Fb/"),
            ("acm", "search", "/pods/a%2Fb/")
        );
        for bad in [
            "/api/proxy/plugin",
            "/api/proxy/plugin/",
            "/api/proxy/plugin/acm",
            "/api/proxy/plugin/acm/",
            "/api/proxy/plugin//search",
        ] {
            assert_eq!(split(bad), Err(RequestError::Incomplete), "{bad}");
        }
        assert_eq!(
            split("/api/proxy/%70lugin/acm/search"),
            Err(RequestError::EncodedPrefix)
        );
    }
}
