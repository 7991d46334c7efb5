//! Merged watches through `{base}/aggregate` (SPEC §6, issue 11 items 5 and 6): kubeplex
//! in-process in front of two or three simulated clusters; writes go to each simulated
//! cluster directly and arrive on one merged stream.

use crate::common::{cluster, eventually, settings, spawn_app};
use crate::kubectl_support::{cells, read_until, Kubectl};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use kubeplex::app::RunningApp;
use kubeplex::sim::config::{SeedSource, SimClusterConfig, SimFaults};
use kubeplex::sim::{self, SimServer};
use serde_json::{json, Value};
use std::pin::Pin;
use std::time::Duration;

/// The safety deadline of any one wait (generous: 2 shared cores, tests in parallel).
const WAIT: Duration = Duration::from_secs(30);

const SEED: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector:
    app: web
  ports:
    - port: 80
"#;

fn sim_config(name: &str, faults: SimFaults) -> SimClusterConfig {
    SimClusterConfig {
        name: name.into(),
        seed: Some(SeedSource::Text {
            name: format!("{name} seed"),
            text: SEED.into(),
        }),
        faults,
        ..Default::default()
    }
}

fn url_of(s: &SimServer) -> String {
    s.url().as_str().trim_end_matches('/').to_string()
}

/// Simulated clusters named `names` (each with its faults) and kubeplex in front of them
/// (a `config` locator: keys `config:<name>`).
async fn start(names: &[(&str, SimFaults)]) -> (Vec<SimServer>, RunningApp) {
    let mut sims = Vec::new();
    for (name, faults) in names {
        sims.push(
            sim::spawn("127.0.0.1:0", &sim_config(name, faults.clone()))
                .await
                .expect("sim starts"),
        );
    }
    let clusters = names
        .iter()
        .zip(&sims)
        .map(|((name, _), s)| cluster(name, &url_of(s)))
        .collect();
    let app = spawn_app(settings(clusters)).await;
    (sims, app)
}

fn agg(app: &RunningApp, path: &str) -> String {
    format!("{}/api/kubernetes/aggregate{path}", app.url())
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Creates Service `name` in namespace `default` of `sim`, directly.
async fn create_svc(sim: &SimServer, name: &str) {
    let res = client()
        .post(format!(
            "{}/api/v1/namespaces/default/services",
            url_of(sim)
        ))
        .json(&json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"ports": [{"port": 80}]},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
}

/// The merged list's version vector.
async fn list_vector(app: &RunningApp) -> String {
    let v: Value = client()
        .get(agg(app, "/api/v1/namespaces/default/services"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rv = v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(rv.starts_with("kpv1."), "{v}");
    rv
}

/// A watch response read event by event.
struct Events {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>>>>,
    buf: Vec<u8>,
}

impl Events {
    async fn open(url: &str, accept: Option<&str>) -> (reqwest::header::HeaderMap, Events) {
        let mut req = client().get(url);
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200, "{url}");
        let headers = res.headers().clone();
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .contains("stream=watch"),
            "{headers:?}"
        );
        let events = Events {
            body: Box::pin(res.bytes_stream()),
            buf: Vec::new(),
        };
        (headers, events)
    }

    /// The next event; `None` when the stream ends.
    async fn next(&mut self) -> Option<Value> {
        let read = async {
            loop {
                if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = self.buf.drain(..=i).collect();
                    if line.trim_ascii().is_empty() {
                        // Whitespace between events (kubeplex's keepalive).
                        continue;
                    }
                    return Some(serde_json::from_slice(&line).expect("a JSON event"));
                }
                match self.body.next().await {
                    Some(Ok(b)) => self.buf.extend_from_slice(&b),
                    Some(Err(_)) | None => return None,
                }
            }
        };
        tokio::time::timeout(WAIT, read)
            .await
            .expect("an event or the end in time")
    }

    /// The next event, which must exist.
    async fn event(&mut self) -> Value {
        self.next().await.expect("the stream goes on")
    }
}

