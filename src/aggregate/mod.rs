//! Aggregation (SPEC §6): `GET {base}/aggregate/{path}` reads from every cluster (or those
//! the cluster header names, comma-separated names or keys) and answers one merged result.
//!
//! The way of a request: [`handle`] checks the method and path and picks the members;
//! [`fanout`] asks them in parallel, each with its own credential and timeout; then
//! [`discovery`] merges what kubectl asks first (`/version`, `/api`, `/apis`, resource
//! lists, OpenAPI) and [`merge`] the lists, gets and Tables, with [`vector`] the version
//! vector of the members' resourceVersions. A list or Table is merged as the members'
//! bodies arrive and sent as it is merged ([`stream`]); gets and discovery documents are
//! read whole.

pub(crate) mod cache;
pub(crate) mod discovery;
pub(crate) mod fanout;
pub(crate) mod merge;
pub(crate) mod page;
pub(crate) mod scan;
pub(crate) mod splice;
pub(crate) mod stream;
pub(crate) mod vector;
pub(crate) mod watch;

use crate::cluster::{Cluster, Registry};
use crate::config::AggregateSettings;
use crate::ops::metrics;
use crate::proxy::forward::Caller;
use crate::proxy::{choose, path, ProxyState};
use crate::status::{Error, Reason};
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use std::sync::Arc;
use std::time::Instant;

/// What the aggregate route shares across workers.
pub(crate) struct AggregateState {
    /// `kubeplex.aggregate`.
    pub settings: AggregateSettings,
    /// Signs and checks continue tokens (`continueKey`, or a key generated at start).
    pub pager: page::Pager,
    /// The read cache (`cacheTtl`), `None` when off.
    pub cache: Option<cache::AggregateCache>,
}

impl AggregateState {
    /// The state for `settings`.
    pub(crate) fn new(settings: &AggregateSettings) -> Self {
        AggregateState {
            settings: settings.clone(),
            pager: page::Pager::new(settings.continue_key.as_ref(), page::TOKEN_TTL),
            cache: cache::AggregateCache::new(settings.cache_ttl),
        }
    }
}

/// Registers `{base}/aggregate` and everything under it. Must come before the proxy's
/// `{base}` scope.
pub(crate) fn configure(base: &str) -> impl FnOnce(&mut web::ServiceConfig) + '_ {
    move |cfg| {
        let base = base.trim_end_matches('/');
        cfg.service(web::scope(&format!("{base}/aggregate")).default_service(web::to(handle)));
    }
}

/// The members a request reads from: those the cluster header names (comma-separated names
/// or keys; a name stands for every cluster of that name), else all, in key order.
fn members(registry: &Registry, req: &HttpRequest) -> Result<Vec<Arc<Cluster>>, Error> {
    let all = registry.clusters();
    let Some(value) = choose::header_value(req.headers())? else {
        if all.is_empty() {
            return Err(Error::not_found("no clusters are configured"));
        }
        return Ok(all.to_vec());
    };
    let mut chosen: Vec<Arc<Cluster>> = Vec::new();
    for wanted in value.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let matching: Vec<&Arc<Cluster>> = all
            .iter()
            .filter(|c| c.key.as_str() == wanted || c.spec.name == wanted)
            .collect();
        if matching.is_empty() {
            return Err(Error::not_found(format!(
                "cluster {wanted:?} not found; GET .../clusters lists them"
            )));
        }
        for c in matching {
            if !chosen.iter().any(|x| Arc::ptr_eq(x, c)) {
                chosen.push(c.clone());
            }
        }
    }
    if chosen.is_empty() {
        return Err(Error::bad_request("the cluster header names no cluster"));
    }
    // Key order, as the registry keeps them.
    chosen.sort_by_key(|c| all.iter().position(|x| Arc::ptr_eq(x, c)));
    Ok(chosen)
}

/// Whether the path (after `{base}/aggregate`) names one object rather than a collection.
pub(crate) fn is_item(tail: &str) -> bool {
    let segs: Vec<&str> = tail
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let rest: &[&str] = match segs.as_slice() {
        ["api", _, rest @ ..] => rest,
        ["apis", _, _, rest @ ..] => rest,
        _ => return false,
    };
    match rest {
        ["namespaces", _] => true,
        ["namespaces", _, _, _, ..] => true,
        ["namespaces", ..] => false,
        [_, _, ..] => true,
        _ => false,
    }
}

/// Whether the request asks for a watch (`?watch=1|true`, or a `/watch/` path).
fn is_watch(req: &HttpRequest, tail: &str) -> bool {
    let path_watch = {
        let t = tail.trim_start_matches('/');
        t.starts_with("api/v1/watch/") || {
            let mut s = t.split('/');
            s.next() == Some("apis") && s.nth(2) == Some("watch")
        }
    };
    path_watch
        || url::form_urlencoded::parse(req.query_string().as_bytes())
            .any(|(k, v)| k == "watch" && (v == "1" || v == "true"))
}

