//! Backstage's Kubernetes backend API (SPEC §10), so that Backstage's Kubernetes tab runs on
//! kubeplex alone: `POST {base}/services/{id}` (`{entity, auth}`),
//! `POST {base}/resources/workloads/query` (`{entityRef, auth}`) and
//! `POST {base}/resources/custom/query` (`{entityRef, auth, customResources}`), answering
//! `{items:[{cluster, podMetrics, resources, errors}]}` with the shapes of
//! `@backstage/plugin-kubernetes-common`.
//!
//! The way of a request: [`request`] checks the body (Backstage's messages, [`error`]'s
//! error body); [`catalog`] reads the entity of an `entityRef`; the service locator picks
//! the clusters; [`objects`] asks each cluster in parallel (at most
//! `kubeplex.aggregate.concurrency` at once, each within `kubeplex.aggregate.timeout`) for
//! its lists and [`metrics`] joins pods with their metrics; the clusters' items keep the
//! registry's key order.
//!
//! Where kubeplex differs from Backstage's backend, on purpose: a cluster that misses its
//! provider token in `auth`, or does not answer in time, is one error entry for that
//! cluster (Backstage fails the whole answer with a 500, or waits forever); every cluster of
//! a duplicated name appears, with its `key` beside `name`; a body without an entity is a
//! 400 `InputError` (Backstage: a 500). A posted entity is checked against the catalog when
//! one is configured, as Backstage 0.21 does (403 `NotAllowedError` when the catalog does not
//! have it), and trusted as sent when none is.

mod catalog;
mod error;
mod metrics;
mod objects;
mod request;

use crate::aggregate::AggregateState;
use crate::cluster::{Cluster, Registry};
use crate::config::{BackstageSettings, ServiceLocator};
use crate::ops::metrics as ops_metrics;
use crate::proxy::forward::Caller;
use crate::proxy::ProxyState;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use error::Error;
use futures_util::stream::{self, StreamExt};
use request::EntityRef;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Instant;

/// What the entity routes share across workers.
pub(crate) struct BackstageState {
    /// The settings read at start.
    pub settings: BackstageSettings,
}

/// Registers the three routes. Must come before the proxy's `{base}` scope.
///
/// `POST {base}/services/{id}` is a scope matched by hand ([`services`]): a `{id}` pattern
/// would have actix-router run a regex for every request kubeplex serves (a twelfth of the
/// proxy route's instructions per request under callgrind).
pub(crate) fn configure(base: &str) -> impl FnOnce(&mut web::ServiceConfig) + '_ {
    move |cfg| {
        let base = base.trim_end_matches('/');
        cfg.service(web::scope(&format!("{base}/services")).default_service(web::to(services)))
            .service(
                web::resource(format!("{base}/resources/workloads/query")).route(
                    web::post()
                        .to(|req, body, p, a, b| handle(Route::Workloads, req, body, p, a, b)),
                ),
            )
            .service(
                web::resource(format!("{base}/resources/custom/query")).route(
                    web::post().to(|req, body, p, a, b| handle(Route::Custom, req, body, p, a, b)),
                ),
            );
    }
}

/// `{base}/services/...`: `POST` with one more path segment (the service id) is the
/// services route; another method there is a 405 (`Allow: POST`); any other path is the
/// proxy's "no such route".
async fn services(
    req: HttpRequest,
    payload: web::Payload,
    proxy: web::Data<ProxyState>,
    agg: web::Data<AggregateState>,
    state: web::Data<BackstageState>,
) -> HttpResponse {
    let id = req.match_info().unprocessed().strip_prefix('/');
    if !id.is_some_and(|id| !id.is_empty() && !id.contains('/')) {
        return crate::proxy::unknown_route(&req, &proxy);
    }
    if req.method() != actix_web::http::Method::POST {
        return HttpResponse::MethodNotAllowed()
            .insert_header((actix_web::http::header::ALLOW, "POST"))
            .finish();
    }
    handle(Route::Services, req, payload, proxy, agg, state).await
}

/// Which of the three routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Services,
    Workloads,
    Custom,
}

