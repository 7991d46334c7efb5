//! The simulated cluster's API, driven over loopback with a real HTTP client: every
//! endpoint and every error of issue 2 (CRUD, patches, status, proxy, selectors,
//! pagination, resourceVersion semantics, watches, auth, faults, seeds).

use kubeplex::sim::config::{SeedSource, SimClusterConfig, SimFaults, SimToken};
use kubeplex::sim::{self, SimServer};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

fn cluster() -> SimClusterConfig {
    SimClusterConfig {
        name: "test".into(),
        ..Default::default()
    }
}

async fn start(cfg: SimClusterConfig) -> (SimServer, String) {
    let server = sim::spawn("127.0.0.1:0", &cfg).await.expect("sim starts");
    let base = server.url().as_str().trim_end_matches('/').to_string();
    (server, base)
}

fn client() -> Client {
    Client::builder().no_proxy().build().unwrap()
}

async fn send(c: &Client, method: Method, url: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut req = c.request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
}

/// Sends `body` as it is, with the `Content-Type` `ct`; the status and the JSON answer.
async fn send_raw(
    c: &Client,
    method: Method,
    url: &str,
    ct: &str,
    body: &str,
) -> (StatusCode, Value) {
    let resp = c
        .request(method, url)
        .header("content-type", ct)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap())
}

async fn patch(c: &Client, url: &str, ct: &str, body: &str) -> (StatusCode, Value) {
    send_raw(c, Method::PATCH, url, ct, body).await
}

fn svc(name: &str) -> Value {
    json!({"apiVersion":"v1","kind":"Service","metadata":{"name":name,"labels":{"app":name}},
           "spec":{"selector":{"app":name},"ports":[{"name":"http","port":80,"targetPort":8080}]}})
}

async fn create_svc(c: &Client, base: &str, ns: &str, body: Value) -> Value {
    let (st, v) = send(
        c,
        Method::POST,
        &format!("{base}/api/v1/namespaces/{ns}/services"),
        Some(body),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v
}

async fn create_ns(c: &Client, base: &str, name: &str) {
    let (st, v) = send(
        c,
        Method::POST,
        &format!("{base}/api/v1/namespaces"),
        Some(json!({"apiVersion":"v1","kind":"Namespace","metadata":{"name":name}})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
}

fn assert_status(v: &Value, code: u16, reason: &str) {
    assert_eq!(v["kind"], "Status", "{v}");
    assert_eq!(v["apiVersion"], "v1");
    assert_eq!(v["status"], "Failure");
    assert_eq!(v["code"], code, "{v}");
    assert_eq!(v["reason"], reason, "{v}");
}

/// Asserts a refusal: the HTTP status and its Status body agree on `code`.
fn assert_refused(st: StatusCode, v: &Value, code: u16, reason: &str) {
    assert_eq!(st.as_u16(), code, "{v}");
    assert_status(v, code, reason);
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

/// Reads a watch stream event by event.
struct Watch {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl Watch {
    async fn open(c: &Client, url: &str) -> Watch {
        let resp = c.get(url).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("application/json"), "{ct}");
        Watch {
            resp,
            buf: Vec::new(),
        }
    }

    /// The next event, or None at the end of the stream. A generous guard turns a hang
    /// into a failure instead of a stuck test.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Some(serde_json::from_slice(&line).expect("one JSON event per line"));
            }
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.resp.chunk())
                .await
                .expect("watch event within the guard time")
                .unwrap();
            match chunk {
                Some(c) => self.buf.extend_from_slice(&c),
                None => {
                    assert!(self.buf.is_empty(), "partial line at end of stream");
                    return None;
                }
            }
        }
    }
}

