//! Configuration reload (SPEC §4): when a configuration file changes (or on SIGHUP), the
//! files are loaded and validated again and the clusters located again; on success the
//! registry is swapped atomically, on failure the running registry stays and the problems
//! go to the log and to `/readyz`.
//!
//! What a reload changes: the clusters and `duplicateNames`. The `kubeplex.server` settings
//! (listen address, base path, timeouts) need a restart; a reload that changes them says
//! so in the log. Simulated clusters whose definition did not change keep running (same
//! URL, same data); the others are started afresh, and removed ones stop.

use crate::app::AppState;
use crate::config::{self, LocatorKind, Settings, Source};
use crate::locate::{self, Located};
use crate::registry::Registry;
use crate::sim::config::SimClusterConfig;
use crate::sim::SimServer;
use actix_web::{web, HttpResponse};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long file events must be quiet before a reload (editors write in several steps).
const SETTLE: Duration = Duration::from_millis(250);

/// The `/readyz` handler: `ok`, plus the reason when the last reload failed (kubeplex is
/// still ready: it serves the previous configuration).
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.reload_error.load_full() {
        None => HttpResponse::Ok().content_type("text/plain").body("ok"),
        Some(why) => HttpResponse::Ok().content_type("text/plain").body(format!(
            "ok\nthe last configuration reload failed; serving the previous configuration:\n{why}\n"
        )),
    }
}

type SimKey = (String, String);

/// Reloads the configuration into a running app's state.
pub struct Reloader {
    sources: Vec<Source>,
    state: Arc<AppState>,
    settings: Settings,
    sims: HashMap<SimKey, (SimClusterConfig, SimServer)>,
    contents: Vec<Option<Vec<u8>>>,
}

impl Reloader {
    /// A reloader for `state`, started from `sources`; takes over the simulated servers of
    /// `located` (the app's initial locator results) so they outlive reloads that keep them.
    pub fn new(state: Arc<AppState>, sources: Vec<Source>, located: Vec<Located>) -> Self {
        let settings = state.settings.clone();
        let mut sims = HashMap::new();
        for (cfg, mut l) in settings.locators.iter().zip(located) {
            if let LocatorKind::Simulated { clusters } = &cfg.kind {
                for (c, sim) in clusters.iter().zip(std::mem::take(&mut l.sims)) {
                    sims.insert((cfg.id.clone(), c.name.clone()), (c.clone(), sim));
                }
            }
        }
        let contents = read_all(&settings.files);
        Reloader {
            sources,
            state,
            settings,
            sims,
            contents,
        }
    }

    /// The files to watch.
    pub fn files(&self) -> &[PathBuf] {
        &self.settings.files
    }

    /// Whether a watched file's content differs from what was last loaded.
    pub fn changed(&self) -> bool {
        read_all(&self.settings.files) != self.contents
    }

    /// Loads, validates and locates again; swaps the registry on success. On failure the
    /// running registry stays and the reason is kept for `/readyz`.
    pub async fn reload(&mut self) -> Result<usize, String> {
        // Remember what was read even if it fails: the next attempt waits for a new edit.
        self.contents = read_all(&self.settings.files);
        let result = self.try_reload().await;
        match &result {
            Ok(n) => {
                self.state.reload_error.store(None);
                tracing::info!(clusters = n, "configuration reloaded");
            }
            Err(why) => {
                for line in why.lines() {
                    tracing::error!(
                        problem = line,
                        "configuration reload failed; keeping the running configuration"
                    );
                }
                self.state.reload_error.store(Some(Arc::new(why.clone())));
            }
        }
        result
    }

