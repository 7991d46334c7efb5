//! The Backstage backend harness (`backstage_backend_support`) runs Backstage's own
//! Kubernetes backend against simulated clusters: `POST /api/kubernetes/services/{id}`
//! answers with each cluster's objects labelled `backstage.io/kubernetes-id={id}`, their
//! pod metrics, and an error entry per cluster that refuses the token or cannot be reached.

use crate::backstage_backend_support::{BackstageBackend, MOCK_USER_AUTH};
use kubeplex::sim::config::{SeedSource, SimClusterConfig};
use serde_json::json;

const TOKEN: &str = "sim-token";

/// A Deployment of two pods, a Service and a ConfigMap of
/// component `cart`, and a Service of another component.
const EAST_SEED: &str = r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: shop}
- apiVersion: apps/v1
  kind: Deployment
  metadata:
    name: cart
    namespace: shop
    labels: {app: cart, backstage.io/kubernetes-id: cart}
  spec:
    replicas: 2
    selector: {matchLabels: {app: cart}}
    template:
      metadata:
        labels: {app: cart, backstage.io/kubernetes-id: cart}
      spec:
        containers:
        - name: cart
          image: registry.example.com/cart:1.0
          resources:
            requests: {cpu: 100m, memory: 64Mi}
            limits: {cpu: 200m, memory: 128Mi}
- apiVersion: v1
  kind: Service
  metadata:
    name: cart
    namespace: shop
    labels: {app: cart, backstage.io/kubernetes-id: cart}
  spec:
    selector: {app: cart}
    ports: [{port: 80, targetPort: 8080}]
- apiVersion: v1
  kind: ConfigMap
  metadata:
    name: cart-config
    namespace: shop
    labels: {backstage.io/kubernetes-id: cart}
  data: {MODE: east}
- apiVersion: v1
  kind: Service
  metadata:
    name: billing
    namespace: shop
    labels: {backstage.io/kubernetes-id: billing}
  spec:
    ports: [{port: 80}]
"#;

/// A lone pod of component `cart`.
const WEST_SEED: &str = r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: edge}
- apiVersion: v1
  kind: Pod
  metadata:
    name: cart-canary
    namespace: edge
    labels: {backstage.io/kubernetes-id: cart}
  spec:
    containers:
    - name: cart
      image: registry.example.com/cart:1.1
"#;

fn sim(name: &str, seed: &str) -> SimClusterConfig {
    let seed = SeedSource::Text {
        name: format!("{name} seed"),
        text: seed.into(),
    };
    SimClusterConfig::new(name, Some(seed), [TOKEN])
}

/// A URL where nothing listens (a port bound and released).
fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    format!("http://{addr}")
}

fn cluster(name: &str, url: &str, token: &str) -> serde_json::Value {
    json!({
        "name": name,
        "url": url,
        "authProvider": "serviceAccount",
        "serviceAccountToken": token,
    })
}

fn names(resources: &serde_json::Value) -> Vec<&str> {
    let mut n: Vec<&str> = resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect();
    n.sort_unstable();
    n
}

