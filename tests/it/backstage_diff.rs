//! Differential tests of Backstage's entity routes (SPEC §10, issue 12): Backstage's own
//! Kubernetes backend (`@backstage/plugin-kubernetes-backend` 0.21.15, run by
//! `backstage_backend_support`) and kubeplex are pointed at the same simulated clusters with
//! the same app-config `kubernetes` block (kubeplex loads the very text Backstage gets, plus
//! `kubeplex.backstage.catalogUrl` = the harness's catalog and `kubeplex.aggregate.cacheTtl:
//! 0s`), asked the same requests with the same `Authorization: Bearer mock-user-token`, and
//! their answers must be equal after [`normalize`]: items sorted by cluster name, kubeplex's
//! added `cluster.key` removed, a `FETCH_ERROR`'s `message` compared by presence only (Node's
//! and kubeplex's connection errors are worded differently). Nothing else is ignored: the
//! objects, their order within a type, the type order, the pod metrics figures (CPU numbers,
//! memory `BigInt` strings, the request and limit totals of pods with two containers), the
//! error entries and the 4xx error bodies must match.
//!
//! Where kubeplex differs on purpose, each side's behaviour is asserted on its own:
//!
//! 1. `POST /services/{id}` without an `entity` (or with one JavaScript takes for false):
//!    Backstage fails with a 500 `{"error": "Cannot read properties of undefined (reading
//!    'metadata')"}`; kubeplex answers 400 `InputError` "entity is a required field", as
//!    the `/resources/*` routes do.
//! 2. A cluster whose provider token is missing from the body's `auth` (`authProvider:
//!    google` without `auth.google`): Backstage fails the whole request with a 500; kubeplex
//!    answers 200 with a `FETCH_ERROR` entry for that cluster only (the message Backstage's
//!    500 carries) and the other clusters' objects.
//! 3. Clusters sharing a name (only possible across locators, both refuse it within one):
//!    both list every one of them; kubeplex adds each one's `key` (`config:prod`,
//!    `config-2:prod`) beside the `name`, the only difference left once keys are removed.
//! 4. A `customResources` entry that is not an object with string `group`, `apiVersion` and
//!    `plural`: Backstage lists `/api/undefined/...` and reports a 404 entry per cluster;
//!    kubeplex refuses the body with 400 `InputError`.
//! 5. A body that is not JSON: both answer 400, Backstage with Express's `SyntaxError`
//!    text, kubeplex with an `InputError` naming serde's parse error.
//! 6. Every item carries `cluster.key` in kubeplex (removed by [`normalize`]).
//! 7. Not exercised here (they need a minute-long cluster): kubeplex ends a cluster's part
//!    after `kubeplex.aggregate.timeout` with a `FETCH_ERROR`; Backstage waits.

use crate::backstage_backend_support::{BackstageBackend, MOCK_USER_AUTH};
use crate::common::{http, spawn_app};
use kubeplex::app::RunningApp;
use kubeplex::config::{load_with_env, tree::Env, Settings, Source};
use kubeplex::sim::config::{SeedSource, SimClusterConfig, SimTls, SimToken};
use kubeplex::sim::kinds::CustomType;
use kubeplex::sim::SimServer;
use serde_json::{json, Value};

/// The sims' token (every cluster but `locked` and `shop-only` accepts it).
const TOKEN: &str = "sim-diff-token";

/// Cluster `east`: in namespace `shop`, component `cart`: Deployment `cart` (2 replicas of
/// two containers with requests and limits, so a ReplicaSet and two Pods), Service,
/// ConfigMap, HPA, Ingress, CronJob, LimitRange, ResourceQuota and a Gadget; in `ops` a
/// ConfigMap of `cart`. Not `cart`'s: Deployment and Service `billing`, ConfigMap `plain`.
const EAST_SEED: &str = r#"
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: shop}}
- {apiVersion: v1, kind: Namespace, metadata: {name: ops}}
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: cart
    namespace: shop
    labels: {app: cart, backstage.io/kubernetes-id: cart}
    annotations: {deployment.kubernetes.io/revision: "1"}
  spec:
    replicas: 2
    selector: {matchLabels: {app: cart}}
    template:
      metadata:
        labels: {app: cart, backstage.io/kubernetes-id: cart}
      spec:
        containers:
        - name: cart
          image: registry.example.com/shop/cart:1.4.2
          ports: [{name: http, containerPort: 8080}]
          env: [{name: MODE, value: production}]
          resources:
            requests: {cpu: 250m, memory: 128Mi}
            limits: {cpu: "1", memory: 256Mi}
          readinessProbe:
            httpGet: {path: /ready, port: 8080}
        - name: envoy
          image: envoyproxy/envoy:v1.31.0
          resources:
            requests: {cpu: 50m, memory: 32Mi}
            limits: {memory: 64Mi}
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: billing
    namespace: shop
    labels: {app: billing, backstage.io/kubernetes-id: billing}
  spec:
    replicas: 1
    selector: {matchLabels: {app: billing}}
    template:
      metadata:
        labels: {app: billing, backstage.io/kubernetes-id: billing}
      spec:
        containers:
        - name: billing
          image: registry.example.com/shop/billing:2.0.0
