//! Real clients through the gateway: the Python SDK client in both eras and the Inspector CLI,
//! in front of server-everything and server-memory over stdio.

use serde_json::{Value, json};

use crate::support::{RunningGateway, everything, inspector, memory, python_client};

fn tool_names(summary: &Value) -> Vec<&str> {
    summary["tools"]
        .as_array()
        .map(|tools| tools.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_in_both_eras_sees_merged_tools_and_progress() {
    let dir = tempfile::tempdir().expect("temp dir");
    let gateway =
        RunningGateway::start(vec![everything(), memory(&dir.path().join("m.jsonl"))]).await;
    let url = format!("{}/mcp", gateway.url);
    for (mode, version) in [("legacy", "2025-11-25"), ("2026-07-28", "2026-07-28")] {
        let summary = python_client(
            &url,
            mode,
            "everything__trigger-long-running-operation",
            json!({ "duration": 0.6, "steps": 3 }),
        )
        .await;
        assert_eq!(summary["protocolVersion"], version, "{summary}");
        let names = tool_names(&summary);
        assert!(names.contains(&"everything__echo"), "{names:?}");
        assert!(names.contains(&"memory__create_entities"), "{names:?}");
        let text = summary["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default();
        assert!(
            text.contains("Long running operation completed"),
            "{summary}"
        );
        let progress = summary["progress"]
            .as_array()
            .map(Vec::len)
            .unwrap_or_default();
        assert_eq!(progress, 3, "{mode}: {summary}");

        let created = python_client(
            &url,
            mode,
            "memory__create_entities",
            json!({ "entities": [{ "name": format!("via-{mode}"), "entityType": "test", "observations": [] }] }),
        )
        .await;
        assert!(
            created["result"]["content"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .contains("via-"),
            "{created}"
        );
    }
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspector_cli_lists_and_calls_through_the_gateway() {
    let gateway = RunningGateway::start(vec![everything()]).await;
    let url = format!("{}/mcp", gateway.url);
    let listed =
        inspector(&[&url, "--transport", "http"], &["--method", "tools/list"]).await["result"]
            .take();
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .map(|tools| tools.iter().filter_map(|t| t["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(names.contains(&"everything__echo"), "{listed}");
    // Fields the gateway does not model pass through: server-everything's tools carry `execution`.
    let echo = listed["tools"]
        .as_array()
        .and_then(|tools| tools.iter().find(|t| t["name"] == "everything__echo"))
        .cloned()
        .unwrap_or_default();
    assert!(echo.get("execution").is_some(), "{echo}");

    let called = inspector(
        &[&url, "--transport", "http"],
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "everything__echo",
            "--tool-arg",
            "message=inspected",
        ],
    )
    .await["result"]
        .take();
    assert_eq!(called["content"][0]["text"], "Echo: inspected", "{called}");
    gateway.stop().await;
}

/// server-everything's `trigger-sampling-request` makes the upstream ask its client for a
/// completion in the middle of the call; the gateway relays it to the session whose call caused
/// it, and the Python client's answer goes back upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_reaches_the_session_whose_call_caused_it() {
    let gateway = RunningGateway::start(vec![everything()]).await;
    let url = format!("{}/mcp", gateway.url);
    let summary = python_client(
        &url,
        "legacy",
        "everything__trigger-sampling-request",
        json!({ "prompt": "say hello", "maxTokens": 20 }),
    )
    .await;
    let sampled = summary["sampled"].as_array().cloned().unwrap_or_default();
    assert_eq!(sampled.len(), 1, "{summary}");
    assert!(sampled[0].to_string().contains("say hello"), "{summary}");
    let result = summary["result"].to_string();
    assert!(result.contains("sampled by the python client"), "{summary}");
    gateway.stop().await;
}

/// A legacy HTTP+SSE client (the Inspector with `--transport sse`) uses `/sse` + `/message`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_sse_clients_are_served() {
    let gateway = RunningGateway::start(vec![everything()]).await;
    let url = format!("{}/sse", gateway.url);
    let called = inspector(
        &[&url, "--transport", "sse"],
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "everything__echo",
            "--tool-arg",
            "message=old school",
        ],
    )
    .await["result"]
        .take();
    assert_eq!(called["content"][0]["text"], "Echo: old school", "{called}");
    gateway.stop().await;
}