fn name_of(ev: &Value) -> &str {
    ev["object"]["metadata"]["name"].as_str().unwrap_or("")
}

fn annotation<'a>(ev: &'a Value, a: &str) -> &'a str {
    ev["object"]["metadata"]["annotations"][a]
        .as_str()
        .unwrap_or("")
}

fn vector_of(ev: &Value) -> String {
    let rv = ev["object"]["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(rv.starts_with("kpv1."), "{ev}");
    rv
}

#[actix_web::test]
async fn writes_in_two_clusters_arrive_annotated_and_resume_from_any_event() {
    let (sims, app) = start(&[("a", SimFaults::default()), ("b", SimFaults::default())]).await;
    let rv = list_vector(&app).await;
    let url = agg(
        &app,
        &format!("/api/v1/namespaces/default/services?watch=1&resourceVersion={rv}"),
    );
    // A protobuf-preferring client (client-go's default) still gets JSON events.
    let accept = "application/vnd.kubernetes.protobuf, application/json";
    let (_, mut events) = Events::open(&url, Some(accept)).await;

    create_svc(&sims[0], "one").await;
    let one = events.event().await;
    assert_eq!(one["type"], "ADDED", "{one}");
    assert_eq!(name_of(&one), "one");
    assert_eq!(annotation(&one, "kubeplex.io/cluster"), "config:a");
    assert_eq!(annotation(&one, "kubeplex.io/cluster-name"), "a");
    let after_one = vector_of(&one);

    create_svc(&sims[1], "two").await;
    let two = events.event().await;
    assert_eq!(two["type"], "ADDED", "{two}");
    assert_eq!(name_of(&two), "two");
    assert_eq!(annotation(&two, "kubeplex.io/cluster"), "config:b");
    assert_eq!(annotation(&two, "kubeplex.io/cluster-name"), "b");
    let after_two = vector_of(&two);
    assert_ne!(after_one, after_two);
    drop(events);

    // Resuming from the first event: exactly the later events.
    let url = agg(
        &app,
        &format!("/api/v1/namespaces/default/services?watch=true&resourceVersion={after_one}"),
    );
    let (_, mut resumed) = Events::open(&url, None).await;
    let again = resumed.event().await;
    assert_eq!(name_of(&again), "two", "{again}");
    assert_eq!(annotation(&again, "kubeplex.io/cluster"), "config:b");
    create_svc(&sims[0], "three").await;
    let three = resumed.event().await;
    assert_eq!(name_of(&three), "three", "{three}");
    assert_eq!(annotation(&three, "kubeplex.io/cluster"), "config:a");

    // And from the second: only the third.
    let url = agg(
        &app,
        &format!("/api/v1/watch/namespaces/default/services?resourceVersion={after_two}"),
    );
    let (_, mut resumed) = Events::open(&url, None).await;
    let next = resumed.event().await;
    assert_eq!(name_of(&next), "three", "{next}");
}

#[actix_web::test]
async fn a_member_410_ends_the_merged_watch_with_one_error() {
    let (sims, app) = start(&[("a", SimFaults::default()), ("b", SimFaults::default())]).await;
    let old = list_vector(&app).await;
    create_svc(&sims[0], "later").await;
    sims[0].compact();
    let url = agg(
        &app,
        &format!("/api/v1/namespaces/default/services?watch=1&resourceVersion={old}"),
    );
    let (_, mut events) = Events::open(&url, None).await;
    let err = events.event().await;
    assert_eq!(err["type"], "ERROR", "{err}");
    assert_eq!(err["object"]["kind"], "Status");
    assert_eq!(err["object"]["code"], 410);
    assert_eq!(err["object"]["reason"], "Expired");
    assert!(
        err["object"]["message"]
            .as_str()
            .unwrap()
            .contains("config:a"),
        "{err}"
    );
    assert_eq!(events.next().await, None, "the stream ends after the ERROR");
}

#[actix_web::test]
async fn a_member_stream_that_ends_is_reopened_from_its_last_version() {
    let closing = SimFaults {
        close_watch_after: Some(1),
        ..Default::default()
    };
    let (sims, app) = start(&[("a", closing), ("b", SimFaults::default())]).await;
    let rv = list_vector(&app).await;
    let url = agg(
        &app,
        &format!("/api/v1/namespaces/default/services?watch=1&resourceVersion={rv}"),
    );
    let (_, mut events) = Events::open(&url, None).await;
    // Cluster a closes its watch after every event: each next one comes on a reopened
    // watch, from the version of the last, without repeats.
    for name in ["r1", "r2", "r3"] {
        create_svc(&sims[0], name).await;
        let ev = events.event().await;
        assert_eq!(ev["type"], "ADDED", "{ev}");
        assert_eq!(name_of(&ev), name, "{ev}");
        assert_eq!(annotation(&ev, "kubeplex.io/cluster"), "config:a");
    }
    create_svc(&sims[1], "b1").await;
    let ev = events.event().await;
    assert_eq!(name_of(&ev), "b1", "{ev}");
}

#[actix_web::test]
async fn a_client_disconnect_closes_every_member_watch() {
    let (sims, app) = start(&[
        ("a", SimFaults::default()),
        ("b", SimFaults::default()),
        ("c", SimFaults::default()),
    ])
    .await;
    let rv = list_vector(&app).await;
    let url = agg(
        &app,
        &format!("/api/v1/namespaces/default/services?watch=1&resourceVersion={rv}"),
    );
    let (_, mut events) = Events::open(&url, None).await;
    assert!(
        eventually(WAIT, || sims.iter().all(|s| s.watchers() == 1)).await,
        "each member has one watch open: {:?}",
        sims.iter().map(SimServer::watchers).collect::<Vec<_>>()
    );
    create_svc(&sims[2], "c1").await;
    assert_eq!(name_of(&events.event().await), "c1");
    drop(events);
    // kubeplex notices the client is gone when it next writes (a keepalive within seconds)
    // and then drops every member's response, closing its connection. A server (the
    // simulated one too) notices a closed idle watch only when it writes to it: write
    // until each has noticed. A member watch kubeplex kept open would take every write.
    let deadline = std::time::Instant::now() + WAIT;
    let mut n = 0;
    let closed = loop {
        if eventually(Duration::from_millis(500), || {
            sims.iter().all(|s| s.watchers() == 0)
        })
        .await
        {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
        n += 1;
        for s in &sims {
            if s.watchers() > 0 {
                create_svc(s, &format!("poke{n}")).await;
            }
        }
    };
    assert!(
        closed,
        "every member watch is closed: {:?}",
        sims.iter().map(SimServer::watchers).collect::<Vec<_>>()
    );
}

#[actix_web::test]
async fn an_unreachable_member_is_named_while_the_others_stream() {
    let good = sim::spawn("127.0.0.1:0", &sim_config("a", SimFaults::default()))
        .await
        .unwrap();
    // A port nothing listens on (bound then closed).
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let app = spawn_app(settings(vec![
        cluster("a", &url_of(&good)),
        cluster("gone", &dead),
    ]))
    .await;
    let url = agg(
        &app,
        "/api/v1/namespaces/default/services?watch=1&resourceVersion=kpv1.e30",
    );
    let (headers, mut events) = Events::open(&url, None).await;
    let warnings: Vec<&str> = headers
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains("config:gone")),
        "{warnings:?}"
    );
    // `kpv1.e30` is the empty vector: a starts from "now" (its current objects as ADDED).
    create_svc(&good, "still").await;
    loop {
        let ev = events.event().await;
        if name_of(&ev) == "still" {
            assert_eq!(annotation(&ev, "kubeplex.io/cluster"), "config:a");
            break;
        }
    }
}

