//! The `kubeconfig` locator: every context of one or more kubeconfig files becomes a
//! cluster named after the context, with that context's cluster (server URL including its
//! path, CA, `insecure-skip-tls-verify`, `tls-server-name`) and user (client certificate
//! and key, `token`, `tokenFile`).
//!
//! A context that cannot be used (undefined cluster or user, unreadable file, bad URL) is
//! skipped with a warning, or refused when the `contexts` filter names it.
//!
//! Several files merge as kubectl merges `KUBECONFIG`: the first definition of a cluster,
//! user or context name wins, and a context may use a cluster or user of another file.
//! Relative file paths resolve against the folder of the file that holds them, as kubectl
//! does. Users with `exec` or `auth-provider` plugins load with a warning and no server
//! credential: the caller's own token is used for them.

use super::LocateError as Error;
use crate::cluster::{ClusterSpec, ServerCredential};
use crate::tls::pem::decode_base64;
use crate::tls::TlsSettings;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize, Default)]
struct KubeConfig {
    #[serde(default)]
    clusters: Option<Vec<NamedCluster>>,
    #[serde(default)]
    users: Option<Vec<NamedUser>>,
    #[serde(default)]
    contexts: Option<Vec<NamedContext>>,
}

#[derive(Debug, Deserialize)]
struct NamedCluster {
    name: String,
    cluster: Cluster,
}

#[derive(Debug, Deserialize)]
struct NamedUser {
    name: String,
    #[serde(default)]
    user: User,
}