    async fn try_reload(&mut self) -> Result<usize, String> {
        let new = config::load(&self.sources).map_err(|e| e.to_string())?;
        let mut fresh: HashMap<SimKey, (SimClusterConfig, SimServer)> = HashMap::new();
        let mut located = Vec::with_capacity(new.locators.len());
        for l in &new.locators {
            let LocatorKind::Simulated { clusters } = &l.kind else {
                located.push(locate::locate_one(l).await.map_err(|e| e.message)?);
                continue;
            };
            let mut out = Located {
                locator: l.id.clone(),
                clusters: Vec::new(),
                sims: Vec::new(),
            };
            for c in clusters {
                let key = (l.id.clone(), c.name.clone());
                let url = match self.sims.get(&key) {
                    Some((old, sim)) if old == c => sim.url().clone(),
                    _ => {
                        let sim = crate::sim::spawn("127.0.0.1:0", c).await.map_err(|e| {
                            format!(
                                "locator {}: cannot start simulated cluster {}: {e}",
                                l.id, c.name
                            )
                        })?;
                        let url = sim.url().clone();
                        fresh.insert(key, (c.clone(), sim));
                        url
                    }
                };
                out.clusters
                    .push(locate::ClusterSpec::new(c.name.clone(), url));
            }
            located.push(out);
        }
        // Success: swap, then keep the simulated servers still in use.
        let registry = Registry::new(&located, new.duplicate_names);
        crate::upstream::tls::warn_skip_verify(registry.clusters().iter().map(|c| &**c));
        let n = registry.clusters().len();
        self.state.registry.store(Arc::new(registry));
        crate::locate::catalog::start_refreshers(&self.state, &new);
        let mut kept = HashMap::new();
        for l in &new.locators {
            if let LocatorKind::Simulated { clusters } = &l.kind {
                for c in clusters {
                    let key = (l.id.clone(), c.name.clone());
                    if let Some(entry) = fresh.remove(&key).or_else(|| self.sims.remove(&key)) {
                        kept.insert(key, entry);
                    }
                }
            }
        }
        self.sims = kept; // removed or replaced simulated clusters stop here
        if new.server != self.state.settings.server {
            tracing::warn!("kubeplex.server settings changed: restart kubeplex to apply them");
        }
        self.settings = new;
        Ok(n)
    }
}

fn read_all(files: &[PathBuf]) -> Vec<Option<Vec<u8>>> {
    files.iter().map(|f| std::fs::read(f).ok()).collect()
}

/// Why a reload is requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// A file event: reload if a file's content changed.
    FileEvent,
    /// SIGHUP or [`ReloadHandle::reload`]: reload unconditionally.
    Forced,
}

/// Requests reloads of a running [`Reloader`] task.
#[derive(Clone)]
pub struct ReloadHandle {
    tx: mpsc::UnboundedSender<Trigger>,
}

impl ReloadHandle {
    /// Asks for a reload now (what SIGHUP does).
    pub fn reload(&self) {
        let _ = self.tx.send(Trigger::Forced);
    }
}

/// Runs `reloader` on the current actix runtime: watches its files' folders when `watch`
/// is set, and reloads on [`ReloadHandle::reload`]. Stops when every handle is dropped
/// and no watcher runs.
pub fn spawn(mut reloader: Reloader, watch: bool) -> ReloadHandle {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let watcher = if watch {
        watch_files(reloader.files(), tx.clone())
    } else {
        None
    };
    actix_web::rt::spawn(async move {
        let _watcher = watcher;
        while let Some(first) = rx.recv().await {
            let mut forced = first == Trigger::Forced;
            // Let a burst of events settle before reading the files.
            while let Ok(Some(t)) = tokio::time::timeout(SETTLE, rx.recv()).await {
                forced |= t == Trigger::Forced;
            }
            if forced || reloader.changed() {
                let _ = reloader.reload().await;
            }
        }
    });
    ReloadHandle { tx }
}

/// Watches the folders of `files` (files are often replaced, not written: editors,
/// Kubernetes ConfigMap volumes).
fn watch_files(
    files: &[PathBuf],
    tx: mpsc::UnboundedSender<Trigger>,
) -> Option<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    if files.is_empty() {
        return None;
    }
    let mut watcher = match notify::recommended_watcher(
        move |res: notify::Result<notify::Event>| {
            if res.is_ok() {
                let _ = tx.send(Trigger::FileEvent);
            }
        },
    ) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch the configuration files; reload with SIGHUP");
            return None;
        }
    };
    let mut dirs: Vec<PathBuf> = files
        .iter()
        .filter_map(|f| f.parent().map(|d| d.to_path_buf()))
        .collect();
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        if let Err(e) = watcher.watch(&d, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %d.display(), error = %e, "cannot watch a configuration folder; reload with SIGHUP");
        }
    }
    Some(watcher)
}

/// Starts reloading for a built app: takes over its simulated servers, watches the
/// configuration files and, on Unix, reloads on SIGHUP.
pub fn start(app: &mut crate::app::RunningApp, sources: Vec<Source>) -> ReloadHandle {
    let reloader = Reloader::new(app.state.clone(), sources, std::mem::take(&mut app.located));
    let handle = spawn(reloader, true);
    #[cfg(unix)]
    {
        let handle = handle.clone();
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
    handle
}
