//! The simulated cluster's generic object API, kind by kind, over real HTTP: ConfigMaps,
//! Secrets, LimitRanges, ResourceQuotas, Events, Deployments, ReplicaSets, StatefulSets,
//! DaemonSets, HPAs, Jobs, CronJobs, Ingresses and custom resources. Every kind goes through
//! one table-driven suite (create, get, lists, selectors, paging, the three patch types,
//! stale PUT, delete, deletecollection, watch, the usual 404/409 and Tables); then the
//! per-kind specifics: defaults, field selectors, validation, `scale`, `status`, cascading
//! deletes, custom resource types, token limits, concurrent writers under watches, and the
//! Python `kubernetes` client decoding every kind.

use kubeplex::sim::config::{SeedSource, SimClusterConfig, SimToken};
use kubeplex::sim::kinds::CustomType;
use kubeplex::sim::{self, SimServer};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::process::Stdio;
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

fn cluster_with_seed(extra: &str) -> SimClusterConfig {
    SimClusterConfig {
        seed: Some(SeedSource::Text {
            name: "kinds seed".into(),
            text: format!("{NAMESPACES}\n---\n{extra}"),
        }),
        ..cluster()
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

#[derive(Clone)]
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
    fn with_token(&self, token: &str) -> Api {
        Api {
            c: self.c.clone(),
            base: self.base.clone(),
            token: Some(token.into()),
        }
    }

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
/// The kind as 422 messages name it: `ConfigMap`, `Deployment.apps`.
fn qualified_kind(case: &Case) -> String {
    match case.api_version.split_once('/') {
        Some((group, _)) => format!("{}.{group}", case.kind),
        None => case.kind.to_string(),
    }
}

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

/// The `field` of every cause of an Invalid Status.
fn cause_fields(v: &Value) -> Vec<String> {
    v["details"]["causes"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| c["field"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
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
    // Every kind prints a Name and a time column (Events lead with LAST SEEN, LimitRanges
    // print CREATED AT, as kube-apiserver's printers do).
    let name_at = columns
        .iter()
        .position(|c| *c == "Name")
        .unwrap_or_else(|| panic!("{columns:?}"));
    assert!(
        ["Age", "Created At", "Last Seen"]
            .iter()
            .any(|t| columns.contains(t)),
        "{columns:?}"
    );
    let rows = table["rows"].as_array().unwrap();
    let row_names: Vec<&str> = rows
        .iter()
        .map(|r| r["cells"][name_at].as_str().unwrap())
        .collect();
    assert_eq!(row_names, ["alpha", "beta", "gamma"]);
    assert!(rows
        .iter()
        .all(|r| r["cells"].as_array().unwrap().len() == columns.len()));
    let (_, one) = api.table(&api.item(case, "team-b", "gamma")).await;
    assert_eq!(one["kind"], "Table");
    assert_eq!(one["rows"].as_array().unwrap().len(), 1);
    assert_eq!(one["rows"][0]["cells"][name_at], "gamma");

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
    // PUT of a missing object is a 404 (but for Events, which kube-apiserver creates so)
    if case.kind != "Event" {
        let ghost = object(case, "team-a", "ghost", json!({}));
        let (st, v) = api
            .send(
                Method::PUT,
                &api.item(case, "team-a", "ghost"),
                Some(&ghost),
            )
            .await;
        assert_refused(st, &v, 404, "NotFound");
    }

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

// ---------------------------------------------------------------------------------------
// Per-kind specifics
// ---------------------------------------------------------------------------------------

/// What `kubectl create deployment web --image=nginx:1.27 --dry-run=client -o yaml` writes:
/// empty `strategy`, `resources` and `status`, null timestamps.
const KUBECTL_DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  creationTimestamp: null
  labels:
    app: web
  name: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  strategy: {}
  template:
    metadata:
      creationTimestamp: null
      labels:
        app: web
    spec:
      containers:
      - image: nginx:1.27
        name: nginx
        resources: {}
status: {}
"#;

#[actix_web::test]
async fn create_applies_defaults_and_synthesizes_status() {
    let (_s, api) = start(cluster()).await;

    // Deployment: replicas, strategy, pod template defaults; a ready status
    let d = api
        .create(
            &DEPLOYMENTS,
            "team-a",
            &object(&DEPLOYMENTS, "team-a", "web", json!({})),
        )
        .await;
    let spec = &d["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    );
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Always");
    assert_eq!(pod["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["terminationGracePeriodSeconds"], 30);
    assert_eq!(pod["schedulerName"], "default-scheduler");
    let c = &pod["containers"][0];
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    let status = &d["status"];
    for f in [
        "replicas",
        "readyReplicas",
        "availableReplicas",
        "updatedReplicas",
        "observedGeneration",
    ] {
        assert_eq!(status[f], 1, "status.{f}: {status}");
    }
    let conditions: Vec<(&str, &str)> = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["type"].as_str().unwrap(), c["status"].as_str().unwrap()))
        .collect();
    assert_eq!(conditions, [("Available", "True"), ("Progressing", "True")]);

    // given values are kept; a status sent on create is the controller's to write
    let mut body = object(&DEPLOYMENTS, "team-a", "api", json!({}));
    body["spec"]["replicas"] = json!(3);
    body["spec"]["strategy"] = json!({"type": "Recreate"});
    body["spec"]["template"]["spec"]["containers"][0]["image"] = json!("registry.local/api");
    body["status"] = json!({"readyReplicas": 99});
    let d = api.create(&DEPLOYMENTS, "team-a", &body).await;
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"], "Always",
        "an untagged image is pulled always"
    );
    assert_eq!(d["status"]["readyReplicas"], 3);
    assert_eq!(d["status"]["replicas"], 3);

    // kubectl's generated manifest (YAML, empty strategy) gets every default
    let (st, d) = Api::answer(
        api.request(Method::POST, &api.coll(&DEPLOYMENTS, Some("team-b")))
            .header("content-type", "application/yaml")
            .body(KUBECTL_DEPLOYMENT),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{d}");
    assert_eq!(
        d["spec"]["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    );
    assert_eq!(d["status"]["readyReplicas"], 1);
    assert!(d["metadata"]["creationTimestamp"].is_string());

    // Secret: type Opaque, stringData folded into base64 data (winning over data)
    let mut body = object(&SECRETS, "team-a", "creds", json!({}));
    body["data"] = json!({"user": "YWRtaW4=", "password": "b2xk"});
    let s = api.create(&SECRETS, "team-a", &body).await;
    assert_eq!(s["type"], "Opaque");
    assert_eq!(
        s["data"],
        json!({"user": "YWRtaW4=", "password": "aHVudGVyMg=="})
    );
    assert!(s.get("stringData").is_none(), "{s}");
    let (_, got) = api.get(&api.item(&SECRETS, "team-a", "creds")).await;
    assert_eq!(got, s);
    // a merge patch of stringData is folded too
    let (st, s) = api
        .patch(
            &api.item(&SECRETS, "team-a", "creds"),
            MERGE,
            r#"{"stringData":{"token":"abc"}}"#,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{s}");
    assert_eq!(s["data"]["token"], "YWJj");
    assert!(s.get("stringData").is_none(), "{s}");

    // Job: completions, parallelism, backoffLimit, a selector on its own uid; Complete
    let j = api
        .create(
            &JOBS,
            "team-a",
            &object(&JOBS, "team-a", "migrate", json!({})),
        )
        .await;
    let uid = j["metadata"]["uid"].as_str().unwrap();
    let spec = &j["spec"];
    assert_eq!(spec["completions"], 1);
    assert_eq!(spec["parallelism"], 1);
    assert_eq!(spec["backoffLimit"], 6);
    assert_eq!(spec["completionMode"], "NonIndexed");
    assert_eq!(spec["suspend"], false);
    assert_eq!(
        spec["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
        uid
    );
    let labels = &spec["template"]["metadata"]["labels"];
    assert_eq!(labels["batch.kubernetes.io/job-name"], "migrate");
    assert_eq!(labels["controller-uid"], uid);
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");
    assert_eq!(j["status"]["succeeded"], 1);
    assert!(j["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Complete" && c["status"] == "True"));
    assert!(j["status"]["completionTime"].is_string());

    // CronJob
    let cj = api
        .create(
            &CRON_JOBS,
            "team-a",
            &object(&CRON_JOBS, "team-a", "nightly", json!({})),
        )
        .await;
    assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(cj["spec"]["suspend"], false);
    assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);
    assert_eq!(cj["spec"]["failedJobsHistoryLimit"], 1);
    assert_eq!(
        cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"],
        "ClusterFirst"
    );

    // StatefulSet, DaemonSet: update strategies, ready status
    let sts = api
        .create(
            &STATEFUL_SETS,
            "team-a",
            &object(&STATEFUL_SETS, "team-a", "db", json!({})),
        )
        .await;
    assert_eq!(sts["spec"]["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        sts["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(sts["status"]["readyReplicas"], 1);
    assert!(sts["status"]["currentRevision"]
        .as_str()
        .unwrap()
        .starts_with("db-"));
    let mut body = object(&STATEFUL_SETS, "team-a", "cache", json!({}));
    body["spec"]["updateStrategy"] = json!({});
    let sts = api.create(&STATEFUL_SETS, "team-a", &body).await;
    assert_eq!(
        sts["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    let ds = api
        .create(
            &DAEMON_SETS,
            "team-a",
            &object(&DAEMON_SETS, "team-a", "agent", json!({})),
        )
        .await;
    assert_eq!(
        ds["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(ds["status"]["numberReady"], 1);
    assert_eq!(ds["status"]["desiredNumberScheduled"], 1);
    let mut body = object(&DAEMON_SETS, "team-a", "logs", json!({}));
    body["spec"]["updateStrategy"] = json!({"type": "RollingUpdate"});
    let ds = api.create(&DAEMON_SETS, "team-a", &body).await;
    assert_eq!(
        ds["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );

    // HPA: minReplicas 1 when absent; status at the minimum
    let mut body = object(&HPAS, "team-a", "web", json!({}));
    body["spec"].as_object_mut().unwrap().remove("minReplicas");
    let h = api.create(&HPAS, "team-a", &body).await;
    assert_eq!(h["spec"]["minReplicas"], 1);
    assert_eq!(h["status"]["currentReplicas"], 1);
    assert_eq!(h["status"]["desiredReplicas"], 1);

    // ResourceQuota: status mirrors hard with nothing used; Ingress: an empty load balancer
    let q = api
        .create(
            &RESOURCE_QUOTAS,
            "team-a",
            &object(&RESOURCE_QUOTAS, "team-a", "quota", json!({})),
        )
        .await;
    assert_eq!(q["status"]["hard"], q["spec"]["hard"]);
    assert_eq!(
        q["status"]["used"],
        json!({"pods": "0", "requests.cpu": "0"})
    );
    let i = api
        .create(
            &INGRESSES,
            "team-a",
            &object(&INGRESSES, "team-a", "shop", json!({})),
        )
        .await;
    assert_eq!(i["status"], json!({"loadBalancer": {}}));

    // generateName
    let mut body = object(&CONFIG_MAPS, "team-a", "", json!({}));
    body["metadata"] = json!({"generateName": "settings-"});
    let cm = api.create(&CONFIG_MAPS, "team-a", &body).await;
    let name = cm["metadata"]["name"].as_str().unwrap();
    assert!(
        name.starts_with("settings-") && name.len() == "settings-".len() + 5,
        "{name}"
    );
}

fn event(ns: &str, name: &str, object: &str, reason: &str, typ: &str, source: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
           "involvedObject": {"kind": "Pod", "name": object, "namespace": ns, "apiVersion": "v1"},
           "reason": reason, "message": format!("{reason} {object}"), "type": typ,
           "source": {"component": source}, "count": 1})
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

#[actix_web::test]
async fn field_selectors_of_events_secrets_and_workloads() {
    let (_s, api) = start(cluster()).await;
    for (ns, name, object, reason, typ, source) in [
        (
            "team-a",
            "web-1.a",
            "web-1",
            "Scheduled",
            "Normal",
            "default-scheduler",
        ),
        (
            "team-a", "web-1.b", "web-1", "BackOff", "Warning", "kubelet",
        ),
        ("team-a", "db-0.a", "db-0", "Pulled", "Normal", "kubelet"),
        ("team-b", "web-1.c", "web-1", "Pulled", "Normal", "kubelet"),
    ] {
        api.create(&EVENTS, ns, &event(ns, name, object, reason, typ, source))
            .await;
    }
    let events_a = api.coll(&EVENTS, Some("team-a"));
    let all_events = api.coll(&EVENTS, None);
    // what Backstage's Kubernetes frontend asks for a pod's events
    for (url, selector, want) in [
        (
            &events_a,
            "involvedObject.name=web-1",
            vec!["web-1.a", "web-1.b"],
        ),
        (&events_a, "involvedObject.name=db-0", vec!["db-0.a"]),
        (&events_a, "involvedObject.name=nothing", vec![]),
        (
            &events_a,
            "involvedObject.kind=Pod,involvedObject.name=web-1,type=Warning",
            vec!["web-1.b"],
        ),
        (
            &events_a,
            "involvedObject.namespace=team-a,reason=Pulled",
            vec!["db-0.a"],
        ),
        (&events_a, "source=kubelet", vec!["db-0.a", "web-1.b"]),
        (&events_a, "type!=Normal", vec!["web-1.b"]),
        (
            &all_events,
            "involvedObject.name=web-1",
            vec!["web-1.a", "web-1.b", "web-1.c"],
        ),
    ] {
        let (st, list) = api
            .get(&url_with(url, &[("fieldSelector", selector)]))
            .await;
        assert_eq!(st, StatusCode::OK, "{selector}: {list}");
        assert_eq!(names(&list), want, "{selector}");
    }
    // a watch with the selector sees only that object's new events
    let (_, list) = api.get(&events_a).await;
    let mut w = Watch::open(
        &api,
        &url_with(
            &events_a,
            &[
                ("watch", "1"),
                ("resourceVersion", rv_of(&list).to_string().as_str()),
                ("fieldSelector", "involvedObject.name=web-1"),
            ],
        ),
    )
    .await;
    api.create(
        &EVENTS,
        "team-a",
        &event("team-a", "db-0.b", "db-0", "Started", "Normal", "kubelet"),
    )
    .await;
    api.create(
        &EVENTS,
        "team-a",
        &event("team-a", "web-1.d", "web-1", "Started", "Normal", "kubelet"),
    )
    .await;
    let ev = w.next().await;
    assert_eq!(ev["type"], "ADDED");
    assert_eq!(ev["object"]["metadata"]["name"], "web-1.d");
    // an event about an object of another namespace is invalid
    let (st, v) = api
        .send(
            Method::POST,
            &events_a,
            Some(&event(
                "team-b", "x", "web-1", "Pulled", "Normal", "kubelet",
            )),
        )
        .await;
    assert_refused(st, &v, 422, "Invalid");
    assert_eq!(cause_fields(&v), ["involvedObject.namespace"]);

    // Secrets by type
    api.create(
        &SECRETS,
        "team-a",
        &object(&SECRETS, "team-a", "plain", json!({})),
    )
    .await;
    let tls = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cert"},
                     "type": "kubernetes.io/tls",
                     "data": {"tls.crt": "Y2VydA==", "tls.key": "a2V5"}});
    api.create(&SECRETS, "team-a", &tls).await;
    let secrets = api.coll(&SECRETS, Some("team-a"));
    for (selector, want) in [
        ("type=kubernetes.io/tls", vec!["cert"]),
        ("type=Opaque", vec!["plain"]),
        ("type!=Opaque", vec!["cert"]),
        ("type=kubernetes.io/tls,metadata.name=plain", vec![]),
    ] {
        let (st, list) = api
            .get(&url_with(&secrets, &[("fieldSelector", selector)]))
            .await;
        assert_eq!(st, StatusCode::OK, "{selector}: {list}");
        assert_eq!(names(&list), want, "{selector}");
    }
    // a TLS secret without its key is invalid
    let mut bad = tls.clone();
    bad["metadata"]["name"] = json!("half");
    bad["data"].as_object_mut().unwrap().remove("tls.key");
    let (st, v) = api.send(Method::POST, &secrets, Some(&bad)).await;
    assert_refused(st, &v, 422, "Invalid");
    assert_eq!(cause_fields(&v), ["data[tls.key]"]);

    // ReplicaSets by status.replicas
    let mut three = object(&REPLICA_SETS, "team-a", "three", json!({}));
    three["spec"]["replicas"] = json!(3);
    api.create(&REPLICA_SETS, "team-a", &three).await;
    api.create(
        &REPLICA_SETS,
        "team-a",
        &object(&REPLICA_SETS, "team-a", "one", json!({})),
    )
    .await;
    let (_, list) = api
        .get(&url_with(
            &api.coll(&REPLICA_SETS, None),
            &[("fieldSelector", "status.replicas=3")],
        ))
        .await;
    assert_eq!(names(&list), ["three"]);

    // a field the kind has no label for is a 400
    for (case, selector) in [
        (&DEPLOYMENTS, "spec.replicas=1"),
        (&SECRETS, "data.password=x"),
        (&EVENTS, "message=x"),
    ] {
        let (st, v) = api
            .get(&url_with(
                &api.coll(case, Some("team-a")),
                &[("fieldSelector", selector)],
            ))
            .await;
        assert_refused(st, &v, 400, "BadRequest");
    }
}

#[actix_web::test]
async fn invalid_objects_are_422_with_causes() {
    let (_s, api) = start(cluster()).await;
    type Mutate = fn(&mut Value);
    let cases: Vec<(&Case, &str, Mutate, &str, &str)> = vec![
        (
            &DEPLOYMENTS,
            "web",
            |v| v["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"}),
            "spec.template.metadata.labels",
            "FieldValueInvalid",
        ),
        (
            &DEPLOYMENTS,
            "no-selector",
            |v| {
                v["spec"].as_object_mut().unwrap().remove("selector");
            },
            "spec.selector",
            "FieldValueRequired",
        ),
        (
            &DEPLOYMENTS,
            "Web_Server",
            |_| {},
            "metadata.name",
            "FieldValueInvalid",
        ),
        (
            &REPLICA_SETS,
            "negative",
            |v| v["spec"]["replicas"] = json!(-1),
            "spec.replicas",
            "FieldValueInvalid",
        ),
        (
            &STATEFUL_SETS,
            "no-image",
            |v| {
                v["spec"]["template"]["spec"]["containers"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("image");
            },
            "spec.template.spec.containers[0].image",
            "FieldValueRequired",
        ),
        (
            &JOBS,
            "once",
            |v| v["spec"]["template"]["spec"]["restartPolicy"] = json!("Always"),
            "spec.template.spec.restartPolicy",
            "FieldValueNotSupported",
        ),
        (
            &CRON_JOBS,
            "nightly",
            |v| v["spec"]["schedule"] = json!("every night"),
            "spec.schedule",
            "FieldValueInvalid",
        ),
        (
            &CRON_JOBS,
            "a-cron-job-name-that-is-much-longer-than-fifty-two-chars",
            |_| {},
            "metadata.name",
            "FieldValueInvalid",
        ),
        (
            &HPAS,
            "web",
            |v| {
                v["spec"]["minReplicas"] = json!(5);
                v["spec"]["maxReplicas"] = json!(3);
            },
            "spec.minReplicas",
            "FieldValueInvalid",
        ),
        (
            &INGRESSES,
            "shop",
            |v| {
                v["spec"]["rules"][0]["http"]["paths"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("pathType");
            },
            "spec.rules[0].http.paths[0].pathType",
            "FieldValueRequired",
        ),
        (
            &CONFIG_MAPS,
            "settings",
            |v| v["data"] = json!({"bad key": "x"}),
            "data[bad key]",
            "FieldValueInvalid",
        ),
    ];
    for (case, name, mutate, field, reason) in cases {
        let mut body = object(case, "team-a", name, json!({}));
        mutate(&mut body);
        let (st, v) = api
            .send(Method::POST, &api.coll(case, Some("team-a")), Some(&body))
            .await;
        assert_refused(st, &v, 422, "Invalid");
        let what = format!("{} {name}: {v}", case.kind);
        assert_eq!(v["details"]["kind"], case.kind, "{what}");
        assert_eq!(v["details"]["name"], name, "{what}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{} {name:?} is invalid: ", qualified_kind(case))),
            "{what}"
        );
        let causes = v["details"]["causes"].as_array().unwrap();
        assert!(
            causes
                .iter()
                .any(|c| c["field"] == field && c["reason"] == reason),
            "{what}"
        );
        let (st, _) = api.get(&api.item(case, "team-a", name)).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{what}: nothing was created");
    }
    // the selector message kube-apiserver writes
    let mut body = object(&DEPLOYMENTS, "team-a", "web", json!({}));
    body["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
    let (_, v) = api
        .send(
            Method::POST,
            &api.coll(&DEPLOYMENTS, Some("team-a")),
            Some(&body),
        )
        .await;
    assert!(v["details"]["causes"][0]["message"]
        .as_str()
        .unwrap()
        .contains("`selector` does not match template `labels`"));

    // updates: the selector of a workload is immutable
    let web = api
        .create(
            &DEPLOYMENTS,
            "team-a",
            &object(&DEPLOYMENTS, "team-a", "web", json!({})),
        )
        .await;
    let web_url = api.item(&DEPLOYMENTS, "team-a", "web");
    let mut changed = web.clone();
    changed["spec"]["selector"] = json!({"matchLabels": {"app": "demo", "track": "stable"}});
    changed["spec"]["template"]["metadata"]["labels"]["track"] = json!("stable");
    let (st, v) = api.send(Method::PUT, &web_url, Some(&changed)).await;
    assert_refused(st, &v, 422, "Invalid");
    assert_eq!(cause_fields(&v), ["spec.selector"]);
    assert!(v["details"]["causes"][0]["message"]
        .as_str()
        .unwrap()
        .ends_with("field is immutable"));
    let (st, v) = api
        .patch(
            &web_url,
            MERGE,
            r#"{"spec":{"selector":{"matchLabels":{"app":"demo","track":"stable"}},
                "template":{"metadata":{"labels":{"track":"stable"}}}}}"#,
        )
        .await;
    assert_refused(st, &v, 422, "Invalid");
    assert_eq!(cause_fields(&v), ["spec.selector"]);
    // an update that breaks the selector/labels match
    let (st, v) = api
        .patch(
            &web_url,
            STRATEGIC,
            r#"{"spec":{"template":{"metadata":{"labels":{"app":"moved"}}}}}"#,
        )
        .await;
    assert_refused(st, &v, 422, "Invalid");
    assert_eq!(cause_fields(&v), ["spec.template.metadata.labels"]);
    let (_, now) = api.get(&web_url).await;
    assert_eq!(now, web, "refused updates change nothing");

    // a Job's template is immutable, a StatefulSet's serviceName too
    api.create(&JOBS, "team-a", &object(&JOBS, "team-a", "once", json!({})))
        .await;
    let (st, v) = api
        .patch(
            &api.item(&JOBS, "team-a", "once"),
            MERGE,
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"main","image":"busybox:1.37"}]}}}}"#,
        )
        .await;
    assert_refused(st, &v, 422, "Invalid");
    assert!(
        cause_fields(&v).contains(&"spec.template".to_string()),
        "{v}"
    );
    api.create(
        &STATEFUL_SETS,
        "team-a",
        &object(&STATEFUL_SETS, "team-a", "db", json!({})),
    )
    .await;
    let (st, v) = api
        .patch(
            &api.item(&STATEFUL_SETS, "team-a", "db"),
            MERGE,
            r#"{"spec":{"serviceName":"other"}}"#,
        )
        .await;
    assert_refused(st, &v, 422, "Invalid");
    assert_eq!(cause_fields(&v), ["spec"]);
    let (st, _) = api
        .patch(
            &api.item(&STATEFUL_SETS, "team-a", "db"),
            MERGE,
            r#"{"spec":{"replicas":2}}"#,
        )
        .await;
    assert_eq!(st, StatusCode::OK);

    // an immutable ConfigMap keeps its data; its metadata still changes
    let mut body = object(&CONFIG_MAPS, "team-a", "frozen", json!({}));
    body["immutable"] = json!(true);
    let cm = api.create(&CONFIG_MAPS, "team-a", &body).await;
    let cm_url = api.item(&CONFIG_MAPS, "team-a", "frozen");
    let (st, v) = api
        .patch(&cm_url, MERGE, r#"{"data":{"LOG_LEVEL":"debug"}}"#)
        .await;
    assert_refused(st, &v, 422, "Invalid");
    assert_eq!(cause_fields(&v), ["data"]);
    assert_eq!(v["details"]["causes"][0]["reason"], "FieldValueForbidden");
    let (st, v) = api.patch(&cm_url, MERGE, r#"{"immutable":false}"#).await;
    assert_refused(st, &v, 422, "Invalid");
    assert_eq!(cause_fields(&v), ["immutable"]);
    let (st, v) = api
        .patch(&cm_url, MERGE, r#"{"metadata":{"labels":{"ok":"yes"}}}"#)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["data"], cm["data"]);
    // a mutable one changes
    api.create(
        &CONFIG_MAPS,
        "team-a",
        &object(&CONFIG_MAPS, "team-a", "live", json!({})),
    )
    .await;
    let (st, v) = api
        .patch(
            &api.item(&CONFIG_MAPS, "team-a", "live"),
            MERGE,
            r#"{"data":{"LOG_LEVEL":"debug"}}"#,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["LOG_LEVEL"], "debug");
    // a Secret's type is immutable
    api.create(
        &SECRETS,
        "team-a",
        &object(&SECRETS, "team-a", "creds", json!({})),
    )
    .await;
    let (st, v) = api
        .patch(
            &api.item(&SECRETS, "team-a", "creds"),
            MERGE,
            r#"{"type":"kubernetes.io/basic-auth"}"#,
        )
        .await;
    assert_refused(st, &v, 422, "Invalid");
    assert_eq!(cause_fields(&v), ["type"]);
}

#[actix_web::test]
async fn scale_subresource_of_deployments_replicasets_and_statefulsets() {
    let (_s, api) = start(cluster()).await;
    for case in [&DEPLOYMENTS, &REPLICA_SETS, &STATEFUL_SETS] {
        let obj = api
            .create(case, "team-a", &object(case, "team-a", "web", json!({})))
            .await;
        let url = api.item(case, "team-a", "web");
        let scale_url = format!("{url}/scale");
        let (st, scale) = api.get(&scale_url).await;
        assert_eq!(st, StatusCode::OK, "{scale}");
        assert_eq!(scale["kind"], "Scale", "{}", case.kind);
        assert_eq!(scale["apiVersion"], "autoscaling/v1");
        assert_eq!(scale["metadata"]["name"], "web");
        assert_eq!(scale["metadata"]["namespace"], "team-a");
        assert_eq!(scale["metadata"]["uid"], obj["metadata"]["uid"]);
        assert_eq!(rv_of(&scale), rv_of(&obj));
        assert_eq!(scale["spec"]["replicas"], 1);
        assert_eq!(scale["status"]["replicas"], 1);
        assert_eq!(scale["status"]["selector"], "app=demo");

        let mut w = Watch::open(
            &api,
            &format!(
                "{}?watch=1&resourceVersion={}",
                api.coll(case, Some("team-a")),
                rv_of(&obj)
            ),
        )
        .await;
        let (st, scaled) = api
            .patch(&scale_url, MERGE, r#"{"spec":{"replicas":4}}"#)
            .await;
        assert_eq!(st, StatusCode::OK, "{scaled}");
        assert_eq!(scaled["kind"], "Scale");
        assert_eq!(scaled["spec"]["replicas"], 4);
        assert_eq!(scaled["status"]["replicas"], 4);
        let (_, now) = api.get(&url).await;
        assert_eq!(now["spec"]["replicas"], 4, "{}", case.kind);
        assert_eq!(now["metadata"]["generation"], 2, "{}", case.kind);
        assert_eq!(now["status"]["replicas"], 4, "{}", case.kind);
        assert_eq!(now["status"]["readyReplicas"], 4, "{}", case.kind);
        assert_eq!(now["status"]["observedGeneration"], 2, "{}", case.kind);
        assert_eq!(rv_of(&now), rv_of(&scaled));
        let ev = w.next().await;
        assert_eq!(ev["type"], "MODIFIED");
        assert_eq!(ev["object"], now);

        // PUT: a stale resourceVersion is a 409, the current one scales
        let mut stale = scaled.clone();
        stale["metadata"]["resourceVersion"] = obj["metadata"]["resourceVersion"].clone();
        stale["spec"]["replicas"] = json!(2);
        let (st, v) = api.send(Method::PUT, &scale_url, Some(&stale)).await;
        assert_refused(st, &v, 409, "Conflict");
        let mut to_zero = scaled.clone();
        to_zero["spec"]["replicas"] = json!(0);
        let (st, v) = api.send(Method::PUT, &scale_url, Some(&to_zero)).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["spec"]["replicas"], 0);
        let (_, now) = api.get(&url).await;
        assert_eq!(now["spec"]["replicas"], 0);
        assert_eq!(now["status"]["replicas"], 0);
        assert_eq!(now["status"]["readyReplicas"].as_i64().unwrap_or(0), 0);
        // a JSON patch works too; negative replicas do not
        let (st, v) = api
            .patch(
                &scale_url,
                JSON_PATCH,
                r#"[{"op":"replace","path":"/spec/replicas","value":2}]"#,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["spec"]["replicas"], 2);
        let (st, v) = api
            .patch(&scale_url, MERGE, r#"{"spec":{"replicas":-1}}"#)
            .await;
        assert_refused(st, &v, 422, "Invalid");
        let (st, v) = api
            .get(&format!("{}/scale", api.item(case, "team-a", "missing")))
            .await;
        assert_refused(st, &v, 404, "NotFound");
    }
    // kinds without a scale subresource
    api.create(
        &DAEMON_SETS,
        "team-a",
        &object(&DAEMON_SETS, "team-a", "agent", json!({})),
    )
    .await;
    let (st, _) = api
        .get(&format!(
            "{}/scale",
            api.item(&DAEMON_SETS, "team-a", "agent")
        ))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn status_subresource_changes_only_status() {
    let (_s, api) = start(cluster()).await;
    let web = api
        .create(
            &DEPLOYMENTS,
            "team-a",
            &object(&DEPLOYMENTS, "team-a", "web", json!({"app": "web"})),
        )
        .await;
    let url = api.item(&DEPLOYMENTS, "team-a", "web");
    let status_url = format!("{url}/status");
    let (st, got) = api.get(&status_url).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(got, web);

    // PUT status: the status changes; spec and metadata in the body are ignored
    let mut body = web.clone();
    body["status"]["readyReplicas"] = json!(0);
    body["status"]["availableReplicas"] = json!(0);
    body["spec"]["replicas"] = json!(7);
    body["metadata"]["labels"] = json!({"app": "changed"});
    let (st, put) = api.send(Method::PUT, &status_url, Some(&body)).await;
    assert_eq!(st, StatusCode::OK, "{put}");
    assert_eq!(put["status"]["readyReplicas"], 0);
    assert_eq!(put["status"]["availableReplicas"], 0);
    assert_eq!(put["spec"], web["spec"]);
    assert_eq!(put["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(put["metadata"]["generation"], 1);
    assert!(rv_of(&put) > rv_of(&web));
    // stale
    let (st, v) = api.send(Method::PUT, &status_url, Some(&body)).await;
    assert_refused(st, &v, 409, "Conflict");
    // PATCH status
    let (st, patched) = api
        .patch(&status_url, MERGE, r#"{"status":{"readyReplicas":1}}"#)
        .await;
    assert_eq!(st, StatusCode::OK, "{patched}");
    assert_eq!(patched["status"]["readyReplicas"], 1);
    assert_eq!(patched["status"]["availableReplicas"], 0);
    // the main resource ignores status
    let (st, main) = api
        .patch(
            &url,
            MERGE,
            r#"{"metadata":{"labels":{"x":"y"}},"status":{"readyReplicas":42}}"#,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{main}");
    assert_eq!(main["metadata"]["labels"]["x"], "y");
    assert_eq!(main["status"], patched["status"]);
    // Jobs and HPAs have one too; ConfigMaps do not
    let job = api
        .create(&JOBS, "team-a", &object(&JOBS, "team-a", "once", json!({})))
        .await;
    let (st, v) = api
        .patch(
            &format!("{}/status", api.item(&JOBS, "team-a", "once")),
            MERGE,
            r#"{"status":{"succeeded":0,"failed":1}}"#,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"]["failed"], 1);
    assert_eq!(v["spec"], job["spec"]);
    api.create(&HPAS, "team-a", &object(&HPAS, "team-a", "web", json!({})))
        .await;
    let (st, v) = api
        .patch(
            &format!("{}/status", api.item(&HPAS, "team-a", "web")),
            MERGE,
            r#"{"status":{"currentReplicas":4,"desiredReplicas":5}}"#,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"]["desiredReplicas"], 5);
    api.create(
        &CONFIG_MAPS,
        "team-a",
        &object(&CONFIG_MAPS, "team-a", "settings", json!({})),
    )
    .await;
    let (st, _) = api
        .get(&format!(
            "{}/status",
            api.item(&CONFIG_MAPS, "team-a", "settings")
        ))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn deleting_an_owner_deletes_its_dependents() {
    let (_s, api) = start(cluster_with_seed(CRDS)).await;
    let web = api
        .create(
            &DEPLOYMENTS,
            "team-a",
            &object(&DEPLOYMENTS, "team-a", "web", json!({})),
        )
        .await;
    // The deployment controller made the ReplicaSet of web's template.
    let (_, listed) = api.get(&api.coll(&REPLICA_SETS, Some("team-a"))).await;
    let made = keys(&listed);
    assert_eq!(made.len(), 1, "{made:?}");
    assert!(made[0].starts_with("team-a/web-"), "{made:?}");
    let owned_by = |owner: &Value, kind: &str| {
        json!([{"apiVersion": owner["apiVersion"], "kind": kind,
                "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                "controller": true, "blockOwnerDeletion": true}])
    };
    let mut rs = object(&REPLICA_SETS, "team-a", "web-5d4f8", json!({}));
    rs["metadata"]["ownerReferences"] = owned_by(&web, "Deployment");
    let rs = api.create(&REPLICA_SETS, "team-a", &rs).await;
    let mut old_rs = object(&REPLICA_SETS, "team-a", "web-7c9b2", json!({}));
    old_rs["metadata"]["ownerReferences"] = owned_by(&web, "Deployment");
    api.create(&REPLICA_SETS, "team-a", &old_rs).await;
    // a dependent of a dependent, of another kind
    let mut cm = object(&CONFIG_MAPS, "team-a", "web-5d4f8-config", json!({}));
    cm["metadata"]["ownerReferences"] = owned_by(&rs, "ReplicaSet");
    api.create(&CONFIG_MAPS, "team-a", &cm).await;
    let mut hpa = object(&HPAS, "team-a", "web", json!({}));
    hpa["metadata"]["ownerReferences"] = owned_by(&web, "Deployment");
    api.create(&HPAS, "team-a", &hpa).await;
    // not dependents: no owner, another owner
    api.create(
        &REPLICA_SETS,
        "team-a",
        &object(&REPLICA_SETS, "team-a", "standalone", json!({})),
    )
    .await;
    let mut other = object(&CONFIG_MAPS, "team-a", "other-owner", json!({}));
    other["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "Deployment",
        "name": "web", "uid": "00000000-0000-0000-0000-000000000000"}]);
    api.create(&CONFIG_MAPS, "team-a", &other).await;

    let mut w = Watch::open(
        &api,
        &format!(
            "{}?watch=1&resourceVersion={}",
            api.coll(&REPLICA_SETS, None),
            rv_of(&web)
        ),
    )
    .await;
    for _ in 0..4 {
        assert_eq!(w.next().await["type"], "ADDED");
    }
    let (st, deleted) = api
        .send(
            Method::DELETE,
            &api.item(&DEPLOYMENTS, "team-a", "web"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{deleted}");
    assert_eq!(deleted["kind"], "Deployment");
    assert_eq!(deleted["metadata"]["uid"], web["metadata"]["uid"]);
    for (case, name) in [
        (&DEPLOYMENTS, "web"),
        (&REPLICA_SETS, "web-5d4f8"),
        (&REPLICA_SETS, "web-7c9b2"),
        (&CONFIG_MAPS, "web-5d4f8-config"),
        (&HPAS, "web"),
    ] {
        let (st, v) = api.get(&api.item(case, "team-a", name)).await;
        assert_refused(st, &v, 404, "NotFound");
    }
    for (case, name) in [(&REPLICA_SETS, "standalone"), (&CONFIG_MAPS, "other-owner")] {
        let (st, _) = api.get(&api.item(case, "team-a", name)).await;
        assert_eq!(st, StatusCode::OK, "{name} stays");
    }
    let mut gone = BTreeSet::new();
    let mut last = rv_of(&deleted);
    for _ in 0..3 {
        let ev = w.next().await;
        assert_eq!(ev["type"], "DELETED", "{ev}");
        assert!(rv_of(&ev["object"]) > last);
        last = rv_of(&ev["object"]);
        gone.insert(key(&ev["object"]));
    }
    assert_eq!(
        gone,
        BTreeSet::from([
            "team-a/web-5d4f8".to_string(),
            "team-a/web-7c9b2".into(),
            made[0].clone()
        ])
    );

    // a cluster-scoped owner (a custom Tenant) and its dependents in namespaces
    let tenants = format!("{}/apis/platform.example.net/v1/tenants", api.base);
    let (_, acme) = api.get(&format!("{tenants}/acme")).await;
    for ns in ["team-a", "team-b"] {
        let mut cm = object(&CONFIG_MAPS, ns, "acme-settings", json!({}));
        cm["metadata"]["ownerReferences"] = owned_by(&acme, "Tenant");
        api.create(&CONFIG_MAPS, ns, &cm).await;
    }
    let (st, v) = api
        .send(Method::DELETE, &format!("{tenants}/acme"), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    for ns in ["team-a", "team-b"] {
        let (st, v) = api.get(&api.item(&CONFIG_MAPS, ns, "acme-settings")).await;
        assert_refused(st, &v, 404, "NotFound");
    }
}

const CRDS: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
    - {name: v1, served: true, storage: true,
       schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}}
    - {name: v1beta1, served: false, storage: false}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: seeded, namespace: team-a, labels: {size: large}}
spec: {size: 5, parts: [{name: bolt, count: 2}]}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: tenants.platform.example.net}
spec:
  group: platform.example.net
  scope: Cluster
  names: {plural: tenants, kind: Tenant}
  versions: [{name: v1, served: true, storage: true}]
---
apiVersion: platform.example.net/v1
kind: Tenant
metadata: {name: acme}
spec: {owner: ops}
"#;

const WIDGETS: Case = Case {
    prefix: "apis/example.com/v1",
    plural: "widgets",
    kind: "Widget",
    api_version: "example.com/v1",
    generation: true,
    custom: true,
    sample: |_| json!({"spec": {"size": 1}}),
};

#[actix_web::test]
async fn custom_resources_from_a_seed_crd_and_from_config() {
    let (_s, api) = start(cluster_with_seed(CRDS)).await;
    // the seeded object, as given
    let (st, list) = api.get(&api.coll(&WIDGETS, Some("team-a"))).await;
    assert_eq!(st, StatusCode::OK, "{list}");
    assert_eq!(list["kind"], "WidgetList");
    assert_eq!(list["apiVersion"], "example.com/v1");
    assert_eq!(names(&list), ["seeded"]);
    let seeded = &list["items"][0];
    assert_eq!(
        seeded["spec"],
        json!({"size": 5, "parts": [{"name": "bolt", "count": 2}]})
    );
    assert_eq!(seeded["metadata"]["generation"], 1);
    assert_eq!(seeded["metadata"]["uid"].as_str().unwrap().len(), 36);
    let (_, all) = api.get(&api.coll(&WIDGETS, None)).await;
    assert_eq!(keys(&all), ["team-a/seeded"]);
    // a version the CRD does not serve, a group nobody declared
    let (st, _) = api
        .get(&format!(
            "{}/apis/example.com/v1beta1/namespaces/team-a/widgets",
            api.base
        ))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, _) = api
        .get(&format!("{}/apis/nothing.example.com/v1/things", api.base))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // create: any fields, no defaults; selectors work as for built-in kinds
    let mut body = object(&WIDGETS, "team-a", "small", json!({"size": "small"}));
    body["spec"] = json!({"size": 1, "nested": {"deep": [1, 2, {"x": "y"}]}});
    body["extra"] = json!({"top": "level"});
    let small = api.create(&WIDGETS, "team-a", &body).await;
    assert_eq!(small["spec"], body["spec"]);
    assert_eq!(small["extra"], body["extra"]);
    assert_eq!(small["metadata"]["generation"], 1);
    let (_, got) = api.get(&api.item(&WIDGETS, "team-a", "small")).await;
    assert_eq!(got, small);
    let (_, large) = api
        .get(&url_with(
            &api.coll(&WIDGETS, None),
            &[("labelSelector", "size=large")],
        ))
        .await;
    assert_eq!(names(&large), ["seeded"]);
    // a spec change bumps the generation
    let (st, v) = api
        .patch(
            &api.item(&WIDGETS, "team-a", "small"),
            MERGE,
            r#"{"spec":{"size":2}}"#,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["metadata"]["generation"], 2);

    // without a status subresource a custom resource's status is one of its fields, as
    // kube-apiserver keeps it: set on create, changed by updates, bumping the generation
    let mut body = object(&WIDGETS, "team-a", "ready", json!({}));
    body["status"] = json!({"phase": "Ready"});
    let ready = api.create(&WIDGETS, "team-a", &body).await;
    assert_eq!(ready["status"], json!({"phase": "Ready"}), "{ready}");
    let ready_url = api.item(&WIDGETS, "team-a", "ready");
    let (st, v) = api
        .patch(&ready_url, MERGE, r#"{"status":{"phase":"Done"}}"#)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], json!({"phase": "Done"}));
    assert_eq!(v["metadata"]["generation"], 2);
    let mut replaced = v.clone();
    replaced["status"] = json!({"phase": "Gone"});
    let (st, v) = api.send(Method::PUT, &ready_url, Some(&replaced)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["status"], json!({"phase": "Gone"}));
    let (st, _) = api.get(&format!("{ready_url}/status")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, v) = api.send(Method::DELETE, &ready_url, None).await;
    assert_eq!(st, StatusCode::OK, "{v}");

    // Tables: NAME and AGE
    for url in [
        api.coll(&WIDGETS, Some("team-a")),
        api.coll(&GADGETS, Some("team-a")),
    ] {
        if url.contains("gadgets") {
            api.create(
                &GADGETS,
                "team-a",
                &object(&GADGETS, "team-a", "g1", json!({})),
            )
            .await;
        }
        let (st, t) = api.table(&url).await;
        assert_eq!(st, StatusCode::OK, "{t}");
        assert_eq!(t["kind"], "Table");
        let columns: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(columns, ["Name", "Age"], "{url}");
        let rows: Vec<&Value> = t["rows"].as_array().unwrap().iter().collect();
        let first: Vec<&str> = rows
            .iter()
            .map(|r| r["cells"][0].as_str().unwrap())
            .collect();
        if url.contains("gadgets") {
            assert_eq!(first, ["g1"]);
        } else {
            assert_eq!(first, ["seeded", "small"]);
        }
        assert!(rows.iter().all(|r| r["cells"][1].is_string()));
    }

    // a cluster-scoped custom type
    let tenants = format!("{}/apis/platform.example.net/v1/tenants", api.base);
    let (st, list) = api.get(&tenants).await;
    assert_eq!(st, StatusCode::OK, "{list}");
    assert_eq!(list["kind"], "TenantList");
    assert_eq!(keys(&list), ["acme"]);
    assert!(list["items"][0]["metadata"].get("namespace").is_none());
    let (st, v) = api
        .send(
            Method::POST,
            &tenants,
            Some(
                &json!({"apiVersion": "platform.example.net/v1", "kind": "Tenant",
                         "metadata": {"name": "globex"}, "spec": {"owner": "dev"}}),
            ),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert!(v["metadata"].get("namespace").is_none(), "{v}");
    let (st, _) = api
        .get(&format!(
            "{}/apis/platform.example.net/v1/namespaces/team-a/tenants",
            api.base
        ))
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, v) = api
        .send(Method::DELETE, &format!("{tenants}/globex"), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (_, list) = api.get(&tenants).await;
    assert_eq!(keys(&list), ["acme"]);
}

#[actix_web::test]
async fn tokens_limited_to_a_namespace() {
    let mut cfg = cluster();
    cfg.tokens = vec![
        SimToken {
            token: "admin".into(),
            ..Default::default()
        },
        SimToken {
            token: "team-a".into(),
            namespaces: Some(vec!["team-a".into()]),
            verbs: None,
        },
        SimToken {
            token: "reader".into(),
            namespaces: None,
            verbs: Some(vec!["get".into(), "list".into(), "watch".into()]),
        },
    ];
    let (_s, anonymous) = start(cfg).await;
    let admin = anonymous.with_token("admin");
    let team_a = anonymous.with_token("team-a");
    let reader = anonymous.with_token("reader");
    for ns in ["team-a", "team-b"] {
        admin
            .create(
                &DEPLOYMENTS,
                ns,
                &object(&DEPLOYMENTS, ns, "web", json!({})),
            )
            .await;
    }
    let (st, v) = anonymous.get(&anonymous.coll(&DEPLOYMENTS, None)).await;
    assert_refused(st, &v, 401, "Unauthorized");

    // the namespace-limited token: everything in team-a
    let (st, list) = team_a.get(&team_a.coll(&DEPLOYMENTS, Some("team-a"))).await;
    assert_eq!(st, StatusCode::OK, "{list}");
    assert_eq!(keys(&list), ["team-a/web"]);
    let (st, _) = team_a
        .get(&team_a.item(&DEPLOYMENTS, "team-a", "web"))
        .await;
    assert_eq!(st, StatusCode::OK);
    team_a
        .create(
            &DEPLOYMENTS,
            "team-a",
            &object(&DEPLOYMENTS, "team-a", "api", json!({})),
        )
        .await;
    let (st, _) = team_a
        .patch(
            &format!("{}/scale", team_a.item(&DEPLOYMENTS, "team-a", "api")),
            MERGE,
            r#"{"spec":{"replicas":2}}"#,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    // ... and nothing in team-b, nor across namespaces
    let b = |name: &str| team_a.item(&DEPLOYMENTS, "team-b", name);
    let b_coll = team_a.coll(&DEPLOYMENTS, Some("team-b"));
    let refusals: Vec<(&str, (StatusCode, Value))> = vec![
        ("list", team_a.get(&b_coll).await),
        ("watch", team_a.get(&format!("{b_coll}?watch=1")).await),
        ("get", team_a.get(&b("web")).await),
        (
            "create",
            team_a
                .send(
                    Method::POST,
                    &b_coll,
                    Some(&object(&DEPLOYMENTS, "team-b", "api", json!({}))),
                )
                .await,
        ),
        (
            "patch",
            team_a
                .patch(&b("web"), MERGE, r#"{"metadata":{"labels":{"x":"y"}}}"#)
                .await,
        ),
        ("delete", team_a.send(Method::DELETE, &b("web"), None).await),
        (
            "deletecollection",
            team_a.send(Method::DELETE, &b_coll, None).await,
        ),
        ("get", team_a.get(&format!("{}/scale", b("web"))).await),
        ("list", team_a.get(&team_a.coll(&DEPLOYMENTS, None)).await),
    ];
    for (verb, (st, v)) in refusals {
        assert_refused(st, &v, 403, "Forbidden");
        let message = v["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("cannot {verb} resource \"deployments")),
            "{verb}: {message}"
        );
        assert!(
            message.contains("in the namespace \"team-b\"")
                || message.ends_with("at the cluster scope"),
            "{message}"
        );
    }
    // other kinds in team-b too
    for case in [&CONFIG_MAPS, &JOBS, &GADGETS] {
        let (st, v) = team_a.get(&team_a.coll(case, Some("team-b"))).await;
        assert_refused(st, &v, 403, "Forbidden");
    }
    let (_, list) = admin.get(&admin.coll(&DEPLOYMENTS, Some("team-b"))).await;
    assert_eq!(keys(&list), ["team-b/web"], "team-b untouched");

    // the read-only token reads everywhere and writes nowhere
    let (st, list) = reader.get(&reader.coll(&DEPLOYMENTS, None)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(keys(&list).len(), 3);
    let (st, v) = reader
        .patch(
            &format!("{}/scale", reader.item(&DEPLOYMENTS, "team-b", "web")),
            MERGE,
            r#"{"spec":{"replicas":3}}"#,
        )
        .await;
    assert_refused(st, &v, 403, "Forbidden");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("cannot patch resource \"deployments/scale\""));
}

/// The kinds the concurrent writers mix.
static MIXED: [&Case; 6] = [
    &CONFIG_MAPS,
    &SECRETS,
    &DEPLOYMENTS,
    &JOBS,
    &INGRESSES,
    &GADGETS,
];

#[actix_web::test]
async fn watches_per_kind_see_every_change_once_under_concurrent_writers() {
    let (server, api) = start(cluster()).await;
    let rv0 = server.resource_version();
    let mut watches = Vec::new();
    for case in MIXED {
        watches.push(
            Watch::open(
                &api,
                &format!("{}?watch=1&resourceVersion={rv0}", api.coll(case, None)),
            )
            .await,
        );
    }
    const WRITERS: usize = 6;
    const EACH: usize = 12;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            // (kind index, type, key, resourceVersion)
            let mut done: Vec<(usize, &'static str, String, u64)> = Vec::new();
            for i in 0..EACH {
                let k = (w + i) % MIXED.len();
                let case = MIXED[k];
                let ns = if i % 2 == 0 { "team-a" } else { "team-b" };
                let name = format!("w{w}-{i}");
                let created = api
                    .create(
                        case,
                        ns,
                        &object(case, ns, &name, json!({"writer": w.to_string()})),
                    )
                    .await;
                done.push((k, "ADDED", key(&created), rv_of(&created)));
                let (st, patched) = api
                    .patch(
                        &api.item(case, ns, &name),
                        MERGE,
                        r#"{"metadata":{"labels":{"touched":"yes"}}}"#,
                    )
                    .await;
                assert_eq!(st, StatusCode::OK, "{patched}");
                done.push((k, "MODIFIED", key(&patched), rv_of(&patched)));
                if i % 3 == 0 {
                    let (st, deleted) = api
                        .send(Method::DELETE, &api.item(case, ns, &name), None)
                        .await;
                    assert_eq!(st, StatusCode::OK, "{deleted}");
                    done.push((k, "DELETED", key(&deleted), rv_of(&deleted)));
                }
            }
            done
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let rvs: BTreeSet<u64> = all.iter().map(|e| e.3).collect();
    assert_eq!(
        rvs.len(),
        all.len(),
        "every write has its own resourceVersion"
    );
    for (k, w) in watches.iter_mut().enumerate() {
        let case = MIXED[k];
        let mut expected: Vec<(&str, String, u64)> = all
            .iter()
            .filter(|e| e.0 == k)
            .map(|e| (e.1, e.2.clone(), e.3))
            .collect();
        expected.sort_by_key(|e| e.2);
        // a sentinel written after everything: nothing else may come before it
        let sentinel = api
            .create(
                case,
                "team-a",
                &object(case, "team-a", "sentinel", json!({})),
            )
            .await;
        expected.push(("ADDED", "team-a/sentinel".into(), rv_of(&sentinel)));
        let mut seen = Vec::new();
        for _ in 0..expected.len() {
            let ev = w.next().await;
            assert_eq!(ev["object"]["kind"], case.kind, "{ev}");
            seen.push((
                match ev["type"].as_str().unwrap() {
                    "ADDED" => "ADDED",
                    "MODIFIED" => "MODIFIED",
                    "DELETED" => "DELETED",
                    other => panic!("unexpected event {other}: {ev}"),
                },
                key(&ev["object"]),
                rv_of(&ev["object"]),
            ));
        }
        assert_eq!(seen, expected, "{}: every change once, in order", case.kind);
    }
}

// ---------------------------------------------------------------------------------------
// The Python kubernetes client decodes every kind
// ---------------------------------------------------------------------------------------

const PY_SEED: &str = r#"
apiVersion: v1
kind: List
items:
  - {apiVersion: v1, kind: Namespace, metadata: {name: shop}}
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web, namespace: shop, labels: {app: web}}
    spec:
      replicas: 3
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec:
          containers:
            - name: web
              image: nginx:1.27
              ports: [{containerPort: 80}]
              resources: {requests: {cpu: 100m, memory: 64Mi}}
  - apiVersion: apps/v1
    kind: ReplicaSet
    metadata:
      name: web-5d4f8
      namespace: shop
      labels: {app: web}
      ownerReferences:
        - {apiVersion: apps/v1, kind: Deployment, name: web, uid: 0b9d1c9e-1111-2222-3333-444455556666, controller: true}
    spec:
      replicas: 3
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec: {containers: [{name: web, image: nginx:1.27}]}
  - apiVersion: apps/v1
    kind: StatefulSet
    metadata: {name: db, namespace: shop}
    spec:
      replicas: 2
      serviceName: db
      selector: {matchLabels: {app: db}}
      template:
        metadata: {labels: {app: db}}
        spec: {containers: [{name: postgres, image: postgres:16}]}
  - apiVersion: apps/v1
    kind: DaemonSet
    metadata: {name: node-agent, namespace: kube-system}
    spec:
      selector: {matchLabels: {app: node-agent}}
      template:
        metadata: {labels: {app: node-agent}}
        spec: {containers: [{name: agent, image: fluent/fluent-bit:3.0}]}
  - apiVersion: batch/v1
    kind: Job
    metadata: {name: migrate, namespace: shop}
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: migrate, image: busybox:1.36, command: ["true"]}]
  - apiVersion: batch/v1
    kind: CronJob
    metadata: {name: nightly, namespace: shop}
    spec:
      schedule: "0 3 * * *"
      jobTemplate:
        spec:
          template:
            spec:
              restartPolicy: OnFailure
              containers: [{name: backup, image: busybox:1.36}]
  - apiVersion: autoscaling/v2
    kind: HorizontalPodAutoscaler
    metadata: {name: web, namespace: shop}
    spec:
      scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
      minReplicas: 2
      maxReplicas: 10
      metrics:
        - type: Resource
          resource: {name: cpu, target: {type: Utilization, averageUtilization: 70}}
  - apiVersion: networking.k8s.io/v1
    kind: Ingress
    metadata: {name: shop, namespace: shop}
    spec:
      ingressClassName: nginx
      tls: [{hosts: [shop.example.com], secretName: shop-tls}]
      rules:
        - host: shop.example.com
          http:
            paths:
              - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: settings, namespace: shop}
    data: {LOG_LEVEL: info}
  - apiVersion: v1
    kind: Secret
    metadata: {name: db-creds, namespace: shop}
    stringData: {password: hunter2}
  - apiVersion: v1
    kind: LimitRange
    metadata: {name: limits, namespace: shop}
    spec:
      limits: [{type: Container, default: {cpu: 500m}, defaultRequest: {cpu: 100m}}]
  - apiVersion: v1
    kind: ResourceQuota
    metadata: {name: quota, namespace: shop}
    spec: {hard: {pods: "20", requests.cpu: "8"}}
  - apiVersion: v1
    kind: Event
    metadata: {name: web-5d4f8-abcde.1, namespace: shop}
    involvedObject: {apiVersion: v1, kind: Pod, name: web-5d4f8-abcde, namespace: shop}
    reason: Scheduled
    message: Successfully assigned shop/web-5d4f8-abcde to node-1
    type: Normal
    source: {component: default-scheduler}
    count: 1
    firstTimestamp: "2025-01-10T12:00:00Z"
    lastTimestamp: "2025-01-10T12:00:00Z"
  - apiVersion: v1
    kind: Event
    metadata: {name: db-0.1, namespace: shop}
    involvedObject: {apiVersion: v1, kind: Pod, name: db-0, namespace: shop}
    reason: BackOff
    message: Back-off restarting failed container
    type: Warning
    source: {component: kubelet, host: node-1}
    count: 4
    firstTimestamp: "2025-01-10T12:00:00Z"
    lastTimestamp: "2025-01-10T12:05:00Z"
  - apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata: {name: widgets.example.com}
    spec:
      group: example.com
      scope: Namespaced
      names: {plural: widgets, kind: Widget}
      versions: [{name: v1, served: true, storage: true}]
  - apiVersion: example.com/v1
    kind: Widget
    metadata: {name: gear, namespace: shop}
    spec: {size: 3}
"#;

const PY_SCRIPT: &str = r#"
import base64, json, sys
from kubernetes import client

cfg = client.Configuration()
cfg.host = sys.argv[1]
api = client.ApiClient(cfg)
apps = client.AppsV1Api(api)
batch = client.BatchV1Api(api)
autoscaling = client.AutoscalingV2Api(api)
networking = client.NetworkingV1Api(api)
core = client.CoreV1Api(api)
custom = client.CustomObjectsApi(api)
out = {}

deps = apps.list_deployment_for_all_namespaces()
out["deployments"] = sorted(f"{d.metadata.namespace}/{d.metadata.name}" for d in deps.items)
web = apps.read_namespaced_deployment("web", "shop")
out["web"] = [web.spec.replicas, web.status.ready_replicas, web.status.available_replicas,
              web.spec.strategy.type, web.spec.strategy.rolling_update.max_surge,
              web.spec.template.spec.containers[0].resources.requests["cpu"],
              web.metadata.generation, hasattr(web.metadata.creation_timestamp, "year"),
              [c.type for c in web.status.conditions]]
rs = apps.list_namespaced_replica_set("shop")
out["replica_sets"] = [[r.metadata.name, r.spec.replicas, r.status.ready_replicas,
                        r.metadata.owner_references[0].kind] for r in rs.items]
sts = apps.list_namespaced_stateful_set("shop")
out["stateful_sets"] = [[s.metadata.name, s.spec.service_name, s.spec.replicas,
                         s.status.ready_replicas, s.spec.update_strategy.type] for s in sts.items]
ds = apps.list_namespaced_daemon_set("kube-system")
out["daemon_sets"] = [[d.metadata.name, d.status.desired_number_scheduled, d.status.number_ready]
                      for d in ds.items]
scale = apps.patch_namespaced_deployment_scale("web", "shop", {"spec": {"replicas": 4}})
out["scale"] = [type(scale).__name__, scale.spec.replicas, scale.status.selector]
web = apps.read_namespaced_deployment("web", "shop")
out["scaled"] = [web.spec.replicas, web.status.ready_replicas, web.metadata.generation,
                 web.status.observed_generation]

jobs = batch.list_namespaced_job("shop")
out["jobs"] = [[j.metadata.name, j.spec.completions, j.status.succeeded,
                [c.type for c in j.status.conditions]] for j in jobs.items]
cjs = batch.list_namespaced_cron_job("shop")
out["cron_jobs"] = [[c.metadata.name, c.spec.schedule, c.spec.suspend, c.spec.concurrency_policy]
                    for c in cjs.items]
hpas = autoscaling.list_namespaced_horizontal_pod_autoscaler("shop")
out["hpas"] = [[h.metadata.name, h.spec.min_replicas, h.spec.max_replicas,
                h.spec.scale_target_ref.name,
                h.spec.metrics[0].resource.target.average_utilization,
                h.status.desired_replicas] for h in hpas.items]
ings = networking.list_namespaced_ingress("shop")
out["ingresses"] = [[i.metadata.name, i.spec.ingress_class_name, i.spec.rules[0].host,
                     i.spec.rules[0].http.paths[0].path_type,
                     i.spec.rules[0].http.paths[0].backend.service.port.number,
                     i.spec.tls[0].secret_name] for i in ings.items]

cms = core.list_namespaced_config_map("shop")
out["config_maps"] = [[c.metadata.name, c.data] for c in cms.items if c.metadata.name == "settings"]
secrets = core.list_namespaced_secret("shop")
out["secrets"] = [[s.metadata.name, s.type, base64.b64decode(s.data["password"]).decode()]
                  for s in secrets.items]
lrs = core.list_namespaced_limit_range("shop")
out["limit_ranges"] = [[l.metadata.name, l.spec.limits[0].type, l.spec.limits[0].default["cpu"]]
                       for l in lrs.items]
rqs = core.list_namespaced_resource_quota("shop")
out["quotas"] = [[q.metadata.name, q.spec.hard["pods"], q.status.hard["pods"], q.status.used["pods"]]
                 for q in rqs.items]
evs = core.list_namespaced_event("shop", field_selector="involvedObject.name=db-0")
out["events"] = [[e.metadata.name, e.reason, e.type, e.count, e.involved_object.kind,
                  e.source.component, hasattr(e.last_timestamp, "year")] for e in evs.items]
all_events = core.list_event_for_all_namespaces()
out["event_count"] = len(all_events.items)

widgets = custom.list_namespaced_custom_object("example.com", "v1", "shop", "widgets")
out["widgets"] = [[w["metadata"]["name"], w["spec"]["size"]] for w in widgets["items"]]
out["widget_list_kind"] = widgets["kind"]
gear = custom.get_namespaced_custom_object("example.com", "v1", "shop", "widgets", "gear")
out["gear"] = [gear["kind"], gear["apiVersion"], gear["spec"]]
print(json.dumps(out))
"#;

fn python_has_kubernetes() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import kubernetes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[actix_web::test]
async fn python_kubernetes_client_decodes_every_kind() {
    // A missing tool is a failure, never a silent pass: `.ci/run` installs it.
    assert!(
        python_has_kubernetes(),
        "python_kubernetes_client_decodes_every_kind needs python3 with the `kubernetes` \
         package (pip install kubernetes==37.0.2, as .ci/run does)"
    );
    let cfg = SimClusterConfig {
        name: "py-kinds".into(),
        seed: Some(SeedSource::Text {
            name: "python kinds seed".into(),
            text: PY_SEED.into(),
        }),
        ..SimClusterConfig::default()
    };
    let sim = sim::spawn("127.0.0.1:0", &cfg)
        .await
        .expect("start simulated cluster");
    let url = sim.url().as_str().trim_end_matches('/').to_owned();
    let child = tokio::process::Command::new("python3")
        .args(["-c", PY_SCRIPT, &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start python3");
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("the Python client finished")
        .expect("python output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_str(stdout.trim()).expect("script printed JSON");

    assert_eq!(got["deployments"], json!(["shop/web"]));
    assert_eq!(
        got["web"],
        json!([
            3,
            3,
            3,
            "RollingUpdate",
            "25%",
            "100m",
            1,
            true,
            ["Available", "Progressing"]
        ])
    );
    assert_eq!(
        got["replica_sets"],
        json!([["web-5d4f8", 3, 3, "Deployment"]])
    );
    assert_eq!(
        got["stateful_sets"],
        json!([["db", "db", 2, 2, "RollingUpdate"]])
    );
    assert_eq!(got["daemon_sets"], json!([["node-agent", 1, 1]]));
    assert_eq!(got["scale"], json!(["V1Scale", 4, "app=web"]));
    assert_eq!(got["scaled"], json!([4, 4, 2, 2]));
    assert_eq!(
        got["jobs"],
        json!([["migrate", 1, 1, ["SuccessCriteriaMet", "Complete"]]])
    );
    assert_eq!(
        got["cron_jobs"],
        json!([["nightly", "0 3 * * *", false, "Allow"]])
    );
    assert_eq!(got["hpas"], json!([["web", 2, 10, "web", 70, 2]]));
    assert_eq!(
        got["ingresses"],
        json!([[
            "shop",
            "nginx",
            "shop.example.com",
            "Prefix",
            80,
            "shop-tls"
        ]])
    );
    assert_eq!(
        got["config_maps"],
        json!([["settings", {"LOG_LEVEL": "info"}]])
    );
    assert_eq!(got["secrets"], json!([["db-creds", "Opaque", "hunter2"]]));
    assert_eq!(
        got["limit_ranges"],
        json!([["limits", "Container", "500m"]])
    );
    assert_eq!(got["quotas"], json!([["quota", "20", "20", "0"]]));
    assert_eq!(
        got["events"],
        json!([["db-0.1", "BackOff", "Warning", 4, "Pod", "kubelet", true]])
    );
    // The two seeded Events, and the deployment controller's "Scaled up replica set
    // web-5d4f8 from 3 to 4" (it adopted the seeded ReplicaSet: no second one).
    assert_eq!(got["event_count"], 3);
    assert_eq!(got["widgets"], json!([["gear", 3]]));
    assert_eq!(got["widget_list_kind"], "WidgetList");
    assert_eq!(
        got["gear"],
        json!(["Widget", "example.com/v1", {"size": 3}])
    );
}

/// Errors about kinds of a named group name the group as the API server does
/// (`deployments.apps "x" not found`, `details.group`), a deleted namespace takes every
/// object in it along, Jobs answer the `status.successful` field label, and custom
/// resources list their items with `kind` and `apiVersion`.
#[actix_web::test]
async fn group_errors_namespace_deletion_job_field_label_and_custom_list_items() {
    let mut cfg = cluster();
    cfg.tokens = vec![
        SimToken {
            token: "admin".into(),
            ..Default::default()
        },
        SimToken {
            token: "team-a".into(),
            namespaces: Some(vec!["team-a".into()]),
            verbs: None,
        },
    ];
    let (_server, anon) = start(cfg).await;
    let api = anon.with_token("admin");

    let (st, v) = api.get(&api.item(&DEPLOYMENTS, "team-a", "nope")).await;
    assert_refused(st, &v, 404, "NotFound");
    assert_eq!(v["message"], r#"deployments.apps "nope" not found"#);
    assert_eq!(v["details"]["group"], "apps");
    assert_eq!(v["details"]["kind"], "deployments");
    let (st, v) = api
        .with_token("team-a")
        .get(&api.coll(&DEPLOYMENTS, Some("team-b")))
        .await;
    assert_refused(st, &v, 403, "Forbidden");
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.starts_with("deployments.apps is forbidden")
            && msg.contains(r#"in API group "apps" in the namespace "team-b""#),
        "{msg}"
    );
    let mut bad = object(&DEPLOYMENTS, "team-a", "bad", json!({}));
    bad["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
    let (st, v) = api
        .send(
            Method::POST,
            &api.coll(&DEPLOYMENTS, Some("team-a")),
            Some(&bad),
        )
        .await;
    assert_refused(st, &v, 422, "Invalid");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .starts_with(r#"Deployment.apps "bad" is invalid"#));
    assert_eq!(v["details"]["group"], "apps");

    // A Job's `status.successful` field label.
    api.create(&JOBS, "team-a", &object(&JOBS, "team-a", "done", json!({})))
        .await;
    let url = url_with(
        &api.coll(&JOBS, Some("team-a")),
        &[("fieldSelector", "status.successful=1")],
    );
    let (st, v) = api.get(&url).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(names(&v), vec!["done".to_string()]);

    // Custom resource list items are whole objects.
    api.create(
        &GADGETS,
        "team-a",
        &object(&GADGETS, "team-a", "g1", json!({})),
    )
    .await;
    let (_, v) = api.get(&api.coll(&GADGETS, Some("team-a"))).await;
    assert_eq!(v["items"][0]["kind"], "Gadget");
    assert_eq!(v["items"][0]["apiVersion"], "tools.example.org/v1alpha1");

    // Deleting the namespace deletes what was in it.
    api.create(
        &DEPLOYMENTS,
        "team-a",
        &object(&DEPLOYMENTS, "team-a", "web", json!({})),
    )
    .await;
    let ns_url = format!("{}/api/v1/namespaces/team-a", api.base);
    let (st, _) = api.send(Method::DELETE, &ns_url, None).await;
    assert_eq!(st, StatusCode::OK);
    for case in [&DEPLOYMENTS, &REPLICA_SETS, &EVENTS, &JOBS, &GADGETS] {
        let (_, v) = api.get(&api.coll(case, None)).await;
        let left: Vec<String> = keys(&v)
            .into_iter()
            .filter(|k| k.starts_with("team-a/"))
            .collect();
        assert!(left.is_empty(), "{}: {left:?}", case.plural);
    }
}
