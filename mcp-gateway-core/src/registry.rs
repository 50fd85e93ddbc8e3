//! The merged catalogue of every upstream's tools, resources, resource templates and prompts.
//!
//! A [`Catalog`] is an immutable snapshot: readers load it lock-free and route in O(1); writers
//! (one per upstream change, rare) rebuild it whole and bump the generation. Entries are kept as
//! the upstream's raw JSON with only the name rewritten, so fields the gateway does not model
//! (`execution`, `icons`, vendor `_meta`, …) pass through untouched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use serde::Serialize;
use serde_json::Value;

use crate::spec::ServerId;
use crate::upstream::ListKind;

/// One server's lists, exactly as its upstream returned them.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ServerCatalog {
    /// `tools/list` entries.
    pub tools: Vec<Value>,
    /// `resources/list` entries.
    pub resources: Vec<Value>,
    /// `resources/templates/list` entries.
    pub resource_templates: Vec<Value>,
    /// `prompts/list` entries.
    pub prompts: Vec<Value>,
}

/// When tool and prompt names get their server's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PrefixMode {
    /// Always `{prefix}{separator}{name}`: stable names whatever else is connected.
    #[default]
    Always,
    /// Only names that more than one server offers are prefixed.
    OnCollision,
    /// Never: a name offered twice is a collision and only the first server keeps it.
    Never,
}

/// How exposed names are formed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NamingPolicy {
    /// Between prefix and name; `__` by default (clients reject `/` and `.` in tool names).
    pub separator: String,
    /// When the prefix is applied.
    pub mode: PrefixMode,
}

impl Default for NamingPolicy {
    fn default() -> Self {
        Self {
            separator: "__".into(),
            mode: PrefixMode::Always,
        }
    }
}

impl NamingPolicy {
    /// Sets the separator.
    pub fn with_separator(mut self, separator: impl Into<String>) -> Self {
        self.separator = separator.into();
        self
    }

    /// Sets the prefix mode.
    pub fn with_mode(mut self, mode: PrefixMode) -> Self {
        self.mode = mode;
        self
    }
}

/// One merged entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Entry {
    /// The owning server.
    pub server: ServerId,
    /// The name (tools, prompts) or URI (resources, templates) the upstream knows it by.
    pub upstream_name: String,
    /// The upstream's definition with the exposed name.
    pub definition: Value,
}

/// Two servers offered the same exposed name (or resource URI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Collision {
    /// Which list.
    pub kind: ListKind,
    /// The contested name.
    pub name: String,
    /// The server that keeps it (the one added first).
    pub kept: ServerId,
    /// The server whose entry is not exposed.
    pub rejected: ServerId,
}

/// An immutable snapshot of the merged lists.
#[derive(Debug, Default)]
pub struct Catalog {
    generation: u64,
    tools: Vec<Entry>,
    resources: Vec<Entry>,
    resource_templates: Vec<Entry>,
    prompts: Vec<Entry>,
    tool_index: HashMap<String, usize>,
    prompt_index: HashMap<String, usize>,
    resource_index: HashMap<String, usize>,
    /// Literal prefix of each template (up to its first `{`), longest first.
    template_prefixes: Vec<(String, usize)>,
    collisions: Vec<Collision>,
}

impl Catalog {
    /// Bumped on every change; a client that saw generation N has a stale list if this is > N.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Merged tools, in server order.
    pub fn tools(&self) -> &[Entry] {
        &self.tools
    }

    /// Merged resources.
    pub fn resources(&self) -> &[Entry] {
        &self.resources
    }

    /// Merged resource templates.
    pub fn resource_templates(&self) -> &[Entry] {
        &self.resource_templates
    }

    /// Merged prompts.
    pub fn prompts(&self) -> &[Entry] {
        &self.prompts
    }

    /// Current name collisions.
    pub fn collisions(&self) -> &[Collision] {
        &self.collisions
    }

    /// The tool with this exposed name.
    pub fn tool(&self, name: &str) -> Option<&Entry> {
        self.tool_index.get(name).map(|&i| &self.tools[i])
    }

    /// The prompt with this exposed name.
    pub fn prompt(&self, name: &str) -> Option<&Entry> {
        self.prompt_index.get(name).map(|&i| &self.prompts[i])
    }

    /// The server that owns a resource URI: a listed resource, else the template whose literal
    /// prefix is the longest match.
    pub fn resource_owner(&self, uri: &str) -> Option<&ServerId> {
        if let Some(&i) = self.resource_index.get(uri) {
            return Some(&self.resources[i].server);
        }
        self.template_prefixes
            .iter()
            .find(|(prefix, _)| uri.starts_with(prefix.as_str()))
            .map(|&(_, i)| &self.resource_templates[i].server)
    }

