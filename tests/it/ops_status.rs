//! The status page at `GET /` (SPEC §9, issue 15 item 5): readable without JavaScript
//! (every cluster, no credential), and in a real headless browser (Debian's `chromium`
//! driven by `chromedriver` over WebDriver, with a small client over reqwest): it renders
//! every cluster, and a cluster taken down turns red on the page within its refresh
//! interval, without a reload. The browser's screenshot is written to
//! `$CARGO_TARGET_TMPDIR/status-page.png`, and to `docs/status-page.png` (the README's)
//! when `UPDATE_SCREENSHOT=1`. Without chromium or chromedriver the test fails: CI installs
//! them.

use crate::common::{cluster, http, settings, spawn_app, Upstream};
use serde_json::{json, Value};
use std::time::Duration;

/// A WebDriver session on a chromedriver child process (ended with the session).
struct Browser {
    driver: std::process::Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Self {
        // A port the system hands out now; chromedriver cannot report one it picked itself.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = std::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver) is installed; .ci/run installs it");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let mut up = false;
        for _ in 0..300 {
            if http
                .get(format!("{base}/status"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                up = true;
                break;
            }
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(up, "chromedriver did not start");
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,720",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let v: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("a WebDriver session: {v}"))
            .to_owned();
        Browser {
            driver,
            base,
            session,
            http,
            _profile: profile,
        }
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut r = self.http.request(method, url);
        if !body.is_null() {
            r = r.json(&body);
        }
        let v: Value = r.send().await.unwrap().json().await.unwrap();
        assert!(
            v["value"].get("error").is_none(),
            "WebDriver {path}: {}",
            v["value"]
        );
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", json!({ "url": url }))
            .await;
    }

    /// Runs `script` in the page and returns its value.
    async fn eval(&self, script: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            json!({ "script": script, "args": [] }),
        )
        .await
    }

    async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let v = self
            .cmd(reqwest::Method::GET, "/screenshot", Value::Null)
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    }