async fn handle(
    route: Route,
    req: HttpRequest,
    payload: web::Payload,
    proxy: web::Data<ProxyState>,
    agg: web::Data<AggregateState>,
    state: web::Data<BackstageState>,
) -> HttpResponse {
    let start = Instant::now();
    let base = proxy.settings.base_path.as_str();
    let url = req
        .uri()
        .path_and_query()
        .map(|p| p.path())
        .unwrap_or("")
        .strip_prefix(base)
        .unwrap_or("")
        .to_string();
    let mut entity_ref = None;
    let result = async {
        let body = payload
            .to_bytes_limited(request::MAX_BODY)
            .await
            .map_err(|_| {
                Error::input(format!(
                    "the body is larger than {} bytes",
                    request::MAX_BODY
                ))
            })?
            .map_err(|e| Error::input(format!("reading the body: {e}")))?;
        let body = request::body_object(&body)?;
        let who = crate::identity::identify(&proxy.auth, &req)
            .await
            .map_err(|e| Error::unauthenticated(e.message))?;
        let (entity, custom) = entity_of(route, &req, &body, &state.settings).await?;
        entity_ref = Some(describe_entity(&entity));
        let registry = proxy.registry.load();
        let mut clusters = clusters_for(&entity, &registry, state.settings.service_locator);
        if let Some(who) = &who {
            // Clusters where the caller may not list the entity's objects are left out.
            let ns = entity["metadata"]["annotations"]["backstage.io/kubernetes-namespace"]
                .as_str()
                .unwrap_or("");
            clusters.retain(|c| {
                proxy.auth.policy.allows(
                    who,
                    &crate::identity::policy::Access {
                        cluster: c,
                        namespace: ns,
                        verb: "list",
                    },
                )
            });
        }
        let items = fan_out(
            route,
            &req,
            &body,
            &entity,
            custom,
            &clusters,
            &proxy,
            &registry,
            &agg,
            &state.settings,
        )
        .await;
        Ok::<_, Error>((clusters.len(), items))
    }
    .await;
    let (status, res) = match result {
        Ok((_, items)) => (
            200,
            HttpResponse::Ok().json(object([("items", Value::Array(items))])),
        ),
        Err(e) => (e.status.as_u16(), e.response(req.method().as_str(), &url)),
    };
    tracing::info!(
        target: "kubeplex::audit",
        subject = %crate::identity::subject_of(&req),
        route = %url,
        entity = entity_ref.as_deref().unwrap_or("-"),
        status,
        duration_ms = start.elapsed().as_millis() as u64,
        "backstage"
    );
    let m = &proxy.metrics;
    let series = m.series(ops_metrics::Route::Backstage, None);
    let obs = ops_metrics::Observation::start(m, series, req.method(), status, start, false, false);
    ops_metrics::observed(res, obs)
}

