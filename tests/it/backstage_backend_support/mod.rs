//! Backstage's real Kubernetes backend (`@backstage/plugin-kubernetes-backend`, see
//! `tests/backstage-backend/`) as a child process, for differential tests: send the same
//! request to it and to kubeplex and compare the answers.
//!
//! [`BackstageBackend::start`] takes the JSON `{"kubernetes": {...app-config kubernetes
//! block...}, "entities": [...catalog entities...]}` (other top-level keys are merged into
//! the app-config). The backend serves, on `http://127.0.0.1:<port>`:
//! - `/api/kubernetes/...`: Backstage's routes. A caller sends no `Authorization` (or
//!   `Bearer mock-user-token`) and is the mock user `user:default/mock`; any other bearer
//!   token that is not one of backend-test-utils' mock tokens gets 401 `AuthenticationError`.
//! - `/api/catalog/entities/by-name/{kind}/{namespace}/{name}` (404 when absent),
//!   `POST /api/catalog/entities/by-refs`, `GET /api/catalog/entities?filter=`: the given
//!   entities, to any caller; [`BackstageBackend::catalog_requests`] lists what it was asked,
//!   with the `Authorization` each request carried.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// How long the backend may take to report its port (it takes about 2 s).
const START_DEADLINE: Duration = Duration::from_secs(120);

/// The token of backend-test-utils' default mock user (`user:default/mock`).
pub const MOCK_USER_AUTH: &str = "Bearer mock-user-token";

/// The harness directory, its npm packages installed once per test process (`npm ci` from
/// the committed lock file when `node_modules` is missing or older than the lock file).
pub fn backend_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/backstage-backend");
        let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let installed = mtime(&dir.join("node_modules/.package-lock.json"));
        let locked = mtime(&dir.join("package-lock.json"));
        let fresh = dir
            .join("node_modules/@backstage/plugin-kubernetes-backend")
            .exists()
            && matches!((installed, locked), (Some(i), Some(l)) if i >= l);
        if !fresh {
            let status = Command::new("npm")
                .args(["ci", "--silent", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .status()
                .expect("npm (Node.js) is needed for the Backstage backend tests");
            assert!(status.success(), "npm ci failed in {}", dir.display());
        }
        dir
    })
}

/// A running Backstage backend (`node server.mjs`); dropping it kills the process.
pub struct BackstageBackend {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    child: Child,
    /// Held open: the server exits when it closes (also when this test process dies).
    _stdin: ChildStdin,
    stderr_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl BackstageBackend {
    /// Starts the backend with `config` (see the module docs) and waits until it listens;
    /// runs the blocking part (npm install, process start) off the async runtime.
    pub async fn start(config: &serde_json::Value) -> BackstageBackend {
        let config = config.clone();
        tokio::task::spawn_blocking(move || Self::start_blocking(&config))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    /// [`BackstageBackend::start`] for synchronous code.
    pub fn start_blocking(config: &serde_json::Value) -> BackstageBackend {
        let script_dir = backend_dir();
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("config.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(config).unwrap()).unwrap();
        // Logs go to a file: nothing has to drain a pipe, and a failure can show them.
        let stderr_path = dir.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let mut child = Command::new("node")
            .arg(script_dir.join("server.mjs"))
            .arg(&config_path)
            .current_dir(script_dir)
            .env("BACKSTAGE_LOG_LEVEL", "info")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("node (Node.js) is needed for the Backstage backend tests");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining; the server prints nothing more, but never block it.
            for _ in lines {}
        });
        let line = rx.recv_timeout(START_DEADLINE);
        let port = line
            .as_ref()
            .ok()
            .and_then(|l| l.strip_prefix("LISTENING "))
            .and_then(|p| p.trim().parse::<u16>().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let status = child.wait().ok();
            let logs = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            panic!(
                "the Backstage backend did not report `LISTENING <port>` within {START_DEADLINE:?} \
                 (first stdout line: {line:?}, exit: {status:?}); its stderr:\n{logs}"
            );
        };
        BackstageBackend {
            url: format!("http://127.0.0.1:{port}"),
            child,
            _stdin: stdin,
            stderr_path,
            _dir: dir,
        }
    }

    /// What the backend logged so far (JSON lines).
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// `POST {url}{path}` with the JSON `body` and, when given, `Authorization: {auth}`;
    /// returns the status and the body as JSON (a body that is no JSON comes back as a
    /// JSON string).
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
        auth: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let req = client().post(format!("{}{path}", self.url)).json(body);
        send(req, auth).await
    }

    /// `GET {url}{path}`, as [`BackstageBackend::post_json`].
    pub async fn get_json(&self, path: &str, auth: Option<&str>) -> (u16, serde_json::Value) {
        send(client().get(format!("{}{path}", self.url)), auth).await
    }

    /// The requests the catalog served so far, oldest first: `{"method", "path" (below
    /// /api/catalog, query included), "authorization" (the header, or null)}`.
    pub async fn catalog_requests(&self) -> Vec<serde_json::Value> {
        let (status, body) = self.get_json("/api/catalog/_requests", None).await;
        assert_eq!(status, 200, "{body}");
        body.as_array().cloned().unwrap_or_default()
    }
}

/// A client per request: a test's runtime ends with the test, and pooled connections with it.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn send(req: reqwest::RequestBuilder, auth: Option<&str>) -> (u16, serde_json::Value) {
    let req = match auth {
        Some(a) => req.header(reqwest::header::AUTHORIZATION, a),
        None => req,
    };
    let resp = req.send().await.expect("the Backstage backend answers");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("a body");
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, body)
}

impl Drop for BackstageBackend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