    /// Polls `script` until it returns `want` (a bounded number of tries).
    async fn until(&self, what: &str, script: &str, want: Value) -> Value {
        let mut last = Value::Null;
        for _ in 0..300 {
            last = self.eval(script).await;
            if last == want {
                return last;
            }
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{what}: the page still says {last}");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The state shown for each cluster row, as `{key: [state, badge background colour]}`.
const ROWS: &str = r#"
const out = {};
for (const tr of document.querySelectorAll('#clusters tbody tr')) {
  const badge = tr.querySelector('.badge');
  out[tr.dataset.key] = [badge.textContent, getComputedStyle(badge).backgroundColor];
}
return out;
"#;

const GREEN: &str = "rgb(26, 127, 55)";
const RED: &str = "rgb(207, 34, 46)";

#[actix_web::test]
async fn status_page_in_a_browser_and_without_javascript() {
    let a = Upstream::ok().await;
    let b = Upstream::ok().await;
    let c = Upstream::ok().await;
    let mut pa = cluster("payments-prod", &a.url);
    pa.title = Some("Payments (prod)".into());
    pa.auth_provider = Some("serviceAccount".into());
    pa.service_account_token = Some("canary-token-5e1".into());
    let mut pb = cluster("search-staging", &b.url);
    pb.title = Some("Search <staging>".into());
    let pc = cluster("edge-eu", &c.url);
    let mut s = settings(vec![pa, pb, pc]);
    s.server.probe_interval = Duration::from_millis(200);
    let app = spawn_app(s).await;
    let base = app.url();
    let keys = [
        "config:edge-eu",
        "config:payments-prod",
        "config:search-staging",
    ];

    // Some traffic for the rates.
    for _ in 0..5 {
        http()
            .get(format!("{base}/api/kubernetes/clusters/payments-prod/api"))
            .send()
            .await
            .unwrap();
    }

    // Without JavaScript: the server's HTML has every cluster, escaped, and no credential.
    let res = http().get(format!("{base}/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
    let page = res.text().await.unwrap();
    for k in keys {
        assert!(page.contains(&format!("data-key=\"{k}\"")), "{k} in {page}");
    }
    for want in [
        "Payments (prod)",
        "serviceAccount",
        "Search &lt;staging&gt;",
        "href=\"/metrics\"",
        "href=\"/readyz\"",
        "/status.css",
        env!("CARGO_PKG_VERSION"),
    ] {
        assert!(page.contains(want), "{want} in {page}");
    }
    for leak in ["canary-token", &a.url, "127.0.0.1"] {
        assert!(!page.contains(leak), "{leak} in {page}");
    }
    let css = http()
        .get(format!("{base}/status.css"))
        .send()
        .await
        .unwrap();
    assert!(css.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));

    // In the browser: every cluster up (green), with the page redrawing itself.
    let browser = Browser::start().await;
    browser.goto(&format!("{base}/")).await;
    let all_up = json!({
        "config:edge-eu": ["up", GREEN],
        "config:payments-prod": ["up", GREEN],
        "config:search-staging": ["up", GREEN],
    });
    browser
        .until("every cluster up and green", ROWS, all_up)
        .await;
    assert_eq!(
        browser.eval("return document.title").await,
        "kubeplex status"
    );

    // search-staging goes down: red within the refresh interval, no reload of the page.
    browser.eval("window.__same_page = true; return true").await;
    drop(b);
    let one_down = json!({
        "config:edge-eu": ["up", GREEN],
        "config:payments-prod": ["up", GREEN],
        "config:search-staging": ["down", RED],
    });
    browser
        .until("search-staging down and red", ROWS, one_down)
        .await;
    assert_eq!(
        browser.eval("return window.__same_page === true").await,
        true
    );
    assert_eq!(
        browser
            .eval("return document.getElementById('counts').textContent")
            .await,
        "3 (2 up, 1 down)"
    );

    let png = browser.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"));
    std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png"),
        &png,
    )
    .unwrap();
    if std::env::var_os("UPDATE_SCREENSHOT").is_some() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join("status-page.png"), &png).unwrap();
    }
    browser.cmd(reqwest::Method::DELETE, "", Value::Null).await;
    app.handle.stop(false).await;
}

/// The plugin proxy's entries are listed (no Service URL), and its requests are counted
/// under `route="plugin_proxy"`.
#[actix_web::test]
async fn plugin_proxies_are_listed_and_counted() {
    let up = Upstream::ok().await;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("app-config.yaml");
    std::fs::write(
        &f,
        format!(
            "kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n        - {{name: c, url: '{}'}}\n\
             kubeplex:\n  server:\n    listen: 127.0.0.1:0\n    probeInterval: 0s\n  pluginProxy:\n    plugins:\n      - name: inline\n        proxy:\n          - {{alias: x, endpoint: {{type: Service, service: {{name: web, namespace: shop, port: 8443}}}}, via: apiserver}}\n",
            up.url
        ),
    )
    .unwrap();
    let settings = kubeplex::config::load_with_env(
        &[kubeplex::config::Source::File(f)],
        &kubeplex::config::tree::Env::new(),
    )
    .unwrap();
    let app = kubeplex::app::spawn(settings).await.unwrap();
    let base = app.url();
    let r = http()
        .get(format!("{base}/api/proxy/plugin/inline/x/items"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(up
        .only()
        .path
        .ends_with("/services/https:web:8443/proxy/items"));

    let page = http()
        .get(format!("{base}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<tr><td>inline</td><td>x</td><td>apiserver</td><td></td><td>shop</td><td>None</td></tr>"),
        "{page}"
    );
    assert!(!page.contains(&up.url));
    let (_, s) = crate::ops_metrics::scrape(&base).await;
    let counted: f64 = s
        .samples
        .iter()
        .filter(|x| {
            x.metric == "kubeplex_requests_total"
                && x.labels.get("route") == Some("plugin_proxy")
                && x.labels.get("code") == Some("200")
        })
        .map(|x| match x.value {
            prometheus_parse::Value::Counter(v) => v,
            _ => 0.0,
        })
        .sum();
    assert_eq!(counted, 1.0);
    app.handle.stop(false).await;
}
