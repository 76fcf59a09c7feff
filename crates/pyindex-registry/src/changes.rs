//! Telling caches what changed: at once for changes this process makes; for changes made by
//! another process (a CLI command, another replica), read from the catalog's change log as soon
//! as the catalog signals a commit (PostgreSQL: `LISTEN`/`NOTIFY`, milliseconds) and in any case
//! within [`CHANGE_POLL_INTERVAL`] (the only means on SQLite, and the fallback when signals are
//! lost).

use std::time::Duration;

use pyindex_catalog::Change;

use crate::Registry;

/// How often the change watcher reads the catalog's change log.
pub const CHANGE_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Something that keeps derived state (rendered pages, download answers) and must drop the part
/// a change affects. Called synchronously, after the change is committed and before the call
/// that made it returns, so a client never reads its own write stale.
pub trait ChangeObserver: Send + Sync {
    /// `change` was committed.
    fn changed(&self, change: &Change);
}

impl Registry {
    /// Drops what this process remembers that `change` affects, and tells the observers.
    pub(crate) fn apply_change(&self, change: &Change) {
        match change {
            Change::Account(name) => self.forget_credentials(Some(name)),
            Change::Everything => {
                self.forget_credentials(None);
                if let Some(upstream) = &self.upstream {
                    upstream.forget_cached_files();
                }
            }
            Change::UpstreamFile(sha256) => {
                if let Some(upstream) = &self.upstream {
                    upstream.forget_cached_file(sha256);
                }
            }
            Change::Project(_) | Change::ProjectList => {}
        }
        self.namespace.changed(change);
        for observer in &self.observers {
            observer.changed(change);
        }
    }

    /// Starts the task that applies changes made by other processes: it reads the catalog's
    /// change log whenever the catalog signals a commit ([`Catalog::signal_changes`]) and every
    /// [`CHANGE_POLL_INTERVAL`], and applies each change it finds. Changes this process made are
    /// applied a second time, which costs one re-render of what they touched.
    ///
    /// [`Catalog::signal_changes`]: pyindex_catalog::Catalog::signal_changes
    pub fn spawn_change_watcher(&self) -> tokio::task::JoinHandle<()> {
        let registry = self.clone();
        tokio::spawn(async move {
            let wake = tokio::sync::Notify::new();
            // Returns at once on an engine without a signal; the loop below then polls alone.
            let signals = registry.catalog.signal_changes(&wake);
            let reads = async {
                // Until the log has been read once, anything cached may predate unseen changes.
                let mut seen = None;
                let mut ticker = tokio::time::interval(CHANGE_POLL_INTERVAL);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = ticker.tick() => {}
                        () = wake.notified() => {}
                    }
                    seen = registry.apply_changes_since(seen).await;
                }
            };
            tokio::join!(signals, reads);
        })
    }

    /// Applies the changes after `seen` (everything, if `None`) and returns the new position.
    async fn apply_changes_since(&self, seen: Option<i64>) -> Option<i64> {
        let read = match seen {
            Some(seq) => self.catalog.changes_since(seq).await,
            None => self
                .catalog
                .generation()
                .await
                .map(|seq| pyindex_catalog::Changes {
                    seq,
                    changes: vec![Change::Everything],
                }),
        };
        match read {
            Ok(read) => {
                if !read.changes.is_empty() {
                    tracing::debug!(changes = read.changes.len(), "catalog changed");
                }
                for change in &read.changes {
                    self.apply_change(change);
                }
                Some(read.seq)
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the catalog's change log");
                seen
            }
        }
    }
}
