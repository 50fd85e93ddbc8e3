//! `MemoryServer`: the rmcp `ServerHandler` over a shared store — tools, resources, and
//! resource-change notifications in both protocol eras.
//!
//! * Session era (2025-11-25 and earlier): `resources/subscribe` records the URI on the
//!   handler's session, and one forwarding task per subscribed session turns store changes into
//!   `notifications/resources/updated`. The task ends with the session.
//! * Stateless era (2026-07-28): `subscriptions/listen` names the URIs up front; the listen
//!   request itself stays open and carries the notifications until the client cancels it.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, ResourceContents, ResourceUpdatedNotificationParam,
    ServerCapabilities, ServerConfig, SubscribeRequestParams, SubscriptionFilter, Tool,
    UnsubscribeRequestParams,
};
use rmcp::service::{Peer, RequestContext, SubscriptionContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::MemoryError;
use crate::resources::{self, ResourceKey};
use crate::store::{Store, Touched};
use crate::tools;

#[cfg(test)]
mod tests;

/// The knowledge-graph MCP server, compatible with `@modelcontextprotocol/server-memory`.
///
/// Open it once per memory file and hand a clone to each connection. Clones share the store
/// (the graph, the file and its lock); each clone is a fresh handler with its own, empty set of
/// `resources/subscribe` subscriptions, because rmcp runs one handler per connection or
/// session. That is how [`serve_http`](crate::serve_http) uses it, and how the gateway runs it
/// in-process: `InProcessServer::new("memory", move || server.clone())`. Any rmcp transport
/// works the same way:
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use mcp_memory_server::{MemoryServer, default_memory_file};
/// use rmcp::ServiceExt;
///
/// let server = MemoryServer::open(default_memory_file())?;
/// let (client_side, server_side) = tokio::io::duplex(1 << 20);
/// let running = server.clone().serve(server_side).await?;
/// // ... an MCP client talks over `client_side` ...
/// # drop(client_side);
/// running.waiting().await?;
/// # Ok(()) }
/// ```
pub struct MemoryServer {
    store: Arc<Store>,
    session: Arc<Session>,
}

impl MemoryServer {
    /// Opens (or creates) the JSON-lines memory file at `path` and loads it.
    ///
    /// This blocks on file I/O (a 100k-entity file takes a fraction of a second); from async
    /// code with a large file, call it inside `tokio::task::spawn_blocking`.
    ///
    /// # Errors
    ///
    /// [`MemoryError::Corrupt`] names the first bad line, [`MemoryError::Locked`] means another
    /// server has the file, [`MemoryError::Open`] covers the rest. The file is never modified
    /// by a failed open.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, MemoryError> {
        Ok(Self {
            store: Arc::new(Store::open(path.as_ref())?),
            session: Arc::default(),
        })
    }

    /// The memory file this server reads and writes.
    pub fn path(&self) -> &Path {
        self.store.path()
    }
}

impl Clone for MemoryServer {
    /// Shares the store; starts with no subscriptions (see the type's documentation).
    fn clone(&self) -> Self {
        Self {
            store: Arc::clone(&self.store),
            session: Arc::default(),
        }
    }
}

impl fmt::Debug for MemoryServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryServer")
            .field("path", &self.store.path())
            .finish_non_exhaustive()
    }
}

/// The session-era subscriptions of one handler.
#[derive(Debug, Default)]
struct Session {
    /// Subscribed URI, as the client spelled it → what it names.
    subscriptions: Mutex<HashMap<String, ResourceKey>>,
    /// Whether the forwarding task runs.
    forwarding: AtomicBool,
    /// Cancelled when the handler (so the session) goes away; stops the forwarding task.
    closed: CancellationToken,
}

impl Session {
    fn subscriptions(&self) -> MutexGuard<'_, HashMap<String, ResourceKey>> {
        // The map is valid after any panic (inserts and removes are atomic), so keep using it.
        self.subscriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.closed.cancel();
    }
}

/// Waits for a change; `Some(None)` means changes were missed (lagged), `None` that the store
/// is gone.
async fn next_change(changes: &mut broadcast::Receiver<Touched>) -> Option<Option<Touched>> {
    match changes.recv().await {
        Ok(touched) => Some(Some(touched)),
        Err(broadcast::error::RecvError::Lagged(_)) => Some(None),
        Err(broadcast::error::RecvError::Closed) => None,
    }
}