#[derive(Debug, Deserialize)]
struct NamedContext {
    name: String,
    context: Context,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct Cluster {
    #[serde(default)]
    server: String,
    certificate_authority: Option<String>,
    certificate_authority_data: Option<String>,
    #[serde(default)]
    insecure_skip_tls_verify: bool,
    tls_server_name: Option<String>,
    proxy_url: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct User {
    client_certificate: Option<String>,
    client_certificate_data: Option<String>,
    client_key: Option<String>,
    client_key_data: Option<String>,
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<String>,
    username: Option<String>,
    exec: Option<serde_yaml::Value>,
    auth_provider: Option<serde_yaml::Value>,
}

#[derive(Debug, Deserialize)]
struct Context {
    cluster: String,
    #[serde(default)]
    user: Option<String>,
}

/// A definition with the folder its relative paths resolve against.
struct Sourced<'a, T> {
    file: &'a Path,
    dir: PathBuf,
    item: &'a T,
}

fn fail(locator: &str, msg: String) -> Error {
    Error::Locator {
        locator: locator.to_owned(),
        message: msg,
    }
}

/// Reads the kubeconfig files and turns their contexts (all, or those in `contexts`, in
/// file order) into cluster specs.
pub fn locate(
    locator: &str,
    paths: &[PathBuf],
    contexts: Option<&[String]>,
) -> Result<Vec<ClusterSpec>, Error> {
    let mut files = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(p).map_err(|e| {
            fail(
                locator,
                format!("cannot read kubeconfig {}: {e}", p.display()),
            )
        })?;
        let kc: KubeConfig = if text.trim().is_empty() {
            KubeConfig::default()
        } else {
            serde_yaml::from_str(&text).map_err(|e| {
                fail(
                    locator,
                    format!("kubeconfig {} is not valid: {e}", p.display()),
                )
            })?
        };
        files.push((p.clone(), kc));
    }
    let mut clusters: HashMap<&str, Sourced<Cluster>> = HashMap::new();
    let mut users: HashMap<&str, Sourced<User>> = HashMap::new();
    let mut ctxs: Vec<(&str, Sourced<Context>)> = Vec::new();
    for (path, kc) in &files {
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        for c in kc.clusters.iter().flatten() {
            clusters.entry(&c.name).or_insert(Sourced {
                file: path,
                dir: dir.clone(),
                item: &c.cluster,
            });
        }
        for u in kc.users.iter().flatten() {
            users.entry(&u.name).or_insert(Sourced {
                file: path,
                dir: dir.clone(),
                item: &u.user,
            });
        }
        for c in kc.contexts.iter().flatten() {
            if !ctxs.iter().any(|(n, _)| *n == c.name) {
                ctxs.push((
                    &c.name,
                    Sourced {
                        file: path,
                        dir: dir.clone(),
                        item: &c.context,
                    },
                ));
            }
        }
    }
    if let Some(wanted) = contexts {
        for w in wanted {
            if !ctxs.iter().any(|(n, _)| n == w) {
                return Err(fail(
                    locator,
                    format!(
                        "context {w:?} not found in {}",
                        paths
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
    }
    let mut out = Vec::new();
    for (name, ctx) in &ctxs {
        if let Some(wanted) = contexts {
            if !wanted.iter().any(|w| w == name) {
                continue;
            }
        }
        match context_spec(locator, name, ctx, &clusters, &users) {
            Ok(spec) => out.push(spec),
            // A context named in `contexts` must work; among all contexts, stale ones
            // (a deleted cluster, a moved certificate) are common and kubectl tolerates
            // them until used, so they are skipped with a warning.
            Err(e) if contexts.is_some() => return Err(e),
            Err(e) => tracing::warn!("skipping a kubeconfig context: {e}"),
        }
    }
    Ok(out)
}

fn resolve(dir: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

/// `-data` (base64) wins over the file, as in kubectl.
fn material(
    what: &str,
    data: &Option<String>,
    file: &Option<String>,
    dir: &Path,
) -> Result<Option<Vec<u8>>, String> {
    match (data, file) {
        (Some(d), _) if !d.is_empty() => decode_base64(d)
            .map(Some)
            .map_err(|e| format!("{what}-data: {e}")),
        (_, Some(f)) if !f.is_empty() => {
            let path = resolve(dir, f);
            std::fs::read(&path)
                .map(Some)
                .map_err(|e| format!("{what}: cannot read {}: {e}", path.display()))
        }
        _ => Ok(None),
    }
}

fn context_spec(
    locator: &str,
    name: &str,
    ctx: &Sourced<Context>,
    clusters: &HashMap<&str, Sourced<Cluster>>,
    users: &HashMap<&str, Sourced<User>>,
) -> Result<ClusterSpec, Error> {
    let here = |msg: String| {
        fail(
            locator,
            format!("kubeconfig {}: context {name:?}: {msg}", ctx.file.display()),
        )
    };
    let cluster = clusters
        .get(ctx.item.cluster.as_str())
        .ok_or_else(|| here(format!("cluster {:?} is not defined", ctx.item.cluster)))?;
    let c = cluster.item;
    let url = crate::config::locators::check_url(&c.server)
        .map_err(|e| here(format!("cluster {:?}: server: {e}", ctx.item.cluster)))?;
    if c.proxy_url.is_some() {
        tracing::warn!(
            locator,
            context = name,
            "kubeconfig proxy-url is not supported; connecting directly"
        );
    }
    let ca_pem = material(
        "certificate-authority",
        &c.certificate_authority_data,
        &c.certificate_authority,
        &cluster.dir,
    )
    .map_err(|e| here(format!("cluster {:?}: {e}", ctx.item.cluster)))?;
    let mut spec = ClusterSpec::new(name, url);
    spec.tls = TlsSettings {
        ca_pem,
        skip_verify: c.insecure_skip_tls_verify,
        server_name: c.tls_server_name.clone().filter(|s| !s.is_empty()),
        client_cert_pem: None,
        client_key_pem: None,
        http1_only: false,
    };
    let Some(user_name) = ctx.item.user.as_deref().filter(|u| !u.is_empty()) else {
        return Ok(spec);
    };
    let user = users
        .get(user_name)
        .ok_or_else(|| here(format!("user {user_name:?} is not defined")))?;
    let u = user.item;
    let uhere = |e: String| here(format!("user {user_name:?}: {e}"));
    spec.tls.client_cert_pem = material(
        "client-certificate",
        &u.client_certificate_data,
        &u.client_certificate,
        &user.dir,
    )
    .map_err(uhere)?;
    spec.tls.client_key_pem = material("client-key", &u.client_key_data, &u.client_key, &user.dir)
        .map_err(uhere)?
        .map(Into::into);
    if spec.tls.client_cert_pem.is_some() != spec.tls.client_key_pem.is_some() {
        return Err(uhere(
            "a client certificate needs both client-certificate and client-key".into(),
        ));
    }
    spec.credential = match (&u.token, &u.token_file) {
        (Some(t), _) if !t.is_empty() => ServerCredential::token(t.as_str()),
        (_, Some(f)) if !f.is_empty() => ServerCredential::TokenFile(resolve(&user.dir, f)),
        _ => ServerCredential::None,
    };
    if spec.credential == ServerCredential::None {
        let plugin = if u.exec.is_some() {
            Some("an exec plugin")
        } else if u.auth_provider.is_some() {
            Some("an auth-provider plugin")
        } else if u.username.is_some() {
            Some("basic auth (username/password)")
        } else {
            None
        };
        if let Some(plugin) = plugin {
            tracing::warn!(
                locator,
                context = name,
                user = user_name,
                "kubeconfig user uses {plugin}, which kubeplex does not run; \
                 requests to this cluster carry the caller's own token"
            );
        }
    }
    Ok(spec)
}
