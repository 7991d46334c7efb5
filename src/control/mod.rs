//! Background work, in one place: configuration reload (`watch`: file changes and
//! SIGHUP), catalog refresh (`catalog`) and the simulated servers (`sims`). One task,
//! the owner, is the only writer of the registry: the others send it what they found and it
//! swaps in a new registry (`Registry::replace_locator` for one locator's clusters,
//! `Registry::replace_all` for a reload). No lock is shared with the request path: requests
//! read the registry through its `ArcSwap`.
//!
//! What a reload changes: the clusters, `duplicateNames` and the plugin proxy's entries
//! (`kubeplex.pluginProxy`, ConsolePlugin files included: they are watched with the
//! configuration files; the table is rebuilt for the new registry and swapped with it, or
//! the reload fails as a whole). The `kubeplex.server` settings
//! (listen address, base path, timeouts) need a restart; a reload that changes them says
//! so in the log. Simulated clusters whose definition did not change keep running (same
//! URL, same data); the others are started afresh, and removed ones stop. A reload that
//! fails keeps the running configuration, logs each problem and reports them in `/readyz`
//! (which is then 503 until a reload works). The reachability probes (`probe`) run here
//! too.

pub(crate) mod catalog;
pub(crate) mod probe;
pub mod safety;
pub(crate) mod sims;
pub(crate) mod watch;

use crate::cluster::{ClusterSpec, Registry, RegistryHandle};
use crate::config::{self, LocatorKind, Settings, Source};
use crate::locate::{self, Located};
use crate::ops::readiness::Readiness;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long file events must be quiet before a reload (editors write in several steps).
const SETTLE: Duration = Duration::from_millis(250);

/// What the owner is asked to do.
enum Command {
    /// Reload the configuration: `forced` (SIGHUP, [`ControlHandle::reload`]) always,
    /// otherwise only when a watched file's content changed.
    Reload { forced: bool },
    /// A catalog refresh read this list for locator `id`; `epoch` is the configuration
    /// generation the refresher was started for (stale ones are ignored).
    Catalog {
        epoch: u64,
        id: String,
        clusters: Vec<ClusterSpec>,
    },
}

/// Asks the owner for work; cheap to clone. The owner stops when every handle is gone.
#[derive(Clone)]
pub struct ControlHandle {
    tx: mpsc::UnboundedSender<Command>,
}

impl ControlHandle {
    /// Reloads the configuration now (what SIGHUP does).
    pub fn reload(&self) {
        let _ = self.tx.send(Command::Reload { forced: true });
    }

    /// A file changed: reload if a configuration file's content differs.
    fn file_event(&self) {
        let _ = self.tx.send(Command::Reload { forced: false });
    }

    /// Reloads on SIGHUP (Unix) for as long as the runtime runs.
    pub fn reload_on_sighup(&self) {
        #[cfg(unix)]
        {
            let handle = self.clone();
            actix_web::rt::spawn(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let Ok(mut hup) = signal(SignalKind::hangup()) else {
                    return;
                };
                while hup.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading the configuration");
                    handle.reload();
                }
            });
        }
    }
}

/// How the owner reloads: from these sources, watching their files or not.
#[derive(Debug, Clone)]
pub struct ReloadFrom {
    /// The configuration sources, as given at start.
    pub sources: Vec<Source>,
    /// Whether to watch the files' folders for changes.
    pub watch: bool,
}

/// The one writer of the registry.
struct Owner {
    registry: RegistryHandle,
    plugins: crate::plugin_proxy::PluginHandle,
    readiness: Arc<Readiness>,
    metrics: crate::ops::metrics::Metrics,
    settings: Settings,
    reload: Option<ReloadFrom>,
    contents: Vec<Option<Vec<u8>>>,
    sims: sims::Sims,
    catalogs: catalog::Refreshers,
}

/// Starts the owner on the current actix runtime, with the registry built from `located`
/// (whose simulated servers it takes over). Without `reload`, the configuration was built
/// in code and a reload request only logs that there is nothing to reload.
pub(crate) fn start(
    settings: Settings,
    located: Vec<Located>,
    registry: RegistryHandle,
    plugins: crate::plugin_proxy::PluginHandle,
    readiness: Arc<Readiness>,
    metrics: crate::ops::metrics::Metrics,
    reload: Option<ReloadFrom>,
) -> ControlHandle {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let handle = ControlHandle { tx };
    let weak = handle.tx.downgrade();
    let watcher = match &reload {
        Some(r) if r.watch => watch::watch_files(&settings.files, handle.clone()),
        _ => None,
    };
    let mut owner = Owner {
        registry,
        plugins,
        readiness,
        metrics,
        contents: read_all(&settings.files),
        sims: sims::Sims::take(&settings, located),
        catalogs: catalog::Refreshers::default(),
        reload,
        settings,
    };
    // Refreshers hold only a weak sender: the owner stops when every handle is gone.
    owner.catalogs.restart(&owner.settings, &weak);
    probe::start(
        owner.registry.clone(),
        owner.readiness.clone(),
        owner.metrics.clone(),
        owner.settings.server.probe_interval,
        owner.settings.server.connect_timeout,
    );
    actix_web::rt::spawn(async move {
        let _watcher = watcher;
        while let Some(cmd) = rx.recv().await {
            match cmd {
                Command::Reload { forced } => {
                    let mut forced = forced;
                    // Let a burst of events settle before reading the files.
                    while let Ok(Some(c)) = tokio::time::timeout(SETTLE, rx.recv()).await {
                        match c {
                            Command::Reload { forced: f } => forced |= f,
                            c @ Command::Catalog { .. } => owner.apply_catalog(c),
                        }
                    }
                    if forced || owner.changed() {
                        owner.reload(&weak).await;
                    }
                }
                c @ Command::Catalog { .. } => owner.apply_catalog(c),
            }
        }
    });
    handle
}

