//! Configuration loading and validation (SPEC §4): every kind of problem with its exact
//! message (file, key path, problem), several problems at once, merge order, `${VAR}`,
//! `KUBEPLEX_` overrides, Backstage `app-config.yaml`, the embedded default, and the
//! `check-config` and `clusters` commands of the real binary.

use kubeplex::config::{
    load_with_env, tree::Env, AuthMode, AuthSettings, ConfigErrors, DuplicateNames, LocatorKind,
    Settings, Source,
};
use kubeplex::sim::config::{SeedSource, DEFAULT_SEED};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, text).unwrap();
    p
}

fn env(pairs: &[(&str, &str)]) -> Env {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn load(files: &[&Path], vars: &[(&str, &str)]) -> Result<Settings, ConfigErrors> {
    let sources: Vec<Source> = files
        .iter()
        .map(|f| Source::File(f.to_path_buf()))
        .collect();
    load_with_env(&sources, &env(vars))
}

/// Loads one file that must be refused and returns its problems as printed.
fn problems(text: &str) -> (String, Vec<String>) {
    let dir = TempDir::new().unwrap();
    let f = write(dir.path(), "app-config.yaml", text);
    let errs = load(&[&f], &[]).expect_err("config must be refused");
    let name = f.display().to_string();
    let lines = errs.0.iter().map(|p| p.to_string()).collect();
    // Keep the directory alive only as long as needed: the file name is what matters.
    drop(dir);
    (name, lines)
}

/// Asserts that `text` is refused with exactly these problems (each `key: problem`).
fn assert_problems(text: &str, expected: &[&str]) {
    let (file, got) = problems(text);
    let want: Vec<String> = expected.iter().map(|e| format!("{file}: {e}")).collect();
    assert_eq!(got, want);
}

/// A `kubernetes:` block with one locator, for tests about the `kubeplex:` block (a file
/// without any locator is refused).
const LOCATOR: &str = "kubernetes:\n  clusterLocatorMethods:\n    - type: localKubectlProxy\n";

/// `kubeplex` (a `kubeplex:` block) followed by [`LOCATOR`].
fn with_locator(kubeplex: &str) -> String {
    format!("{kubeplex}{LOCATOR}")
}

fn clusters_yaml(clusters: &str) -> String {
    format!(
        "kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n{clusters}"
    )
}

fn cert_pem() -> (String, String) {
    let ck = rcgen::generate_simple_self_signed(vec!["kube.example".into()]).unwrap();
    (ck.cert.pem(), ck.signing_key.serialize_pem())
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn kubeplex() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kubeplex"));
    c.env("RUST_LOG", "warn");
    for (k, _) in std::env::vars() {
        if k.starts_with("KUBEPLEX_") {
            c.env_remove(k);
        }
    }
    c
}

fn run(c: &mut Command) -> (i32, String, String) {
    let out = c.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// ---- one test per kind of problem ----

#[test]
fn url_not_a_url() {
    assert_problems(
        &clusters_yaml(
            "        - {name: a, url: 'https://a:6443'}\n        - {name: b, url: 'http://b'}\n        - {name: c, url: 'htp:/x'}\n",
        ),
        &[r#"kubernetes.clusterLocatorMethods[0].clusters[2].url: not a URL: "htp:/x""#],
    );
}

#[test]
fn url_scheme_and_credentials() {
    assert_problems(
        &clusters_yaml(
            "        - {name: a, url: 'ftp://a'}\n        - {name: b, url: 'https://u:secret@b'}\n",
        ),
        &[
            r#"kubernetes.clusterLocatorMethods[0].clusters[0].url: scheme must be http or https, got "ftp""#,
            "kubernetes.clusterLocatorMethods[0].clusters[1].url: must not contain credentials (user:password@)",
        ],
    );
}

#[test]
fn required_fields() {
    assert_problems(
        &clusters_yaml("        - title: nameless\n        - name: ''\n          url: http://x\n"),
        &[
            "kubernetes.clusterLocatorMethods[0].clusters[0].name: required",
            "kubernetes.clusterLocatorMethods[0].clusters[0].url: required",
            "kubernetes.clusterLocatorMethods[0].clusters[1].name: must not be empty",
        ],
    );
}

#[test]
fn unknown_locator_type() {
    assert_problems(
        "kubernetes:\n  clusterLocatorMethods:\n    - type: foo\n    - {}\n",
        &[
            r#"kubernetes.clusterLocatorMethods[0].type: unknown locator type "foo" (expected config, localKubectlProxy, kubeconfig, catalog, simulated)"#,
            "kubernetes.clusterLocatorMethods[1].type: required",
        ],
    );
}

#[test]
fn duplicate_cluster_name_in_one_locator() {
    assert_problems(
        &clusters_yaml(
            "        - {name: prod, url: 'https://a'}\n        - {name: dev, url: 'https://b'}\n        - {name: prod, url: 'https://c'}\n",
        ),
        &[r#"kubernetes.clusterLocatorMethods[0].clusters[2].name: duplicate cluster name "prod" in this locator"#],
    );
}

#[test]
fn same_name_in_two_locators_is_fine_and_ids_are_resolved() {
    let dir = TempDir::new().unwrap();
    let f = write(
        dir.path(),
        "c.yaml",
        "kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters: [{name: prod, url: 'https://a'}]\n    - type: config\n      clusters: [{name: prod, url: 'https://b'}]\n    - type: config\n      id: eu\n      clusters: [{name: prod, url: 'https://c'}]\n    - type: localKubectlProxy\n    - type: config\n      clusters: []\n",
    );
    let s = load(&[&f], &[]).unwrap();
    let ids: Vec<_> = s.locators.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(
        ids,
        ["config", "config-2", "eu", "localKubectlProxy", "config-3"]
    );
}

#[test]
fn duplicate_and_bad_locator_ids() {
    assert_problems(
        "kubernetes:\n  clusterLocatorMethods:\n    - type: localKubectlProxy\n    - type: config\n      id: localKubectlProxy\n      clusters: []\n    - type: config\n      id: 'a:b'\n      clusters: []\n",
        &[
            r#"kubernetes.clusterLocatorMethods[1].id: duplicate locator id "localKubectlProxy" (also the id of kubernetes.clusterLocatorMethods[0])"#,
            r#"kubernetes.clusterLocatorMethods[2].id: must not contain ':', '/', ',' or spaces, got "a:b""#,
        ],
    );
}

#[test]
fn wrong_types() {
    assert_problems(
        "kubeplex:\n  server:\n    maxHeaderBytes: lots\n    workers: [1]\nkubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n        - name: a\n          url: https://a\n          skipTLSVerify: maybe\n          authMetadata: [x]\n    - type: config\n      clusters: {name: b}\n",
        &[
            r#"kubeplex.server.maxHeaderBytes: not a non-negative integer: "lots""#,
            "kubeplex.server.workers: expected an integer, got a list",
            "kubernetes.clusterLocatorMethods[0].clusters[0].authMetadata: expected a map, got a list",
            "kubernetes.clusterLocatorMethods[0].clusters[0].skipTLSVerify: expected true or false, got a string",
            "kubernetes.clusterLocatorMethods[1].clusters: expected a list, got a map",
        ],
    );
}

#[test]
fn bad_durations() {
    assert_problems(
        &with_locator("kubeplex:\n  server:\n    connectTimeout: 5\n    responseHeadTimeout: 5 parsecs\n    shutdownTimeout: 0s\n"),
        &[
            "kubeplex.server.connectTimeout: not a duration: 5 (add a unit, e.g. 500ms, 5s, 2m)",
            r#"kubeplex.server.responseHeadTimeout: not a duration: "5 parsecs" (write e.g. 500ms, 5s, 2m)"#,
        ],
    );
    assert_problems(
        &with_locator("kubeplex:\n  server:\n    connectTimeout: 0ms\n"),
        &["kubeplex.server.connectTimeout: must be greater than zero"],
    );
}

#[test]
fn durations_parse() {
    let dir = TempDir::new().unwrap();
    let f = write(
        dir.path(),
        "c.yaml",
        &with_locator("kubeplex:\n  server:\n    connectTimeout: 500ms\n    responseHeadTimeout: 2m\n    shutdownTimeout: 5s\n"),
    );
    let s = load(&[&f], &[]).unwrap().server;
    assert_eq!(s.connect_timeout, Duration::from_millis(500));
    assert_eq!(s.response_head_timeout, Duration::from_secs(120));
    assert_eq!(s.shutdown_timeout, Duration::from_secs(5));
}

#[test]
fn base_path_rules() {
    assert_problems(
        &with_locator("kubeplex:\n  server:\n    basePath: api/kubernetes\n"),
        &[
            r#"kubeplex.server.basePath: must start with / and not end with /, got "api/kubernetes""#,
        ],
    );
    assert_problems(
        &with_locator("kubeplex:\n  server:\n    basePath: /api/kubernetes/\n"),
        &[
            r#"kubeplex.server.basePath: must start with / and not end with /, got "/api/kubernetes/""#,
        ],
    );
}

#[test]
fn listen_must_be_host_port() {
    assert_problems(
        &with_locator("kubeplex:\n  server:\n    listen: '7007'\n"),
        &[r#"kubeplex.server.listen: must be host:port, got "7007""#],
    );
}

#[test]
fn duplicate_names_mode() {
    assert_problems(
        &with_locator("kubeplex:\n  duplicateNames: last\n"),
        &[r#"kubeplex.duplicateNames: must be first or reject, got "last""#],
    );
    let dir = TempDir::new().unwrap();
    let f = write(
        dir.path(),
        "c.yaml",
        &with_locator("kubeplex:\n  duplicateNames: reject\n"),
    );
    assert_eq!(
        load(&[&f], &[]).unwrap().duplicate_names,
        DuplicateNames::Reject
    );
}

#[test]
fn ca_data_not_base64_or_not_pem() {
    assert_problems(
        &clusters_yaml(&format!(
            "        - {{name: a, url: 'https://a', caData: 'not base64!'}}\n        - {{name: b, url: 'https://b', caData: '{}'}}\n",
            b64("hello")
        )),
        &[
            "kubernetes.clusterLocatorMethods[0].clusters[0].caData: not base64: invalid character '!'",
            "kubernetes.clusterLocatorMethods[0].clusters[1].caData: decoded base64 does not contain a PEM certificate (-----BEGIN CERTIFICATE-----)",
        ],
    );
}

#[test]
fn ca_file_unreadable() {
    let dir = TempDir::new().unwrap();
    let f = write(
        dir.path(),
        "c.yaml",
        &clusters_yaml("        - {name: a, url: 'https://a', caFile: missing-ca.pem}\n"),
    );
    let errs = load(&[&f], &[]).unwrap_err();
    let missing = dir.path().join("missing-ca.pem");
    assert_eq!(
        errs.0.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        [format!(
            "{}: kubernetes.clusterLocatorMethods[0].clusters[0].caFile: cannot read {}: No such file or directory (os error 2)",
            f.display(),
            missing.display()
        )]
    );
}

#[test]
fn both_ca_data_and_ca_file() {
    let dir = TempDir::new().unwrap();
    let (cert, _) = cert_pem();
    write(dir.path(), "ca.pem", &cert);
    let f = write(
        dir.path(),
        "c.yaml",
        &clusters_yaml(&format!(
            "        - {{name: a, url: 'https://a', caFile: ca.pem, caData: '{}'}}\n",
            b64(&cert)
        )),
    );
    let errs = load(&[&f], &[]).unwrap_err();
    assert_eq!(
        errs.to_string(),
        format!(
            "{}: kubernetes.clusterLocatorMethods[0].clusters[0].caFile: caData and caFile are both set; use one",
            f.display()
        )
    );
}

#[test]
fn client_cert_without_key_and_key_not_pem() {
    let (cert, _) = cert_pem();
    assert_problems(
        &clusters_yaml(&format!(
            "        - {{name: a, url: 'https://a', clientCertData: '{}'}}\n        - {{name: b, url: 'https://b', clientCertData: '{}', clientKeyData: '{}'}}\n",
            b64(&cert),
            b64(&cert),
            b64(&cert)
        )),
        &[
            "kubernetes.clusterLocatorMethods[0].clusters[0].clientCertData: client certificate without a key: set clientKeyData or clientKeyFile",
            "kubernetes.clusterLocatorMethods[0].clusters[1].clientKeyData: decoded base64 does not contain a PEM private key (PKCS#8, PKCS#1 or SEC1)",
        ],
    );
}

#[test]
fn token_and_token_file_both_and_oidc_needs_provider() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "token", "abc");
    let f = write(
        dir.path(),
        "c.yaml",
        &clusters_yaml("        - {name: a, url: 'https://a', serviceAccountToken: s3cret, tokenFile: token}\n        - {name: b, url: 'https://b', authProvider: oidc}\n"),
    );
    let text = load(&[&f], &[]).unwrap_err().to_string();
    let file = f.display();
    assert_eq!(
        text,
        format!(
            "{file}: kubernetes.clusterLocatorMethods[0].clusters[0].tokenFile: serviceAccountToken and tokenFile are both set; use one\n\
             {file}: kubernetes.clusterLocatorMethods[0].clusters[1].oidcTokenProvider: required when authProvider is oidc"
        )
    );
    assert!(
        !text.contains("s3cret"),
        "a token never appears in a message"
    );
}

#[test]
fn unknown_keys_in_kubeplex_and_clusters() {
    assert_problems(
        "kubeplex:\n  server:\n    lisen: 127.0.0.1:1\n    colour: blue\n  duplicatenames: first\nkubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n        - {name: a, url: 'https://a', serviceAcountToken: x}\n",
        &[
            "kubeplex.duplicatenames: unknown key; did you mean duplicateNames?",
            "kubeplex.server.lisen: unknown key; did you mean listen?",
            "kubeplex.server.colour: unknown key (expected one of: listen, basePath, connectTimeout, responseHeadTimeout, maxHeaderBytes, shutdownTimeout, workers, tls, trustedProxies, bodyIdleTimeout, probeInterval, cors)",
            "kubernetes.clusterLocatorMethods[0].clusters[0].serviceAcountToken: unknown key; did you mean serviceAccountToken?",
        ],
    );
}

#[test]
fn missing_variable_names_file_and_key() {
    assert_problems(
        &clusters_yaml("        - {name: a, url: '${KUBEPLEX_TEST_SURELY_UNSET_URL}'}\n"),
        &["kubernetes.clusterLocatorMethods[0].clusters[0].url: environment variable KUBEPLEX_TEST_SURELY_UNSET_URL is not set"],
    );
}

#[test]
fn kubeconfig_and_catalog_fields() {
    assert_problems(
        "kubernetes:\n  clusterLocatorMethods:\n    - type: kubeconfig\n    - type: kubeconfig\n      path: /nonexistent/kubeconfig\n    - type: catalog\n      refreshInterval: soon\n    - type: catalog\n      url: 'catalog'\n",
        &[
            "kubernetes.clusterLocatorMethods[0].path: required (or paths)",
            "kubernetes.clusterLocatorMethods[1].path: cannot read /nonexistent/kubeconfig: No such file or directory (os error 2)",
            "kubernetes.clusterLocatorMethods[2].url: required (the catalog API, e.g. https://backstage.example.com/api/catalog)",
            r#"kubernetes.clusterLocatorMethods[2].refreshInterval: not a duration: "soon" (write e.g. 500ms, 5s, 2m)"#,
            r#"kubernetes.clusterLocatorMethods[3].url: not a URL: "catalog""#,
        ],
    );
}

#[test]
fn kubeconfig_and_catalog_parse() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "kube/a.yaml", "apiVersion: v1\nkind: Config\n");
    let f = write(
        dir.path(),
        "c.yaml",
        "kubernetes:\n  clusterLocatorMethods:\n    - type: kubeconfig\n      path: kube/a.yaml\n      contexts: [kind-a]\n    - type: catalog\n      url: https://backstage.example.com/api/catalog\n      token: t\n      refreshInterval: 2m\n      dangerouslyAllowClusterUrls: ['https://10.*']\n",
    );
    let s = load(&[&f], &[]).unwrap();
    assert_eq!(
        s.locators[0].kind,
        LocatorKind::Kubeconfig {
            paths: vec![dir.path().join("kube/a.yaml")],
            contexts: Some(vec!["kind-a".into()])
        }
    );
    let LocatorKind::Catalog(c) = &s.locators[1].kind else {
        panic!("catalog expected")
    };
    assert_eq!(c.url, "https://backstage.example.com/api/catalog");
    assert_eq!(c.token.as_ref().map(|t| t.expose()), Some("t"));
    assert_eq!(c.refresh_interval, Duration::from_secs(120));
    assert_eq!(c.dangerously_allow_cluster_urls, ["https://10.*"]);
}

#[test]
fn simulated_fields() {
    let dir = TempDir::new().unwrap();
    let f = write(
        dir.path(),
        "c.yaml",
        "kubernetes:\n  clusterLocatorMethods:\n    - type: simulated\n      clusters:\n        - name: a\n          seed: nope.yaml\n          tokens:\n            - t1\n            - {token: t2, verbs: [get, fly]}\n          faults: {failEvery: 0, failCode: 42}\n",
    );
    let file = f.display();
    let got: Vec<String> = load(&[&f], &[])
        .unwrap_err()
        .0
        .iter()
        .map(|p| p.to_string())
        .collect();
    let c = "kubernetes.clusterLocatorMethods[0].clusters[0]";
    assert_eq!(
        got,
        [
            format!(
                "{file}: {c}.seed: cannot read {}: No such file or directory (os error 2)",
                dir.path().join("nope.yaml").display()
            ),
            format!(
                r#"{file}: {c}.tokens[1].verbs[1]: unknown verb "fly" (expected get, list, watch, create, update, patch, delete, proxy, exec)"#
            ),
            format!("{file}: {c}.faults.failEvery: must be at least 1"),
            format!("{file}: {c}.faults.failCode: must be an HTTP status code, got 42"),
        ]
    );
}

#[test]
fn simulated_parse() {
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        "seeds/s.yaml",
        "apiVersion: v1\nkind: List\nitems: []\n",
    );
    let f = write(
        dir.path(),
        "c.yaml",
        "kubernetes:\n  clusterLocatorMethods:\n    - type: simulated\n      clusters:\n        - name: a\n          seed: seeds/s.yaml\n          tokens: [t1, {token: t2, namespaces: [payments], verbs: [get, list]}]\n          faults: {latency: 50ms, failEvery: 3, failCode: 503, closeWatchAfter: 2}\n        - name: b\n",
    );
    let s = load(&[&f], &[]).unwrap();
    let LocatorKind::Simulated { clusters } = &s.locators[0].kind else {
        panic!("simulated expected")
    };
    assert_eq!(
        clusters[0].seed,
        Some(SeedSource::File(dir.path().join("seeds/s.yaml")))
    );
    assert_eq!(clusters[0].tokens[0].token, "t1");
    assert_eq!(clusters[0].tokens[0].verbs, None);
    assert_eq!(clusters[0].tokens[1].token, "t2");
    assert_eq!(
        clusters[0].tokens[1].namespaces,
        Some(vec!["payments".to_string()])
    );
    assert_eq!(
        clusters[0].tokens[1].verbs,
        Some(vec!["get".to_string(), "list".to_string()])
    );
    assert_eq!(clusters[0].faults.latency, Some(Duration::from_millis(50)));
    assert_eq!(clusters[0].faults.fail_every, Some(3));
    assert_eq!(clusters[0].faults.fail_code, Some(503));
    assert_eq!(clusters[0].faults.close_watch_after, Some(2));
    assert_eq!(clusters[1].seed, None);
    assert!(clusters[1].tokens.is_empty());
}

#[test]
fn invalid_yaml_and_missing_file() {
    let (file, got) = problems("kubernetes: [\n");
    assert_eq!(got.len(), 1);
    assert!(
        got[0].starts_with(&format!("{file}: invalid YAML: ")),
        "{got:?}"
    );
    let errs = load(&[Path::new("/nonexistent/app-config.yaml")], &[]).unwrap_err();
    assert_eq!(
        errs.to_string(),
        "/nonexistent/app-config.yaml: cannot read: No such file or directory (os error 2)"
    );
}

// ---- several problems, merge, environment, Backstage, default ----

const MANY_PROBLEMS: &str = "kubeplex:
  server:
    listen: nowhere
    basePath: /api/
  duplicateNames: maybe
kubernetes:
  clusterLocatorMethods:
    - type: config
      clusters:
        - name: prod
          url: htp:/x
        - name: prod
          url: https://ok.example.com
    - type: gke
";

fn many_expected(file: &str) -> Vec<String> {
    [
        r#"kubeplex.server.listen: must be host:port, got "nowhere""#,
        r#"kubeplex.server.basePath: must start with / and not end with /, got "/api/""#,
        r#"kubeplex.duplicateNames: must be first or reject, got "maybe""#,
        r#"kubernetes.clusterLocatorMethods[0].clusters[0].url: not a URL: "htp:/x""#,
        r#"kubernetes.clusterLocatorMethods[0].clusters[1].name: duplicate cluster name "prod" in this locator"#,
        r#"kubernetes.clusterLocatorMethods[1].type: unknown locator type "gke" (expected config, localKubectlProxy, kubeconfig, catalog, simulated)"#,
    ]
    .iter()
    .map(|p| format!("{file}: {p}"))
    .collect()
}

#[test]
fn every_problem_is_reported_at_once() {
    let (file, got) = problems(MANY_PROBLEMS);
    assert_eq!(got, many_expected(&file));
}

#[test]
fn check_config_prints_every_problem_and_fails() {
    let dir = TempDir::new().unwrap();
    let f = write(dir.path(), "bad.yaml", MANY_PROBLEMS);
    let (code, out, err) = run(kubeplex().arg("check-config").arg("--config").arg(&f));
    assert_ne!(code, 0);
    let lines: Vec<String> = out.lines().map(String::from).collect();
    assert_eq!(lines, many_expected(&f.display().to_string()));
    assert!(
        err.contains("configuration refused: 6 problems"),
        "stderr: {err}"
    );
}

#[test]
fn check_config_ok_summary() {
    let dir = TempDir::new().unwrap();
    let f = write(
        dir.path(),
        "ok.yaml",
        "kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters: [{name: prod, url: 'https://a'}, {name: dev, url: 'https://b'}]\n    - type: localKubectlProxy\n",
    );
    let (code, out, _) = run(kubeplex().arg("check-config").arg("--config").arg(&f));
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        "configuration OK: listen 127.0.0.1:7007, base path /api/kubernetes, duplicateNames first, 2 locators\n  config (config): 2 clusters: prod, dev\n  localKubectlProxy (localKubectlProxy): 1 cluster: local\n"
    );
}

