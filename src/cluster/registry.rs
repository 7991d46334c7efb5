//! The registry: every located cluster in routing order, each with its unique key
//! `<locatorId>:<name>`, and the rules of SPEC §2 for choosing one from a header or path
//! value.
//!
//! A registry is immutable; the background owner (`control`) builds a new one and swaps it
//! into the [`RegistryHandle`] when a reload or a catalog refresh changes a locator's
//! clusters ([`Registry::replace_locator`]). Clusters whose definition did not change are
//! carried over as the same `Arc<Cluster>`, with everything built for them.

use super::{Cluster, ClusterKey, ClusterSpec};
use crate::config::DuplicateNames;
use crate::status::Error;
use actix_web::http::header::HeaderValue;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The current registry, shared by every worker and swapped atomically.
pub(crate) type RegistryHandle = Arc<ArcSwap<Registry>>;

/// One locator's clusters, in its own order.
#[derive(Debug, Clone, PartialEq)]
pub struct LocatorClusters {
    /// The locator id.
    pub locator: String,
    /// Its clusters.
    pub clusters: Vec<ClusterSpec>,
}

/// The result of choosing a cluster.
#[derive(Debug, Clone)]
pub(crate) struct Choice {
    /// The chosen cluster.
    pub cluster: Arc<Cluster>,
    /// The `Warning` header value when the name was ambiguous.
    pub warning: Option<HeaderValue>,
}

/// Every registry gets a new generation, so per-worker caches know when to drop clusters
/// that are gone.
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// The ordered clusters and their lookup tables.
#[derive(Debug, Default)]
pub struct Registry {
    lists: Vec<LocatorClusters>,
    clusters: Vec<Arc<Cluster>>,
    by_key: HashMap<ClusterKey, usize>,
    by_name: HashMap<String, Vec<usize>>,
    duplicate_names: DuplicateNames,
    generation: u64,
}

impl Registry {
    /// Builds the registry from each locator's clusters, in locator order.
    pub fn new(lists: Vec<LocatorClusters>, duplicate_names: DuplicateNames) -> Self {
        Self::build(lists, duplicate_names, None)
    }

    /// A registry where locator `id`'s clusters are `clusters` (the locator keeps its place;
    /// an unknown id is appended). Unchanged clusters keep their `Arc<Cluster>`.
    pub(crate) fn replace_locator(&self, id: &str, clusters: Vec<ClusterSpec>) -> Self {
        let mut lists = self.lists.clone();
        match lists.iter_mut().find(|l| l.locator == id) {
            Some(l) => l.clusters = clusters,
            None => lists.push(LocatorClusters {
                locator: id.to_owned(),
                clusters,
            }),
        }
        Self::build(lists, self.duplicate_names, Some(self))
    }

    /// A registry of `lists`, reusing this one's unchanged clusters.
    pub fn replace_all(
        &self,
        lists: Vec<LocatorClusters>,
        duplicate_names: DuplicateNames,
    ) -> Self {
        Self::build(lists, duplicate_names, Some(self))
    }

    fn build(
        lists: Vec<LocatorClusters>,
        duplicate_names: DuplicateNames,
        previous: Option<&Registry>,
    ) -> Self {
        let mut name_count: HashMap<&str, usize> = HashMap::new();
        for l in &lists {
            for s in &l.clusters {
                *name_count.entry(s.name.as_str()).or_default() += 1;
            }
        }
        let mut reg = Registry {
            duplicate_names,
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
            ..Default::default()
        };
        let mut warned: std::collections::HashSet<&str> = Default::default();
        for l in &lists {
            for spec in &l.clusters {
                let key = ClusterKey::new(&l.locator, &spec.name);
                if reg.by_key.contains_key(&key) {
                    // Same locator, same name: config validation refuses this for `config`
                    // locators; for others the first wins.
                    tracing::warn!(cluster = %key, "duplicate cluster key; keeping the first");
                    continue;
                }
                let count = name_count[spec.name.as_str()];
                let ambiguous = count > 1;
                let warning = (ambiguous && warned.insert(&spec.name)).then(|| {
                    format!(
                        "299 kubeplex \"cluster name '{}' matches {count} clusters; routed to {key}; send a key to choose\"",
                        spec.name
                    )
                });
                let reused = previous.and_then(|p| p.get(key.as_str())).filter(|c| {
                    c.spec == *spec
                        && c.ambiguous == ambiguous
                        && c.ambiguity_warning.as_ref().and_then(|w| w.to_str().ok())
                            == warning.as_deref()
                });
                let cluster = match reused {
                    Some(c) => c.clone(),
                    None => {
                        let c = Cluster::new(&l.locator, spec.clone(), ambiguous, warning);
                        c.warn_skip_verify();
                        Arc::new(c)
                    }
                };
                let idx = reg.clusters.len();
                reg.by_key.insert(key, idx);
                reg.by_name.entry(spec.name.clone()).or_default().push(idx);
                reg.clusters.push(cluster);
            }
        }
        reg.lists = lists;
        reg
    }

    /// Every cluster in routing order.
    pub fn clusters(&self) -> &[Arc<Cluster>] {
        &self.clusters
    }

    /// Each locator's clusters as given.
    pub fn lists(&self) -> &[LocatorClusters] {
        &self.lists
    }

    /// This registry's generation: a new registry has a higher one.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The cluster with this exact key.
    pub fn get(&self, key: &str) -> Option<&Arc<Cluster>> {
        self.by_key.get(key).map(|i| &self.clusters[*i])
    }

    /// Chooses the cluster for a header or path value (SPEC §2). `None` means no header.
    pub(crate) fn choose(&self, value: Option<&str>) -> Result<Choice, Error> {
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
                    warning: c.ambiguity_warning.clone(),
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

    fn located(locator: &str, names: &[&str]) -> LocatorClusters {
        LocatorClusters {
            locator: locator.into(),
            clusters: names.iter().map(|n| spec(n)).collect(),
        }
    }

    #[test]
    fn keys_and_first_match() {
        let r = Registry::new(
            vec![
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
            vec![located("a", &["x"]), located("b", &["x"])],
            DuplicateNames::Reject,
        );
        assert_eq!(
            r.choose(Some("x")).unwrap_err().reason,
            crate::status::Reason::Conflict
        );
        assert_eq!(r.choose(Some("b:x")).unwrap().cluster.key.as_str(), "b:x");
        let one = Registry::new(vec![located("a", &["x"])], DuplicateNames::First);
        assert_eq!(one.choose(None).unwrap().cluster.key.as_str(), "a:x");
    }
}
