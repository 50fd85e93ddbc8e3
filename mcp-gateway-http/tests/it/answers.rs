//! How a call is answered: plain JSON when the answer is quick and nothing comes before it, an
//! SSE stream when progress comes first or the call takes longer; and what happens to a call
//! whose client leaves before its answer.

use std::time::Duration;

use mcp_gateway_core::{CallOutcome, EventSubscription, GatewayEvent};
use serde_json::{Value, json};

use crate::support::{DEADLINE, RunningGateway, everything, open_session};

/// POSTs one message in `session`; returns the content type and the body's text.
async fn call(
    client: &reqwest::Client,
    url: &str,
    session: &str,
    message: Value,
) -> (String, String) {
    let response = client
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", session)
        .json(&message)
        .timeout(DEADLINE)
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    (content_type, response.text().await.expect("body"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_calls_answer_json_and_the_others_stream() {
    let gateway = RunningGateway::start(vec![everything()]).await;
    let url = format!("{}/mcp", gateway.url);
    let client = reqwest::Client::new();
    let session = open_session(&client, &url).await;

    let echo = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": { "name": "everything__echo", "arguments": { "message": "quick" } } });
    let (content_type, body) = call(&client, &url, &session, echo).await;
    assert_eq!(content_type, "application/json", "{body}");
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(answer["id"], 2);
    assert_eq!(answer["result"]["content"][0]["text"], "Echo: quick");

    // Progress comes before the answer: a stream, progress first, with the caller's own token.
    let with_progress = json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": { "name": "everything__trigger-long-running-operation",
            "arguments": { "duration": 0.3, "steps": 3 }, "_meta": { "progressToken": "mine" } } });
    let (content_type, body) = call(&client, &url, &session, with_progress).await;
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let progress = body
        .find("notifications/progress")
        .expect("progress on the stream");
    let answer = body.find("\"id\":3").expect("the answer on the stream");
    assert!(progress < answer, "{body}");
    assert!(body.contains("\"progressToken\":\"mine\""), "{body}");

    // The same, quick enough to end inside the JSON window: still a stream, progress first.
    let quick_progress = json!({ "jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": { "name": "everything__trigger-long-running-operation",
            "arguments": { "duration": 0.02, "steps": 2 }, "_meta": { "progressToken": 9 } } });
    let (content_type, body) = call(&client, &url, &session, quick_progress).await;
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let progress = body
        .find("notifications/progress")
        .expect("progress on the stream");
    let answer = body.find("\"id\":5").expect("the answer on the stream");
    assert!(progress < answer, "{body}");

    // Nothing to stream, but slower than the JSON window: the headers go first, then the answer.
    let slow = json!({ "jsonrpc": "2.0", "id": 4, "method": "tools/call",
        "params": { "name": "everything__trigger-long-running-operation",
            "arguments": { "duration": 0.5, "steps": 1 } } });
    let (content_type, body) = call(&client, &url, &session, slow).await;
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    assert!(
        body.contains("\"id\":4") && body.contains("result"),
        "{body}"
    );
    gateway.stop().await;
}

/// Waits for the `ToolCallFinished` of `tool` and returns how it ended.
async fn finished(events: &mut EventSubscription, tool: &str) -> CallOutcome {
    tokio::time::timeout(DEADLINE, async {
        while let Some(envelope) = events.recv().await {
            if let GatewayEvent::ToolCallFinished {
                tool: name,
                outcome,
                ..
            } = &envelope.event
                && name == tool
            {
                return Some(outcome.clone());
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .expect("the call ends in the event stream")
}

/// A client that leaves before the answer: in the session era the call goes on (a disconnect is
/// not a cancellation); a stateless call is cancelled, and either way the event stream ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_call_outlives_its_client_and_a_stateless_one_does_not() {
    let gateway = RunningGateway::start(vec![everything()]).await;
    let url = format!("{}/mcp", gateway.url);
    let client = reqwest::Client::new();
    let tool = "everything__trigger-long-running-operation";
    let session = open_session(&client, &url).await;
    let mut events = gateway.gateway.subscribe();

    // Gone after 30 ms, inside the window in which the call runs in the request handler.
    let call = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": { "name": tool, "arguments": { "duration": 0.3, "steps": 1 } } });
    let left = client
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .json(&call)
        .timeout(Duration::from_millis(30))
        .send()
        .await;
    assert!(left.is_err(), "the client gave up first");
    assert_eq!(finished(&mut events, tool).await, CallOutcome::Ok);

    let stateless = json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
        "name": tool, "arguments": { "duration": 0.3, "steps": 1 },
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "progressToken": "p",
        } } });
    let left = client
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .json(&stateless)
        .timeout(Duration::from_millis(30))
        .send()
        .await;
    assert!(left.is_err(), "the client gave up first");
    assert!(
        matches!(finished(&mut events, tool).await, CallOutcome::Failed(ref why) if why.contains("cancelled")),
        "a stateless call ends with its client"
    );
    gateway.stop().await;
}
