//! Helpers for the kubectl end-to-end tests: find the real `kubectl` (1.32) on PATH, write a
//! kubeconfig (or take a given one) and a private discovery cache in a temporary directory,
//! and run kubectl against a server URL, collecting its output. Shared by `sim_kubectl`,
//! `proxy_kubectl`, `sim_tls` and others.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// A safety net so that a wedged kubectl fails the test instead of hanging it; not a timing
/// assertion.
const COMMAND_DEADLINE: Duration = Duration::from_secs(120);

/// The `kubectl` on PATH. Panics with a clear message when it is missing: these tests need
/// the real client.
pub fn kubectl_path() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("kubectl");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "kubectl not found on PATH: the kubectl end-to-end tests drive the real kubectl 1.32 \
         client; install it (https://dl.k8s.io/release/v1.32.0/bin/linux/amd64/kubectl) and \
         put it on PATH"
    );
}

/// kubectl bound to one server through its own kubeconfig and cache directory.
pub struct Kubectl {
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    binary: PathBuf,
}

impl Kubectl {
    /// A kubeconfig for `server` (a URL, possibly with a path), anonymous or with a bearer
    /// token. kubectl sends a kubeconfig's token only to `https` servers.
    pub fn new(server: &str, token: Option<&str>) -> Self {
        let binary = kubectl_path();
        let dir = tempfile::tempdir().expect("temporary directory");
        let user = match token {
            Some(t) => format!("    token: {t}\n"),
            None => "    {}\n".to_owned(),
        };
        let kubeconfig = dir.path().join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: {server}\n\
             contexts:\n- name: e2e\n  context:\n    cluster: e2e\n    user: e2e\n    namespace: default\n\
             users:\n- name: e2e\n  user:\n{user}current-context: e2e\n"
        );
        std::fs::write(&kubeconfig, text).expect("write kubeconfig");
        Kubectl {
            dir,
            kubeconfig,
            binary,
        }
    }

    /// kubectl with an existing kubeconfig file, as is (its own cache directory and home).
    pub fn with_kubeconfig(kubeconfig: &Path) -> Self {
        Kubectl {
            dir: tempfile::tempdir().expect("temporary directory"),
            kubeconfig: kubeconfig.to_path_buf(),
            binary: kubectl_path(),
        }
    }

    /// Writes a file (a manifest) into the temporary directory and returns its path.
    pub fn write_file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).expect("write manifest");
        path
    }

    /// The temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("cache"))
            .args(args)
            .env("HOME", self.dir.path())
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// Runs kubectl to completion.
    pub async fn run(&self, args: &[&str]) -> Output {
        self.run_with_env(args, &[]).await
    }

    /// Runs kubectl to completion with extra environment variables (`EDITOR`, ...).
    pub async fn run_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(args);
        cmd.envs(env.iter().copied());
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = cmd.spawn().expect("start kubectl");
        tokio::time::timeout(COMMAND_DEADLINE, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish"))
            .expect("kubectl output")
    }

    /// Runs kubectl, asserts it succeeded, and returns its stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
            out.status
        );
        stdout
    }

    /// Runs kubectl, asserts it failed, and returns its stderr.
    pub async fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "kubectl {args:?} should have failed:\nstdout: {}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
    }

    /// Starts a long-running kubectl (a watch) whose stdout is read line by line; the
    /// process is killed when the returned value is dropped.
    pub fn spawn_lines(&self, args: &[&str]) -> (Child, Lines<BufReader<ChildStdout>>) {
        let mut cmd = self.command(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start kubectl");
        let stdout = child.stdout.take().expect("piped stdout");
        (child, BufReader::new(stdout).lines())
    }
}

/// Reads lines until one satisfies `pred`, returning it; panics (with what was read) when
/// the stream ends first or the safety deadline passes.
pub async fn read_until(
    lines: &mut Lines<BufReader<ChildStdout>>,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> String {
    let mut seen = Vec::new();
    let found = tokio::time::timeout(COMMAND_DEADLINE, async {
        while let Some(line) = lines.next_line().await.expect("read kubectl output") {
            if pred(&line) {
                return Some(line);
            }
            seen.push(line);
        }
        None
    })
    .await;
    match found {
        Ok(Some(line)) => line,
        Ok(None) => panic!("kubectl output ended before {what}; read: {seen:#?}"),
        Err(_) => panic!("no {what} from kubectl; read: {seen:#?}"),
    }
}

/// Splits a table line into its whitespace-separated cells.
pub fn cells(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// `kubectl get svc -n shop --watch` against a cluster whose `shop` namespace holds a
/// Service `web`: the watch prints kubectl's Service columns and `web`, then shows `api`
/// (from `manifest`, one port 80) when it is created, and again when a patch makes it a
/// NodePort (`80:3xxxx/TCP`). Shared by the direct and the through-kubeplex tests.
pub async fn watch_sees_create_and_patch(k: &Kubectl, manifest: &str) {
    let (_child, mut lines) = k.spawn_lines(&["get", "svc", "-n", "shop", "--watch"]);
    let header = read_until(&mut lines, "the header", |l| l.starts_with("NAME")).await;
    assert_eq!(
        cells(&header),
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    read_until(&mut lines, "the existing Service", |l| {
        l.starts_with("web ")
    })
    .await;

    let file = k.write_file("api.yaml", manifest);
    k.ok(&["create", "-f", file.to_str().unwrap()]).await;
    let added = read_until(&mut lines, "the created Service", |l| l.starts_with("api ")).await;
    assert_eq!(cells(&added)[4], "80/TCP");

    let patch = r#"{"spec":{"type":"NodePort"}}"#;
    k.ok(&["patch", "svc", "api", "-n", "shop", "-p", patch])
        .await;
    let modified = read_until(&mut lines, "the modified Service", |l| {
        l.starts_with("api ") && l.contains("NodePort")
    })
    .await;
    assert!(cells(&modified)[4].starts_with("80:3"), "{modified}");
}
