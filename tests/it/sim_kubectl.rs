//! kubectl end to end against the simulated cluster (issue 2, SPEC §8): the real kubectl 1.32
//! binary, with its own kubeconfig, drives a simulator started in-process on a loopback port:
//! discovery, server-side Table printing, `-o yaml`, `create -f` with server-side strict field
//! validation, client-side `apply -f` (strategic merge patches computed from the simulator's
//! OpenAPI v3 document), the three patch types, `delete`, `get --watch`, `get --raw` through
//! the Service proxy subresource, and bearer-token checks.

use crate::kubectl_support;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use kubectl_support::{cells, watch_sees_create_and_patch, Kubectl};
use kubeplex::sim::config::{SeedSource, SimClusterConfig};
use kubeplex::sim::SimServer;
use serde_json::Value;

const SEED: &str = r#"
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Namespace
    metadata:
      name: default
  - apiVersion: v1
    kind: Namespace
    metadata:
      name: shop
  - apiVersion: v1
    kind: Service
    metadata:
      name: web
      namespace: shop
      labels:
        app: web
    spec:
      selector:
        app: web
        tier: frontend
      ports:
        - name: http
          port: 80
          targetPort: 8080
        - name: https
          port: 443
          targetPort: 8443
  - apiVersion: v1
    kind: Service
    metadata:
      name: edge
      namespace: default
    spec:
      type: NodePort
      ports:
        - port: 8080
          nodePort: 30080
"#;

fn cluster(tokens: &[&str]) -> SimClusterConfig {
    let seed = SeedSource::Text {
        name: "sim_kubectl seed".into(),
        text: SEED.into(),
    };
    SimClusterConfig::new("e2e", Some(seed), tokens.iter().copied())
}

async fn start() -> (SimServer, Kubectl) {
    let sim = kubeplex::sim::spawn("127.0.0.1:0", &cluster(&[]))
        .await
        .expect("start simulated cluster");
    let url = sim.url().as_str().trim_end_matches('/').to_owned();
    (sim, Kubectl::new(&url, None))
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The row of `kubectl get` output whose cell `col` is `value`.
fn row<'a>(out: &'a str, col: usize, value: &str) -> Vec<&'a str> {
    out.lines()
        .map(cells)
        .find(|c| c.get(col) == Some(&value))
        .unwrap_or_else(|| panic!("no row with {value:?} in column {col}:\n{out}"))
}

#[actix_web::test]
async fn get_prints_server_side_tables() {
    let (_sim, k) = start().await;

    let out = k.ok(&["get", "services", "-A"]).await;
    let mut lines = out.lines();
    assert_eq!(
        cells(lines.next().expect("header")),
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
    let web = row(&out, 1, "web");
    assert_eq!(web[0], "shop");
    assert_eq!(web[2], "ClusterIP");
    assert!(web[3].parse::<std::net::Ipv4Addr>().is_ok(), "{out}");
    assert_eq!(web[4], "<none>");
    assert_eq!(web[5], "80/TCP,443/TCP");
    let edge = row(&out, 1, "edge");
    assert_eq!(edge[0], "default");
    assert_eq!(edge[2], "NodePort");
    assert_eq!(edge[5], "8080:30080/TCP");
    // As on every real cluster: the API server's own Service.
    let kubernetes = row(&out, 1, "kubernetes");
    assert_eq!(
        kubernetes[..6],
        [
            "default",
            "kubernetes",
            "ClusterIP",
            "10.96.0.1",
            "<none>",
            "443/TCP"
        ]
    );

    let wide = k.ok(&["get", "svc", "-n", "shop", "-o", "wide"]).await;
    assert_eq!(
        cells(wide.lines().next().unwrap()).last(),
        Some(&"SELECTOR")
    );
    assert_eq!(row(&wide, 0, "web")[6], "app=web,tier=frontend");

    // The kubeconfig's namespace is `default`.
    let default_ns = k.ok(&["get", "svc"]).await;
    row(&default_ns, 0, "edge");
    row(&default_ns, 0, "kubernetes");
    assert!(!default_ns.contains("web"), "{default_ns}");

    let ns = k.ok(&["get", "namespaces"]).await;
    assert_eq!(cells(ns.lines().next().unwrap()), ["NAME", "STATUS", "AGE"]);
    assert_eq!(row(&ns, 0, "shop")[1], "Active");

    let names = k.ok(&["get", "svc", "-A", "-o", "name"]).await;
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, ["service/edge", "service/kubernetes", "service/web"]);

    let selected = k
        .ok(&["get", "svc", "-A", "-l", "app=web", "-o", "name"])
        .await;
    assert_eq!(selected.trim(), "service/web");
}

