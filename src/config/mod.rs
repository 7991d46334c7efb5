//! Configuration: YAML files (later wins), `${VAR}` substitution and Backstage's `$env`,
//! `$file` and `$include`, `KUBEPLEX_` environment overrides, Backstage `app-config.yaml`
//! compatibility, and validation that reports every problem at once with the file and key
//! path.
//!
//! [`load`] turns files into a validated [`Settings`]; the types in `model` are what the
//! rest of kubeplex reads. The stages: [`tree`] (parse, substitute, merge with provenance)
//! with `substitute` (`$env`, `$file`, `$include`), [`env`] (`KUBEPLEX_` overrides), then
//! the readers in `read` used by `server` (`kubeplex:`), `locators` (`kubernetes:`)
//! and `tls_material`.
//!
//! The layering is not built on the `config` crate: its merged values keep no record of
//! which file (or which `$include`d file) set each key, so its errors could not name the
//! file and key path as every message here does; the tree in [`tree`] keeps an origin per
//! node instead.
//!
//! Adding a `kubeplex.*` block: accept its key in `server`, give it a typed field in
//! `model`, read it with `read::Obj` in `validate` below (as [`plugin_proxy`] reads
//! `kubeplex.pluginProxy`), and its problems are reported with file and key path like
//! every other.

pub(crate) mod backstage;
pub(crate) mod env;
pub(crate) mod locators;
pub(crate) mod model;
pub mod plugin_proxy;
pub(crate) mod read;
pub(crate) mod server;
pub(crate) mod substitute;
pub(crate) mod tls_material;
pub mod tree;

pub use model::*;
pub use plugin_proxy::PluginProxySettings;

use read::{Obj, Problems};
use std::path::PathBuf;
use std::sync::Arc;
use tree::{Env, Node, Origin, Value};

/// The embedded default configuration, served by `kubeplex` with no `--config`.
pub(crate) const DEFAULT_CONFIG: &str = include_str!("../../config/default.yaml");

/// The name the embedded default goes by in messages.
pub(crate) const DEFAULT_NAME: &str = "<embedded default>";

/// One configuration problem: file, key path and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file the offending key came from (`<embedded default>` for the default,
    /// `environment variable X` for an override).
    pub file: String,
    /// Dotted key path with indexes: `kubernetes.clusterLocatorMethods[0].clusters[2].url`;
    /// empty for a problem with the whole file.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: {}: {}", self.file, self.key, self.message)
        }
    }
}

/// Every problem found while loading a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<Problem>);

/// Where the configuration comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A YAML file on disk; relative paths in it resolve against its folder.
    File(PathBuf),
    /// Inline YAML text with a name for messages (tests); relative paths resolve against
    /// the current directory.
    Inline { name: String, text: String },
    /// The embedded default (`DEFAULT_CONFIG`).
    Embedded,
}

/// Loads, merges and validates the given sources (later wins), with `${VAR}` and
/// `KUBEPLEX_` overrides from the process environment. With no sources, the embedded
/// default is used.
pub fn load(sources: &[Source]) -> Result<Settings, ConfigErrors> {
    load_with_env(sources, &std::env::vars().collect())
}