#[actix_web::test]
async fn a_table_watch_has_the_cluster_column_in_every_event() {
    let (sims, app) = start(&[("a", SimFaults::default()), ("b", SimFaults::default())]).await;
    let rv = list_vector(&app).await;
    let url = agg(
        &app,
        &format!("/api/v1/namespaces/default/services?watch=1&resourceVersion={rv}"),
    );
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io";
    let (_, mut events) = Events::open(&url, Some(accept)).await;
    for (i, name) in [(1, "tb"), (0, "ta")] {
        create_svc(&sims[i], name).await;
        let ev = events.event().await;
        let key = format!("config:{}", ["a", "b"][i]);
        assert_eq!(ev["type"], "ADDED", "{ev}");
        let t = &ev["object"];
        assert_eq!(t["kind"], "Table", "{ev}");
        assert!(vector_of(&ev).starts_with("kpv1."));
        let cols = t["columnDefinitions"].as_array().unwrap();
        assert_eq!(cols[0]["name"], "Cluster", "{ev}");
        assert_eq!(cols[1]["name"], "Name", "{ev}");
        let row = &t["rows"][0];
        assert_eq!(row["cells"][0], key.as_str(), "{ev}");
        assert_eq!(row["cells"][1], name, "{ev}");
        assert_eq!(
            row["object"]["metadata"]["annotations"]["kubeplex.io/cluster"],
            key.as_str(),
            "{ev}"
        );
    }
}

