//! Aggregation (SPEC §6, issue 11): `GET {base}/aggregate/{path}` against a fleet of
//! simulated clusters started in-process: fourteen members, one down, one slower than the
//! timeout, one refusing this caller's token, one failing every request. Lists, gets,
//! Tables, the cluster header, writes and kinds some members lack; then kubectl 1.32 pointed
//! at the aggregate URL. (Watch, pagination and the cache are tested with their features.)

use crate::common::{http, settings_with, spawn_app};
use crate::kubectl_support::{cells, Kubectl};
use kubeplex::app::RunningApp;
use kubeplex::config::ClusterConfig;
use kubeplex::sim::config::{SeedSource, SimClusterConfig, SimFaults, SimToken};
use kubeplex::sim::kinds::CustomType;
use kubeplex::sim::SimServer;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

/// The caller's Kubernetes token (auth mode `none`: it goes upstream verbatim).
const TOKEN: &str = "alice";
/// A member's timeout: short, yet far above what a healthy simulator needs on a busy machine.
const TIMEOUT: Duration = Duration::from_secs(2);
/// kubectl's `Accept` for `get`.
const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

/// What a member is.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Role {
    Healthy,
    /// Nothing listens at its URL.
    Down,
    /// Answers long after the timeout.
    Slow,
    /// Lets this caller's token see one other namespace only.
    Denied,
    /// Fails every request with a 500.
    Faulty,
}

/// One member of the fleet.
struct Member {
    key: String,
    name: String,
    role: Role,
    url: String,
    _sim: Option<SimServer>,
}

/// kubeplex in front of the fleet.
struct Fleet {
    app: RunningApp,
    members: Vec<Member>,
}

/// The fleet in registry (key) order: locator `west` first, then `east` (not alphabetical).
const LAYOUT: &[(&str, &str, Role)] = &[
    ("west", "w0", Role::Healthy),
    ("west", "w1", Role::Healthy),
    ("west", "w2", Role::Healthy),
    ("west", "w3", Role::Healthy),
    ("west", "w4", Role::Healthy),
    ("west", "w5", Role::Healthy),
    ("east", "e0", Role::Healthy),
    ("east", "down", Role::Down),
    ("east", "e1", Role::Healthy),
    ("east", "slow", Role::Slow),
    ("east", "e2", Role::Healthy),
    ("east", "denied", Role::Denied),
    ("east", "e3", Role::Healthy),
    ("east", "faulty", Role::Faulty),
];

/// Services `web` live in w2 and e1, `only` in e2; every member has its own two.
fn extra_services(name: &str) -> &'static [&'static str] {
    match name {
        "w2" | "e1" => &["web"],
        "e2" => &["only"],
        _ => &[],
    }
}

/// Namespace `shop` with Services `{name}-api`, `{name}-db` and `extra`, plus (from the
/// simulator itself) the built-in namespaces and `default/kubernetes`.
fn seed(name: &str, extra: &[&str]) -> String {
    let mut s = String::from(
        "apiVersion: v1\nkind: List\nitems:\n\
         - {apiVersion: v1, kind: Namespace, metadata: {name: shop}}\n",
    );
    let own = [format!("{name}-db"), format!("{name}-api")];
    for svc in own.iter().map(String::as_str).chain(extra.iter().copied()) {
        s.push_str(&format!(
            "- apiVersion: v1\n  kind: Service\n  metadata: {{name: {svc}, namespace: shop, labels: {{app: {svc}}}}}\n  \
             spec: {{selector: {{app: {svc}}}, ports: [{{port: 80}}]}}\n"
        ));
    }
    s
}

/// The custom type only w1 and w3 serve.
fn gadget_type() -> CustomType {
    CustomType {
        group: "tools.example.org".into(),
        version: "v1alpha1".into(),
        kind: "Gadget".into(),
        plural: "gadgets".into(),
        singular: None,
        namespaced: true,
        short_names: vec![],
        categories: vec![],
    }
}

/// A URL where nothing listens (a port bound and released).
fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}")
}