#[actix_web::test]
async fn get_yaml_and_json_decode_as_services() {
    let (_sim, k) = start().await;
    let yaml = k
        .ok(&["get", "svc", "web", "-n", "shop", "-o", "yaml"])
        .await;
    let svc: serde_yaml::Value = serde_yaml::from_str(&yaml).expect("kubectl printed YAML");
    assert_eq!(svc["apiVersion"].as_str(), Some("v1"));
    assert_eq!(svc["kind"].as_str(), Some("Service"));
    assert_eq!(svc["metadata"]["name"].as_str(), Some("web"));
    assert_eq!(svc["metadata"]["namespace"].as_str(), Some("shop"));
    for field in ["uid", "resourceVersion", "creationTimestamp"] {
        assert!(
            !svc["metadata"][field].as_str().unwrap_or("").is_empty(),
            "{field}: {yaml}"
        );
    }
    assert_eq!(svc["spec"]["ports"][1]["port"].as_u64(), Some(443));
    assert_eq!(svc["spec"]["ports"][1]["protocol"].as_str(), Some("TCP"));
    assert_eq!(svc["spec"]["sessionAffinity"].as_str(), Some("None"));

    let ports = k
        .ok(&[
            "get",
            "svc",
            "web",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.ports[*].port}",
        ])
        .await;
    assert_eq!(ports, "80 443");

    let list = json(&k.ok(&["get", "svc", "-A", "-o", "json"]).await);
    assert_eq!(list["kind"], "List");
    let listed: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["edge", "kubernetes", "web"]);

    let err = k.fails(&["get", "svc", "nope", "-n", "shop"]).await;
    assert!(
        err.contains(r#"Error from server (NotFound): services "nope" not found"#),
        "{err}"
    );
}

const API_V1: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: shop
  labels:
    app: api
spec:
  selector:
    app: api
  ports:
    - name: http
      port: 80
      targetPort: 8080
"#;