#[actix_web::test]
async fn kubectl_get_w_shows_services_of_two_clusters_and_pods_with_the_cluster_column() {
    let (sims, app) = start(&[("a", SimFaults::default()), ("b", SimFaults::default())]).await;
    let k = Kubectl::new(&agg(&app, ""), None);

    let (_child, mut lines) = k.spawn_lines(&["get", "svc", "-A", "-w"]);
    let header = read_until(&mut lines, "the header", |l| l.starts_with("NAMESPACE")).await;
    let header = cells(&header);
    let col = |name: &str| {
        header
            .iter()
            .position(|c| *c == name)
            .unwrap_or_else(|| panic!("no {name} in {header:?}"))
    };
    let (cluster_col, name_col) = (col("CLUSTER"), col("NAME"));
    // The seeded Service of each cluster is listed first.
    for _ in 0..2 {
        let l = read_until(&mut lines, "a seeded Service", |l| l.contains(" web ")).await;
        assert!(
            ["config:a", "config:b"].contains(&cells(&l)[cluster_col]),
            "{l}"
        );
    }
    for (i, name) in [(0, "from-a"), (1, "from-b")] {
        create_svc(&sims[i], name).await;
        let l = read_until(&mut lines, name, |l| cells(l).get(name_col) == Some(&name)).await;
        assert_eq!(cells(&l)[cluster_col], ["config:a", "config:b"][i], "{l}");
    }

    let (_child, mut lines) = k.spawn_lines(&["get", "pods", "-A", "-w"]);
    let header = read_until(&mut lines, "the header", |l| l.starts_with("NAMESPACE")).await;
    let header = cells(&header);
    let cluster_col = header
        .iter()
        .position(|c| *c == "CLUSTER")
        .unwrap_or_else(|| panic!("no CLUSTER in {header:?}"));
    // Every cluster's pods are listed, each row with its cluster.
    let mut seen = std::collections::BTreeSet::new();
    let mut read = Vec::new();
    while seen.len() < 2 {
        let l = read_until(&mut lines, "a pod", |_| true).await;
        if l.starts_with("shop ") {
            seen.insert(cells(&l)[cluster_col].to_string());
        }
        read.push(l);
        assert!(read.len() < 20, "{header:?} {read:#?}");
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["config:a", "config:b"],
        "{read:#?}"
    );
}