#[test]
fn later_files_win_maps_merge_lists_replace() {
    let dir = TempDir::new().unwrap();
    let a = write(
        dir.path(),
        "a/base.yaml",
        "kubeplex:\n  server:\n    listen: 0.0.0.0:7007\n    connectTimeout: 2s\nkubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters: [{name: one, url: 'https://one'}, {name: two, url: 'https://two'}]\n",
    );
    let b = write(
        dir.path(),
        "b/override.yaml",
        "kubeplex:\n  server:\n    listen: 127.0.0.1:9999\n    basePath: /k8s\nkubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters: [{name: three, url: 'https://three'}]\n",
    );
    let s = load(&[&a, &b], &[]).unwrap();
    assert_eq!(s.server.listen, "127.0.0.1:9999");
    assert_eq!(s.server.base_path, "/k8s");
    assert_eq!(s.server.connect_timeout, Duration::from_secs(2));
    let LocatorKind::Config { clusters } = &s.locators[0].kind else {
        panic!("config expected")
    };
    let names: Vec<_> = clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["three"], "lists are replaced, not merged");
    assert_eq!(s.files, [a.clone(), b.clone()]);
    // The other order: the first file's values win.
    let s = load(&[&b, &a], &[]).unwrap();
    assert_eq!(s.server.listen, "0.0.0.0:7007");
    assert_eq!(s.server.base_path, "/k8s");
}