- apiVersion: v1
  kind: Service
  metadata:
    name: cart
    namespace: shop
    labels: {app: cart, backstage.io/kubernetes-id: cart}
  spec:
    selector: {app: cart}
    ports: [{name: http, port: 80, targetPort: 8080}]
- apiVersion: v1
  kind: Service
  metadata:
    name: billing
    namespace: shop
    labels: {app: billing, backstage.io/kubernetes-id: billing}
  spec:
    selector: {app: billing}
    ports: [{port: 80}]
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: cart-config
    namespace: shop
    labels: {backstage.io/kubernetes-id: cart}
  data: {LOG_LEVEL: info, "10": ten, "2": two}
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: plain, namespace: shop}
  data: {x: y}
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: cart-ops
    namespace: ops
    labels: {app: cart, backstage.io/kubernetes-id: cart}
  data: {RUNBOOK: https://runbooks.example.com/cart}
- apiVersion: autoscaling/v2
  kind: HorizontalPodAutoscaler
  metadata:
    name: cart
    namespace: shop
    labels: {backstage.io/kubernetes-id: cart}
  spec:
    scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: cart}
    minReplicas: 2
    maxReplicas: 6
    metrics:
    - type: Resource
      resource: {name: cpu, target: {type: Utilization, averageUtilization: 75}}
- apiVersion: networking.k8s.io/v1
  kind: Ingress
  metadata:
    name: cart
    namespace: shop
    labels: {app: cart, backstage.io/kubernetes-id: cart}
  spec:
    rules:
    - host: cart.example.com
      http:
        paths:
        - path: /
          pathType: Prefix
          backend: {service: {name: cart, port: {number: 80}}}
- apiVersion: batch/v1
  kind: CronJob
  metadata:
    name: cart-cleanup
    namespace: shop
    labels: {backstage.io/kubernetes-id: cart}
  spec:
    schedule: "0 3 * * *"
    jobTemplate:
      spec:
        template:
          spec:
            restartPolicy: OnFailure
            containers:
            - name: cleanup
              image: registry.example.com/shop/cart-cleanup:1.0.0
- apiVersion: v1
  kind: LimitRange
  metadata:
    name: cart-limits
    namespace: shop
    labels: {backstage.io/kubernetes-id: cart}
  spec:
    limits:
    - type: Container
      default: {cpu: 500m, memory: 256Mi}
- apiVersion: v1
  kind: ResourceQuota
  metadata:
    name: cart-quota
    namespace: shop
    labels: {backstage.io/kubernetes-id: cart}
  spec:
    hard: {pods: "20", requests.cpu: "4"}
- apiVersion: tools.example.org/v1alpha1
  kind: Gadget
  metadata:
    name: cart-gadget
    namespace: shop
    labels: {backstage.io/kubernetes-id: cart}
  spec: {size: 3}
- apiVersion: tools.example.org/v1alpha1
  kind: Gadget
  metadata:
    name: billing-gadget
    namespace: shop
    labels: {backstage.io/kubernetes-id: billing}
  spec: {size: 1}
"#;

/// Cluster `west`: in namespace `edge`, component `cart`: StatefulSet `cart-cache` (two
/// pods of two containers), its Service, DaemonSet `cart-agent` (one pod), a lone Pod
/// `cart-canary` without resources, a Widget.
const WEST_SEED: &str = r#"
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: edge}}
- apiVersion: apps/v1
  kind: StatefulSet
  metadata:
    name: cart-cache
    namespace: edge
    labels: {app: cart-cache, backstage.io/kubernetes-id: cart}
  spec:
    serviceName: cart-cache
    replicas: 2
    selector: {matchLabels: {app: cart-cache}}
    template:
      metadata:
        labels: {app: cart-cache, backstage.io/kubernetes-id: cart}
      spec:
        containers:
        - name: redis
          image: docker.io/library/redis:7.2
          ports: [{containerPort: 6379}]
          resources:
            requests: {cpu: 100m, memory: 1Gi}
            limits: {cpu: 100m, memory: 1Gi}
        - name: exporter
          image: docker.io/oliver006/redis_exporter:v1.62.0
          resources:
            requests: {cpu: 10m, memory: 16Mi}
            limits: {cpu: 20m, memory: 32Mi}
- apiVersion: v1
  kind: Service
  metadata:
    name: cart-cache
    namespace: edge
    labels: {app: cart-cache, backstage.io/kubernetes-id: cart}
  spec:
    clusterIP: None
    selector: {app: cart-cache}
    ports: [{port: 6379}]
- apiVersion: apps/v1
  kind: DaemonSet
  metadata:
    name: cart-agent
    namespace: edge
    labels: {app: cart-agent, backstage.io/kubernetes-id: cart}
  spec:
    selector: {matchLabels: {app: cart-agent}}
    template:
      metadata:
        labels: {app: cart-agent, backstage.io/kubernetes-id: cart}
      spec:
        containers:
        - name: agent
          image: registry.example.com/edge/agent:0.9.1
          resources:
            limits: {cpu: 200m, memory: 100M}
