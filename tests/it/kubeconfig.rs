//! The `kubeconfig` locator against kubeconfig files written by the real `kubectl config`
//! commands (set-cluster, set-credentials, set-context, and `set` for relative paths), with
//! file paths and `--embed-certs` data, several files merged, the contexts filter, and
//! plugin users. The located clusters then reach real HTTPS upstreams on loopback (one of
//! them requiring a client certificate) through kubeplex's cluster connector.

use crate::common_tls;

use common_tls::{upstream, Ca, UpstreamOpts};
use kubeplex::cluster::{ClusterSpec, ServerCredential};
use kubeplex::locate::kubeconfig::locate;
use kubeplex::tls::describe::describe_send_error;
use kubeplex::upstream::connector::cluster_connector;
use secrecy::ExposeSecret;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The kubectl to run: Google Cloud SDK's `kubectl` is a dispatcher that first asks the
/// current cluster for its version (seconds per call against test servers); its versioned
/// binary next to it runs directly.
fn kubectl_bin() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("kubectl"))
        .find(|p| p.is_file());
    if let Some(real) = on_path.as_ref().and_then(|p| p.canonicalize().ok()) {
        let direct = real.with_file_name("kubectl.1.32");
        if direct.is_file() {
            return direct;
        }
    }
    PathBuf::from("kubectl")
}

