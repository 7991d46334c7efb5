//! Watching the configuration files for changes. Their folders are watched, not the files:
//! files are often replaced rather than written (editors, Kubernetes ConfigMap and Secret
//! volumes swap a `..data` symlink).

use super::ControlHandle;
use std::path::PathBuf;

/// Watches the folders of `files`; each event asks `handle` for a reload (which happens
/// only if a file's content changed). `None` when there is nothing to watch or watching is
/// not possible (then SIGHUP still reloads).
pub(crate) fn watch_files(
    files: &[PathBuf],
    handle: ControlHandle,
) -> Option<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    if files.is_empty() {
        return None;
    }
    let mut watcher = match notify::recommended_watcher(
        move |res: notify::Result<notify::Event>| {
            if res.is_ok() {
                handle.file_event();
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
