//! The plugin service proxy's configuration (SPEC §7, issue 13): ConsolePlugin files as
//! written for the OpenShift console (several documents, other kinds skipped) and inline
//! entries, every CRD validation error and kubeplex's own rules reported at once with file
//! and key path, duplicates refused, file defaults applied.

use kubeplex::config::Source;
use std::path::Path;

/// A YAML (JSON) string scalar.
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// Loads `files` (name, text) from a temporary folder, the first being the configuration,
/// and returns the problems as printed, with the folder's path shown as `DIR`.
fn refused(files: &[(&str, &str)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let errs = kubeplex::config::load_with_env(
        &[Source::File(dir.path().join(files[0].0))],
        &Default::default(),
    )
    .expect_err("refused");
    let d = dir.path().display().to_string();
    errs.0
        .iter()
        .map(|p| p.to_string().replace(&d, "DIR"))
        .collect()
}

#[test]
fn every_crd_validation_error_is_reported_at_once() {
    let bad_pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let plugin_file = r#"# A plugin's manifest: its Deployment is skipped, its ConsolePlugins read.
apiVersion: apps/v1
kind: Deployment
metadata: {name: acm}
---
apiVersion: console.openshift.io/v1
kind: ConsolePlugin
metadata:
  name: acm
spec:
  displayName: ACM
  backend: {type: Service}
  proxy:
    - alias: ''
      endpoint: {type: Service, service: {name: web, namespace: shop, port: 1}}
    - alias: 'has space'
      authorization: Bearer
      endpoint: {type: Route}
    - alias: LONG
      caCertificate: BAD
      endpoint:
        type: Service
        service: {name: '', namespace: NS, port: 0}
    - alias: dup
      caCertificate: not a pem
      endpoint: {type: Service, service: {name: Web_1, port: 70000}}
    - alias: dup
      authorisation: UserToken
      endpoint: {service: {name: web, namespace: shop, port: '8443'}}
      via: sideways
    - alias: nocluster
      endpoint: {type: Service, service: {name: web, namespace: shop, port: 443}}
      cluster: nowhere
    - alias: noendpoint
    - alias: noport
      endpoint: {type: Service, service: {name: web, namespace: shop}}
---
apiVersion: console.openshift.io/v1alpha1
kind: ConsolePlugin
metadata: {name: Old_Name}
spec: {}
---
apiVersion: console.openshift.io/v1
kind: ConsolePlugin
metadata: {name: shop}
spec:
  proxy:
    - {alias: web, endpoint: {type: Service}}
---
apiVersion: console.openshift.io/v1
kind: ConsolePlugin
metadata: {name: inline}
spec: {}
"#
    .replace("LONG", &"a".repeat(129))
    .replace("BAD", &q(bad_pem))
    .replace("NS", &"n".repeat(129));
    let config = "kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n        - {name: a, url: 'http://127.0.0.1:9'}\n        - {name: b, url: 'http://127.0.0.1:9'}\n\
kubeplex:\n  pluginProxy:\n    clusterDomain: 'not a domain'\n    resolve: {'web.shop:8443': 'nowhere', 'no-port': '127.0.0.1:1'}\n    plugins:\n      - name: inline\n        proxy:\n          - {alias: x, endpoint: {type: Service, service: {name: web, namespace: shop, port: 1}}, via: apiserver}\n      - proxy: []\n    consolePluginFiles: [plugins.yaml, missing.yaml, {path: c.yaml, via: up}]\n    extra: 1\n";
    let c_yaml = "apiVersion: console.openshift.io/v1\nkind: ConsolePlugin\nmetadata: {name: cee}\nspec: {}\n";
    let got = refused(&[
        ("kubeplex.yaml", config),
        ("plugins.yaml", &plugin_file),
        ("c.yaml", c_yaml),
    ]);
    let want: Vec<String> = [
        "kubeplex.pluginProxy.extra: unknown key (expected one of: plugins, consolePluginFiles, clusterDomain, serviceCaFile, resolve)",
        r#"kubeplex.pluginProxy.clusterDomain: must be a DNS domain such as cluster.local, got "not a domain""#,
        r#"kubeplex.pluginProxy.resolve.web.shop:8443: must be an address ip:port, such as 127.0.0.1:9443 or [::1]:9443, got "nowhere""#,
        r#"kubeplex.pluginProxy.resolve.no-port: the key must be host:port, such as web.shop.svc.cluster.local:8443, got "no-port""#,
        "kubeplex.pluginProxy.plugins[1].name: required",
    ]
    .iter()
    .map(|s| format!("DIR/kubeplex.yaml: {s}"))
    .chain(
        [
            "documents[1].spec.proxy[0].alias: must not be empty",
            r#"documents[1].spec.proxy[1].alias: must be 1 to 128 characters of A-Z, a-z, 0-9, '-' and '_' (^[A-Za-z0-9-_]+$), got "has space""#,
            r#"documents[1].spec.proxy[1].authorization: must be UserToken or None, got "Bearer""#,
            r#"documents[1].spec.proxy[1].endpoint.type: must be Service (the only endpoint type), got "Route""#,
            "documents[1].spec.proxy[1].endpoint.service: required when type is Service",
        ]
        .iter()
        .map(|s| format!("DIR/plugins.yaml: {s}")),
    )
    .collect();
    // The first lines, in order; the rest checked by content below.
    for (i, w) in want.iter().enumerate() {
        assert_eq!(got.get(i), Some(w), "line {i} of\n{}", got.join("\n"));
    }
    let all = got.join("\n");
    for part in [
        "DIR/plugins.yaml: documents[1].spec.proxy[2].alias: must be 1 to 128 characters",
        "DIR/plugins.yaml: documents[1].spec.proxy[2].caCertificate: not a usable CA certificate:",
        "DIR/plugins.yaml: documents[1].spec.proxy[2].endpoint.service.name: must not be empty",
        "DIR/plugins.yaml: documents[1].spec.proxy[2].endpoint.service.namespace: must be 1 to 128 characters, got 129",
        "DIR/plugins.yaml: documents[1].spec.proxy[2].endpoint.service.port: must be 1 to 65535, got 0",
        "DIR/plugins.yaml: documents[1].spec.proxy[3].caCertificate: must be PEM certificates (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)",
        r#"DIR/plugins.yaml: documents[1].spec.proxy[3].endpoint.service.name: must be a Service name: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit, got "Web_1""#,
        "DIR/plugins.yaml: documents[1].spec.proxy[3].endpoint.service.namespace: required",
        "DIR/plugins.yaml: documents[1].spec.proxy[3].endpoint.service.port: must be 1 to 65535, got 70000",
        "DIR/plugins.yaml: documents[1].spec.proxy[4].authorisation: unknown key; did you mean authorization?",
        "DIR/plugins.yaml: documents[1].spec.proxy[4].endpoint.type: required (Service)",
        r#"DIR/plugins.yaml: documents[1].spec.proxy[4].via: must be direct or apiserver, got "sideways""#,
        "DIR/plugins.yaml: documents[1].spec.proxy[6].endpoint: required",
        "DIR/plugins.yaml: documents[1].spec.proxy[7].endpoint.service.port: required",
        r#"DIR/plugins.yaml: documents[2].apiVersion: must be console.openshift.io/v1 (the version whose spec.proxy kubeplex reads), got "console.openshift.io/v1alpha1""#,
        r#"DIR/plugins.yaml: documents[2].metadata.name: must be a lowercase RFC 1123 subdomain"#,
        "DIR/plugins.yaml: documents[3].spec.proxy[0].endpoint.service: required when type is Service",
        "DIR/kubeplex.yaml: kubeplex.pluginProxy.consolePluginFiles[1]: cannot read DIR/missing.yaml:",
        r#"DIR/kubeplex.yaml: kubeplex.pluginProxy.consolePluginFiles[2].via: must be direct or apiserver, got "up""#,
        r#"DIR/plugins.yaml: documents[4].metadata.name: duplicate plugin name "inline" (first defined at DIR/kubeplex.yaml: kubeplex.pluginProxy.plugins[0].name)"#,
        r#"DIR/kubeplex.yaml: kubeplex.pluginProxy.plugins[0].proxy[0].cluster: required with via: apiserver when there are 2 clusters (config:a, config:b); name one (name or key)"#,
        r#"DIR/plugins.yaml: documents[1].spec.proxy[5].cluster: no cluster has the name or key "nowhere" (clusters: config:a, config:b)"#,
    ] {
        assert!(all.contains(part), "missing {part:?} in\n{all}");
    }
}

#[test]
fn duplicate_aliases_and_plugins_are_refused_and_good_files_are_read() {
    let doc = |name: &str, aliases: &[&str]| {
        let mut s = format!(
            "apiVersion: console.openshift.io/v1\nkind: ConsolePlugin\nmetadata:\n  name: {name}\nspec:\n  i18n: {{loadType: Lazy}}\n  proxy:\n"
        );
        for a in aliases {
            s.push_str(&format!(
                "    - alias: {a}\n      endpoint: {{type: Service, service: {{name: web, namespace: shop, port: 443}}}}\n"
            ));
        }
        s
    };
    let config = "kubernetes:\n  clusterLocatorMethods:\n    - type: localKubectlProxy\nkubeplex:\n  pluginProxy:\n    consolePluginFiles: [a.yaml, {path: b.yaml, cluster: local, via: apiserver}]\n";
    let got = refused(&[
        ("kubeplex.yaml", config),
        (
            "a.yaml",
            &format!(
                "{}---\n{}",
                doc("one", &["x", "y", "x"]),
                doc("two", &["x"])
            ),
        ),
        ("b.yaml", &doc("two", &["z"])),
    ]);
    assert_eq!(
        got,
        [
            r#"DIR/b.yaml: metadata.name: duplicate plugin name "two" (first defined at DIR/a.yaml: documents[1].metadata.name)"#,
            r#"DIR/a.yaml: documents[0].spec.proxy[2].alias: duplicate alias "x" in plugin "one" (also proxy[0]); aliases must be unique per plugin"#,
        ]
    );
    // Valid: file defaults apply to the entries.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kubeplex.yaml"), config).unwrap();
    std::fs::write(
        dir.path().join("a.yaml"),
        format!("{}---\n{}", doc("one", &["x", "y"]), doc("two", &["x"])),
    )
    .unwrap();
    std::fs::write(dir.path().join("b.yaml"), doc("three", &["z"])).unwrap();
    let s = kubeplex::config::load_with_env(
        &[Source::File(dir.path().join("kubeplex.yaml"))],
        &[(
            "KUBEPLEX_SERVICE_ACCOUNT_DIR".to_string(),
            "/sa".to_string(),
        )]
        .into_iter()
        .collect(),
    )
    .unwrap();
    let pp = &s.plugin_proxy;
    let names: Vec<&str> = pp.plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["one", "two", "three"]);
    assert_eq!(pp.cluster_domain, "cluster.local");
    assert_eq!(pp.service_ca_file, Path::new("/sa/service-ca.crt"));
    let z = &pp.plugins[2].proxy[0];
    assert_eq!(z.cluster.as_deref(), Some("local"));
    assert_eq!(z.via, kubeplex::config::plugin_proxy::Via::Apiserver);
    assert_eq!(
        pp.plugins[0].proxy[0].authorization,
        kubeplex::config::plugin_proxy::Authorization::None
    );
    // Both ConsolePlugin files are watched.
    for f in ["a.yaml", "b.yaml"] {
        assert!(
            s.files.iter().any(|p| p.ends_with(f)),
            "{f} not watched: {:?}",
            s.files
        );
    }
}