- apiVersion: v1
  kind: Pod
  metadata:
    name: cart-canary
    namespace: edge
    labels: {app: cart, backstage.io/kubernetes-id: cart}
  spec:
    containers:
    - name: cart
      image: registry.example.com/shop/cart:1.5.0-rc.1
- apiVersion: tools.example.org/v1
  kind: Widget
  metadata:
    name: cart-widget
    namespace: edge
    labels: {backstage.io/kubernetes-id: cart}
  spec: {color: green}
"#;

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

/// A simulated cluster with `seed`, the Gadget and Widget types, accepting [`TOKEN`].
fn sim_config(name: &str, seed: &str) -> SimClusterConfig {
    let mut cfg = SimClusterConfig::new(
        name,
        Some(SeedSource::Text {
            name: format!("{name} seed"),
            text: seed.into(),
        }),
        [TOKEN],
    );
    cfg.custom_types = vec![
        custom_type("tools.example.org", "v1alpha1", "Gadget", "gadgets"),
        custom_type("tools.example.org", "v1", "Widget", "widgets"),
    ];
    cfg
}

async fn start(cfg: &SimClusterConfig) -> SimServer {
    kubeplex::sim::spawn("127.0.0.1:0", cfg)
        .await
        .expect("simulated cluster starts")
}

/// A URL where nothing listens (a port bound and released).
fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

/// A `config` cluster of the app-config with a service-account token.
fn cluster(name: &str, url: &str, token: &str) -> Value {
    json!({
        "name": name,
        "url": url,
        "authProvider": "serviceAccount",
        "serviceAccountToken": token,
    })
}

/// A Component entity `name` (namespace `default`) with `annotations`.
fn entity(name: &str, annotations: Value) -> Value {
    json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name, "namespace": "default", "annotations": annotations},
        "spec": {"type": "service", "owner": "team-a", "lifecycle": "production"},
    })
}

fn gadgets() -> Value {
    json!({"group": "tools.example.org", "apiVersion": "v1alpha1", "plural": "gadgets"})
}

fn widgets() -> Value {
    json!({"group": "tools.example.org", "apiVersion": "v1", "plural": "widgets"})
}

/// Backstage's backend and kubeplex over the same clusters, config and catalog.
struct Pair {
    backstage: BackstageBackend,
    kubeplex: RunningApp,
}

/// What one side answered: the status and the JSON body.
type Answer = (u16, Value);

impl Pair {
    /// Starts Backstage with `kubernetes` (the app-config block) and `entities` in its
    /// catalog, then kubeplex with the same block, reading entities from that catalog.
    async fn start(mut kubernetes: Value, entities: Vec<Value>) -> Pair {
        // Backstage requires a service locator.
        if kubernetes.get("serviceLocatorMethod").is_none() {
            kubernetes["serviceLocatorMethod"] = json!({"type": "multiTenant"});
        }
        let backstage = BackstageBackend::start(&json!({
            "kubernetes": kubernetes,
            "entities": entities,
        }))
        .await;
        let config = json!({
            "kubernetes": kubernetes,
            "kubeplex": {
                "backstage": {"catalogUrl": format!("{}/api/catalog", backstage.url)},
                "aggregate": {"cacheTtl": "0s"},
            },
        });
        let kubeplex = spawn_app(kubeplex_settings(&config)).await;
        Pair {
            backstage,
            kubeplex,
        }
    }

    /// POSTs `body` to `{base}{path}` of both, with the mock user's token; (Backstage,
    /// kubeplex).
    async fn post(&self, path: &str, body: &Value) -> (Answer, Answer) {
        let path = format!("/api/kubernetes{path}");
        let b = self
            .backstage
            .post_json(&path, body, Some(MOCK_USER_AUTH))
            .await;
        let k = post_kubeplex(&self.kubeplex, &path, body.to_string()).await;
        (b, k)
    }

    /// POSTs to both and asserts the answers are equal after [`normalize`]; returns the
    /// normalized answer (with the status).
    async fn same(&self, path: &str, body: &Value) -> Answer {
        let (b, k) = self.post(path, body).await;
        assert_same(path, body, &b, &k, &self.backstage);
        (b.0, normalize(&b.1))
    }
}

/// kubeplex's settings from an app-config (JSON is YAML).
fn kubeplex_settings(config: &Value) -> Settings {
    load_with_env(
        &[Source::Inline {
            name: "app-config.json".into(),
            text: config.to_string(),
        }],
        &Env::new(),
    )
    .unwrap_or_else(|e| panic!("kubeplex refused the config: {e}"))
}

/// POSTs the raw `body` to kubeplex with the mock user's token.
async fn post_kubeplex(app: &RunningApp, path: &str, body: String) -> Answer {
    let res = http()
        .post(format!("{}{path}", app.url()))
        .header("content-type", "application/json")
        .header("authorization", MOCK_USER_AUTH)
        .body(body)
        .send()
        .await
        .expect("kubeplex answers");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
}

