//! server-everything and server-memory as stdio children.

use std::time::Duration;

use mcp_gateway_core::{
    Caller, DownstreamConfig, Era, Gateway, GatewayEvent, LogSource, McpServer, Message,
    RequestOptions, ServerStatus,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::support::{
    everything_stdio, first_text, memory_stdio, next_matching, processes_with_env, tool_names,
};

#[tokio::test]
async fn merges_and_calls_everything_and_memory_over_stdio() {
    let dir = tempfile::tempdir().expect("temp dir");
    let memory_file = dir.path().join("memory.jsonl");
    let gateway = Gateway::builder()
        .server(everything_stdio("everything"))
        .server(memory_stdio("memory", &memory_file))
        .build();
    let mut events = gateway.subscribe();
    gateway.start().await;

    for server in gateway.servers() {
        assert_eq!(server.status, ServerStatus::Healthy, "{server:?}");
        assert_eq!(server.era, Some(Era::Session), "{server:?}");
    }
    let names = tool_names(&gateway);
    for expected in [
        "everything__echo",
        "everything__trigger-long-running-operation",
        "memory__create_entities",
        "memory__read_graph",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    // Fields the gateway does not model pass through untouched.
    let catalog = gateway.catalog();
    let echo = catalog.tool("everything__echo").expect("echo is routed");
    assert_eq!(echo.upstream_name, "echo");
    assert!(
        echo.definition.get("execution").is_some(),
        "{}",
        echo.definition
    );

    let echoed = gateway
        .call_tool(
            "everything__echo",
            json!({ "message": "through the gateway" }),
        )
        .await
        .expect("echo answers");
    assert_eq!(first_text(&echoed), "Echo: through the gateway");

    gateway
        .call_tool(
            "memory__create_entities",
            json!({ "entities": [{ "name": "gateway", "entityType": "project", "observations": ["routes calls"] }] }),
        )
        .await
        .expect("create_entities answers");
    let graph = gateway
        .call_tool("memory__read_graph", json!({}))
        .await
        .expect("read_graph answers");
    assert!(first_text(&graph).contains("routes calls"), "{graph}");
    let stored = std::fs::read_to_string(&memory_file).expect("server-memory wrote its file");
    assert!(stored.contains("\"gateway\""), "{stored}");

    // The child's stderr lines arrive as log events of their server.
    next_matching(&mut events, "a stderr line of server-memory", |event| {
        matches!(event, GatewayEvent::UpstreamLog { server, source: LogSource::Stderr, .. } if server.as_str() == "memory")
    })
    .await;

    let marker = memory_file.display().to_string();
    assert_eq!(
        processes_with_env(&marker).len(),
        1,
        "one server-memory child runs"
    );
    gateway.shutdown().await;
    assert!(gateway.servers().is_empty());
    assert!(
        processes_with_env(&marker).is_empty(),
        "shutdown left server-memory running"
    );
}

/// Two concurrent calls on one upstream, both using progress token "same": each caller gets
/// only its own progress, with its own token restored.
#[tokio::test]
async fn progress_reaches_only_its_caller() {
    let gateway = Gateway::builder()
        .server(everything_stdio("everything"))
        .build();
    gateway.start().await;

    let call = |steps: u64, progress: mpsc::Sender<Value>| {
        let gateway = gateway.clone();
        async move {
            let params = json!({
                "name": "everything__trigger-long-running-operation",
                "arguments": { "duration": 1, "steps": steps },
                "_meta": { "progressToken": "same" },
            });
            let options = RequestOptions::default().with_progress(progress);
            gateway.forward_tool_call(params, &options).await
        }
    };
    let (three_tx, mut three_rx) = mpsc::channel(64);
    let (five_tx, mut five_rx) = mpsc::channel(64);
    let (three, five) = tokio::join!(call(3, three_tx), call(5, five_tx));
    three.expect("the 3-step call completes");
    five.expect("the 5-step call completes");

    let drain = |rx: &mut mpsc::Receiver<Value>| {
        let mut seen = Vec::new();
        while let Ok(progress) = rx.try_recv() {
            seen.push(progress);
        }
        seen
    };
    let three_seen = drain(&mut three_rx);
    let five_seen = drain(&mut five_rx);
    assert_eq!(three_seen.len(), 3, "{three_seen:?}");
    assert_eq!(five_seen.len(), 5, "{five_seen:?}");
    for (seen, total) in [(&three_seen, 3), (&five_seen, 5)] {
        for progress in seen {
            assert_eq!(progress["total"], total, "{progress}");
            assert_eq!(progress["progressToken"], "same", "{progress}");
        }
    }
    gateway.shutdown().await;
}

/// A client's call read from text keeps its arguments as text all the way to a stdio child; a
/// pretty-printed call has line breaks, which would split the child's one-message-per-line
/// input if they reached it.
#[tokio::test]
async fn pretty_printed_arguments_reach_a_stdio_child_on_one_line() {
    let gateway = Gateway::builder()
        .server(everything_stdio("everything"))
        .build();
    gateway.start().await;
    let server = McpServer::new(gateway.clone(), DownstreamConfig::default());
    let (session, _) = server.open_session(None).expect("a session");
    let call = r#"{
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {
            "name": "everything__echo",
            "arguments": {
                "message": "two\nlines"
            }
        }
    }"#;
    let message = Message::from_slice(call.as_bytes()).expect("valid JSON");
    let reply = tokio::time::timeout(
        Duration::from_secs(20),
        server.handle(&Caller::Session(session), message, None),
    )
    .await
    .expect("the child answers")
    .expect("a request gets an answer")
    .to_value();
    assert_eq!(first_text(&reply["result"]), "Echo: two\nlines", "{reply}");
    gateway.shutdown().await;
}
