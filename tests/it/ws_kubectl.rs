//! kubectl 1.32 (on PATH) end to end over WebSocket: `exec` (output and exit codes, stdin),
//! `logs -f` and `port-forward` (SPDY tunnelled in WebSocket), against the simulated
//! cluster directly and through kubeplex's path route.

use kubeplex::config::{LocatorConfig, LocatorKind, Settings};
use kubeplex::sim::config::{SeedSource, SimClusterConfig};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

fn sim_cluster(name: &str) -> SimClusterConfig {
    SimClusterConfig {
        name: name.into(),
        seed: Some(SeedSource::Text {
            name: "seed".into(),
            text: kubeplex::sim::config::DEFAULT_SEED.into(),
        }),
        ..Default::default()
    }
}

async fn sim() -> kubeplex::sim::SimServer {
    kubeplex::sim::spawn("127.0.0.1:0", &sim_cluster("k"))
        .await
        .unwrap()
}

/// kubeplex with two simulated clusters (`sim:one`, `sim:two`); the path route's base URL
/// for `two`, as kubectl's `--server`.
async fn kubeplex_server() -> (kubeplex::app::RunningApp, String) {
    let settings = Settings {
        locators: vec![LocatorConfig {
            id: "sim".into(),
            kind: LocatorKind::Simulated {
                clusters: vec![sim_cluster("one"), sim_cluster("two")],
            },
        }],
        server: kubeplex::config::ServerSettings {
            listen: "127.0.0.1:0".into(),
            workers: Some(2),
            ..Default::default()
        },
        ..Default::default()
    };
    let app = kubeplex::app::spawn(settings)
        .await
        .expect("kubeplex starts");
    let url = format!("{}/api/kubernetes/clusters/two", app.url());
    (app, url)
}

/// kubectl with an isolated kubeconfig and cache, talking to `server`.
fn kubectl(server: &str, dir: &tempfile::TempDir) -> Command {
    let kubeconfig = dir.path().join("kubeconfig");
    if !kubeconfig.exists() {
        std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\n").unwrap();
    }
    let mut cmd = Command::new("kubectl");
    cmd.env("KUBECONFIG", &kubeconfig)
        .env_remove("KUBECTL_REMOTE_COMMAND_WEBSOCKETS")
        .env_remove("KUBECTL_PORT_FORWARD_WEBSOCKETS")
        .arg("--server")
        .arg(server)
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .kill_on_drop(true);
    cmd
}

async fn exec_checks(server: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = kubectl(server, &dir)
        .args(["exec", "toolbox", "--", "echo", "hi"])
        .output()
        .await
        .expect("kubectl 1.32 must be on PATH");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");

    let out = kubectl(server, &dir)
        .args([
            "exec", "-n", "payments", "toolbox", "--", "sh", "-c", "exit 3",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut child = kubectl(server, &dir)
        .args(["exec", "-i", "toolbox", "--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"line one\nline two\n").await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "line one\nline two\n");
}

async fn logs_follow_checks(server: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = kubectl(server, &dir)
        .args(["logs", "-f", "toolbox"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        let done = line.contains("handled request 2 ");
        seen.push(line);
        if done {
            break;
        }
    }
    assert!(seen[0].starts_with("starting shell"), "{seen:?}");
    assert!(
        seen.last().unwrap().contains("handled request 2 "),
        "{seen:?}"
    );
    // Still following: the process has not ended.
    assert!(child.try_wait().unwrap().is_none());
    child.kill().await.unwrap();
}

async fn port_forward_checks(server: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = kubectl(server, &dir)
        .args([
            "port-forward",
            "pod/toolbox",
            "--address",
            "127.0.0.1",
            ":8080",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines
        .next_line()
        .await
        .unwrap()
        .expect("kubectl prints its port");
    // "Forwarding from 127.0.0.1:PORT -> 8080"
    let addr = line
        .strip_prefix("Forwarding from ")
        .and_then(|s| s.split(" -> ").next())
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
        .to_string();
    for round in 0..2 {
        let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + round) as u8).collect();
        let (mut r, mut w) = conn.split();
        let write = async {
            w.write_all(&payload).await.unwrap();
        };
        let read = async {
            let mut got = vec![0u8; payload.len()];
            r.read_exact(&mut got).await.unwrap();
            got
        };
        let ((), got) = tokio::join!(write, read);
        assert!(got == payload, "bytes came back changed");
    }
    child.kill().await.unwrap();
}

#[actix_web::test]
async fn kubectl_exec_against_sim() {
    let sim = sim().await;
    exec_checks(sim.url().as_str().trim_end_matches('/')).await;
}

#[actix_web::test]
async fn kubectl_logs_follow_against_sim() {
    let sim = sim().await;
    logs_follow_checks(sim.url().as_str().trim_end_matches('/')).await;
}

#[actix_web::test]
async fn kubectl_port_forward_against_sim() {
    let sim = sim().await;
    port_forward_checks(sim.url().as_str().trim_end_matches('/')).await;
}

#[actix_web::test]
async fn kubectl_exec_through_kubeplex() {
    let (_app, server) = kubeplex_server().await;
    exec_checks(&server).await;
}

#[actix_web::test]
async fn kubectl_logs_follow_through_kubeplex() {
    let (_app, server) = kubeplex_server().await;
    logs_follow_checks(&server).await;
}

#[actix_web::test]
async fn kubectl_port_forward_through_kubeplex() {
    let (_app, server) = kubeplex_server().await;
    port_forward_checks(&server).await;
}

/// An old kubectl's SPDY upgrade through kubeplex gets the 400 saying to use WebSocket.
#[actix_web::test]
async fn kubectl_spdy_refused_through_kubeplex() {
    let (_app, server) = kubeplex_server().await;
    let dir = tempfile::tempdir().unwrap();
    let out = kubectl(&server, &dir)
        .env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")
        .args(["exec", "toolbox", "--", "echo", "hi"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("WebSocket"), "{err}");
}
