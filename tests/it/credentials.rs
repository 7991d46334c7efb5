//! Provider headers (SPEC §3 rule 2) for clusters from the `config` and `catalog` locators
//! over TLS: `Backstage-Kubernetes-Authorization-aks`, `-pinniped-<audience>` and
//! `-oidc-<tokenProvider>` become `Authorization: Bearer` for the clusters whose
//! `authProvider` matches, and never for the others.

use crate::common_tls;

use actix_web::{web, App, HttpResponse, HttpServer};
use common_tls::{b64, upstream, Ca, UpstreamOpts};
use kubeplex::config::{CatalogConfig, ClusterConfig, LocatorConfig, LocatorKind, Settings};
use serde_json::json;
use std::time::Duration;

#[actix_web::test]
async fn provider_headers_by_auth_provider_for_config_and_catalog_clusters() {
    let ca = Ca::new("kubeplex credentials CA");
    let up = upstream(&ca.server(&["127.0.0.1"]), UpstreamOpts::default()).await;
    let cluster = |name: &str, provider: &str| ClusterConfig {
        name: name.into(),
        url: up.url("127.0.0.1"),
        auth_provider: Some(provider.into()),
        ca_data: Some(b64(&ca.pem)),
        ..Default::default()
    };
    // A catalog with one oidc cluster whose token provider is okta.
    let entity = json!([{
        "kind": "Resource",
        "metadata": {"name": "from-catalog", "annotations": {
            "kubernetes.io/api-server": up.url("127.0.0.1"),
            "kubernetes.io/api-server-certificate-authority": b64(&ca.pem),
            "kubernetes.io/auth-provider": "oidc",
            "kubernetes.io/oidc-token-provider": "okta",
        }},
        "spec": {"type": "kubernetes-cluster"}
    }]);
    let catalog = HttpServer::new(move || {
        let body = entity.clone();
        App::new().route(
            "/entities/by-query",
            web::get().to(move || {
                let body = body.clone();
                async move { HttpResponse::Ok().json(json!({"items": body})) }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let catalog_url = format!("http://{}", catalog.addrs()[0]);
    let catalog = catalog.run();
    let catalog_handle = catalog.handle();
    actix_web::rt::spawn(catalog);

    let mut settings = Settings::default();
    settings.server.listen = "127.0.0.1:0".into();
    settings.server.workers = Some(1);
    // No background /version probes: the upstream's last request is the test's own.
    settings.server.probe_interval = Duration::ZERO;
    settings.locators = vec![
        LocatorConfig {
            id: "config".into(),
            kind: LocatorKind::Config {
                clusters: vec![cluster("aks-1", "aks"), cluster("pinniped-1", "pinniped")],
            },
        },
        LocatorConfig {
            id: "catalog".into(),
            kind: LocatorKind::Catalog(CatalogConfig {
                url: catalog_url,
                token: None,
                refresh_interval: Duration::from_secs(60),
                dangerously_allow_cluster_urls: vec!["127.0.0.1".into()],
                allow_skip_tls_verify: false,
            }),
        },
    ];
    let app = kubeplex::app::spawn(settings).await.unwrap();
    let client = awc::Client::default();
    let all = [
        ("Backstage-Kubernetes-Authorization-aks", "aks-token"),
        (
            "Backstage-Kubernetes-Authorization-pinniped-my-audience",
            "pinniped-token",
        ),
        ("Backstage-Kubernetes-Authorization-oidc-okta", "okta-token"),
        ("Backstage-Kubernetes-Authorization-google", "google-token"),
    ];
    for (cluster, expected) in [
        ("aks-1", "Bearer aks-token"),
        ("pinniped-1", "Bearer pinniped-token"),
        ("from-catalog", "Bearer okta-token"),
    ] {
        let mut req = client.get(format!(
            "{}/api/kubernetes/proxy/api/v1/namespaces",
            app.url()
        ));
        req = req.insert_header(("Backstage-Kubernetes-Cluster", cluster));
        for h in all {
            req = req.insert_header(h);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200, "{cluster}");
        // By path: kubeplex's readiness probe (`GET /version`) may come in between.
        assert_eq!(
            up.last_header_at("/api/v1/namespaces", "authorization")
                .unwrap(),
            expected,
            "{cluster}"
        );
        assert!(
            up.last_header_at(
                "/api/v1/namespaces",
                "backstage-kubernetes-authorization-aks"
            )
            .is_none(),
            "provider headers never go upstream"
        );
    }
    // Only another provider's header: no credential goes upstream.
    let res = client
        .get(format!("{}/api/kubernetes/clusters/aks-1/api", app.url()))
        .insert_header(("Backstage-Kubernetes-Authorization-google", "google-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(up.last_header_at("/api", "authorization"), None);
    app.handle.stop(false).await;
    catalog_handle.stop(false).await;
}
