//! Tool calls end to end against a store: result shapes, argument errors that name the field,
//! the size limits, and the definitions themselves.

use tempfile::TempDir;

use super::*;

fn store() -> (TempDir, Arc<Store>) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = Store::open(&dir.path().join("memory.jsonl")).expect("opens");
    (dir, Arc::new(store))
}

fn args(value: Value) -> Option<JsonObject> {
    match value {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

fn text(result: &CallToolResult) -> &str {
    match result.content.first().and_then(ContentBlock::as_text) {
        Some(text) => &text.text,
        None => panic!("expected text content, got {:?}", result.content),
    }
}

async fn ok(store: &Arc<Store>, tool: &str, arguments: Value) -> CallToolResult {
    let result = call(store, tool, args(arguments))
        .await
        .expect("no protocol error");
    assert_ne!(result.is_error, Some(true), "{}", text(&result));
    result
}

async fn tool_error(store: &Arc<Store>, tool: &str, arguments: Value) -> String {
    let result = call(store, tool, args(arguments))
        .await
        .expect("no protocol error");
    assert_eq!(result.is_error, Some(true), "{result:?}");
    text(&result).to_owned()
}

#[tokio::test]
async fn results_carry_pretty_text_and_the_same_structured_content() {
    let (_dir, store) = store();
    let created = ok(
        &store,
        "create_entities",
        json!({ "entities": [{ "name": "A", "entityType": "t", "observations": ["o"] }] }),
    )
    .await;
    let structured = created.structured_content.clone().expect("structured");
    assert_eq!(
        structured,
        json!({ "entities": [{ "name": "A", "entityType": "t", "observations": ["o"] }] })
    );
    let from_text: Value = serde_json::from_str(text(&created)).expect("JSON text");
    assert_eq!(from_text, structured["entities"]);
    assert!(
        text(&created).contains("\n  {\n    \"name\": \"A\""),
        "{}",
        text(&created)
    );

    let graph = ok(&store, "read_graph", json!({})).await;
    let structured = graph.structured_content.clone().expect("structured");
    let from_text: Value = serde_json::from_str(text(&graph)).expect("JSON text");
    assert_eq!(from_text, structured);
    assert_eq!(structured["relations"], json!([]));

    let deleted = ok(&store, "delete_entities", json!({ "entityNames": ["A"] })).await;
    assert_eq!(text(&deleted), "Entities deleted successfully");
    assert_eq!(
        deleted.structured_content,
        Some(json!({ "success": true, "message": "Entities deleted successfully" }))
    );
}

#[tokio::test]
async fn an_unknown_entity_is_a_tool_error_in_the_reference_wording() {
    let (_dir, store) = store();
    let message = tool_error(
        &store,
        "add_observations",
        json!({ "observations": [{ "entityName": "Ghost", "contents": ["boo"] }] }),
    )
    .await;
    assert_eq!(message, "Entity with name Ghost not found");
}

#[tokio::test]
async fn bad_arguments_are_tool_errors_naming_the_field() {
    let (_dir, store) = store();
    let cases = [
        ("create_entities", json!({}), "missing field `entities`"),
        (
            "create_entities",
            json!({ "entities": [{ "name": "A", "entityType": "t" }] }),
            "missing field `observations` at entities[0]",
        ),
        (
            "create_entities",
            json!({ "entities": "nope" }),
            "expected a sequence at entities",
        ),
        (
            "create_relations",
            json!({ "relations": [{ "from": "A", "to": 7, "relationType": "r" }] }),
            "at relations[0].to",
        ),
        ("search_nodes", json!({ "query": 5 }), "at query"),
        ("open_nodes", json!({ "names": [null] }), "at names[0]"),
    ];
    for (tool, arguments, needle) in cases {
        let message = tool_error(&store, tool, arguments).await;
        assert!(
            message.starts_with(&format!(
                "Input validation error: Invalid arguments for tool {tool}: "
            )),
            "{message}"
        );
        assert!(message.contains(needle), "{tool}: {message}");
    }
    // Nothing above was stored.
    let graph = ok(&store, "read_graph", json!({})).await;
    assert_eq!(
        graph.structured_content,
        Some(json!({ "entities": [], "relations": [] }))
    );
}

#[tokio::test]
async fn strings_over_the_limits_are_refused_before_anything_is_stored() {
    let (_dir, store) = store();
    let long_name = "n".repeat(MAX_NAME_BYTES + 1);
    let message = tool_error(
        &store,
        "create_entities",
        json!({ "entities": [
            { "name": "fine", "entityType": "t", "observations": [] },
            { "name": &long_name, "entityType": "t", "observations": [] },
        ] }),
    )
    .await;
    assert!(
        message.contains(&format!(
            "entities[1].name is {} bytes long; the limit is {MAX_NAME_BYTES} bytes",
            MAX_NAME_BYTES + 1
        )),
        "{message}"
    );
    let huge = "o".repeat(MAX_OBSERVATION_BYTES + 1);
    let message = tool_error(
        &store,
        "add_observations",
        json!({ "observations": [{ "entityName": "fine", "contents": ["ok", huge] }] }),
    )
    .await;
    assert!(
        message.contains("observations[0].contents[1] is"),
        "{message}"
    );
    let message = tool_error(
        &store,
        "create_relations",
        json!({ "relations": [{ "from": "a", "to": "b", "relationType": &long_name }] }),
    )
    .await;
    assert!(
        message.contains("relations[0].relationType is"),
        "{message}"
    );
    let graph = ok(&store, "read_graph", json!({})).await;
    assert_eq!(
        graph.structured_content,
        Some(json!({ "entities": [], "relations": [] }))
    );
    // The limits are on what gets stored, not on lookups.
    ok(&store, "search_nodes", json!({ "query": &long_name })).await;
}

#[tokio::test]
async fn an_unknown_tool_is_invalid_params() {
    let (_dir, store) = store();
    let err = call(&store, "drop_tables", None)
        .await
        .expect_err("protocol error");
    assert_eq!(err.code, rmcp::model::ErrorCode::INVALID_PARAMS);
    assert_eq!(err.message, "unknown tool: drop_tables");
}

#[test]
fn nine_tools_with_output_schemas_and_truthful_hints() {
    let names: Vec<&str> = definitions().iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(
        names,
        [
            "create_entities",
            "create_relations",
            "add_observations",
            "delete_entities",
            "delete_observations",
            "delete_relations",
            "read_graph",
            "search_nodes",
            "open_nodes",
        ]
    );
    for tool in definitions() {
        assert!(tool.output_schema.is_some(), "{}", tool.name);
        let hints = tool.annotations.as_ref().expect("annotated");
        let read_only = hints.read_only_hint == Some(true);
        assert_eq!(
            read_only,
            ["read_graph", "search_nodes", "open_nodes"].contains(&tool.name.as_ref())
        );
        assert_eq!(
            hints.destructive_hint == Some(true),
            tool.name.starts_with("delete_"),
            "{}",
            tool.name
        );
        // Every tool is idempotent: repeating a call never changes the graph again.
        assert_eq!(hints.idempotent_hint, Some(true), "{}", tool.name);
        assert_eq!(hints.open_world_hint, Some(false), "{}", tool.name);
    }
    assert_eq!(
        definition("open_nodes").map(|t| t.name),
        Some("open_nodes".into())
    );
    assert!(definition("nope").is_none());
}
