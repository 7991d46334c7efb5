//! The registry: every located cluster in routing order, each with its unique key
//! `<locatorId>:<name>`, and the rules of SPEC §2 for choosing one from a header or path
//! value.

use crate::config::DuplicateNames;
use crate::locate::{ClusterSpec, Located};
use crate::status::Error;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// A cluster's unique, stable key: `<locatorId>:<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterKey(Arc<str>);

impl ClusterKey {
    /// The key of cluster `name` found by locator `locator`.
    pub fn new(locator: &str, name: &str) -> Self {
        ClusterKey(format!("{locator}:{name}").into())
    }
    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for ClusterKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One cluster in the registry.
#[derive(Debug)]
pub struct Cluster {
    /// Unique key.
    pub key: ClusterKey,
    /// Id of the locator that found it.
    pub locator: String,
    /// Whether another cluster shares its name.
    pub ambiguous: bool,
    /// Its definition.
    pub spec: ClusterSpec,
    /// The key as a `Kubeplex-Cluster` header value, built once (`None` if the key has
    /// characters a header cannot carry).
    pub key_header: Option<actix_web::http::header::HeaderValue>,
}

/// The result of choosing a cluster.
#[derive(Debug, Clone)]
pub struct Choice {
    /// The chosen cluster.
    pub cluster: Arc<Cluster>,
    /// A `Warning` header value when the name was ambiguous.
    pub warning: Option<String>,
}

/// The ordered clusters and their lookup tables.
#[derive(Debug, Default)]
pub struct Registry {
    clusters: Vec<Arc<Cluster>>,
    by_key: HashMap<ClusterKey, usize>,
    by_name: HashMap<String, Vec<usize>>,
    duplicate_names: DuplicateNames,
}

impl Registry {
    /// Builds the registry from locator results in order.
    pub fn new(located: &[Located], duplicate_names: DuplicateNames) -> Self {
        let mut specs = Vec::new();
        for l in located {
            for c in &l.clusters {
                specs.push((l.locator.clone(), c.clone()));
            }
        }
        let mut name_count: HashMap<&str, usize> = HashMap::new();
        for (_, s) in &specs {
            *name_count.entry(s.name.as_str()).or_default() += 1;
        }
        let ambiguous: Vec<bool> = specs
            .iter()
            .map(|(_, s)| name_count[s.name.as_str()] > 1)
            .collect();
        let mut reg = Registry {
            duplicate_names,
            ..Default::default()
        };
        for ((locator, spec), ambiguous) in specs.into_iter().zip(ambiguous) {
            let key = ClusterKey::new(&locator, &spec.name);
            if reg.by_key.contains_key(&key) {
                // Same locator, same name: config validation refuses this for `config`
                // locators; for others the first wins and the rest stay unreachable by key.
                tracing::warn!(cluster = %key, "duplicate cluster key; keeping the first");
                continue;
            }
            let idx = reg.clusters.len();
            reg.by_key.insert(key.clone(), idx);
            reg.by_name.entry(spec.name.clone()).or_default().push(idx);
            reg.clusters.push(Arc::new(Cluster {
                key_header: actix_web::http::header::HeaderValue::from_str(key.as_str()).ok(),
                key,
                locator,
                ambiguous,
                spec,
            }));
        }
        reg
    }

    /// Every cluster in routing order.
    pub fn clusters(&self) -> &[Arc<Cluster>] {
        &self.clusters
    }

    /// The cluster with this exact key.
    pub fn get(&self, key: &str) -> Option<&Arc<Cluster>> {
        self.by_key.get(key).map(|i| &self.clusters[*i])
    }

    /// Chooses the cluster for a header or path value (SPEC §2). `None` means no header.
    pub fn choose(&self, value: Option<&str>) -> Result<Choice, Error> {
        let Some(value) = value else {
            return match self.clusters.as_slice() {
                [only] => Ok(Choice {
                    cluster: only.clone(),
                    warning: None,
                }),
                [] => Err(Error::not_found("no clusters are configured")),
                _ => Err(Error::bad_request(
                    "several clusters are configured: name one with the Backstage-Kubernetes-Cluster \
                     or X-Kubernetes-Cluster header (GET the clusters endpoint to list them)",
                )),
            };
        };
        if let Some(c) = self.get(value) {
            return Ok(Choice {
                cluster: c.clone(),
                warning: None,
            });
        }
        match self.by_name.get(value).map(Vec::as_slice) {
            Some([only]) => Ok(Choice {
                cluster: self.clusters[*only].clone(),
                warning: None,
            }),
            Some(all @ [first, ..]) => {
                let c = &self.clusters[*first];
                if self.duplicate_names == DuplicateNames::Reject {
                    return Err(Error::conflict(format!(
                        "cluster name '{value}' matches {} clusters ({}); send a key to choose",
                        all.len(),
                        all.iter()
                            .map(|i| self.clusters[*i].key.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                Ok(Choice {
                    cluster: c.clone(),
                    warning: Some(format!(
                        "299 kubeplex \"cluster name '{value}' matches {} clusters; routed to {}; send a key to choose\"",
                        all.len(),
                        c.key
                    )),
                })
            }
            _ => Err(Error::not_found(format!(
                "cluster \"{}\" not found; GET the clusters endpoint to list names and keys",
                value.escape_default()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> ClusterSpec {
        ClusterSpec::new(name, url::Url::parse("http://127.0.0.1:1").unwrap())
    }

    fn located(locator: &str, names: &[&str]) -> Located {
        Located {
            locator: locator.into(),
            clusters: names.iter().map(|n| spec(n)).collect(),
            sims: Vec::new(),
        }
    }

    #[test]
    fn keys_and_first_match() {
        let r = Registry::new(
            &[
                located("config", &["prod", "dev"]),
                located("catalog", &["prod"]),
            ],
            DuplicateNames::First,
        );
        let keys: Vec<_> = r.clusters().iter().map(|c| c.key.to_string()).collect();
        assert_eq!(keys, ["config:prod", "config:dev", "catalog:prod"]);
        let c = r.choose(Some("prod")).unwrap();
        assert_eq!(c.cluster.key.as_str(), "config:prod");
        assert_eq!(
            c.warning.unwrap(),
            "299 kubeplex \"cluster name 'prod' matches 2 clusters; routed to config:prod; send a key to choose\""
        );
        let c = r.choose(Some("catalog:prod")).unwrap();
        assert_eq!(c.cluster.key.as_str(), "catalog:prod");
        assert!(c.warning.is_none());
        assert!(r.choose(Some("dev")).unwrap().warning.is_none());
        assert_eq!(
            r.choose(Some("nope")).unwrap_err().reason,
            crate::status::Reason::NotFound
        );
        assert_eq!(
            r.choose(None).unwrap_err().reason,
            crate::status::Reason::BadRequest
        );
    }

    #[test]
    fn reject_mode_and_single_default() {
        let r = Registry::new(
            &[located("a", &["x"]), located("b", &["x"])],
            DuplicateNames::Reject,
        );
        assert_eq!(
            r.choose(Some("x")).unwrap_err().reason,
            crate::status::Reason::Conflict
        );
        assert_eq!(r.choose(Some("b:x")).unwrap().cluster.key.as_str(), "b:x");
        let one = Registry::new(&[located("a", &["x"])], DuplicateNames::First);
        assert_eq!(one.choose(None).unwrap().cluster.key.as_str(), "a:x");
    }
}
