use serde_json::{Value, json};

use super::*;

fn id(name: &str) -> ServerId {
    ServerId::new(name).expect("valid id")
}

fn tools(names: &[&str]) -> ServerCatalog {
    ServerCatalog {
        tools: names
            .iter()
            .map(|name| json!({ "name": name, "inputSchema": { "type": "object" }, "x-vendor": { "kept": true } }))
            .collect(),
        ..ServerCatalog::default()
    }
}

fn exposed(catalog: &Catalog) -> Vec<&str> {
    catalog
        .tools()
        .iter()
        .map(|entry| entry.definition["name"].as_str().unwrap_or_default())
        .collect()
}

#[test]
fn prefixes_names_and_routes_back_to_the_upstream_name() {
    let registry = DefaultRegistry::default();
    registry.set_server(&id("a"), "a", tools(&["search"]));
    registry.set_server(&id("b"), "b", tools(&["search", "fetch"]));
    let catalog = registry.catalog();
    assert_eq!(exposed(&catalog), ["a__search", "b__search", "b__fetch"]);
    let route = catalog.tool("b__search").expect("routed");
    assert_eq!(route.server, id("b"));
    assert_eq!(route.upstream_name, "search");
    // Unmodelled fields pass through.
    assert_eq!(route.definition["x-vendor"], json!({ "kept": true }));
    assert!(catalog.collisions().is_empty());
}

#[test]
fn the_generation_moves_only_when_something_changed() {
    let registry = DefaultRegistry::default();
    let first = registry.set_server(&id("a"), "a", tools(&["one"]));
    assert_eq!(first.generation, 1);
    assert_eq!(first.changed, [ListKind::Tools]);
    let same = registry.set_server(&id("a"), "a", tools(&["one"]));
    assert_eq!(same.generation, 1);
    assert!(same.changed.is_empty());
    let more = registry.set_server(&id("a"), "a", tools(&["one", "two"]));
    assert_eq!(more.generation, 2);
    let removed = registry.remove_server(&id("a"));
    assert_eq!(removed.generation, 3);
    assert!(registry.catalog().tools().is_empty());
    assert_eq!(registry.remove_server(&id("a")).generation, 3);
}

#[test]
fn a_collision_names_both_servers_and_never_shadows() {
    let registry = DefaultRegistry::new(NamingPolicy::default().with_mode(PrefixMode::Never));
    registry.set_server(&id("first"), "first", tools(&["search"]));
    let change = registry.set_server(&id("second"), "second", tools(&["search", "other"]));
    assert_eq!(
        change.collisions,
        [Collision {
            kind: ListKind::Tools,
            name: "search".into(),
            kept: id("first"),
            rejected: id("second"),
        }]
    );
    let catalog = registry.catalog();
    assert_eq!(
        catalog.tool("search").map(|e| e.server.clone()),
        Some(id("first"))
    );
    assert_eq!(exposed(&catalog), ["search", "other"]);
    // The collision is reported once, not again on unrelated updates.
    let unrelated = registry.set_server(&id("third"), "third", tools(&["third_tool"]));
    assert!(unrelated.collisions.is_empty());
    assert_eq!(registry.catalog().collisions().len(), 1);
}

#[test]
fn on_collision_mode_prefixes_only_shared_names_with_a_custom_separator() {
    let naming = NamingPolicy::default()
        .with_mode(PrefixMode::OnCollision)
        .with_separator("-");
    let registry = DefaultRegistry::new(naming);
    registry.set_server(&id("a"), "a", tools(&["search", "only_a"]));
    registry.set_server(&id("b"), "b", tools(&["search"]));
    assert_eq!(
        exposed(&registry.catalog()),
        ["a-search", "only_a", "b-search"]
    );
}

#[test]
fn resources_route_by_uri_then_by_the_longest_template_prefix() {
    let registry = DefaultRegistry::default();
    let lists = |resources: Value, templates: Value| ServerCatalog {
        resources: serde_json::from_value(resources).expect("array"),
        resource_templates: serde_json::from_value(templates).expect("array"),
        ..ServerCatalog::default()
    };
    registry.set_server(
        &id("files"),
        "files",
        lists(
            json!([{ "uri": "file:///readme" }]),
            json!([{ "uriTemplate": "file:///{path}" }]),
        ),
    );
    registry.set_server(
        &id("logs"),
        "logs",
        lists(
            json!([]),
            json!([{ "uriTemplate": "file:///var/log/{name}" }]),
        ),
    );
    let catalog = registry.catalog();
    assert_eq!(catalog.resource_owner("file:///readme"), Some(&id("files")));
    assert_eq!(
        catalog.resource_owner("file:///var/log/syslog"),
        Some(&id("logs"))
    );
    assert_eq!(
        catalog.resource_owner("file:///etc/hosts"),
        Some(&id("files"))
    );
    assert_eq!(catalog.resource_owner("memory://graph"), None);
}

#[test]
fn a_change_rebuilds_only_the_changed_servers_definitions() {
    let registry = DefaultRegistry::default();
    registry.set_server(&id("a"), "a", tools(&["search"]));
    registry.set_server(&id("b"), "b", tools(&["fetch"]));
    let before = registry.catalog();
    registry.set_server(&id("b"), "b", tools(&["fetch", "store"]));
    let after = registry.catalog();
    let definition = |catalog: &Catalog, name: &str| {
        catalog
            .tool(name)
            .map(|entry| entry.definition.clone())
            .expect("listed")
    };
    // The unchanged server's definition is shared, not copied; the changed server's is new.
    assert!(Arc::ptr_eq(
        &definition(&before, "a__search"),
        &definition(&after, "a__search")
    ));
    assert!(!Arc::ptr_eq(
        &definition(&before, "b__fetch"),
        &definition(&after, "b__fetch")
    ));
    assert_eq!(exposed(&after), ["a__search", "b__fetch", "b__store"]);
    // A new prefix renames every entry of that server.
    registry.set_server(&id("a"), "alpha", tools(&["search"]));
    assert_eq!(
        exposed(&registry.catalog()),
        ["alpha__search", "b__fetch", "b__store"]
    );
}
