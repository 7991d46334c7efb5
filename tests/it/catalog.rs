//! The `catalog` locator against a Backstage-catalog-like HTTP server on loopback: the
//! filter and token it sends, cursor pages, the annotations it reads, Backstage's
//! private-address guard (loopback allowed here only through `dangerouslyAllowClusterUrls`),
//! and, through a running kubeplex, requests to catalog clusters over TLS with the
//! catalog's CA, periodic refresh, and a failed refresh keeping the last good list; the
//! `skip-tls-verify` annotation only with `allowSkipTLSVerify`; and the connect guard: a
//! catalog cluster whose name resolves to a non-public address at connect time (DNS
//! rebinding) is refused before anything is sent, directly and through kubeplex.

use crate::common_tls;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use common_tls::{b64, upstream, Ca, UpstreamOpts};
use kubeplex::cluster::ClusterSpec;
use kubeplex::config::{CatalogConfig, LocatorConfig, LocatorKind, Settings};
use kubeplex::locate::catalog;
use kubeplex::tls::describe::describe_send_error;
use kubeplex::upstream::connector::guarded_connector;
use kubeplex::url_guard::ConnectGuard;
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
        allow_skip_tls_verify: false,
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
    // Without allowSkipTLSVerify the skip-tls-verify annotation is ignored.
    assert!(!specs[1].tls.skip_verify);
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
    // Among the requests seen (kubeplex's readiness probes of `/version` may come after it).
    assert!(
        up.requests()
            .iter()
            .any(|r| r == "GET /k/api/v1/namespaces"),
        "{:?}",
        up.requests()
    );

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

