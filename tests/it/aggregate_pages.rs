//! Paged aggregate lists (SPEC §6, issue 11 item 3) over loopback: three simulated clusters
//! with 7, 0 and 12 seeded Services (each also has default/kubernetes) behind kubeplex's
//! `{base}/aggregate`; walking every page with limit 1, 5 and 100 gives exactly the unpaged
//! list; tampered, garbage, foreign-query and foreign-caller tokens are 400; our expired
//! token and a member's expired continue token are 410 Expired; kubectl `--chunk-size`
//! prints every Service of every cluster.

use crate::common::*;
use crate::kubectl_support::Kubectl;
use base64::Engine;
use kubeplex::app::RunningApp;
use kubeplex::sim::config::{SeedSource, SimClusterConfig};
use kubeplex::sim::SimServer;
use serde_json::{json, Value};

const KEY: &str = "aggregate-pages-test-continue-key-0123456789";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn seed(prefix: &str, n: usize) -> String {
    let mut text = String::from("apiVersion: v1\nkind: List\nitems:\n");
    for i in 0..n {
        // Two namespaces, so a member's own order is not just by name.
        let ns = if i % 2 == 0 { "default" } else { "kube-public" };
        text.push_str(&format!(
            "- apiVersion: v1\n  kind: Service\n  metadata: {{name: {prefix}-{i:02}, namespace: {ns}}}\n  spec:\n    ports: [{{port: 80}}]\n"
        ));
    }
    text
}

/// Clusters `a`, `b`, `c` (keys `config:a`...) with 7, 0 and 12 seeded Services, accepting
/// `tokens` (none: anonymous); kubeplex with `continueKey` [`KEY`].
async fn start(tokens: &[&str]) -> (RunningApp, Vec<SimServer>) {
    let mut sims = Vec::new();
    let mut clusters = Vec::new();
    for (name, n) in [("a", 7), ("b", 0), ("c", 12)] {
        let seed = SeedSource::Text {
            name: format!("{name} seed"),
            text: seed(&format!("svc-{name}"), n),
        };
        let cfg = SimClusterConfig::new(name, Some(seed), tokens.iter().copied());
        let sim = kubeplex::sim::spawn("127.0.0.1:0", &cfg)
            .await
            .expect("sim starts");
        clusters.push(cluster(name, sim.url().as_str().trim_end_matches('/')));
        sims.push(sim);
    }
    let mut s = settings(clusters);
    s.aggregate.continue_key = Some(KEY.into());
    s.aggregate.cache_ttl = std::time::Duration::ZERO;
    (spawn_app(s).await, sims)
}

fn url(app: &RunningApp, path: &str, query: &[(&str, &str)]) -> String {
    reqwest::Url::parse_with_params(
        &format!("{}/api/kubernetes/aggregate{path}", app.url()),
        query,
    )
    .unwrap()
    .to_string()
}

async fn get(
    app: &RunningApp,
    path: &str,
    query: &[(&str, &str)],
    auth: Option<&str>,
) -> (u16, Value) {
    let mut r = http().get(url(app, path, query));
    if let Some(a) = auth {
        r = r.header("Authorization", a);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn continue_of(v: &Value) -> Option<String> {
    v["metadata"]["continue"]
        .as_str()
        .filter(|c| !c.is_empty())
        .map(str::to_string)
}

/// Every page of `/api/v1/services` with `limit` (and `extra`), in order.
async fn walk(
    app: &RunningApp,
    limit: usize,
    extra: &[(&str, &str)],
    auth: Option<&str>,
) -> Vec<Value> {
    let limit_text = limit.to_string();
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut q: Vec<(&str, &str)> = vec![("limit", &limit_text)];
        q.extend_from_slice(extra);
        if let Some(t) = &token {
            q.push(("continue", t));
        }
        let (st, page) = get(app, "/api/v1/services", &q, auth).await;
        assert_eq!(st, 200, "{page}");
        token = continue_of(&page);
        pages.push(page);
        if token.is_none() {
            return pages;
        }
        assert!(pages.len() < 100, "the walk does not end");
    }
}

fn assert_status(st: u16, v: &Value, code: u16, reason: &str) {
    assert_eq!(st, code, "{v}");
    assert_eq!(v["kind"], "Status", "{v}");
    assert_eq!(v["code"], code, "{v}");
    assert_eq!(v["reason"], reason, "{v}");
}

/// `token` with its payload changed by `f` and signed again with [`KEY`].
fn forge(token: &str, f: impl FnOnce(&mut Value)) -> String {
    let (signed, _) = token.rsplit_once('.').unwrap();
    let payload = signed.strip_prefix("kpc1.").unwrap();
    let mut v: Value = serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap();
    f(&mut v);
    let signed = format!("kpc1.{}", B64.encode(serde_json::to_vec(&v).unwrap()));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, KEY.as_bytes());
    let tag = ring::hmac::sign(&key, signed.as_bytes());
    format!("{signed}.{}", B64.encode(tag.as_ref()))
}

