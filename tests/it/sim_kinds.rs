//! The simulated cluster's generic object API, kind by kind, over real HTTP: ConfigMaps,
//! Secrets, LimitRanges, ResourceQuotas, Events, Deployments, ReplicaSets, StatefulSets,
//! DaemonSets, HPAs, Jobs, CronJobs, Ingresses and custom resources. Every kind goes through
//! one table-driven suite (create, get, lists, selectors, paging, the three patch types,
//! stale PUT, delete, deletecollection, watch, the usual 404/409 and Tables); then the
//! per-kind specifics: defaults, field selectors, validation, `scale`, `status`, cascading
//! deletes, custom resource types, token limits, concurrent writers under watches, and the
//! Python `kubernetes` client decoding every kind.

use kubeplex::sim::config::{SeedSource, SimClusterConfig};
use kubeplex::sim::kinds::CustomType;
use kubeplex::sim::{self, SimServer};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const MERGE: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

/// Namespaces every test cluster has besides the built-in ones.
const NAMESPACES: &str = r#"
apiVersion: v1
kind: List
items:
  - {apiVersion: v1, kind: Namespace, metadata: {name: team-a}}
  - {apiVersion: v1, kind: Namespace, metadata: {name: team-b}}
"#;

/// The custom type served through config.
fn gadget_type() -> CustomType {
    CustomType {
        group: "tools.example.org".into(),
        version: "v1alpha1".into(),
        kind: "Gadget".into(),
        plural: "gadgets".into(),
        singular: None,
        namespaced: true,
        short_names: vec!["gd".into()],
        categories: vec![],
    }
}

