//! The merged catalogue of every upstream's tools, resources, resource templates and prompts.
//!
//! A [`Catalog`] is an immutable snapshot: readers load it lock-free and route in O(1); writers
//! (one per upstream change, rare) assemble a new one and bump the generation. Entries are kept as
//! the upstream's raw JSON with only the name rewritten, so fields the gateway does not model
//! (`execution`, `icons`, vendor `_meta`, …) pass through untouched. Each definition is built
//! once and shared by every snapshot until its server's lists change, so a change costs a copy
//! of the changed server's entries plus pointer copies for everyone else's.

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
    /// The upstream's definition with the exposed name, shared between snapshots.
    pub definition: Arc<Value>,
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
    servers: Vec<ServerState>,
}

/// One server's lists and the definitions built from them.
struct ServerState {
    id: ServerId,
    prefix: String,
    lists: ServerCatalog,
    /// Exposed definitions by list and exposed name (or URI), built on first use and kept until
    /// the lists or the prefix change. Under `OnCollision` an entry can have two names over time;
    /// both stay until the next change.
    built: HashMap<(Slot, String), Arc<Value>>,
}

/// The four merged lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Slot {
    Tools,
    Prompts,
    Resources,
    Templates,
}

/// The exposed definition of `item` under `name`: the one already built, or `item` with its
/// `name` replaced when `rename` (resources and templates keep theirs).
fn exposed_definition(
    built: &mut HashMap<(Slot, String), Arc<Value>>,
    slot: Slot,
    name: &str,
    item: &Value,
    rename: bool,
) -> Arc<Value> {
    built
        .entry((slot, name.to_owned()))
        .or_insert_with(|| {
            let mut definition = item.clone();
            if rename {
                definition["name"] = Value::String(name.to_owned());
            }
            Arc::new(definition)
        })
        .clone()
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
        let changed = match state.servers.iter_mut().find(|s| &s.id == server) {
            Some(known) => {
                let renamed = known.prefix != prefix;
                let changed = changed_kinds(&known.lists, &lists, renamed);
                if !changed.is_empty() {
                    known.prefix = prefix.to_owned();
                    known.lists = lists;
                    known.built.clear();
                }
                changed
            }
            None => {
                let changed = changed_kinds(&ServerCatalog::default(), &lists, false);
                state.servers.push(ServerState {
                    id: server.clone(),
                    prefix: prefix.to_owned(),
                    lists,
                    built: HashMap::new(),
                });
                changed
            }
        };
        self.commit(&mut state, changed)
    }

    fn remove_server(&self, server: &ServerId) -> RegistryChange {
        let Ok(mut state) = self.state.lock() else {
            return RegistryChange::default();
        };
        let Some(index) = state.servers.iter().position(|s| &s.id == server) else {
            return self.commit(&mut state, Vec::new());
        };
        let removed = state.servers.remove(index);
        let changed = changed_kinds(&removed.lists, &ServerCatalog::default(), false);
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

/// Assembles the snapshot from every server's lists, reusing the definitions already built: after
/// one change among 100 servers × 100 tools it copies the changed server's 100 definitions and
/// 9,900 pointers (4 ms instead of the 33 ms of a full rebuild; BENCHMARKS.md).
fn build(naming: &NamingPolicy, state: &mut RegistryState) -> Catalog {
    let mut catalog = Catalog {
        generation: state.generation,
        ..Catalog::default()
    };
    (catalog.tools, catalog.tool_index) = merge_named(
        naming,
        &mut state.servers,
        Slot::Tools,
        &mut catalog.collisions,
    );
    (catalog.prompts, catalog.prompt_index) = merge_named(
        naming,
        &mut state.servers,
        Slot::Prompts,
        &mut catalog.collisions,
    );
    for server in &mut state.servers {
        for item in &server.lists.resources {
            let Some(uri) = item.get("uri").and_then(Value::as_str).map(str::to_owned) else {
                continue;
            };
            if let Some(&first) = catalog.resource_index.get(&uri) {
                let kept = catalog.resources[first].server.clone();
                catalog.collisions.push(Collision {
                    kind: ListKind::Resources,
                    name: uri,
                    kept,
                    rejected: server.id.clone(),
                });
                continue;
            }
            let definition =
                exposed_definition(&mut server.built, Slot::Resources, &uri, item, false);
            catalog
                .resource_index
                .insert(uri.clone(), catalog.resources.len());
            catalog.resources.push(Entry {
                server: server.id.clone(),
                upstream_name: uri,
                definition,
            });
        }
        for item in &server.lists.resource_templates {
            let Some(template) = item
                .get("uriTemplate")
                .and_then(Value::as_str)
                .map(str::to_owned)
            else {
                continue;
            };
            let prefix = template.split('{').next().unwrap_or_default();
            if !prefix.is_empty() {
                catalog
                    .template_prefixes
                    .push((prefix.to_owned(), catalog.resource_templates.len()));
            }
            let definition =
                exposed_definition(&mut server.built, Slot::Templates, &template, item, false);
            catalog.resource_templates.push(Entry {
                server: server.id.clone(),
                upstream_name: template,
                definition,
            });
        }
    }
    catalog
        .template_prefixes
        .sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
    catalog
}

/// Merges the tools or the prompts of every server, naming each per the policy; a name offered
/// twice goes to the server added first and the other is recorded as a collision.
fn merge_named(
    naming: &NamingPolicy,
    servers: &mut [ServerState],
    slot: Slot,
    collisions: &mut Vec<Collision>,
) -> (Vec<Entry>, HashMap<String, usize>) {
    let (kind, pick): (ListKind, fn(&ServerCatalog) -> &Vec<Value>) = match slot {
        Slot::Prompts => (ListKind::Prompts, |l| &l.prompts),
        _ => (ListKind::Tools, |l| &l.tools),
    };
    let mut offered: HashMap<String, usize> = HashMap::new();
    if naming.mode == PrefixMode::OnCollision {
        for server in servers.iter() {
            for name in pick(&server.lists)
                .iter()
                .filter_map(|item| item.get("name")?.as_str())
            {
                *offered.entry(name.to_owned()).or_default() += 1;
            }
        }
    }
    let mut entries = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for server in servers.iter_mut() {
        for item in pick(&server.lists) {
            let Some(name) = item.get("name").and_then(Value::as_str) else {
                continue;
            };
            let prefixed = match naming.mode {
                PrefixMode::Always => true,
                PrefixMode::OnCollision => offered.get(name).copied().unwrap_or(0) > 1,
                PrefixMode::Never => false,
            };
            let exposed = if prefixed {
                format!("{}{}{name}", server.prefix, naming.separator)
            } else {
                name.to_owned()
            };
            if let Some(&first) = index.get(&exposed) {
                let kept: &Entry = &entries[first];
                collisions.push(Collision {
                    kind,
                    name: exposed,
                    kept: kept.server.clone(),
                    rejected: server.id.clone(),
                });
                continue;
            }
            let upstream_name = name.to_owned();
            let definition = exposed_definition(&mut server.built, slot, &exposed, item, true);
            index.insert(exposed, entries.len());
            entries.push(Entry {
                server: server.id.clone(),
                upstream_name,
                definition,
            });
        }
    }
    (entries, index)
}

#[cfg(test)]
mod tests;