#[actix_web::test]
async fn every_page_together_is_the_unpaged_list() {
    let (app, _sims) = start(&[]).await;
    let (st, whole) = get(&app, "/api/v1/services", &[], None).await;
    assert_eq!(st, 200, "{whole}");
    let all = whole["items"].as_array().unwrap().clone();
    assert_eq!(all.len(), 8 + 1 + 13, "{whole}");
    for limit in [1, 5, 100] {
        let pages = walk(&app, limit, &[], None).await;
        assert_eq!(pages.len(), all.len().div_ceil(limit), "limit {limit}");
        let mut items = Vec::new();
        for (i, page) in pages.iter().enumerate() {
            assert_eq!(page["kind"], "ServiceList", "{page}");
            assert!(page.get("clusterErrors").is_none(), "{page}");
            let n = page["items"].as_array().unwrap().len();
            if i + 1 < pages.len() {
                assert_eq!(n, limit, "limit {limit}, page {i}");
                assert!(continue_of(page).unwrap().starts_with("kpc1."));
            }
            items.extend(page["items"].as_array().unwrap().iter().cloned());
        }
        assert_eq!(items, all, "limit {limit}");
    }
    // A Table pages the same rows. Their Age cells are left out: the seeded
    // `default/kubernetes` Service is seconds old, so its age may tick between two reads.
    let table = "application/json;as=Table;v=v1;g=meta.k8s.io";
    let rows_of = |v: &Value| -> Vec<Value> {
        let columns = v["columnDefinitions"].as_array().unwrap();
        let age = columns.iter().position(|c| c["name"] == "Age").unwrap();
        v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let mut cells = r["cells"].as_array().unwrap().clone();
                cells.remove(age);
                Value::Array(cells)
            })
            .collect()
    };
    let c = http();
    let whole: Value = c
        .get(url(&app, "/api/v1/services", &[]))
        .header("Accept", table)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut rows = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut q = vec![("limit", "4")];
        if let Some(t) = &token {
            q.push(("continue", t.as_str()));
        }
        let page: Value = c
            .get(url(&app, "/api/v1/services", &q))
            .header("Accept", table)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(page["kind"], "Table", "{page}");
        rows.extend(rows_of(&page));
        token = continue_of(&page);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(rows, rows_of(&whole));
    assert_eq!(rows.len(), 22);
}