#[test]
fn problems_name_the_file_that_set_the_key() {
    let dir = TempDir::new().unwrap();
    let a = write(
        dir.path(),
        "a.yaml",
        &with_locator("kubeplex:\n  server:\n    listen: bad\n    basePath: /ok\n"),
    );
    let b = write(
        dir.path(),
        "b.yaml",
        "kubeplex:\n  server:\n    basePath: also-bad\n",
    );
    let got = load(&[&a, &b], &[]).unwrap_err().to_string();
    assert_eq!(
        got,
        format!(
            "{}: kubeplex.server.listen: must be host:port, got \"bad\"\n{}: kubeplex.server.basePath: must start with / and not end with /, got \"also-bad\"",
            a.display(),
            b.display()
        )
    );
}

#[test]
fn variables_are_substituted() {
    let dir = TempDir::new().unwrap();
    let f = write(
        dir.path(),
        "c.yaml",
        "kubeplex:\n  dangerouslySkipTLSVerifyWithCredentials: true\n  server:\n    listen: 127.0.0.1:${PORT}\n    connectTimeout: ${TIMEOUT:-3s}\nkubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n        - name: prod\n          url: https://${HOST}/sub\n          serviceAccountToken: ${TOKEN}\n          skipTLSVerify: ${SKIP}\n          title: literal $${HOST}\n",
    );
    let s = load(
        &[&f],
        &[
            ("PORT", "8080"),
            ("HOST", "k8s.example.com"),
            ("TOKEN", "tok"),
            ("SKIP", "true"),
        ],
    )
    .unwrap();
    assert_eq!(s.server.listen, "127.0.0.1:8080");
    assert_eq!(s.server.connect_timeout, Duration::from_secs(3));
    let LocatorKind::Config { clusters } = &s.locators[0].kind else {
        panic!("config expected")
    };
    assert_eq!(clusters[0].url, "https://k8s.example.com/sub");
    assert_eq!(
        clusters[0]
            .service_account_token
            .as_ref()
            .map(|t| t.expose()),
        Some("tok")
    );
    assert!(clusters[0].skip_tls_verify);
    assert_eq!(clusters[0].title.as_deref(), Some("literal ${HOST}"));
}