async fn handle(
    req: HttpRequest,
    proxy: web::Data<ProxyState>,
    agg: web::Data<AggregateState>,
) -> HttpResponse {
    let start = Instant::now();
    let result = answer(&req, &proxy, &agg).await;
    let res = match result {
        Ok(r) => r,
        Err(e) => e.error_response(),
    };
    tracing::info!(
        target: "kubeplex::audit",
        subject = %crate::identity::subject_of(&req),
        cluster = "aggregate",
        method = %req.method(),
        path = %req.path(),
        status = res.status().as_u16(),
        duration_ms = start.elapsed().as_millis() as u64,
        "aggregate"
    );
    let status = res.status().as_u16();
    let tail = req
        .path()
        .strip_prefix(proxy.settings.base_path.as_str())
        .and_then(|r| r.strip_prefix("/aggregate"))
        .unwrap_or("");
    let watch = (200..300).contains(&status) && is_watch(&req, tail);
    let m = &proxy.metrics;
    let series = m.series(metrics::Route::Aggregate, None);
    let obs = metrics::Observation::start(m, series, req.method(), status, start, false, watch);
    let res = if watch {
        // Ends at an event boundary on SIGTERM.
        crate::ops::drain::events(res, &proxy.drain)
    } else {
        res
    };
    metrics::observed(res, obs)
}

async fn answer(
    req: &HttpRequest,
    proxy: &ProxyState,
    agg: &AggregateState,
) -> Result<HttpResponse, Error> {
    let base = proxy.settings.base_path.as_str();
    if req.method() != Method::GET {
        return Err(Error::new(
            Reason::MethodNotAllowed,
            format!(
                "{base}/aggregate answers reads only (get, list, watch); send {} to one cluster at {base}/clusters/{{key}}/...",
                req.method()
            ),
        ));
    }
    let tail = req
        .uri()
        .path()
        .strip_prefix(base)
        .and_then(|r| r.strip_prefix("/aggregate"))
        .ok_or_else(|| {
            Error::bad_request("the route prefix of the path is percent-encoded; send it plainly")
        })?;
    path::check_tail(tail)?;
    let who = crate::identity::identify(&proxy.auth, req).await?;
    let registry = proxy.registry.load();
    let mut members = members(&registry, req)?;
    if let Some(who) = &who {
        // Members the caller may not read are left out, never listed as failures.
        let mut refused = None;
        members.retain(|c| {
            match crate::identity::allowed(&proxy.auth, who, c, "GET", tail, req.query_string()) {
                Ok(()) => true,
                Err(e) => {
                    refused.get_or_insert(e);
                    false
                }
            }
        });
        if members.is_empty() {
            return Err(refused.unwrap_or_else(|| Error::new(Reason::Forbidden, "no cluster")));
        }
    }
    let settings = &agg.settings;
    if is_watch(req, tail) {
        return watch::serve(req, &registry, members, tail, settings).await;
    }
    let query = req.uri().query();
    if page::wanted(query) && !is_item(tail) && discovery::doc_of(tail).is_none() {
        return page::answer(req, proxy, &registry, &members, tail, agg).await;
    }
    let member_query = |c: &Cluster| vector::Vector::member_query(query, c.key.as_str());
    let read = fanout::Read {
        tail,
        query: &member_query,
    };
    let cache = agg.cache.as_ref();
    let caller = Caller::of(req);
    let item = is_item(tail);
    let doc = discovery::doc_of(tail);
    if !item && doc.is_none() {
        let cache = cache.map(|cache| {
            let key = cache::MergedKey::new(
                registry.generation(),
                tail,
                query.unwrap_or(""),
                members.iter().map(|c| c.key.as_str()),
                req.headers(),
            );
            (cache, key)
        });
        if let Some((cache, Some(key))) = &cache {
            if let Some(hit) = cache.merged(key, members.len()) {
                proxy.metrics.member_results(true, members.len() as u64);
                return Ok(HttpResponse::Ok()
                    .insert_header(("content-type", hit.content_type))
                    .body(hit.body));
            }
        }
        return stream::answer(&caller, proxy, &registry, &members, &read, settings, cache).await;
    }
    let answers =
        fanout::fan_out(&caller, proxy, &registry, &members, &read, settings, cache).await;
    if let Some(doc) = doc {
        let (value, content_type) = discovery::merge(doc, answers)?;
        let content_type = if content_type.is_empty() {
            "application/json".to_string()
        } else {
            content_type
        };
        return Ok(HttpResponse::Ok()
            .insert_header(("content-type", content_type))
            .body(serde_json::to_vec(&value).unwrap_or_default()));
    }
    merged(answers, item)
}

/// The merged answer of the members' whole answers to a read of one object (`item`) or a
/// collection: for a collection the fast paths of [`splice`] when every member answered a
/// list (a Table) they understand, else [`merge::merge`].
pub(crate) fn merged(answers: Vec<fanout::Answer>, item: bool) -> Result<HttpResponse, Error> {
    if !item {
        if let Some((body, _)) = splice::merge_lists(&answers) {
            return Ok(HttpResponse::Ok()
                .insert_header(("content-type", "application/json"))
                .body(body));
        }
        if let Some(body) = splice::merge_tables(&answers) {
            return Ok(HttpResponse::Ok()
                .insert_header((
                    "content-type",
                    "application/json;as=Table;v=v1;g=meta.k8s.io",
                ))
                .body(body));
        }
    }
    Ok(merge::merge(answers, item)?.response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_and_collections() {
        for (tail, item) in [
            ("/api/v1/services", false),
            ("/api/v1/namespaces", false),
            ("/api/v1/namespaces/default", true),
            ("/api/v1/namespaces/default/services", false),
            ("/api/v1/namespaces/default/services/web", true),
            ("/api/v1/namespaces/default/services/web/status", true),
            ("/apis/apps/v1/deployments", false),
            ("/apis/apps/v1/namespaces/shop/deployments/web", true),
            ("/apis/apps/v1/namespaces/shop/deployments", false),
            ("/apis/example.com/v1/widgets/gear", true),
            ("/api/v1", false),
        ] {
            assert_eq!(is_item(tail), item, "{tail}");
        }
    }
}