/// A JSON object of `entries`, in order, the values moved in: `json!` would copy each
/// value through serde's serializer, which for an answer of many objects costs more than
/// the rest of a cached answer together.
pub(crate) fn object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Object(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

/// `kind:namespace/name` of an entity, for the log.
fn describe_entity(entity: &Value) -> String {
    format!(
        "{}:{}/{}",
        entity["kind"].as_str().unwrap_or("?").to_lowercase(),
        entity["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_lowercase(),
        entity["metadata"]["name"]
            .as_str()
            .unwrap_or("?")
            .to_lowercase()
    )
}

/// The entity the request is about, and the custom query's custom resources.
async fn entity_of(
    route: Route,
    req: &HttpRequest,
    body: &Map<String, Value>,
    settings: &BackstageSettings,
) -> Result<(Value, Option<Vec<crate::config::CustomResourceRef>>), Error> {
    let authorization = req.headers().get(actix_web::http::header::AUTHORIZATION);
    let from_catalog = |r: EntityRef| async move {
        let Some(catalog) = settings.catalog_url.as_deref() else {
            return Err(Error::catalog(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "no Backstage catalog is configured (kubeplex.backstage.catalogUrl or backend.baseUrl) to read entity refs from",
            ));
        };
        catalog::entity(catalog, &r, authorization)
            .await
            .map(|e| (r, e))
    };
    match route {
        Route::Services => {
            let raw = body.get("entity");
            if request::falsy(raw) {
                return Err(Error::input("entity is a required field"));
            }
            let entity = raw.cloned().unwrap_or_default();
            if settings.catalog_url.is_none() && entity.is_object() {
                return Ok((entity, None));
            }
            // Backstage stringifies the posted entity's ref; where that throws, it refuses.
            let Some(r) = request::posted_entity_ref(&entity) else {
                return Err(Error::not_allowed("Invalid entity reference"));
            };
            match from_catalog(r).await? {
                (_, Some(e)) => Ok((e, None)),
                (r, None) => Err(Error::not_allowed(format!("Entity not found, {r}"))),
            }
        }
        Route::Workloads | Route::Custom => {
            let r = request::entity_ref(body)?;
            let (r, entity) = from_catalog(r).await?;
            let entity = entity.ok_or_else(|| Error::input(format!("Entity ref missing, {r}")))?;
            let custom = match route {
                Route::Custom => Some(request::custom_resources(body)?),
                _ => None,
            };
            Ok((entity, custom))
        }
    }
}

/// The clusters an entity is looked for in, by the service locator, in key order.
fn clusters_for(entity: &Value, registry: &Registry, locator: ServiceLocator) -> Vec<Arc<Cluster>> {
    let all = registry.clusters();
    match locator {
        ServiceLocator::MultiTenant => all.to_vec(),
        ServiceLocator::SingleTenant => {
            match entity["metadata"]["annotations"]["backstage.io/kubernetes-cluster"].as_str() {
                Some(wanted) if !wanted.is_empty() => all
                    .iter()
                    .filter(|c| c.spec.name == wanted || c.key.as_str() == wanted)
                    .cloned()
                    .collect(),
                _ => all.to_vec(),
            }
        }
        ServiceLocator::CatalogRelation => {
            let ns = entity["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default");
            let targets: Vec<&str> = entity["relations"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| r["type"] == "dependsOn")
                .filter_map(|r| r["targetRef"].as_str())
                .collect();
            all.iter()
                .filter(|c| {
                    targets
                        .iter()
                        .any(|t| *t == format!("resource:{ns}/{}", c.spec.name))
                })
                .cloned()
                .collect()
        }
    }
}

/// The provider headers of SPEC §3 that the body's `auth` stands for:
/// `{google: t}` is `Backstage-Kubernetes-Authorization-google: t`, `{oidc: {okta: t}}` is
/// `Backstage-Kubernetes-Authorization-oidc-okta: t`, and so on; plus `Accept`.
fn auth_headers(auth: &Map<String, Value>) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        actix_web::http::header::ACCEPT,
        HeaderValue::from_static("application/json"),
    );
    let mut add = |suffix: String, token: &str| {
        let name = HeaderName::from_bytes(
            format!(
                "backstage-kubernetes-authorization-{}",
                suffix.to_ascii_lowercase()
            )
            .as_bytes(),
        );
        if let (Ok(name), Ok(mut value)) = (name, HeaderValue::from_str(token)) {
            value.set_sensitive(true);
            h.insert(name, value);
        }
    };
    for (provider, v) in auth {
        match v {
            Value::String(t) if !t.is_empty() => add(provider.clone(), t),
            Value::Object(subs) => {
                for (sub, t) in subs {
                    if let Some(t) = t.as_str().filter(|t| !t.is_empty()) {
                        add(format!("{provider}-{sub}"), t);
                    }
                }
            }
            _ => {}
        }
    }
    h
}

/// Asks every cluster (bounded, each within the timeout) and returns the items in key
/// order.
#[allow(clippy::too_many_arguments)]
async fn fan_out(
    route: Route,
    req: &HttpRequest,
    body: &Map<String, Value>,
    entity: &Value,
    custom: Option<Vec<crate::config::CustomResourceRef>>,
    clusters: &[Arc<Cluster>],
    proxy: &ProxyState,
    registry: &Registry,
    agg: &AggregateState,
    settings: &BackstageSettings,
) -> Vec<Value> {
    let annotations = &entity["metadata"]["annotations"];
    let name = annotations["backstage.io/kubernetes-id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .or(entity["metadata"]["name"].as_str())
        .unwrap_or("");
    let selector = annotations["backstage.io/kubernetes-label-selector"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| format!("backstage.io/kubernetes-id={name}"));
    let namespace = annotations["backstage.io/kubernetes-namespace"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let lookup = objects::Lookup {
        selector,
        namespace,
        types: match route {
            Route::Custom => Vec::new(),
            _ => settings
                .object_types
                .clone()
                .unwrap_or_else(crate::config::backstage::default_object_types),
        },
        custom,
        global_custom: settings.custom_resources.clone(),
    };
    let headers = auth_headers(&request::auth(body));
    let fetch = objects::Fetch {
        caller: Caller {
            headers: &headers,
            peer: req.peer_addr().map(|a| a.ip()),
            identity: crate::identity::of(req),
        },
        proxy,
        registry,
        cache: agg.cache.as_ref(),
        timeout: agg.settings.timeout,
    };
    let (fetch, lookup) = (&fetch, &lookup);
    let mut items: Vec<(usize, Option<Value>)> = stream::iter(clusters.iter().enumerate())
        .map(|(i, c)| async move { (i, objects::cluster_item(fetch, lookup, c).await) })
        .buffer_unordered(agg.settings.concurrency.max(1))
        .collect()
        .await;
    items.sort_by_key(|(i, _)| *i);
    items.into_iter().filter_map(|(_, v)| v).collect()
}