fn cluster() -> SimClusterConfig {
    SimClusterConfig {
        name: "kinds".into(),
        seed: Some(SeedSource::Text {
            name: "kinds seed".into(),
            text: NAMESPACES.into(),
        }),
        custom_types: vec![gadget_type()],
        ..SimClusterConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// The kinds and a valid sample of each
// ---------------------------------------------------------------------------------------

/// One kind under test.
struct Case {
    /// `api/v1` or `apis/{group}/{version}`.
    prefix: &'static str,
    plural: &'static str,
    kind: &'static str,
    api_version: &'static str,
    /// Whether its objects carry `metadata.generation`.
    generation: bool,
    /// A custom resource type (no strategic merge patch, status a plain field).
    custom: bool,
    /// The kind-specific fields of a valid object (everything but `metadata`), in `ns`.
    sample: fn(&str) -> Value,
}

fn pod_template(restart: Option<&str>) -> Value {
    let mut spec = json!({"containers": [{"name": "main", "image": "nginx:1.27",
                                          "ports": [{"containerPort": 80}]}]});
    if let Some(r) = restart {
        spec["restartPolicy"] = json!(r);
    }
    json!({"metadata": {"labels": {"app": "demo"}}, "spec": spec})
}

fn workload_spec() -> Value {
    json!({"selector": {"matchLabels": {"app": "demo"}}, "template": pod_template(None)})
}

const CONFIG_MAPS: Case = Case {
    prefix: "api/v1",
    plural: "configmaps",
    kind: "ConfigMap",
    api_version: "v1",
    generation: false,
    custom: false,
    sample: |_| json!({"data": {"app.properties": "color=blue", "LOG_LEVEL": "info"}}),
};
const SECRETS: Case = Case {
    prefix: "api/v1",
    plural: "secrets",
    kind: "Secret",
    api_version: "v1",
    generation: false,
    custom: false,
    sample: |_| json!({"stringData": {"password": "hunter2"}}),
};
const LIMIT_RANGES: Case = Case {
    prefix: "api/v1",
    plural: "limitranges",
    kind: "LimitRange",
    api_version: "v1",
    generation: true,
    custom: false,
    sample: |_| {
        json!({"spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"},
                                     "defaultRequest": {"cpu": "100m"}}]}})
    },
};
const RESOURCE_QUOTAS: Case = Case {
    prefix: "api/v1",
    plural: "resourcequotas",
    kind: "ResourceQuota",
    api_version: "v1",
    generation: true,
    custom: false,
    sample: |_| json!({"spec": {"hard": {"pods": "10", "requests.cpu": "4"}}}),
};
const EVENTS: Case = Case {
    prefix: "api/v1",
    plural: "events",
    kind: "Event",
    api_version: "v1",
    generation: false,
    custom: false,
    sample: |ns| {
        json!({"involvedObject": {"kind": "Pod", "name": "web-1", "namespace": ns, "apiVersion": "v1"},
               "reason": "Scheduled", "message": "Successfully assigned", "type": "Normal",
               "source": {"component": "default-scheduler"}, "count": 1,
               "firstTimestamp": "2025-01-10T12:00:00Z", "lastTimestamp": "2025-01-10T12:00:00Z"})
    },
};
const DEPLOYMENTS: Case = Case {
    prefix: "apis/apps/v1",
    plural: "deployments",
    kind: "Deployment",
    api_version: "apps/v1",
    generation: true,
    custom: false,
    sample: |_| json!({"spec": workload_spec()}),
};
const REPLICA_SETS: Case = Case {
    prefix: "apis/apps/v1",
    plural: "replicasets",
    kind: "ReplicaSet",
    api_version: "apps/v1",
    generation: true,
    custom: false,
    sample: |_| json!({"spec": workload_spec()}),
};
const STATEFUL_SETS: Case = Case {
    prefix: "apis/apps/v1",
    plural: "statefulsets",
    kind: "StatefulSet",
    api_version: "apps/v1",
    generation: true,
    custom: false,
    sample: |_| {
        let mut spec = workload_spec();
        spec["serviceName"] = json!("demo");
        json!({ "spec": spec })
    },
};
const DAEMON_SETS: Case = Case {
    prefix: "apis/apps/v1",
    plural: "daemonsets",
    kind: "DaemonSet",
    api_version: "apps/v1",
    generation: true,
    custom: false,
    sample: |_| json!({"spec": workload_spec()}),
};
const HPAS: Case = Case {
    prefix: "apis/autoscaling/v2",
    plural: "horizontalpodautoscalers",
    kind: "HorizontalPodAutoscaler",
    api_version: "autoscaling/v2",
    generation: true,
    custom: false,
    sample: |_| {
        json!({"spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                        "minReplicas": 2, "maxReplicas": 5,
                        "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 70}}}]}})
    },
};
const JOBS: Case = Case {
    prefix: "apis/batch/v1",
    plural: "jobs",
    kind: "Job",
    api_version: "batch/v1",
    generation: true,
    custom: false,
    sample: |_| {
        json!({"spec": {"template": {"spec": {"restartPolicy": "Never",
        "containers": [{"name": "main", "image": "busybox:1.36", "command": ["true"]}]}}}})
    },
};
const CRON_JOBS: Case = Case {
    prefix: "apis/batch/v1",
    plural: "cronjobs",
    kind: "CronJob",
    api_version: "batch/v1",
    generation: true,
    custom: false,
    sample: |_| {
        json!({"spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "OnFailure",
            "containers": [{"name": "main", "image": "busybox:1.36"}]}}}}}})
    },
};
const INGRESSES: Case = Case {
    prefix: "apis/networking.k8s.io/v1",
    plural: "ingresses",
    kind: "Ingress",
    api_version: "networking.k8s.io/v1",
    generation: true,
    custom: false,
    sample: |_| {
        json!({"spec": {"ingressClassName": "nginx", "rules": [{"host": "shop.example.com",
            "http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}})
    },
};
const GADGETS: Case = Case {
    prefix: "apis/tools.example.org/v1alpha1",
    plural: "gadgets",
    kind: "Gadget",
    api_version: "tools.example.org/v1alpha1",
    generation: true,
    custom: true,
    sample: |_| json!({"spec": {"size": 3, "colors": ["red", "green"]}}),
};

/// A full object of `case` named `name` in `ns` with `labels`.
fn object(case: &Case, ns: &str, name: &str, labels: Value) -> Value {
    let mut v = (case.sample)(ns);
    v["apiVersion"] = json!(case.api_version);
    v["kind"] = json!(case.kind);
    v["metadata"] = json!({"name": name, "labels": labels});
    v
}

// ---------------------------------------------------------------------------------------
// HTTP helpers
// ---------------------------------------------------------------------------------------

struct Api {
    c: Client,
    base: String,
    token: Option<String>,
}

async fn start(cfg: SimClusterConfig) -> (SimServer, Api) {
    let server = sim::spawn("127.0.0.1:0", &cfg).await.expect("sim starts");
    let base = server.url().as_str().trim_end_matches('/').to_string();
    let c = Client::builder().no_proxy().build().unwrap();
    (
        server,
        Api {
            c,
            base,
            token: None,
        },
    )
}

impl Api {
    /// The collection URL, in one namespace or across all of them.
    fn coll(&self, case: &Case, ns: Option<&str>) -> String {
        match ns {
            Some(ns) => format!(
                "{}/{}/namespaces/{ns}/{}",
                self.base, case.prefix, case.plural
            ),
            None => format!("{}/{}/{}", self.base, case.prefix, case.plural),
        }
    }

    fn item(&self, case: &Case, ns: &str, name: &str) -> String {
        format!("{}/{name}", self.coll(case, Some(ns)))
    }

    fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        let req = self.c.request(method, url);
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    async fn answer(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, v)
    }

    async fn send(&self, method: Method, url: &str, body: Option<&Value>) -> (StatusCode, Value) {
        let mut req = self.request(method, url);
        if let Some(b) = body {
            req = req.json(b);
        }
        Self::answer(req).await
    }

    async fn get(&self, url: &str) -> (StatusCode, Value) {
        self.send(Method::GET, url, None).await
    }

    async fn patch(&self, url: &str, content_type: &str, body: &str) -> (StatusCode, Value) {
        let req = self
            .request(Method::PATCH, url)
            .header("content-type", content_type)
            .body(body.to_string());
        Self::answer(req).await
    }

    async fn table(&self, url: &str) -> (StatusCode, Value) {
        Self::answer(self.request(Method::GET, url).header("accept", TABLE)).await
    }

    /// Creates `body` in `ns`, asserting a 201.
    async fn create(&self, case: &Case, ns: &str, body: &Value) -> Value {
        let (st, v) = self
            .send(Method::POST, &self.coll(case, Some(ns)), Some(body))
            .await;
        assert_eq!(st, StatusCode::CREATED, "create {} in {ns}: {v}", case.kind);
        v
    }
}

/// Asserts a refusal: the HTTP status and its `Status` body agree.
#[track_caller]
fn assert_refused(st: StatusCode, v: &Value, code: u16, reason: &str) {
    assert_eq!(st.as_u16(), code, "{v}");
    assert_eq!(v["kind"], "Status", "{v}");
    assert_eq!(v["status"], "Failure", "{v}");
    assert_eq!(v["code"], code, "{v}");
    assert_eq!(v["reason"], reason, "{v}");
}

/// `namespace/name` of every item of a list.
fn keys(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .map(key)
        .collect()
}

fn key(obj: &Value) -> String {
    let m = &obj["metadata"];
    match m["namespace"].as_str() {
        Some(ns) => format!("{ns}/{}", m["name"].as_str().unwrap()),
        None => m["name"].as_str().unwrap().to_string(),
    }
}

#[track_caller]
fn rv_of(v: &Value) -> u64 {
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_else(|| panic!("a resourceVersion: {v}"))
        .parse()
        .unwrap()
}

fn url_with(base: &str, params: &[(&str, &str)]) -> String {
    reqwest::Url::parse_with_params(base, params)
        .unwrap()
        .to_string()
}

/// Reads a watch stream event by event.
struct Watch {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl Watch {
    async fn open(api: &Api, url: &str) -> Watch {
        let resp = api.request(Method::GET, url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "watch {url}");
        Watch {
            resp,
            buf: Vec::new(),
        }
    }

    /// The next event; a generous guard turns a hang into a failure.
    async fn next(&mut self) -> Value {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return serde_json::from_slice(&line).expect("one JSON event per line");
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.resp.chunk())
                .await
                .expect("a watch event within the guard time")
                .unwrap()
                .expect("the watch stream goes on");
            self.buf.extend_from_slice(&chunk);
        }
    }
}

// ---------------------------------------------------------------------------------------
// The API suite, once per kind
// ---------------------------------------------------------------------------------------

/// What a watch of the kind must see: (type, namespace/name, resourceVersion).
type Expected = Vec<(&'static str, String, u64)>;

async fn api_suite(case: &Case) {
    let (_server, api) = start(cluster()).await;
    let all = api.coll(case, None);
    let coll_a = api.coll(case, Some("team-a"));
    let (st, start_list) = api.get(&all).await;
    assert_eq!(st, StatusCode::OK, "{start_list}");
    assert_eq!(start_list["kind"], format!("{}List", case.kind));
    assert_eq!(start_list["apiVersion"], case.api_version);
    assert_eq!(keys(&start_list), Vec::<String>::new());
    let rv0 = rv_of(&start_list);
    let mut watch = Watch::open(&api, &format!("{all}?watch=1&resourceVersion={rv0}")).await;
    let mut expected: Expected = Vec::new();

    // create: 201 with server-owned metadata
    let alpha = api
        .create(
            case,
            "team-a",
            &object(case, "team-a", "alpha", json!({"tier": "front"})),
        )
        .await;
    assert_eq!(alpha["kind"], case.kind);
    assert_eq!(alpha["apiVersion"], case.api_version);
    let meta = &alpha["metadata"];
    assert_eq!(meta["name"], "alpha");
    assert_eq!(meta["namespace"], "team-a");
    assert_eq!(meta["labels"], json!({"tier": "front"}));
    assert_eq!(meta["uid"].as_str().unwrap().len(), 36, "{meta}");
    assert!(rv_of(&alpha) > rv0);
    let created_at = meta["creationTimestamp"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(created_at).is_ok() && created_at.ends_with('Z'),
        "{created_at}"
    );
    if case.generation {
        assert_eq!(meta["generation"], 1, "{meta}");
    } else {
        assert!(meta.get("generation").is_none(), "{meta}");
    }
    expected.push(("ADDED", "team-a/alpha".into(), rv_of(&alpha)));
    let beta = api
        .create(
            case,
            "team-a",
            &object(case, "team-a", "beta", json!({"tier": "back"})),
        )
        .await;
    expected.push(("ADDED", "team-a/beta".into(), rv_of(&beta)));
    let gamma = api
        .create(
            case,
            "team-b",
            &object(case, "team-b", "gamma", json!({"tier": "back"})),
        )
        .await;
    expected.push(("ADDED", "team-b/gamma".into(), rv_of(&gamma)));
    // an object of another kind: never in this kind's lists or watch
    let other = if case.kind == "ConfigMap" {
        &SECRETS
    } else {
        &CONFIG_MAPS
    };
    api.create(
        other,
        "team-a",
        &object(other, "team-a", "alpha", json!({"tier": "front"})),
    )
    .await;
    // the namespace in the body may repeat the URL's, not contradict it
    let mut wrong_ns = object(case, "team-a", "delta", json!({}));
    wrong_ns["metadata"]["namespace"] = json!("team-b");
    let (st, v) = api.send(Method::POST, &coll_a, Some(&wrong_ns)).await;
    assert_refused(st, &v, 400, "BadRequest");
    // the wrong kind for the URL
    let mut wrong_kind = object(case, "team-a", "delta", json!({}));
    wrong_kind["kind"] = json!("Namespace");
    let (st, v) = api.send(Method::POST, &coll_a, Some(&wrong_kind)).await;
    assert_refused(st, &v, 400, "BadRequest");

    // get
    let (st, got) = api.get(&api.item(case, "team-a", "alpha")).await;
    assert_eq!(st, StatusCode::OK, "{got}");
    assert_eq!(got, alpha);

    // lists: all namespaces, one namespace
    let (st, list) = api.get(&all).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list["kind"], format!("{}List", case.kind));
    assert_eq!(
        keys(&list),
        ["team-a/alpha", "team-a/beta", "team-b/gamma"],
        "{list}"
    );
    assert!(rv_of(&list) >= rv_of(&gamma));
    let (_, list_a) = api.get(&coll_a).await;
    assert_eq!(keys(&list_a), ["team-a/alpha", "team-a/beta"]);
    assert_eq!(
        list_a["items"][0]["metadata"]["uid"],
        alpha["metadata"]["uid"]
    );
    let (st, empty) = api.get(&api.coll(case, Some("kube-public"))).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(keys(&empty), Vec::<String>::new());

    // label selectors
    let (_, back) = api
        .get(&url_with(&all, &[("labelSelector", "tier=back")]))
        .await;
    assert_eq!(keys(&back), ["team-a/beta", "team-b/gamma"]);
    let (_, front_a) = api
        .get(&url_with(
            &coll_a,
            &[("labelSelector", "tier in (front,edge)")],
        ))
        .await;
    assert_eq!(keys(&front_a), ["team-a/alpha"]);
    let (_, none) = api
        .get(&url_with(&all, &[("labelSelector", "!tier")]))
        .await;
    assert_eq!(keys(&none), Vec::<String>::new());
    let (st, v) = api
        .get(&url_with(&all, &[("labelSelector", "tier in (")]))
        .await;
    assert_refused(st, &v, 400, "BadRequest");

    // field selectors
    let (_, by_name) = api
        .get(&url_with(&all, &[("fieldSelector", "metadata.name=gamma")]))
        .await;
    assert_eq!(keys(&by_name), ["team-b/gamma"]);
    let (_, by_name) = api
        .get(&url_with(
            &coll_a,
            &[("fieldSelector", "metadata.name=beta")],
        ))
        .await;
    assert_eq!(keys(&by_name), ["team-a/beta"]);
    let (_, not_name) = api
        .get(&url_with(
            &all,
            &[(
                "fieldSelector",
                "metadata.name!=beta,metadata.namespace=team-a",
            )],
        ))
        .await;
    assert_eq!(keys(&not_name), ["team-a/alpha"]);
    let (st, v) = api
        .get(&url_with(&all, &[("fieldSelector", "spec.nothing=x")]))
        .await;
    assert_refused(st, &v, 400, "BadRequest");

    // limit + continue, across namespaces, from one snapshot
    let (_, page) = api.get(&format!("{all}?limit=2")).await;
    assert_eq!(keys(&page), ["team-a/alpha", "team-a/beta"]);
    assert_eq!(page["metadata"]["remainingItemCount"], 1);
    let token = page["metadata"]["continue"]
        .as_str()
        .expect("a continue token");
    let (st, rest) = api
        .get(&url_with(&all, &[("limit", "2"), ("continue", token)]))
        .await;
    assert_eq!(st, StatusCode::OK, "{rest}");
    assert_eq!(keys(&rest), ["team-b/gamma"]);
    assert_eq!(rv_of(&rest), rv_of(&page));
    assert!(rest["metadata"]["continue"]
        .as_str()
        .is_none_or(str::is_empty));
    let (_, page) = api.get(&format!("{coll_a}?limit=1")).await;
    assert_eq!(keys(&page), ["team-a/alpha"]);
    let token = page["metadata"]["continue"].as_str().unwrap();
    let (_, rest) = api
        .get(&url_with(&coll_a, &[("limit", "1"), ("continue", token)]))
        .await;
    assert_eq!(keys(&rest), ["team-a/beta"]);

    // Tables: a Name column and one row per object
    let (st, table) = api.table(&all).await;
    assert_eq!(st, StatusCode::OK, "{table}");
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
    let columns: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns.first(), Some(&"Name"), "{columns:?}");
    assert!(columns.contains(&"Age"), "{columns:?}");
    let rows = table["rows"].as_array().unwrap();
    let row_names: Vec<&str> = rows
        .iter()
        .map(|r| r["cells"][0].as_str().unwrap())
        .collect();
    assert_eq!(row_names, ["alpha", "beta", "gamma"]);
    assert!(rows
        .iter()
        .all(|r| r["cells"].as_array().unwrap().len() == columns.len()));
    let (_, one) = api.table(&api.item(case, "team-b", "gamma")).await;
    assert_eq!(one["kind"], "Table");
    assert_eq!(one["rows"].as_array().unwrap().len(), 1);
    assert_eq!(one["rows"][0]["cells"][0], "gamma");

    // patches of the three types
    let alpha_url = api.item(case, "team-a", "alpha");
    let (st, merged) = api
        .patch(
            &alpha_url,
            MERGE,
            r#"{"metadata":{"labels":{"merged":"yes"}}}"#,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{merged}");
    assert_eq!(
        merged["metadata"]["labels"],
        json!({"tier": "front", "merged": "yes"})
    );
    assert!(rv_of(&merged) > rv_of(&alpha));
    assert_eq!(merged["metadata"]["uid"], alpha["metadata"]["uid"]);
    assert_eq!(
        merged["metadata"]["creationTimestamp"],
        alpha["metadata"]["creationTimestamp"]
    );
    if case.generation {
        assert_eq!(merged["metadata"]["generation"], 1, "metadata is not spec");
    }
    expected.push(("MODIFIED", "team-a/alpha".into(), rv_of(&merged)));
    let (st, jp) = api
        .patch(
            &alpha_url,
            JSON_PATCH,
            r#"[{"op":"add","path":"/metadata/annotations","value":{"note":"json"}},
                {"op":"remove","path":"/metadata/labels/merged"}]"#,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{jp}");
    assert_eq!(jp["metadata"]["annotations"], json!({"note": "json"}));
    assert_eq!(jp["metadata"]["labels"], json!({"tier": "front"}));
    expected.push(("MODIFIED", "team-a/alpha".into(), rv_of(&jp)));
    // strategic merge patches are for built-in kinds: custom resources take the other two
    let strategic = r#"{"metadata":{"labels":{"strategic":"yes"}}}"#;
    let third = if case.custom {
        let (st, v) = api.patch(&alpha_url, STRATEGIC, strategic).await;
        assert_refused(st, &v, 415, "UnsupportedMediaType");
        MERGE
    } else {
        STRATEGIC
    };
    let (st, smp) = api.patch(&alpha_url, third, strategic).await;
    assert_eq!(st, StatusCode::OK, "{smp}");
    assert_eq!(
        smp["metadata"]["labels"],
        json!({"tier": "front", "strategic": "yes"})
    );
    expected.push(("MODIFIED", "team-a/alpha".into(), rv_of(&smp)));
    // a patch that changes nothing writes nothing
    let (st, same) = api
        .patch(
            &alpha_url,
            MERGE,
            r#"{"metadata":{"labels":{"strategic":"yes"}}}"#,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(rv_of(&same), rv_of(&smp));
    // a JSON patch whose test fails changes nothing either
    let (st, v) = api
        .patch(
            &alpha_url,
            JSON_PATCH,
            r#"[{"op":"test","path":"/metadata/name","value":"other"}]"#,
        )
        .await;
    assert!(st.is_client_error(), "{st} {v}");
    let (st, v) = api.patch(&alpha_url, "text/plain", "{}").await;
    assert_refused(st, &v, 415, "UnsupportedMediaType");

    // PUT: a stale resourceVersion is a 409; the current one replaces
    let mut stale = smp.clone();
    stale["metadata"]["resourceVersion"] = alpha["metadata"]["resourceVersion"].clone();
    stale["metadata"]["labels"]["put"] = json!("stale");
    let (st, v) = api.send(Method::PUT, &alpha_url, Some(&stale)).await;
    assert_refused(st, &v, 409, "Conflict");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("the object has been modified"),
        "{v}"
    );
    let mut fresh = smp.clone();
    fresh["metadata"]["labels"]["put"] = json!("fresh");
    let (st, put) = api.send(Method::PUT, &alpha_url, Some(&fresh)).await;
    assert_eq!(st, StatusCode::OK, "{put}");
    assert_eq!(put["metadata"]["labels"]["put"], "fresh");
    assert!(rv_of(&put) > rv_of(&smp));
    expected.push(("MODIFIED", "team-a/alpha".into(), rv_of(&put)));
    let (_, now) = api.get(&alpha_url).await;
    assert_eq!(now, put);
    // the name in the body must be the URL's
    let mut renamed = put.clone();
    renamed["metadata"]["name"] = json!("other");
    let (st, v) = api.send(Method::PUT, &alpha_url, Some(&renamed)).await;
    assert_refused(st, &v, 400, "BadRequest");
    // PUT of a missing object is a 404
    let mut ghost = object(case, "team-a", "ghost", json!({}));
    ghost["metadata"]["resourceVersion"] = json!("1");
    let (st, v) = api
        .send(
            Method::PUT,
            &api.item(case, "team-a", "ghost"),
            Some(&ghost),
        )
        .await;
    assert_refused(st, &v, 404, "NotFound");

    // 409 AlreadyExists
    let (st, v) = api
        .send(
            Method::POST,
            &coll_a,
            Some(&object(case, "team-a", "alpha", json!({}))),
        )
        .await;
    assert_refused(st, &v, 409, "AlreadyExists");
    assert_eq!(v["details"]["name"], "alpha");
    assert_eq!(v["details"]["kind"], case.plural);

    // 404: a missing namespace, a missing object
    let (st, v) = api
        .send(
            Method::POST,
            &api.coll(case, Some("nowhere")),
            Some(&object(case, "nowhere", "delta", json!({}))),
        )
        .await;
    assert_refused(st, &v, 404, "NotFound");
    assert_eq!(
        v["details"],
        json!({"name": "nowhere", "kind": "namespaces"})
    );
    let (st, v) = api.get(&api.item(case, "nowhere", "alpha")).await;
    assert_refused(st, &v, 404, "NotFound");
    let (st, v) = api.get(&api.item(case, "team-b", "alpha")).await;
    assert_refused(st, &v, 404, "NotFound");
    assert_eq!(v["details"]["name"], "alpha");
    assert_eq!(v["details"]["kind"], case.plural);
    let (st, v) = api
        .patch(&api.item(case, "team-b", "alpha"), MERGE, "{}")
        .await;
    assert_refused(st, &v, 404, "NotFound");

    // delete: the object comes back, then it is gone
    let (st, deleted) = api.send(Method::DELETE, &alpha_url, None).await;
    assert_eq!(st, StatusCode::OK, "{deleted}");
    assert_eq!(deleted["kind"], case.kind);
    assert_eq!(deleted["metadata"]["name"], "alpha");
    assert_eq!(deleted["metadata"]["uid"], alpha["metadata"]["uid"]);
    assert!(rv_of(&deleted) > rv_of(&put));
    expected.push(("DELETED", "team-a/alpha".into(), rv_of(&deleted)));
    let (st, v) = api.get(&alpha_url).await;
    assert_refused(st, &v, 404, "NotFound");
    let (st, v) = api.send(Method::DELETE, &alpha_url, None).await;
    assert_refused(st, &v, 404, "NotFound");
    // the other kind's object of the same name is still there
    let (st, _) = api.get(&api.item(other, "team-a", "alpha")).await;
    assert_eq!(st, StatusCode::OK);

    // deletecollection with a selector: the deleted objects come back as a list
    let (st, v) = api
        .send(
            Method::DELETE,
            &url_with(
                &api.coll(case, Some("team-b")),
                &[("labelSelector", "tier=back")],
            ),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["kind"], format!("{}List", case.kind));
    assert_eq!(keys(&v), ["team-b/gamma"]);
    expected.push(("DELETED", "team-b/gamma".into(), rv_of(&v["items"][0])));
    let (_, left) = api.get(&all).await;
    assert_eq!(keys(&left), ["team-a/beta"], "team-a untouched");
    let (st, v) = api.send(Method::DELETE, &coll_a, None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(keys(&v), ["team-a/beta"]);
    expected.push(("DELETED", "team-a/beta".into(), rv_of(&v["items"][0])));
    let (_, left) = api.get(&all).await;
    assert_eq!(keys(&left), Vec::<String>::new());

    // the watch saw exactly this kind's changes, in resourceVersion order
    let sentinel = api
        .create(
            case,
            "team-b",
            &object(case, "team-b", "sentinel", json!({})),
        )
        .await;
    expected.push(("ADDED", "team-b/sentinel".into(), rv_of(&sentinel)));
    let mut last = rv0;
    for (typ, name, rv) in &expected {
        let ev = watch.next().await;
        let obj = &ev["object"];
        assert_eq!(obj["kind"], case.kind, "{ev}");
        assert_eq!(obj["apiVersion"], case.api_version, "{ev}");
        assert_eq!(
            (ev["type"].as_str().unwrap(), key(obj), rv_of(obj)),
            (*typ, name.clone(), *rv),
            "{}: events in order",
            case.kind
        );
        assert!(*rv > last);
        last = *rv;
    }
}

macro_rules! api_suites {
    ($($name:ident => $case:expr),* $(,)?) => {
        mod api_suite {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::api_suite(&$case).await;
                }
            )*
        }
    };
}

api_suites! {
    configmaps => super::CONFIG_MAPS,
    secrets => super::SECRETS,
    limitranges => super::LIMIT_RANGES,
    resourcequotas => super::RESOURCE_QUOTAS,
    events => super::EVENTS,
    deployments => super::DEPLOYMENTS,
    replicasets => super::REPLICA_SETS,
    statefulsets => super::STATEFUL_SETS,
    daemonsets => super::DAEMON_SETS,
    horizontalpodautoscalers => super::HPAS,
    jobs => super::JOBS,
    cronjobs => super::CRON_JOBS,
    ingresses => super::INGRESSES,
    custom_gadgets => super::GADGETS,
}
