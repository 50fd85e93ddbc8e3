//! The [`Gateway`]: owns the upstreams, keeps the registry current, routes calls, and reports
//! every change on the event bus. Built with [`GatewayBuilder`]; cheap to clone.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::future::join_all;
use serde::Serialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::discovery::{DiscoverySource, StaticSource};
use crate::error::{Error, error_chain};
use crate::events::{
    AlertKind, EventBus, EventBusConfig, EventSink, EventSubscription, GatewayEvent, ServerStatus,
};
use crate::health::{HealthProbe, RoundTripProbe};
use crate::registry::{
    Catalog, DefaultRegistry, NamingPolicy, RegistryChange, ServerCatalog, ToolRegistry,
};
use crate::spec::{ServerId, ServerSpec};
use crate::upstream::{Era, ListKind, RequestOptions, Upstream};

mod reconcile;
mod routing;
mod slot;
mod supervisor;

use slot::{Slot, snapshot};

/// Pages followed when listing one upstream's catalogue; a server that pages forever is cut off.
const MAX_LIST_PAGES: usize = 1000;
/// Deadline for stopping everything in [`Gateway::shutdown`].
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);

/// A server as operators see it.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ServerSnapshot {
    /// The id.
    pub id: ServerId,
    /// The transport kind.
    pub transport: &'static str,
    /// The status.
    pub status: ServerStatus,
    /// The era in use, once connected.
    pub era: Option<Era>,
    /// The negotiated protocol version, once connected.
    pub protocol_version: Option<String>,
    /// The server's `serverInfo`, once connected.
    pub server_info: Option<Value>,
    /// The last error, if the last attempt failed.
    pub last_error: Option<String>,
    /// When the next connection attempt starts (ms since the Unix epoch), while waiting for it.
    pub next_attempt_ms: Option<u64>,
    /// Connection failures within the restart policy's window.
    pub recent_failures: u32,
    /// Alerts raised and not yet resolved.
    pub alerts: Vec<AlertKind>,
    /// The discovery source that yielded it (`None`: added through the API).
    pub source: Option<String>,
    /// The spec's tags.
    pub tags: Vec<String>,
}

/// Builds a [`Gateway`].
pub struct GatewayBuilder {
    registry: Option<Arc<dyn ToolRegistry>>,
    naming: NamingPolicy,
    sinks: Vec<Arc<dyn EventSink>>,
    probe: Arc<dyn HealthProbe>,
    sources: Vec<Arc<dyn DiscoverySource>>,
    servers: Vec<ServerSpec>,
    events: EventBusConfig,
}