#[test]
fn kubeplex_environment_overrides() {
    let dir = TempDir::new().unwrap();
    let f = write(
        dir.path(),
        "c.yaml",
        &with_locator(
            "kubeplex:\n  server:\n    listen: 127.0.0.1:7007\n    basePath: /api/kubernetes\n",
        ),
    );
    let s = load(
        &[&f],
        &[
            ("KUBEPLEX_SERVER_LISTEN", "0.0.0.0:8000"),
            ("KUBEPLEX_SERVER_BASE_PATH", "/k"),
            ("KUBEPLEX_SERVER_RESPONSEHEADTIMEOUT", "90s"),
            ("KUBEPLEX_SERVER_MAXHEADERBYTES", "32768"),
            ("KUBEPLEX_DUPLICATE_NAMES", "reject"),
            ("KUBEPLEX_OTHER", "ignored"),
        ],
    )
    .unwrap();
    assert_eq!(s.server.listen, "0.0.0.0:8000");
    assert_eq!(s.server.base_path, "/k");
    assert_eq!(s.server.response_head_timeout, Duration::from_secs(90));
    assert_eq!(s.server.max_header_bytes, 32768);
    assert_eq!(s.duplicate_names, DuplicateNames::Reject);

    let errs = load(
        &[&f],
        &[
            ("KUBEPLEX_SERVER_BASEPATH", "k/"),
            ("KUBEPLEX_SERVER_LISTN", "x"),
        ],
    )
    .unwrap_err();
    let got: Vec<String> = errs.0.iter().map(|p| p.to_string()).collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        got[0],
        "environment variable KUBEPLEX_SERVER_LISTN: kubeplex.server: unknown setting (expected one of: KUBEPLEX_SERVER_LISTEN, KUBEPLEX_SERVER_BASEPATH, KUBEPLEX_SERVER_CONNECTTIMEOUT, KUBEPLEX_SERVER_RESPONSEHEADTIMEOUT, KUBEPLEX_SERVER_MAXHEADERBYTES, KUBEPLEX_SERVER_SHUTDOWNTIMEOUT, KUBEPLEX_SERVER_WORKERS, KUBEPLEX_SERVER_TRUSTEDPROXIES, KUBEPLEX_SERVER_BODYIDLETIMEOUT, KUBEPLEX_SERVER_PROBEINTERVAL, KUBEPLEX_SERVER_TLS_CERTFILE, KUBEPLEX_SERVER_TLS_KEYFILE, KUBEPLEX_DUPLICATENAMES)"
    );
    assert_eq!(
        got[1],
        "environment variable KUBEPLEX_SERVER_BASEPATH: kubeplex.server.basePath: must start with / and not end with /, got \"k/\""
    );
}

