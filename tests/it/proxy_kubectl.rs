//! kubectl end to end through kubeplex's path route (issue 3, SPEC §1-§3): the real kubectl
//! 1.32 with `--server http://127.0.0.1:PORT/api/kubernetes/clusters/<name or key>` against
//! simulated clusters started in-process behind kubeplex: discovery and OpenAPI through the
//! prefix, get (tables, YAML), create, apply, the three patch types, delete and watch; two
//! clusters named alike in different locators told apart by key; a `config` cluster whose
//! server-side token kubeplex supplies; an unknown cluster refused.

use crate::kubectl_support;

use kubectl_support::{cells, watch_sees_create_and_patch, Kubectl};
use kubeplex::app::RunningApp;
use kubeplex::config::{ClusterConfig, LocatorConfig, LocatorKind, Settings};
use kubeplex::sim::config::{SeedSource, SimClusterConfig};
use kubeplex::sim::SimServer;
use serde_json::Value;

fn seed(namespace: &str, service: &str) -> String {
    format!(
        "apiVersion: v1\nkind: List\nitems:\n\
         - {{apiVersion: v1, kind: Namespace, metadata: {{name: default}}}}\n\
         - {{apiVersion: v1, kind: Namespace, metadata: {{name: {namespace}}}}}\n\
         - apiVersion: v1\n  kind: Service\n  metadata: {{name: {service}, namespace: {namespace}, labels: {{app: {service}}}}}\n  \
         spec:\n    selector: {{app: {service}}}\n    ports:\n    - {{name: http, port: 80, targetPort: 8080}}\n"
    )
}

fn sim_cluster(name: &str, namespace: &str, service: &str, tokens: &[&str]) -> SimClusterConfig {
    let seed = SeedSource::Text {
        name: format!("{name} seed"),
        text: seed(namespace, service),
    };
    SimClusterConfig::new(name, Some(seed), tokens.iter().copied())
}

/// kubeplex with locator `simulated` (clusters `prod` and `dev`) and locator `config` (a
/// second `dev`: a token-protected simulator started here, reached with its
/// `serviceAccountToken`).
async fn start() -> (RunningApp, SimServer) {
    let external = kubeplex::sim::spawn(
        "127.0.0.1:0",
        &sim_cluster("dev", "team-b", "billing", &["sa-secret-token"]),
    )
    .await
    .expect("start the external simulated cluster");
    let mut settings = Settings::default();
    settings.server.listen = "127.0.0.1:0".into();
    settings.server.workers = Some(1);
    settings.locators = vec![
        LocatorConfig {
            id: "simulated".into(),
            kind: LocatorKind::Simulated {
                clusters: vec![
                    sim_cluster("prod", "shop", "web", &[]),
                    sim_cluster("dev", "team-a", "search", &[]),
                ],
            },
        },
        LocatorConfig {
            id: "config".into(),
            kind: LocatorKind::Config {
                clusters: vec![ClusterConfig {
                    name: "dev".into(),
                    url: external.url().as_str().trim_end_matches('/').to_owned(),
                    auth_provider: Some("serviceAccount".into()),
                    service_account_token: Some("sa-secret-token".into()),
                    ..ClusterConfig::default()
                }],
            },
        },
    ];
    let app = kubeplex::app::spawn(settings)
        .await
        .expect("start kubeplex");
    (app, external)
}

