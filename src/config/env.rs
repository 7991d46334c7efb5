//! `KUBEPLEX_`-prefixed environment variables for the `kubeplex.server` settings and
//! `kubeplex.duplicateNames`, applied after the files. Environment keys are upper case
//! and Backstage's keys camelCase, so the mapping is explicit: `KUBEPLEX_SERVER_BASEPATH`
//! and `KUBEPLEX_SERVER_BASE_PATH` both set `kubeplex.server.basePath`.

use super::read::Problems;
use super::server::SERVER_KEYS;
use super::tree::{Env, Node, Origin, Value};
use std::sync::Arc;

const SERVER_PREFIX: &str = "KUBEPLEX_SERVER_";

/// The settings that can be set from the environment, as `(variable, key path)`.
pub(crate) fn variables() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for k in SERVER_KEYS.iter().filter(|k| !["tls", "cors"].contains(*k)) {
        out.push((
            format!("{SERVER_PREFIX}{}", k.to_ascii_uppercase()),
            format!("kubeplex.server.{k}"),
        ));
    }
    out.push((
        "KUBEPLEX_SERVER_TLS_CERTFILE".into(),
        "kubeplex.server.tls.certFile".into(),
    ));
    out.push((
        "KUBEPLEX_SERVER_TLS_KEYFILE".into(),
        "kubeplex.server.tls.keyFile".into(),
    ));
    out.push((
        "KUBEPLEX_DUPLICATENAMES".into(),
        "kubeplex.duplicateNames".into(),
    ));
    out
}

fn normalize(var: &str) -> String {
    var.replace('_', "").to_ascii_uppercase()
}

/// Applies the overrides found in `env` to `root`. An unknown `KUBEPLEX_SERVER_*`
/// variable is a problem (most likely a typo).
pub(crate) fn apply(root: &mut Node, env: &Env, p: &mut Problems) {
    let known = variables();
    let mut vars: Vec<(&String, &String)> = env
        .iter()
        .filter(|(k, _)| k.starts_with("KUBEPLEX_"))
        .collect();
    vars.sort();
    for (var, value) in vars {
        let origin = Arc::new(Origin {
            name: format!("environment variable {var}"),
            dir: None,
            embedded: false,
        });
        let found = known
            .iter()
            .find(|(k, _)| normalize(k) == normalize(var))
            .map(|(_, path)| path.clone());
        let Some(path) = found else {
            if var.starts_with(SERVER_PREFIX) {
                let names: Vec<_> = known.iter().map(|(k, _)| k.as_str()).collect();
                p.at(
                    &Node::empty_map(origin),
                    "kubeplex.server",
                    format!("unknown setting (expected one of: {})", names.join(", ")),
                );
            }
            continue;
        };
        let parts: Vec<&str> = path.split('.').collect();
        let (last, parents) = parts.split_last().expect("paths have a key");
        let mut node = &mut *root;
        for part in parents {
            node = node.entry_map(part, &origin);
        }
        node.set(
            last,
            Node {
                value: Value::Str(value.clone()),
                origin,
            },
        );
    }
}
