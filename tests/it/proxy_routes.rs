//! SPEC §1-§2 over loopback: routes, cluster choice by header (both names), key, first
//! match by name with the ambiguity `Warning`, reject mode, single-cluster default, 400 and
//! 404 `Status` answers, `Kubeplex-Cluster`, `GET {base}/clusters`, request ids.

use crate::common;

use common::*;
use kubeplex::config::DuplicateNames;
use serde_json::Value;

const BASE: &str = "/api/kubernetes";

#[actix_web::test]
async fn header_route_both_header_names_and_kubeplex_cluster() {
    let a = Upstream::ok().await;
    let b = Upstream::ok().await;
    let app = spawn_app(settings(vec![
        cluster("dev", &a.url),
        cluster("prod", &b.url),
    ]))
    .await;
    let c = http();
    let r = c
        .get(proxy_url(&app, "/api/v1/namespaces"))
        .header("Backstage-Kubernetes-Cluster", "prod")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["kubeplex-cluster"], "config:prod");
    assert!(r.headers().get("warning").is_none());
    assert_eq!(b.only().path, "/api/v1/namespaces");
    let r = c
        .get(proxy_url(&app, "/version"))
        .header("X-Kubernetes-Cluster", "dev")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["kubeplex-cluster"], "config:dev");
    assert_eq!(a.only().path, "/version");
}

#[actix_web::test]
async fn key_selects_and_ambiguous_name_routes_first_with_warning() {
    let first = Upstream::ok().await;
    let second = Upstream::ok().await;
    let app = spawn_app(settings_with(vec![
        ("config", vec![cluster("prod", &first.url)]),
        ("staging", vec![cluster("prod", &second.url)]),
    ]))
    .await;
    let c = http();
    let r = c
        .get(proxy_url(&app, "/api"))
        .header("Backstage-Kubernetes-Cluster", "prod")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["kubeplex-cluster"], "config:prod");
    assert_eq!(
        r.headers()["warning"],
        "299 kubeplex \"cluster name 'prod' matches 2 clusters; routed to config:prod; send a key to choose\""
    );
    assert_eq!(first.recorded().len(), 1);
    let r = c
        .get(proxy_url(&app, "/api"))
        .header("Backstage-Kubernetes-Cluster", "staging:prod")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["kubeplex-cluster"], "staging:prod");
    assert!(r.headers().get("warning").is_none());
    assert_eq!(second.recorded().len(), 1);
    // The path route takes keys too, raw or percent-encoded.
    for seg in ["staging:prod", "staging%3Aprod"] {
        let r = c
            .get(format!("{}{BASE}/clusters/{seg}/api/v1", app.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{seg}");
        assert_eq!(r.headers()["kubeplex-cluster"], "staging:prod");
    }
    assert_eq!(second.recorded().len(), 3);
    assert_eq!(first.recorded().len(), 1);
}

#[actix_web::test]
async fn reject_mode_answers_409_and_sends_nothing() {
    let first = Upstream::ok().await;
    let second = Upstream::ok().await;
    let mut s = settings_with(vec![
        ("config", vec![cluster("prod", &first.url)]),
        ("other", vec![cluster("prod", &second.url)]),
    ]);
    s.duplicate_names = DuplicateNames::Reject;
    let app = spawn_app(s).await;
    let r = http()
        .get(proxy_url(&app, "/api"))
        .header("Backstage-Kubernetes-Cluster", "prod")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["kind"], "Status");
    assert_eq!(v["reason"], "Conflict");
    assert!(v["message"].as_str().unwrap().contains("other:prod"));
    assert!(first.recorded().is_empty() && second.recorded().is_empty());
}