#[actix_web::test]
async fn a_reload_that_adds_or_removes_clusters_ends_the_merged_watch() {
    use kubeplex::cluster::Registry;
    use std::sync::Arc;
    let (sims, app) = start(&[("a", SimFaults::default()), ("b", SimFaults::default())]).await;
    let registry_of = |names: &[&str]| {
        let s = settings(
            names
                .iter()
                .map(|n| cluster(n, &url_of(&sims[usize::from(*n == "b")])))
                .collect(),
        );
        async move {
            let located = kubeplex::locate::locate_all(&s).await.unwrap();
            Arc::new(Registry::new(
                located.iter().map(|l| l.to_list()).collect(),
                s.duplicate_names,
            ))
        }
    };
    let rv = list_vector(&app).await;
    let url = agg(
        &app,
        &format!("/api/v1/namespaces/default/services?watch=1&resourceVersion={rv}"),
    );
    let (_, mut events) = Events::open(&url, None).await;

    // A reload with the same clusters: the watch goes on.
    app.registry.store(registry_of(&["a", "b"]).await);
    create_svc(&sims[1], "kept").await;
    assert_eq!(name_of(&events.event().await), "kept");
    // Watched after the same-cluster reload was seen (checked every second).
    let (_, mut later) = Events::open(&url, None).await;
    assert_eq!(name_of(&later.event().await), "kept");

    // A reload without b: both end cleanly.
    app.registry.store(registry_of(&["a"]).await);
    assert_eq!(events.next().await, None, "the watch ended");
    assert_eq!(later.next().await, None, "the watch ended");
}

/// An upstream answering watches with `reply(n)` for its `n`th request (from 0).
async fn upstream(
    reply: impl Fn(u64) -> crate::common::Reply + Send + Sync + 'static,
) -> crate::common::Upstream {
    let n = std::sync::atomic::AtomicU64::new(0);
    crate::common::Upstream::start(move |_| {
        reply(n.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
    })
    .await
}

fn reply(status: u16, content_type: &str, body: String) -> crate::common::Reply {
    crate::common::Reply {
        status,
        headers: vec![("content-type".into(), content_type.into())],
        body: crate::common::Body::Bytes(body.into_bytes()),
    }
}

#[actix_web::test]
async fn a_member_answering_http_410_ends_the_merged_watch_with_one_error() {
    let good = sim::spawn("127.0.0.1:0", &sim_config("a", SimFaults::default()))
        .await
        .unwrap();
    let expired = upstream(|_| {
        reply(
            410,
            "application/json",
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                   "message": "too old resource version: 1 (5)", "reason": "Expired", "code": 410})
            .to_string(),
        )
    })
    .await;
    let app = spawn_app(settings(vec![
        cluster("a", &url_of(&good)),
        cluster("old", &expired.url),
    ]))
    .await;
    let url = agg(&app, "/api/v1/namespaces/default/services?watch=1");
    let (_, mut events) = Events::open(&url, None).await;
    let err = events.event().await;
    assert_eq!(err["type"], "ERROR", "{err}");
    assert_eq!(err["object"]["code"], 410);
    assert_eq!(err["object"]["reason"], "Expired");
    let message = err["object"]["message"].as_str().unwrap();
    assert!(
        message.contains("config:old") && message.contains("too old"),
        "{err}"
    );
    assert_eq!(events.next().await, None, "the stream ends after the ERROR");
}