#[test]
fn environment_override_reaches_the_binary() {
    let dir = TempDir::new().unwrap();
    let f = write(
        dir.path(),
        "c.yaml",
        &with_locator("kubeplex:\n  server:\n    listen: 127.0.0.1:7007\n"),
    );
    let (code, out, _) = run(kubeplex()
        .arg("check-config")
        .arg("--config")
        .arg(&f)
        .env("KUBEPLEX_SERVER_LISTEN", "127.0.0.1:7100")
        .env("KUBEPLEX_SERVER_BASEPATH", "/kube"));
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("configuration OK: listen 127.0.0.1:7100, base path /kube,"),
        "{out}"
    );
}

/// A Backstage `app-config.yaml` as Backstage's docs show it, with other plugins' blocks.
const BACKSTAGE_APP_CONFIG: &str = r#"app:
  title: Example Portal
  baseUrl: http://localhost:3000
organization:
  name: Example
backend:
  baseUrl: http://localhost:7007
  listen:
    port: 7007
  database:
    client: better-sqlite3
    connection: ':memory:'
auth:
  providers:
    guest: {}
catalog:
  rules:
    - allow: [Component, System, API, Resource, Location]
kubernetes:
  serviceLocatorMethod:
    type: multiTenant
  clusterLocatorMethods:
    - type: config
      clusters:
        - url: https://prod.k8s.example.com:6443
          name: prod
          title: Production
          authProvider: serviceAccount
          skipTLSVerify: false
          skipMetricsLookup: true
          serviceAccountToken: ${K8S_PROD_TOKEN}
          dashboardUrl: https://console.example.com
          dashboardApp: openshift
          customResources:
            - group: argoproj.io
              apiVersion: v1alpha1
              plural: rollouts
        - url: https://gke.example.com
          name: gke
          authProvider: google
          caData: ${GKE_CA_DATA}
        - url: https://oidc.example.com
          name: corp
          authProvider: oidc
          oidcTokenProvider: okta
          authMetadata:
            kubernetes.io/aws-assume-role: arn:aws:iam::1:role/x
    - type: catalog
  customResources:
    - group: tekton.dev
      apiVersion: v1
      plural: pipelineruns
"#;

#[test]
fn backstage_app_config_is_accepted_as_is() {
    let dir = TempDir::new().unwrap();
    let f = write(dir.path(), "app-config.yaml", BACKSTAGE_APP_CONFIG);
    let (cert, _) = cert_pem();
    let ca = b64(&cert);
    let s = load(&[&f], &[("K8S_PROD_TOKEN", "tok"), ("GKE_CA_DATA", &ca)]).unwrap();
    assert_eq!(s.server.listen, "127.0.0.1:7007", "kubeplex defaults");
    assert_eq!(s.locators.len(), 2);
    assert_eq!(s.locators[0].id, "config");
    let LocatorKind::Config { clusters } = &s.locators[0].kind else {
        panic!("config expected")
    };
    let prod = &clusters[0];
    assert_eq!(prod.name, "prod");
    assert_eq!(prod.url, "https://prod.k8s.example.com:6443");
    assert_eq!(prod.title.as_deref(), Some("Production"));
    assert_eq!(prod.auth_provider.as_deref(), Some("serviceAccount"));
    assert_eq!(
        prod.service_account_token.as_ref().map(|t| t.expose()),
        Some("tok")
    );
    assert!(prod.skip_metrics_lookup);
    assert_eq!(
        prod.dashboard_url.as_deref(),
        Some("https://console.example.com")
    );
    assert_eq!(prod.dashboard_app.as_deref(), Some("openshift"));
    assert_eq!(clusters[1].ca_data.as_deref(), Some(ca.as_str()));
    assert_eq!(clusters[2].oidc_token_provider.as_deref(), Some("okta"));
    assert_eq!(
        clusters[2].auth_metadata["kubernetes.io/aws-assume-role"],
        "arn:aws:iam::1:role/x"
    );
    // Backstage's catalog locator has no URL: the catalog of `backend.baseUrl` is used.
    let LocatorKind::Catalog(c) = &s.locators[1].kind else {
        panic!("catalog expected")
    };
    assert_eq!(c.url, "http://localhost:7007/api/catalog");
    // The entity routes read entities from the same catalog.
    assert_eq!(
        s.backstage.catalog_url.as_deref(),
        Some("http://localhost:7007/api/catalog")
    );
}

#[test]
fn embedded_default_loads() {
    let s = load_with_env(&[], &Env::new()).unwrap();
    assert_eq!(s.server.listen, "127.0.0.1:7007");
    assert_eq!(s.server.base_path, "/api/kubernetes");
    let ids: Vec<_> = s.locators.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(ids, ["simulated", "staging"]);
    let LocatorKind::Simulated { clusters } = &s.locators[0].kind else {
        panic!("simulated expected")
    };
    assert_eq!(
        clusters[0].seed,
        Some(SeedSource::Text {
            name: "config/seed.yaml".into(),
            text: DEFAULT_SEED.into()
        })
    );
    // The same file given with --config resolves its seed next to it.
    let repo_default = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.yaml");
    let s = load(&[&repo_default], &[]).unwrap();
    let LocatorKind::Simulated { clusters } = &s.locators[0].kind else {
        panic!("simulated expected")
    };
    assert_eq!(
        clusters[0].seed,
        Some(SeedSource::File(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("config/seed.yaml")
        ))
    );
}

#[test]
fn clusters_command_lists_default_keys_in_order() {
    let tmp = TempDir::new().unwrap();
    // From an unrelated directory: the embedded default needs nothing on disk.
    let (code, out, err) = run(kubeplex().arg("clusters").current_dir(tmp.path()));
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    let head: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(head, ["KEY", "NAME", "LOCATOR", "URL", "AMBIGUOUS"]);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    let summary: Vec<(&str, &str, &str, &str)> =
        rows.iter().map(|r| (r[0], r[1], r[2], r[4])).collect();
    assert_eq!(
        summary,
        [
            ("simulated:dev", "dev", "simulated", "no"),
            ("simulated:prod", "prod", "simulated", "yes"),
            ("staging:prod", "prod", "staging", "yes"),
        ]
    );
    // The simulated servers of this command die with it: no URL of theirs is printed.
    for r in &rows {
        assert_eq!(r[3], "(simulated)", "{r:?}");
    }
}