/// Sends `notifications/resources/updated` to one session-era client for each change to a
/// resource it subscribed to, until the session ends.
async fn forward_changes(
    session: Weak<Session>,
    closed: CancellationToken,
    mut changes: broadcast::Receiver<Touched>,
    peer: Peer<RoleServer>,
) {
    loop {
        let touched = tokio::select! {
            () = closed.cancelled() => return,
            change = next_change(&mut changes) => match change {
                Some(touched) => touched,
                None => return,
            },
        };
        let uris: Vec<String> = {
            let Some(session) = session.upgrade() else {
                return;
            };
            session
                .subscriptions()
                .iter()
                .filter(|(_, key)| key.is_changed_by(touched.as_ref()))
                .map(|(uri, _)| uri.clone())
                .collect()
        };
        for uri in uris {
            let update = ResourceUpdatedNotificationParam::new(uri);
            if peer.notify_resource_updated(update).await.is_err() {
                return;
            }
        }
    }
}

fn unknown_resource(uri: &str) -> ErrorData {
    ErrorData::resource_not_found(format!("resource {uri} not found"), None)
}

impl ServerHandler for MemoryServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_resources_subscribe()
            .build();
        let mut config = ServerConfig::new(capabilities);
        config.server_info = Implementation::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));
        config
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(
            tools::definitions().to_vec(),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools::definition(name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        tools::call(&self.store, &request.name, request.arguments)
            .await
            .map(Into::into)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(resources::list()))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(
            resources::templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let uri = request.uri;
        let key = ResourceKey::parse(&uri).ok_or_else(|| unknown_resource(&uri))?;
        let graph = self
            .store
            .run(move |store| match key {
                ResourceKey::Graph => Some(store.read_graph()),
                ResourceKey::Entity(name) => store.entity(&name),
            })
            .await
            .map_err(|err| ErrorData::internal_error(format!("reading failed: {err}"), None))?
            .ok_or_else(|| unknown_resource(&uri))?;
        let text = serde_json::to_string_pretty(&graph).map_err(|err| {
            ErrorData::internal_error(format!("could not serialise the graph: {err}"), None)
        })?;
        let contents = ResourceContents::text(text, uri).with_mime_type("application/json");
        Ok(ReadResourceResult::new(vec![contents]).into())
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let key = ResourceKey::parse(&request.uri).ok_or_else(|| {
            ErrorData::invalid_params(format!("unknown resource: {}", request.uri), None)
        })?;
        // Listen before answering, so a change right after the answer is not missed.
        self.session.subscriptions().insert(request.uri, key);
        if !self.session.forwarding.swap(true, Ordering::SeqCst) {
            tokio::spawn(forward_changes(
                Arc::downgrade(&self.session),
                self.session.closed.clone(),
                self.store.subscribe(),
                context.peer,
            ));
        }
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.session.subscriptions().remove(&request.uri);
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let uris: Vec<String> = requested
            .resource_subscriptions
            .iter()
            .flatten()
            .filter(|uri| ResourceKey::parse(uri).is_some())
            .cloned()
            .collect();
        let mut accepted = SubscriptionFilter::new();
        accepted.resource_subscriptions = (!uris.is_empty()).then_some(uris);
        Some(accepted)
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let mut changes = self.store.subscribe();
        let watched: Vec<(String, ResourceKey)> = context
            .accepted()
            .resource_subscriptions
            .iter()
            .flatten()
            .filter_map(|uri| Some((uri.clone(), ResourceKey::parse(uri)?)))
            .collect();
        loop {
            let touched = tokio::select! {
                () = context.cancelled() => return Ok(()),
                change = next_change(&mut changes) => match change {
                    Some(touched) => touched,
                    None => return Ok(()),
                },
            };
            for (uri, key) in &watched {
                if key.is_changed_by(touched.as_ref())
                    && context
                        .sink()
                        .notify_resource_updated(uri.clone())
                        .await
                        .is_err()
                {
                    // The listen request is over (cancelled or its stream closed).
                    return Ok(());
                }
            }
        }
    }
}