fn kubectl(kubeconfig: &Path, args: &[&str]) {
    let out = Command::new(kubectl_bin())
        .args(["config"])
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl config {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn get(spec: &ClusterSpec) -> Result<u16, String> {
    let connector = cluster_connector(&spec.url, &spec.tls, Duration::from_secs(5))?.limit(0);
    let client = awc::Client::builder()
        .connector(connector)
        .disable_timeout()
        .finish();
    let url = format!("{}/api", spec.url.as_str().trim_end_matches('/'));
    client
        .get(url)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| describe_send_error(&e))
}

struct World {
    _dir: tempfile::TempDir,
    root: PathBuf,
    ca: Ca,
    client_ca: Ca,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    std::fs::create_dir_all(root.join("certs")).unwrap();
    std::fs::create_dir_all(root.join("kube")).unwrap();
    let ca = Ca::new("kubeplex kubeconfig test CA");
    let client_ca = Ca::new("kubeplex kubeconfig client CA");
    std::fs::write(root.join("certs/ca.crt"), &ca.pem).unwrap();
    World {
        _dir: dir,
        root,
        ca,
        client_ca,
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[actix_web::test]
async fn contexts_from_kubectl_written_files_with_relative_paths_and_embedded_data() {
    let w = world();
    let up = upstream(
        &w.ca
            .server(&["localhost", "127.0.0.1", "api.internal.example"]),
        UpstreamOpts {
            client_ca: Some(&w.client_ca.pem),
            ..Default::default()
        },
    )
    .await;
    let port = up.addr.port();
    let alice = w.client_ca.client_rsa_pkcs1("alice");
    let bob = w.client_ca.client_ec_sec1("bob");
    std::fs::write(w.root.join("certs/alice.crt"), &alice.cert_pem).unwrap();
    std::fs::write(w.root.join("certs/alice.key"), &alice.key_pem).unwrap();
    std::fs::write(w.root.join("certs/bob.crt"), &bob.cert_pem).unwrap();
    std::fs::write(w.root.join("certs/bob.key"), &bob.key_pem).unwrap();
    std::fs::write(w.root.join("kube/token.txt"), "file-token\n").unwrap();
    let kc = w.root.join("kube/config");
    let certs = w.root.join("certs");

    // dev: files, then rewritten to paths relative to the kubeconfig's folder.
    kubectl(
        &kc,
        &[
            "set-cluster",
            "dev-cluster",
            &format!("--server=https://127.0.0.1:{port}/sub/path"),
            &format!("--certificate-authority={}", s(&certs.join("ca.crt"))),
        ],
    );
    kubectl(
        &kc,
        &[
            "set",
            "clusters.dev-cluster.certificate-authority",
            "../certs/ca.crt",
        ],
    );
    kubectl(
        &kc,
        &[
            "set-credentials",
            "alice",
            &format!("--client-certificate={}", s(&certs.join("alice.crt"))),
            &format!("--client-key={}", s(&certs.join("alice.key"))),
        ],
    );
    kubectl(
        &kc,
        &[
            "set",
            "users.alice.client-certificate",
            "../certs/alice.crt",
        ],
    );
    kubectl(
        &kc,
        &["set", "users.alice.client-key", "../certs/alice.key"],
    );
    kubectl(
        &kc,
        &[
            "set-context",
            "dev",
            "--cluster=dev-cluster",
            "--user=alice",
        ],
    );

    // prod: everything embedded (-data), a token, reached by DNS name.
    kubectl(
        &kc,
        &[
            "set-cluster",
            "prod-cluster",
            &format!("--server=https://localhost:{port}"),
            &format!("--certificate-authority={}", s(&certs.join("ca.crt"))),
            "--embed-certs=true",
        ],
    );
    kubectl(
        &kc,
        &[
            "set-credentials",
            "bob",
            &format!("--client-certificate={}", s(&certs.join("bob.crt"))),
            &format!("--client-key={}", s(&certs.join("bob.key"))),
            "--embed-certs=true",
            "--token=static-token",
        ],
    );
    kubectl(
        &kc,
        &[
            "set-context",
            "prod",
            "--cluster=prod-cluster",
            "--user=bob",
        ],
    );

    // named: tls-server-name, tokenFile relative to the kubeconfig.
    kubectl(
        &kc,
        &[
            "set-cluster",
            "named-cluster",
            &format!("--server=https://127.0.0.1:{port}"),
            &format!("--certificate-authority={}", s(&certs.join("ca.crt"))),
            "--embed-certs=true",
            "--tls-server-name=api.internal.example",
        ],
    );
    kubectl(&kc, &["set-credentials", "tf-user"]);
    kubectl(&kc, &["set", "users.tf-user.tokenFile", "token.txt"]);
    kubectl(
        &kc,
        &[
            "set-context",
            "named",
            "--cluster=named-cluster",
            "--user=tf-user",
        ],
    );

    // insecure: skip verify, and a user with an exec plugin.
    kubectl(
        &kc,
        &[
            "set-cluster",
            "insecure-cluster",
            &format!("--server=https://127.0.0.1:{port}"),
            "--insecure-skip-tls-verify=true",
        ],
    );
    kubectl(
        &kc,
        &[
            "set-credentials",
            "gke",
            "--exec-command=gke-gcloud-auth-plugin",
            "--exec-api-version=client.authentication.k8s.io/v1beta1",
        ],
    );
    kubectl(
        &kc,
        &[
            "set-context",
            "insecure",
            "--cluster=insecure-cluster",
            "--user=gke",
        ],
    );

    let text = std::fs::read_to_string(&kc).unwrap();
    assert!(
        text.contains("certificate-authority: ../certs/ca.crt"),
        "{text}"
    );
    assert!(text.contains("client-key-data:"), "{text}");

    let specs = locate("kubeconfig", std::slice::from_ref(&kc), None).unwrap();
    let names: Vec<_> = specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["dev", "insecure", "named", "prod"]);
    let by = |n: &str| specs.iter().find(|s| s.name == n).unwrap().clone();

    let dev = by("dev");
    assert_eq!(
        dev.url.as_str(),
        format!("https://127.0.0.1:{port}/sub/path")
    );
    assert_eq!(dev.tls.ca_pem.as_deref(), Some(w.ca.pem.as_bytes()));
    assert_eq!(
        dev.tls.client_key_pem.as_ref().map(|k| k.expose_secret()),
        Some(alice.key_pem.as_bytes())
    );
    assert_eq!(dev.credential, ServerCredential::None);
    assert_eq!(get(&dev).await.unwrap(), 200);
    // Among the requests seen (kubeplex's readiness probes of `/version` may come after it).
    assert!(
        up.requests().iter().any(|r| r == "GET /sub/path/api"),
        "{:?}",
        up.requests()
    );

    let prod = by("prod");
    assert_eq!(prod.credential, ServerCredential::token("static-token"));
    assert_eq!(
        prod.tls.client_cert_pem.as_deref(),
        Some(bob.cert_pem.as_bytes())
    );
    assert_eq!(get(&prod).await.unwrap(), 200);
    assert_eq!(up.sni().last().unwrap().as_deref(), Some("localhost"));

    let named = by("named");
    assert_eq!(
        named.tls.server_name.as_deref(),
        Some("api.internal.example")
    );
    assert_eq!(
        named.credential,
        ServerCredential::TokenFile(w.root.join("kube").join("token.txt"))
    );
    assert!(named.tls.client_cert_pem.is_none());
    // No client certificate: the upstream requires one.
    let err = get(&named).await.unwrap_err();
    assert!(err.contains("requires a client certificate"), "{err}");
    assert_eq!(
        up.sni().last().unwrap().as_deref(),
        Some("api.internal.example")
    );

    let insecure = by("insecure");
    assert!(insecure.tls.skip_verify);
    assert!(insecure.tls.ca_pem.is_none());
    assert_eq!(insecure.credential, ServerCredential::None);

    // The contexts filter keeps file order and only the named contexts.
    let some = locate(
        "kubeconfig",
        std::slice::from_ref(&kc),
        Some(&["prod".to_string(), "dev".to_string()]),
    )
    .unwrap();
    let names: Vec<_> = some.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["dev", "prod"]);
    let err = locate("kubeconfig", &[kc], Some(&["nope".to_string()])).unwrap_err();
    assert!(
        err.to_string().contains("context \"nope\" not found"),
        "{}",
        err.to_string()
    );
}

#[test]
fn several_files_merge_like_kubectl_and_paths_resolve_per_file() {
    let w = world();
    std::fs::create_dir_all(w.root.join("other/nested")).unwrap();
    std::fs::write(w.root.join("other/nested/ca.pem"), &w.ca.pem).unwrap();
    let a = w.root.join("kube/a.yaml");
    let b = w.root.join("other/b.yaml");
    kubectl(
        &a,
        &["set-cluster", "shared", "--server=https://a.example:6443"],
    );
    kubectl(
        &a,
        &[
            "set",
            "clusters.shared.certificate-authority",
            "../certs/ca.crt",
        ],
    );
    kubectl(&a, &["set-context", "one", "--cluster=shared"]);
    // b redefines `shared` (a's wins) and `one` (a's wins), adds a context using a's cluster
    // and its own cluster with a CA relative to b's folder.
    kubectl(
        &b,
        &["set-cluster", "shared", "--server=https://b.example:6443"],
    );
    kubectl(&b, &["set-context", "one", "--cluster=own"]);
    kubectl(
        &b,
        &["set-cluster", "own", "--server=https://[fd00::1]:6443"],
    );
    kubectl(
        &b,
        &["set", "clusters.own.certificate-authority", "nested/ca.pem"],
    );
    kubectl(&b, &["set-context", "two", "--cluster=shared"]);
    kubectl(&b, &["set-context", "three", "--cluster=own"]);
    let specs = locate("kc", &[a, b], None).unwrap();
    let got: Vec<_> = specs
        .iter()
        .map(|s| (s.name.as_str(), s.url.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("one", "https://a.example:6443/"),
            ("three", "https://[fd00::1]:6443/"),
            ("two", "https://a.example:6443/"),
        ]
    );
    for s in &specs {
        assert_eq!(
            s.tls.ca_pem.as_deref(),
            Some(w.ca.pem.as_bytes()),
            "{}",
            s.name
        );
    }
}

#[test]
fn broken_kubeconfigs_are_refused_with_the_file_and_context() {
    let w = world();
    let kc = w.root.join("kube/broken.yaml");
    kubectl(&kc, &["set-cluster", "c", "--server=https://c.example"]);
    kubectl(
        &kc,
        &["set", "clusters.c.certificate-authority", "missing.crt"],
    );
    kubectl(&kc, &["set-context", "ctx", "--cluster=c"]);
    kubectl(
        &kc,
        &["set-cluster", "fine", "--server=https://fine.example"],
    );
    kubectl(&kc, &["set-context", "good", "--cluster=fine"]);
    // Among all contexts, a broken one is skipped and the others load.
    let specs = locate("kubeconfig", std::slice::from_ref(&kc), None).unwrap();
    let names: Vec<_> = specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["good"]);
    // Named in the contexts filter, it is refused with the file, context and cause.
    let ctx = Some(&["ctx".to_string(), "dangling".to_string()][..]);
    let err = locate(
        "kubeconfig",
        std::slice::from_ref(&kc),
        Some(&["ctx".to_string()]),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("broken.yaml"),
        "{}",
        err.to_string()
    );
    assert!(
        err.to_string().contains("context \"ctx\""),
        "{}",
        err.to_string()
    );
    assert!(
        err.to_string().contains("missing.crt"),
        "{}",
        err.to_string()
    );

    kubectl(&kc, &["unset", "clusters.c.certificate-authority"]);
    kubectl(&kc, &["set-context", "dangling", "--cluster=nowhere"]);
    let err = locate("kubeconfig", std::slice::from_ref(&kc), ctx).unwrap_err();
    assert!(
        err.to_string()
            .contains("cluster \"nowhere\" is not defined"),
        "{}",
        err.to_string()
    );

    let err = locate("kubeconfig", &[w.root.join("kube/none.yaml")], None).unwrap_err();
    assert!(
        err.to_string().contains("cannot read kubeconfig"),
        "{}",
        err.to_string()
    );
    std::fs::write(w.root.join("kube/garbage.yaml"), "clusters: [1, 2").unwrap();
    let err = locate("kubeconfig", &[w.root.join("kube/garbage.yaml")], None).unwrap_err();
    assert!(
        err.to_string().contains("is not valid"),
        "{}",
        err.to_string()
    );
}

#[test]
fn auth_provider_users_load_without_a_credential() {
    let w = world();
    let kc = w.root.join("kube/oidc.yaml");
    kubectl(&kc, &["set-cluster", "c", "--server=https://c.example"]);
    kubectl(
        &kc,
        &[
            "set-credentials",
            "oidc-user",
            "--auth-provider=oidc",
            "--auth-provider-arg=idp-issuer-url=https://issuer.example",
        ],
    );
    kubectl(
        &kc,
        &["set-context", "ctx", "--cluster=c", "--user=oidc-user"],
    );
    let specs = locate("kubeconfig", &[kc], None).unwrap();
    assert_eq!(specs.len(), 1);
    assert_eq!(specs[0].credential, ServerCredential::None);
}
