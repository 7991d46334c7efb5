//! Backstage's own frontend client, `KubernetesBackendClient` from the npm package
//! `@backstage/plugin-kubernetes-react`, works against kubeplex unchanged: it lists clusters
//! from `GET {base}/clusters` and proxies with the token header it derives from each
//! cluster's `authProvider` and `oidcTokenProvider`, while the portal token Backstage's
//! `fetchApi` adds to every call never reaches a cluster.

use base64::Engine;
use kubeplex::config::{ClusterConfig, LocatorConfig, LocatorKind, Settings};
use kubeplex::sim::config::SimClusterConfig;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Installs the client's npm packages once (from the committed lock file).
fn client_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/backstage-client");
        if !dir
            .join("node_modules/@backstage/plugin-kubernetes-react")
            .exists()
        {
            let status = Command::new("npm")
                .args(["ci", "--silent", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .status()
                .expect("npm (Node.js) is needed for the Backstage client test");
            assert!(status.success(), "npm ci failed in {}", dir.display());
        }
        dir
    })
}

/// A token shaped like a Backstage user token (ES256, `typ: vnd.backstage.user`,
/// `aud: backstage`); kubeplex must recognise it without verifying it.
fn backstage_user_token() -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(r#"{"alg":"ES256","typ":"vnd.backstage.user","kid":"k1"}"#);
    let claims = b64.encode(
        r#"{"iss":"http://localhost:7007/api/auth","sub":"user:default/guest","ent":["user:default/guest"],"aud":"backstage","exp":4102444800}"#,
    );
    format!("{header}.{claims}.c2lnbmF0dXJl")
}

fn sim(token: &str) -> SimClusterConfig {
    SimClusterConfig::new("sim", None, [token])
}

