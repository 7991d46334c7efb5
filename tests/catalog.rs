//! The `catalog` locator against a Backstage-catalog-like HTTP server on loopback: the
//! filter and token it sends, cursor pages, the annotations it reads, Backstage's
//! private-address guard (loopback allowed here only through `dangerouslyAllowClusterUrls`),
//! and, through a running kubeplex, requests to catalog clusters over TLS with the
//! catalog's CA, periodic refresh, and a failed refresh keeping the last good list.

mod common_tls;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use common_tls::{b64, upstream, Ca, UpstreamOpts};
use kubeplex::config::{CatalogConfig, LocatorConfig, LocatorKind, Settings};
use kubeplex::locate::catalog;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct CatalogState {
    entities: Vec<Value>,
    /// Serve one entity per page, with `pageInfo.nextCursor`.
    paged: bool,
    /// Answer 500.
    fail: bool,
    hits: u64,
    auth: Vec<Option<String>>,
    queries: Vec<String>,
}

struct CatalogServer {
    url: String,
    state: Arc<Mutex<CatalogState>>,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for CatalogServer {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

impl CatalogServer {
    fn set(&self, f: impl FnOnce(&mut CatalogState)) {
        f(&mut self.state.lock().unwrap())
    }
    fn hits(&self) -> u64 {
        self.state.lock().unwrap().hits
    }
}

async fn by_query(req: HttpRequest, state: web::Data<Mutex<CatalogState>>) -> HttpResponse {
    let mut s = state.lock().unwrap();
    s.hits += 1;
    s.auth.push(
        req.headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string()),
    );
    s.queries.push(req.query_string().to_string());
    if s.fail {
        return HttpResponse::InternalServerError().body("catalog is down");
    }
    let q: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect();
    if !s.paged {
        return HttpResponse::Ok().json(json!({"items": s.entities, "pageInfo": {}}));
    }
    let at: usize = q
        .iter()
        .find(|(k, _)| k == "cursor")
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(0);
    let items: Vec<&Value> = s.entities.iter().skip(at).take(1).collect();
    let page_info = if at + 1 < s.entities.len() {
        json!({"nextCursor": (at + 1).to_string()})
    } else {
        json!({})
    };
    HttpResponse::Ok().json(json!({"items": items, "pageInfo": page_info}))
}

async fn catalog_server() -> CatalogServer {
    let state = Arc::new(Mutex::new(CatalogState::default()));
    let data = web::Data::from(state.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/api/catalog/entities/by-query", web::get().to(by_query))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    CatalogServer {
        url: format!("http://{addr}/api/catalog"),
        state,
        handle,
    }
}

fn entity(name: &str, annotations: Value) -> Value {
    json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Resource",
        "metadata": {"name": name, "namespace": "default", "annotations": annotations},
        "spec": {"type": "kubernetes-cluster", "owner": "platform"}
    })
}

fn cfg(url: &str, allow: &[&str]) -> CatalogConfig {
    CatalogConfig {
        url: url.into(),
        token: Some("catalog-token".into()),
        refresh_interval: Duration::from_millis(50),
        dangerously_allow_cluster_urls: allow.iter().map(|s| s.to_string()).collect(),
    }
}

