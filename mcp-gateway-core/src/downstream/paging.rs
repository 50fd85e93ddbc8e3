//! Merged lists paged from catalogue snapshots. A cursor names a catalogue generation and an
//! offset, and the last few generations' snapshots are kept, so paging never skips or repeats an
//! entry when the list changes in the middle, and no list call fans out to upstreams.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::McpServer;
use crate::jsonrpc::JsonRpcError;
use crate::registry::{Catalog, Entry};

/// Catalogue snapshots kept so that a cursor handed out before a change still pages through the
/// list it started on.
const KEPT_SNAPSHOTS: usize = 16;

impl McpServer {
    /// Pages through a merged list. The cursor names the catalogue generation and offset, and that
    /// generation's snapshot is kept, so paging never skips or repeats an entry across a change.
    pub(super) fn page(
        &self,
        params: &Value,
        key: &str,
        entries: fn(&Catalog) -> &[Entry],
    ) -> Result<Value, JsonRpcError> {
        let (catalog, offset) = match params.get("cursor").and_then(Value::as_str) {
            None => (self.current_snapshot(), 0),
            Some(cursor) => self.resume(cursor)?,
        };
        let all = entries(&catalog);
        let end = all.len().min(offset.saturating_add(self.config.page_size));
        let page: Vec<Value> = all
            .get(offset..end)
            .unwrap_or_default()
            .iter()
            .map(|entry| Value::clone(&entry.definition))
            .collect();
        let mut result = Map::new();
        result.insert(key.into(), Value::Array(page));
        if end < all.len() {
            result.insert(
                "nextCursor".into(),
                format!("{}.{end}", catalog.generation()).into(),
            );
        }
        Ok(Value::Object(result))
    }

    fn current_snapshot(&self) -> Arc<Catalog> {
        let catalog = self.gateway.catalog();
        if let Ok(mut kept) = self.snapshots.lock()
            && !kept.iter().any(|c| c.generation() == catalog.generation())
        {
            if kept.len() == KEPT_SNAPSHOTS {
                kept.pop_front();
            }
            kept.push_back(catalog.clone());
        }
        catalog
    }

    fn resume(&self, cursor: &str) -> Result<(Arc<Catalog>, usize), JsonRpcError> {
        let invalid = || {
            JsonRpcError::new(
                JsonRpcError::INVALID_PARAMS,
                format!("invalid cursor `{cursor}`"),
            )
        };
        let (generation, offset) = cursor.split_once('.').ok_or_else(invalid)?;
        let generation: u64 = generation.parse().map_err(|_| invalid())?;
        let offset: usize = offset.parse().map_err(|_| invalid())?;
        let kept = self.snapshots.lock().map_err(|_| invalid())?;
        let catalog = kept
            .iter()
            .find(|c| c.generation() == generation)
            .cloned()
            .ok_or_else(|| JsonRpcError::new(
                JsonRpcError::INVALID_PARAMS,
                format!("cursor `{cursor}` has expired: the list changed many times since; list again from the start"),
            ))?;
        Ok((catalog, offset))
    }
}