/// The answer as compared: items sorted by cluster name (then by their whole text, for
/// clusters sharing a name), `cluster.key` removed, each `FETCH_ERROR`'s `message`
/// replaced by whether it is a non-empty string.
fn normalize(answer: &Value) -> Value {
    let mut v = answer.clone();
    let Some(items) = v.get_mut("items").and_then(Value::as_array_mut) else {
        return v;
    };
    for item in items.iter_mut() {
        if let Some(Value::Object(c)) = item.get_mut("cluster") {
            c.shift_remove("key");
        }
        for e in item
            .get_mut("errors")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if e["errorType"] == "FETCH_ERROR" {
                let present = e["message"].as_str().is_some_and(|m| !m.is_empty());
                e["message"] = json!(if present { "<present>" } else { "<missing>" });
            }
        }
    }
    items.sort_by_key(|i| {
        (
            i["cluster"]["name"].as_str().unwrap_or("").to_string(),
            i.to_string(),
        )
    });
    v
}

/// Where two JSON values first differ (a JSON pointer and both sides), for messages.
fn first_difference(a: &Value, b: &Value, at: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                match y.get(k) {
                    Some(vb) => {
                        if let Some(d) = first_difference(va, vb, &format!("{at}/{k}")) {
                            return Some(d);
                        }
                    }
                    None => return Some(format!("{at}/{k}: only Backstage has it: {va}")),
                }
            }
            y.keys()
                .find(|k| !x.contains_key(*k))
                .map(|k| format!("{at}/{k}: only kubeplex has it: {}", y[k]))
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                if let Some(d) = first_difference(va, vb, &format!("{at}/{i}")) {
                    return Some(d);
                }
            }
            (x.len() != y.len()).then(|| {
                format!(
                    "{at}: Backstage has {} entries, kubeplex {}",
                    x.len(),
                    y.len()
                )
            })
        }
        _ => (a != b).then(|| format!("{at}: Backstage {a}, kubeplex {b}")),
    }
}

fn assert_same(path: &str, body: &Value, b: &Answer, k: &Answer, backstage: &BackstageBackend) {
    let (nb, nk) = (normalize(&b.1), normalize(&k.1));
    if b.0 != k.0 || nb != nk {
        let logs = backstage.logs();
        let lines: Vec<&str> = logs.lines().collect();
        let tail = &lines[lines.len().saturating_sub(20)..];
        panic!(
            "{path} {body}: the answers differ\n  first difference: {}\n  status: Backstage {}, kubeplex {}\n\
             Backstage: {}\nkubeplex: {}\nBackstage's last log lines:\n{}",
            first_difference(&nb, &nk, "").unwrap_or_else(|| "(status only)".into()),
            b.0,
            k.0,
            serde_json::to_string_pretty(&nb).unwrap(),
            serde_json::to_string_pretty(&nk).unwrap(),
            tail.join("\n")
        );
    }
}

/// The item of cluster `name` in a normalized answer.
fn item<'a>(answer: &'a Value, name: &str) -> &'a Value {
    answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["cluster"]["name"] == name)
        .unwrap_or_else(|| panic!("no item for {name}: {answer}"))
}

/// The cluster names of an answer's items, in order.
fn cluster_names(answer: &Value) -> Vec<&str> {
    answer["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {answer}"))
        .iter()
        .map(|i| i["cluster"]["name"].as_str().unwrap())
        .collect()
}