impl Owner {
    /// Whether a watched file's content differs from what was last loaded.
    fn changed(&self) -> bool {
        read_all(&self.settings.files) != self.contents
    }

    fn apply_catalog(&mut self, cmd: Command) {
        let Command::Catalog {
            epoch,
            id,
            clusters,
        } = cmd
        else {
            return;
        };
        if epoch != self.catalogs.epoch() {
            return;
        }
        let cur = self.registry.load();
        let Some(old) = cur.lists().iter().find(|l| l.locator == id) else {
            return;
        };
        if old.clusters == clusters {
            return;
        }
        let n = clusters.len();
        self.registry
            .store(Arc::new(cur.replace_locator(&id, clusters)));
        tracing::info!(locator = %id, clusters = n, "catalog clusters updated");
    }

    async fn reload(&mut self, weak: &mpsc::WeakUnboundedSender<Command>) {
        let Some(from) = self.reload.clone() else {
            tracing::info!("reload requested, but the configuration was not loaded from files");
            return;
        };
        // Remember what was read even if it fails: the next attempt waits for a new edit.
        self.contents = read_all(&self.settings.files);
        self.readiness
            .last_reload
            .store(Some(Arc::new(std::time::SystemTime::now())));
        match self.try_reload(&from.sources).await {
            Ok(n) => {
                self.metrics.reload(true);
                self.readiness.reload_error.store(None);
                tracing::info!(clusters = n, "configuration reloaded");
                self.catalogs.restart(&self.settings, weak);
            }
            Err(why) => {
                self.metrics.reload(false);
                for line in why.lines() {
                    tracing::error!(
                        problem = line,
                        "configuration reload failed; keeping the running configuration"
                    );
                }
                self.readiness.reload_error.store(Some(Arc::new(why)));
            }
        }
    }

    async fn try_reload(&mut self, sources: &[Source]) -> Result<usize, String> {
        let new = config::load(sources).map_err(|e| e.to_string())?;
        let cur = self.registry.load_full();
        let mut lists = Vec::with_capacity(new.locators.len());
        let mut sims = self.sims.begin();
        for l in &new.locators {
            if let LocatorKind::Simulated { clusters } = &l.kind {
                lists.push(sims.locate(&l.id, clusters.as_slice()).await?);
                continue;
            }
            // A catalog that cannot be read keeps its clusters if it is the same catalog.
            let same = self
                .settings
                .locators
                .iter()
                .any(|old| old.id == l.id && old.kind == l.kind);
            let previous = same
                .then(|| cur.lists().iter().find(|x| x.locator == l.id))
                .flatten()
                .map(|x| x.clusters.as_slice());
            let located = locate::locate_one(l, previous)
                .await
                .map_err(|e| e.to_string())?;
            lists.push(located.to_list());
        }
        let registry = cur.replace_all(lists, new.duplicate_names);
        let n = registry.clusters().len();
        safety::check(&new, &registry).map_err(|e| e.to_string())?;
        let plugins =
            crate::plugin_proxy::Table::build(&new, &registry, Some(&self.plugins.load()))
                .map_err(|e| e.to_string())?;
        // Success: swap, then keep the simulated servers still in use.
        self.registry.store(Arc::new(registry));
        self.plugins.store(Arc::new(plugins));
        self.sims.commit(sims);
        if new.server != self.settings.server {
            tracing::warn!("kubeplex.server settings changed: restart kubeplex to apply them");
        }
        self.settings = new;
        Ok(n)
    }
}

fn read_all(files: &[PathBuf]) -> Vec<Option<Vec<u8>>> {
    files.iter().map(|f| std::fs::read(f).ok()).collect()
}

/// A registry handle holding `registry`.
pub(crate) fn handle_for(registry: Registry) -> RegistryHandle {
    Arc::new(arc_swap::ArcSwap::from_pointee(registry))
}
