//! Backstage's Kubernetes backend API (SPEC §10): `POST {base}/services/{id}`,
//! `POST {base}/resources/workloads/query` and `POST {base}/resources/custom/query` against
//! simulated clusters started in-process (one seed: an entity `web` with its Deployment,
//! ReplicaSet, Pods, Service, ConfigMaps and custom resources, beside unrelated objects),
//! with a recording fake Backstage catalog for entity refs. Failing clusters, the body's
//! provider tokens (and that they never reach the logs), the entity annotations, the service
//! locators, duplicate names, the read cache and the YAML config keys.

use crate::common::{cluster, http, settings, settings_with, spawn_app, KubeplexProcess};
use crate::common::{Recorded, Reply, Upstream};
use kubeplex::app::RunningApp;
use kubeplex::config::{load_with_env, tree::Env, CustomResourceRef, ServiceLocator, Source};
use kubeplex::sim::config::{SeedSource, SimClusterConfig, SimToken};
use kubeplex::sim::kinds::CustomType;
use kubeplex::sim::SimServer;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The objects of every simulated cluster here. The entity `web` (label
/// `backstage.io/kubernetes-id: web`): Deployment `web` (2 replicas, so a ReplicaSet and two
/// Pods made by the simulator), Service `web`, ConfigMaps `shop/web-config` and
/// `elsewhere/web-elsewhere`, Gadget `web-gadget`, Widget `web-widget`. Not the entity's:
/// Deployment and Service `other` (id `other`), ConfigMap `web-flags` (only `app: web`),
/// ConfigMap `plain`, Gadget `other-gadget`, the simulator's `toolbox` pods.
pub(crate) const SEED: &str = r#"
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: shop}}
- {apiVersion: v1, kind: Namespace, metadata: {name: elsewhere}}
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: web
    namespace: shop
    labels: {app: web, backstage.io/kubernetes-id: web}
  spec:
    replicas: 2
    selector: {matchLabels: {app: web}}
    template:
      metadata:
        labels: {app: web, backstage.io/kubernetes-id: web}
      spec:
        containers:
        - name: web
          image: registry.example.com/shop/web:1.0
          ports: [{containerPort: 8080}]
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: other
    namespace: shop
    labels: {app: other, backstage.io/kubernetes-id: other}
  spec:
    replicas: 1
    selector: {matchLabels: {app: other}}
    template:
      metadata:
        labels: {app: other, backstage.io/kubernetes-id: other}
      spec:
        containers:
        - name: other
          image: registry.example.com/shop/other:1.0
- apiVersion: v1
  kind: Service
  metadata:
    name: web
    namespace: shop
    labels: {app: web, backstage.io/kubernetes-id: web}
  spec:
    selector: {app: web}
    ports: [{port: 80, targetPort: 8080}]
- apiVersion: v1
  kind: Service
  metadata:
    name: other
    namespace: shop
    labels: {app: other, backstage.io/kubernetes-id: other}
  spec:
    selector: {app: other}
    ports: [{port: 80}]
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: web-config
    namespace: shop
    labels: {backstage.io/kubernetes-id: web}
  data: {LOG_LEVEL: info}
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: web-flags
    namespace: shop
    labels: {app: web}
  data: {FLAGS: new-checkout}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: plain, namespace: shop}
  data: {x: y}
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: web-elsewhere
    namespace: elsewhere
    labels: {app: web, backstage.io/kubernetes-id: web}
  data: {a: b}
- apiVersion: tools.example.org/v1alpha1
  kind: Gadget
  metadata:
    name: web-gadget
    namespace: shop
    labels: {backstage.io/kubernetes-id: web}
  spec: {size: 3}
- apiVersion: tools.example.org/v1alpha1
  kind: Gadget
  metadata:
    name: other-gadget
    namespace: shop
    labels: {backstage.io/kubernetes-id: other}
  spec: {size: 1}
- apiVersion: tools.example.org/v1
  kind: Widget
  metadata:
    name: web-widget
    namespace: shop
    labels: {backstage.io/kubernetes-id: web}
  spec: {color: blue}
"#;

/// Backstage's default object types, in its order.
pub(crate) const DEFAULT_TYPES: [&str; 13] = [
    "pods",
    "services",
    "configmaps",
    "limitranges",
    "resourcequotas",
    "deployments",
    "replicasets",
    "horizontalpodautoscalers",
    "jobs",
    "cronjobs",
    "ingresses",
    "statefulsets",
    "daemonsets",
];

/// The cluster-wide paths of [`DEFAULT_TYPES`], as Backstage's `resourcePath`s.
const DEFAULT_PATHS: [&str; 13] = [
    "/api/v1/pods",
    "/api/v1/services",
    "/api/v1/configmaps",
    "/api/v1/limitranges",
    "/api/v1/resourcequotas",
    "/apis/apps/v1/deployments",
    "/apis/apps/v1/replicasets",
    "/apis/autoscaling/v2/horizontalpodautoscalers",
    "/apis/batch/v1/jobs",
    "/apis/batch/v1/cronjobs",
    "/apis/networking.k8s.io/v1/ingresses",
    "/apis/apps/v1/statefulsets",
    "/apis/apps/v1/daemonsets",
];

/// What one services poll of the seed's `web` costs a cluster with no cache: the 13 lists,
/// then the metrics and the pods of `shop` (the only namespace with the entity's pods).
const POLL_REQUESTS: u64 = 15;

fn custom_type(group: &str, version: &str, kind: &str, plural: &str) -> CustomType {
    CustomType {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        plural: plural.into(),
        singular: None,
        namespaced: true,
        short_names: vec![],
        categories: vec![],
    }
}

/// A simulated cluster with [`SEED`], the Gadget and Widget types, accepting `tokens`
/// (none: anonymous).
pub(crate) fn sim_config(name: &str, tokens: &[&str]) -> SimClusterConfig {
    let mut cfg = SimClusterConfig::new(
        name,
        Some(SeedSource::Text {
            name: format!("{name} seed"),
            text: SEED.into(),
        }),
        tokens.iter().copied(),
    );
    cfg.custom_types = vec![
        custom_type("tools.example.org", "v1alpha1", "Gadget", "gadgets"),
        custom_type("tools.example.org", "v1", "Widget", "widgets"),
    ];
    cfg
}