/// The `metadata.name`s of an item's resources of type `ty`, sorted.
fn names(item: &Value, ty: &str) -> Vec<String> {
    let mut out: Vec<String> = item["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] == ty)
        .flat_map(|r| r["resources"].as_array().unwrap().iter())
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

/// The three routes' bodies for an entity: services (the whole entity posted), workloads
/// and custom (its ref).
fn bodies(e: &Value) -> Vec<(String, Value)> {
    let name = e["metadata"]["name"].as_str().unwrap();
    let r = format!("component:default/{name}");
    vec![
        (
            format!("/services/{name}"),
            json!({"entity": e, "auth": {}}),
        ),
        (
            "/resources/workloads/query".into(),
            json!({"entityRef": r, "auth": {}}),
        ),
        (
            "/resources/custom/query".into(),
            json!({"entityRef": r, "auth": {}, "customResources": [gadgets(), widgets()]}),
        ),
    ]
}

// ---------------------------------------------------------------------------------------

#[actix_web::test]
async fn workloads_in_two_clusters_are_answered_alike() {
    let east = start(&sim_config("east", EAST_SEED)).await;
    // west serves HTTPS: both trust it through the cluster's caData.
    let mut west_cfg = sim_config("west", WEST_SEED);
    west_cfg.tls = SimTls::SelfSigned;
    let west = start(&west_cfg).await;
    let west_ca = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        west.ca_pem().expect("an HTTPS sim has a CA"),
    );
    let mut east_cluster = cluster("east", &east.client_url(), TOKEN);
    east_cluster["title"] = json!("East (EU)");
    east_cluster["dashboardUrl"] = json!("https://dashboard.example.com/east");
    east_cluster["dashboardApp"] = json!("standard");
    east_cluster["dashboardParameters"] = json!({"projectId": "p-1", "regions": ["eu"]});
    let mut west_cluster = cluster("west", &west.client_url(), TOKEN);
    west_cluster["caData"] = json!(west_ca);
    // west's own custom resources replace the global ones.
    west_cluster["customResources"] = json!([widgets()]);
    let cart = entity("cart", json!({}));
    let pair = Pair::start(
        json!({
            "serviceLocatorMethod": {"type": "multiTenant"},
            "clusterLocatorMethods": [{"type": "config", "clusters": [west_cluster, east_cluster]}],
            "customResources": [gadgets()],
        }),
        vec![cart.clone(), entity("nobody", json!({}))],
    )
    .await;

    let (status, services) = pair
        .same("/services/cart", &json!({"entity": cart, "auth": {}}))
        .await;
    assert_eq!(status, 200);
    // A meaningful answer, not two equal failures.
    assert_eq!(cluster_names(&services), ["east", "west"]);
    let e = item(&services, "east");
    assert_eq!(e["errors"], json!([]), "{e}");
    assert_eq!(
        e["cluster"],
        json!({"name": "east", "title": "East (EU)",
               "dashboardUrl": "https://dashboard.example.com/east", "dashboardApp": "standard",
               "dashboardParameters": {"projectId": "p-1", "regions": ["eu"]}})
    );
    for (ty, want) in [
        ("services", vec!["cart"]),
        ("configmaps", vec!["cart-config", "cart-ops"]),
        ("deployments", vec!["cart"]),
        ("horizontalpodautoscalers", vec!["cart"]),
        ("ingresses", vec!["cart"]),
        ("cronjobs", vec!["cart-cleanup"]),
        ("limitranges", vec!["cart-limits"]),
        ("resourcequotas", vec!["cart-quota"]),
        ("customresources", vec!["cart-gadget"]),
    ] {
        assert_eq!(names(e, ty), want, "{ty}");
    }
    assert_eq!(names(e, "pods").len(), 2);
    assert_eq!(names(e, "replicasets").len(), 1);
    // Pod metrics with the containers' requests and limits: 250m + 50m of CPU requested,
    // 1 core limited (the sidecar sets none); memory as Backstage sums it (its library adds
    // the sidecar's request to the limits so far: 256Mi + 32Mi).
    let metrics = e["podMetrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 2, "{e}");
    for m in metrics {
        assert_eq!(m["cpu"]["requestTotal"], json!(0.3), "{m}");
        assert_eq!(m["cpu"]["limitTotal"], json!(1), "{m}");
        assert_eq!(
            m["memory"]["requestTotal"],
            json!((288u64 << 20).to_string()),
            "{m}"
        );
        assert_eq!(
            m["memory"]["limitTotal"],
            json!((320u64 << 20).to_string()),
            "{m}"
        );
        assert_eq!(m["containers"].as_array().unwrap().len(), 2, "{m}");
    }
    let w = item(&services, "west");
    assert_eq!(w["errors"], json!([]), "{w}");
    assert_eq!(names(w, "statefulsets"), ["cart-cache"]);
    assert_eq!(names(w, "daemonsets"), ["cart-agent"]);
    assert_eq!(names(w, "customresources"), ["cart-widget"]);
    assert_eq!(names(w, "pods").len(), 4, "{w}");
    assert_eq!(w["podMetrics"].as_array().unwrap().len(), 4);

    // The same entity by ref: workloads and custom queries, and a custom resource the
    // clusters do not serve (a NOT_FOUND entry each).
    for (path, body) in bodies(&cart) {
        let (status, _) = pair.same(&path, &body).await;
        assert_eq!(status, 200, "{path}");
    }
    let (_, rollouts) = pair
        .same(
            "/resources/custom/query",
            &json!({"entityRef": "component:default/cart", "customResources": [
                gadgets(),
                {"group": "argoproj.io", "apiVersion": "v1alpha1", "plural": "rollouts"},
            ]}),
        )
        .await;
    assert_eq!(
        item(&rollouts, "west")["errors"],
        json!([{"errorType": "NOT_FOUND", "statusCode": 404, "resourcePath": "/apis/argoproj.io/v1alpha1/rollouts"}])
    );

    // An entity found nowhere: no items from either.
    let (_, nothing) = pair
        .same(
            "/resources/workloads/query",
            &json!({"entityRef": "component:default/nobody"}),
        )
        .await;
    assert_eq!(nothing, json!({"items": []}));
}

#[actix_web::test]
async fn failing_clusters_are_answered_alike() {
    let ok = start(&sim_config("ok", EAST_SEED)).await;
    let locked = start(&sim_config("locked", EAST_SEED)).await;
    // A token that may touch `shop` only: cluster-wide lists get 403s.
    let mut shop_only = sim_config("shop-only", EAST_SEED);
    shop_only.tokens = vec![SimToken {
        token: "shop-token".into(),
        namespaces: Some(vec!["shop".into()]),
        verbs: None,
    }];
    let shop_only = start(&shop_only).await;
    let pair = Pair::start(
        json!({
            "clusterLocatorMethods": [{"type": "config", "clusters": [
                cluster("ok", &ok.client_url(), TOKEN),
                cluster("down", &closed_port_url(), TOKEN),
                cluster("locked", &locked.client_url(), "wrong-token"),
                cluster("shop-only", &shop_only.client_url(), "shop-token"),
            ]}],
        }),
        vec![
            entity("cart", json!({})),
            entity(
                "cart-in-shop",
                json!({"backstage.io/kubernetes-id": "cart",
                                           "backstage.io/kubernetes-namespace": "shop"}),
            ),
        ],
    )
    .await;

    for (path, body) in bodies(&entity("cart", json!({}))) {
        let (status, answer) = pair.same(&path, &body).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(
            cluster_names(&answer),
            ["down", "locked", "ok", "shop-only"],
            "{path}"
        );
        let down = item(&answer, "down");
        assert_eq!(
            down["errors"],
            json!([{"errorType": "FETCH_ERROR", "message": "<present>"}])
        );
        let locked = item(&answer, "locked")["errors"].as_array().unwrap();
        assert!(!locked.is_empty());
        assert!(locked
            .iter()
            .all(|e| e["errorType"] == "UNAUTHORIZED_ERROR" && e["statusCode"] == 401));
        let refused = item(&answer, "shop-only")["errors"].as_array().unwrap();
        assert!(refused
            .iter()
            .all(|e| e["errorType"] == "UNKNOWN_ERROR" && e["statusCode"] == 403));
    }
    // In namespace `shop`, the restricted token may list: objects and metrics.
    let (_, in_shop) = pair
        .same(
            "/resources/workloads/query",
            &json!({"entityRef": "component:default/cart-in-shop"}),
        )
        .await;
    let shop = item(&in_shop, "shop-only");
    assert_eq!(shop["errors"], json!([]));
    assert_eq!(shop["podMetrics"].as_array().unwrap().len(), 2);
}

#[actix_web::test]
async fn entity_annotations_are_read_alike() {
    let east = start(&sim_config("east", EAST_SEED)).await;
    let west = start(&sim_config("west", WEST_SEED)).await;
    let entities = vec![
        // The label selector replaces the id.
        entity(
            "storefront",
            json!({"backstage.io/kubernetes-label-selector": "app in (cart,cart-cache)"}),
        ),
        // The namespace keeps every list there (west has nothing in `shop`).
        entity("cart", json!({"backstage.io/kubernetes-namespace": "shop"})),
        // The id overrides the name.
        entity(
            "storefront-cart",
            json!({"backstage.io/kubernetes-id": "cart"}),
        ),
        entity("payments", json!({"backstage.io/kubernetes-id": "billing"})),
    ];
    let pair = Pair::start(
        json!({
            "clusterLocatorMethods": [{"type": "config", "clusters": [
                cluster("east", &east.client_url(), TOKEN),
                cluster("west", &west.client_url(), TOKEN),
            ]}],
            "customResources": [gadgets()],
        }),
        entities.clone(),
    )
    .await;
    let mut answers = Vec::new();
    for e in &entities {
        for (path, body) in bodies(e) {
            let (status, answer) = pair.same(&path, &body).await;
            assert_eq!(status, 200, "{path} {body}");
            answers.push(answer);
        }
    }
    // Each annotation took effect (checked on the services answers).
    let selector = &answers[0];
    assert_eq!(cluster_names(selector), ["east", "west"]);
    assert_eq!(names(item(selector, "east"), "deployments"), ["cart"]);
    assert_eq!(names(item(selector, "east"), "configmaps"), ["cart-ops"]);
    assert_eq!(
        names(item(selector, "west"), "statefulsets"),
        ["cart-cache"]
    );
    let namespaced = &answers[3];
    assert_eq!(cluster_names(namespaced), ["east"]);
    assert_eq!(
        names(item(namespaced, "east"), "configmaps"),
        ["cart-config"]
    );
    let by_id = &answers[6];
    assert_eq!(cluster_names(by_id), ["east", "west"]);
    assert_eq!(names(item(by_id, "east"), "deployments"), ["cart"]);
    let billing = &answers[9];
    assert_eq!(cluster_names(billing), ["east"]);
    assert_eq!(names(item(billing, "east"), "deployments"), ["billing"]);
    assert_eq!(
        names(item(billing, "east"), "customresources"),
        ["billing-gadget"]
    );
}

#[actix_web::test]
async fn single_tenant_and_body_auth_are_answered_alike() {
    const GOOGLE: &str = "google-token-7f3a";
    const OKTA: &str = "okta-token-1c9e";
    let east = start(&sim_config("east", EAST_SEED)).await;
    let mut gke = sim_config("gke", EAST_SEED);
    gke.tokens = vec![SimToken {
        token: GOOGLE.into(),
        namespaces: None,
        verbs: None,
    }];
    let gke = start(&gke).await;
    let mut okta = sim_config("okta", WEST_SEED);
    okta.tokens = vec![SimToken {
        token: OKTA.into(),
        namespaces: None,
        verbs: None,
    }];
    let okta = start(&okta).await;
    let pair = Pair::start(
        json!({
            "serviceLocatorMethod": {"type": "singleTenant"},
            "clusterLocatorMethods": [{"type": "config", "clusters": [
                cluster("east", &east.client_url(), TOKEN),
                {"name": "gke", "url": gke.client_url(), "authProvider": "google"},
                {"name": "okta", "url": okta.client_url(), "authProvider": "oidc",
                 "oidcTokenProvider": "okta"},
            ]}],
        }),
        vec![
            entity("cart", json!({})),
            entity(
                "cart-on-gke",
                json!({"backstage.io/kubernetes-id": "cart",
                                          "backstage.io/kubernetes-cluster": "gke"}),
            ),
        ],
    )
    .await;
    let auth = json!({"google": GOOGLE, "oidc": {"okta": OKTA}});

    // Every cluster with its provider token from the body.
    let (_, all) = pair
        .same(
            "/resources/workloads/query",
            &json!({"entityRef": "component:default/cart", "auth": auth}),
        )
        .await;
    assert_eq!(cluster_names(&all), ["east", "gke", "okta"]);
    for name in ["east", "gke", "okta"] {
        assert_eq!(item(&all, name)["errors"], json!([]), "{name}");
    }
    // Tokens swapped: each cluster refuses the other's.
    let (_, swapped) = pair
        .same(
            "/resources/workloads/query",
            &json!({"entityRef": "component:default/cart",
                    "auth": {"google": OKTA, "oidc": {"okta": GOOGLE}}}),
        )
        .await;
    for name in ["gke", "okta"] {
        let errors = item(&swapped, name)["errors"].as_array().unwrap();
        assert!(errors
            .iter()
            .all(|e| e["errorType"] == "UNAUTHORIZED_ERROR"));
    }
    // singleTenant: the annotated cluster only.
    let (_, single) = pair
        .same(
            "/resources/workloads/query",
            &json!({"entityRef": "component:default/cart-on-gke", "auth": {"google": GOOGLE}}),
        )
        .await;
    assert_eq!(cluster_names(&single), ["gke"]);

    // Deliberate difference 2: no google token in the body.
    let body = json!({"entityRef": "component:default/cart", "auth": {"oidc": {"okta": OKTA}}});
    let ((b_status, b_body), (k_status, k_body)) =
        pair.post("/resources/workloads/query", &body).await;
    assert_eq!(b_status, 500, "{b_body}");
    assert_eq!(
        b_body["error"]["message"],
        "Google token not found under auth.google in request body"
    );
    assert_eq!(k_status, 200, "{k_body}");
    let k = normalize(&k_body);
    assert_eq!(cluster_names(&k), ["east", "gke", "okta"]);
    assert_eq!(
        k_body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["cluster"]["name"] == "gke")
            .unwrap()["errors"],
        json!([{"errorType": "FETCH_ERROR", "message": "Google token not found under auth.google in request body"}])
    );
    // The other clusters' parts are what Backstage answers when the token is there.
    for name in ["east", "okta"] {
        assert_eq!(item(&k, name), item(&all, name), "{name}");
    }
}

#[actix_web::test]
async fn clusters_sharing_a_name_across_locators() {
    let east = start(&sim_config("east", EAST_SEED)).await;
    let west = start(&sim_config("west", WEST_SEED)).await;
    let pair = Pair::start(
        json!({
            "clusterLocatorMethods": [
                {"type": "config", "clusters": [cluster("prod", &east.client_url(), TOKEN)]},
                {"type": "config", "clusters": [cluster("prod", &west.client_url(), TOKEN)]},
            ],
        }),
        vec![entity("cart", json!({}))],
    )
    .await;
    let body = json!({"entityRef": "component:default/cart"});
    let (_, answer) = pair.same("/resources/workloads/query", &body).await;
    assert_eq!(cluster_names(&answer), ["prod", "prod"]);
    // Deliberate difference 3: kubeplex tells them apart by key.
    let (_, (_, k)) = pair.post("/resources/workloads/query", &body).await;
    let keys: Vec<&str> = k["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["cluster"]["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["config:prod", "config-2:prod"]);
}

#[actix_web::test]
async fn input_errors_are_answered_alike() {
    let one = start(&sim_config("one", EAST_SEED)).await;
    let pair = Pair::start(
        json!({
            "clusterLocatorMethods": [{"type": "config", "clusters": [
                cluster("one", &one.client_url(), TOKEN),
            ]}],
        }),
        vec![entity("cart", json!({}))],
    )
    .await;
    let cart = "component:default/cart";
    let cases: Vec<(&str, Value)> = vec![
        ("/resources/workloads/query", json!({})),
        ("/resources/workloads/query", json!({"auth": {}})),
        ("/resources/workloads/query", json!({"entityRef": ""})),
        ("/resources/workloads/query", json!({"entityRef": null})),
        ("/resources/workloads/query", json!({"entityRef": false})),
        ("/resources/workloads/query", json!({"entityRef": 0})),
        ("/resources/workloads/query", json!({"entityRef": 7})),
        (
            "/resources/workloads/query",
            json!({"entityRef": ["component:default/cart"]}),
        ),
        ("/resources/workloads/query", json!({"entityRef": "cart"})),
        (
            "/resources/workloads/query",
            json!({"entityRef": "component:"}),
        ),
        (
            "/resources/workloads/query",
            json!({"entityRef": "component:default/"}),
        ),
        (
            "/resources/workloads/query",
            json!({"entityRef": "component:default/nope"}),
        ),
        (
            "/resources/custom/query",
            json!({"customResources": [gadgets()]}),
        ),
        (
            "/resources/custom/query",
            json!({"entityRef": "web", "customResources": [gadgets()]}),
        ),
        (
            "/resources/custom/query",
            json!({"entityRef": "component:default/nope"}),
        ),
        ("/resources/custom/query", json!({"entityRef": cart})),
        (
            "/resources/custom/query",
            json!({"entityRef": cart, "customResources": null}),
        ),
        (
            "/resources/custom/query",
            json!({"entityRef": cart, "customResources": 0}),
        ),
        (
            "/resources/custom/query",
            json!({"entityRef": cart, "customResources": ""}),
        ),
        (
            "/resources/custom/query",
            json!({"entityRef": cart, "customResources": false}),
        ),
        (
            "/resources/custom/query",
            json!({"entityRef": cart, "customResources": {"plural": "gadgets"}}),
        ),
        (
            "/resources/custom/query",
            json!({"entityRef": cart, "customResources": "gadgets"}),
        ),
        (
            "/resources/custom/query",
            json!({"entityRef": cart, "customResources": []}),
        ),
        // The services route: an entity the catalog does not have, one without a name.
        (
            "/services/nope",
            json!({"entity": entity("nope", json!({}))}),
        ),
        (
            "/services/x",
            json!({"entity": {"kind": "Component", "metadata": {}}}),
        ),
        (
            "/services/x",
            json!({"entity": {"metadata": {"name": "cart"}}}),
        ),
        (
            "/services/x",
            json!({"entity": {"kind": "Component", "metadata": null}}),
        ),
        (
            "/services/x",
            json!({"entity": {"kind": "Component", "metadata": {"name": "cart", "namespace": 7}}}),
        ),
        ("/services/x", json!({"entity": "component:default/cart"})),
        ("/services/x", json!({"entity": ["cart"]})),
        ("/services/x", json!({"entity": true})),
    ];
    for (path, body) in &cases {
        let (status, answer) = pair.same(path, body).await;
        assert!(
            (400..500).contains(&status),
            "{path} {body}: {status} {answer}"
        );
        assert!(answer["error"]["message"].is_string(), "{answer}");
    }

    // A posted entity without `metadata` is read as a compound ref (`stringifyEntityRef`).
    let (status, answer) = pair
        .same(
            "/services/cart",
            &json!({"entity": {"kind": "Component", "namespace": "default", "name": "cart"}}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(cluster_names(&answer), ["one"]);

    // Deliberate difference 1: the services route without an entity.
    let ((b_status, b_body), (k_status, k_body)) =
        pair.post("/services/cart", &json!({"auth": {}})).await;
    // Express's fallback for a TypeError thrown in a route: `{"error": <message>}`.
    assert_eq!(b_status, 500, "{b_body}");
    assert_eq!(
        b_body,
        json!({"error": "Cannot read properties of undefined (reading 'metadata')"})
    );
    assert_eq!(k_status, 400, "{k_body}");
    assert_eq!(
        k_body,
        json!({
            "error": {"name": "InputError", "message": "entity is a required field"},
            "request": {"method": "POST", "url": "/services/cart"},
            "response": {"statusCode": 400},
        })
    );

    // Deliberate difference 4: a custom resource that is no {group, apiVersion, plural}.
    let body = json!({"entityRef": cart, "customResources": [{"plural": "gadgets"}]});
    let ((b_status, b_body), (k_status, k_body)) =
        pair.post("/resources/custom/query", &body).await;
    assert_eq!(b_status, 200, "{b_body}");
    assert_eq!(
        b_body["items"][0]["errors"],
        json!([{"errorType": "NOT_FOUND", "statusCode": 404, "resourcePath": "/api/undefined/gadgets"}])
    );
    assert_eq!(k_status, 400, "{k_body}");
    assert_eq!(k_body["error"]["name"], "InputError");

    // Deliberate difference 5: a body that is not JSON.
    let path = "/api/kubernetes/resources/workloads/query";
    let b = http()
        .post(format!("{}{path}", pair.backstage.url))
        .header("content-type", "application/json")
        .header("authorization", MOCK_USER_AUTH)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(b.status(), 400);
    let b_body: Value = b.json().await.unwrap();
    assert_eq!(b_body["error"]["name"], "SyntaxError", "{b_body}");
    let (k_status, k_body) = post_kubeplex(&pair.kubeplex, path, "{not json".into()).await;
    assert_eq!(k_status, 400);
    assert_eq!(k_body["error"]["name"], "InputError", "{k_body}");
    assert_eq!(b_body["request"], k_body["request"]);
}
