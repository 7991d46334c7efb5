//! Cluster locators: each turns one `clusterLocatorMethods[]` entry into an ordered list of
//! [`ClusterSpec`]s. One file per locator type. [`locate_all`] runs them in config order;
//! the registry gives each cluster its key.

pub mod catalog;
pub(crate) mod config;
pub(crate) mod in_cluster;
pub mod kubeconfig;
pub(crate) mod local_kubectl_proxy;
pub(crate) mod simulated;

use crate::cluster::{ClusterSpec, LocatorClusters};
use crate::config::{LocatorConfig, LocatorKind, Settings};

/// Clusters found by one locator, with the locator's id.
#[derive(Debug)]
pub struct Located {
    /// The locator id (`config`, `simulated-2`, `id:` ...).
    pub locator: String,
    /// Its clusters in the locator's own order.
    pub clusters: Vec<ClusterSpec>,
    /// In-process simulated servers backing these clusters; they stop when dropped.
    pub sims: Vec<crate::sim::SimServer>,
}

impl Located {
    /// The locator's clusters, for the registry.
    pub fn to_list(&self) -> LocatorClusters {
        LocatorClusters {
            locator: self.locator.clone(),
            clusters: self.clusters.clone(),
        }
    }
}

/// Why a locator could not produce its clusters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocateError {
    /// One cluster's definition cannot be used.
    #[error("locator {locator}: cluster {cluster}: {message}")]
    Cluster {
        /// The locator id.
        locator: String,
        /// The cluster name.
        cluster: String,
        /// What is wrong (never a token or key).
        message: String,
    },
    /// The locator as a whole failed (an unreadable kubeconfig, ...).
    #[error("locator {locator}: {message}")]
    Locator {
        /// The locator id.
        locator: String,
        /// What is wrong.
        message: String,
    },
    /// A simulated cluster's server did not start.
    #[error("locator {locator}: cannot start simulated cluster {cluster}: {message}")]
    Simulated {
        /// The locator id.
        locator: String,
        /// The cluster name.
        cluster: String,
        /// Why.
        message: String,
    },
}

/// Runs every locator in config order.
pub async fn locate_all(settings: &Settings) -> Result<Vec<Located>, LocateError> {
    let mut out = Vec::new();
    for l in &settings.locators {
        out.push(locate_one(l, None).await?);
    }
    Ok(out)
}

/// Runs one locator. `previous` is the locator's clusters before a reload: a catalog that
/// cannot be read keeps them.
pub(crate) async fn locate_one(
    l: &LocatorConfig,
    previous: Option<&[ClusterSpec]>,
) -> Result<Located, LocateError> {
    let clusters = match &l.kind {
        LocatorKind::Config { clusters } => config::locate(&l.id, clusters)?,
        LocatorKind::LocalKubectlProxy => local_kubectl_proxy::locate(),
        LocatorKind::Simulated { clusters } => return simulated::locate(&l.id, clusters).await,
        LocatorKind::Kubeconfig { paths, contexts } => {
            kubeconfig::locate(&l.id, paths, contexts.as_deref())?
        }
        LocatorKind::Catalog(cfg) => catalog::locate(&l.id, cfg, previous).await,
    };
    Ok(Located {
        locator: l.id.clone(),
        clusters,
        sims: Vec::new(),
    })
}