#[actix_web::test]
async fn reads_clusters_with_filter_token_pages_and_annotations() {
    let ca = Ca::new("kubeplex catalog test CA");
    let cat = catalog_server().await;
    let mut prod = entity(
        "prod-eu",
        json!({
            "kubernetes.io/api-server": "https://127.0.0.1:6443/prefix",
            "kubernetes.io/api-server-certificate-authority": b64(&ca.pem),
            "kubernetes.io/auth-provider": "oidc",
            "kubernetes.io/oidc-token-provider": "okta",
            "kubernetes.io/skip-metrics-lookup": "true",
            "kubernetes.io/dashboard-url": "https://dash.example/prod",
            "kubernetes.io/dashboard-app": "standard",
        }),
    );
    prod["metadata"]["title"] = json!("Production EU");
    cat.set(|s| {
        s.paged = true;
        s.entities = vec![
            prod,
            entity(
                "private",
                json!({
                    "kubernetes.io/api-server": "https://10.0.0.1:6443",
                    "kubernetes.io/api-server-certificate-authority": "",
                    "kubernetes.io/auth-provider": "google",
                }),
            ),
            entity(
                "sa",
                json!({
                    "kubernetes.io/api-server": "https://127.0.0.1:6443",
                    "kubernetes.io/api-server-certificate-authority": "",
                    "kubernetes.io/auth-provider": "serviceAccount",
                }),
            ),
            entity(
                "plain-http",
                json!({
                    "kubernetes.io/api-server": "http://93.184.216.34",
                    "kubernetes.io/api-server-certificate-authority": "",
                    "kubernetes.io/auth-provider": "google",
                }),
            ),
            entity(
                "insecure",
                json!({
                    "kubernetes.io/api-server": "https://127.0.0.1:7443",
                    "kubernetes.io/api-server-certificate-authority": "",
                    "kubernetes.io/auth-provider": "aks",
                    "kubernetes.io/skip-tls-verify": "true",
                }),
            ),
            // A second entity with a name already seen (another namespace): skipped.
            entity(
                "insecure",
                json!({
                    "kubernetes.io/api-server": "https://127.0.0.1:8443",
                    "kubernetes.io/api-server-certificate-authority": "",
                    "kubernetes.io/auth-provider": "aks",
                }),
            ),
        ];
    });
    let specs = catalog::fetch("catalog", &cfg(&cat.url, &["127.0.0.1"]))
        .await
        .unwrap();
    let names: Vec<_> = specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["prod-eu", "insecure"]);
    let p = &specs[0];
    assert_eq!(p.url.as_str(), "https://127.0.0.1:6443/prefix");
    assert_eq!(p.title.as_deref(), Some("Production EU"));
    assert_eq!(p.auth_provider.as_deref(), Some("oidc"));
    assert_eq!(p.oidc_token_provider.as_deref(), Some("okta"));
    assert_eq!(
        p.dashboard_url.as_deref(),
        Some("https://dash.example/prod")
    );
    assert_eq!(p.dashboard_app.as_deref(), Some("standard"));
    assert_eq!(p.tls.ca_pem.as_deref(), Some(ca.pem.as_bytes()));
    assert!(!p.tls.skip_verify);
    assert_eq!(p.credential, kubeplex::cluster::ServerCredential::None);
    assert!(specs[1].tls.skip_verify);
    assert_eq!(specs[1].url.port(), Some(7443));
    assert!(specs[1].tls.ca_pem.is_none());

    let s = cat.state.lock().unwrap();
    assert_eq!(s.hits, 6, "one request per cursor page");
    assert!(s
        .auth
        .iter()
        .all(|a| a.as_deref() == Some("Bearer catalog-token")));
    let first: Vec<(String, String)> = url::form_urlencoded::parse(s.queries[0].as_bytes())
        .into_owned()
        .collect();
    assert!(
        first.contains(&("filter".into(), catalog::filter())),
        "{first:?}"
    );
    assert_eq!(
        catalog::filter(),
        "kind=Resource,spec.type=kubernetes-cluster,\
         metadata.annotations.kubernetes.io/api-server,\
         metadata.annotations.kubernetes.io/api-server-certificate-authority,\
         metadata.annotations.kubernetes.io/auth-provider"
    );
    assert!(s.queries[1].contains("cursor=1"), "{}", s.queries[1]);
}

#[actix_web::test]
async fn private_addresses_need_dangerously_allow_cluster_urls() {
    let cat = catalog_server().await;
    cat.set(|s| {
        s.entities = vec![
            entity(
                "loopback",
                json!({
                    "kubernetes.io/api-server": "https://127.0.0.1:6443",
                    "kubernetes.io/api-server-certificate-authority": "",
                    "kubernetes.io/auth-provider": "google",
                }),
            ),
            entity(
                "by-name",
                json!({
                    "kubernetes.io/api-server": "https://localhost:6443",
                    "kubernetes.io/api-server-certificate-authority": "",
                    "kubernetes.io/auth-provider": "google",
                }),
            ),
            entity(
                "metadata-endpoint",
                json!({
                    "kubernetes.io/api-server": "https://169.254.169.254",
                    "kubernetes.io/api-server-certificate-authority": "",
                    "kubernetes.io/auth-provider": "google",
                }),
            ),
            entity(
                "creds",
                json!({
                    "kubernetes.io/api-server": "https://u:p@localhost:6443",
                    "kubernetes.io/api-server-certificate-authority": "",
                    "kubernetes.io/auth-provider": "google",
                }),
            ),
        ];
    });
    let none = catalog::fetch("catalog", &cfg(&cat.url, &[]))
        .await
        .unwrap();
    assert!(none.is_empty(), "{none:?}");
    let some = catalog::fetch("catalog", &cfg(&cat.url, &["localhost"]))
        .await
        .unwrap();
    let names: Vec<_> = some.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["by-name"]);
    let all = catalog::fetch(
        "catalog",
        &cfg(&cat.url, &["127.0.0.1", "localhost", "169.254.169.254"]),
    )
    .await
    .unwrap();
    let names: Vec<_> = all.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["loopback", "by-name", "metadata-endpoint"]);
}

