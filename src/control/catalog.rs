//! Catalog refresh: one task per `catalog` locator re-reads its catalog every
//! `refreshInterval` and sends the list to the owner, which swaps it in when it changed. A
//! refresh that fails keeps the last good list (the owner's) and logs why. A reload
//! restarts the tasks for the new configuration; the old ones are aborted.

use super::Command;
use crate::config::{LocatorKind, Settings};
use std::time::Duration;
use tokio::sync::mpsc::WeakUnboundedSender;

/// The running refresh tasks and the configuration generation they belong to.
#[derive(Default)]
pub(crate) struct Refreshers {
    epoch: u64,
    tasks: Vec<actix_web::rt::task::JoinHandle<()>>,
}

impl Refreshers {
    /// The current configuration generation.
    pub(super) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Stops the running tasks and starts one per catalog locator of `settings`.
    pub(super) fn restart(&mut self, settings: &Settings, owner: &WeakUnboundedSender<Command>) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
        self.epoch += 1;
        for l in &settings.locators {
            let LocatorKind::Catalog(cfg) = &l.kind else {
                continue;
            };
            let (epoch, id, cfg, owner) = (self.epoch, l.id.clone(), cfg.clone(), owner.clone());
            self.tasks.push(actix_web::rt::spawn(async move {
                let interval = cfg.refresh_interval.max(Duration::from_millis(10));
                loop {
                    tokio::time::sleep(interval).await;
                    match crate::locate::catalog::fetch(&id, &cfg).await {
                        Ok(clusters) => {
                            let Some(tx) = owner.upgrade() else { return };
                            let cmd = Command::Catalog {
                                epoch,
                                id: id.to_string(),
                                clusters,
                            };
                            if tx.send(cmd).is_err() {
                                return;
                            }
                        }
                        Err(why) => tracing::warn!(
                            locator = %id,
                            "catalog refresh failed: {why}; keeping the last good list"
                        ),
                    }
                }
            }));
        }
    }
}

impl Drop for Refreshers {
    fn drop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}