/// Log lines written while the returned guard lives (this thread's default subscriber).
fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    #[derive(Clone)]
    struct W(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for W {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Arc::new(Mutex::new(Vec::new()));
    let w = W(buf.clone());
    let sub = tracing_subscriber::fmt()
        .with_writer(move || w.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    (buf, tracing::subscriber::set_default(sub))
}

#[actix_web::test]
async fn skip_tls_verify_annotation_needs_allow_skip_tls_verify() {
    let cat = catalog_server().await;
    cat.set(|s| {
        s.entities = vec![entity(
            "insecure",
            json!({
                "kubernetes.io/api-server": "https://127.0.0.1:7443",
                "kubernetes.io/api-server-certificate-authority": "",
                "kubernetes.io/auth-provider": "aks",
                "kubernetes.io/skip-tls-verify": "true",
            }),
        )]
    });
    let (logs, guard) = capture_logs();
    let specs = catalog::fetch("catalog", &cfg(&cat.url, &["127.0.0.1"]))
        .await
        .unwrap();
    drop(guard);
    assert_eq!(specs.len(), 1);
    assert!(!specs[0].tls.skip_verify, "annotation ignored by default");
    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("WARN")
            && logs.contains(
                "ignoring the kubernetes.io/skip-tls-verify annotation of catalog cluster \
                 insecure: the catalog locator does not set allowSkipTLSVerify: true"
            ),
        "{logs}"
    );

    let mut allowing = cfg(&cat.url, &["127.0.0.1"]);
    allowing.allow_skip_tls_verify = true;
    let specs = catalog::fetch("catalog", &allowing).await.unwrap();
    assert!(specs[0].tls.skip_verify, "annotation honoured when allowed");
}

fn load_yaml(yaml: &str) -> Result<Settings, String> {
    use kubeplex::config::{load_with_env, tree::Env, Source};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kubeplex.yaml");
    std::fs::write(&file, yaml).unwrap();
    load_with_env(&[Source::File(file)], &Env::new()).map_err(|e| e.to_string())
}

#[test]
fn config_keys_allow_skip_tls_verify_and_allow_patterns() {
    let yaml = |extra: &str| {
        format!(
            "kubernetes:\n  clusterLocatorMethods:\n\
             \x20   - type: catalog\n      url: https://backstage.example.com/api/catalog\n{extra}"
        )
    };
    let catalog_cfg = |s: Settings| match &s.locators[0].kind {
        LocatorKind::Catalog(c) => c.clone(),
        other => panic!("{other:?}"),
    };
    let c = catalog_cfg(load_yaml(&yaml("")).unwrap());
    assert!(!c.allow_skip_tls_verify, "default false");
    let c = catalog_cfg(
        load_yaml(&yaml(
            "      allowSkipTLSVerify: true\n      \
             dangerouslyAllowClusterUrls: ['*.corp.example.com', 'https://10.0.0.*:6443']\n",
        ))
        .unwrap(),
    );
    assert!(c.allow_skip_tls_verify);
    assert_eq!(
        c.dangerously_allow_cluster_urls,
        ["*.corp.example.com", "https://10.0.0.*:6443"]
    );
    // A pattern with a path (the old whole-URL glob) is refused, naming the key.
    let e = load_yaml(&yaml(
        "      dangerouslyAllowClusterUrls: ['https://*.corp.example.com/*/x']\n",
    ))
    .unwrap_err();
    assert!(
        e.contains("kubernetes.clusterLocatorMethods[0].dangerouslyAllowClusterUrls")
            && e.contains("a pattern matches scheme, host and port only"),
        "{e}"
    );
}

#[actix_web::test]
async fn the_fragment_bypass_is_refused() {
    let cat = catalog_server().await;
    cat.set(|s| {
        s.entities = vec![entity(
            "sneaky",
            json!({
                "kubernetes.io/api-server": "https://10.1.2.3/#.corp.example.com",
                "kubernetes.io/api-server-certificate-authority": "",
                "kubernetes.io/auth-provider": "google",
            }),
        )]
    });
    let specs = catalog::fetch("catalog", &cfg(&cat.url, &["https://*.corp.example.com"]))
        .await
        .unwrap();
    assert!(specs.is_empty(), "{specs:?}");
}

/// What the connect guard says when it refuses 127.0.0.1.
const REFUSED_LOOPBACK: &str = "kubeplex refused the connection: address 127.0.0.1 is not \
     public (DNS answer changed since the catalog refresh?)";

/// A catalog-like cluster at `https://localhost:PORT` with a connect guard of `allow`: what
/// a catalog refresh would produce had `localhost` resolved to a public address then.
fn guarded_spec(name: &str, up: &common_tls::Upstream, ca: &Ca, allow: &[&str]) -> ClusterSpec {
    let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
    let mut spec = ClusterSpec::new(name, url::Url::parse(&up.url("localhost")).unwrap());
    spec.tls.ca_pem = Some(ca.pem.clone().into_bytes());
    spec.connect_guard = Some(Arc::new(ConnectGuard::new(&allow)));
    spec
}

async fn get_through(spec: &ClusterSpec) -> Result<u16, String> {
    let connector = guarded_connector(
        &spec.url,
        &spec.tls,
        spec.connect_guard.clone(),
        Duration::from_secs(5),
    )?
    .limit(0);
    let client = awc::Client::builder().connector(connector).finish();
    let res = client
        .get(format!("{}/api/v1/namespaces?token=secret-query", spec.url))
        .send()
        .await
        .map_err(|e| describe_send_error(&e))?;
    Ok(res.status().as_u16())
}

#[actix_web::test]
async fn connect_guard_refuses_a_non_public_peer_before_tls() {
    let ca = Ca::new("kubeplex catalog rebinding CA");
    let up = upstream(&ca.server(&["localhost"]), UpstreamOpts::default()).await;

    // Guarded, localhost not allowed: refused after TCP connect, before TLS.
    let e = get_through(&guarded_spec("rebound", &up, &ca, &[]))
        .await
        .unwrap_err();
    assert_eq!(e, REFUSED_LOOPBACK);
    assert!(up.sni().is_empty(), "no TLS handshake: {:?}", up.sni());
    assert!(up.requests().is_empty(), "{:?}", up.requests());

    // An allow pattern for the URL admits it; so does a cluster without a guard.
    let allowed = guarded_spec("allowed", &up, &ca, &["https://localhost:*"]);
    assert_eq!(get_through(&allowed).await, Ok(200));
    let mut plain = guarded_spec("configured", &up, &ca, &[]);
    plain.connect_guard = None;
    assert_eq!(get_through(&plain).await, Ok(200));
    assert_eq!(up.requests().len(), 2);
}

#[actix_web::test]
async fn through_kubeplex_a_rebound_catalog_cluster_is_a_502() {
    use kubeplex::cluster::{LocatorClusters, Registry};
    use kubeplex::config::DuplicateNames;
    let ca = Ca::new("kubeplex catalog rebinding app CA");
    let up = upstream(&ca.server(&["localhost"]), UpstreamOpts::default()).await;
    let mut settings = Settings::default();
    settings.server.listen = "127.0.0.1:0".into();
    settings.server.workers = Some(1);
    let static_cluster = kubeplex::config::ClusterConfig {
        name: "static".into(),
        url: "http://127.0.0.1:1".into(),
        ..Default::default()
    };
    settings.locators = vec![LocatorConfig {
        id: "config".into(),
        kind: LocatorKind::Config {
            clusters: vec![static_cluster],
        },
    }];
    let app = kubeplex::app::spawn(settings).await.unwrap();
    // What a catalog refresh stores for a host that resolved to a public address then.
    app.registry.store(Arc::new(Registry::new(
        vec![LocatorClusters {
            locator: "catalog".into(),
            clusters: vec![guarded_spec("rebound", &up, &ca, &[])],
        }],
        DuplicateNames::First,
    )));
    let base = app.url();
    assert_eq!(clusters(&base).await, ["catalog:rebound"]);

    let mut res = awc::Client::default()
        .get(format!(
            "{base}/api/kubernetes/clusters/rebound/api/v1/namespaces?access_token=canary-query"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    let status: Value = res.json().await.unwrap();
    assert_eq!(status["kind"], "Status");
    let msg = status["message"].as_str().unwrap();
    assert_eq!(
        msg,
        format!("cannot connect to cluster catalog:rebound: {REFUSED_LOOPBACK}")
    );
    assert!(!msg.contains("canary-query"), "{msg}");

    // The WebSocket upgrade path uses the same connector.
    let raw = raw_request(
        app.addr,
        "GET /api/kubernetes/clusters/rebound/api/v1/namespaces/default/pods/p/exec?command=sh HTTP/1.1\r\n\
         Host: kubeplex\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n",
    )
    .await;
    assert!(raw.starts_with("HTTP/1.1 502"), "{raw}");
    assert!(raw.contains(REFUSED_LOOPBACK), "{raw}");

    assert!(up.requests().is_empty(), "{:?}", up.requests());
    assert!(up.sni().is_empty(), "{:?}", up.sni());
    app.handle.stop(false).await;
}

/// Sends a raw HTTP/1.1 request and reads the answer until the server closes or 2s pass.
async fn raw_request(addr: std::net::SocketAddr, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                out.extend_from_slice(&buf[..n]);
                if String::from_utf8_lossy(&out).contains("}") {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