async fn fleet() -> Fleet {
    let mut members = Vec::new();
    for &(locator, name, role) in LAYOUT {
        let mut cfg = SimClusterConfig::new(
            name,
            Some(SeedSource::Text {
                name: format!("{name} seed"),
                text: seed(name, extra_services(name)),
            }),
            [TOKEN],
        );
        match role {
            Role::Slow => cfg.faults.latency = Some(Duration::from_secs(30)),
            Role::Denied => {
                cfg.tokens = vec![SimToken {
                    token: TOKEN.into(),
                    namespaces: Some(vec!["elsewhere".into()]),
                    verbs: None,
                }]
            }
            Role::Faulty => {
                cfg.faults = SimFaults {
                    fail_every: Some(1),
                    fail_code: Some(500),
                    ..SimFaults::default()
                }
            }
            Role::Healthy | Role::Down => {}
        }
        if name == "w1" || name == "w3" {
            cfg.custom_types.push(gadget_type());
        }
        let (url, sim) = if role == Role::Down {
            (closed_port_url(), None)
        } else {
            let sim = kubeplex::sim::spawn("127.0.0.1:0", &cfg)
                .await
                .expect("simulated cluster starts");
            (
                sim.url().as_str().trim_end_matches('/').to_string(),
                Some(sim),
            )
        };
        members.push(Member {
            key: format!("{locator}:{name}"),
            name: name.into(),
            role,
            url,
            _sim: sim,
        });
    }
    let of = |locator: &str| -> Vec<ClusterConfig> {
        members
            .iter()
            .filter(|m| m.key.starts_with(&format!("{locator}:")))
            .map(|m| crate::common::cluster(&m.name, &m.url))
            .collect()
    };
    let mut settings = settings_with(vec![("west", of("west")), ("east", of("east"))]);
    settings.aggregate.timeout = TIMEOUT;
    settings.aggregate.cache_ttl = Duration::ZERO;
    let app = spawn_app(settings).await;
    Fleet { app, members }
}

/// A reply: status, headers, JSON body.
struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn warnings(&self) -> Vec<String> {
        self.headers
            .get_all("warning")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    }
}

impl Fleet {
    fn url(&self, path: &str) -> String {
        format!("{}/api/kubernetes/aggregate{path}", self.app.url())
    }

    fn member(&self, name: &str) -> &Member {
        self.members.iter().find(|m| m.name == name).unwrap()
    }

    fn healthy(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| m.role == Role::Healthy)
    }

    async fn send(&self, method: reqwest::Method, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = http().request(method, self.url(path)).bearer_auth(TOKEN);
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"));
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send(reqwest::Method::GET, path, headers).await
    }
}

/// What a member serves at `path`, asked directly with the caller's token.
async fn direct(m: &Member, path: &str, accept: Option<&str>) -> Value {
    let mut req = http().get(format!("{}{path}", m.url)).bearer_auth(TOKEN);
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let res = req.send().await.unwrap();
    assert!(
        res.status().is_success(),
        "{} {path}: {}",
        m.key,
        res.status()
    );
    res.json().await.unwrap()
}

/// `(cluster annotation, cluster-name annotation, namespace, name, uid)` of each item.
fn rows(list: &Value) -> Vec<(String, String, String, String, String)> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {list}"))
        .iter()
        .map(|i| {
            let s = |p: &str| {
                i.pointer(p)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            (
                s("/metadata/annotations/kubeplex.io~1cluster"),
                s("/metadata/annotations/kubeplex.io~1cluster-name"),
                s("/metadata/namespace"),
                s("/metadata/name"),
                s("/metadata/uid"),
            )
        })
        .collect()
}

/// What the merged list must hold: each healthy member's own list, in key order.
async fn expected_rows(
    members: impl Iterator<Item = &Member>,
    path: &str,
) -> Vec<(String, String, String, String, String)> {
    let mut out = Vec::new();
    for m in members {
        let own = direct(m, path, None).await;
        for (_, _, ns, name, uid) in rows(&own) {
            out.push((m.key.clone(), m.name.clone(), ns, name, uid));
        }
    }
    out
}

fn assert_status(r: &Reply, code: u16, reason: &str) {
    assert_eq!(r.status, code, "{}", r.body);
    assert_eq!(r.body["kind"], "Status", "{}", r.body);
    assert_eq!(r.body["status"], "Failure", "{}", r.body);
    assert_eq!(r.body["code"], code, "{}", r.body);
    assert_eq!(r.body["reason"], reason, "{}", r.body);
}