pub(crate) async fn start(cfg: &SimClusterConfig) -> SimServer {
    kubeplex::sim::spawn("127.0.0.1:0", cfg)
        .await
        .expect("simulated cluster starts")
}

async fn sim(name: &str) -> SimServer {
    start(&sim_config(name, &[])).await
}

/// The URL of a simulated cluster, without the trailing slash.
pub(crate) fn url_of(sim: &SimServer) -> String {
    sim.url().as_str().trim_end_matches('/').to_string()
}

/// A URL where nothing listens (a port bound and released).
fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

/// A Component entity `name` in namespace `default` with `annotations`.
pub(crate) fn entity(name: &str, annotations: Value) -> Value {
    json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name, "namespace": "default", "annotations": annotations},
        "spec": {"type": "service", "owner": "team-a", "lifecycle": "production"},
    })
}

/// POSTs `body` to `{base}{path}` (with `authorization` when given); status and JSON body.
async fn post_to(
    base: &str,
    path: &str,
    body: &Value,
    authorization: Option<&str>,
) -> (u16, Value) {
    let mut req = http()
        .post(format!("{base}/api/kubernetes{path}"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status} {text:?}: {e}"));
    (status, v)
}

async fn post(app: &RunningApp, path: &str, body: &Value) -> (u16, Value) {
    post_to(&app.url(), path, body, None).await
}

/// `POST /services/{name}` with `{entity, auth}`; the answer must be a 200.
async fn services(app: &RunningApp, entity: &Value, auth: Value) -> Value {
    let name = entity["metadata"]["name"].as_str().unwrap();
    let (status, body) = post(
        app,
        &format!("/services/{name}"),
        &json!({"entity": entity, "auth": auth}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The `cluster.key`s of the answer's items, in order.
fn keys(answer: &Value) -> Vec<String> {
    answer["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {answer}"))
        .iter()
        .map(|i| i["cluster"]["key"].as_str().unwrap().to_string())
        .collect()
}

/// The item of cluster `key`.
fn item<'a>(answer: &'a Value, key: &str) -> &'a Value {
    answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["cluster"]["key"] == key)
        .unwrap_or_else(|| panic!("no item for {key}: {answer}"))
}

/// The `type`s of an item's resources, in order.
fn types(item: &Value) -> Vec<String> {
    item["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap().to_string())
        .collect()
}

/// The resources of type `ty` of an item.
fn resources<'a>(item: &'a Value, ty: &str) -> &'a Vec<Value> {
    item["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == ty)
        .unwrap_or_else(|| panic!("no {ty} in {item}"))["resources"]
        .as_array()
        .unwrap()
}