#[actix_web::test]
async fn foreign_and_tampered_tokens_are_400() {
    let (app, _sims) = start(&["alice-token", "bob-token"]).await;
    let alice = Some("Bearer alice-token");
    let sel = [("labelSelector", "")];
    let (st, first) = get(&app, "/api/v1/services", &[("limit", "3")], alice).await;
    assert_eq!(st, 200, "{first}");
    let token = continue_of(&first).unwrap();
    // It works for its own query and caller.
    let (st, second) = get(
        &app,
        "/api/v1/services",
        &[("limit", "3"), ("continue", &token)],
        alice,
    )
    .await;
    assert_eq!(st, 200, "{second}");
    assert_eq!(second["items"].as_array().unwrap().len(), 3);
    let bad = |why: &'static str| {
        move |v: &Value| {
            let m = v["message"].as_str().unwrap();
            assert!(m.starts_with("continue token is not valid: "), "{why}: {m}");
        }
    };
    // A flipped byte, anywhere after the prefix.
    for at in [7, token.len() / 2, token.len() - 3] {
        let mut bytes = token.clone().into_bytes();
        bytes[at] = if bytes[at] == b'x' { b'y' } else { b'x' };
        let tampered = String::from_utf8(bytes).unwrap();
        let (st, v) = get(
            &app,
            "/api/v1/services",
            &[("limit", "3"), ("continue", &tampered)],
            alice,
        )
        .await;
        assert_status(st, &v, 400, "BadRequest");
        bad("tampered")(&v);
        assert!(!v.to_string().contains(&tampered));
    }
    // Garbage, and a payload re-signed with another key.
    let other_key = {
        let (signed, _) = token.rsplit_once('.').unwrap();
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"not the configured key at all...");
        format!(
            "{signed}.{}",
            B64.encode(ring::hmac::sign(&k, signed.as_bytes()).as_ref())
        )
    };
    for garbage in ["abc", "kpc1.e30.AAAA", other_key.as_str()] {
        let (st, v) = get(
            &app,
            "/api/v1/services",
            &[("limit", "3"), ("continue", garbage)],
            alice,
        )
        .await;
        assert_status(st, &v, 400, "BadRequest");
        bad("garbage")(&v);
    }
    // Another labelSelector, another path.
    for (path, q) in [
        (
            "/api/v1/services",
            vec![("limit", "3"), ("labelSelector", "app=x")],
        ),
        ("/api/v1/namespaces/default/services", vec![("limit", "3")]),
        ("/api/v1/services", vec![("limit", "3"), sel[0]]),
    ] {
        let mut q = q.clone();
        q.push(("continue", &token));
        let (st, v) = get(&app, path, &q, alice).await;
        assert_status(st, &v, 400, "BadRequest");
        assert!(
            v["message"].as_str().unwrap().contains("another query"),
            "{v}"
        );
    }
    // Another caller, and no caller.
    for auth in [Some("Bearer bob-token"), None] {
        let (st, v) = get(
            &app,
            "/api/v1/services",
            &[("limit", "3"), ("continue", &token)],
            auth,
        )
        .await;
        assert_status(st, &v, 400, "BadRequest");
        assert!(
            v["message"].as_str().unwrap().contains("another caller"),
            "{v}"
        );
    }
    // The token carries no credential.
    let (signed, _) = token.rsplit_once('.').unwrap();
    let payload = String::from_utf8(B64.decode(&signed[5..]).unwrap()).unwrap();
    assert!(!payload.contains("alice"), "{payload}");
    // A limit that is not a number.
    let (st, v) = get(&app, "/api/v1/services", &[("limit", "many")], alice).await;
    assert_status(st, &v, 400, "BadRequest");
}