/// The failing members' keys, in key order.
fn failing_keys(f: &Fleet) -> Vec<String> {
    f.members
        .iter()
        .filter(|m| m.role != Role::Healthy)
        .map(|m| m.key.clone())
        .collect()
}

#[actix_web::test]
async fn a_list_merges_every_member_in_key_order_and_names_each_failure() {
    let f = fleet().await;
    let r = f.get("/api/v1/services", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["kind"], "ServiceList");
    assert_eq!(r.body["apiVersion"], "v1");
    assert!(
        r.body["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .starts_with("kpv1."),
        "{}",
        r.body["metadata"]
    );

    // Every healthy member's items, annotated, in key order then the member's own order.
    let got = rows(&r.body);
    let want = expected_rows(f.healthy(), "/api/v1/services").await;
    assert_eq!(got, want);
    assert!(got.iter().any(|r| r.3 == "w0-api") && got.iter().any(|r| r.3 == "e3-db"));
    assert_eq!(
        got.iter().filter(|r| r.3 == "kubernetes").count(),
        f.healthy().count()
    );

    // One clusterErrors entry per failing member, in key order, and nothing else.
    let errors = r.body["clusterErrors"].as_array().expect("clusterErrors");
    let keys: Vec<&str> = errors
        .iter()
        .map(|e| e["cluster"].as_str().unwrap())
        .collect();
    assert_eq!(keys, failing_keys(&f));
    for e in errors {
        let fields: BTreeSet<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            fields,
            BTreeSet::from(["cluster", "code", "reason", "message"]),
            "{e}"
        );
        assert!(!e["message"].as_str().unwrap().is_empty(), "{e}");
    }
    let entry = |key: &str| errors.iter().find(|e| e["cluster"] == key).unwrap();
    let down = entry("east:down");
    assert_eq!(
        (down["code"].as_u64(), down["reason"].as_str()),
        (Some(502), Some("BadGateway")),
        "{down}"
    );
    assert!(
        down["message"].as_str().unwrap().contains("east:down"),
        "{down}"
    );
    let slow = entry("east:slow");
    assert_eq!(
        (slow["code"].as_u64(), slow["reason"].as_str()),
        (Some(504), Some("Timeout")),
        "{slow}"
    );
    assert!(
        slow["message"].as_str().unwrap().contains("east:slow"),
        "{slow}"
    );
    let denied = entry("east:denied");
    assert_eq!(
        (denied["code"].as_u64(), denied["reason"].as_str()),
        (Some(403), Some("Forbidden")),
        "{denied}"
    );
    let faulty = entry("east:faulty");
    assert_eq!(faulty["code"], 500, "{faulty}");

    // One Warning: 299 per failing member, naming it.
    let warnings = r.warnings();
    assert_eq!(warnings.len(), errors.len(), "{warnings:?}");
    for (w, key) in warnings.iter().zip(failing_keys(&f)) {
        assert!(
            w.starts_with(&format!("299 kubeplex \"cluster {key}: ")),
            "{w}"
        );
    }
}

#[actix_web::test]
async fn every_member_failing_is_a_502_status_naming_each() {
    let f = fleet().await;
    let r = f
        .get(
            "/api/v1/services",
            &[(
                "backstage-kubernetes-cluster",
                "faulty,slow,east:down,denied",
            )],
        )
        .await;
    assert_status(&r, 502, "BadGateway");
    let message = r.body["message"].as_str().unwrap();
    for key in failing_keys(&f) {
        assert!(message.contains(&key), "{key} not in {message}");
    }
}

