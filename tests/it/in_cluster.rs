//! In-cluster credentials through the real binary (SPEC §3 rule 4, issue 4 item 5): a
//! `serviceAccount` cluster without a token or URL, run as in a pod (service-account folder
//! and `KUBERNETES_SERVICE_HOST`/`_PORT`), reaches the API server over TLS verified with the
//! pod's `ca.crt`, with the pod's token, and picks up a rotated token without a restart.

use crate::common;
use crate::common_tls;

use common::KubeplexProcess;
use common_tls::{upstream, Ca, UpstreamOpts};
use std::time::Duration;

fn write_atomically(path: &std::path::Path, text: &str) {
    // Kubernetes swaps projected volumes with a rename; so does this.
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[actix_web::test]
async fn pod_service_account_token_and_ca_rotated_without_restart() {
    let ca = Ca::new("kubeplex in-cluster CA");
    let api = upstream(&ca.server(&["127.0.0.1"]), UpstreamOpts::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let sa = dir.path().join("serviceaccount");
    std::fs::create_dir_all(&sa).unwrap();
    std::fs::write(sa.join("ca.crt"), &ca.pem).unwrap();
    write_atomically(&sa.join("token"), "pod-token-1");
    let port = api.addr.port().to_string();
    let kubeplex = KubeplexProcess::spawn(
        "kubeplex:\n  server:\n    listen: 127.0.0.1:0\n    workers: 1\n    probeInterval: 0s\n\
         kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n\
         \x20       - name: in\n          authProvider: serviceAccount\n",
        "info",
        &[
            ("KUBERNETES_SERVICE_HOST", "127.0.0.1".as_ref()),
            ("KUBERNETES_SERVICE_PORT", port.as_ref()),
            ("KUBEPLEX_SERVICE_ACCOUNT_DIR", sa.as_os_str()),
        ],
    );
    let addr = &kubeplex.addr;
    let url = format!("http://{addr}/api/kubernetes/clusters/in/api/v1/namespaces");
    let client = awc::Client::default();
    let res = client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(api.requests(), vec!["GET /api/v1/namespaces".to_string()]);
    assert_eq!(
        api.last_header("authorization").unwrap(),
        "Bearer pod-token-1"
    );

    write_atomically(&sa.join("token"), "pod-token-2");
    let mut seen = String::new();
    for _ in 0..200 {
        let res = client.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 200);
        seen = api.last_header("authorization").unwrap();
        if seen == "Bearer pod-token-2" {
            break;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, "Bearer pod-token-2");
    drop(kubeplex);
}
