//! The config file as a discovery source with hot reload: a file watch reports edits (never mere
//! reads), the gateway re-reads the file and restarts only the servers that were added, removed or
//! changed. An edit that does not parse is reported (a `discovery_failed` event naming the file,
//! key and problem) and the running set is kept.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use mcp_gateway_cli::config;
use mcp_gateway_core::{BoxError, DiscoverySource, ServerSpec};
use notify::{Event, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::{Mutex, mpsc};

/// A file is read only once two reads this far apart agree, so a file being written in place
/// (truncated, then filled) is never taken for an empty server set, and an editor's save in
/// several steps is read once.
const SETTLE: Duration = Duration::from_millis(100);
/// How many unequal reads are tolerated before the latest one is used anyway.
const SETTLE_ATTEMPTS: usize = 20;

/// A config file, re-read whenever it changes on disk.
pub struct ConfigFileSource {
    name: String,
    path: PathBuf,
    edits: Mutex<mpsc::Receiver<()>>,
    /// Dropping the watcher stops the watch.
    _watch: RecommendedWatcher,
}

impl ConfigFileSource {
    /// Watches the file's directory (editors replace files by renaming, which a watch on the file
    /// itself would miss) for changes to this file.
    pub fn watch(path: &Path) -> anyhow::Result<Self> {
        let path = std::path::absolute(path)?;
        let directory = path
            .parent()
            .ok_or_else(|| anyhow::anyhow!("{} has no parent directory", path.display()))?
            .to_owned();
        let file_name = path
            .file_name()
            .ok_or_else(|| anyhow::anyhow!("{} names no file", path.display()))?
            .to_owned();
        let (edited, edits) = mpsc::channel(1);
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
            if event.is_ok_and(|event| is_edit_of(&event, &file_name)) {
                // A full channel already holds a pending reload, which will read the latest file.
                let _ = edited.try_send(());
            }
        })?;
        watcher.watch(&directory, RecursiveMode::NonRecursive)?;
        Ok(Self {
            name: format!("config {}", path.display()),
            path,
            edits: Mutex::new(edits),
            _watch: watcher,
        })
    }
}

/// Whether a watch event may have changed the file named `file_name`. Opening and reading it are
/// not edits: the gateway reads the file itself, and taking that for an edit re-read it forever.
fn is_edit_of(event: &Event, file_name: &OsStr) -> bool {
    !event.kind.is_access()
        && event
            .paths
            .iter()
            .any(|path| path.file_name() == Some(file_name))
}

#[async_trait]
impl DiscoverySource for ConfigFileSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn discover(&self) -> Result<Vec<ServerSpec>, BoxError> {
        let path = self.path.clone();
        let config = tokio::task::spawn_blocking(move || config::load(&path)).await??;
        Ok(config.servers)
    }

    async fn changed(&self) {
        let mut edits = self.edits.lock().await;
        if edits.recv().await.is_none() {
            // The watch is gone: no more changes will be reported.
            std::future::pending::<()>().await;
        }
        let mut last = tokio::fs::read(&self.path).await.ok();
        for _ in 0..SETTLE_ATTEMPTS {
            tokio::time::sleep(SETTLE).await;
            let now = tokio::fs::read(&self.path).await.ok();
            if now == last {
                break;
            }
            last = now;
        }
        // Edits made while settling are part of this reload.
        while edits.try_recv().is_ok() {}
    }
}

#[cfg(test)]
mod tests;