#[test]
fn clusters_command_never_prints_credentials() {
    let dir = TempDir::new().unwrap();
    let f = write(
        dir.path(),
        "c.yaml",
        "kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters: [{name: prod, url: 'https://k.example.com/sub', serviceAccountToken: sekrit-token}]\n    - type: localKubectlProxy\n",
    );
    let (code, out, err) = run(kubeplex().arg("clusters").arg("-c").arg(&f));
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("sekrit") && !err.contains("sekrit"));
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[1],
        [
            "config:prod",
            "prod",
            "config",
            "https://k.example.com/sub",
            "no"
        ]
    );
    assert_eq!(
        rows[2],
        [
            "localKubectlProxy:local",
            "local",
            "localKubectlProxy",
            "http://127.0.0.1:8001/",
            "no"
        ]
    );
}

// ---- silent misconfiguration: no locators, unknown keys (issue 8 B3) ----

const NO_LOCATORS: &str = "kubernetes.clusterLocatorMethods: required: no cluster locators are configured, so kubeplex would serve no clusters (add e.g. - type: config)";

#[test]
fn no_locator_at_all_is_refused() {
    // An empty file, a file with only other blocks, an empty list.
    assert_problems("", &[NO_LOCATORS]);
    assert_problems("# nothing yet\n", &[NO_LOCATORS]);
    assert_problems(
        "kubeplex:\n  server:\n    listen: 127.0.0.1:7007\n",
        &[NO_LOCATORS],
    );
    assert_problems("kubernetes:\n", &[NO_LOCATORS]);
    assert_problems(
        "kubernetes:\n  serviceLocatorMethod: {type: multiTenant}\n",
        &[NO_LOCATORS],
    );
    assert_problems("kubernetes:\n  clusterLocatorMethods: []\n", &[NO_LOCATORS]);
}

#[test]
fn no_locator_names_the_last_file_and_check_config_fails() {
    let dir = TempDir::new().unwrap();
    let a = write(dir.path(), "a.yaml", "kubeplex:\n  duplicateNames: first\n");
    let b = write(dir.path(), "b.yaml", "");
    let errs = load(&[&a, &b], &[]).unwrap_err();
    assert_eq!(errs.to_string(), format!("{}: {NO_LOCATORS}", b.display()));
    let (code, out, _) = run(kubeplex().arg("check-config").arg("--config").arg(&a));
    assert_ne!(code, 0);
    assert_eq!(out, format!("{}: {NO_LOCATORS}\n", a.display()));
}

#[test]
fn misspelt_locator_key_is_a_typo_not_an_empty_config() {
    // Only the typo is reported: "no locators" would be noise on top of it.
    assert_problems(
        "kubernetes:\n  clusterLocatorMethod:\n    - type: localKubectlProxy\n",
        &["kubernetes.clusterLocatorMethod: unknown key; did you mean clusterLocatorMethods?"],
    );
    assert_problems(
        "kubernetes:\n  clusterLocatorMethods:\n    - type: localKubectlProxy\n  serviceLocatorMethods: {type: multiTenant}\n  fetchr: {}\n",
        &[
            "kubernetes.serviceLocatorMethods: unknown key; did you mean serviceLocatorMethod?",
            "kubernetes.fetchr: unknown key (expected one of: clusterLocatorMethods)",
        ],
    );
}

#[test]
fn backstage_keys_of_the_kubernetes_block_are_accepted() {
    let dir = TempDir::new().unwrap();
    let f = write(
        dir.path(),
        "app-config.yaml",
        "kubernetes:\n  serviceLocatorMethod: {type: multiTenant}\n  clusterLocatorContinueOnError: true\n  objectTypes: [pods, services]\n  customResources: []\n  apiVersionOverrides: {cronjobs: batch/v1beta1}\n  googleServiceAccountCredentials: '{}'\n  proxy: {middlewareCache: {maxSize: 10}}\n  auth: {environment: production}\n  frontend: {podDelete: {enabled: true}}\n  podExecTerminal: {enabled: true}\n  clusterLocatorMethods:\n    - type: localKubectlProxy\n",
    );
    let s = load(&[&f], &[]).unwrap();
    assert_eq!(s.locators.len(), 1);
}

// ---- kubeplex.auth and the blocks of later stages (issue 8 A1) ----

#[test]
fn auth_mode_none_is_read() {
    let dir = TempDir::new().unwrap();
    let f = write(
        dir.path(),
        "c.yaml",
        &with_locator(
            "kubeplex:\n  auth:\n    mode: none\n    dangerouslyAllowUnauthenticated: true\n",
        ),
    );
    let s = load(&[&f], &[]).unwrap();
    assert_eq!(
        s.auth,
        AuthSettings {
            mode: AuthMode::None,
            dangerously_allow_unauthenticated: true,
            ..Default::default()
        }
    );
    let f = write(dir.path(), "d.yaml", LOCATOR);
    let s = load(&[&f], &[]).unwrap();
    assert_eq!(s.auth, AuthSettings::default());
    assert!(!s.auth.dangerously_allow_unauthenticated);
}

