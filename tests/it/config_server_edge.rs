//! `kubeplex.server.trustedProxies` (SPEC §11) and the bounds of `maxHeaderBytes` (issue 8
//! A4, B2): read from files and from `KUBEPLEX_SERVER_TRUSTEDPROXIES`, and every mistake
//! reported with its file and key.

use kubeplex::config::{load_with_env, tree::Env, ConfigErrors, Settings, Source};
use std::path::{Path, PathBuf};
use tempfile::TempDir;

const CLUSTERS: &str = "kubernetes:\n  clusterLocatorMethods:\n    - type: config\n      clusters:\n        - {name: a, url: 'https://a.example'}\n";

fn write(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("app-config.yaml");
    std::fs::write(&p, format!("{text}{CLUSTERS}")).unwrap();
    p
}

fn load(text: &str, vars: &[(&str, &str)]) -> (PathBuf, Result<Settings, ConfigErrors>) {
    let dir = TempDir::new().unwrap();
    let f = write(dir.path(), text);
    let env: Env = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let r = load_with_env(&[Source::File(f.clone())], &env);
    (f, r)
}

fn problems(text: &str, vars: &[(&str, &str)]) -> (String, Vec<String>) {
    let (f, r) = load(text, vars);
    let errs = r.expect_err("config must be refused");
    (
        f.display().to_string(),
        errs.0.iter().map(|p| p.to_string()).collect(),
    )
}

fn nets(s: &Settings) -> Vec<String> {
    s.server
        .trusted_proxies
        .iter()
        .map(|n| n.to_string())
        .collect()
}

#[test]
fn trusted_proxies_default_to_none() {
    let (_, r) = load("", &[]);
    assert!(r.unwrap().server.trusted_proxies.is_empty());
}

#[test]
fn trusted_proxies_as_cidrs_and_addresses() {
    let (_, r) = load(
        "kubeplex:\n  server:\n    trustedProxies: [10.0.0.0/8, 192.0.2.7, 'fd00::/8', '::1', 10.1.2.3/16]\n",
        &[],
    );
    assert_eq!(
        nets(&r.unwrap()),
        [
            "10.0.0.0/8",
            "192.0.2.7/32",
            "fd00::/8",
            "::1/128",
            "10.1.0.0/16"
        ]
    );
}

#[test]
fn trusted_proxies_from_the_environment() {
    let (_, r) = load(
        "kubeplex:\n  server:\n    trustedProxies: [10.0.0.0/8]\n",
        &[("KUBEPLEX_SERVER_TRUSTEDPROXIES", "172.16.0.0/12, 127.0.0.1")],
    );
    assert_eq!(nets(&r.unwrap()), ["172.16.0.0/12", "127.0.0.1/32"]);
    let (_, errs) = problems(
        "",
        &[("KUBEPLEX_SERVER_TRUSTED_PROXIES", "10.0.0.0/8,proxy.corp")],
    );
    assert_eq!(
        errs,
        [
            r#"environment variable KUBEPLEX_SERVER_TRUSTED_PROXIES: kubeplex.server.trustedProxies: must be a CIDR such as 10.0.0.0/8 or fd00::/8, or an IP address, got "proxy.corp""#
        ]
    );
}

#[test]
fn bad_trusted_proxies_are_named_with_file_and_key() {
    let (file, errs) = problems(
        "kubeplex:\n  server:\n    trustedProxies: [10.0.0.0/8, 10.0.0.0/33, proxy.corp, [1]]\n",
        &[],
    );
    assert_eq!(
        errs,
        [
            format!(
                r#"{file}: kubeplex.server.trustedProxies[1]: must be a CIDR such as 10.0.0.0/8 or fd00::/8, or an IP address, got "10.0.0.0/33""#
            ),
            format!(
                r#"{file}: kubeplex.server.trustedProxies[2]: must be a CIDR such as 10.0.0.0/8 or fd00::/8, or an IP address, got "proxy.corp""#
            ),
            format!("{file}: kubeplex.server.trustedProxies[3]: expected a string, got a list"),
        ]
    );
    let (file, errs) = problems("kubeplex:\n  server:\n    trustedProxies: {a: 1}\n", &[]);
    assert_eq!(
        errs,
        [format!(
            "{file}: kubeplex.server.trustedProxies: expected a list, got a map"
        )]
    );
}

#[test]
fn max_header_bytes_above_the_http_layer_limit_is_refused() {
    let (file, errs) = problems("kubeplex:\n  server:\n    maxHeaderBytes: 200000\n", &[]);
    assert_eq!(
        errs,
        [format!("{file}: kubeplex.server.maxHeaderBytes: must be at most 122880 (the HTTP layer refuses request heads of 128 KiB and more), got 200000")]
    );
    let (_, r) = load("kubeplex:\n  server:\n    maxHeaderBytes: 122880\n", &[]);
    assert_eq!(r.unwrap().server.max_header_bytes, 122880);
}