async fn clusters(base: &str) -> Vec<String> {
    let mut res = awc::Client::default()
        .get(format!("{base}/api/kubernetes/clusters"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap().to_string())
        .collect()
}

async fn eventually<F: std::future::Future<Output = bool>>(mut f: impl FnMut() -> F) -> bool {
    for _ in 0..500 {
        if f().await {
            return true;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[actix_web::test]
async fn through_kubeplex_refreshed_and_a_failed_refresh_keeps_the_list() {
    let ca = Ca::new("kubeplex catalog app CA");
    let other = Ca::new("kubeplex catalog app other CA");
    let up = upstream(&ca.server(&["127.0.0.1"]), UpstreamOpts::default()).await;
    let cat = catalog_server().await;
    let cluster = |name: &str, ca_pem: &str| {
        entity(
            name,
            json!({
                "kubernetes.io/api-server": format!("https://127.0.0.1:{}/k", up.addr.port()),
                "kubernetes.io/api-server-certificate-authority": b64(ca_pem),
                "kubernetes.io/auth-provider": "oidc",
                "kubernetes.io/oidc-token-provider": "okta",
            }),
        )
    };
    cat.set(|s| s.entities = vec![cluster("prod", &ca.pem)]);
    let mut settings = Settings::default();
    settings.server.listen = "127.0.0.1:0".into();
    settings.server.workers = Some(1);
    settings.locators = vec![LocatorConfig {
        id: "catalog".into(),
        kind: LocatorKind::Catalog(cfg(&cat.url, &["127.0.0.1"])),
    }];
    let app = kubeplex::app::spawn(settings).await.unwrap();
    let base = app.url();
    assert_eq!(clusters(&base).await, ["catalog:prod"]);

    // The clusters endpoint shows what Backstage's frontend needs to pick its token header.
    let mut res = awc::Client::default()
        .get(format!("{base}/api/kubernetes/clusters"))
        .send()
        .await
        .unwrap();
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["items"][0]["authProvider"], "oidc");
    assert_eq!(v["items"][0]["oidcTokenProvider"], "okta");

    // A request through kubeplex reaches the cluster over TLS verified with the catalog's CA.
    let res = awc::Client::default()
        .get(format!(
            "{base}/api/kubernetes/clusters/prod/api/v1/namespaces"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(up.requests().last().unwrap(), "GET /k/api/v1/namespaces");

    // A cluster whose CA annotation is wrong: 502 naming the key and the cause.
    cat.set(|s| s.entities.push(cluster("wrong-ca", &other.pem)));
    assert!(
        eventually(|| {
            let base = base.clone();
            async move { clusters(&base).await.len() == 2 }
        })
        .await
    );
    assert_eq!(clusters(&base).await, ["catalog:prod", "catalog:wrong-ca"]);
    let mut res = awc::Client::default()
        .get(format!(
            "{base}/api/kubernetes/clusters/wrong-ca/api/v1/namespaces"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    let status: Value = res.json().await.unwrap();
    let msg = status["message"].as_str().unwrap();
    assert_eq!(status["kind"], "Status");
    assert!(msg.contains("catalog:wrong-ca"), "{msg}");
    assert!(msg.contains("unknown CA"), "{msg}");

    // The catalog fails: refreshes go on failing, the last good list stays.
    cat.set(|s| s.fail = true);
    let before = cat.hits();
    assert!(
        eventually(|| {
            let n = cat.hits();
            async move { n >= before + 3 }
        })
        .await
    );
    assert_eq!(clusters(&base).await, ["catalog:prod", "catalog:wrong-ca"]);
    let res = awc::Client::default()
        .get(format!("{base}/api/kubernetes/clusters/prod/api"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // It recovers: a removed entity disappears.
    cat.set(|s| {
        s.fail = false;
        s.entities.pop();
    });
    assert!(
        eventually(|| {
            let base = base.clone();
            async move { clusters(&base).await == ["catalog:prod"] }
        })
        .await
    );
    app.handle.stop(false).await;
}

#[actix_web::test]
async fn catalog_down_at_start_starts_empty_and_fills_in() {
    let cat = catalog_server().await;
    let ca = Ca::new("kubeplex catalog late CA");
    cat.set(|s| s.fail = true);
    let mut settings = Settings::default();
    settings.server.listen = "127.0.0.1:0".into();
    settings.server.workers = Some(1);
    settings.locators = vec![LocatorConfig {
        id: "late".into(),
        kind: LocatorKind::Catalog(cfg(&cat.url, &["127.0.0.1"])),
    }];
    let app = kubeplex::app::spawn(settings).await.unwrap();
    let base = app.url();
    assert!(clusters(&base).await.is_empty());
    cat.set(|s| {
        s.fail = false;
        s.entities = vec![entity(
            "late-one",
            json!({
                "kubernetes.io/api-server": "https://127.0.0.1:6443",
                "kubernetes.io/api-server-certificate-authority": b64(&ca.pem),
                "kubernetes.io/auth-provider": "google",
            }),
        )];
    });
    assert!(
        eventually(|| {
            let base = base.clone();
            async move { clusters(&base).await == ["late:late-one"] }
        })
        .await
    );
    app.handle.stop(false).await;
}

fn catalog_yaml(catalog_url: &str) -> String {
    format!(
        "kubeplex:\n  server:\n    listen: 127.0.0.1:0\n    workers: 1\n\
         kubernetes:\n  clusterLocatorMethods:\n\
         \x20   - type: catalog\n      url: {catalog_url}\n      refreshInterval: 1s\n\
         \x20     dangerouslyAllowClusterUrls: ['127.0.0.1']\n\
         \x20   - type: config\n      clusters:\n        - {{name: static, url: 'http://127.0.0.1:1'}}\n"
    )
}

#[actix_web::test]
async fn a_reload_that_moves_the_catalog_stops_the_old_refresher() {
    use kubeplex::config::{load_with_env, tree::Env, Source};
    use kubeplex::control::ReloadFrom;
    let ca = Ca::new("kubeplex catalog reload CA");
    let one = |name: &str| {
        entity(
            name,
            json!({
                "kubernetes.io/api-server": "https://127.0.0.1:6443",
                "kubernetes.io/api-server-certificate-authority": b64(&ca.pem),
                "kubernetes.io/auth-provider": "google",
            }),
        )
    };
    let a = catalog_server().await;
    let b = catalog_server().await;
    a.set(|s| s.entities = vec![one("a1")]);
    b.set(|s| s.entities = vec![one("b1")]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kubeplex.yaml");
    std::fs::write(&file, catalog_yaml(&a.url)).unwrap();
    let sources = vec![Source::File(file.clone())];
    let mut settings = load_with_env(&sources, &std::env::vars().collect::<Env>()).unwrap();
    settings.server.listen = "127.0.0.1:0".into();
    let app = kubeplex::app::spawn_reloading(
        settings,
        Some(ReloadFrom {
            sources,
            watch: false,
        }),
    )
    .await
    .unwrap();
    let handle = app.control.clone();
    let base = app.url();
    assert_eq!(clusters(&base).await, ["catalog:a1", "config:static"]);

    std::fs::write(&file, catalog_yaml(&b.url)).unwrap();
    handle.reload();
    assert!(
        eventually(|| {
            let base = base.clone();
            async move { clusters(&base).await == ["catalog:b1", "config:static"] }
        })
        .await
    );
    // The new catalog is refreshed: a new entity shows up...
    b.set(|s| s.entities.push(one("b2")));
    assert!(
        eventually(|| {
            let base = base.clone();
            async move { clusters(&base).await == ["catalog:b1", "catalog:b2", "config:static"] }
        })
        .await
    );
    // ...and the old catalog is no longer asked (at most one refresh was in flight).
    let a_hits = a.hits();
    let b_hits = b.hits();
    assert!(
        eventually(|| {
            let n = b.hits();
            async move { n >= b_hits + 2 }
        })
        .await
    );
    assert!(a.hits() <= a_hits + 1, "old catalog still refreshed");
    assert_eq!(
        clusters(&base).await,
        ["catalog:b1", "catalog:b2", "config:static"]
    );
    app.handle.stop(false).await;
}