#[test]
fn auth_settings_are_checked() {
    assert_problems(
        &with_locator("kubeplex:\n  auth:\n    mode: jwt\n    jwksUrl: htp:/x\n    mdoe: none\n    dangerouslyAllowUnauthenticated: maybe\n    algorithms: [ES256, none]\n    secrets: [short]\n    leeway: 1h\n    policy:\n      - {subjects: ['user:[a'], verbs: [get, frobnicate], effect: maybe}\n"),
        &[
            "kubeplex.auth.mdoe: unknown key; did you mean mode?",
            "kubeplex.auth.dangerouslyAllowUnauthenticated: expected true or false, got a string",
            "kubeplex.auth.jwksUrl: not a URL: \"htp:/x\"",
            "kubeplex.auth.secrets[0]: must be at least 32 bytes: it verifies HS256 tokens",
            "kubeplex.auth.algorithms: unknown algorithm \"none\" (expected some of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)",
            "kubeplex.auth.leeway: must be at most 5m",
            "kubeplex.auth.policy[0].subjects: not a glob: \"user:[a\": unclosed character class; missing ']'",
            "kubeplex.auth.policy[0].verbs: unknown verb \"frobnicate\" (expected * or some of get, list, watch, create, update, patch, delete, deletecollection, exec, attach, portforward, proxy, log)",
            "kubeplex.auth.policy[0].effect: must be allow or deny, got \"maybe\"",
        ],
    );
    assert_problems(
        &with_locator("kubeplex:\n  auth:\n    mode: oauth\n"),
        &[r#"kubeplex.auth.mode: must be "none" or "jwt", got "oauth""#],
    );
    assert_problems(
        &with_locator("kubeplex:\n  auth:\n    mode: jwt\n"),
        &["kubeplex.auth.mode: jwt needs jwksUrl, jwks, publicKeys, secrets or backend.auth.externalAccess static tokens to verify callers with"],
    );
    assert_problems(
        &with_locator("kubeplex:\n  pluginProxy:\n    argocd: {target: http://argocd}\n"),
        &["kubeplex.pluginProxy.argocd: unknown key (expected one of: plugins, consolePluginFiles, clusterDomain, serviceCaFile, resolve)"],
    );
}

#[test]
fn aggregate_settings_are_read_and_checked() {
    let dir = TempDir::new().unwrap();
    let f = write(
        dir.path(),
        "agg.yaml",
        &with_locator("kubeplex:\n  aggregate:\n    concurrency: 4\n    timeout: 3s\n    cacheTtl: 0s\n    continueKey: ${KEY}\n"),
    );
    let key = "k".repeat(40);
    let s = load(&[&f], &[("KEY", key.as_str())]).unwrap();
    assert_eq!(s.aggregate.concurrency, 4);
    assert_eq!(s.aggregate.timeout, std::time::Duration::from_secs(3));
    assert_eq!(s.aggregate.cache_ttl, std::time::Duration::ZERO);
    assert_eq!(s.aggregate.continue_key.as_ref().unwrap().expose(), key);
    assert!(
        !format!("{s:?}").contains(&key),
        "the key never shows in Debug"
    );
    assert_problems(
        &with_locator("kubeplex:\n  aggregate: {enabled: true, concurrency: 0, timeout: 0s, continueKey: short}\n"),
        &[
            "kubeplex.aggregate.enabled: unknown key (expected one of: concurrency, timeout, cacheTtl, continueKey)",
            "kubeplex.aggregate.concurrency: must be 1 to 256, got 0",
            "kubeplex.aggregate.timeout: must be more than 0",
            "kubeplex.aggregate.continueKey: must be at least 32 bytes (got 5); it signs continue tokens",
        ],
    );
}

// ---- skipTLSVerify with a server-side token (issue 8 A5) ----

#[test]
fn skip_tls_verify_with_a_server_token_is_refused() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "token", "CANARY-token-file\n");
    let clusters = "        - {name: a, url: 'https://a', skipTLSVerify: true, serviceAccountToken: CANARY-sa-token}\n        - {name: b, url: 'https://b', skipTLSVerify: true, tokenFile: token}\n        - {name: c, url: 'https://c', skipTLSVerify: true}\n        - {name: d, url: 'https://d', skipTLSVerify: false, serviceAccountToken: t}\n";
    let f = write(dir.path(), "c.yaml", &clusters_yaml(clusters));
    let text = load(&[&f], &[]).unwrap_err().to_string();
    let file = f.display();
    assert_eq!(
        text,
        format!(
            "{file}: kubernetes.clusterLocatorMethods[0].clusters[0].skipTLSVerify: refused together with serviceAccountToken: a server-side token would be sent to any server that answers; set kubeplex.dangerouslySkipTLSVerifyWithCredentials: true to allow it\n\
             {file}: kubernetes.clusterLocatorMethods[0].clusters[1].skipTLSVerify: refused together with tokenFile: a server-side token would be sent to any server that answers; set kubeplex.dangerouslySkipTLSVerifyWithCredentials: true to allow it"
        )
    );
    assert!(!text.contains("CANARY"), "{text}");
    // The operator's explicit consent.
    let f = write(
        dir.path(),
        "ok.yaml",
        &format!(
            "kubeplex:\n  dangerouslySkipTLSVerifyWithCredentials: true\n{}",
            clusters_yaml(clusters)
        ),
    );
    let s = load(&[&f], &[]).unwrap();
    assert!(s.dangerously_skip_tls_verify_with_credentials);
    let LocatorKind::Config { clusters } = &s.locators[0].kind else {
        panic!("config expected")
    };
    assert!(clusters[0].skip_tls_verify && clusters[1].skip_tls_verify);
    assert!(!Settings::default().dangerously_skip_tls_verify_with_credentials);
}

// ---- maxHeaderBytes within what the HTTP layer accepts (issue 8 B2) ----

#[test]
fn max_header_bytes_bounds() {
    assert_problems(
        &with_locator("kubeplex:\n  server:\n    maxHeaderBytes: 131073\n"),
        &["kubeplex.server.maxHeaderBytes: must be at most 122880 (the HTTP layer refuses request heads of 128 KiB and more), got 131073"],
    );
    assert_problems(
        &with_locator("kubeplex:\n  server:\n    maxHeaderBytes: 1023\n"),
        &["kubeplex.server.maxHeaderBytes: must be at least 1024, got 1023"],
    );
    let dir = TempDir::new().unwrap();
    let f = write(
        dir.path(),
        "c.yaml",
        &with_locator("kubeplex:\n  server:\n    maxHeaderBytes: 122880\n"),
    );
    assert_eq!(load(&[&f], &[]).unwrap().server.max_header_bytes, 122880);
}

// ---- Backstage's $env, $file and $include (issue 8 B4) ----

#[test]
fn env_file_and_include_substitutions() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "conf/secrets/token", "file-token\n");
    write(
        dir.path(),
        "conf/shared/clusters.yaml",
        "all:\n  prod:\n    name: prod\n    url: https://${HOST}\n    tokenFile: tok\n    caFile: {$include: ca.json#pem.path}\n",
    );
    write(dir.path(), "conf/shared/tok", "t");
    write(
        dir.path(),
        "conf/shared/ca.json",
        r#"{"pem": {"path": "ca.pem"}}"#,
    );
    let (cert, _) = cert_pem();
    write(dir.path(), "conf/shared/ca.pem", &cert);
    write(
        dir.path(),
        "conf/server.json",
        r#"{"listen": "127.0.0.1:7100", "basePath": "/k"}"#,
    );
    let f = write(
        dir.path(),
        "conf/app-config.yaml",
        "kubeplex:\n  server: {$include: server.json}\nkubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n        - {$include: 'shared/clusters.yaml#all.prod'}\n        - name: dev\n          url: {$env: DEV_URL}\n          serviceAccountToken: {$file: secrets/token}\n        - name: qa\n          url: https://qa\n          title: {$file: '${SECRETS}/token'}\n",
    );
    let s = load(
        &[&f],
        &[
            ("HOST", "prod.example.com"),
            ("DEV_URL", "https://dev.example.com"),
            ("SECRETS", "secrets"),
        ],
    )
    .unwrap();
    assert_eq!(s.server.listen, "127.0.0.1:7100");
    assert_eq!(s.server.base_path, "/k");
    let LocatorKind::Config { clusters } = &s.locators[0].kind else {
        panic!("config expected")
    };
    let conf = dir.path().join("conf");
    // Relative paths in an included file resolve against its own folder.
    assert_eq!(clusters[0].name, "prod");
    assert_eq!(clusters[0].url, "https://prod.example.com");
    assert_eq!(clusters[0].token_file, Some(conf.join("shared/tok")));
    assert_eq!(clusters[0].ca_file, Some(conf.join("shared/ca.pem")));
    assert_eq!(clusters[1].url, "https://dev.example.com");
    // $file is the file's text as is, as in Backstage.
    assert_eq!(
        clusters[1]
            .service_account_token
            .as_ref()
            .map(|t| t.expose()),
        Some("file-token\n")
    );
    assert_eq!(clusters[2].title.as_deref(), Some("file-token\n"));
    // Reload watches the included files too.
    assert_eq!(
        s.files,
        [
            f.clone(),
            conf.join("server.json"),
            conf.join("shared/clusters.yaml"),
            conf.join("shared/ca.json"),
            conf.join("secrets/token"),
            conf.join("secrets/token"),
        ]
    );
}

