//! Resource URIs: what parses, what does not, and which writes change which resource.

use std::collections::HashSet;
use std::sync::Arc;

use super::*;

#[test]
fn both_graph_uris_and_percent_encoded_entity_uris_parse() {
    assert_eq!(ResourceKey::parse(GRAPH_URI), Some(ResourceKey::Graph));
    assert_eq!(
        ResourceKey::parse(REFERENCE_GRAPH_URI),
        Some(ResourceKey::Graph)
    );
    assert_eq!(
        ResourceKey::parse("memory://entities/Alice%20Smith%2F%C3%A9"),
        Some(ResourceKey::Entity("Alice Smith/é".to_owned()))
    );
    assert_eq!(
        ResourceKey::parse("memory://entities/plain"),
        Some(ResourceKey::Entity("plain".to_owned()))
    );
}

#[test]
fn other_uris_do_not_parse() {
    for uri in [
        "memory://graph/",
        "memory://nope",
        "file:///etc/passwd",
        "memory://entities",
        "memory://entities/%FF",
    ] {
        assert_eq!(ResourceKey::parse(uri), None, "{uri}");
    }
}

#[test]
fn the_graph_changes_with_every_write_an_entity_only_with_its_own() {
    let touched: Touched = Arc::new(HashSet::from(["Alice".to_owned()]));
    let alice = ResourceKey::Entity("Alice".to_owned());
    let bob = ResourceKey::Entity("Bob".to_owned());
    assert!(ResourceKey::Graph.is_changed_by(Some(&touched)));
    assert!(alice.is_changed_by(Some(&touched)));
    assert!(!bob.is_changed_by(Some(&touched)));
    // After a lag nobody knows what changed: everyone is told.
    assert!(bob.is_changed_by(None));
}

#[test]
fn the_lists_name_the_graph_twice_and_one_template() {
    let uris: Vec<String> = list().into_iter().map(|r| r.uri).collect();
    assert_eq!(uris, [GRAPH_URI, REFERENCE_GRAPH_URI]);
    let templates: Vec<String> = templates().into_iter().map(|t| t.uri_template).collect();
    assert_eq!(templates, [ENTITY_TEMPLATE]);
}
