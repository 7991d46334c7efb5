//! A typed client decodes every object the simulated cluster returns (issue 2, point 5):
//! the official Python `kubernetes` client (its generated models deserialize each field by
//! type) lists, reads, creates, patches (object and status), watches and deletes Services
//! and lists Namespaces against a simulator started in-process; its Service proxy call
//! (which sends `/` in `{path}` as `%2F`) reaches the backend with the path decoded.
//!
//! Needs `python3` with the `kubernetes` package (`pip install kubernetes`); when it is
//! missing the test prints a note and passes without running.

use kubeplex::sim::config::{SeedSource, SimClusterConfig};
use serde_json::Value;
use std::process::Stdio;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SEED: &str = r#"
apiVersion: v1
kind: List
items:
  - {apiVersion: v1, kind: Namespace, metadata: {name: default}}
  - {apiVersion: v1, kind: Namespace, metadata: {name: shop}}
  - apiVersion: v1
    kind: Service
    metadata: {name: web, namespace: shop, labels: {app: web}}
    spec:
      selector: {app: web}
      ports:
        - {name: http, port: 80, targetPort: 8080}
        - {name: grpc, port: 9000, targetPort: grpc, protocol: TCP}
"#;

const SCRIPT: &str = r#"
import json, sys
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

cfg = client.Configuration()
cfg.host = sys.argv[1]
api = client.CoreV1Api(client.ApiClient(cfg))
out = {}

svcs = api.list_service_for_all_namespaces()
out["all"] = sorted(f"{s.metadata.namespace}/{s.metadata.name}" for s in svcs.items)
start_rv = svcs.metadata.resource_version

web = api.read_namespaced_service("web", "shop")
out["web_ports"] = [[p.name, p.port, p.protocol, p.target_port] for p in web.spec.ports]
out["web_created_is_datetime"] = hasattr(web.metadata.creation_timestamp, "year")
out["web_cluster_ip"] = web.spec.cluster_ip
out["web_uid"] = web.metadata.uid

body = client.V1Service(
    metadata=client.V1ObjectMeta(name="py", labels={"made-by": "python"}),
    spec=client.V1ServiceSpec(type="LoadBalancer", selector={"app": "py"},
                              ports=[client.V1ServicePort(name="http", port=80, target_port=8080)]))
created = api.create_namespaced_service("shop", body)
out["created_node_port"] = created.spec.ports[0].node_port
patched = api.patch_namespaced_service("py", "shop", {"metadata": {"labels": {"patched": "yes"}}})
out["patched_labels"] = patched.metadata.labels
st = api.patch_namespaced_service_status(
    "py", "shop", {"status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}})
out["lb_ip"] = st.status.load_balancer.ingress[0].ip
deleted = api.delete_namespaced_service("py", "shop")
out["deleted_kind"] = type(deleted).__name__

try:
    api.read_namespaced_service("py", "shop")
    out["missing"] = None
except ApiException as e:
    out["missing"] = [e.status, json.loads(e.body)["reason"]]

out["proxied"] = [
    api.connect_get_namespaced_service_proxy_with_path("echo", "shop", "hello/world"),
    api.connect_get_namespaced_service_proxy_with_path("echo:http", "shop", "a b/c"),
]

nss = api.list_namespace()
out["namespaces"] = sorted(n.metadata.name for n in nss.items)
out["ns_phases"] = sorted(set(n.status.phase for n in nss.items))

events = []
w = watch.Watch()
for ev in w.stream(api.list_namespaced_service, "shop", resource_version=start_rv,
                   timeout_seconds=60):
    obj = ev["object"]
    events.append([ev["type"], type(obj).__name__, obj.metadata.name])
    if ev["type"] == "DELETED":
        w.stop()
out["events"] = events
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

/// A backend on loopback that answers every request with its request target (the path
/// and query exactly as received on the wire).
async fn target_echo() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&seen);
                let target = head.split(' ').nth(1).unwrap_or("").to_string();
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{target}",
                    target.len()
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

#[actix_web::test]
async fn python_kubernetes_client_decodes_everything() {
    // A missing tool is a failure, never a silent pass: `.ci/run` installs it.
    assert!(
        python_has_kubernetes(),
        "python_kubernetes_client_decodes_everything needs python3 with the `kubernetes` \
         package (pip install kubernetes==37.0.2, as .ci/run does)"
    );
    let cluster = SimClusterConfig {
        name: "py".into(),
        seed: Some(SeedSource::Text {
            name: "python seed".into(),
            text: format!(
                "{SEED}---\napiVersion: v1\nkind: Service\nmetadata:\n  name: echo\n  namespace: shop\n  annotations: {{sim.kubeplex.io/backend: '{}'}}\nspec:\n  ports: [{{name: http, port: 80}}]\n",
                target_echo().await
            ),
        }),
        ..SimClusterConfig::default()
    };
    let sim = kubeplex::sim::spawn("127.0.0.1:0", &cluster)
        .await
        .expect("start simulated cluster");
    let url = sim.url().as_str().trim_end_matches('/').to_owned();
    let child = tokio::process::Command::new("python3")
        .args(["-c", SCRIPT, &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start python3");
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        child.wait_with_output(),
    )
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

    assert_eq!(
        got["all"],
        serde_json::json!(["default/kubernetes", "shop/echo", "shop/web"])
    );
    // `hello%2Fworld` and `a%20b%2Fc` on the wire to the simulator; decoded there, so the
    // backend sees a separator, and a space escaped again as a Go server sends it.
    assert_eq!(
        got["proxied"],
        serde_json::json!(["/hello/world", "/a%20b/c"])
    );
    assert_eq!(
        got["web_ports"],
        serde_json::json!([["http", 80, "TCP", 8080], ["grpc", 9000, "TCP", "grpc"]])
    );
    assert_eq!(got["web_created_is_datetime"], true);
    assert!(got["web_cluster_ip"]
        .as_str()
        .unwrap_or("")
        .parse::<std::net::Ipv4Addr>()
        .is_ok());
    assert!(!got["web_uid"].as_str().unwrap_or("").is_empty());
    let node_port = got["created_node_port"]
        .as_i64()
        .expect("nodePort allocated");
    assert!((30000..=32767).contains(&node_port), "{node_port}");
    assert_eq!(
        got["patched_labels"],
        serde_json::json!({"made-by": "python", "patched": "yes"})
    );
    assert_eq!(got["lb_ip"], "203.0.113.7");
    assert_eq!(got["deleted_kind"], "V1Service");
    assert_eq!(got["missing"], serde_json::json!([404, "NotFound"]));
    let namespaces = got["namespaces"].as_array().expect("namespaces");
    for ns in ["default", "shop"] {
        assert!(namespaces.contains(&Value::from(ns)), "{namespaces:?}");
    }
    assert_eq!(got["ns_phases"], serde_json::json!(["Active"]));
    let events: Vec<String> = got["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            assert_eq!(e[1], "V1Service", "{e}");
            assert_eq!(e[2], "py", "{e}");
            e[0].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(events, ["ADDED", "MODIFIED", "MODIFIED", "DELETED"]);
}