#[actix_web::test]
async fn a_get_by_name_answers_the_object_a_list_or_404_naming_the_clusters_asked() {
    let f = fleet().await;

    // In one cluster (every member asked; the failing ones are warnings, not a failure).
    let r = f.get("/api/v1/namespaces/shop/services/only", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["kind"], "Service", "{}", r.body);
    assert_eq!(r.body["metadata"]["name"], "only");
    let ann = &r.body["metadata"]["annotations"];
    assert_eq!(ann["kubeplex.io/cluster"], "east:e2", "{ann}");
    assert_eq!(ann["kubeplex.io/cluster-name"], "e2", "{ann}");
    let warned: Vec<String> = r.warnings();
    assert_eq!(warned.len(), failing_keys(&f).len(), "{warned:?}");

    // In several: a ServiceList of them, in key order.
    let healthy: Vec<&str> = f.healthy().map(|m| m.key.as_str()).collect();
    let header = healthy.join(",");
    let r = f
        .get(
            "/api/v1/namespaces/shop/services/web",
            &[("backstage-kubernetes-cluster", &header)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["kind"], "ServiceList", "{}", r.body);
    let got: Vec<(String, String, String)> = rows(&r.body)
        .into_iter()
        .map(|(k, n, _, name, _)| (k, n, name))
        .collect();
    let web = |k: &str, n: &str| (k.to_string(), n.to_string(), "web".to_string());
    assert_eq!(got, [web("west:w2", "w2"), web("east:e1", "e1")]);
    assert!(r.warnings().is_empty(), "{:?}", r.warnings());
    assert!(r.body.get("clusterErrors").is_none(), "{}", r.body);

    // In none: 404 naming every cluster asked (names and keys in the header).
    let r = f
        .get(
            "/api/v1/namespaces/shop/services/nowhere",
            &[("x-kubernetes-cluster", "w0,east:e1,e3")],
        )
        .await;
    assert_status(&r, 404, "NotFound");
    let message = r.body["message"].as_str().unwrap();
    for key in ["west:w0", "east:e1", "east:e3"] {
        assert!(message.contains(key), "{key} not in {message}");
    }
    assert!(!message.contains("west:w1"), "{message}");
}

#[actix_web::test]
async fn the_cluster_header_selects_members_by_name_and_key_in_key_order() {
    let f = fleet().await;
    for header in ["backstage-kubernetes-cluster", "x-kubernetes-cluster"] {
        let r = f.get("/api/v1/services", &[(header, "e0, west:w1")]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        let want = expected_rows(
            [f.member("w1"), f.member("e0")].into_iter(),
            "/api/v1/services",
        )
        .await;
        assert_eq!(rows(&r.body), want);
        assert!(r.warnings().is_empty(), "{:?}", r.warnings());
    }

    let r = f
        .get(
            "/api/v1/services",
            &[("backstage-kubernetes-cluster", "w0,atlantis")],
        )
        .await;
    assert_status(&r, 404, "NotFound");
    assert!(
        r.body["message"].as_str().unwrap().contains("atlantis"),
        "{}",
        r.body
    );
}

#[actix_web::test]
async fn a_table_gets_a_leading_cluster_column() {
    let f = fleet().await;
    let r = f.get("/api/v1/services", &[("accept", TABLE_ACCEPT)]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["kind"], "Table", "{}", r.body);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .contains("as=Table"),
        "{:?}",
        r.headers
    );
    let own = direct(f.member("w0"), "/api/v1/services", Some(TABLE_ACCEPT)).await;
    assert_eq!(own["kind"], "Table", "{own}");
    let mut columns = vec!["Cluster".to_string()];
    columns.extend(
        own["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string()),
    );
    let got: Vec<String> = r.body["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got, columns);

    // Each row: the member's key, then the member's own cells, in key order (the Age cell
    // aside: it moves on between the two reads).
    let age = got.iter().position(|c| c == "Age").expect("an Age column");
    let ageless = |mut cells: Vec<Value>| {
        cells[age] = Value::Null;
        Value::Array(cells)
    };
    let mut want = Vec::new();
    for m in f.healthy() {
        let t = direct(m, "/api/v1/services", Some(TABLE_ACCEPT)).await;
        for row in t["rows"].as_array().unwrap() {
            let mut cells = vec![json!(m.key)];
            cells.extend(row["cells"].as_array().unwrap().iter().cloned());
            want.push(ageless(cells));
        }
    }
    let got: Vec<Value> = r.body["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| ageless(row["cells"].as_array().unwrap().clone()))
        .collect();
    assert_eq!(got, want);
    let errors: Vec<&str> = r.body["clusterErrors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["cluster"].as_str().unwrap())
        .collect();
    assert_eq!(errors, failing_keys(&f));
    assert_eq!(r.warnings().len(), errors.len());
}

#[actix_web::test]
async fn writes_are_405_pointing_at_one_cluster() {
    let f = fleet().await;
    for (method, path) in [
        (reqwest::Method::POST, "/api/v1/namespaces/shop/services"),
        (reqwest::Method::PUT, "/api/v1/namespaces/shop/services/web"),
        (
            reqwest::Method::PATCH,
            "/api/v1/namespaces/shop/services/web",
        ),
        (
            reqwest::Method::DELETE,
            "/api/v1/namespaces/shop/services/web",
        ),
    ] {
        let r = f
            .send(
                method.clone(),
                path,
                &[("content-type", "application/merge-patch+json")],
            )
            .await;
        assert_status(&r, 405, "MethodNotAllowed");
        let message = r.body["message"].as_str().unwrap();
        assert!(
            message.contains("/api/kubernetes/clusters/"),
            "{method} {path}: {message}"
        );
    }
    // Nothing reached a member: `web` is still in w2.
    let own = direct(f.member("w2"), "/api/v1/namespaces/shop/services/web", None).await;
    assert_eq!(own["metadata"]["name"], "web");
}

#[actix_web::test]
async fn a_kind_some_members_lack_is_a_404_entry_for_each_of_them() {
    let f = fleet().await;
    for name in ["w1", "w3"] {
        let res = http()
            .post(format!(
                "{}/apis/tools.example.org/v1alpha1/namespaces/shop/gadgets",
                f.member(name).url
            ))
            .bearer_auth(TOKEN)
            .json(
                &json!({"apiVersion": "tools.example.org/v1alpha1", "kind": "Gadget",
                          "metadata": {"name": format!("gadget-{name}")}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    }
    let asked = ["w0", "w1", "w2", "w3", "e0"];
    let r = f
        .get(
            "/apis/tools.example.org/v1alpha1/gadgets",
            &[("backstage-kubernetes-cluster", &asked.join(","))],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["kind"], "GadgetList", "{}", r.body);
    assert_eq!(r.body["apiVersion"], "tools.example.org/v1alpha1");
    let got: Vec<(String, String)> = rows(&r.body)
        .into_iter()
        .map(|(k, _, _, name, _)| (k, name))
        .collect();
    assert_eq!(
        got,
        [
            ("west:w1".to_string(), "gadget-w1".to_string()),
            ("west:w3".to_string(), "gadget-w3".to_string())
        ]
    );
    let errors = r.body["clusterErrors"].as_array().unwrap();
    let lacking: Vec<(&str, u64, &str)> = errors
        .iter()
        .map(|e| {
            (
                e["cluster"].as_str().unwrap(),
                e["code"].as_u64().unwrap(),
                e["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        lacking,
        [
            ("west:w0", 404, "NotFound"),
            ("west:w2", 404, "NotFound"),
            ("east:e0", 404, "NotFound")
        ]
    );
    assert_eq!(r.warnings().len(), 3, "{:?}", r.warnings());
}

// ---- kubectl 1.32 pointed at the aggregate URL ----

/// Three simulated clusters with the demo seed (the third also serves Gadgets), and kubeplex
/// in front of them.
async fn demo_fleet() -> (RunningApp, Vec<SimServer>) {
    let mut sims = Vec::new();
    let mut clusters = Vec::new();
    for name in ["one", "two", "three"] {
        let mut cfg = SimClusterConfig::new(
            name,
            Some(SeedSource::Text {
                name: "demo seed".into(),
                text: kubeplex::sim::config::DEFAULT_SEED.into(),
            }),
            Vec::<String>::new(),
        );
        if name == "three" {
            cfg.custom_types.push(gadget_type());
        }
        let sim = kubeplex::sim::spawn("127.0.0.1:0", &cfg).await.unwrap();
        clusters.push(crate::common::cluster(
            name,
            sim.url().as_str().trim_end_matches('/'),
        ));
        sims.push(sim);
    }
    let mut settings = crate::common::settings(clusters);
    settings.aggregate.timeout = Duration::from_secs(10);
    settings.aggregate.cache_ttl = Duration::ZERO;
    (spawn_app(settings).await, sims)
}

const KEYS: [&str; 3] = ["config:one", "config:two", "config:three"];

/// The rows (after the header) of a kubectl table whose column `col` is the cluster.
fn rows_by_cluster(out: &str, col: usize) -> Vec<Vec<String>> {
    out.lines()
        .skip(1)
        .map(|l| cells(l).into_iter().map(str::to_string).collect::<Vec<_>>())
        .inspect(|c| assert!(c.len() > col, "{c:?}"))
        .collect()
}

fn per_cluster(rows: &[Vec<String>], col: usize) -> Vec<usize> {
    KEYS.iter()
        .map(|k| rows.iter().filter(|r| r[col] == *k).count())
        .collect()
}

#[actix_web::test]
async fn kubectl_reads_every_cluster_through_the_aggregate_url() {
    let (app, sims) = demo_fleet().await;
    let k = Kubectl::new(&format!("{}/api/kubernetes/aggregate", app.url()), None);
    let one = Kubectl::new(sims[0].url().as_str().trim_end_matches('/'), None);

    // get svc -A: NAMESPACE, then the Cluster column, then the usual ones; every cluster's rows.
    let direct = one.ok(&["get", "svc", "-A"]).await;
    let per_member = direct.lines().count() - 1;
    let out = k.ok(&["get", "svc", "-A"]).await;
    let header = cells(out.lines().next().unwrap());
    assert_eq!(header[..3], ["NAMESPACE", "CLUSTER", "NAME"], "{out}");
    let rows = rows_by_cluster(&out, 1);
    assert_eq!(per_cluster(&rows, 1), [per_member; 3], "{out}");
    assert_eq!(rows.len(), 3 * per_member, "{out}");
    // Key order: every row of one before any of two, and two before three.
    let order: Vec<usize> = rows
        .iter()
        .map(|r| KEYS.iter().position(|k| *k == r[1]).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] <= w[1]), "{out}");

    // get deploy -A.
    let direct = one.ok(&["get", "deploy", "-A"]).await;
    let per_member = direct.lines().count() - 1;
    assert!(per_member > 0, "{direct}");
    let out = k.ok(&["get", "deploy", "-A"]).await;
    assert_eq!(
        cells(out.lines().next().unwrap())[..3],
        ["NAMESPACE", "CLUSTER", "NAME"]
    );
    assert_eq!(
        per_cluster(&rows_by_cluster(&out, 1), 1),
        [per_member; 3],
        "{out}"
    );

    // get svc NAME -n NS: the one Service, once per cluster.
    let out = k.ok(&["get", "svc", "checkout", "-n", "payments"]).await;
    assert_eq!(
        cells(out.lines().next().unwrap())[..2],
        ["CLUSTER", "NAME"],
        "{out}"
    );
    let rows = rows_by_cluster(&out, 0);
    assert_eq!(per_cluster(&rows, 0), [1, 1, 1], "{out}");
    assert!(rows.iter().all(|r| r[1] == "checkout"), "{out}");

    // -l app=checkout.
    let out = k.ok(&["get", "svc", "-A", "-l", "app=checkout"]).await;
    let rows = rows_by_cluster(&out, 1);
    assert_eq!(per_cluster(&rows, 1), [1, 1, 1], "{out}");
    assert!(rows.iter().all(|r| r[2] == "checkout"), "{out}");

    // -o json: every item annotated with its cluster.
    let out = k.ok(&["get", "svc", "-A", "-o", "json"]).await;
    let list: Value = serde_json::from_str(&out).unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 3 * per_member_services(&one).await, "{out}");
    for i in items {
        let ann = &i["metadata"]["annotations"];
        let key = ann["kubeplex.io/cluster"]
            .as_str()
            .unwrap_or_else(|| panic!("{i}"));
        assert!(KEYS.contains(&key), "{i}");
        assert_eq!(
            ann["kubeplex.io/cluster-name"].as_str().unwrap(),
            key.trim_start_matches("config:")
        );
    }

    // -o yaml of a get by name: the object from each cluster, annotated.
    let out = k
        .ok(&["get", "svc", "checkout", "-n", "payments", "-o", "yaml"])
        .await;
    for key in KEYS {
        assert!(
            out.contains(&format!("kubeplex.io/cluster: {key}")),
            "{out}"
        );
    }
    assert_eq!(out.matches("name: checkout\n").count(), 3, "{out}");
}

async fn per_member_services(one: &Kubectl) -> usize {
    let out = one.ok(&["get", "svc", "-A", "-o", "json"]).await;
    let v: Value = serde_json::from_str(&out).unwrap();
    v["items"].as_array().unwrap().len()
}

#[actix_web::test]
async fn kubectl_api_resources_is_the_intersection_and_writes_are_refused() {
    let (app, sims) = demo_fleet().await;
    let k = Kubectl::new(&format!("{}/api/kubernetes/aggregate", app.url()), None);
    let three = Kubectl::new(sims[2].url().as_str().trim_end_matches('/'), None);

    let names = |out: &str| -> BTreeSet<String> {
        out.lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    };
    let all = names(&k.ok(&["api-resources", "-o", "name"]).await);
    for r in [
        "services",
        "deployments.apps",
        "rollouts.argoproj.io",
        "configmaps",
    ] {
        assert!(all.contains(r), "{r} missing from {all:?}");
    }
    // Only `three` serves gadgets: not in the intersection.
    let theirs = names(&three.ok(&["api-resources", "-o", "name"]).await);
    assert!(theirs.contains("gadgets.tools.example.org"), "{theirs:?}");
    assert!(!all.contains("gadgets.tools.example.org"), "{all:?}");
    assert!(all.is_subset(&theirs), "{:?}", all.difference(&theirs));

    let stderr = k.fails(&["create", "configmap", "x"]).await;
    assert!(stderr.contains("/api/kubernetes/clusters/"), "{stderr}");
    assert!(
        stderr.contains("MethodNotAllowed")
            || stderr.contains("not allowed")
            || stderr.contains("reads only"),
        "{stderr}"
    );
}

/// With every member healthy the merge takes its fast path (members' bytes spliced, each
/// item or row annotated in place): the answers must be exactly what the general path
/// gives, the members' own items and rows with the cluster annotations and cell.
#[actix_web::test]
async fn the_fast_path_answers_what_the_members_said_annotated() {
    let (app, sims) = demo_fleet().await;
    let client = reqwest::Client::new();
    let get = |url: String, accept: &'static str| {
        let client = client.clone();
        async move {
            let v: Value = client
                .get(url)
                .header("accept", accept)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v
        }
    };
    let agg = |path: &str| format!("{}/api/kubernetes/aggregate{path}", app.url());
    for path in ["/apis/apps/v1/deployments", "/api/v1/services"] {
        let merged = get(agg(path), "application/json").await;
        assert!(merged.get("clusterErrors").is_none(), "{merged}");
        let mut want = Vec::new();
        for (key, sim) in KEYS.iter().zip(&sims) {
            let own = get(
                format!("{}{}", sim.url().as_str().trim_end_matches('/'), path),
                "application/json",
            )
            .await;
            assert_eq!(merged["kind"], own["kind"]);
            for item in own["items"].as_array().unwrap() {
                let mut item = item.clone();
                let ann = item["metadata"]
                    .as_object_mut()
                    .unwrap()
                    .entry("annotations")
                    .or_insert_with(|| json!({}));
                ann["kubeplex.io/cluster"] = json!(key);
                ann["kubeplex.io/cluster-name"] = json!(key.trim_start_matches("config:"));
                want.push(item);
            }
        }
        assert_eq!(merged["items"].as_array().unwrap(), &want, "{path}");

        let table = get(agg(path), TABLE_ACCEPT).await;
        assert_eq!(table["kind"], "Table");
        assert_eq!(table["columnDefinitions"][0]["name"], "Cluster");
        let age = table["columnDefinitions"]
            .as_array()
            .unwrap()
            .iter()
            .position(|c| c["name"] == "Age")
            .unwrap();
        let mut want_rows = Vec::new();
        for (key, sim) in KEYS.iter().zip(&sims) {
            let own = get(
                format!("{}{}", sim.url().as_str().trim_end_matches('/'), path),
                TABLE_ACCEPT,
            )
            .await;
            for row in own["rows"].as_array().unwrap() {
                let mut cells = vec![json!(key)];
                cells.extend(row["cells"].as_array().unwrap().iter().cloned());
                cells[age] = Value::Null;
                want_rows.push(Value::Array(cells));
            }
        }
        let rows = table["rows"].as_array().unwrap();
        let got_rows: Vec<Value> = rows
            .iter()
            .map(|r| {
                let mut cells = r["cells"].as_array().unwrap().clone();
                cells[age] = Value::Null;
                Value::Array(cells)
            })
            .collect();
        assert_eq!(got_rows, want_rows, "{path}");
        for r in rows {
            assert_eq!(
                r["object"]["metadata"]["annotations"]["kubeplex.io/cluster"], r["cells"][0],
                "{r}"
            );
        }
    }
}