#[actix_web::test]
async fn a_member_failing_at_start_is_retried_in_the_background() {
    let good = sim::spawn("127.0.0.1:0", &sim_config("a", SimFaults::default()))
        .await
        .unwrap();
    // Fails the first watch, then streams one event and ends (and so on, reopened).
    let late = upstream(|n| {
        if n == 0 {
            return reply(
                503,
                "application/json",
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                       "message": "starting up", "reason": "ServiceUnavailable", "code": 503})
                .to_string(),
            );
        }
        let ev = json!({"type": "ADDED", "object": {"kind": "Service", "apiVersion": "v1",
            "metadata": {"name": "late", "namespace": "default", "resourceVersion": "77"}}});
        reply(200, "application/json;stream=watch", format!("{ev}\n"))
    })
    .await;
    let app = spawn_app(settings(vec![
        cluster("a", &url_of(&good)),
        cluster("late", &late.url),
    ]))
    .await;
    let rv = "kpv1.e30"; // the empty vector: every member from now
    let url = agg(
        &app,
        &format!("/api/v1/namespaces/default/services?watch=1&resourceVersion={rv}"),
    );
    let (headers, mut events) = Events::open(&url, None).await;
    let warning = headers
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|w| w.contains("config:late"))
        .expect("a Warning naming the missing member");
    assert!(warning.contains("starting up"), "{warning}");
    loop {
        let ev = events.event().await;
        if name_of(&ev) == "late" {
            assert_eq!(annotation(&ev, "kubeplex.io/cluster"), "config:late");
            let v = vector_of(&ev);
            assert!(v.starts_with("kpv1."));
            break;
        }
    }
    // Reopened from its last version after the stream ended.
    assert!(
        eventually(WAIT, || late.recorded().iter().any(|r| r
            .query
            .as_deref()
            .unwrap_or("")
            .contains("resourceVersion=77")))
        .await,
        "{:?}",
        late.recorded()
            .iter()
            .map(|r| r.query.clone())
            .collect::<Vec<_>>()
    );
}

#[actix_web::test]
async fn an_idle_merged_watch_whose_client_left_closes_its_member_connections() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A member that answers a watch head and then sends nothing: it learns that kubeplex
    // closed the watch only from the connection's end.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let member = format!("http://{}", listener.local_addr().unwrap());
    let closed = Arc::new(AtomicBool::new(false));
    let flag = closed.clone();
    actix_web::rt::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "the request head");
            head.extend_from_slice(&buf[..n]);
        }
        s.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json;stream=watch\r\n\
              transfer-encoding: chunked\r\n\r\n",
        )
        .await
        .unwrap();
        while s.read(&mut buf).await.map(|n| n > 0).unwrap_or(false) {}
        flag.store(true, Ordering::SeqCst);
    });
    let app = spawn_app(settings(vec![cluster("idle", &member)])).await;
    let url = agg(&app, "/api/v1/namespaces/default/services?watch=1");
    let (_, events) = Events::open(&url, None).await;
    drop(events);
    assert!(
        eventually(WAIT, || closed.load(Ordering::SeqCst)).await,
        "kubeplex closed the idle member watch after its client left"
    );
}

/// Creates a pod through the simulator's API (its pods are Running at once).
async fn create_pod(sim: &SimServer, name: &str) {
    let res = client()
        .post(format!("{}/api/v1/namespaces/shop/pods", url_of(sim)))
        .json(&json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop", "labels": {"app": "new"}},
            "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
}

/// `kubectl get pods -A -w` pointed at the aggregate URL sees a pod created in each of two
/// clusters, each row with its cluster.
#[actix_web::test]
async fn kubectl_get_pods_w_sees_pods_created_in_two_clusters() {
    let (sims, app) = start(&[("a", SimFaults::default()), ("b", SimFaults::default())]).await;
    let k = Kubectl::new(&agg(&app, ""), None);
    let (_child, mut lines) = k.spawn_lines(&["get", "pods", "-A", "-w"]);
    let header = read_until(&mut lines, "the header", |l| l.starts_with("NAMESPACE")).await;
    let header = cells(&header);
    let col = |name: &str| {
        header
            .iter()
            .position(|c| *c == name)
            .unwrap_or_else(|| panic!("no {name} in {header:?}"))
    };
    let (cluster_col, name_col, status_col) = (col("CLUSTER"), col("NAME"), col("STATUS"));
    for (i, name) in [(0, "new-in-a"), (1, "new-in-b")] {
        create_pod(&sims[i], name).await;
        let l = read_until(&mut lines, name, |l| cells(l).get(name_col) == Some(&name)).await;
        let c = cells(&l);
        assert_eq!(c[cluster_col], ["config:a", "config:b"][i], "{l}");
        assert_eq!(c[status_col], "Running", "{l}");
    }
}