fn rv_of(v: &Value) -> u64 {
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[actix_web::test]
async fn service_crud_and_conflicts() {
    let (_s, base) = start(cluster()).await;
    let c = client();
    let coll = format!("{base}/api/v1/namespaces/default/services");
    let created = create_svc(&c, &base, "default", svc("web")).await;
    assert_eq!(created["kind"], "Service");
    assert_eq!(created["metadata"]["namespace"], "default");
    assert_eq!(created["metadata"]["generation"], 1);
    assert!(created["metadata"]["uid"].as_str().unwrap().len() == 36);
    assert!(created["metadata"]["creationTimestamp"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert_eq!(created["spec"]["type"], "ClusterIP");
    assert_eq!(created["spec"]["sessionAffinity"], "None");
    assert_eq!(created["spec"]["ports"][0]["protocol"], "TCP");
    let ip = created["spec"]["clusterIP"].as_str().unwrap().to_string();
    assert!(ip.starts_with("10."), "{ip}");
    assert_eq!(created["spec"]["clusterIPs"], json!([ip]));
    assert_eq!(created["status"], json!({"loadBalancer":{}}));

    // get, list per namespace, list all
    let (st, got) = send(&c, Method::GET, &format!("{coll}/web"), None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(got, created);
    let (_, list) = send(&c, Method::GET, &coll, None).await;
    assert_eq!(list["kind"], "ServiceList");
    // (every cluster has default/kubernetes)
    assert_eq!(names(&list), vec!["kubernetes", "web"]);
    assert!(list["items"][1].get("kind").is_none());
    let (_, all) = send(&c, Method::GET, &format!("{base}/api/v1/services"), None).await;
    assert_eq!(names(&all), vec!["kubernetes", "web"]);
    assert!(rv_of(&all) >= rv_of(&created));

    // AlreadyExists
    let (st, v) = send(&c, Method::POST, &coll, Some(svc("web"))).await;
    assert_refused(st, &v, 409, "AlreadyExists");
    assert_eq!(v["message"], "services \"web\" already exists");
    assert_eq!(v["details"], json!({"name":"web","kind":"services"}));

    // replace: stale resourceVersion is a Conflict; the current one works and bumps generation
    let mut edited = created.clone();
    edited["spec"]["ports"][0]["port"] = json!(81);
    edited["metadata"]["resourceVersion"] = json!("1");
    let (st, v) = send(
        &c,
        Method::PUT,
        &format!("{coll}/web"),
        Some(edited.clone()),
    )
    .await;
    assert_refused(st, &v, 409, "Conflict");
    assert_eq!(
        v["message"],
        "Operation cannot be fulfilled on services \"web\": the object has been modified; please apply your changes to the latest version and try again"
    );
    edited["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"].clone();
    let (st, v) = send(
        &c,
        Method::PUT,
        &format!("{coll}/web"),
        Some(edited.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["spec"]["ports"][0]["port"], 81);
    assert_eq!(v["metadata"]["generation"], 2);
    assert!(rv_of(&v) > rv_of(&created));
    // A replace without clusterIP keeps it; changing it is Invalid.
    let mut no_ip = v.clone();
    no_ip["spec"].as_object_mut().unwrap().remove("clusterIP");
    no_ip["spec"].as_object_mut().unwrap().remove("clusterIPs");
    let (st, kept) = send(&c, Method::PUT, &format!("{coll}/web"), Some(no_ip)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(kept["spec"]["clusterIP"], ip.as_str());
    assert_eq!(rv_of(&kept), rv_of(&v), "a no-op update writes nothing");
    let mut moved = kept.clone();
    moved["spec"]["clusterIP"] = json!("10.96.7.7");
    moved["spec"]["clusterIPs"] = json!(["10.96.7.7"]);
    let (st, err) = send(&c, Method::PUT, &format!("{coll}/web"), Some(moved)).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_status(&err, 422, "Invalid");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("may not change once set"),
        "{err}"
    );
    // name mismatch
    let (st, v) = send(
        &c,
        Method::PUT,
        &format!("{coll}/other"),
        Some(kept.clone()),
    )
    .await;
    assert_refused(st, &v, 400, "BadRequest");
    // replace of a missing object
    let mut ghost = svc("ghost");
    ghost["metadata"]["namespace"] = json!("default");
    let (st, v) = send(&c, Method::PUT, &format!("{coll}/ghost"), Some(ghost)).await;
    assert_refused(st, &v, 404, "NotFound");

    // delete returns the object; then 404 with details
    let (st, v) = send(&c, Method::DELETE, &format!("{coll}/web"), None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["metadata"]["name"], "web");
    let (st, v) = send(&c, Method::GET, &format!("{coll}/web"), None).await;
    assert_refused(st, &v, 404, "NotFound");
    assert_eq!(v["message"], "services \"web\" not found");
    assert_eq!(v["details"], json!({"name":"web","kind":"services"}));
    let (st, _) = send(&c, Method::DELETE, &format!("{coll}/web"), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn create_errors() {
    let (_s, base) = start(cluster()).await;
    let c = client();
    let coll = format!("{base}/api/v1/namespaces/default/services");
    // 422 with every cause
    let bad = json!({"metadata":{"name":"Bad_Name"},"spec":{"type":"Weird","sessionAffinity":"Sticky",
        "ports":[{"port":70000,"protocol":"HTTP"},{"name":"a","port":80},{"name":"a","port":81,"targetPort":"no_such--port"}],
        "externalIPs":["not-an-ip"]}});
    let (st, v) = send(&c, Method::POST, &coll, Some(bad)).await;
    assert_refused(st, &v, 422, "Invalid");
    assert_eq!(v["details"]["kind"], "Service");
    assert_eq!(v["details"]["name"], "Bad_Name");
    let causes: Vec<(String, String)> = v["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap().into(),
                c["reason"].as_str().unwrap().into(),
            )
        })
        .collect();
    for (field, reason) in [
        ("metadata.name", "FieldValueInvalid"),
        ("spec.type", "FieldValueNotSupported"),
        ("spec.sessionAffinity", "FieldValueNotSupported"),
        ("spec.ports[0].name", "FieldValueRequired"),
        ("spec.ports[0].port", "FieldValueInvalid"),
        ("spec.ports[0].protocol", "FieldValueNotSupported"),
        ("spec.ports[2].name", "FieldValueDuplicate"),
        ("spec.ports[2].targetPort", "FieldValueInvalid"),
        ("spec.externalIPs[0]", "FieldValueInvalid"),
    ] {
        assert!(
            causes.iter().any(|(f, r)| f == field && r == reason),
            "missing {field} {reason} in {causes:?}"
        );
    }
    assert!(v["message"]
        .as_str()
        .unwrap()
        .starts_with("Service \"Bad_Name\" is invalid: ["));
    // ExternalName without a name; a DNS name is accepted and gets no cluster IP
    let (st, v) = send(
        &c,
        Method::POST,
        &coll,
        Some(json!({"metadata":{"name":"ext"},"spec":{"type":"ExternalName"}})),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["details"]["causes"][0]["field"], "spec.externalName");
    assert_eq!(v["details"]["causes"][0]["reason"], "FieldValueRequired");
    let v = create_svc(&c, &base, "default", json!({"metadata":{"name":"ext"},"spec":{"type":"ExternalName","externalName":"db.example.com"}})).await;
    assert!(v["spec"].get("clusterIP").is_none());
    // malformed JSON
    let (st, v) = send_raw(&c, Method::POST, &coll, "application/json", "{not json").await;
    assert_refused(st, &v, 400, "BadRequest");
    // wrong type of value
    let (st, v) = send(
        &c,
        Method::POST,
        &coll,
        Some(json!({"metadata":{"name":"x"},"spec":{"ports":[{"port":"eighty"}]}})),
    )
    .await;
    assert_refused(st, &v, 400, "BadRequest");
    // unknown body media type
    let (st, v) = send_raw(&c, Method::POST, &coll, "text/plain", "x").await;
    assert_refused(st, &v, 415, "UnsupportedMediaType");
    // YAML body
    let resp = c
        .post(&coll)
        .header("content-type", "application/yaml")
        .body("apiVersion: v1\nkind: Service\nmetadata:\n  name: from-yaml\nspec:\n  ports:\n  - port: 53\n    protocol: UDP\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    // namespace mismatch and missing namespace
    let mut other = svc("mismatch");
    other["metadata"]["namespace"] = json!("kube-system");
    let (st, v) = send(&c, Method::POST, &coll, Some(other)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("does not match the namespace"));
    let (st, v) = send(
        &c,
        Method::POST,
        &format!("{base}/api/v1/namespaces/nowhere/services"),
        Some(svc("x")),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(v["message"], "namespaces \"nowhere\" not found");
    // generateName
    let v = create_svc(
        &c,
        &base,
        "default",
        json!({"metadata":{"generateName":"gen-"},"spec":{"ports":[{"port":1}]}}),
    )
    .await;
    let name = v["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
    // a taken cluster IP
    let a = create_svc(
        &c,
        &base,
        "default",
        json!({"metadata":{"name":"fixed"},"spec":{"clusterIP":"10.96.3.3","ports":[{"port":1}]}}),
    )
    .await;
    assert_eq!(a["spec"]["clusterIP"], "10.96.3.3");
    let (st, v) = send(&c, Method::POST, &coll, Some(json!({"metadata":{"name":"fixed2"},"spec":{"clusterIP":"10.96.3.3","ports":[{"port":1}]}}))).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("provided IP is already allocated"),
        "{v}"
    );
    // headless keeps None
    let h = create_svc(
        &c,
        &base,
        "default",
        json!({"metadata":{"name":"headless"},"spec":{"clusterIP":"None","selector":{"a":"b"}}}),
    )
    .await;
    assert_eq!(h["spec"]["clusterIP"], "None");
    // dryRun writes nothing
    let rv_before = rv_of(&send(&c, Method::GET, &coll, None).await.1);
    let (st, v) = send(
        &c,
        Method::POST,
        &format!("{coll}?dryRun=All"),
        Some(svc("dry")),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(v["metadata"]["name"], "dry");
    let (st, _) = send(&c, Method::GET, &format!("{coll}/dry"), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(
        rv_of(&send(&c, Method::GET, &coll, None).await.1),
        rv_before
    );
}

#[actix_web::test]
async fn create_at_the_cluster_path_uses_the_body_namespace() {
    let mut cfg = cluster();
    cfg.tokens = vec![
        SimToken {
            token: "admin".into(),
            ..Default::default()
        },
        SimToken {
            token: "shop-writer".into(),
            namespaces: Some(vec!["shop".into()]),
            verbs: None,
        },
    ];
    let (_s, base) = start(cfg).await;
    let c = client();
    let post = |body: Value, token: &'static str| {
        c.post(format!("{base}/api/v1/services"))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let admin_ns = c
        .post(format!("{base}/api/v1/namespaces"))
        .bearer_auth("admin")
        .json(&json!({"metadata":{"name":"shop"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(admin_ns.status(), StatusCode::CREATED);
    // Created in the body's namespace, as a namespaced create would (defaults, cluster IP).
    let mut body = svc("web");
    body["metadata"]["namespace"] = json!("shop");
    let resp = post(body.clone(), "shop-writer").await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["kind"], "Service");
    assert_eq!(created["metadata"]["namespace"], "shop");
    assert_eq!(created["spec"]["type"], "ClusterIP");
    assert!(created["spec"]["clusterIP"]
        .as_str()
        .unwrap()
        .starts_with("10."));
    let got: Value = c
        .get(format!("{base}/api/v1/namespaces/shop/services/web"))
        .bearer_auth("admin")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, created);
    // The same answers as the namespaced path: AlreadyExists, and a missing namespace.
    let resp = post(body.clone(), "admin").await.unwrap();
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let v: Value = resp.json().await.unwrap();
    assert_status(&v, 409, "AlreadyExists");
    assert_eq!(v["message"], "services \"web\" already exists");
    let mut nowhere = svc("x");
    nowhere["metadata"]["namespace"] = json!("nowhere");
    let resp = post(nowhere.clone(), "admin").await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let at_cluster: Value = resp.json().await.unwrap();
    assert_status(&at_cluster, 404, "NotFound");
    let resp = c
        .post(format!("{base}/api/v1/namespaces/nowhere/services"))
        .bearer_auth("admin")
        .json(&nowhere)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let namespaced: Value = resp.json().await.unwrap();
    assert_eq!(at_cluster["message"], "namespaces \"nowhere\" not found");
    assert_eq!(at_cluster, namespaced);
    // No namespace in the body (absent or empty): 400 BadRequest, nothing created.
    for ns in [None, Some("")] {
        let mut anon = svc("anon");
        if let Some(ns) = ns {
            anon["metadata"]["namespace"] = json!(ns);
        }
        let resp = post(anon, "admin").await.unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{ns:?}");
        let v: Value = resp.json().await.unwrap();
        assert_status(&v, 400, "BadRequest");
        assert_eq!(
            v["message"],
            "the provided object has no namespace: a Service created at /api/v1/services needs metadata.namespace"
        );
    }
    let resp = c
        .get(format!(
            "{base}/api/v1/services?fieldSelector=metadata.name%3Danon"
        ))
        .bearer_auth("admin")
        .send()
        .await
        .unwrap();
    let v: Value = resp.json().await.unwrap();
    assert_eq!(names(&v), Vec::<String>::new());
    // The namespace limits of the token apply to the body's namespace.
    let mut other = svc("elsewhere");
    other["metadata"]["namespace"] = json!("default");
    let resp = post(other.clone(), "shop-writer").await.unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["message"], "services is forbidden: User \"sim-user-2\" cannot create resource \"services\" in API group \"\" in the namespace \"default\"");
    // dryRun, fieldValidation and YAML bodies as on the namespaced path.
    let resp = c
        .post(format!("{base}/api/v1/services?dryRun=All"))
        .bearer_auth("admin")
        .json(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = c
        .get(format!(
            "{base}/api/v1/namespaces/default/services/elsewhere"
        ))
        .bearer_auth("admin")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::NOT_FOUND,
        "a dry run stores nothing"
    );
    let resp = c
        .post(format!("{base}/api/v1/services?fieldValidation=Strict"))
        .bearer_auth("admin")
        .header("content-type", "application/yaml")
        .body("apiVersion: v1\nkind: Service\nmetadata:\n  name: y\n  namespace: default\nspec:\n  ports: [{port: 80}]\n  bogus: 1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let v: Value = resp.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().contains("bogus"), "{v}");
    let resp = c
        .post(format!("{base}/api/v1/services"))
        .bearer_auth("admin")
        .header("content-type", "application/yaml")
        .body("apiVersion: v1\nkind: Service\nmetadata:\n  name: y\n  namespace: default\nspec:\n  ports: [{port: 80}]\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["metadata"]["namespace"], "default");
}

#[actix_web::test]
async fn node_ports_and_load_balancers() {
    let (_s, base) = start(cluster()).await;
    let c = client();
    let coll = format!("{base}/api/v1/namespaces/default/services");
    let v = create_svc(&c, &base, "default", json!({"metadata":{"name":"np"},"spec":{"type":"NodePort","ports":[{"name":"a","port":80},{"name":"b","port":81,"nodePort":30080}]}})).await;
    let p0 = v["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&p0));
    assert_eq!(v["spec"]["ports"][1]["nodePort"], 30080);
    assert_eq!(v["spec"]["externalTrafficPolicy"], "Cluster");
    let (st, e) = send(&c, Method::POST, &coll, Some(json!({"metadata":{"name":"np2"},"spec":{"type":"NodePort","ports":[{"port":80,"nodePort":30080}]}}))).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["details"]["causes"][0]["field"], "spec.ports[0].nodePort");
    let (st, e) = send(&c, Method::POST, &coll, Some(json!({"metadata":{"name":"np3"},"spec":{"type":"NodePort","ports":[{"port":80,"nodePort":80}]}}))).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(e["message"].as_str().unwrap().contains("30000-32767"));
    let (st, e) = send(
        &c,
        Method::POST,
        &coll,
        Some(json!({"metadata":{"name":"cip"},"spec":{"ports":[{"port":80,"nodePort":30001}]}})),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["details"]["causes"][0]["reason"], "FieldValueForbidden");
    let lb = create_svc(&c, &base, "default", json!({"metadata":{"name":"lb"},"spec":{"type":"LoadBalancer","loadBalancerSourceRanges":["10.0.0.0/8"],"externalTrafficPolicy":"Local","ports":[{"port":443}]}})).await;
    assert!(lb["spec"]["healthCheckNodePort"].as_i64().is_some());
    assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
    // NodePort -> ClusterIP drops the node ports it allocated
    let mut back = v.clone();
    back["spec"]["type"] = json!("ClusterIP");
    back["spec"]
        .as_object_mut()
        .unwrap()
        .remove("externalTrafficPolicy");
    let (st, r) = send(&c, Method::PUT, &format!("{coll}/np"), Some(back)).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert!(r["spec"]["ports"][0].get("nodePort").is_none(), "{r}");
    // the freed node port can be used again
    create_svc(&c, &base, "default", json!({"metadata":{"name":"np4"},"spec":{"type":"NodePort","ports":[{"port":80,"nodePort":30080}]}})).await;
}

#[actix_web::test]
async fn namespaces_endpoints() {
    let (_s, base) = start(cluster()).await;
    let c = client();
    let (st, list) = send(&c, Method::GET, &format!("{base}/api/v1/namespaces"), None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list["kind"], "NamespaceList");
    assert_eq!(
        names(&list),
        vec!["default", "kube-node-lease", "kube-public", "kube-system"]
    );
    create_ns(&c, &base, "team-a").await;
    let (st, ns) = send(
        &c,
        Method::GET,
        &format!("{base}/api/v1/namespaces/team-a"),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(ns["kind"], "Namespace");
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "team-a"
    );
    let (st, v) = send(
        &c,
        Method::POST,
        &format!("{base}/api/v1/namespaces"),
        Some(json!({"metadata":{"name":"team-a"}})),
    )
    .await;
    assert_refused(st, &v, 409, "AlreadyExists");
    let (st, v) = send(
        &c,
        Method::POST,
        &format!("{base}/api/v1/namespaces"),
        Some(json!({"metadata":{"name":"Not_Valid"}})),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["details"]["kind"], "Namespace");
    create_svc(&c, &base, "team-a", svc("one")).await;
    create_svc(&c, &base, "team-a", svc("two")).await;
    let (st, v) = send(
        &c,
        Method::DELETE,
        &format!("{base}/api/v1/namespaces/team-a"),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["status"]["phase"], "Terminating");
    let (st, _) = send(
        &c,
        Method::GET,
        &format!("{base}/api/v1/namespaces/team-a"),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, all) = send(&c, Method::GET, &format!("{base}/api/v1/services"), None).await;
    assert_eq!(
        names(&all),
        vec!["kubernetes"],
        "team-a's services went with their namespace, default's stayed"
    );
    let (st, v) = send(
        &c,
        Method::DELETE,
        &format!("{base}/api/v1/namespaces/default"),
        None,
    )
    .await;
    assert_refused(st, &v, 403, "Forbidden");
    let (st, v) = send(
        &c,
        Method::DELETE,
        &format!("{base}/api/v1/namespaces/missing"),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(v["details"]["kind"], "namespaces");
    // labels via merge patch
    let (st, v) = patch(
        &c,
        &format!("{base}/api/v1/namespaces/kube-public"),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"team":"x"}}}"#,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["metadata"]["labels"]["team"], "x");
}

#[actix_web::test]
async fn patches_of_three_types() {
    let (_s, base) = start(cluster()).await;
    let c = client();
    let item = format!("{base}/api/v1/namespaces/default/services/web");
    let mut body = svc("web");
    body["spec"]["ports"] = json!([{"name":"http","port":80},{"name":"metrics","port":9090}]);
    create_svc(&c, &base, "default", body).await;

    let (st, v) = patch(&c, &item, "application/merge-patch+json", r#"{"metadata":{"labels":{"tier":"front","app":null}},"spec":{"sessionAffinity":"ClientIP"}}"#).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["metadata"]["labels"], json!({"tier":"front"}));
    assert_eq!(v["spec"]["sessionAffinity"], "ClientIP");
    assert_eq!(
        v["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"],
        10800
    );
    assert_eq!(v["metadata"]["generation"], 2);

    let (st, v) = patch(&c, &item, "application/json-patch+json", r#"[{"op":"replace","path":"/spec/ports/0/port","value":8080},{"op":"add","path":"/metadata/annotations","value":{"a":"b"}}]"#).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["spec"]["ports"][0]["port"], 8080);
    assert_eq!(v["metadata"]["annotations"]["a"], "b");
    let (st, v) = patch(
        &c,
        &item,
        "application/json-patch+json",
        r#"[{"op":"test","path":"/spec/type","value":"NodePort"}]"#,
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["kind"], "Status");

    let (st, v) = patch(
        &c,
        &item,
        "application/strategic-merge-patch+json",
        r#"{"spec":{"ports":[{"port":9090,"targetPort":"metrics"},{"name":"https","port":443}]}}"#,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let ports = v["spec"]["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 3, "{v}");
    assert_eq!(ports[1]["name"], "metrics");
    assert_eq!(ports[1]["targetPort"], "metrics");
    assert_eq!(ports[2]["port"], 443);
    let (st, v) = patch(
        &c,
        &item,
        "application/strategic-merge-patch+json",
        r#"{"spec":{"ports":[{"port":9090,"$patch":"delete"}]}}"#,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["spec"]["ports"].as_array().unwrap().len(), 2);
    let (st, v) = patch(
        &c,
        &item,
        "application/strategic-merge-patch+json",
        r#"{"spec":{"ports":[{"$patch":"replace"},{"port":53,"protocol":"UDP"}]}}"#,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        v["spec"]["ports"],
        json!([{"protocol":"UDP","port":53,"targetPort":53}])
    );

    // an invalid result is 422; a stale resourceVersion in the patch is 409
    let (st, v) = patch(
        &c,
        &item,
        "application/merge-patch+json",
        r#"{"spec":{"type":"Bogus"}}"#,
    )
    .await;
    assert_refused(st, &v, 422, "Invalid");
    let (st, v) = patch(
        &c,
        &item,
        "application/merge-patch+json",
        r#"{"metadata":{"resourceVersion":"1"},"spec":{"type":"NodePort"}}"#,
    )
    .await;
    assert_refused(st, &v, 409, "Conflict");
    // other types: 415; malformed patch: 400; missing object: 404
    for ct in [
        "application/json",
        "application/apply-patch+yaml",
        "text/plain",
    ] {
        let (st, v) = patch(&c, &item, ct, "{}").await;
        assert_eq!(st, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct}");
        assert_status(&v, 415, "UnsupportedMediaType");
    }
    let (st, v) = patch(&c, &item, "application/merge-patch+json", "{oops").await;
    assert_refused(st, &v, 400, "BadRequest");
    let (st, v) = patch(
        &c,
        &format!("{item}-nope"),
        "application/merge-patch+json",
        "{}",
    )
    .await;
    assert_refused(st, &v, 404, "NotFound");
}

#[actix_web::test]
async fn status_subresource() {
    let (_s, base) = start(cluster()).await;
    let c = client();
    let item = format!("{base}/api/v1/namespaces/default/services/lb");
    let created = create_svc(
        &c,
        &base,
        "default",
        json!({"metadata":{"name":"lb"},"spec":{"type":"LoadBalancer","ports":[{"port":80}]}}),
    )
    .await;
    let (st, v) = send(&c, Method::GET, &format!("{item}/status"), None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v, created);
    // PUT status: status changes, spec changes ignored
    let mut body = created.clone();
    body["status"] = json!({"loadBalancer":{"ingress":[{"ip":"203.0.113.7"}]}});
    body["spec"]["sessionAffinity"] = json!("ClientIP");
    let (st, v) = send(&c, Method::PUT, &format!("{item}/status"), Some(body)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        v["status"]["loadBalancer"]["ingress"][0]["ip"],
        "203.0.113.7"
    );
    assert_eq!(v["spec"]["sessionAffinity"], "None");
    assert_eq!(v["metadata"]["generation"], 1);
    // PATCH status
    let (st, v) = patch(&c, &format!("{item}/status"), "application/merge-patch+json", r#"{"status":{"loadBalancer":{"ingress":[{"hostname":"lb.example.com"}]}},"spec":{"type":"ClusterIP"}}"#).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        v["status"]["loadBalancer"]["ingress"],
        json!([{"hostname":"lb.example.com"}])
    );
    assert_eq!(v["spec"]["type"], "LoadBalancer");
    // invalid status
    let (st, v) = patch(
        &c,
        &format!("{item}/status"),
        "application/merge-patch+json",
        r#"{"status":{"loadBalancer":{"ingress":[{"ip":"nope"}]}}}"#,
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        v["details"]["causes"][0]["field"],
        "status.loadBalancer.ingress[0].ip"
    );
    // the main resource ignores status changes
    let (_, cur) = send(&c, Method::GET, &item, None).await;
    let mut body = cur.clone();
    body["status"] = json!({"loadBalancer":{}});
    let (st, v) = send(&c, Method::PUT, &item, Some(body)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        v["status"]["loadBalancer"]["ingress"][0]["hostname"],
        "lb.example.com"
    );
    // stale status update
    let mut stale = cur.clone();
    stale["metadata"]["resourceVersion"] = json!("2");
    let (st, _) = send(&c, Method::PUT, &format!("{item}/status"), Some(stale)).await;
    assert_eq!(st, StatusCode::CONFLICT);
    let (st, _) = send(&c, Method::POST, &format!("{item}/status"), Some(cur)).await;
    assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED);
}

/// A backend that answers with what it received.
async fn echo_backend() -> (actix_web::dev::ServerHandle, String) {
    use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
    async fn echo(req: HttpRequest, body: web::Bytes) -> HttpResponse {
        let headers: serde_json::Map<String, Value> = req
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or(""))))
            .collect();
        HttpResponse::build(actix_web::http::StatusCode::from_u16(299).unwrap())
            .insert_header(("x-backend", "yes"))
            .json(json!({
                "method": req.method().as_str(),
                "path": req.path(),
                "decoded_path": percent_encoding::percent_decode_str(req.path()).decode_utf8_lossy(),
                "query": req.query_string(),
                "body": String::from_utf8_lossy(&body),
                "headers": headers,
            }))
    }
    let server = HttpServer::new(|| App::new().default_service(web::to(echo)))
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (handle, format!("http://{addr}"))
}

#[actix_web::test]
async fn proxy_subresource() {
    let (backend, backend_url) = echo_backend().await;
    let (_s, base) = start(cluster()).await;
    let c = client();
    let mut body = svc("web");
    body["metadata"]["annotations"] =
        json!({"sim.kubeplex.io/backend": format!("{backend_url}/base")});
    body["spec"]["ports"] = json!([{"name":"http","port":80},{"name":"https","port":443}]);
    create_svc(&c, &base, "default", body).await;
    create_svc(&c, &base, "default", svc("nobackend")).await;
    let root = format!("{base}/api/v1/namespaces/default/services");

    for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
        for target in ["web", "web:http", "web:80", "https:web:443", "http:web:"] {
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            let resp = c
                .request(m, format!("{root}/{target}/proxy/some/path?x=1&y=two"))
                .header("authorization", "Bearer secret")
                .header("x-custom", "kept")
                .body(if method == "GET" {
                    String::new()
                } else {
                    format!("payload-{method}")
                })
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 299, "{method} {target}");
            assert_eq!(resp.headers()["x-backend"], "yes");
            let v: Value = resp.json().await.unwrap();
            assert_eq!(v["method"], method);
            assert_eq!(v["path"], "/base/some/path");
            assert_eq!(v["query"], "x=1&y=two");
            assert_eq!(v["headers"]["x-custom"], "kept");
            assert!(
                v["headers"].get("authorization").is_none(),
                "no credential forwarded"
            );
            if method != "GET" {
                assert_eq!(v["body"], format!("payload-{method}"));
            }
        }
    }
    // HEAD: status and headers, no body
    let resp = c.head(format!("{root}/web/proxy/h")).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 299);
    assert_eq!(resp.headers()["x-backend"], "yes");
    // without {path}, and with a trailing slash
    let v: Value = c
        .get(format!("{root}/web/proxy"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["path"], "/base/");
    let v: Value = c
        .get(format!("{root}/web:http/proxy/"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["path"], "/base/");
    // {path} is decoded as kube-apiserver decodes it (the Python client sends `/` as
    // `%2F`); the backend gets it escaped as Go writes a path. The query is unchanged.
    for (path, sent, decoded) in [
        ("hello%2Fworld", "/base/hello/world", "/base/hello/world"),
        (
            "hello%2fworld%2F",
            "/base/hello/world/",
            "/base/hello/world/",
        ),
        ("hello%20world", "/base/hello%20world", "/base/hello world"),
        (
            "caf%C3%A9/%3F%23",
            "/base/caf%C3%A9/%3F%23",
            "/base/café/?#",
        ),
        ("a%2F..%2F..%2Fb", "/base/b", "/base/b"),
    ] {
        let resp = c
            .get(format!("{root}/web/proxy/{path}?q=a%2Fb&r=%20+x&s"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 299, "{path}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["path"], sent, "{path}");
        assert_eq!(v["decoded_path"], decoded, "{path}");
        assert_eq!(v["query"], "q=a%2Fb&r=%20+x&s", "{path}");
    }
    let (st, v) = send(&c, Method::GET, &format!("{root}/web/proxy/a%zz"), None).await;
    assert_refused(st, &v, 400, "BadRequest");
    assert_eq!(v["message"], "invalid URL escape \"%zz\"");
    // 503s and 404
    let (st, v) = send(&c, Method::GET, &format!("{root}/nobackend/proxy/"), None).await;
    assert_refused(st, &v, 503, "ServiceUnavailable");
    assert_eq!(
        v["message"],
        "no endpoints available for service \"nobackend\""
    );
    let (st, v) = send(&c, Method::GET, &format!("{root}/web:nope/proxy/"), None).await;
    assert_refused(st, &v, 503, "ServiceUnavailable");
    let (st, v) = send(&c, Method::GET, &format!("{root}/missing/proxy/"), None).await;
    assert_refused(st, &v, 404, "NotFound");
    backend.stop(false).await;
    // a backend that is down: a port nothing listens on
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut body = svc("down");
    body["metadata"]["annotations"] = json!({ "sim.kubeplex.io/backend": dead });
    create_svc(&c, &base, "default", body).await;
    let (st, v) = send(&c, Method::GET, &format!("{root}/down/proxy/"), None).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
    assert!(v["message"]
        .as_str()
        .unwrap()
        .starts_with("error trying to reach service"));
}

#[actix_web::test]
async fn selectors_filter_lists() {
    let (_s, base) = start(cluster()).await;
    let c = client();
    create_ns(&c, &base, "other").await;
    for (ns, name, labels) in [
        ("default", "a", json!({"app":"web","tier":"front"})),
        ("default", "b", json!({"app":"db","tier":"back"})),
        ("default", "c", json!({"app":"cache"})),
        ("other", "a", json!({"app":"web","tier":"front"})),
    ] {
        let mut s = svc(name);
        s["metadata"]["labels"] = labels;
        create_svc(&c, &base, ns, s).await;
    }
    let q = |sel: &str| {
        let url = reqwest::Url::parse_with_params(
            &format!("{base}/api/v1/namespaces/default/services"),
            &[("labelSelector", sel)],
        )
        .unwrap();
        url.to_string()
    };
    // default/kubernetes has neither label: `!=`, `notin` and `!` select it, as they select
    // objects without the key on a real server.
    for (sel, want) in [
        ("app=web", vec!["a"]),
        ("app==web", vec!["a"]),
        ("app!=web", vec!["b", "c", "kubernetes"]),
        ("app in (web,db)", vec!["a", "b"]),
        ("app notin (web,db)", vec!["c", "kubernetes"]),
        ("tier", vec!["a", "b"]),
        ("!tier", vec!["c", "kubernetes"]),
        ("app=web,tier=front", vec!["a"]),
        (
            "component=apiserver,provider=kubernetes",
            vec!["kubernetes"],
        ),
    ] {
        let (st, list) = send(&c, Method::GET, &q(sel), None).await;
        assert_eq!(st, StatusCode::OK);
        assert_eq!(names(&list), want, "{sel}");
    }
    for bad in ["app in (web", "app==", "a b", "!"] {
        let (st, v) = send(&c, Method::GET, &q(bad), None).await;
        if bad == "app==" {
            // an empty value is allowed
            assert_eq!(st, StatusCode::OK);
            continue;
        }
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}");
        assert_status(&v, 400, "BadRequest");
    }
    let f = |sel: &str| {
        reqwest::Url::parse_with_params(
            &format!("{base}/api/v1/services"),
            &[("fieldSelector", sel)],
        )
        .unwrap()
        .to_string()
    };
    let (_, l) = send(&c, Method::GET, &f("metadata.name=a"), None).await;
    assert_eq!(l["items"].as_array().unwrap().len(), 2);
    let (_, l) = send(&c, Method::GET, &f("metadata.namespace==other"), None).await;
    assert_eq!(names(&l), vec!["a"]);
    let (_, l) = send(
        &c,
        Method::GET,
        &f("metadata.namespace!=other,metadata.name!=a"),
        None,
    )
    .await;
    assert_eq!(names(&l), vec!["b", "c", "kubernetes"]);
    let (st, v) = send(&c, Method::GET, &f("spec.bogus=1"), None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("not a known field selector"));
    let (st, _) = send(&c, Method::GET, &f("metadata.name"), None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // namespaces by name
    let url = reqwest::Url::parse_with_params(
        &format!("{base}/api/v1/namespaces"),
        &[("fieldSelector", "metadata.name=other")],
    )
    .unwrap();
    let (_, l) = send(&c, Method::GET, url.as_str(), None).await;
    assert_eq!(names(&l), vec!["other"]);
}

#[actix_web::test]
async fn pagination_and_resource_versions() {
    let (server, base) = start(cluster()).await;
    let c = client();
    // A namespace of its own: default also holds default/kubernetes.
    create_ns(&c, &base, "paged").await;
    let coll = format!("{base}/api/v1/namespaces/paged/services");
    for i in 0..7 {
        create_svc(&c, &base, "paged", svc(&format!("s{i}"))).await;
    }
    let (_, first) = send(&c, Method::GET, &format!("{coll}?limit=3"), None).await;
    assert_eq!(names(&first), vec!["s0", "s1", "s2"]);
    assert_eq!(first["metadata"]["remainingItemCount"], 4);
    let list_rv = rv_of(&first);
    // a change between pages does not show: the pages are one consistent snapshot
    create_svc(&c, &base, "paged", svc("s00")).await;
    send(&c, Method::DELETE, &format!("{coll}/s5"), None).await;
    let mut seen = names(&first);
    let mut token = first["metadata"]["continue"].as_str().unwrap().to_string();
    loop {
        let url =
            reqwest::Url::parse_with_params(&coll, &[("limit", "3"), ("continue", token.as_str())])
                .unwrap();
        let (st, page) = send(&c, Method::GET, url.as_str(), None).await;
        assert_eq!(st, StatusCode::OK, "{page}");
        assert_eq!(rv_of(&page), list_rv);
        seen.extend(names(&page));
        match page["metadata"]["continue"].as_str() {
            Some(t) if !t.is_empty() => token = t.to_string(),
            _ => break,
        }
    }
    assert_eq!(seen, vec!["s0", "s1", "s2", "s3", "s4", "s5", "s6"]);
    // the current list shows the changes
    let (_, now) = send(&c, Method::GET, &coll, None).await;
    assert_eq!(names(&now), vec!["s0", "s00", "s1", "s2", "s3", "s4", "s6"]);
    // Exact reads an older revision
    let (_, exact) = send(
        &c,
        Method::GET,
        &format!("{coll}?resourceVersion={list_rv}&resourceVersionMatch=Exact"),
        None,
    )
    .await;
    assert_eq!(names(&exact).len(), 7);
    assert!(!names(&exact).contains(&"s00".to_string()));
    // too large
    let (st, v) = send(
        &c,
        Method::GET,
        &format!("{coll}?resourceVersion=999999"),
        None,
    )
    .await;
    assert_refused(st, &v, 504, "Timeout");
    // resourceVersion=0 serves the current state
    let (st, v) = send(&c, Method::GET, &format!("{coll}?resourceVersion=0"), None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(names(&v).len(), 7);
    // bad tokens and parameters are 400
    for bad in [
        "not-base64!",
        "e30",
        "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MH0",
    ] {
        let url =
            reqwest::Url::parse_with_params(&coll, &[("limit", "3"), ("continue", bad)]).unwrap();
        let (st, v) = send(&c, Method::GET, url.as_str(), None).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{bad}");
        assert_status(&v, 400, "BadRequest");
    }
    let (st, _) = send(&c, Method::GET, &format!("{coll}?limit=x"), None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = send(
        &c,
        Method::GET,
        &format!("{coll}?resourceVersionMatch=Exact"),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // after compaction: expired token and old revision are 410
    server.compact();
    let url =
        reqwest::Url::parse_with_params(&coll, &[("limit", "3"), ("continue", token.as_str())])
            .unwrap();
    let (st, v) = send(&c, Method::GET, url.as_str(), None).await;
    assert_refused(st, &v, 410, "Expired");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .starts_with("The provided continue parameter is too old"));
    let (st, v) = send(
        &c,
        Method::GET,
        &format!("{coll}?resourceVersion={list_rv}&resourceVersionMatch=Exact"),
        None,
    )
    .await;
    assert_refused(st, &v, 410, "Expired");
    // all-namespace pagination covers every namespace
    create_ns(&c, &base, "zz").await;
    create_svc(&c, &base, "zz", svc("last")).await;
    let mut total = 0;
    let mut url = format!("{base}/api/v1/services?limit=2");
    loop {
        let (_, page) = send(&c, Method::GET, &url, None).await;
        total += page["items"].as_array().unwrap().len();
        match page["metadata"]["continue"].as_str() {
            Some(t) => {
                url = reqwest::Url::parse_with_params(
                    &format!("{base}/api/v1/services"),
                    &[("limit", "2"), ("continue", t)],
                )
                .unwrap()
                .to_string()
            }
            None => break,
        }
    }
    // paged's 7, zz/last and default/kubernetes
    assert_eq!(total, 9);
}

#[actix_web::test]
async fn watch_events_in_order() {
    let (_s, base) = start(cluster()).await;
    let c = client();
    let coll = format!("{base}/api/v1/namespaces/default/services");
    let first = create_svc(&c, &base, "default", svc("pre")).await;
    let start_rv = rv_of(&first);
    // from the current state: synthetic ADDED (default/kubernetes too), then changes
    let mut w = Watch::open(&c, &format!("{coll}?watch=1")).await;
    let mut initial = Vec::new();
    for _ in 0..2 {
        let ev = w.next().await.unwrap();
        assert_eq!(ev["type"], "ADDED");
        assert_eq!(ev["object"]["kind"], "Service");
        initial.push(
            ev["object"]["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(initial, ["kubernetes", "pre"]);
    // from a resourceVersion, on the /watch/ path
    let mut w2 = Watch::open(
        &c,
        &format!("{base}/api/v1/watch/namespaces/default/services?resourceVersion={start_rv}"),
    )
    .await;
    let created = create_svc(&c, &base, "default", svc("web")).await;
    let (_, modified) = patch(
        &c,
        &format!("{coll}/web"),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"x":"y"}}}"#,
    )
    .await;
    let (_, _) = send(&c, Method::DELETE, &format!("{coll}/web"), None).await;
    for w in [&mut w, &mut w2] {
        let a = w.next().await.unwrap();
        assert_eq!(a["type"], "ADDED");
        assert_eq!(rv_of(&a["object"]), rv_of(&created));
        let m = w.next().await.unwrap();
        assert_eq!(m["type"], "MODIFIED");
        assert_eq!(m["object"], modified);
        let d = w.next().await.unwrap();
        assert_eq!(d["type"], "DELETED");
        assert!(rv_of(&d["object"]) > rv_of(&modified));
    }
    // watch=true, one name, with a label selector: leaving the selector is a DELETED
    let mut w3 = Watch::open(
        &c,
        &format!("{base}/api/v1/services?watch=true&labelSelector=app%3Dsel"),
    )
    .await;
    let mut s = svc("sel");
    s["metadata"]["labels"] = json!({"app":"sel"});
    create_svc(&c, &base, "default", s).await;
    patch(
        &c,
        &format!("{coll}/sel"),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"app":"other"}}}"#,
    )
    .await;
    patch(
        &c,
        &format!("{coll}/sel"),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"app":"sel"}}}"#,
    )
    .await;
    assert_eq!(w3.next().await.unwrap()["type"], "ADDED");
    assert_eq!(w3.next().await.unwrap()["type"], "DELETED");
    assert_eq!(w3.next().await.unwrap()["type"], "ADDED");
    // a watch of one object
    let mut w4 = Watch::open(
        &c,
        &format!("{base}/api/v1/watch/namespaces/default/services/sel"),
    )
    .await;
    assert_eq!(
        w4.next().await.unwrap()["object"]["metadata"]["name"],
        "sel"
    );
    create_svc(&c, &base, "default", svc("unrelated")).await;
    patch(
        &c,
        &format!("{coll}/sel"),
        "application/merge-patch+json",
        r#"{"metadata":{"annotations":{"n":"1"}}}"#,
    )
    .await;
    let ev = w4.next().await.unwrap();
    assert_eq!(ev["type"], "MODIFIED");
    assert_eq!(ev["object"]["metadata"]["name"], "sel");
    // namespaces watch
    let mut wn = Watch::open(
        &c,
        &format!(
            "{base}/api/v1/namespaces?watch=1&resourceVersion={}",
            rv_of(&ev["object"])
        ),
    )
    .await;
    create_ns(&c, &base, "fresh").await;
    let ev = wn.next().await.unwrap();
    assert_eq!(ev["type"], "ADDED");
    assert_eq!(ev["object"]["kind"], "Namespace");
}

#[actix_web::test]
async fn watchers_see_every_change_exactly_once_under_concurrent_writers() {
    let (_s, base) = start(cluster()).await;
    let c = client();
    let (_, list) = send(&c, Method::GET, &format!("{base}/api/v1/services"), None).await;
    let rv = rv_of(&list);
    let mut watchers = Vec::new();
    for _ in 0..8 {
        watchers.push(
            Watch::open(
                &c,
                &format!("{base}/api/v1/services?watch=1&resourceVersion={rv}"),
            )
            .await,
        );
    }
    const WRITERS: usize = 6;
    const EACH: usize = 20;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let c = c.clone();
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                let name = format!("w{w}-{i}");
                create_svc(&c, &base, "default", svc(&name)).await;
                patch(
                    &c,
                    &format!("{base}/api/v1/namespaces/default/services/{name}"),
                    "application/merge-patch+json",
                    r#"{"metadata":{"labels":{"touched":"yes"}}}"#,
                )
                .await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total = WRITERS * EACH * 2;
    let mut orders = Vec::new();
    for w in watchers.iter_mut() {
        let mut last = rv;
        let mut seen = HashSet::new();
        let mut order = Vec::new();
        for _ in 0..total {
            let ev = w.next().await.unwrap();
            let r = rv_of(&ev["object"]);
            assert!(
                r > last,
                "resourceVersions strictly increase: {r} after {last}"
            );
            last = r;
            assert!(seen.insert(r), "no duplicate");
            order.push((
                ev["type"].as_str().unwrap().to_string(),
                ev["object"]["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            ));
        }
        orders.push(order);
    }
    assert!(
        orders.windows(2).all(|p| p[0] == p[1]),
        "every watcher saw the same sequence"
    );
    assert_eq!(
        orders[0].iter().filter(|(t, _)| t == "ADDED").count(),
        WRITERS * EACH
    );
}

#[actix_web::test]
async fn bookmarks_timeouts_and_expired_watches() {
    let (server, base) = start(cluster()).await;
    let c = client();
    let coll = format!("{base}/api/v1/namespaces/default/services");
    let s = create_svc(&c, &base, "default", svc("a")).await;
    // timeoutSeconds ends the stream; with bookmarks the last event is a BOOKMARK
    let mut w = Watch::open(
        &c,
        &format!(
            "{coll}?watch=1&resourceVersion={}&timeoutSeconds=1&allowWatchBookmarks=true",
            rv_of(&s)
        ),
    )
    .await;
    let b = w.next().await.unwrap();
    assert_eq!(b["type"], "BOOKMARK");
    assert_eq!(b["object"]["kind"], "Service");
    assert_eq!(rv_of(&b["object"]), rv_of(&s));
    assert!(w.next().await.is_none(), "stream ends at timeoutSeconds");
    // without bookmarks: just the end
    let mut w = Watch::open(
        &c,
        &format!(
            "{coll}?watch=1&resourceVersion={}&timeoutSeconds=1",
            rv_of(&s)
        ),
    )
    .await;
    assert!(w.next().await.is_none());
    // sendInitialEvents: the state, then the initial-events-end bookmark
    let mut w = Watch::open(&c, &format!("{coll}?watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&resourceVersion=")).await;
    for name in ["a", "kubernetes"] {
        let ev = w.next().await.unwrap();
        assert_eq!(ev["type"], "ADDED");
        assert_eq!(ev["object"]["metadata"]["name"], name);
    }
    let b = w.next().await.unwrap();
    assert_eq!(b["type"], "BOOKMARK");
    assert_eq!(
        b["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    let (st, v) = send(
        &c,
        Method::GET,
        &format!("{coll}?watch=1&sendInitialEvents=true"),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["kind"], "Status");
    // too old: one ERROR event with a 410 Status, then the end
    create_svc(&c, &base, "default", svc("b")).await;
    server.compact();
    let mut w = Watch::open(&c, &format!("{coll}?watch=1&resourceVersion={}", rv_of(&s))).await;
    let e = w.next().await.unwrap();
    assert_eq!(e["type"], "ERROR");
    assert_status(&e["object"], 410, "Expired");
    assert!(e["object"]["message"]
        .as_str()
        .unwrap()
        .starts_with("too old resource version"));
    assert!(w.next().await.is_none());
    // a bad resourceVersion is a 400
    let (st, _) = send(
        &c,
        Method::GET,
        &format!("{coll}?watch=1&resourceVersion=abc"),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn bearer_tokens_and_limits() {
    let mut cfg = cluster();
    cfg.tokens = vec![
        SimToken {
            token: "admin".into(),
            ..Default::default()
        },
        SimToken {
            token: "reader".into(),
            namespaces: Some(vec!["default".into()]),
            verbs: Some(vec!["get".into(), "list".into(), "watch".into()]),
        },
    ];
    let (_s, base) = start(cfg).await;
    let c = client();
    let coll = format!("{base}/api/v1/namespaces/default/services");
    let resp = c.get(&coll).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_status(&resp.json().await.unwrap(), 401, "Unauthorized");
    let resp = c.get(&coll).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = c.get(&coll).bearer_auth("admin").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = c
        .post(&coll)
        .bearer_auth("admin")
        .json(&svc("web"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    // limited token: reads in its namespace only
    let resp = c.get(&coll).bearer_auth("reader").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = c
        .get(format!("{coll}/web"))
        .bearer_auth("reader")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = c
        .get(format!("{base}/api/v1/namespaces/kube-system/services"))
        .bearer_auth("reader")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let v: Value = resp.json().await.unwrap();
    assert_status(&v, 403, "Forbidden");
    assert_eq!(v["message"], "services is forbidden: User \"sim-user-2\" cannot list resource \"services\" in API group \"\" in the namespace \"kube-system\"");
    let resp = c
        .get(format!("{base}/api/v1/services"))
        .bearer_auth("reader")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let v: Value = resp.json().await.unwrap();
    assert!(v["message"]
        .as_str()
        .unwrap()
        .ends_with("at the cluster scope"));
    let resp = c
        .delete(format!("{coll}/web"))
        .bearer_auth("reader")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["message"], "services \"web\" is forbidden: User \"sim-user-2\" cannot delete resource \"services\" in API group \"\" in the namespace \"default\"");
    assert_eq!(v["details"], json!({"name":"web","kind":"services"}));
}

#[actix_web::test]
async fn faults_fail_delay_and_close_watches() {
    let mut cfg = cluster();
    cfg.faults = SimFaults {
        latency: Some(Duration::from_millis(200)),
        fail_every: Some(3),
        fail_code: Some(503),
        close_watch_after: Some(2),
    };
    let (_s, base) = start(cfg).await;
    let c = client();
    let url = format!("{base}/api/v1/namespaces");
    let mut codes = Vec::new();
    for _ in 0..6 {
        let t = std::time::Instant::now();
        let resp = c.get(&url).send().await.unwrap();
        assert!(
            t.elapsed() >= Duration::from_millis(200),
            "latency added before the head"
        );
        codes.push(resp.status().as_u16());
        if resp.status() == StatusCode::SERVICE_UNAVAILABLE {
            assert_status(&resp.json().await.unwrap(), 503, "ServiceUnavailable");
        }
    }
    assert_eq!(codes, vec![200, 200, 503, 200, 200, 503]);
    // request 7: the watch; it is closed after 2 events (4 namespaces exist)
    let mut w = Watch::open(&c, &format!("{url}?watch=1")).await;
    assert!(w.next().await.is_some());
    assert!(w.next().await.is_some());
    assert!(w.next().await.is_none(), "closed after 2 events");
}

#[actix_web::test]
async fn seeds_from_file_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seed.yaml");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: cart\n  namespace: shop\nspec:\n  ports:\n  - port: 80\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: legacy\nspec:\n  type: ExternalName\n  externalName: legacy.example.com\n",
    )
    .unwrap();
    let mut cfg = cluster();
    cfg.seed = Some(SeedSource::File(path));
    let (_s, base) = start(cfg).await;
    let c = client();
    let (_, all) = send(&c, Method::GET, &format!("{base}/api/v1/services"), None).await;
    assert_eq!(names(&all), vec!["kubernetes", "legacy", "cart"]);
    // the shipped seed, embedded; default/kubernetes is built in, not seeded
    let mut cfg = cluster();
    cfg.seed = Some(SeedSource::Text {
        name: "default".into(),
        text: kubeplex::sim::config::DEFAULT_SEED.into(),
    });
    let (_s2, base2) = start(cfg).await;
    let (_, all) = send(&c, Method::GET, &format!("{base2}/api/v1/services"), None).await;
    let all = names(&all);
    assert_eq!(all.iter().filter(|n| *n == "kubernetes").count(), 1);
    for seeded in ["checkout", "ledger-db", "web", "search", "payments-gateway"] {
        assert!(all.contains(&seeded.to_string()), "{seeded} in {all:?}");
    }
    // every cluster, seeded or not, has default/kubernetes as a real one does
    let (_s3, base3) = start(cluster()).await;
    for b in [&base2, &base3] {
        let (st, k) = send(
            &c,
            Method::GET,
            &format!("{b}/api/v1/namespaces/default/services/kubernetes"),
            None,
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{k}");
        assert_eq!(
            k["metadata"]["labels"],
            json!({"component": "apiserver", "provider": "kubernetes"})
        );
        assert_eq!(k["spec"]["type"], "ClusterIP");
        assert_eq!(k["spec"]["clusterIP"], "10.96.0.1");
        assert_eq!(k["spec"]["sessionAffinity"], "None");
        assert_eq!(
            k["spec"]["ports"],
            json!([{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}])
        );
    }
    // its address is taken: no other Service gets it
    let (st, v) = send(
        &c,
        Method::POST,
        &format!("{base3}/api/v1/namespaces/default/services"),
        Some(json!({"metadata":{"name":"squatter"},"spec":{"clusterIP":"10.96.0.1","ports":[{"port":80}]}})),
    )
    .await;
    assert_refused(st, &v, 422, "Invalid");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("provided IP is already allocated"),
        "{v}"
    );
    // a seed that defines default/kubernetes updates the built-in one: its version wins
    let mut cfg = cluster();
    cfg.seed = Some(SeedSource::Text {
        name: "own kubernetes".into(),
        text: "apiVersion: v1\nkind: Service\nmetadata:\n  name: kubernetes\n  namespace: default\n  labels: {component: apiserver, provider: kubernetes}\n  annotations: {note: from-the-seed}\nspec:\n  ports: [{name: https, port: 443, targetPort: 6443}]\n".into(),
    });
    let (_s4, base4) = start(cfg).await;
    let (_, list) = send(
        &c,
        Method::GET,
        &format!("{base4}/api/v1/namespaces/default/services"),
        None,
    )
    .await;
    assert_eq!(names(&list), vec!["kubernetes"]);
    assert_eq!(
        list["items"][0]["metadata"]["annotations"],
        json!({"note": "from-the-seed"})
    );
    assert_eq!(list["items"][0]["spec"]["clusterIP"], "10.96.0.1");
    // a bad seed refuses to start, naming the object
    let mut cfg = cluster();
    cfg.seed = Some(SeedSource::Text {
        name: "bad".into(),
        text: "kind: Service\nmetadata:\n  name: x\nspec:\n  ports:\n  - port: 0\n".into(),
    });
    let err = sim::spawn("127.0.0.1:0", &cfg).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(
        err.to_string().contains("seed bad: object 1 (Service)"),
        "{err}"
    );
}

#[actix_web::test]
async fn routing_errors_pretty_and_collections() {
    let (_s, base) = start(cluster()).await;
    let c = client();
    // POST is served there (in the body's namespace); other methods are not.
    for method in [Method::PUT, Method::PATCH, Method::DELETE] {
        let (st, v) = send(
            &c,
            method.clone(),
            &format!("{base}/api/v1/services"),
            Some(json!({})),
        )
        .await;
        assert_refused(st, &v, 405, "MethodNotAllowed");
    }
    let (st, v) = send(&c, Method::GET, &format!("{base}/api/v1/foos"), None).await;
    assert_refused(st, &v, 404, "NotFound");
    let text = c
        .get(format!("{base}/api/v1/namespaces/default?pretty=true"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.starts_with("{\n  \"kind\": \"Namespace\",\n  \"apiVersion\": \"v1\""),
        "{text}"
    );
    let text = c
        .get(format!("{base}/api/v1/namespaces/default"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.starts_with("{\"kind\":\"Namespace\",\"apiVersion\":\"v1\",\"metadata\""),
        "{text}"
    );
    // deletecollection with a selector
    for n in ["a", "b", "c"] {
        create_svc(&c, &base, "default", svc(n)).await;
    }
    let (st, v) = send(
        &c,
        Method::DELETE,
        &format!("{base}/api/v1/namespaces/default/services?labelSelector=app%20in%20(a,b)"),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(names(&v), vec!["a", "b"]);
    let (_, left) = send(
        &c,
        Method::GET,
        &format!("{base}/api/v1/namespaces/default/services"),
        None,
    )
    .await;
    assert_eq!(names(&left), vec!["c", "kubernetes"]);
    // the deleted objects come back as a list at the store's version after the deletes
    assert_eq!(v["kind"], "ServiceList", "{v}");
    assert_eq!(v["apiVersion"], "v1");
    assert_eq!(
        v["metadata"]["resourceVersion"],
        left["metadata"]["resourceVersion"]
    );
    // delete preconditions
    let (st, v) = send(
        &c,
        Method::DELETE,
        &format!("{base}/api/v1/namespaces/default/services/c"),
        Some(json!({"preconditions":{"resourceVersion":"1"}})),
    )
    .await;
    assert_refused(st, &v, 409, "Conflict");
}

#[actix_web::test]
async fn field_validation_directives() {
    let (_s, base) = start(cluster()).await;
    let c = client();
    let coll = format!("{base}/api/v1/namespaces/default/services");
    let mut body = svc("strict");
    body["spec"]["bogus"] = json!(1);
    body["spec"]["ports"][0]["x"] = json!("y");
    // Strict: refused with every unknown field named
    let (st, v) = send(
        &c,
        Method::POST,
        &format!("{coll}?fieldValidation=Strict"),
        Some(body.clone()),
    )
    .await;
    assert_refused(st, &v, 400, "BadRequest");
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains("strict decoding error: "), "{msg}");
    assert!(msg.contains("unknown field \"spec.bogus\""), "{msg}");
    assert!(msg.contains("unknown field \"spec.ports[0].x\""), "{msg}");
    // Warn (the default): created, unknown fields dropped, one Warning each
    let resp = c.post(&coll).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let warnings: Vec<String> = resp
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings
            .iter()
            .any(|w| w == "299 - \"unknown field \\\"spec.bogus\\\"\""),
        "{warnings:?}"
    );
    let v: Value = resp.json().await.unwrap();
    assert!(v["spec"].get("bogus").is_none());
    // Ignore: no warning
    body["metadata"]["name"] = json!("ignored");
    let resp = c
        .post(format!("{coll}?fieldValidation=Ignore"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(resp.headers().get("warning").is_none());
    // Strict on patch and update
    let (st, v) = patch(
        &c,
        &format!("{coll}/strict?fieldValidation=Strict"),
        "application/merge-patch+json",
        r#"{"spec":{"nope":true}}"#,
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("unknown field \"spec.nope\""));
    let (_, cur) = send(&c, Method::GET, &format!("{coll}/strict"), None).await;
    let mut upd = cur.clone();
    upd["metadata"]["wat"] = json!(1);
    let (st, _) = send(
        &c,
        Method::PUT,
        &format!("{coll}/strict?fieldValidation=Strict"),
        Some(upd),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = send(
        &c,
        Method::POST,
        &format!("{coll}?fieldValidation=Sometimes"),
        Some(svc("x")),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn tables_for_kubectl() {
    let (_s, base) = start(cluster()).await;
    let c = client();
    let coll = format!("{base}/api/v1/namespaces/default/services");
    create_svc(&c, &base, "default", svc("web")).await;
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
    let resp = c.get(&coll).header("accept", accept).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .contains("as=Table"));
    let t: Value = resp.json().await.unwrap();
    assert_eq!(t["kind"], "Table");
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        &cols[..6],
        &[
            "Name",
            "Type",
            "Cluster-IP",
            "External-IP",
            "Port(s)",
            "Age"
        ]
    );
    // default/kubernetes first, as `kubectl get services` shows it on a real cluster
    assert_eq!(
        t["rows"][0]["cells"].as_array().unwrap()[..5],
        [
            json!("kubernetes"),
            json!("ClusterIP"),
            json!("10.96.0.1"),
            json!("<none>"),
            json!("443/TCP")
        ]
    );
    assert_eq!(t["rows"][1]["cells"][0], "web");
    assert_eq!(t["rows"][1]["cells"][4], "80/TCP");
    assert!(t["metadata"]["resourceVersion"].is_string());
    let t: Value = c
        .get(format!("{coll}/web"))
        .header("accept", accept)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(t["rows"].as_array().unwrap().len(), 1);
    let t: Value = c
        .get(format!("{base}/api/v1/namespaces"))
        .header("accept", accept)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(t["rows"][0]["cells"][0], "default");
    assert_eq!(t["rows"][0]["cells"][1], "Active");
    // watch events carry one-row Tables
    let resp = c
        .get(format!("{coll}?watch=1"))
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    let mut w = Watch {
        resp,
        buf: Vec::new(),
    };
    for name in ["kubernetes", "web"] {
        let ev = w.next().await.unwrap();
        assert_eq!(ev["type"], "ADDED");
        assert_eq!(ev["object"]["kind"], "Table");
        assert_eq!(ev["object"]["rows"].as_array().unwrap().len(), 1);
        assert_eq!(ev["object"]["rows"][0]["cells"][0], name);
    }
}

/// kubectl's generator subcommands send protobuf bodies; the simulator decodes them.
#[actix_web::test]
async fn kubectl_generators_send_protobuf() {
    let (_s, base) = start(cluster()).await;
    let dir = tempfile::tempdir().unwrap();
    let kubectl = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new("kubectl");
        cmd.env("KUBECONFIG", dir.path().join("none"))
            .arg(format!("--server={base}"))
            .arg(format!(
                "--cache-dir={}",
                dir.path().join("cache").display()
            ))
            .args(args);
        cmd
    };
    let out = kubectl(&["create", "namespace", "pbtest"])
        .output()
        .await
        .expect("kubectl 1.32 is installed (see .ci/run)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "namespace/pbtest created"
    );
    let out = kubectl(&[
        "create",
        "service",
        "nodeport",
        "pbsvc",
        "-n",
        "pbtest",
        "--tcp=80:8080",
        "--node-port=30123",
    ])
    .output()
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = client();
    let (st, v) = send(
        &c,
        Method::GET,
        &format!("{base}/api/v1/namespaces/pbtest/services/pbsvc"),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["spec"]["type"], "NodePort");
    assert_eq!(v["spec"]["ports"][0]["nodePort"], 30123);
    assert_eq!(v["spec"]["ports"][0]["targetPort"], 8080);
    assert_eq!(v["spec"]["selector"]["app"], "pbsvc");
}

/// A watcher that stops reading while the cluster changes faster than the broadcast keeps
/// history is ended with a 410 ERROR event, after a gap-free prefix: never skipped silently.
#[actix_web::test]
async fn a_watcher_too_far_behind_gets_410_not_a_gap() {
    use kubeplex::sim::model::Service;
    use kubeplex::sim::store::Object;
    let (server, base) = start(cluster()).await;
    let c = client();
    let rv = server.resource_version();
    let mut w = Watch::open(
        &c,
        &format!("{base}/api/v1/namespaces/default/services?watch=1&resourceVersion={rv}"),
    )
    .await;
    // More events at once than the broadcast, the event channel and the socket buffers hold.
    const N: u64 = 60_000;
    server
        .state()
        .store
        .write(|t| {
            for i in 0..N {
                let mut s = Service::default();
                s.metadata.name = Some(format!("bulk-{i}"));
                s.metadata.namespace = Some("default".into());
                t.put(Object::Service(s));
            }
            Ok(())
        })
        .unwrap();
    let mut last = rv;
    loop {
        let ev = w
            .next()
            .await
            .expect("the stream ends with an ERROR event, not silently");
        if ev["type"] == "ERROR" {
            assert_status(&ev["object"], 410, "Expired");
            break;
        }
        assert_eq!(ev["type"], "ADDED");
        let r = rv_of(&ev["object"]);
        assert_eq!(r, last + 1, "no gap before the error");
        last = r;
    }
    assert!(last < rv + N, "the watcher fell behind");
    assert!(w.next().await.is_none(), "the stream ends after the ERROR");
}