fn kubectl_for(app: &RunningApp, cluster: &str) -> Kubectl {
    Kubectl::new(
        &format!("{}/api/kubernetes/clusters/{cluster}", app.url()),
        None,
    )
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[actix_web::test]
async fn get_through_the_path_route_by_name_and_key() {
    let (app, _external) = start().await;

    let prod = kubectl_for(&app, "prod");
    let out = prod.ok(&["get", "services", "-A"]).await;
    assert_eq!(
        cells(out.lines().next().expect("header")),
        [
            "NAMESPACE",
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ],
        "{out}"
    );
    let web: Vec<&str> = out
        .lines()
        .map(cells)
        .find(|c| c.get(1) == Some(&"web"))
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(web[0], "shop");
    assert_eq!(web[5], "80/TCP");

    let yaml = prod
        .ok(&["get", "svc", "web", "-n", "shop", "-o", "yaml"])
        .await;
    let svc: serde_yaml::Value = serde_yaml::from_str(&yaml).expect("YAML");
    assert_eq!(svc["kind"].as_str(), Some("Service"));
    assert_eq!(svc["metadata"]["name"].as_str(), Some("web"));

    // `dev` by name is the first in order (simulated); by key each is reachable. Each
    // cluster has its seeded Service besides the built-in default/kubernetes.
    for (cluster, expected) in [
        ("dev", "default/kubernetes\nteam-a/search"),
        ("simulated:dev", "default/kubernetes\nteam-a/search"),
        ("config:dev", "default/kubernetes\nteam-b/billing"),
    ] {
        let k = kubectl_for(&app, cluster);
        let out = k
            .ok(&[
                "get",
                "svc",
                "-A",
                "-o",
                "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}{\"\\n\"}{end}",
            ])
            .await;
        assert_eq!(out.trim(), expected, "cluster {cluster}");
    }

    // The ambiguous name comes with kubeplex's Warning header, which kubectl prints.
    let out = kubectl_for(&app, "dev").run(&["get", "ns"]).await;
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Warning:"), "{stderr}");

    let err = kubectl_for(&app, "nope").fails(&["get", "svc"]).await;
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
}

const API: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: shop
spec:
  selector:
    app: api
  ports:
    - name: http
      port: 80
      targetPort: 8080
"#;

#[actix_web::test]
async fn create_apply_patch_delete_through_kubeplex() {
    let (app, _external) = start().await;
    let k = kubectl_for(&app, "prod");

    let created = k.write_file("created.yaml", &API.replace("name: api", "name: created"));
    let out = k.ok(&["create", "-f", created.to_str().unwrap()]).await;
    assert_eq!(out.trim(), "service/created created");

    let bogus = k.write_file(
        "bogus.yaml",
        &API.replace("  selector:", "  bogus: 1\n  selector:"),
    );
    let err = k.fails(&["create", "-f", bogus.to_str().unwrap()]).await;
    assert!(
        err.contains(r#"strict decoding error: unknown field "spec.bogus""#),
        "{err}"
    );

    let v1 = k.write_file("v1.yaml", API);
    assert_eq!(
        k.ok(&["apply", "-f", v1.to_str().unwrap()]).await.trim(),
        "service/api created"
    );
    let v2 = k.write_file(
        "v2.yaml",
        &format!("{API}    - name: https\n      port: 443\n      targetPort: 8443\n"),
    );
    assert_eq!(
        k.ok(&["apply", "-f", v2.to_str().unwrap()]).await.trim(),
        "service/api configured"
    );
    assert_eq!(
        k.ok(&["apply", "-f", v2.to_str().unwrap()]).await.trim(),
        "service/api unchanged"
    );

    for (kind, patch) in [
        ("merge", r#"{"metadata":{"labels":{"via":"kubeplex"}}}"#),
        (
            "json",
            r#"[{"op":"replace","path":"/spec/ports/0/targetPort","value":9090}]"#,
        ),
        (
            "strategic",
            r#"{"spec":{"ports":[{"name":"metrics","port":9100}]}}"#,
        ),
    ] {
        let out = k
            .ok(&[
                "patch", "svc", "api", "-n", "shop", "--type", kind, "-p", patch,
            ])
            .await;
        assert_eq!(out.trim(), "service/api patched", "{kind}");
    }
    let svc = json(
        &k.ok(&["get", "svc", "api", "-n", "shop", "-o", "json"])
            .await,
    );
    assert_eq!(svc["metadata"]["labels"]["via"], "kubeplex");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 9090);
    let ports: Vec<i64> = svc["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_i64().unwrap())
        .collect();
    assert_eq!(ports, [80, 443, 9100]);

    assert_eq!(
        k.ok(&["delete", "svc", "api", "-n", "shop"]).await.trim(),
        r#"service "api" deleted"#
    );
    assert_eq!(
        k.ok(&["delete", "-f", created.to_str().unwrap()])
            .await
            .trim(),
        r#"service "created" deleted"#
    );
    let err = k.fails(&["get", "svc", "api", "-n", "shop"]).await;
    assert!(err.contains(r#"services "api" not found"#), "{err}");

    // The other clusters did not see any of it.
    let dev = kubectl_for(&app, "dev");
    let out = dev.ok(&["get", "svc", "-A", "-o", "name"]).await;
    assert_eq!(out.trim(), "service/kubernetes\nservice/search");
}

#[actix_web::test]
async fn server_side_token_is_supplied_by_kubeplex() {
    let (app, external) = start().await;
    // Directly, without a token, the external cluster refuses kubectl...
    let direct = Kubectl::new(external.url().as_str().trim_end_matches('/'), None);
    let err = direct.fails(&["get", "svc", "-A"]).await;
    assert!(err.contains("You must be logged in to the server"), "{err}");
    // ...through kubeplex its serviceAccountToken is used, for reads and writes.
    let k = kubectl_for(&app, "config:dev");
    let file = k.write_file(
        "api.yaml",
        &API.replace("namespace: shop", "namespace: team-b"),
    );
    k.ok(&["apply", "-f", file.to_str().unwrap()]).await;
    let out = k.ok(&["get", "svc", "-n", "team-b", "-o", "name"]).await;
    let mut names: Vec<&str> = out.lines().collect();
    names.sort();
    assert_eq!(names, ["service/api", "service/billing"]);
}

#[actix_web::test]
async fn watch_through_kubeplex() {
    let (app, _external) = start().await;
    watch_sees_create_and_patch(&kubectl_for(&app, "prod"), API).await;
}

/// A backend answering every request with what it received.
async fn echo(req: actix_web::HttpRequest, body: actix_web::web::Bytes) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok().json(serde_json::json!({
        "method": req.method().as_str(),
        "path": req.path(),
        "query": req.query_string(),
        "body": String::from_utf8_lossy(&body),
    }))
}

/// Generator commands (protobuf bodies) and the Service proxy subresource, through kubeplex.
#[actix_web::test]
async fn generators_and_service_proxy_through_kubeplex() {
    let backend = actix_web::HttpServer::new(|| {
        actix_web::App::new().default_service(actix_web::web::to(echo))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .expect("bind backend");
    let backend_addr = backend.addrs()[0];
    let backend = backend.run();
    let backend_handle = backend.handle();
    actix_web::rt::spawn(backend);

    let (app, _external) = start().await;
    let k = kubectl_for(&app, "prod");
    assert_eq!(
        k.ok(&["create", "namespace", "gen"]).await.trim(),
        "namespace/gen created"
    );
    assert_eq!(
        k.ok(&[
            "create",
            "service",
            "clusterip",
            "made",
            "-n",
            "gen",
            "--tcp=80:8080"
        ])
        .await
        .trim(),
        "service/made created"
    );
    let made = json(
        &k.ok(&["get", "svc", "made", "-n", "gen", "-o", "json"])
            .await,
    );
    assert_eq!(made["spec"]["ports"][0]["targetPort"], 8080);

    let manifest = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: echo\n  namespace: gen\n  annotations:\n    \
         sim.kubeplex.io/backend: http://{backend_addr}\nspec:\n  ports:\n    - name: http\n      port: 80\n"
    );
    let file = k.write_file("echo.yaml", &manifest);
    k.ok(&["create", "-f", file.to_str().unwrap()]).await;
    // `get --raw` takes a path from the server's root (client-go's RequestURI drops the
    // server URL's path), so the kubeplex prefix is spelled out.
    let raw = "/api/kubernetes/clusters/prod/api/v1/namespaces/gen/services/echo:http/proxy/deep/path?q=1";
    let got = json(&k.ok(&["get", "--raw", raw]).await);
    assert_eq!(got["method"], "GET");
    assert_eq!(got["path"], "/deep/path");
    assert_eq!(got["query"], "q=1");
    backend_handle.stop(false).await;
}