#[test]
fn substitution_problems_name_file_and_key_and_never_the_value() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "inc.yaml", "a:\n  b: CANARY-inc-value\n");
    write(dir.path(), "bad.yaml", "token: [CANARY-bad-yaml\n");
    write(dir.path(), "secret.txt", "CANARY-file-content");
    write(
        dir.path(),
        "nested.yaml",
        "name: n\nurl: {$env: CANARY_UNSET}\n",
    );
    let f = write(
        dir.path(),
        "app.yaml",
        "kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n        - name: a\n          url: https://a\n          serviceAccountToken: {$env: FOO}\n          title: {$file: missing.txt}\n          dashboardUrl: {$include: 'inc.yaml#a.c'}\n          dashboardApp: {$include: 'bad.yaml'}\n          tlsServerName: {$include: 'secret.txt'}\n          caData: {$file: secret.txt, other: CANARY-adjacent}\n          oidcTokenProvider: {$secret: CANARY-unknown}\n          authProvider: {$env: [CANARY-list]}\n        - {$include: nested.yaml}\n",
    );
    let errs = load(&[&f], &[("SET", "CANARY-env-value")]).unwrap_err();
    let text = errs.to_string();
    assert!(!text.contains("CANARY-"), "{text}");
    let file = f.display();
    let d = dir.path().display();
    let c = "kubernetes.clusterLocatorMethods[0].clusters";
    let got: Vec<String> = errs.0.iter().map(|p| p.to_string()).collect();
    let head = format!("{file}: {c}[0]");
    let bad_yaml = got
        .iter()
        .find(|l| l.contains("invalid YAML"))
        .cloned()
        .unwrap_or_default();
    assert!(
        bad_yaml.starts_with(&format!(
            "{head}.dashboardApp: $include: invalid YAML in {d}/bad.yaml: "
        )),
        "{got:#?}"
    );
    assert_eq!(
        got,
        [
            format!("{head}.serviceAccountToken: $env: environment variable FOO is not set"),
            format!(
                "{head}.title: $file: cannot read {d}/missing.txt: No such file or directory (os error 2)"
            ),
            format!(r#"{head}.dashboardUrl: $include: key path "a.c" not found in {d}/inc.yaml"#),
            bad_yaml.clone(),
            format!(
                "{head}.tlsServerName: $include: cannot include {d}/secret.txt: no configuration parser for it (the name must end in .yaml, .yml or .json)"
            ),
            format!("{head}.caData: $file must be the only key of its map (found 2 keys)"),
            format!(
                "{head}.oidcTokenProvider: unknown substitution $secret (expected $env, $file, $include)"
            ),
            format!("{head}.authProvider: $env: expected a string, got a list"),
            // A problem inside an included file names that file.
            format!(
                "{d}/nested.yaml: {c}[1].url: $env: environment variable CANARY_UNSET is not set"
            ),
        ]
    );
}

#[test]
fn include_cycles_and_unread_blocks() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "loop.yaml", "x: {$include: loop.yaml}\n");
    let f = write(
        dir.path(),
        "app.yaml",
        "kubernetes:\n  clusterLocatorMethods: [{type: localKubectlProxy}]\n  frontend: {$include: loop.yaml}\n",
    );
    let got = load(&[&f], &[]).unwrap_err().to_string();
    assert!(
        got.ends_with(&format!(
            ": kubernetes.frontend.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x: $include: {}: includes nested more than 16 deep (does a file include itself?)",
            dir.path().join("loop.yaml").display()
        )),
        "{got}"
    );
    // Other Backstage plugins' secrets need not be set for kubeplex: it does not read them.
    let f = write(
        dir.path(),
        "backstage.yaml",
        "backend:\n  baseUrl: http://localhost:7007\n  database:\n    connection:\n      password: ${POSTGRES_PASSWORD}\n  auth:\n    keys:\n      - secret: {$env: BACKEND_SECRET}\n      - secret: {$file: /run/secrets/missing}\nkubernetes:\n  clusterLocatorMethods: [{type: catalog}]\n",
    );
    let s = load(&[&f], &[]).unwrap();
    let LocatorKind::Catalog(c) = &s.locators[0].kind else {
        panic!("catalog expected")
    };
    assert_eq!(c.url, "http://localhost:7007/api/catalog");
}

#[test]
fn backstage_entity_route_settings() {
    let dir = TempDir::new().unwrap();
    let f = write(
        dir.path(),
        "app.yaml",
        r#"
backend: { baseUrl: "http://backstage:7007/" }
kubernetes:
  serviceLocatorMethod: { type: singleTenant }
  objectTypes: [services, pods, secrets]
  apiVersionOverrides: { pods: v2 }
  customResources: [{ group: argoproj.io, apiVersion: v1alpha1, plural: rollouts }]
  clusterLocatorMethods:
    - type: config
      clusters:
        - name: a
          url: https://a.example.com
          skipMetricsLookup: true
          dashboardParameters: { projectId: p1, clusterName: a, zone: [1, 2] }
          customResources: [{ group: x.io, apiVersion: v1, plural: widgets }]
"#,
    );
    let s = load(&[&f], &[]).unwrap();
    let b = &s.backstage;
    assert_eq!(
        b.catalog_url.as_deref(),
        Some("http://backstage:7007/api/catalog")
    );
    assert_eq!(
        b.service_locator,
        kubeplex::config::ServiceLocator::SingleTenant
    );
    // Backstage's order, not the configured one; the override applied.
    let types: Vec<(&str, &str)> = b
        .object_types
        .as_ref()
        .unwrap()
        .iter()
        .map(|t| (t.object_type.as_str(), t.api_version.as_str()))
        .collect();
    assert_eq!(
        types,
        [("secrets", "v1"), ("pods", "v2"), ("services", "v1")]
    );
    assert_eq!(b.custom_resources[0].plural, "rollouts");
    let LocatorKind::Config { clusters } = &s.locators[0].kind else {
        panic!("config locator expected")
    };
    assert!(clusters[0].skip_metrics_lookup);
    assert_eq!(
        clusters[0].dashboard_parameters,
        Some(serde_json::json!({"projectId": "p1", "clusterName": "a", "zone": [1, 2]}))
    );
    assert_eq!(
        clusters[0].custom_resources.as_ref().unwrap()[0].plural,
        "widgets"
    );

    // Every problem at once, with its key path.
    let f = write(
        dir.path(),
        "bad.yaml",
        r#"
kubeplex:
  backstage: { catalogUrl: "htp:/x" }
kubernetes:
  serviceLocatorMethod: { type: http }
  objectTypes: [pods, gadgets]
  customResources: [{ group: argoproj.io, plural: rollouts }]
  clusterLocatorMethods: [{ type: localKubectlProxy }]
"#,
    );
    let got = load(&[&f], &[]).unwrap_err().to_string();
    for want in [
        "kubeplex.backstage.catalogUrl: ",
        "kubernetes.serviceLocatorMethod.type: unsupported service locator \"http\"",
        "kubernetes.objectTypes: unknown object type \"gadgets\"",
        "kubernetes.customResources[0].apiVersion: ",
    ] {
        assert!(got.contains(want), "{want:?} missing from:\n{got}");
    }
}
