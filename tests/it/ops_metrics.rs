//! `/metrics` (SPEC §9, issue 15 item 1): after a known set of requests the exposition
//! passes `promtool check metrics` (Debian's `prometheus` package) and, parsed with a
//! Prometheus text parser (prometheus-parse), holds exactly the counts those requests
//! make: requests by route, cluster, method and code; the histograms' counts; upstream
//! errors by kind; bytes each way; aggregate member results and cache hits and misses;
//! reloads; open watches while one is open, and back to 0. Every family of the dashboard's
//! contract (`docker/grafana/METRICS.md`) is exposed with its type and labels, and no label
//! carries a path, a query or a token.

use crate::common::{http, Body, Reply, Upstream};
use kubeplex::config::{load_with_env, tree::Env, Source};
use kubeplex::control::ReloadFrom;
use prometheus_parse::{Scrape, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// `GET {base}/metrics`: the text and its parse.
pub async fn scrape(base: &str) -> (String, Scrape) {
    let res = http().get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let ct = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = res.text().await.unwrap();
    let parsed = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    (text, parsed)
}

/// `promtool check metrics` on `text`: it must be there (CI installs Debian's
/// `prometheus`), and find nothing wrong.
pub fn promtool_check(text: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package) is installed; .ci/run installs it");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The value of the sample `name` whose labels are exactly `labels`; a histogram's value
/// is its count (the `+Inf` bucket). `None` when there is no such sample.
pub fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .find(|x| {
            x.metric == name
                && x.labels.len() == labels.len()
                && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v))
        })
        .map(|x| match &x.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(b) => b
                .iter()
                .find(|b| b.less_than.is_infinite())
                .map_or(0.0, |b| b.count),
            Value::Summary(_) => f64::NAN,
        })
}

/// [`value`], which must exist.
pub fn must(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    value(s, name, labels).unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
}