#[actix_web::test]
async fn expired_tokens_are_410() {
    let (app, sims) = start(&[]).await;
    let (st, first) = get(&app, "/api/v1/services", &[("limit", "3")], None).await;
    assert_eq!(st, 200, "{first}");
    let token = continue_of(&first).unwrap();
    // Our own expiry, forged with the configured key.
    let expired = forge(&token, |v| v["e"] = json!(1));
    let (st, v) = get(
        &app,
        "/api/v1/services",
        &[("limit", "3"), ("continue", &expired)],
        None,
    )
    .await;
    assert_status(st, &v, 410, "Expired");
    // The forged token, unexpired, is good: the key is the configured one.
    let renewed = forge(&token, |_| {});
    let (st, v) = get(
        &app,
        "/api/v1/services",
        &[("limit", "3"), ("continue", &renewed)],
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    // The member's own continue token expires: a write, then compaction.
    let created = http()
        .post(format!(
            "{}api/v1/namespaces/default/services",
            sims[0].url()
        ))
        .json(
            &json!({"apiVersion":"v1","kind":"Service","metadata":{"name":"late"},
                      "spec":{"ports":[{"port":80}]}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    sims[0].compact();
    let (st, v) = get(
        &app,
        "/api/v1/services",
        &[("limit", "3"), ("continue", &token)],
        None,
    )
    .await;
    assert_status(st, &v, 410, "Expired");
    assert!(!v.to_string().contains(&token));
    // Listing again from the start works, and shows the new Service.
    let pages = walk(&app, 5, &[], None).await;
    let n: usize = pages
        .iter()
        .map(|p| p["items"].as_array().unwrap().len())
        .sum();
    assert_eq!(n, 23);
}

#[actix_web::test]
async fn kubectl_chunks_through_every_cluster() {
    let (app, _sims) = start(&[]).await;
    let kubectl = Kubectl::new(&format!("{}/api/kubernetes/aggregate", app.url()), None);
    let out = kubectl
        .ok(&["get", "svc", "-A", "--chunk-size=2", "-o", "name"])
        .await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 22, "{out}");
    let out = kubectl.ok(&["get", "svc", "-A", "--chunk-size=2"]).await;
    for (name, n) in [("a", 7), ("c", 12)] {
        for i in 0..n {
            let svc = format!("svc-{name}-{i:02}");
            assert!(
                out.lines()
                    .any(|l| l.contains(&svc) && l.contains(&format!("config:{name}"))),
                "{svc} in\n{out}"
            );
        }
    }
    for key in ["config:a", "config:b", "config:c"] {
        assert!(
            out.lines()
                .any(|l| l.contains(key) && l.contains("kubernetes")),
            "default/kubernetes of {key} in\n{out}"
        );
    }
    // One header line: the chunks make one table.
    assert_eq!(
        out.lines().filter(|l| l.contains("NAMESPACE")).count(),
        1,
        "{out}"
    );
}

#[actix_web::test]
async fn a_failing_member_is_reported_on_its_page_and_skipped() {
    let forbidden = Upstream::start(|_| Reply {
        status: 403,
        headers: vec![("content-type".into(), "application/json".into())],
        body: Body::Bytes(
            br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"services is forbidden","reason":"Forbidden","code":403}"#
                .to_vec(),
        ),
    })
    .await;
    let mut sims = Vec::new();
    let mut clusters = Vec::new();
    for (name, n) in [("a", 3), ("c", 4)] {
        let seed = SeedSource::Text {
            name: format!("{name} seed"),
            text: seed(&format!("svc-{name}"), n),
        };
        let cfg = SimClusterConfig::new(name, Some(seed), Vec::<String>::new());
        let sim = kubeplex::sim::spawn("127.0.0.1:0", &cfg).await.unwrap();
        clusters.push(cluster(name, sim.url().as_str().trim_end_matches('/')));
        sims.push(sim);
    }
    clusters.insert(1, cluster("bad", &forbidden.url));
    let mut s = settings(clusters);
    s.aggregate.continue_key = Some(KEY.into());
    s.aggregate.cache_ttl = std::time::Duration::ZERO;
    let app = spawn_app(s).await;
    let (_, whole) = get(&app, "/api/v1/services", &[], None).await;
    let all = whole["items"].as_array().unwrap().clone();
    assert_eq!(all.len(), 4 + 5);
    let pages = walk(&app, 3, &[], None).await;
    let mut items = Vec::new();
    let mut reported = 0;
    for page in &pages {
        if let Some(errors) = page.get("clusterErrors") {
            reported += 1;
            assert_eq!(errors[0]["cluster"], "config:bad", "{page}");
            assert_eq!(errors[0]["code"], 403, "{page}");
            assert_eq!(errors[0]["reason"], "Forbidden", "{page}");
        }
        items.extend(page["items"].as_array().unwrap().iter().cloned());
    }
    assert_eq!(reported, 1, "{pages:?}");
    assert_eq!(items, all);
    // The page that asked it carries the Warning too.
    let first = http()
        .get(url(&app, "/api/v1/services", &[("limit", "5")]))
        .send()
        .await
        .unwrap();
    let warning = first.headers()["warning"].to_str().unwrap().to_string();
    assert!(warning.contains("cluster config:bad"), "{warning}");
}

/// A client may change its page size between pages (the API server allows it): the pages
/// still add up to the unpaged list.
#[actix_web::test]
async fn the_page_size_may_change_between_pages() {
    let (app, _sims) = start(&[]).await;
    let (_, whole) = get(&app, "/api/v1/services", &[], None).await;
    let all = whole["items"].as_array().unwrap().clone();
    let mut items = Vec::new();
    let mut token: Option<String> = None;
    for limit in ["3", "10", "1", "100"] {
        let mut q = vec![("limit", limit)];
        if let Some(t) = &token {
            q.push(("continue", t));
        }
        let (st, page) = get(&app, "/api/v1/services", &q, None).await;
        assert_eq!(st, 200, "{page}");
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        token = continue_of(&page);
        if token.is_none() {
            break;
        }
    }
    assert!(token.is_none(), "100 items is more than what is left");
    assert_eq!(items, all);
}
