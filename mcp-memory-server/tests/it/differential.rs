//! Differential tests against the reference `@modelcontextprotocol/server-memory@2026.8.31`
//! over stdio: the same calls get the same answers (text and structured content), and each
//! server reads the file the other wrote. The raw tool lists are compared in `inspector`.

use serde_json::{Value, json};

use crate::support::{Client, call, call_ok, ours_stdio, reference_stdio, stop, text};

/// One step of the script: a tool and its arguments.
fn script() -> Vec<(&'static str, Value)> {
    vec![
        (
            "create_entities",
            json!({ "entities": [
                { "name": "Alice", "entityType": "person", "observations": ["Likes tea", "Works at ACME"] },
                { "name": "Bob", "entityType": "Person", "observations": ["Plays chess"] },
                { "name": "Zoë", "entityType": "ÄRZTIN", "observations": ["ΣΟΦΊΑ lives here", "line\nbreak \"quoted\""] },
            ] }),
        ),
        // Existing names are skipped, whatever else they carry.
        (
            "create_entities",
            json!({ "entities": [
                { "name": "Alice", "entityType": "robot", "observations": ["ignored"] },
                { "name": "Carol", "entityType": "robot", "observations": [] },
            ] }),
        ),
        (
            "create_relations",
            json!({ "relations": [
                { "from": "Alice", "to": "Bob", "relationType": "knows" },
                { "from": "Bob", "to": "Carol", "relationType": "knows" },
                { "from": "Alice", "to": "Ghost", "relationType": "mentors" },
            ] }),
        ),
        (
            "create_relations",
            json!({ "relations": [
                { "from": "Alice", "to": "Bob", "relationType": "knows" },
                { "from": "Carol", "to": "Alice", "relationType": "likes" },
            ] }),
        ),
        (
            "add_observations",
            json!({ "observations": [
                { "entityName": "Alice", "contents": ["Likes tea", "new", "dup", "dup"] },
                { "entityName": "Alice", "contents": ["new", "later"] },
                { "entityName": "Bob", "contents": [] },
            ] }),
        ),
        // An unknown entity fails the whole call, changing nothing.
        (
            "add_observations",
            json!({ "observations": [
                { "entityName": "Carol", "contents": ["would be new"] },
                { "entityName": "Nobody", "contents": ["x"] },
            ] }),
        ),
        ("read_graph", json!({})),
        ("search_nodes", json!({ "query": "ali" })),
        ("search_nodes", json!({ "query": "PERSON" })),
        ("search_nodes", json!({ "query": "acme" })),
        ("search_nodes", json!({ "query": "ärztin" })),
        ("search_nodes", json!({ "query": "σοφία" })),
        ("search_nodes", json!({ "query": "" })),
        ("search_nodes", json!({ "query": "knows" })),
        ("search_nodes", json!({ "query": "nothing like it" })),
        (
            "open_nodes",
            json!({ "names": ["Carol", "Nobody", "Alice", "Alice"] }),
        ),
        ("open_nodes", json!({ "names": ["Ghost"] })),
        (
            "delete_observations",
            json!({ "deletions": [
                { "entityName": "Alice", "observations": ["dup", "absent"] },
                { "entityName": "Nobody", "observations": ["x"] },
            ] }),
        ),
        (
            "delete_relations",
            json!({ "relations": [
                { "from": "Alice", "to": "Bob", "relationType": "knows" },
                { "from": "Bob", "to": "Carol", "relationType": "likes" },
            ] }),
        ),
        (
            "delete_entities",
            json!({ "entityNames": ["Bob", "Ghost", "Nobody"] }),
        ),
        ("delete_entities", json!({ "entityNames": ["Nobody"] })),
        ("read_graph", json!({})),
        // Bad arguments: both refuse with a tool error (the wording differs).
        (
            "create_entities",
            json!({ "entities": [{ "name": "X", "entityType": "t" }] }),
        ),
        ("search_nodes", json!({ "query": 5 })),
        ("open_nodes", json!({})),
        ("read_graph", json!({ "ignored": true })),
    ]
}