/// [`load`] with an explicit environment (tests, reload).
pub fn load_with_env(sources: &[Source], env: &Env) -> Result<Settings, ConfigErrors> {
    let default = [Source::Embedded];
    let sources = if sources.is_empty() {
        &default[..]
    } else {
        sources
    };
    let mut problems = Problems::default();
    let mut root: Option<Node> = None;
    let mut files = Vec::new();
    let mut fatal = false;
    for source in sources {
        let (origin, text) = match source {
            Source::File(path) => {
                let abs = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                files.push(abs.clone());
                let origin = Origin {
                    name: path.display().to_string(),
                    dir: abs.parent().map(|d| d.to_path_buf()),
                    embedded: false,
                };
                match std::fs::read_to_string(path) {
                    Ok(t) => (origin, t),
                    Err(e) => {
                        fatal = true;
                        problems.0.push(Problem {
                            file: origin.name,
                            key: String::new(),
                            message: format!("cannot read: {e}"),
                        });
                        continue;
                    }
                }
            }
            Source::Inline { name, text } => (
                Origin {
                    name: name.clone(),
                    dir: None,
                    embedded: false,
                },
                text.clone(),
            ),
            Source::Embedded => (
                Origin {
                    name: DEFAULT_NAME.into(),
                    dir: None,
                    embedded: true,
                },
                DEFAULT_CONFIG.to_string(),
            ),
        };
        let origin = Arc::new(origin);
        let mut yaml: serde_yaml::Value = match serde_yaml::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                fatal = true;
                problems.0.push(Problem {
                    file: origin.name.clone(),
                    key: String::new(),
                    message: format!("invalid YAML: {e}"),
                });
                continue;
            }
        };
        if let Err(e) = yaml.apply_merge() {
            fatal = true;
            problems.0.push(Problem {
                file: origin.name.clone(),
                key: String::new(),
                message: format!("invalid YAML merge key: {e}"),
            });
            continue;
        }
        let mut file_problems = Vec::new();
        let mut conv = tree::Converter::new(env, &mut file_problems);
        let mut node = conv.node(yaml, &origin, "");
        files.append(&mut conv.files);
        // Problems in blocks kubeplex does not read (another Backstage plugin's
        // `${SECRET}` that is only set for Backstage) are not kubeplex's to report.
        problems.0.extend(
            file_problems
                .into_iter()
                .filter(|p| read_by_kubeplex(&p.key)),
        );
        match node.value {
            Value::Map(_) => {}
            Value::Null => node = Node::empty_map(origin.clone()),
            // Already reported (a top-level `$include` that failed).
            Value::Invalid => {
                fatal = true;
                continue;
            }
            _ => {
                fatal = true;
                problems.0.push(Problem {
                    file: origin.name.clone(),
                    key: String::new(),
                    message: format!("expected a map at the top level, got {}", node.value.kind()),
                });
                continue;
            }
        }
        match &mut root {
            None => root = Some(node),
            Some(r) => tree::merge(r, node),
        }
    }
    if fatal {
        return Err(ConfigErrors(problems.0));
    }
    let mut root = root.unwrap_or_else(|| {
        Node::empty_map(Arc::new(Origin {
            name: DEFAULT_NAME.into(),
            dir: None,
            embedded: true,
        }))
    });
    env::apply(&mut root, env, &mut problems);
    let mut settings = validate(&root, env, &mut problems);
    if problems.0.is_empty() {
        // The ConsolePlugin files `validate` read are watched too; and the service CA
        // bundle, when its folder exists (it may appear, or rotate, later).
        files.append(&mut settings.files);
        let ca = &settings.plugin_proxy.service_ca_file;
        if ca.parent().is_some_and(|d| d.is_dir()) && !settings.plugin_proxy.plugins.is_empty() {
            files.push(std::path::absolute(ca).unwrap_or_else(|_| ca.clone()));
        }
        settings.files = files;
        Ok(settings)
    } else {
        Err(ConfigErrors(problems.0))
    }
}

/// Whether kubeplex reads the key path `key` (the whole file, `kubernetes`, `kubeplex` or
/// `backend.baseUrl`).
fn read_by_kubeplex(key: &str) -> bool {
    let under = |block: &str| {
        key.strip_prefix(block)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
    };
    key.is_empty()
        || under("kubernetes")
        || under("kubeplex")
        || under("backend.baseUrl")
        || under("backend.auth.externalAccess")
        || under("backend.cors")
        || key == "backend"
        || key == "backend.auth"
}