#[actix_web::test]
async fn create_apply_patch_delete() {
    let (_sim, k) = start().await;

    // create -f, then a second create is refused.
    let file = k.write_file("create.yaml", &API_V1.replace("name: api", "name: created"));
    let out = k.ok(&["create", "-f", file.to_str().unwrap()]).await;
    assert_eq!(out.trim(), "service/created created");
    let err = k.fails(&["create", "-f", file.to_str().unwrap()]).await;
    assert!(
        err.contains(r#"(AlreadyExists)"#) && err.contains(r#"services "created" already exists"#),
        "{err}"
    );

    // apply -f: created, then configured with a change, then unchanged.
    let v1 = k.write_file("api-v1.yaml", API_V1);
    let out = k.ok(&["apply", "-f", v1.to_str().unwrap()]).await;
    assert_eq!(out.trim(), "service/api created");
    let v2_text = API_V1.replace("    app: api\nspec", "    app: api\n    stage: two\nspec")
        + "    - name: https\n      port: 443\n      targetPort: 8443\n";
    let v2 = k.write_file("api-v2.yaml", &v2_text);
    let out = k.ok(&["apply", "-f", v2.to_str().unwrap()]).await;
    assert_eq!(out.trim(), "service/api configured");
    let out = k.ok(&["apply", "-f", v2.to_str().unwrap()]).await;
    assert_eq!(out.trim(), "service/api unchanged");
    let svc = json(
        &k.ok(&["get", "svc", "api", "-n", "shop", "-o", "json"])
            .await,
    );
    assert_eq!(svc["metadata"]["labels"]["stage"], "two");
    let ports: Vec<i64> = svc["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_i64().unwrap())
        .collect();
    assert_eq!(ports, [80, 443]);
    let last_applied = svc["metadata"]["annotations"]
        ["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .expect("apply records last-applied-configuration");
    assert!(last_applied.contains("8443"), "{last_applied}");
    // apply removing the https port again: the strategic merge patch deletes it by port.
    let out = k.ok(&["apply", "-f", v1.to_str().unwrap()]).await;
    assert_eq!(out.trim(), "service/api configured");
    let svc = json(
        &k.ok(&["get", "svc", "api", "-n", "shop", "-o", "json"])
            .await,
    );
    assert_eq!(svc["spec"]["ports"].as_array().map(Vec::len), Some(1));
    assert!(svc["metadata"]["labels"].get("stage").is_none(), "{svc}");

    // patch: merge, json, strategic (kubectl's default for built-in types).
    let out = k
        .ok(&[
            "patch",
            "svc",
            "api",
            "-n",
            "shop",
            "--type",
            "merge",
            "-p",
            r#"{"metadata":{"labels":{"patched":"merge"}}}"#,
        ])
        .await;
    assert_eq!(out.trim(), "service/api patched");
    let out = k
        .ok(&[
            "patch",
            "svc",
            "api",
            "-n",
            "shop",
            "--type",
            "json",
            "-p",
            r#"[{"op":"replace","path":"/spec/ports/0/targetPort","value":9090}]"#,
        ])
        .await;
    assert_eq!(out.trim(), "service/api patched");
    let out = k
        .ok(&[
            "patch",
            "svc",
            "api",
            "-n",
            "shop",
            "-p",
            r#"{"spec":{"ports":[{"name":"metrics","port":9100,"targetPort":9100}]}}"#,
        ])
        .await;
    assert_eq!(out.trim(), "service/api patched");
    let svc = json(
        &k.ok(&["get", "svc", "api", "-n", "shop", "-o", "json"])
            .await,
    );
    assert_eq!(svc["metadata"]["labels"]["patched"], "merge");
    assert_eq!(svc["spec"]["ports"][0]["port"], 80);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 9090);
    assert_eq!(
        svc["spec"]["ports"].as_array().map(Vec::len),
        Some(2),
        "a strategic merge patch merges ports by port number: {svc}"
    );
    assert_eq!(svc["spec"]["ports"][1]["name"], "metrics");

    // replace (PUT), label, annotate.
    let replaced = k.write_file(
        "replace.yaml",
        &API_V1
            .replace("name: api", "name: created")
            .replace("targetPort: 8080", "targetPort: 8181"),
    );
    let out = k.ok(&["replace", "-f", replaced.to_str().unwrap()]).await;
    assert_eq!(out.trim(), "service/created replaced");
    let out = k
        .ok(&["label", "svc", "created", "-n", "shop", "team=blue"])
        .await;
    assert_eq!(out.trim(), "service/created labeled");
    let out = k
        .ok(&["annotate", "svc", "created", "-n", "shop", "note=hello"])
        .await;
    assert_eq!(out.trim(), "service/created annotated");
    let svc = json(
        &k.ok(&["get", "svc", "created", "-n", "shop", "-o", "json"])
            .await,
    );
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8181);
    assert_eq!(svc["metadata"]["labels"]["team"], "blue");
    assert_eq!(svc["metadata"]["annotations"]["note"], "hello");

    // delete, by name and by file.
    let out = k.ok(&["delete", "svc", "api", "-n", "shop"]).await;
    assert_eq!(out.trim(), r#"service "api" deleted"#);
    let err = k.fails(&["get", "svc", "api", "-n", "shop"]).await;
    assert!(err.contains(r#"services "api" not found"#), "{err}");
    let out = k.ok(&["delete", "-f", file.to_str().unwrap()]).await;
    assert_eq!(out.trim(), r#"service "created" deleted"#);
    let out = k.ok(&["get", "svc", "-n", "shop", "-o", "name"]).await;
    assert_eq!(out.trim(), "service/web");

    // Namespaces from a manifest, and delete by label selector.
    let ns = k.write_file(
        "ns.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: scratch\n",
    );
    let out = k.ok(&["create", "-f", ns.to_str().unwrap()]).await;
    assert_eq!(out.trim(), "namespace/scratch created");
    let gen = k.write_file(
        "gen.yaml",
        &API_V1
            .replace("name: api", "name: gen")
            .replace("namespace: shop", "namespace: scratch")
            .replace("app: api", "app: gen"),
    );
    let out = k.ok(&["create", "-f", gen.to_str().unwrap()]).await;
    assert_eq!(out.trim(), "service/gen created");
    let out = k
        .ok(&["delete", "svc", "-n", "scratch", "-l", "app=gen"])
        .await;
    assert_eq!(out.trim(), r#"service "gen" deleted"#);
    let out = k.ok(&["delete", "namespace", "scratch"]).await;
    assert_eq!(out.trim(), r#"namespace "scratch" deleted"#);
}

#[actix_web::test]
async fn unknown_fields_are_refused_server_side() {
    let (_sim, k) = start().await;
    let bogus = API_V1.replace("  selector:", "  bogus: true\n  selector:");
    let file = k.write_file("bogus.yaml", &bogus);
    for verb in ["create", "apply"] {
        let err = k.fails(&[verb, "-f", file.to_str().unwrap()]).await;
        assert!(
            err.contains(r#"strict decoding error: unknown field "spec.bogus""#),
            "{verb}: {err}"
        );
    }
    k.fails(&["get", "svc", "api", "-n", "shop"]).await;

    // Invalid values are 422 Invalid with the field named.
    let bad = k.write_file("bad.yaml", &API_V1.replace("port: 80", "port: 70000"));
    let err = k.fails(&["create", "-f", bad.to_str().unwrap()]).await;
    assert!(
        err.contains(r#"Service "api" is invalid"#) && err.contains("spec.ports[0].port"),
        "{err}"
    );

    // With --validate=warn the server accepts the object, drops the field and warns.
    let warned = k.write_file("warned.yaml", &bogus.replace("name: api", "name: warned"));
    let out = k
        .run(&["create", "--validate=warn", "-f", warned.to_str().unwrap()])
        .await;
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(r#"Warning: unknown field "spec.bogus""#),
        "{stderr}"
    );

    // Without validation kubectl asks the server to ignore unknown fields, and it does.
    let out = k
        .ok(&["create", "--validate=false", "-f", file.to_str().unwrap()])
        .await;
    assert_eq!(out.trim(), "service/api created");
    let svc = json(
        &k.ok(&["get", "svc", "api", "-n", "shop", "-o", "json"])
            .await,
    );
    assert!(svc["spec"].get("bogus").is_none(), "{svc}");
}

#[actix_web::test]
async fn get_watch_streams_changes() {
    let (_sim, k) = start().await;
    watch_sees_create_and_patch(&k, API_V1).await;
}

/// A backend that answers every request with what it received.
async fn echo(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "method": req.method().as_str(),
        "path": req.path(),
        "query": req.query_string(),
        "body": String::from_utf8_lossy(&body),
    }))
}

#[actix_web::test]
async fn get_raw_through_the_service_proxy() {
    let backend = HttpServer::new(|| App::new().default_service(web::to(echo)))
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .expect("bind backend");
    let backend_addr = backend.addrs()[0];
    let backend = backend.run();
    let backend_handle = backend.handle();
    actix_web::rt::spawn(backend);

    let (_sim, k) = start().await;
    let manifest = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: echo\n  namespace: shop\n  annotations:\n    \
         sim.kubeplex.io/backend: http://{backend_addr}\nspec:\n  ports:\n    - name: http\n      port: 80\n"
    );
    let file = k.write_file("echo.yaml", &manifest);
    k.ok(&["create", "-f", file.to_str().unwrap()]).await;

    for (service, path, query) in [
        ("echo:http", "/hello/world", "x=1&y=two"),
        ("echo:80", "/metrics", ""),
        ("http:echo:http", "/", "a=b"),
    ] {
        let mut raw = format!("/api/v1/namespaces/shop/services/{service}/proxy{path}");
        if !query.is_empty() {
            raw = format!("{raw}?{query}");
        }
        let got = json(&k.ok(&["get", "--raw", &raw]).await);
        assert_eq!(got["method"], "GET", "{raw}");
        assert_eq!(got["path"], path, "{raw}");
        assert_eq!(got["query"], query, "{raw}");
    }

    // A Service without a backend answers 503.
    let err = k
        .fails(&[
            "get",
            "--raw",
            "/api/v1/namespaces/shop/services/web:http/proxy/",
        ])
        .await;
    assert!(
        err.contains("ServiceUnavailable") || err.contains("503"),
        "{err}"
    );
    backend_handle.stop(false).await;
}

/// kubectl applies a kubeconfig's credentials only over TLS (client-go's `clientcmd`), so
/// against this plain-HTTP simulator it is always anonymous: a cluster with tokens must
/// refuse it the way a real server does. (Accepted tokens are covered by the simulator's API
/// tests and, through kubeplex's server-side credential, by `proxy_kubectl`.)
#[actix_web::test]
async fn anonymous_kubectl_is_refused_by_a_cluster_with_tokens() {
    let sim = kubeplex::sim::spawn("127.0.0.1:0", &cluster(&["e2e-token"]))
        .await
        .expect("start simulated cluster");
    let url = sim.url().as_str().trim_end_matches('/').to_owned();
    let err = Kubectl::new(&url, None).fails(&["get", "svc", "-A"]).await;
    assert!(err.contains("You must be logged in to the server"), "{err}");
}

#[actix_web::test]
async fn version_discovery_and_explain() {
    let (_sim, k) = start().await;
    let version = json(&k.ok(&["version", "-o", "json"]).await);
    assert_eq!(version["serverVersion"]["gitVersion"], "v1.32.0");
    assert_eq!(version["serverVersion"]["minor"], "32");

    let resources = k.ok(&["api-resources"]).await;
    let svc = row(&resources, 0, "services");
    assert_eq!(svc, ["services", "svc", "v1", "true", "Service"]);
    let ns = row(&resources, 0, "namespaces");
    assert_eq!(ns, ["namespaces", "ns", "v1", "false", "Namespace"]);

    // Short names resolve through discovery.
    let out = k.ok(&["get", "svc,ns", "-A", "-o", "name"]).await;
    assert!(
        out.contains("service/web") && out.contains("namespace/shop"),
        "{out}"
    );

    // explain reads the OpenAPI v3 document.
    let explain = k.ok(&["explain", "service.spec.ports"]).await;
    assert!(
        explain.contains("FIELD: ports <[]ServicePort>"),
        "{explain}"
    );
    assert!(explain.contains("targetPort"), "{explain}");
}

/// kubectl's generator subcommands use typed clients, which send protobuf bodies.
#[actix_web::test]
async fn generator_commands_send_protobuf() {
    let (_sim, k) = start().await;
    let out = k.ok(&["create", "namespace", "gen"]).await;
    assert_eq!(out.trim(), "namespace/gen created");
    for args in [
        &["clusterip", "web", "--tcp=80:8080", "--tcp=443:8443"][..],
        &["nodeport", "np", "--tcp=80:8080", "--node-port=30123"],
        &["loadbalancer", "lb", "--tcp=80"],
        &["externalname", "ext", "--external-name", "db.example.com"],
        &["clusterip", "headless", "--clusterip=None"],
    ] {
        let mut cmd = vec!["create", "service"];
        cmd.extend_from_slice(args);
        cmd.extend_from_slice(&["-n", "gen"]);
        let out = k.ok(&cmd).await;
        assert_eq!(out.trim(), format!("service/{} created", args[1]));
    }
    let out = k.ok(&["get", "svc", "-n", "gen", "-o", "wide"]).await;
    let web = row(&out, 0, "web");
    assert_eq!(web[1], "ClusterIP");
    assert_eq!(web[4], "80/TCP,443/TCP");
    assert_eq!(web[6], "app=web");
    assert_eq!(row(&out, 0, "np")[4], "80:30123/TCP");
    assert_eq!(row(&out, 0, "lb")[3], "<pending>");
    assert_eq!(row(&out, 0, "ext")[3], "db.example.com");
    assert_eq!(row(&out, 0, "headless")[2], "None");

    let web = json(
        &k.ok(&["get", "svc", "web", "-n", "gen", "-o", "json"])
            .await,
    );
    assert_eq!(web["spec"]["ports"][1]["name"], "443-8443");
    assert_eq!(web["spec"]["ports"][1]["targetPort"], 8443);
    assert_eq!(web["metadata"]["labels"]["app"], "web");
    let ns = json(&k.ok(&["get", "ns", "gen", "-o", "json"]).await);
    assert_eq!(ns["status"]["phase"], "Active");
}

/// `--dry-run=server` and `kubectl diff` ask the server to change nothing.
#[actix_web::test]
async fn server_dry_run_and_diff_change_nothing() {
    let (_sim, k) = start().await;
    let file = k.write_file("api.yaml", API_V1);
    let out = k
        .ok(&["create", "-f", file.to_str().unwrap(), "--dry-run=server"])
        .await;
    assert_eq!(out.trim(), "service/api created (server dry run)");
    k.fails(&["get", "svc", "api", "-n", "shop"]).await;

    let out = k
        .ok(&["delete", "svc", "web", "-n", "shop", "--dry-run=server"])
        .await;
    assert_eq!(out.trim(), r#"service "web" deleted (server dry run)"#);
    k.ok(&["get", "svc", "web", "-n", "shop"]).await;

    k.ok(&["apply", "-f", file.to_str().unwrap()]).await;
    let changed = k.write_file("changed.yaml", &API_V1.replace("8080", "9090"));
    // kubectl diff exits 1 when there are differences.
    let out = k.run(&["diff", "-f", changed.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let diff = String::from_utf8_lossy(&out.stdout);
    assert!(
        diff.contains("-    targetPort: 8080") && diff.contains("+    targetPort: 9090"),
        "{diff}"
    );
    let port = k
        .ok(&[
            "get",
            "svc",
            "api",
            "-n",
            "shop",
            "-o",
            "jsonpath={.spec.ports[0].targetPort}",
        ])
        .await;
    assert_eq!(port, "8080");
}

/// `kubectl edit` (GET, the user's editor, then a patch).
#[actix_web::test]
async fn edit_with_an_editor() {
    let (_sim, k) = start().await;
    let out = k
        .run_with_env(
            &["edit", "svc", "web", "-n", "shop"],
            &[("EDITOR", "sed -i s/tier:\\ frontend/tier:\\ edited/")],
        )
        .await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "service/web edited"
    );
    let svc = json(
        &k.ok(&["get", "svc", "web", "-n", "shop", "-o", "json"])
            .await,
    );
    assert_eq!(svc["spec"]["selector"]["tier"], "edited");
    assert_eq!(svc["spec"]["selector"]["app"], "web");
}
