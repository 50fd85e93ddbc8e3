//! The caps on calls in flight, each at its edge: the last call within a cap is served, one more
//! is refused at once with an error naming the limit (never queued), and a call that ends frees
//! its place. Against the in-process fixture, whose `wait_for_cancel` holds a call open.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use mcp_gateway_core::{
    Caller, DownstreamConfig, Error, Gateway, InProcessServer, McpServer, ProtocolPreference,
    RequestOptions, ServerSpec,
};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::fixture::Fixture;
use crate::support::{DEADLINE, eventually, first_text};

async fn gateway_with(fixture: &Fixture, max_concurrent_calls: usize) -> Gateway {
    let fixture = fixture.clone();
    let spec = ServerSpec::in_process("up", InProcessServer::new("up", move || fixture.clone()))
        .expect("valid spec")
        .with_protocol(ProtocolPreference::Session)
        .with_max_concurrent_calls(max_concurrent_calls);
    let gateway = Gateway::builder().server(spec).build();
    gateway.start().await;
    gateway
}

/// Starts a call that the fixture holds until it is cancelled.
fn hold(gateway: &Gateway) -> JoinHandle<Result<Value, Error>> {
    let gateway = gateway.clone();
    tokio::spawn(async move { gateway.call_tool("up__wait_for_cancel", json!({})).await })
}

/// Waits until the fixture holds `count` calls.
async fn held(fixture: &Fixture, count: usize) {
    eventually(&format!("{count} held calls"), || {
        fixture.state.waiting.load(Ordering::SeqCst) == count
    })
    .await;
}

fn tools_call(id: u64, tool: &str) -> Value {
    let params = json!({ "name": tool, "arguments": { "a": 1, "b": 2 } });
    json!({ "jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params })
}

/// Sends a request through the downstream server and returns its answer.
async fn ask(server: &McpServer, caller: &Caller, request: Value) -> Value {
    tokio::time::timeout(DEADLINE, server.handle(caller, request, None))
        .await
        .expect("an answer before the deadline, not a queue")
        .expect("a request gets an answer")
        .to_value()
}

/// Starts a downstream call that the fixture holds until it is cancelled; a cancelled call ends
/// without an answer.
fn hold_downstream(server: &Arc<McpServer>, caller: &Caller, id: u64) -> JoinHandle<Option<Value>> {
    let (server, caller) = (server.clone(), caller.clone());
    tokio::spawn(async move {
        let reply = server
            .handle(&caller, tools_call(id, "up__wait_for_cancel"), None)
            .await;
        reply.map(|reply| reply.to_value())
    })
}

fn refusal(answer: &Value) -> &str {
    answer["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn an_upstream_at_max_concurrent_calls_refuses_one_more_at_once() {
    let fixture = Fixture::default();
    let gateway = gateway_with(&fixture, 2).await;
    let first = hold(&gateway);
    let _second = hold(&gateway);
    held(&fixture, 2).await;

    let refused = tokio::time::timeout(DEADLINE, gateway.call_tool("up__add", json!({})))
        .await
        .expect("refused at once, not queued");
    let Err(error @ Error::Overloaded { limit: 2, .. }) = refused else {
        panic!("the third call is not refused as overloaded: {refused:?}");
    };
    let message = error.to_string();
    assert!(
        message.contains("`up`") && message.contains("max_concurrent_calls"),
        "{message}"
    );
    // The gateway's own requests are not counted: a saturated server still answers its probes.
    let upstream = gateway.upstream("up").expect("connected");
    upstream
        .request("tools/list", None, &RequestOptions::default())
        .await
        .expect("a list request at the limit");

    // A call that ends frees its place.
    first.abort();
    eventually("the aborted call to be cancelled upstream", || {
        fixture.state.cancellations.load(Ordering::SeqCst) == 1
    })
    .await;
    let result = gateway
        .call_tool("up__add", json!({ "a": 1, "b": 2 }))
        .await
        .expect("a call within the limit again");
    assert_eq!(first_text(&result), "3");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_session_at_max_calls_per_session_is_refused_one_more_at_once() {
    let fixture = Fixture::default();
    let gateway = gateway_with(&fixture, 1024).await;
    let server = McpServer::new(
        gateway.clone(),
        DownstreamConfig::default().with_max_calls_per_session(2),
    );
    let (busy, _) = server.open_session(None).expect("a session");
    let busy = Caller::Session(busy);
    let first = hold_downstream(&server, &busy, 1);
    let _second = hold_downstream(&server, &busy, 2);
    held(&fixture, 2).await;

    let refused = ask(&server, &busy, tools_call(3, "up__add")).await;
    assert_eq!(refused["id"], 3, "{refused}");
    assert!(
        refusal(&refused).contains("max_calls_per_session") && refusal(&refused).contains('2'),
        "{refused}"
    );
    // Another session is not held back by this one.
    let (other, _) = server.open_session(None).expect("a session");
    let answer = ask(&server, &Caller::Session(other), tools_call(1, "up__add")).await;
    assert_eq!(first_text(&answer["result"]), "3", "{answer}");

    // A cancelled call frees its place.
    let cancelled = json!({
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": { "requestId": 1 },
    });
    assert!(server.handle(&busy, cancelled, None).await.is_none());
    let ended = tokio::time::timeout(DEADLINE, first)
        .await
        .expect("the cancelled call ends before the deadline");
    assert_eq!(ended.ok(), Some(None), "a cancelled call gets no answer");
    let answer = ask(&server, &busy, tools_call(4, "up__add")).await;
    assert_eq!(first_text(&answer["result"]), "3", "{answer}");
    gateway.shutdown().await;
}

#[tokio::test]
async fn the_gateway_at_max_calls_refuses_one_more_from_any_client() {
    let fixture = Fixture::default();
    let gateway = gateway_with(&fixture, 1024).await;
    let server = McpServer::new(
        gateway.clone(),
        DownstreamConfig::default().with_max_calls(2),
    );
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let (session, _) = server.open_session(None).expect("a session");
        sessions.push(Caller::Session(session));
    }
    let first = hold_downstream(&server, &sessions[0], 1);
    let _second = hold_downstream(&server, &sessions[1], 1);
    held(&fixture, 2).await;

    let refused = ask(&server, &sessions[2], tools_call(1, "up__add")).await;
    assert!(
        refusal(&refused).contains("max_calls;") && refusal(&refused).contains('2'),
        "{refused}"
    );

    // A call whose caller went away frees its place.
    first.abort();
    eventually("the aborted call to be cancelled upstream", || {
        fixture.state.cancellations.load(Ordering::SeqCst) == 1
    })
    .await;
    let answer = ask(&server, &sessions[2], tools_call(2, "up__add")).await;
    assert_eq!(first_text(&answer["result"]), "3", "{answer}");
    gateway.shutdown().await;
}