/// Validates the merged tree into [`Settings`], recording every problem.
fn validate(root: &Node, env: &Env, p: &mut Problems) -> Settings {
    let mut settings = Settings::default();
    let home = env.get("HOME").map(String::as_str);
    let Some(top) = Obj::new(root, "", p) else {
        return settings;
    };
    let kubeplex = top.obj("kubeplex", p);
    if let Some(kp) = &kubeplex {
        server::read_kubeplex(kp, home, &mut settings, p);
    }
    let backstage_catalog =
        top.get("backend")
            .and_then(|b| b.get("baseUrl"))
            .and_then(|n| match &n.value {
                Value::Str(s) if !s.is_empty() => {
                    Some(format!("{}/api/catalog", s.trim_end_matches('/')))
                }
                _ => None,
            });
    if settings.server.cors.is_none() {
        // Backstage's own `backend.cors`, read as is (`kubeplex.server.cors` wins).
        if let Some(c) = top
            .obj("backend", p)
            .and_then(|b| b.get("cors").is_some().then(|| b.obj("cors", p)).flatten())
        {
            settings.server.cors = Some(server::read_cors(&c, p));
        }
    }
    let kubernetes = top.obj("kubernetes", p);
    settings.auth.jwt.static_tokens = server::read_external_access(&top, p);
    server::check_jwt(&top, &settings.auth, p);
    settings.backstage = backstage::read(
        kubernetes.as_ref(),
        kubeplex.as_ref(),
        backstage_catalog.clone(),
        p,
    );
    let ctx = locators::Ctx {
        home,
        backstage_catalog,
        allow_skip_tls_verify_with_credentials: settings
            .dangerously_skip_tls_verify_with_credentials,
    };
    match kubernetes {
        Some(k) => settings.locators = locators::read_kubernetes(&k, &ctx, p),
        // No `kubernetes:` block (an empty file, or only other blocks): no clusters.
        None if !top.has("kubernetes") => {
            top.problem("kubernetes.clusterLocatorMethods", locators::NO_LOCATORS, p)
        }
        None => {}
    }
    if settings.auth.mode != AuthMode::Jwt {
        for (i, l) in settings.locators.iter().enumerate() {
            let LocatorKind::Config { clusters } = &l.kind else {
                continue;
            };
            for (j, c) in clusters.iter().enumerate() {
                if c.impersonate {
                    top.problem(
                        &format!("kubernetes.clusterLocatorMethods[{i}].clusters[{j}].impersonate"),
                        "needs kubeplex.auth.mode jwt (there is no verified user to impersonate)",
                        p,
                    );
                }
            }
        }
    }
    if let Some(pp) = kubeplex.as_ref().and_then(|kp| kp.obj("pluginProxy", p)) {
        // The ConsolePlugin files read go to `settings.files` (watched for reload).
        settings.plugin_proxy = plugin_proxy::read(&pp, home, env, &mut settings.files, p);
        plugin_proxy::check_static_clusters(&settings.plugin_proxy, &settings.locators, p);
    }
    settings
}

/// A short human summary of a valid configuration, for `kubeplex check-config`.
pub fn summary(s: &Settings) -> String {
    let mut out = format!(
        "configuration OK: listen {}, base path {}, duplicateNames {}, {} locator{}",
        s.server.listen,
        s.server.base_path,
        match s.duplicate_names {
            DuplicateNames::First => "first",
            DuplicateNames::Reject => "reject",
        },
        s.locators.len(),
        if s.locators.len() == 1 { "" } else { "s" },
    );
    for l in &s.locators {
        let (ty, what) = match &l.kind {
            LocatorKind::Config { clusters } => {
                ("config", names(clusters.iter().map(|c| c.name.as_str())))
            }
            LocatorKind::LocalKubectlProxy => ("localKubectlProxy", "1 cluster: local".into()),
            LocatorKind::Kubeconfig { paths, contexts } => (
                "kubeconfig",
                format!(
                    "{}{}",
                    paths
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    match contexts {
                        Some(c) => format!(" (contexts: {})", c.join(", ")),
                        None => String::new(),
                    }
                ),
            ),
            LocatorKind::Catalog(c) => (
                "catalog",
                format!(
                    "{}, refreshed every {}",
                    crate::redact::url_text(&c.url),
                    humantime::format_duration(c.refresh_interval)
                ),
            ),
            LocatorKind::Simulated { clusters } => {
                ("simulated", names(clusters.iter().map(|c| c.name.as_str())))
            }
        };
        out.push_str(&format!("\n  {} ({ty}): {what}", l.id));
    }
    if !s.plugin_proxy.plugins.is_empty() {
        let plugins: Vec<String> = s
            .plugin_proxy
            .plugins
            .iter()
            .map(|p| {
                let aliases: Vec<&str> = p.proxy.iter().map(|e| e.alias.as_str()).collect();
                format!("{} ({})", p.name, aliases.join(", "))
            })
            .collect();
        out.push_str(&format!("\n  pluginProxy: {}", plugins.join(", ")));
    }
    out
}

fn names<'a>(it: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = it.collect();
    format!(
        "{} cluster{}{}{}",
        v.len(),
        if v.len() == 1 { "" } else { "s" },
        if v.is_empty() { "" } else { ": " },
        v.join(", ")
    )
}