    /// How many entries of a list a server has.
    pub fn count(&self, kind: ListKind, server: &ServerId) -> usize {
        let entries = match kind {
            ListKind::Tools => &self.tools,
            ListKind::Resources => &self.resources,
            ListKind::Prompts => &self.prompts,
        };
        entries.iter().filter(|e| &e.server == server).count()
    }
}

/// What one registry update changed.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct RegistryChange {
    /// The generation after the update.
    pub generation: u64,
    /// The lists that changed (empty: nothing did, the generation did not move).
    pub changed: Vec<ListKind>,
    /// Collisions that this update created.
    pub collisions: Vec<Collision>,
}

/// The merged catalogue. The engine calls `set_server` when an upstream connects or reports a
/// list change, `remove_server` when it goes away, and `catalog` on every call and list.
///
/// ```
/// use std::sync::Arc;
/// use mcp_gateway_core::{Catalog, DefaultRegistry, RegistryChange, ServerCatalog, ServerId, ToolRegistry};
///
/// /// Wraps the default registry and logs every change.
/// struct AuditedRegistry(DefaultRegistry);
///
/// impl ToolRegistry for AuditedRegistry {
///     fn set_server(&self, server: &ServerId, prefix: &str, lists: ServerCatalog) -> RegistryChange {
///         let change = self.0.set_server(server, prefix, lists);
///         println!("{server}: generation {}", change.generation);
///         change
///     }
///     fn remove_server(&self, server: &ServerId) -> RegistryChange {
///         self.0.remove_server(server)
///     }
///     fn catalog(&self) -> Arc<Catalog> {
///         self.0.catalog()
///     }
/// }
/// ```
pub trait ToolRegistry: Send + Sync + 'static {
    /// Replaces one server's entries; `prefix` is its namespace.
    fn set_server(&self, server: &ServerId, prefix: &str, lists: ServerCatalog) -> RegistryChange;

    /// Drops one server's entries.
    fn remove_server(&self, server: &ServerId) -> RegistryChange;

    /// The current snapshot. Must be cheap: it is called on every routed call.
    fn catalog(&self) -> Arc<Catalog>;
}

/// The built-in registry: prefixing per [`NamingPolicy`], first-come wins on collisions.
pub struct DefaultRegistry {
    naming: NamingPolicy,
    state: Mutex<RegistryState>,
    current: ArcSwap<Catalog>,
}

#[derive(Default)]
struct RegistryState {
    generation: u64,
    /// In the order servers were first added: that order decides collisions.
    servers: Vec<(ServerId, String, ServerCatalog)>,
}

impl DefaultRegistry {
    /// An empty registry.
    pub fn new(naming: NamingPolicy) -> Self {
        Self {
            naming,
            state: Mutex::new(RegistryState::default()),
            current: ArcSwap::from_pointee(Catalog::default()),
        }
    }

    fn commit(&self, state: &mut RegistryState, changed: Vec<ListKind>) -> RegistryChange {
        if changed.is_empty() {
            return RegistryChange {
                generation: state.generation,
                ..RegistryChange::default()
            };
        }
        let before: Vec<Collision> = self.current.load().collisions.clone();
        state.generation += 1;
        let catalog = build(&self.naming, state);
        let collisions = catalog
            .collisions
            .iter()
            .filter(|c| !before.contains(c))
            .cloned()
            .collect();
        let generation = catalog.generation;
        self.current.store(Arc::new(catalog));
        RegistryChange {
            generation,
            changed,
            collisions,
        }
    }
}

impl Default for DefaultRegistry {
    fn default() -> Self {
        Self::new(NamingPolicy::default())
    }
}

impl ToolRegistry for DefaultRegistry {
    fn set_server(&self, server: &ServerId, prefix: &str, lists: ServerCatalog) -> RegistryChange {
        let Ok(mut state) = self.state.lock() else {
            return RegistryChange::default();
        };
        let changed = match state.servers.iter_mut().find(|(id, ..)| id == server) {
            Some((_, old_prefix, old)) => {
                let renamed = old_prefix != prefix;
                let changed = changed_kinds(old, &lists, renamed);
                *old_prefix = prefix.to_owned();
                *old = lists;
                changed
            }
            None => {
                let changed = changed_kinds(&ServerCatalog::default(), &lists, false);
                state
                    .servers
                    .push((server.clone(), prefix.to_owned(), lists));
                changed
            }
        };
        self.commit(&mut state, changed)
    }