#[actix_web::test]
async fn backstage_backend_serves_services_of_simulated_clusters() {
    let east = kubeplex::sim::spawn("127.0.0.1:0", &sim("east", EAST_SEED))
        .await
        .unwrap();
    let west = kubeplex::sim::spawn("127.0.0.1:0", &sim("west", WEST_SEED))
        .await
        .unwrap();
    let gone = closed_port_url();
    let cart = json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": "Component",
        "metadata": {
            "name": "cart",
            "namespace": "default",
            "annotations": {"backstage.io/kubernetes-id": "cart"}
        },
        "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}
    });
    let backend = BackstageBackend::start(&json!({
        "kubernetes": {
            "serviceLocatorMethod": {"type": "multiTenant"},
            "clusterLocatorMethods": [{"type": "config", "clusters": [
                cluster("east", &east.client_url(), TOKEN),
                cluster("west", &west.client_url(), TOKEN),
                cluster("locked", &east.client_url(), "wrong-token"),
                cluster("gone", &gone, TOKEN),
            ]}]
        },
        "entities": [cart],
    }))
    .await;

    let (status, clusters) = backend.get_json("/api/kubernetes/clusters", None).await;
    assert_eq!(status, 200, "{clusters}");
    assert_eq!(
        clusters,
        json!({"items": [
            {"name": "east", "authProvider": "serviceAccount"},
            {"name": "west", "authProvider": "serviceAccount"},
            {"name": "locked", "authProvider": "serviceAccount"},
            {"name": "gone", "authProvider": "serviceAccount"},
        ]})
    );

    // The entity in the body only names the component: Backstage reads it from the catalog.
    let body = json!({"entity": {"kind": "Component", "metadata": {"name": "cart"}}});
    let (status, answer) = backend
        .post_json("/api/kubernetes/services/cart", &body, Some(MOCK_USER_AUTH))
        .await;
    assert_eq!(status, 200, "{answer}\n{}", backend.logs());
    let items = answer["items"].as_array().unwrap();
    let cluster_names: Vec<&str> = items
        .iter()
        .map(|i| i["cluster"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        cluster_names,
        ["east", "west", "locked", "gone"],
        "{answer}"
    );
    for item in items {
        let keys: Vec<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(keys, ["cluster", "podMetrics", "resources", "errors"]);
    }

    // Every object type, in Backstage's order, each a list of the labelled objects.
    const TYPES: [&str; 13] = [
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
    let east_item = &items[0];
    let types: Vec<&str> = east_item["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, TYPES);
    assert_eq!(east_item["errors"], json!([]));
    let of = |item: &serde_json::Value, t: &str| {
        item["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == t)
            .cloned()
            .unwrap()
    };
    let pods = of(east_item, "pods");
    assert_eq!(pods["resources"].as_array().unwrap().len(), 2, "{pods}");
    for pod in pods["resources"].as_array().unwrap() {
        assert!(pod["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("cart-"));
        assert_eq!(pod["metadata"]["namespace"], "shop");
    }
    assert_eq!(names(&of(east_item, "services")), ["cart"]);
    assert_eq!(names(&of(east_item, "configmaps")), ["cart-config"]);
    assert_eq!(names(&of(east_item, "deployments")), ["cart"]);
    assert_eq!(
        of(east_item, "replicasets")["resources"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(of(east_item, "jobs")["resources"], json!([]));

    // Pod metrics: one entry per pod: usage, request and limit totals, per container.
    let metrics = east_item["podMetrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 2, "{metrics:?}");
    for m in metrics {
        let keys: Vec<&str> = m.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["pod", "memory", "cpu", "containers"], "{m}");
        assert!(m["pod"]["metadata"]["name"]
            .as_str()
            .unwrap()
            .starts_with("cart-"));
        assert!(m["cpu"]["currentUsage"].is_number(), "{m}");
        assert!(m["memory"]["currentUsage"].is_string(), "{m}");
        for usage in [&m["cpu"], &m["memory"]] {
            let keys: Vec<&str> = usage
                .as_object()
                .unwrap()
                .keys()
                .map(|k| k.as_str())
                .collect();
            assert_eq!(keys, ["currentUsage", "requestTotal", "limitTotal"], "{m}");
        }
        let containers = m["containers"].as_array().unwrap();
        assert_eq!(containers.len(), 1, "{m}");
        assert_eq!(containers[0]["container"], "cart");
        assert!(containers[0]["cpuUsage"]["currentUsage"].is_number(), "{m}");
        assert!(
            containers[0]["memoryUsage"]["currentUsage"].is_string(),
            "{m}"
        );
    }

    // west: the lone pod and its metrics, the other types empty.
    let west_item = &items[1];
    assert_eq!(names(&of(west_item, "pods")), ["cart-canary"]);
    assert_eq!(of(west_item, "services")["resources"], json!([]));
    let metrics = west_item["podMetrics"].as_array().unwrap();
    assert_eq!(metrics.len(), 1);
    assert_eq!(metrics[0]["pod"]["metadata"]["name"], "cart-canary");

    // locked: a 401 per object type; gone: one fetch error.
    let locked = &items[2];
    assert_eq!(locked["resources"], json!([]));
    assert_eq!(locked["podMetrics"], json!([]));
    let errors = locked["errors"].as_array().unwrap();
    assert_eq!(errors.len(), TYPES.len(), "{locked}");
    assert_eq!(
        errors[0],
        json!({"errorType": "UNAUTHORIZED_ERROR", "statusCode": 401, "resourcePath": "/api/v1/pods"})
    );
    assert!(errors
        .iter()
        .all(|e| e["errorType"] == "UNAUTHORIZED_ERROR"));
    let gone_item = &items[3];
    assert_eq!(gone_item["resources"], json!([]));
    let errors = gone_item["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{gone_item}");
    assert_eq!(errors[0]["errorType"], "FETCH_ERROR");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("ECONNREFUSED"),
        "{gone_item}"
    );

    // Backstage looked the entity up in the harness's catalog with a mock service token
    // on behalf of the caller.
    let asked = backend.catalog_requests().await;
    assert_eq!(
        asked,
        [json!({
            "method": "GET",
            "path": "/entities/by-name/component/default/cart",
            "authorization": "Bearer mock-service-token:{\"obo\":\"user:default/mock\",\"target\":\"catalog\"}",
        })]
    );

    // Input errors come in Backstage's error envelope.
    let (status, err) = backend
        .post_json(
            "/api/kubernetes/resources/workloads/query",
            &json!({}),
            None,
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        err,
        json!({
            "error": {"name": "InputError", "message": "entity is a required field"},
            "request": {"method": "POST", "url": "/resources/workloads/query"},
            "response": {"statusCode": 400},
        })
    );
}