#[actix_web::test]
async fn no_header_single_cluster_is_used() {
    let up = Upstream::ok().await;
    let app = spawn_app(settings(vec![cluster("only", &up.url)])).await;
    let r = http()
        .get(proxy_url(&app, "/api/v1/pods"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["kubeplex-cluster"], "config:only");
    assert_eq!(up.only().path, "/api/v1/pods");
}

#[actix_web::test]
async fn no_header_several_clusters_is_400_and_unknown_is_404() {
    let a = Upstream::ok().await;
    let app = spawn_app(settings(vec![cluster("a", &a.url), cluster("b", &a.url)])).await;
    let c = http();
    let r = c.get(proxy_url(&app, "/api")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["reason"], "BadRequest");
    assert_eq!(v["code"], 400);
    let r = c
        .get(proxy_url(&app, "/api"))
        .header("Backstage-Kubernetes-Cluster", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["reason"], "NotFound");
    assert!(v["message"].as_str().unwrap().contains("clusters endpoint"));
    let r = c
        .get(format!("{}{BASE}/clusters/nope/api", app.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(a.recorded().is_empty());
}

#[actix_web::test]
async fn path_route_keeps_path_query_encoding_and_trailing_slash() {
    let up = Upstream::ok().await;
    let app = spawn_app(settings(vec![
        cluster("prod", &up.url),
        cluster("dev", &up.url),
    ]))
    .await;
    let r = http()
        .get(format!(
            "{}{BASE}/clusters/prod/api/v1/namespaces/a%20b/services/?labelSelector=app%3Dx&limit=2",
            app.url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["kubeplex-cluster"], "config:prod");
    let rec = up.only();
    assert_eq!(rec.path, "/api/v1/namespaces/a%20b/services/");
    assert_eq!(rec.query.as_deref(), Some("labelSelector=app%3Dx&limit=2"));
    // The bare cluster route (kubectl's --server) reaches `/`.
    let r = http()
        .get(format!("{}{BASE}/clusters/dev", app.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(up.recorded()[1].path, "/");
}

#[actix_web::test]
async fn clusters_endpoint_lists_keys_in_order_without_urls_or_credentials() {
    let mut prod = cluster("prod", "http://10.1.2.3:6443");
    prod.title = Some("Production".into());
    prod.auth_provider = Some("oidc".into());
    prod.oidc_token_provider = Some("okta".into());
    prod.service_account_token = Some("sekret-token".into());
    prod.dashboard_url = Some("https://dash.example.com".into());
    let app = spawn_app(settings_with(vec![
        ("config", vec![prod, cluster("dev", "http://10.1.2.4:6443")]),
        ("staging", vec![cluster("prod", "http://10.1.2.5:6443")]),
    ]))
    .await;
    let r = http()
        .get(format!("{}{BASE}/clusters", app.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(!text.contains("10.1.2"), "{text}");
    assert!(!text.contains("sekret"), "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let items = v["items"].as_array().unwrap();
    let keys: Vec<_> = items.iter().map(|i| i["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["config:prod", "config:dev", "staging:prod"]);
    assert_eq!(
        items[0],
        serde_json::json!({
            "name": "prod", "key": "config:prod", "title": "Production", "locator": "config",
            "authProvider": "oidc", "oidcTokenProvider": "okta",
            "dashboardUrl": "https://dash.example.com", "ambiguous": true
        })
    );
    assert_eq!(
        items[1],
        serde_json::json!({"name": "dev", "key": "config:dev", "locator": "config", "ambiguous": false})
    );
}

#[actix_web::test]
async fn request_id_echoed_or_generated() {
    let up = Upstream::ok().await;
    let app = spawn_app_for(&up).await;
    let c = http();
    let r = c
        .get(proxy_url(&app, "/api"))
        .header("X-Request-Id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let r1 = c.get(proxy_url(&app, "/api")).send().await.unwrap();
    let r2 = c.get(proxy_url(&app, "/api")).send().await.unwrap();
    let id1 = r1.headers()["x-request-id"].to_str().unwrap().to_owned();
    let id2 = r2.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(id1.len() >= 16);
    assert_ne!(id1, id2);
    // Errors carry it too.
    let r = c
        .get(format!("{}{BASE}/clusters/nope/api", app.url()))
        .header("X-Request-Id", "err-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-request-id"], "err-1");
}

#[actix_web::test]
async fn unknown_routes_under_base_are_status_objects() {
    let up = Upstream::ok().await;
    let app = spawn_app(settings(vec![cluster("dev", &up.url)])).await;
    let c = http();
    for (method, path, code, reason) in [
        ("GET", "/nope", 404, "NotFound"),
        ("GET", "/proxyfoo/api", 404, "NotFound"),
        ("POST", "/clusters", 405, "MethodNotAllowed"),
    ] {
        let r = c
            .request(
                method.parse().unwrap(),
                format!("{}{BASE}{path}", app.url()),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), code, "{method} {path}");
        let s: Value = r.json().await.unwrap();
        assert_eq!(s["kind"], "Status", "{method} {path}");
        assert_eq!(s["reason"], reason, "{method} {path}");
    }
    // The proxy routes are still told apart: bare `/proxy` and `/clusters/{name}`.
    let r = c
        .get(format!("{}{BASE}/proxy", app.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(format!("{}{BASE}/clusters/dev", app.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["kubeplex-cluster"], "config:dev");
    let paths: Vec<String> = up.recorded().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        ["/", "/"],
        "only the two proxy requests reached the upstream"
    );
}
