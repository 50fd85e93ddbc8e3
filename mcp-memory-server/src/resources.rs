//! The graph as MCP resources: `memory://graph` (the whole graph), `memory://knowledge-graph`
//! (the same, under the URI the reference server uses) and the template
//! `memory://entities/{name}` (one entity and the relations that touch it).

use percent_encoding::percent_decode_str;
use rmcp::model::{Resource, ResourceTemplate};

use crate::store::Touched;

#[cfg(test)]
mod tests;

/// The whole graph.
pub(crate) const GRAPH_URI: &str = "memory://graph";
/// The whole graph, under the reference server's URI.
pub(crate) const REFERENCE_GRAPH_URI: &str = "memory://knowledge-graph";
/// One entity and its incident relations; `{name}` is percent-encoded.
pub(crate) const ENTITY_TEMPLATE: &str = "memory://entities/{name}";

const ENTITY_PREFIX: &str = "memory://entities/";
const JSON: &str = "application/json";

/// What a resource URI names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ResourceKey {
    Graph,
    Entity(String),
}

impl ResourceKey {
    /// Parses one of this server's URIs; `None` for anything else.
    pub(crate) fn parse(uri: &str) -> Option<Self> {
        if uri == GRAPH_URI || uri == REFERENCE_GRAPH_URI {
            return Some(Self::Graph);
        }
        let encoded = uri.strip_prefix(ENTITY_PREFIX)?;
        let name = percent_decode_str(encoded).decode_utf8().ok()?;
        Some(Self::Entity(name.into_owned()))
    }

    /// Whether a write that touched these entities changes this resource; `None` means the
    /// writes are unknown (a subscriber lagged), so assume it did.
    pub(crate) fn is_changed_by(&self, touched: Option<&Touched>) -> bool {
        match (self, touched) {
            (Self::Graph, _) | (_, None) => true,
            (Self::Entity(name), Some(touched)) => touched.contains(name),
        }
    }
}

/// `resources/list`: the two names of the whole graph. Entities are reached through the
/// template, so the list stays short however large the graph grows.
pub(crate) fn list() -> Vec<Resource> {
    vec![
        Resource::new(GRAPH_URI, "graph")
            .with_title("Knowledge Graph")
            .with_description("The full knowledge graph with all entities and relations")
            .with_mime_type(JSON),
        Resource::new(REFERENCE_GRAPH_URI, "knowledge-graph")
            .with_title("Knowledge Graph")
            .with_description(
                "The full knowledge graph (the URI @modelcontextprotocol/server-memory uses)",
            )
            .with_mime_type(JSON),
    ]
}

/// `resources/templates/list`.
pub(crate) fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(ENTITY_TEMPLATE, "entity")
            .with_title("Entity")
            .with_description(
                "One entity and every relation that starts or ends at it; the name is \
                 percent-encoded",
            )
            .with_mime_type(JSON),
    ]
}