/// Polls `/metrics` until `check` holds on it (the gauges move as streams close).
pub async fn until_metrics(base: &str, what: &str, check: impl Fn(&Scrape) -> bool) -> Scrape {
    for _ in 0..400 {
        let (_, s) = scrape(base).await;
        if check(&s) {
            return s;
        }
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn config(dir: &Path, up: &str, bad: bool) -> std::path::PathBuf {
    let f = dir.join("kubeplex.yaml");
    let url = if bad { "htp:/x" } else { up };
    let text = format!(
        "kubeplex:\n  server:\n    listen: 127.0.0.1:0\n    workers: 2\n  aggregate:\n    cacheTtl: 10m\n\
         kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n\
         \x20       - {{name: a, url: '{url}'}}\n        - {{name: down, url: 'http://127.0.0.1:1'}}\n"
    );
    let tmp = f.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &f).unwrap();
    f
}

const LIST: &str =
    r#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"7"},"items":[]}"#;

#[actix_web::test]
async fn values_after_known_requests() {
    let dropped = Arc::new(AtomicBool::new(false));
    let d = dropped.clone();
    let up = Upstream::start(move |r| {
        if r.query.as_deref().is_some_and(|q| q.contains("watch=1")) {
            return Reply {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: Body::Endless { dropped: d.clone() },
            };
        }
        Reply::json(LIST)
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let f = config(dir.path(), &up.url, false);
    let sources = vec![Source::File(f.clone())];
    let settings = load_with_env(&sources, &std::env::vars().collect::<Env>()).unwrap();
    let app = kubeplex::app::spawn_reloading(
        settings,
        Some(ReloadFrom {
            sources,
            watch: false,
        }),
    )
    .await
    .unwrap();
    let base = app.url();
    let k = format!("{base}/api/kubernetes");

    // Before any request: every gauge and fixed-label counter is there at 0.
    let (text, s) = scrape(&base).await;
    promtool_check(&text);
    assert_eq!(must(&s, "kubeplex_open_tunnels", &[]), 0.0);
    for route in ["proxy", "clusters", "aggregate"] {
        assert_eq!(must(&s, "kubeplex_open_watches", &[("route", route)]), 0.0);
    }

    let mut bytes_out = 0usize;
    let mut send = async |r: reqwest::RequestBuilder, code: u16| {
        let res = r
            .header("authorization", "Bearer canary-token-7f3a")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), code);
        bytes_out += res.bytes().await.unwrap().len();
    };
    let c = http();
    for _ in 0..3 {
        send(
            c.get(format!("{k}/clusters/a/api/v1/pods?labelSelector=x")),
            200,
        )
        .await;
    }
    send(
        c.post(format!("{k}/proxy/api/v1/namespaces/x/pods"))
            .header("backstage-kubernetes-cluster", "a")
            .body(vec![b'x'; 1000]),
        200,
    )
    .await;
    send(c.get(format!("{k}/clusters/down/api")), 502).await;
    send(c.get(format!("{k}/clusters/nope/api")), 404).await;
    send(c.get(format!("{k}/aggregate/api/v1/pods")), 200).await;
    send(c.get(format!("{k}/aggregate/api/v1/pods")), 200).await;
    send(c.get(format!("{k}/clusters")), 200).await;

    let (text, s) = scrape(&base).await;
    promtool_check(&text);
    let req = |route: &str, cluster: &str, method: &str, code: &str| {
        must(
            &s,
            "kubeplex_requests_total",
            &[
                ("route", route),
                ("cluster", cluster),
                ("method", method),
                ("code", code),
            ],
        )
    };
    assert_eq!(req("clusters", "config:a", "GET", "200"), 3.0);
    assert_eq!(req("proxy", "config:a", "POST", "200"), 1.0);
    assert_eq!(req("clusters", "config:down", "GET", "502"), 1.0);
    assert_eq!(req("clusters", "", "GET", "404"), 1.0);
    assert_eq!(req("aggregate", "", "GET", "200"), 2.0);
    assert_eq!(req("clusters", "", "GET", "200"), 1.0);
    let total: f64 = s
        .samples
        .iter()
        .filter(|x| x.metric == "kubeplex_requests_total")
        .map(|x| match x.value {
            Value::Counter(v) => v,
            _ => panic!("a counter"),
        })
        .sum();
    assert_eq!(total, 9.0, "nothing else was counted");

    for (name, route, cluster, n) in [
        (
            "kubeplex_request_duration_seconds",
            "clusters",
            "config:a",
            3.0,
        ),
        (
            "kubeplex_response_head_seconds",
            "clusters",
            "config:a",
            3.0,
        ),
        (
            "kubeplex_request_duration_seconds",
            "proxy",
            "config:a",
            1.0,
        ),
        ("kubeplex_response_head_seconds", "aggregate", "", 2.0),
        ("kubeplex_request_duration_seconds", "clusters", "", 2.0),
    ] {
        assert_eq!(
            must(&s, name, &[("route", route), ("cluster", cluster)]),
            n,
            "{name} {route} {cluster}"
        );
    }
    // One failure through the proxy and one per aggregate read (the cache keeps no failure).
    assert_eq!(
        must(
            &s,
            "kubeplex_upstream_errors_total",
            &[("cluster", "config:down"), ("kind", "connect")]
        ),
        3.0
    );
    assert_eq!(
        must(&s, "kubeplex_bytes_total", &[("direction", "in")]),
        1000.0
    );
    assert_eq!(
        must(&s, "kubeplex_bytes_total", &[("direction", "out")]),
        bytes_out as f64
    );
    let member = |r| {
        must(
            &s,
            "kubeplex_aggregate_member_results_total",
            &[("result", r)],
        )
    };
    assert_eq!((member("ok"), member("error")), (2.0, 2.0));
    let cache = |r| must(&s, "kubeplex_aggregate_cache_total", &[("result", r)]);
    assert_eq!((cache("hit"), cache("miss")), (1.0, 3.0));
    let jwks = |r| must(&s, "kubeplex_jwks_refreshes_total", &[("result", r)]);
    assert_eq!((jwks("ok"), jwks("failed")), (0.0, 0.0));
    // Labels never carry a path, a query or a token.
    for leak in ["canary", "/api", "labelSelector", "nope"] {
        assert!(!text.contains(leak), "{leak} in\n{text}");
    }

    // A watch is counted open while it is, and never timed.
    let mut watch = c
        .get(format!("{k}/clusters/a/api/v1/pods?watch=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(watch.status(), 200);
    watch.chunk().await.unwrap().unwrap();
    let open = |s: &Scrape| value(s, "kubeplex_open_watches", &[("route", "clusters")]);
    until_metrics(&base, "the open watch", |s| open(s) == Some(1.0)).await;
    drop(watch);
    let s = until_metrics(&base, "the watch closed", |s| open(s) == Some(0.0)).await;
    assert_eq!(
        must(
            &s,
            "kubeplex_request_duration_seconds",
            &[("route", "clusters"), ("cluster", "config:a")]
        ),
        3.0
    );
    assert_eq!(
        must(
            &s,
            "kubeplex_requests_total",
            &[
                ("route", "clusters"),
                ("cluster", "config:a"),
                ("method", "GET"),
                ("code", "200")
            ]
        ),
        4.0
    );

    // Reloads: a bad file, then a good one.
    config(dir.path(), &up.url, true);
    app.control.reload();
    let reloads = |s: &Scrape, r| value(s, "kubeplex_config_reloads_total", &[("result", r)]);
    until_metrics(&base, "the failed reload", |s| {
        reloads(s, "failed") == Some(1.0)
    })
    .await;
    config(dir.path(), &up.url, false);
    app.control.reload();
    let s = until_metrics(&base, "the good reload", |s| reloads(s, "ok") == Some(1.0)).await;
    assert_eq!(reloads(&s, "failed"), Some(1.0));
    app.handle.stop(false).await;
}

/// The metric families of the dashboard's contract, `docker/grafana/METRICS.md`.
fn contract() -> BTreeMap<String, (String, BTreeSet<String>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/grafana/METRICS.md");
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter(|l| l.starts_with("| `kubeplex_"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            let labels = cells[2]
                .split(',')
                .map(|x| x.trim().trim_matches('`').to_owned())
                .filter(|x| !x.is_empty())
                .collect();
            (
                cells[0].trim_matches('`').to_owned(),
                (cells[1].to_owned(), labels),
            )
        })
        .collect()
}

/// Every family of the contract is exposed under its name, with its type and labels (the
/// `# TYPE` lines and the label names of its samples), once the requests that make its
/// series were sent.
#[actix_web::test]
async fn exposition_matches_the_dashboard_contract() {
    let up = Upstream::start(|_| Reply::json(LIST)).await;
    let mut settings = crate::common::settings(vec![
        crate::common::cluster("a", &up.url),
        crate::common::cluster("down", "http://127.0.0.1:1"),
    ]);
    settings.server.listen = "127.0.0.1:0".into();
    settings.server.workers = Some(1);
    let app = crate::common::spawn_app(settings).await;
    let base = app.url();
    let c = http();
    c.get(format!("{base}/api/kubernetes/clusters/a/api"))
        .send()
        .await
        .unwrap();
    c.get(format!("{base}/api/kubernetes/clusters/b/api"))
        .send()
        .await
        .unwrap();
    c.get(format!("{base}/api/kubernetes/clusters/down/api"))
        .send()
        .await
        .unwrap();
    let (text, _) = scrape(&base).await;
    let contract = contract();
    assert!(contract.len() >= 11);
    let mut types = BTreeMap::new();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            types.insert(name.to_owned(), kind.to_owned());
        }
    }
    for (name, (kind, labels)) in &contract {
        if name == "kubeplex_cluster_up" {
            // Its series appear with the first probe.
            continue;
        }
        assert_eq!(types.get(name), Some(kind), "# TYPE of {name} in\n{text}");
        let samples: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| {
                let n = l.split(['{', ' ']).next().unwrap();
                n == name
                    || (kind == "histogram"
                        && n.strip_prefix(name.as_str())
                            .is_some_and(|s| ["_bucket", "_sum", "_count"].contains(&s)))
            })
            .collect();
        assert!(!samples.is_empty(), "samples of {name}");
        for sample in samples {
            let mut seen: BTreeSet<String> = BTreeSet::new();
            if let Some(inner) = sample
                .split_once('{')
                .map(|(_, r)| r.split_once('}').unwrap().0)
            {
                for pair in inner.split("\",") {
                    seen.insert(pair.split_once('=').unwrap().0.to_owned());
                }
            }
            seen.remove("le");
            assert_eq!(&seen, labels, "labels of {sample}");
        }
    }
    app.handle.stop(false).await;
}