#[tokio::test]
async fn the_same_calls_get_the_same_answers_as_the_reference() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let reference = reference_stdio(&dir.path().join("reference.jsonl")).await;
    let ours = ours_stdio(
        &dir.path().join("ours.jsonl"),
        rmcp::service::ClientLifecycleMode::Initialize,
    )
    .await;
    for (step, (tool, arguments)) in script().into_iter().enumerate() {
        let expected = call(&reference, tool, arguments.clone()).await;
        let actual = call(&ours, tool, arguments.clone()).await;
        let context = format!("step {step}: {tool} {arguments}");
        let failed = expected.is_error == Some(true);
        assert_eq!(
            actual.is_error == Some(true),
            failed,
            "{context}\nreference: {}\nours: {}",
            text(&expected),
            text(&actual)
        );
        if failed && text(&expected).starts_with("MCP error -32602: Input validation error") {
            assert!(
                text(&actual).starts_with("Input validation error"),
                "{context}: {}",
                text(&actual)
            );
            continue;
        }
        assert!(!text(&expected).is_empty(), "{context}");
        assert_eq!(text(&actual), text(&expected), "{context}");
        assert_eq!(
            actual.structured_content, expected.structured_content,
            "{context}"
        );
    }
    // The resource the reference offers reads the same from both.
    assert_eq!(
        read_resource(&ours, "memory://knowledge-graph").await,
        read_resource(&reference, "memory://knowledge-graph").await
    );
    stop(ours).await;
    stop(reference).await;
}

async fn read_resource(client: &Client, uri: &str) -> Value {
    let params = rmcp::model::ReadResourceRequestParams::new(uri);
    let result = client.read_resource(params).await.expect("readable");
    serde_json::to_value(&result.contents).expect("serialisable")
}

/// Writes a small graph through `client` with a mix of appends and rewrites.
async fn write_sample(client: &Client, tag: &str) {
    call_ok(
        client,
        "create_entities",
        json!({ "entities": [
            { "name": format!("{tag}-1"), "entityType": "t", "observations": ["a", "b"] },
            { "name": format!("{tag}-2"), "entityType": "t", "observations": [] },
            { "name": format!("{tag}-3"), "entityType": "t", "observations": ["c"] },
        ] }),
    )
    .await;
    call_ok(
        client,
        "create_relations",
        json!({ "relations": [
            { "from": format!("{tag}-1"), "to": format!("{tag}-2"), "relationType": "r" },
            { "from": format!("{tag}-2"), "to": format!("{tag}-3"), "relationType": "r" },
        ] }),
    )
    .await;
    call_ok(
        client,
        "delete_observations",
        json!({ "deletions": [{ "entityName": format!("{tag}-1"), "observations": ["a"] }] }),
    )
    .await;
    call_ok(
        client,
        "delete_entities",
        json!({ "entityNames": [format!("{tag}-3")] }),
    )
    .await;
    // Ends on an append, so the file is not simply the last rewrite's output.
    call_ok(
        client,
        "create_entities",
        json!({ "entities": [{ "name": format!("{tag}-4"), "entityType": "t", "observations": [] }] }),
    )
    .await;
}

#[tokio::test]
async fn each_server_reads_the_file_the_other_wrote() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let by_reference = dir.path().join("by-reference.jsonl");
    let by_ours = dir.path().join("by-ours.jsonl");

    let reference = reference_stdio(&by_reference).await;
    write_sample(&reference, "ref").await;
    let reference_graph = call_ok(&reference, "read_graph", json!({})).await;
    stop(reference).await;
    let ours = ours_stdio(&by_ours, rmcp::service::ClientLifecycleMode::Initialize).await;
    write_sample(&ours, "ours").await;
    let our_graph = call_ok(&ours, "read_graph", json!({})).await;
    stop(ours).await;

    // Ours reads the reference's file (which has no final newline), then appends to it.
    let ours = ours_stdio(
        &by_reference,
        rmcp::service::ClientLifecycleMode::Initialize,
    )
    .await;
    assert_eq!(
        call_ok(&ours, "read_graph", json!({})).await,
        reference_graph
    );
    call_ok(
        &ours,
        "create_entities",
        json!({ "entities": [{ "name": "appended", "entityType": "t", "observations": [] }] }),
    )
    .await;
    let appended_graph = call_ok(&ours, "read_graph", json!({})).await;
    stop(ours).await;

    // The reference reads ours, and the one ours appended to.
    let reference = reference_stdio(&by_ours).await;
    assert_eq!(
        call_ok(&reference, "read_graph", json!({})).await,
        our_graph
    );
    stop(reference).await;
    let reference = reference_stdio(&by_reference).await;
    assert_eq!(
        call_ok(&reference, "read_graph", json!({})).await,
        appended_graph
    );
    assert_eq!(appended_graph["entities"].as_array().map(Vec::len), Some(4));
    stop(reference).await;
}