/// `namespace/name` of the resources of type `ty`, sorted.
fn names(item: &Value, ty: &str) -> Vec<String> {
    let mut out: Vec<String> = resources(item, ty)
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["metadata"]["namespace"].as_str().unwrap_or(""),
                r["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    out.sort();
    out
}

/// Asserts an item holds exactly the seed's `web` objects (found cluster-wide by its id).
fn assert_web_objects(item: &Value) {
    assert_eq!(types(item), DEFAULT_TYPES, "{item}");
    let pods = names(item, "pods");
    assert_eq!(pods.len(), 2, "{pods:?}");
    assert!(pods.iter().all(|p| p.starts_with("shop/web-")), "{pods:?}");
    for pod in resources(item, "pods") {
        assert_eq!(
            pod["metadata"]["labels"]["backstage.io/kubernetes-id"],
            "web"
        );
        assert_eq!(pod["spec"]["containers"][0]["name"], "web");
    }
    assert_eq!(names(item, "services"), ["shop/web"]);
    assert_eq!(
        names(item, "configmaps"),
        ["elsewhere/web-elsewhere", "shop/web-config"]
    );
    assert_eq!(names(item, "deployments"), ["shop/web"]);
    let rs = names(item, "replicasets");
    assert_eq!(rs.len(), 1, "{rs:?}");
    assert!(rs[0].starts_with("shop/web-"), "{rs:?}");
    for ty in [
        "limitranges",
        "resourcequotas",
        "horizontalpodautoscalers",
        "jobs",
        "cronjobs",
        "ingresses",
        "statefulsets",
        "daemonsets",
    ] {
        assert_eq!(resources(item, ty), &Vec::<Value>::new(), "{ty}");
    }
    assert_eq!(item["errors"], json!([]), "{item}");
}

/// Asserts an item's `podMetrics` are those of its two pods, in Backstage's shape: CPU
/// figures numbers (cores), memory figures strings (bytes, a `BigInt`).
fn assert_pod_metrics(item: &Value) {
    let metrics = item["podMetrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 2, "{item}");
    let mut pods: Vec<&str> = resources(item, "pods")
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    let mut measured: Vec<&str> = metrics
        .iter()
        .map(|m| m["pod"]["metadata"]["name"].as_str().unwrap())
        .collect();
    pods.sort();
    measured.sort();
    assert_eq!(pods, measured);
    for m in metrics {
        let cpu = m["cpu"]["currentUsage"]
            .as_f64()
            .unwrap_or_else(|| panic!("{m}"));
        // The simulator's CPU lies between 1m and 250m.
        assert!((0.001..=0.25).contains(&cpu), "{cpu}");
        let memory: u64 = m["memory"]["currentUsage"]
            .as_str()
            .unwrap_or_else(|| panic!("memory as a string: {m}"))
            .parse()
            .unwrap();
        // Between 8Mi and 512Mi.
        assert!((8 << 20..512 << 20).contains(&memory), "{memory}");
        // The simulator's pods declare no requests or limits.
        for usage in [&m["cpu"], &m["memory"]] {
            assert_eq!(usage["requestTotal"], 0, "{m}");
            assert_eq!(usage["limitTotal"], 0, "{m}");
        }
        let containers = m["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 1, "{m}");
        assert_eq!(containers[0]["container"], "web");
        assert_eq!(
            containers[0]["cpuUsage"]["currentUsage"].as_f64(),
            Some(cpu)
        );
        assert_eq!(
            containers[0]["memoryUsage"]["currentUsage"],
            memory.to_string()
        );
    }
}

// ---------------------------------------------------------------------------------------
// 1. The services route over healthy clusters
// ---------------------------------------------------------------------------------------

#[actix_web::test]
async fn services_lists_the_entitys_objects_in_every_cluster_in_key_order() {
    // The first cluster in key order answers last.
    let mut slow = sim_config("zeta", &[]);
    slow.faults.latency = Some(Duration::from_millis(300));
    let zeta = start(&slow).await;
    let alpha = sim("alpha").await;
    let mut z = cluster("zeta", &url_of(&zeta));
    z.title = Some("Zeta (EU)".into());
    z.dashboard_url = Some("https://dashboard.example.com/zeta".into());
    z.dashboard_app = Some("standard".into());
    let app = spawn_app(settings(vec![z, cluster("alpha", &url_of(&alpha))])).await;

    let answer = services(&app, &entity("web", json!({})), json!({})).await;
    assert_eq!(keys(&answer), ["config:zeta", "config:alpha"]);
    let zi = item(&answer, "config:zeta");
    assert_eq!(
        zi["cluster"],
        json!({
            "name": "zeta",
            "key": "config:zeta",
            "title": "Zeta (EU)",
            "dashboardUrl": "https://dashboard.example.com/zeta",
            "dashboardApp": "standard",
        })
    );
    let ai = item(&answer, "config:alpha");
    assert_eq!(
        ai["cluster"],
        json!({"name": "alpha", "key": "config:alpha"})
    );
    for it in [zi, ai] {
        assert_web_objects(it);
        assert_pod_metrics(it);
    }
    // Nothing of `other` or unlabelled objects leaked in.
    let text = answer.to_string();
    for stranger in ["\"other\"", "web-flags", "\"plain\"", "toolbox", "gadget"] {
        assert!(!text.contains(stranger), "{stranger} in {text}");
    }
}

#[actix_web::test]
async fn an_entity_found_nowhere_gives_no_items() {
    let one = sim("one").await;
    let app = spawn_app(settings(vec![cluster("one", &url_of(&one))])).await;
    let answer = services(&app, &entity("nobody", json!({})), json!({})).await;
    assert_eq!(answer, json!({"items": []}));
}

#[actix_web::test]
async fn the_services_route_takes_post_with_one_id_segment_only() {
    let one = sim("one").await;
    let app = spawn_app(settings(vec![cluster("one", &url_of(&one))])).await;
    let base = format!("{}/api/kubernetes", app.url());
    // Another method: 405 with `Allow: POST`, as for any route answering POST only.
    let r = http()
        .get(format!("{base}/services/cart"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    // No id, or more than one segment: no route, the proxy's 404 `Status`.
    for path in ["/services", "/services/", "/services/cart/extra"] {
        let r = http()
            .post(format!("{base}{path}"))
            .json(&json!({"entity": entity("cart", json!({}))}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["kind"], "Status", "{path}: {v}");
        assert_eq!(v["reason"], "NotFound", "{path}: {v}");
    }
    // One segment with POST is the route.
    let answer = services(&app, &entity("cart", json!({})), json!({})).await;
    assert!(answer["items"].is_array(), "{answer}");
}

// ---------------------------------------------------------------------------------------
// 2. Clusters that fail
// ---------------------------------------------------------------------------------------

#[actix_web::test]
async fn failing_clusters_are_error_entries_beside_the_answers_of_the_others() {
    const TIMEOUT: Duration = Duration::from_secs(3);
    const LATENCY: Duration = Duration::from_secs(60);
    let ok = sim("ok").await;
    let refusing = start(&sim_config("refusing", &["the-right-token"])).await;
    let mut slow = sim_config("slow", &[]);
    slow.faults.latency = Some(LATENCY);
    let slow = start(&slow).await;
    let mut wrong = cluster("refusing", &url_of(&refusing));
    wrong.service_account_token = Some("wrong-sa-token".into());
    let mut s = settings(vec![
        cluster("ok", &url_of(&ok)),
        cluster("down", &closed_port_url()),
        wrong,
        cluster("slow", &url_of(&slow)),
    ]);
    s.aggregate.timeout = TIMEOUT;
    let app = spawn_app(s).await;

    let started = Instant::now();
    let answer = services(&app, &entity("web", json!({})), json!({})).await;
    let took = started.elapsed();
    assert!(
        took < LATENCY / 2,
        "the slow cluster held the answer: {took:?}"
    );
    assert!(
        took >= TIMEOUT,
        "answered before the slow cluster's timeout: {took:?}"
    );
    assert_eq!(
        keys(&answer),
        ["config:ok", "config:down", "config:refusing", "config:slow"]
    );

    let ok = item(&answer, "config:ok");
    assert_web_objects(ok);
    assert_pod_metrics(ok);

    let down = item(&answer, "config:down");
    assert_eq!(down["resources"], json!([]));
    assert_eq!(down["podMetrics"], json!([]));
    let errors = down["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{down}");
    assert_eq!(errors[0]["errorType"], "FETCH_ERROR");
    let message = errors[0]["message"].as_str().unwrap();
    assert!(message.contains("config:down"), "{message}");

    // Every list refused: one entry per list, with the path it went to.
    let refused = item(&answer, "config:refusing");
    assert_eq!(refused["resources"], json!([]));
    assert_eq!(refused["podMetrics"], json!([]));
    let expected: Vec<Value> = DEFAULT_PATHS
        .iter()
        .map(|p| json!({"errorType": "UNAUTHORIZED_ERROR", "statusCode": 401, "resourcePath": p}))
        .collect();
    assert_eq!(refused["errors"], Value::Array(expected));

    let slow_item = item(&answer, "config:slow");
    assert_eq!(slow_item["resources"], json!([]));
    let errors = slow_item["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{slow_item}");
    assert_eq!(errors[0]["errorType"], "FETCH_ERROR");
    let message = errors[0]["message"].as_str().unwrap();
    assert!(
        message.contains("config:slow") && message.contains("did not answer within 3s"),
        "{message}"
    );
    assert!(!answer.to_string().contains("wrong-sa-token"));
}

#[actix_web::test]
async fn a_cluster_path_prefix_is_part_of_the_resource_path() {
    // Backstage reports where the request went: the cluster URL's own path, then the list's.
    let refusing = Upstream::start(|_| Reply {
        status: 500,
        headers: vec![("content-type".into(), "application/json".into())],
        body: crate::common::Body::Bytes(br#"{"kind":"Status","code":500}"#.to_vec()),
    })
    .await;
    let app = spawn_app(settings(vec![cluster(
        "p",
        &format!("{}/k8s/east", refusing.url),
    )]))
    .await;
    let answer = services(&app, &entity("web", json!({})), json!({})).await;
    let errors = item(&answer, "config:p")["errors"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(errors.len(), 13, "{answer}");
    assert_eq!(
        errors[0],
        json!({"errorType": "SYSTEM_ERROR", "statusCode": 500, "resourcePath": "/k8s/east/api/v1/pods"})
    );
    let mut seen: Vec<String> = refusing.recorded().iter().map(|r| r.path.clone()).collect();
    seen.sort();
    let mut want: Vec<String> = DEFAULT_PATHS
        .iter()
        .map(|p| format!("/k8s/east{p}"))
        .collect();
    want.sort();
    assert_eq!(seen, want);
    // Each list carries the entity's selector, percent-encoded as Backstage encodes it.
    for r in refusing.recorded() {
        assert_eq!(
            r.query.as_deref(),
            Some("labelSelector=backstage.io%2Fkubernetes-id%3Dweb")
        );
    }
}

// ---------------------------------------------------------------------------------------
// 3. Provider tokens from the body
// ---------------------------------------------------------------------------------------

const OKTA_TOKEN: &str = "okta-canary-51c2e9";
const GOOGLE_TOKEN: &str = "google-canary-8d4e07";

#[actix_web::test]
async fn body_auth_tokens_are_used_per_cluster_and_never_logged() {
    let okta = start(&sim_config("okta", &[OKTA_TOKEN])).await;
    let gke = start(&sim_config("gke", &[GOOGLE_TOKEN])).await;
    // The real binary with a YAML config and JSON logs at the most verbose level.
    let kp = KubeplexProcess::spawn(
        &format!(
            "kubeplex:\n  server:\n    listen: 127.0.0.1:0\n    workers: 2\n\
             kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n\
             \x20       - name: okta-prod\n          url: {}\n          authProvider: oidc\n          oidcTokenProvider: okta\n\
             \x20       - name: gke-prod\n          url: {}\n          authProvider: google\n",
            url_of(&okta),
            url_of(&gke)
        ),
        "trace",
        &[],
    );
    let base = format!("http://{}", kp.addr);
    let web = entity("web", json!({}));
    let ask = |auth: Value| {
        let base = base.clone();
        let body = json!({"entity": web, "auth": auth});
        async move { post_to(&base, "/services/web", &body, None).await }
    };

    let (status, both) = ask(json!({"oidc": {"okta": OKTA_TOKEN}, "google": GOOGLE_TOKEN})).await;
    assert_eq!(status, 200, "{both}");
    assert_eq!(keys(&both), ["config:okta-prod", "config:gke-prod"]);
    assert_web_objects(item(&both, "config:okta-prod"));
    assert_web_objects(item(&both, "config:gke-prod"));

    // Without auth.google, the google cluster (no service-account token) is one entry.
    let (status, no_google) = ask(json!({"oidc": {"okta": OKTA_TOKEN}})).await;
    assert_eq!(status, 200, "{no_google}");
    assert_eq!(keys(&no_google), ["config:okta-prod", "config:gke-prod"]);
    assert_web_objects(item(&no_google, "config:okta-prod"));
    let gke_item = item(&no_google, "config:gke-prod");
    assert_eq!(gke_item["resources"], json!([]));
    assert_eq!(
        gke_item["errors"],
        json!([{"errorType": "FETCH_ERROR", "message": "Google token not found under auth.google in request body"}])
    );

    // Each token goes to its own cluster only: swapped, both are refused.
    let (status, swapped) =
        ask(json!({"oidc": {"okta": GOOGLE_TOKEN}, "google": OKTA_TOKEN})).await;
    assert_eq!(status, 200, "{swapped}");
    for key in ["config:okta-prod", "config:gke-prod"] {
        let errors = item(&swapped, key)["errors"].as_array().unwrap().clone();
        assert_eq!(errors.len(), 13, "{swapped}");
        assert!(errors
            .iter()
            .all(|e| e["errorType"] == "UNAUTHORIZED_ERROR"));
    }

    // No oidc token either: both are entries naming what is missing.
    let (status, none) = ask(json!({})).await;
    assert_eq!(status, 200, "{none}");
    assert_eq!(
        item(&none, "config:okta-prod")["errors"][0]["message"],
        "Auth token not found under oidc.okta in request body"
    );

    for answer in [&both, &no_google, &swapped, &none] {
        let text = answer.to_string();
        assert!(!text.contains(OKTA_TOKEN) && !text.contains(GOOGLE_TOKEN));
    }
    // The requests were logged (the audit line of each), the tokens never.
    assert!(
        crate::common::eventually(Duration::from_secs(10), || {
            kp.json_logs("kubeplex::audit")
                .iter()
                .filter(|l| l["fields"]["message"] == "backstage")
                .count()
                >= 4
        })
        .await,
        "no audit lines for the four requests"
    );
    let logs = kp.logs.lock().unwrap().clone();
    assert!(logs.len() > 10, "{logs:?}");
    for line in &logs {
        assert!(
            !line.contains(OKTA_TOKEN) && !line.contains(GOOGLE_TOKEN),
            "a token in the log: {line}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// 4. The entity's annotations and the service locators
// ---------------------------------------------------------------------------------------

#[actix_web::test]
async fn the_label_selector_annotation_replaces_the_id() {
    let one = sim("one").await;
    let app = spawn_app(settings(vec![cluster("one", &url_of(&one))])).await;
    let e = entity(
        "storefront",
        json!({"backstage.io/kubernetes-label-selector": "app=web"}),
    );
    let answer = services(&app, &e, json!({})).await;
    let it = item(&answer, "config:one");
    assert_eq!(names(it, "services"), ["shop/web"]);
    assert_eq!(
        names(it, "configmaps"),
        ["elsewhere/web-elsewhere", "shop/web-flags"]
    );
    assert_eq!(names(it, "deployments"), ["shop/web"]);
    assert_eq!(names(it, "pods").len(), 2);
    assert_eq!(it["podMetrics"].as_array().unwrap().len(), 2);
}

#[actix_web::test]
async fn the_namespace_annotation_keeps_every_request_in_that_namespace() {
    // The cluster's token may touch `shop` only: a cluster-wide list would be refused.
    let mut cfg = sim_config("shop-only", &[]);
    cfg.tokens = vec![SimToken {
        token: "shop-token".into(),
        namespaces: Some(vec!["shop".into()]),
        verbs: None,
    }];
    let one = start(&cfg).await;
    let mut c = cluster("one", &url_of(&one));
    c.service_account_token = Some("shop-token".into());
    let mut s = settings(vec![c]);
    s.aggregate.cache_ttl = Duration::ZERO;
    let app = spawn_app(s).await;

    let before = one.requests();
    let e = entity("web", json!({"backstage.io/kubernetes-namespace": "shop"}));
    let answer = services(&app, &e, json!({})).await;
    assert_eq!(one.requests() - before, POLL_REQUESTS);
    let it = item(&answer, "config:one");
    assert_eq!(
        it["errors"],
        json!([]),
        "a request left the namespace: {it}"
    );
    assert_eq!(types(it), DEFAULT_TYPES);
    assert_eq!(names(it, "configmaps"), ["shop/web-config"]);
    assert_eq!(names(it, "services"), ["shop/web"]);
    assert_eq!(names(it, "pods").len(), 2);
    assert_pod_metrics(it);

    // Without the annotation the same lists are cluster-wide, and this token may not.
    let answer = services(&app, &entity("web", json!({})), json!({})).await;
    let errors = item(&answer, "config:one")["errors"]
        .as_array()
        .unwrap()
        .clone();
    let paths: Vec<&str> = errors
        .iter()
        .map(|e| e["resourcePath"].as_str().unwrap())
        .collect();
    assert_eq!(paths, DEFAULT_PATHS);
    assert!(errors
        .iter()
        .all(|e| e["errorType"] == "UNKNOWN_ERROR" && e["statusCode"] == 403));
}

#[actix_web::test]
async fn the_id_annotation_overrides_the_entity_name() {
    let one = sim("one").await;
    let app = spawn_app(settings(vec![cluster("one", &url_of(&one))])).await;
    let e = entity(
        "storefront-web",
        json!({"backstage.io/kubernetes-id": "web"}),
    );
    let answer = services(&app, &e, json!({})).await;
    assert_web_objects(item(&answer, "config:one"));

    let e = entity("web", json!({"backstage.io/kubernetes-id": "other"}));
    let answer = services(&app, &e, json!({})).await;
    let it = item(&answer, "config:one");
    assert_eq!(names(it, "deployments"), ["shop/other"]);
    assert_eq!(names(it, "services"), ["shop/other"]);
    assert_eq!(names(it, "configmaps"), Vec::<String>::new());
    let pods = names(it, "pods");
    assert_eq!(pods.len(), 1);
    assert!(pods[0].starts_with("shop/other-"), "{pods:?}");
    assert_eq!(it["podMetrics"][0]["containers"][0]["container"], "other");
}

#[actix_web::test]
async fn single_tenant_asks_only_the_annotated_cluster() {
    let one = sim("one").await;
    let two = sim("two").await;
    let mut s = settings(vec![
        cluster("one", &url_of(&one)),
        cluster("two", &url_of(&two)),
    ]);
    s.backstage.service_locator = ServiceLocator::SingleTenant;
    s.aggregate.cache_ttl = Duration::ZERO;
    let app = spawn_app(s).await;

    let before = [one.requests(), two.requests()];
    let e = entity("web", json!({"backstage.io/kubernetes-cluster": "two"}));
    let answer = services(&app, &e, json!({})).await;
    assert_eq!(keys(&answer), ["config:two"]);
    assert_web_objects(item(&answer, "config:two"));
    assert_eq!(one.requests(), before[0], "cluster one was asked");
    assert_eq!(two.requests(), before[1] + POLL_REQUESTS);

    // A key names a cluster too.
    let e = entity(
        "web",
        json!({"backstage.io/kubernetes-cluster": "config:one"}),
    );
    assert_eq!(keys(&services(&app, &e, json!({})).await), ["config:one"]);
    // Without the annotation, every cluster.
    let answer = services(&app, &entity("web", json!({})), json!({})).await;
    assert_eq!(keys(&answer), ["config:one", "config:two"]);
}

#[actix_web::test]
async fn catalog_relation_asks_the_clusters_the_entity_depends_on() {
    let one = sim("one").await;
    let two = sim("two").await;
    let mut s = settings(vec![
        cluster("one", &url_of(&one)),
        cluster("two", &url_of(&two)),
    ]);
    s.backstage.service_locator = ServiceLocator::CatalogRelation;
    let app = spawn_app(s).await;
    let mut e = entity("web", json!({}));
    e["relations"] = json!([
        {"type": "ownedBy", "targetRef": "resource:default/one"},
        {"type": "dependsOn", "targetRef": "resource:default/two"},
    ]);
    let answer = services(&app, &e, json!({})).await;
    assert_eq!(keys(&answer), ["config:two"]);
    assert_web_objects(item(&answer, "config:two"));
}

#[actix_web::test]
async fn clusters_sharing_a_name_all_appear_with_their_keys() {
    let east = sim("prod-east").await;
    let west = sim("prod-west").await;
    let mut s = settings_with(vec![
        ("east", vec![cluster("prod", &url_of(&east))]),
        ("west", vec![cluster("prod", &url_of(&west))]),
    ]);
    s.aggregate.cache_ttl = Duration::ZERO;
    let app = spawn_app(s).await;
    let before = [east.requests(), west.requests()];
    let answer = services(&app, &entity("web", json!({})), json!({})).await;
    assert_eq!(keys(&answer), ["east:prod", "west:prod"]);
    for key in ["east:prod", "west:prod"] {
        let it = item(&answer, key);
        assert_eq!(it["cluster"]["name"], "prod");
        assert_web_objects(it);
    }
    // Each was really asked (not one of them twice).
    assert_eq!(east.requests(), before[0] + POLL_REQUESTS);
    assert_eq!(west.requests(), before[1] + POLL_REQUESTS);
}

// ---------------------------------------------------------------------------------------
// 5. Entity refs through the catalog; custom resources; input errors
// ---------------------------------------------------------------------------------------

/// A fake Backstage catalog at `{url}/api/catalog` that knows `component:default/web`
/// (as `catalog_entity`) and nothing else; it matches kind, namespace and name ignoring
/// case, as Backstage's catalog does (a posted entity's `kind: Component` is asked as is).
pub(crate) async fn catalog(catalog_entity: Value) -> Upstream {
    let body = catalog_entity.to_string();
    Upstream::start(move |r: &Recorded| {
        if r.method == "GET"
            && r.path.to_lowercase() == "/api/catalog/entities/by-name/component/default/web"
        {
            Reply::json(&body)
        } else {
            Reply {
                status: 404,
                headers: vec![("content-type".into(), "application/json".into())],
                body: crate::common::Body::Bytes(
                    br#"{"error":{"name":"NotFoundError","message":"not found"}}"#.to_vec(),
                ),
            }
        }
    })
    .await
}

pub(crate) fn gadgets() -> Value {
    json!({"group": "tools.example.org", "apiVersion": "v1alpha1", "plural": "gadgets"})
}

/// One sim behind kubeplex with the fake catalog, `kubernetes.customResources: [widgets]`.
async fn with_catalog(catalog_entity: Value) -> (RunningApp, Upstream, SimServer) {
    let cat = catalog(catalog_entity).await;
    let one = sim("one").await;
    let mut s = settings(vec![cluster("one", &url_of(&one))]);
    s.backstage.catalog_url = Some(format!("{}/api/catalog", cat.url));
    s.backstage.custom_resources = vec![CustomResourceRef {
        group: "tools.example.org".into(),
        api_version: "v1".into(),
        plural: "widgets".into(),
    }];
    (spawn_app(s).await, cat, one)
}

#[actix_web::test]
async fn workloads_query_reads_the_entity_from_the_catalog_with_the_callers_token() {
    let (app, cat, _one) = with_catalog(entity("web", json!({}))).await;
    let (status, answer) = post_to(
        &app.url(),
        "/resources/workloads/query",
        &json!({"entityRef": "component:default/web", "auth": {}}),
        Some("Bearer portal-token-1"),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let r = cat.only();
    assert_eq!(
        r.path,
        "/api/catalog/entities/by-name/component/default/web"
    );
    assert_eq!(r.one("authorization"), Some("Bearer portal-token-1"));
    let it = item(&answer, "config:one");
    // The configured custom resources come after the object types.
    let mut want: Vec<&str> = DEFAULT_TYPES.to_vec();
    want.push("customresources");
    assert_eq!(types(it), want);
    let widgets = resources(it, "customresources");
    assert_eq!(widgets.len(), 1, "{it}");
    assert_eq!(widgets[0]["kind"], "Widget");
    assert_eq!(widgets[0]["metadata"]["name"], "web-widget");
    assert_eq!(names(it, "deployments"), ["shop/web"]);
    assert_eq!(it["podMetrics"].as_array().unwrap().len(), 2);

    // An entity the catalog does not have.
    let (status, err) = post(
        &app,
        "/resources/workloads/query",
        &json!({"entityRef": "component:default/nope", "auth": {}}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        err,
        json!({
            "error": {"name": "InputError", "message": "Entity ref missing, component:default/nope"},
            "request": {"method": "POST", "url": "/resources/workloads/query"},
            "response": {"statusCode": 400},
        })
    );
}

#[actix_web::test]
async fn the_catalogs_entity_wins_over_a_posted_one() {
    // The catalog's `web` is limited to namespace `shop`; the posted one says nothing.
    let (app, cat, _one) = with_catalog(entity(
        "web",
        json!({"backstage.io/kubernetes-namespace": "shop"}),
    ))
    .await;
    let answer = services(&app, &entity("web", json!({})), json!({})).await;
    assert_eq!(
        cat.only().path.to_lowercase(),
        "/api/catalog/entities/by-name/component/default/web"
    );
    assert_eq!(
        names(item(&answer, "config:one"), "configmaps"),
        ["shop/web-config"]
    );
    // A posted entity the catalog does not have is refused.
    let (status, err) = post(
        &app,
        "/services/nope",
        &json!({"entity": entity("nope", json!({})), "auth": {}}),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        err,
        json!({
            "error": {"name": "NotAllowedError", "message": "Entity not found, component:default/nope"},
            "request": {"method": "POST", "url": "/services/nope"},
            "response": {"statusCode": 403},
        })
    );
}

#[actix_web::test]
async fn custom_query_lists_the_requested_custom_resources_only() {
    let (app, cat, _one) = with_catalog(entity("web", json!({}))).await;
    let (status, answer) = post_to(
        &app.url(),
        "/resources/custom/query",
        &json!({"entityRef": "component:default/web", "auth": {}, "customResources": [gadgets()]}),
        Some("Bearer portal-token-2"),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        cat.only().one("authorization"),
        Some("Bearer portal-token-2")
    );
    let it = item(&answer, "config:one");
    // The request's custom resources replace the configured widgets; no object types.
    assert_eq!(types(it), ["customresources"]);
    let found = resources(it, "customresources");
    assert_eq!(found.len(), 1, "{it}");
    assert_eq!(found[0]["kind"], "Gadget");
    assert_eq!(found[0]["apiVersion"], "tools.example.org/v1alpha1");
    assert_eq!(found[0]["metadata"]["name"], "web-gadget");
    assert_eq!(found[0]["spec"]["size"], 3);
    assert_eq!(it["podMetrics"], json!([]));
    assert_eq!(it["errors"], json!([]));

    // A custom resource the cluster does not serve is a NOT_FOUND entry.
    let (status, answer) = post(
        &app,
        "/resources/custom/query",
        &json!({"entityRef": "component:default/web", "customResources": [
            gadgets(),
            {"group": "argoproj.io", "apiVersion": "v1alpha1", "plural": "rollouts"},
        ]}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let it = item(&answer, "config:one");
    assert_eq!(types(it), ["customresources"]);
    assert_eq!(
        it["errors"],
        json!([{"errorType": "NOT_FOUND", "statusCode": 404, "resourcePath": "/apis/argoproj.io/v1alpha1/rollouts"}])
    );
}

#[actix_web::test]
async fn bad_bodies_are_backstage_input_errors() {
    let (app, _cat, _one) = with_catalog(entity("web", json!({}))).await;
    let web = "component:default/web";
    let cases: Vec<(&str, Value, String)> = vec![
        ("/resources/custom/query", json!({"customResources": [gadgets()]}), "entity is a required field".into()),
        ("/resources/workloads/query", json!({"auth": {}}), "entity is a required field".into()),
        (
            "/resources/custom/query",
            json!({"entityRef": "web", "customResources": [gadgets()]}),
            "Invalid entity ref, Error: Entity reference \"web\" had missing or empty kind (e.g. did not start with \"component:\" or similar)".into(),
        ),
        (
            "/resources/workloads/query",
            json!({"entityRef": "component:"}),
            "Invalid entity ref, TypeError: Entity reference \"component:\" was not on the form [<kind>:][<namespace>/]<name>".into(),
        ),
        ("/resources/workloads/query", json!({"entityRef": 7}), "entity query must be a string".into()),
        ("/resources/custom/query", json!({"entityRef": web}), "customResources is a required field".into()),
        ("/resources/custom/query", json!({"entityRef": web, "customResources": {"plural": "gadgets"}}), "customResources must be an array".into()),
        ("/resources/custom/query", json!({"entityRef": web, "customResources": []}), "at least 1 customResource is required".into()),
        ("/services/web", json!({"auth": {}}), "entity is a required field".into()),
    ];
    for (path, body, message) in cases {
        let (status, err) = post(&app, path, &body).await;
        assert_eq!(status, 400, "{path} {body}: {err}");
        assert_eq!(
            err,
            json!({
                "error": {"name": "InputError", "message": message},
                "request": {"method": "POST", "url": path},
                "response": {"statusCode": 400},
            }),
            "{path} {body}"
        );
    }
    // A body that is not JSON at all.
    let res = http()
        .post(format!(
            "{}/api/kubernetes/resources/custom/query",
            app.url()
        ))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["name"], "InputError");
    assert_eq!(err["request"]["url"], "/resources/custom/query");
}

#[actix_web::test]
async fn entity_refs_without_a_catalog_are_refused() {
    let one = sim("one").await;
    let app = spawn_app(settings(vec![cluster("one", &url_of(&one))])).await;
    let (status, err) = post(
        &app,
        "/resources/workloads/query",
        &json!({"entityRef": "component:default/web"}),
    )
    .await;
    assert_eq!(status, 503, "{err}");
    assert_eq!(err["request"]["url"], "/resources/workloads/query");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("kubeplex.backstage.catalogUrl"),
        "{err}"
    );
}

#[actix_web::test]
async fn catalog_failures_are_backstage_errors() {
    let one = sim("one").await;
    // A catalog that refuses the caller, and one that is not there.
    let refusing = Upstream::start(|_| Reply {
        status: 401,
        headers: vec![("content-type".into(), "application/json".into())],
        body: crate::common::Body::Bytes(br#"{"error":{"name":"AuthenticationError"}}"#.to_vec()),
    })
    .await;
    for (catalog_url, status, name, message) in [
        (
            format!("{}/api/catalog", refusing.url),
            401,
            "AuthenticationError",
            "the catalog answered 401 for component:default/web",
        ),
        (
            format!("{}/api/catalog", closed_port_url()),
            503,
            "ServiceUnavailableError",
            "the catalog did not answer",
        ),
    ] {
        let mut s = settings(vec![cluster("one", &url_of(&one))]);
        s.backstage.catalog_url = Some(catalog_url);
        let app = spawn_app(s).await;
        let (got, err) = post_to(
            &app.url(),
            "/resources/workloads/query",
            &json!({"entityRef": "component:default/web"}),
            Some("Bearer portal-token-3"),
        )
        .await;
        assert_eq!(got, status, "{err}");
        assert_eq!(err["error"]["name"], name, "{err}");
        let text = err["error"]["message"].as_str().unwrap();
        assert!(text.starts_with(message), "{text}");
        assert!(!err.to_string().contains("portal-token-3"), "{err}");
        assert_eq!(err["request"]["url"], "/resources/workloads/query");
        assert_eq!(err["response"]["statusCode"], status);
    }
    assert_eq!(
        refusing.only().one("authorization"),
        Some("Bearer portal-token-3")
    );
}

/// A TCP forwarder to `target` (`http://host:port`) that counts the connections it takes:
/// its URL and the count.
async fn counting_forwarder(
    target: &str,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let target: std::net::SocketAddr = target.trim_start_matches("http://").parse().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    actix_web::rt::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            actix_web::rt::spawn(async move {
                if let Ok(mut out) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    });
    (format!("http://{addr}"), count)
}

#[actix_web::test]
async fn the_catalog_client_keeps_its_connection_across_entities() {
    // A catalog that knows every component (named after the ref), behind a forwarder that
    // counts connections; one worker, so one catalog client.
    let cat = Upstream::start(|r: &Recorded| {
        let name = r.path.rsplit('/').next().unwrap_or("");
        Reply::json(&entity(name, json!({})).to_string())
    })
    .await;
    let (url, connections) = counting_forwarder(&cat.url).await;
    let one = sim("one").await;
    let mut s = settings(vec![cluster("one", &url_of(&one))]);
    s.server.workers = Some(1);
    s.backstage.catalog_url = Some(format!("{url}/api/catalog"));
    let app = spawn_app(s).await;
    for name in ["web", "other", "web", "other", "nobody"] {
        let (status, answer) = post(
            &app,
            "/resources/workloads/query",
            &json!({"entityRef": format!("component:default/{name}")}),
        )
        .await;
        assert_eq!(status, 200, "{answer}");
    }
    assert_eq!(cat.recorded().len(), 5);
    // One connection for all five (two at most, should the catalog's keep-alive lapse on
    // a very busy machine); each entity used to get a client, and so a connection, of its
    // own.
    let n = connections.load(std::sync::atomic::Ordering::SeqCst);
    assert!(n <= 2, "{n} catalog connections for 5 requests");
}

// ---------------------------------------------------------------------------------------
// 6. The read cache
// ---------------------------------------------------------------------------------------

#[actix_web::test]
async fn repeated_polls_are_served_from_the_cache_keyed_by_the_body_token() {
    let one = start(&sim_config("one", &["g-token-1", "g-token-2"])).await;
    let mut c = cluster("gke", &url_of(&one));
    c.auth_provider = Some("google".into());
    let mut s = settings(vec![c]);
    s.aggregate.cache_ttl = Duration::from_secs(60);
    let app = spawn_app(s).await;
    let web = entity("web", json!({}));

    let before = one.requests();
    let first = services(&app, &web, json!({"google": "g-token-1"})).await;
    assert_web_objects(item(&first, "config:gke"));
    assert_eq!(one.requests(), before + POLL_REQUESTS);
    // The frontend's next poll, within the TTL: nothing reaches the cluster.
    let second = services(&app, &web, json!({"google": "g-token-1"})).await;
    assert_eq!(second, first);
    assert_eq!(one.requests(), before + POLL_REQUESTS);
    // Another token is another credential: asked again, never given the first one's lists.
    let other = services(&app, &web, json!({"google": "g-token-2"})).await;
    assert_web_objects(item(&other, "config:gke"));
    assert_eq!(one.requests(), before + 2 * POLL_REQUESTS);
    // A token the cluster refuses gets the refusals, not a kept answer.
    let refused = services(&app, &web, json!({"google": "g-token-3"})).await;
    let errors = item(&refused, "config:gke")["errors"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(errors, 13, "{refused}");
    // And the first token's lists are still kept.
    let again = services(&app, &web, json!({"google": "g-token-1"})).await;
    assert_eq!(again, first);
    assert_eq!(one.requests(), before + 2 * POLL_REQUESTS + 13);
}

// ---------------------------------------------------------------------------------------
// 7. The YAML config keys
// ---------------------------------------------------------------------------------------

fn load_yaml(text: &str) -> kubeplex::config::Settings {
    load_with_env(
        &[Source::Inline {
            name: "app-config.yaml".into(),
            text: text.into(),
        }],
        &Env::new(),
    )
    .unwrap_or_else(|e| panic!("config refused: {e}"))
}

#[actix_web::test]
async fn yaml_object_types_skip_metrics_dashboards_and_custom_resources() {
    let lean = sim("lean").await;
    let full = sim("full").await;
    let settings = load_yaml(&format!(
        r#"
kubeplex:
  aggregate:
    cacheTtl: 0s
kubernetes:
  serviceLocatorMethod:
    type: multiTenant
  objectTypes: [services, pods]
  customResources:
    - group: tools.example.org
      apiVersion: v1
      plural: widgets
  clusterLocatorMethods:
    - type: config
      clusters:
        - name: lean
          url: {}
          title: Lean
          skipMetricsLookup: true
          dashboardUrl: https://console.example.com/lean
          dashboardApp: openshift
          dashboardParameters:
            projectId: p-1
            regions: [eu, us]
        - name: full
          url: {}
          customResources:
            - group: tools.example.org
              apiVersion: v1alpha1
              plural: gadgets
"#,
        url_of(&lean),
        url_of(&full)
    ));
    let app = spawn_app(settings).await;
    let before = [lean.requests(), full.requests()];
    let answer = services(&app, &entity("web", json!({})), json!({})).await;
    assert_eq!(keys(&answer), ["config:lean", "config:full"]);

    let l = item(&answer, "config:lean");
    assert_eq!(
        l["cluster"],
        json!({
            "name": "lean",
            "key": "config:lean",
            "title": "Lean",
            "dashboardUrl": "https://console.example.com/lean",
            "dashboardApp": "openshift",
            "dashboardParameters": {"projectId": "p-1", "regions": ["eu", "us"]},
        })
    );
    // objectTypes in Backstage's order whatever the config's; the global custom resources.
    assert_eq!(types(l), ["pods", "services", "customresources"]);
    assert_eq!(resources(l, "customresources")[0]["kind"], "Widget");
    assert_eq!(names(l, "pods").len(), 2);
    assert_eq!(l["podMetrics"], json!([]));
    // Three lists and no metrics request.
    assert_eq!(lean.requests(), before[0] + 3);

    // The cluster's own custom resources replace the global ones; metrics are looked up.
    let f = item(&answer, "config:full");
    assert_eq!(types(f), ["pods", "services", "customresources"]);
    let gadgets = resources(f, "customresources");
    assert_eq!(gadgets.len(), 1);
    assert_eq!(gadgets[0]["kind"], "Gadget");
    assert_pod_metrics(f);
    assert_eq!(full.requests(), before[1] + 3 + 2);
}

#[actix_web::test]
async fn yaml_api_version_overrides_and_a_catalog_from_backend_base_url() {
    let cat = catalog(entity("web", json!({}))).await;
    let one = sim("one").await;
    let settings = load_yaml(&format!(
        r#"
backend:
  baseUrl: {}
kubernetes:
  objectTypes: [pods, horizontalpodautoscalers]
  apiVersionOverrides:
    horizontalpodautoscalers: v1
  clusterLocatorMethods:
    - type: config
      clusters:
        - name: one
          url: {}
"#,
        cat.url,
        url_of(&one)
    ));
    let app = spawn_app(settings).await;
    let (status, answer) = post(
        &app,
        "/resources/workloads/query",
        &json!({"entityRef": "component:default/web"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        cat.only().path,
        "/api/catalog/entities/by-name/component/default/web"
    );
    let it = item(&answer, "config:one");
    assert_eq!(names(it, "pods").len(), 2);
    // The simulator serves autoscaling/v2 only: the overridden version is a 404 entry.
    assert_eq!(types(it), ["pods"]);
    assert_eq!(
        it["errors"],
        json!([{"errorType": "NOT_FOUND", "statusCode": 404, "resourcePath": "/apis/autoscaling/v1/horizontalpodautoscalers"}])
    );
}
