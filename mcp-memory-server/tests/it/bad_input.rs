//! Bad input never takes the server down: unknown entities, wrong types, missing fields and
//! huge strings get tool errors (or invalid-params for an unknown tool) with a clear message,
//! and the next good call works.

use rmcp::model::{CallToolRequestParams, ErrorCode};
use rmcp::service::ClientLifecycleMode;
use serde_json::json;

use crate::support::{
    Client, HttpServer, call, call_ok, http_client, object, ours_stdio, stateless, stop, text,
};

/// Calls a tool that must fail as a tool error whose text contains `needle`.
async fn refused(client: &Client, tool: &str, arguments: serde_json::Value, needle: &str) {
    let result = call(client, tool, arguments).await;
    assert_eq!(result.is_error, Some(true), "{tool}: {}", text(&result));
    assert!(text(&result).contains(needle), "{tool}: {}", text(&result));
}

async fn the_bad_and_then_the_good(client: &Client) {
    refused(
        client,
        "add_observations",
        json!({ "observations": [{ "entityName": "Nobody", "contents": ["x"] }] }),
        "Entity with name Nobody not found",
    )
    .await;
    refused(
        client,
        "create_entities",
        json!({ "entities": { "name": "not a list" } }),
        "expected a sequence at entities",
    )
    .await;
    refused(
        client,
        "create_relations",
        json!({ "relations": [{ "from": "A", "to": "B" }] }),
        "missing field `relationType` at relations[0]",
    )
    .await;
    refused(
        client,
        "delete_entities",
        json!({ "entityNames": [1, 2] }),
        "at entityNames[0]",
    )
    .await;
    let huge = "x".repeat(3 * 1024 * 1024);
    refused(
        client,
        "create_entities",
        json!({ "entities": [{ "name": "Big", "entityType": "t", "observations": [huge] }] }),
        "entities[0].observations[0] is 3145728 bytes long; the limit is 1048576 bytes",
    )
    .await;
    let unknown = client
        .call_tool(CallToolRequestParams::new("format_disk").with_arguments(object(json!({}))))
        .await
        .expect_err("an unknown tool is a protocol error");
    match unknown {
        rmcp::ServiceError::McpError(error) => {
            assert_eq!(error.code, ErrorCode::INVALID_PARAMS);
            assert_eq!(error.message, "unknown tool: format_disk");
        }
        other => panic!("expected invalid params, got {other:?}"),
    }

    call_ok(
        client,
        "create_entities",
        json!({ "entities": [{ "name": "Fine", "entityType": "t", "observations": ["ok"] }] }),
    )
    .await;
    let graph = call_ok(client, "read_graph", json!({})).await;
    assert_eq!(
        graph,
        json!({ "entities": [{ "name": "Fine", "entityType": "t", "observations": ["ok"] }], "relations": [] })
    );
}

#[tokio::test]
async fn bad_input_over_stdio_gets_clear_errors_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let client = ours_stdio(
        &dir.path().join("memory.jsonl"),
        ClientLifecycleMode::Initialize,
    )
    .await;
    the_bad_and_then_the_good(&client).await;
    stop(client).await;
}

#[tokio::test]
async fn bad_input_over_http_gets_clear_errors_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let server = HttpServer::start(&dir.path().join("memory.jsonl")).await;
    let client = http_client(&server.url, stateless()).await;
    the_bad_and_then_the_good(&client).await;

    // A body over the 4 MiB limit is refused before it is parsed.
    let body = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": { "name": "x".repeat(5 * 1024 * 1024), "version": "0" } }
    });
    let response = reqwest::Client::new()
        .post(&server.url)
        .header("accept", "application/json, text/event-stream")
        .json(&body)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), reqwest::StatusCode::PAYLOAD_TOO_LARGE);

    let graph = call_ok(&client, "search_nodes", json!({ "query": "fine" })).await;
    assert_eq!(graph["entities"][0]["name"], "Fine");
    stop(client).await;
    let status = server.terminate().await;
    assert!(status.success(), "{status}");
}