impl GatewayBuilder {
    /// Uses a custom registry instead of [`DefaultRegistry`].
    pub fn registry(mut self, registry: Arc<dyn ToolRegistry>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Sets the naming policy of the default registry.
    pub fn naming(mut self, naming: NamingPolicy) -> Self {
        self.naming = naming;
        self
    }

    /// Adds an event sink.
    pub fn event_sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// Replaces the default [`RoundTripProbe`].
    pub fn health_probe(mut self, probe: Arc<dyn HealthProbe>) -> Self {
        self.probe = probe;
        self
    }

    /// Adds a discovery source; all sources are merged. Where two yield the same server id, the
    /// one added first wins (the servers given to [`server`](Self::server) before any).
    pub fn discovery(mut self, source: Arc<dyn DiscoverySource>) -> Self {
        self.sources.push(source);
        self
    }

    /// Adds a server known up front.
    pub fn server(mut self, spec: ServerSpec) -> Self {
        self.servers.push(spec);
        self
    }

    /// Sets the event bus's buffer sizes.
    pub fn event_buffers(mut self, config: EventBusConfig) -> Self {
        self.events = config;
        self
    }

    /// Builds the gateway. Nothing connects until [`Gateway::start`].
    pub fn build(self) -> Gateway {
        let events = EventBus::new(self.events);
        for sink in self.sinks {
            events.add_sink(sink);
        }
        let mut sources = self.sources;
        if !self.servers.is_empty() {
            sources.insert(0, Arc::new(StaticSource::new("builder", self.servers)));
        }
        Gateway {
            inner: Arc::new(Inner {
                registry: self
                    .registry
                    .unwrap_or_else(|| Arc::new(DefaultRegistry::new(self.naming))),
                events,
                probe: self.probe,
                yielded: Mutex::new(vec![Vec::new(); sources.len()]),
                sources,
                servers: RwLock::new(HashMap::new()),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
            }),
        }
    }
}

/// The engine. Clones share one gateway.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Arc<dyn ToolRegistry>,
    events: EventBus,
    probe: Arc<dyn HealthProbe>,
    /// In rank order: a source registered earlier wins an id two of them yield.
    sources: Vec<Arc<dyn DiscoverySource>>,
    /// What each source (by rank) yielded at its last successful read, conflicting specs
    /// included, so a conflict's loser can take the id over when the winner lets it go.
    yielded: Mutex<Vec<Vec<ServerSpec>>>,
    servers: RwLock<HashMap<ServerId, Arc<Slot>>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl Gateway {
    /// A builder with the defaults: [`DefaultRegistry`], [`RoundTripProbe`], no sinks.
    pub fn builder() -> GatewayBuilder {
        GatewayBuilder {
            registry: None,
            naming: NamingPolicy::default(),
            sinks: Vec::new(),
            probe: Arc::new(RoundTripProbe),
            sources: Vec::new(),
            servers: Vec::new(),
            events: EventBusConfig::default(),
        }
    }

    /// Adds a server and waits for its first connection attempt. On failure the server stays
    /// listed with status `failed` and the error names the server and the cause.
    pub async fn add_server(&self, spec: ServerSpec) -> Result<(), Error> {
        self.add(spec, None).await
    }

    /// Stops a server and starts it again from its spec (a failed server is retried afresh).
    pub async fn restart_server(&self, id: &str) -> Result<(), Error> {
        let slot = self
            .slot(id)
            .ok_or_else(|| Error::UnknownServer(id.to_owned()))?;
        self.remove_server(id).await?;
        self.add(slot.spec.clone(), slot.owner.clone()).await
    }

    /// Re-reads one list from the upstream after it said the list changed.
    async fn refresh(&self, slot: &Arc<Slot>, upstream: &Upstream, kind: ListKind) {
        let server = &slot.spec.id;
        let fetched = match kind {
            ListKind::Tools => list_all(upstream, "tools/list", "tools")
                .await
                .map(|tools| (filter_tools(&slot.spec, tools), Vec::new())),
            ListKind::Prompts => list_all(upstream, "prompts/list", "prompts")
                .await
                .map(|prompts| (prompts, Vec::new())),
            ListKind::Resources => tokio::try_join!(
                list_all(upstream, "resources/list", "resources"),
                list_all(upstream, "resources/templates/list", "resourceTemplates"),
            ),
        };
        let (items, templates) = match fetched {
            Ok(fetched) => fetched,
            Err(err) => {
                tracing::warn!(server = %server, ?kind, error = ?error_chain(&err), "list refresh failed");
                return;
            }
        };
        let lists = {
            let mut state = slot.state();
            match kind {
                ListKind::Tools => state.lists.tools = items,
                ListKind::Prompts => state.lists.prompts = items,
                ListKind::Resources => {
                    state.lists.resources = items;
                    state.lists.resource_templates = templates;
                }
            }
            state.lists.clone()
        };
        let change = self
            .inner
            .registry
            .set_server(server, slot.spec.prefix(), lists);
        self.report(server, change);
    }

    /// Emits the events of a registry change.
    fn report(&self, server: &ServerId, change: RegistryChange) {
        let catalog = self.inner.registry.catalog();
        for kind in change.changed {
            self.inner.events.emit(GatewayEvent::ListChanged {
                kind,
                server: server.clone(),
                generation: change.generation,
                count: catalog.count(kind, server),
            });
        }
        for collision in change.collisions {
            tracing::warn!(name = %collision.name, kept = %collision.kept, rejected = %collision.rejected, "name collision");
            self.inner.events.emit(GatewayEvent::NameCollision {
                kind: collision.kind,
                name: collision.name,
                kept: collision.kept,
                rejected: collision.rejected,
            });
        }
    }

    /// Stops and forgets a server; its entries leave the registry.
    pub async fn remove_server(&self, id: &str) -> Result<(), Error> {
        let slot = self
            .servers_mut()
            .remove(id)
            .ok_or_else(|| Error::UnknownServer(id.to_owned()))?;
        self.retire(&slot, "removed").await;
        Ok(())
    }

    /// Every server, sorted by id.
    pub fn servers(&self) -> Vec<ServerSnapshot> {
        let mut servers: Vec<_> = self.slots().iter().map(|slot| snapshot(slot)).collect();
        servers.sort_by(|a, b| a.id.cmp(&b.id));
        servers
    }

    /// One server.
    pub fn server(&self, id: &str) -> Option<ServerSnapshot> {
        self.slot(id).map(|slot| snapshot(&slot))
    }

    /// The live connection of a server.
    pub fn upstream(&self, id: &str) -> Result<Upstream, Error> {
        let slot = self
            .slot(id)
            .ok_or_else(|| Error::UnknownServer(id.to_owned()))?;
        let state = slot.state();
        match &state.upstream {
            Some(upstream) if upstream.closed_reason().is_none() => Ok(upstream.clone()),
            _ => {
                let mut reason = serde_json::to_value(state.status)
                    .ok()
                    .and_then(|s| s.as_str().map(str::to_owned))
                    .unwrap_or_default();
                if let Some(next) = state.next_attempt {
                    let wait = next.duration_since(SystemTime::now()).unwrap_or_default();
                    reason.push_str(&format!(" (next attempt in {:.1} s)", wait.as_secs_f64()));
                }
                if let Some(error) = &state.last_error {
                    reason.push_str(": ");
                    reason.push_str(error);
                }
                Err(Error::NotConnected {
                    server: slot.spec.id.clone(),
                    reason,
                })
            }
        }
    }

    /// Every live upstream connection.
    pub fn upstreams(&self) -> Vec<Upstream> {
        self.slots()
            .iter()
            .filter_map(|slot| slot.state().upstream.clone())
            .filter(|upstream| upstream.closed_reason().is_none())
            .collect()
    }

    /// The live connection of the server that owns a resource URI.
    pub fn resource_upstream(&self, uri: &str) -> Result<Upstream, Error> {
        let catalog = self.catalog();
        let owner = catalog
            .resource_owner(uri)
            .ok_or_else(|| Error::UnknownResource(uri.to_owned()))?;
        self.upstream(owner.as_str())
    }

    /// The merged catalogue snapshot.
    pub fn catalog(&self) -> Arc<Catalog> {
        self.inner.registry.catalog()
    }

    /// The event bus (to add sinks or read history).
    pub fn events(&self) -> &EventBus {
        &self.inner.events
    }

    /// A stream of every event from now on.
    pub fn subscribe(&self) -> EventSubscription {
        self.inner.events.subscribe()
    }

    /// Runs the health probe once against a server, bounded by its request timeout; returns the
    /// round-trip time.
    pub async fn check_health(&self, id: &str) -> Result<Duration, Error> {
        let upstream = self.upstream(id)?;
        let timeout = self
            .slot(id)
            .map(|slot| slot.spec.request_timeout)
            .unwrap_or(Duration::from_secs(10));
        let started = Instant::now();
        match tokio::time::timeout(timeout, self.inner.probe.probe(&upstream)).await {
            Ok(Ok(())) => Ok(started.elapsed()),
            Ok(Err(err)) => Err(Error::transport(
                upstream.server(),
                format!("health probe failed: {}", error_chain(err.as_ref())),
            )),
            Err(_) => Err(Error::Timeout {
                server: upstream.server().clone(),
                method: "the health probe".into(),
                after: timeout,
            }),
        }
    }

    /// Stops taking work, closes every upstream (stopping child processes) and waits for the
    /// gateway's tasks, within a deadline.
    pub async fn shutdown(&self) {
        if self.inner.shutdown.is_cancelled() {
            return;
        }
        self.inner.events.emit(GatewayEvent::GatewayStopping);
        self.inner.shutdown.cancel();
        let slots: Vec<Arc<Slot>> = self.servers_mut().drain().map(|(_, slot)| slot).collect();
        let stopping = slots
            .iter()
            .map(|slot| self.stop_slot(slot, "gateway shutdown"));
        let _ = tokio::time::timeout(SHUTDOWN_DEADLINE, join_all(stopping)).await;
        self.inner.tasks.close();
        let _ = tokio::time::timeout(SHUTDOWN_DEADLINE, self.inner.tasks.wait()).await;
    }
}

/// What a caught panic said, for people.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|message| (*message).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

fn filter_tools(spec: &ServerSpec, tools: Vec<Value>) -> Vec<Value> {
    tools
        .into_iter()
        .filter(|tool| {
            tool["name"]
                .as_str()
                .is_some_and(|name| spec.exposes_tool(name))
        })
        .collect()
}

/// Loads every list the server's capabilities say it has. The lists are independent, so they are
/// asked for at once: a connect costs one round trip for them, not four.
async fn fetch_lists(upstream: &Upstream, spec: &ServerSpec) -> Result<ServerCatalog, Error> {
    let peer = upstream.peer();
    let list_if = |capability: &str, method: &'static str, key: &'static str| {
        let offered = peer.has_capability(capability);
        async move {
            if offered {
                list_all(upstream, method, key).await
            } else {
                Ok(Vec::new())
            }
        }
    };
    let (tools, resources, resource_templates, prompts) = tokio::try_join!(
        list_if("tools", "tools/list", "tools"),
        list_if("resources", "resources/list", "resources"),
        list_if("resources", "resources/templates/list", "resourceTemplates"),
        list_if("prompts", "prompts/list", "prompts"),
    )?;
    Ok(ServerCatalog {
        tools: filter_tools(spec, tools),
        resources,
        resource_templates,
        prompts,
    })
}

/// Follows `nextCursor` through every page of a list.
async fn list_all(upstream: &Upstream, method: &str, key: &str) -> Result<Vec<Value>, Error> {
    let mut items = Vec::new();
    let mut cursor: Option<Value> = None;
    for _ in 0..MAX_LIST_PAGES {
        let params = cursor.take().map(|cursor| json!({ "cursor": cursor }));
        let mut page = upstream
            .request(method, params, &RequestOptions::default())
            .await?;
        if let Some(Value::Array(page_items)) = page.get_mut(key).map(Value::take) {
            items.extend(page_items);
        }
        match page.get("nextCursor") {
            Some(next) if !next.is_null() => cursor = Some(next.clone()),
            _ => return Ok(items),
        }
    }
    Err(Error::transport(
        upstream.server(),
        format!("`{method}` still had more pages after {MAX_LIST_PAGES}"),
    ))
}