fn run_client(base: &str, cluster: &str, path: &str) -> serde_json::Value {
    let out = Command::new("node")
        .arg(client_dir().join("client.mjs"))
        .args([base, cluster, path])
        .env("PROVIDER_TOKENS", r#"{"oidc.okta":"okta-user-token"}"#)
        .env("BACKSTAGE_USER_TOKEN", backstage_user_token())
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "client.mjs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("client prints JSON")
}

#[actix_web::test]
async fn backstage_frontend_client_lists_and_proxies() {
    // Two simulated clusters, each accepting only its own token.
    let oidc = kubeplex::sim::spawn("127.0.0.1:0", &sim("okta-user-token"))
        .await
        .unwrap();
    let sa = kubeplex::sim::spawn("127.0.0.1:0", &sim("sa-token"))
        .await
        .unwrap();
    let mut settings = Settings::default();
    settings.server.listen = "127.0.0.1:0".into();
    settings.locators = vec![LocatorConfig {
        id: "config".into(),
        kind: LocatorKind::Config {
            clusters: vec![
                ClusterConfig {
                    name: "oidc-prod".into(),
                    url: oidc.url().to_string(),
                    auth_provider: Some("oidc".into()),
                    oidc_token_provider: Some("okta".into()),
                    ..Default::default()
                },
                ClusterConfig {
                    name: "sa-dev".into(),
                    url: sa.url().to_string(),
                    auth_provider: Some("serviceAccount".into()),
                    service_account_token: Some("sa-token".into()),
                    ..Default::default()
                },
            ],
        },
    }];
    let app = kubeplex::app::spawn(settings).await.unwrap();
    let base = app.url();

    let out = actix_web::rt::task::spawn_blocking(move || {
        (
            run_client(&base, "oidc-prod", "/api/v1/namespaces"),
            run_client(&base, "sa-dev", "/api/v1/namespaces"),
        )
    })
    .await
    .unwrap();
    let (oidc_out, sa_out) = out;

    let clusters = oidc_out["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 2);
    assert_eq!(clusters[0]["name"], "oidc-prod");
    assert_eq!(clusters[0]["key"], "config:oidc-prod");
    assert_eq!(clusters[0]["authProvider"], "oidc");
    assert_eq!(clusters[0]["oidcTokenProvider"], "okta");
    assert_eq!(clusters[1]["authProvider"], "serviceAccount");
    for c in clusters {
        assert!(c.get("url").is_none(), "cluster URLs are not exposed: {c}");
        assert!(c.get("serviceAccountToken").is_none());
    }

    // oidc-prod: the client sends Backstage-Kubernetes-Authorization-oidc-okta; the simulated
    // cluster accepts only that token, so a 200 shows it arrived as the bearer token.
    let p = &oidc_out["proxied"];
    assert_eq!(p["status"], 200, "{p}");
    assert_eq!(p["headers"]["kubeplex-cluster"], "config:oidc-prod");
    let body: serde_json::Value = serde_json::from_str(p["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["kind"], "NamespaceList");

    // sa-dev: no provider token; the Backstage user token in Authorization must not be
    // forwarded, the cluster's own service-account token is used instead.
    let p = &sa_out["proxied"];
    assert_eq!(p["status"], 200, "{p}");
    assert_eq!(p["headers"]["kubeplex-cluster"], "config:sa-dev");
}

/// Runs client.mjs in `--entity` mode: the Kubernetes tab's three entity calls.
fn run_entity_client(base: &str, entity: &serde_json::Value) -> serde_json::Value {
    let auth = serde_json::json!({"oidc": {"okta": "okta-user-token"}});
    let out = Command::new("node")
        .arg(client_dir().join("client.mjs"))
        .args(["--entity", base])
        .env("ENTITY", entity.to_string())
        .env("AUTH", auth.to_string())
        .env(
            "CUSTOM_RESOURCES",
            serde_json::json!([crate::backstage_api::gadgets()]).to_string(),
        )
        .env("BACKSTAGE_USER_TOKEN", backstage_user_token())
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "client.mjs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("client prints JSON")
}

#[actix_web::test]
async fn backstage_frontend_client_reads_an_entitys_objects() {
    use crate::backstage_api::{catalog, entity, sim_config, start, url_of, DEFAULT_TYPES};
    // An oidc cluster accepting only the user's okta token, a service-account cluster, and
    // a fake catalog that knows component:default/web.
    let oidc = start(&sim_config("oidc", &["okta-user-token"])).await;
    let sa = start(&sim_config("sa", &["sa-token"])).await;
    let web = entity("web", serde_json::json!({}));
    let cat = catalog(web.clone()).await;
    let mut settings = Settings::default();
    settings.server.listen = "127.0.0.1:0".into();
    settings.server.workers = Some(2);
    settings.backstage.catalog_url = Some(format!("{}/api/catalog", cat.url));
    settings.locators = vec![LocatorConfig {
        id: "config".into(),
        kind: LocatorKind::Config {
            clusters: vec![
                ClusterConfig {
                    name: "oidc-prod".into(),
                    url: url_of(&oidc),
                    auth_provider: Some("oidc".into()),
                    oidc_token_provider: Some("okta".into()),
                    ..Default::default()
                },
                ClusterConfig {
                    name: "sa-dev".into(),
                    url: url_of(&sa),
                    auth_provider: Some("serviceAccount".into()),
                    service_account_token: Some("sa-token".into()),
                    ..Default::default()
                },
            ],
        },
    }];
    let app = kubeplex::app::spawn(settings).await.unwrap();
    let base = app.url();
    let out = actix_web::rt::task::spawn_blocking(move || run_entity_client(&base, &web))
        .await
        .unwrap();

    let names = |item: &serde_json::Value, ty: &str| -> Vec<String> {
        let mut n: Vec<String> = item["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == ty)
            .unwrap_or_else(|| panic!("no {ty}: {item}"))["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    // getObjectsByEntity and getWorkloadsByEntity: the entity's objects in both clusters.
    for answer in [&out["objects"], &out["workloads"]] {
        let items = answer["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{answer}"));
        let keys: Vec<&str> = items
            .iter()
            .map(|i| i["cluster"]["key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, ["config:oidc-prod", "config:sa-dev"], "{answer}");
        for item in items {
            assert_eq!(item["errors"], serde_json::json!([]), "{item}");
            let types: Vec<&str> = item["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["type"].as_str().unwrap())
                .collect();
            assert_eq!(types, DEFAULT_TYPES);
            assert_eq!(names(item, "deployments"), ["web"]);
            assert_eq!(names(item, "services"), ["web"]);
            assert_eq!(names(item, "configmaps"), ["web-config", "web-elsewhere"]);
            assert_eq!(item["podMetrics"].as_array().unwrap().len(), 2);
        }
    }
    // getCustomObjectsByEntity: the Gadget of the entity.
    let items = out["custom"]["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", out["custom"]));
    assert_eq!(items.len(), 2, "{}", out["custom"]);
    for item in items {
        assert_eq!(names(item, "customresources"), ["web-gadget"]);
        assert_eq!(item["resources"][0]["resources"][0]["kind"], "Gadget");
    }
    // The catalog was asked for the entity with the user's portal token (the services call
    // re-reads the posted entity; the two queries read their ref).
    let asked = cat.recorded();
    assert_eq!(asked.len(), 3, "{asked:?}");
    let portal = format!("Bearer {}", backstage_user_token());
    for r in &asked {
        assert_eq!(
            r.path.to_lowercase(),
            "/api/catalog/entities/by-name/component/default/web"
        );
        assert_eq!(r.one("authorization"), Some(portal.as_str()));
    }
}