    fn remove_server(&self, server: &ServerId) -> RegistryChange {
        let Ok(mut state) = self.state.lock() else {
            return RegistryChange::default();
        };
        let Some(index) = state.servers.iter().position(|(id, ..)| id == server) else {
            return self.commit(&mut state, Vec::new());
        };
        let (_, _, old) = state.servers.remove(index);
        let changed = changed_kinds(&old, &ServerCatalog::default(), false);
        self.commit(&mut state, changed)
    }

    fn catalog(&self) -> Arc<Catalog> {
        self.current.load_full()
    }
}

fn changed_kinds(old: &ServerCatalog, new: &ServerCatalog, renamed: bool) -> Vec<ListKind> {
    let mut changed = Vec::new();
    if renamed || old.tools != new.tools {
        changed.push(ListKind::Tools);
    }
    if old.resources != new.resources || old.resource_templates != new.resource_templates {
        changed.push(ListKind::Resources);
    }
    if renamed || old.prompts != new.prompts {
        changed.push(ListKind::Prompts);
    }
    changed
}

/// Rebuilds the whole snapshot. Changes are rare (an upstream connects or says its list
/// changed), so a full rebuild keeps the code simple; measured (BENCHMARKS.md), 100 servers ×
/// 100 tools take about 33 ms, so gateways with many large, often-changing upstreams would want
/// an incremental rebuild of the one server that changed.
fn build(naming: &NamingPolicy, state: &RegistryState) -> Catalog {
    let mut catalog = Catalog {
        generation: state.generation,
        ..Catalog::default()
    };
    let named = |catalog: &mut Catalog, kind: ListKind, pick: fn(&ServerCatalog) -> &Vec<Value>| {
        let mut offered: HashMap<&str, usize> = HashMap::new();
        for (_, _, lists) in &state.servers {
            for name in pick(lists)
                .iter()
                .filter_map(|item| item.get("name")?.as_str())
            {
                *offered.entry(name).or_default() += 1;
            }
        }
        let mut entries = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (server, prefix, lists) in &state.servers {
            for item in pick(lists) {
                let Some(name) = item.get("name").and_then(Value::as_str) else {
                    continue;
                };
                let prefixed = match naming.mode {
                    PrefixMode::Always => true,
                    PrefixMode::OnCollision => offered.get(name).copied().unwrap_or(0) > 1,
                    PrefixMode::Never => false,
                };
                let exposed = if prefixed {
                    format!("{prefix}{}{name}", naming.separator)
                } else {
                    name.to_owned()
                };
                if let Some(&first) = index.get(&exposed) {
                    let kept: &Entry = &entries[first];
                    catalog.collisions.push(Collision {
                        kind,
                        name: exposed,
                        kept: kept.server.clone(),
                        rejected: server.clone(),
                    });
                    continue;
                }
                let mut definition = item.clone();
                definition["name"] = Value::String(exposed.clone());
                index.insert(exposed, entries.len());
                entries.push(Entry {
                    server: server.clone(),
                    upstream_name: name.to_owned(),
                    definition,
                });
            }
        }
        (entries, index)
    };
    (catalog.tools, catalog.tool_index) = named(&mut catalog, ListKind::Tools, |l| &l.tools);
    (catalog.prompts, catalog.prompt_index) =
        named(&mut catalog, ListKind::Prompts, |l| &l.prompts);

    for (server, _, lists) in &state.servers {
        for item in &lists.resources {
            let Some(uri) = item.get("uri").and_then(Value::as_str) else {
                continue;
            };
            if let Some(&first) = catalog.resource_index.get(uri) {
                let kept = catalog.resources[first].server.clone();
                catalog.collisions.push(Collision {
                    kind: ListKind::Resources,
                    name: uri.to_owned(),
                    kept,
                    rejected: server.clone(),
                });
                continue;
            }
            catalog
                .resource_index
                .insert(uri.to_owned(), catalog.resources.len());
            catalog.resources.push(Entry {
                server: server.clone(),
                upstream_name: uri.to_owned(),
                definition: item.clone(),
            });
        }
        for item in &lists.resource_templates {
            let Some(template) = item.get("uriTemplate").and_then(Value::as_str) else {
                continue;
            };
            let prefix = template.split('{').next().unwrap_or_default();
            if !prefix.is_empty() {
                catalog
                    .template_prefixes
                    .push((prefix.to_owned(), catalog.resource_templates.len()));
            }
            catalog.resource_templates.push(Entry {
                server: server.clone(),
                upstream_name: template.to_owned(),
                definition: item.clone(),
            });
        }
    }
    catalog
        .template_prefixes
        .sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
    catalog
}

#[cfg(test)]
mod tests;
