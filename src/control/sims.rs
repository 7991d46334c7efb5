//! The simulated clusters' in-process servers, kept across reloads: a cluster whose
//! definition did not change keeps its server (same URL, same data); a changed one gets a
//! new server; removed ones stop when their server is dropped. A kept HTTPS server keeps
//! its certificate, so the located cluster keeps its CA.

use crate::cluster::{ClusterSpec, LocatorClusters};
use crate::config::{LocatorKind, Settings};
use crate::locate::{simulated, Located};
use crate::sim::config::SimClusterConfig;
use crate::sim::SimServer;
use std::collections::HashMap;

type SimKey = (String, String);

/// The running simulated servers, by locator id and cluster name.
#[derive(Default)]
pub(crate) struct Sims {
    running: HashMap<SimKey, (SimClusterConfig, SimServer)>,
}

/// A reload in progress: servers started for it, and every cluster it uses.
pub(crate) struct SimsReload {
    specs: HashMap<SimKey, (SimClusterConfig, ClusterSpec)>,
    fresh: HashMap<SimKey, (SimClusterConfig, SimServer)>,
    used: Vec<SimKey>,
}

impl Sims {
    /// Takes over the servers of the initial locator results.
    pub(crate) fn take(settings: &Settings, located: Vec<Located>) -> Self {
        let mut running = HashMap::new();
        for (cfg, mut l) in settings.locators.iter().zip(located) {
            if let LocatorKind::Simulated { clusters } = &cfg.kind {
                for (c, sim) in clusters.iter().zip(std::mem::take(&mut l.sims)) {
                    running.insert((cfg.id.clone(), c.name.clone()), (c.clone(), sim));
                }
            }
        }
        Sims { running }
    }

    /// Starts a reload.
    pub(crate) fn begin(&self) -> SimsReload {
        SimsReload {
            specs: self
                .running
                .iter()
                .map(|(k, (c, s))| (k.clone(), (c.clone(), simulated::spec(&c.name, s))))
                .collect(),
            fresh: HashMap::new(),
            used: Vec::new(),
        }
    }

    /// The reload worked: keep the servers it uses, stop the others.
    pub(crate) fn commit(&mut self, mut reload: SimsReload) {
        let mut kept = HashMap::new();
        for key in reload.used {
            if let Some(entry) = reload
                .fresh
                .remove(&key)
                .or_else(|| self.running.remove(&key))
            {
                kept.insert(key, entry);
            }
        }
        self.running = kept;
    }
}

impl SimsReload {
    /// The clusters of simulated locator `id`: running servers whose definition is
    /// unchanged, new servers for the rest.
    pub(crate) async fn locate(
        &mut self,
        id: &str,
        clusters: &[SimClusterConfig],
    ) -> Result<LocatorClusters, String> {
        let mut out = LocatorClusters {
            locator: id.to_owned(),
            clusters: Vec::with_capacity(clusters.len()),
        };
        for c in clusters {
            let key = (id.to_owned(), c.name.clone());
            let spec = match self.specs.get(&key) {
                Some((old, spec)) if old == c => spec.clone(),
                _ => {
                    let sim = crate::sim::spawn("127.0.0.1:0", c).await.map_err(|e| {
                        format!(
                            "locator {id}: cannot start simulated cluster {}: {e}",
                            c.name
                        )
                    })?;
                    let spec = simulated::spec(&c.name, &sim);
                    self.fresh.insert(key.clone(), (c.clone(), sim));
                    spec
                }
            };
            self.used.push(key);
            out.clusters.push(spec);
        }
        Ok(out)
    }
}
