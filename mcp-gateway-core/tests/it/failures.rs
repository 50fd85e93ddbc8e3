//! Failures are contained: each gives an error naming the server and the cause, and every other
//! upstream keeps working.

use mcp_gateway_core::{Error, Gateway, GatewayEvent, ServerSpec, ServerStatus};
use serde_json::{Value, json};

use crate::support::{everything_stdio, first_text, free_port, next_matching, repo_root};

#[tokio::test]
async fn a_missing_command_and_a_refused_url_leave_the_others_working() {
    let gateway = Gateway::builder().server(everything_stdio("good")).build();
    gateway.start().await;

    let missing =
        ServerSpec::stdio("ghost", "/nonexistent/mcp-server", ["stdio"]).expect("valid spec");
    let err = gateway.add_server(missing).await.expect_err("cannot start");
    assert!(matches!(err, Error::Spawn { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("ghost") && text.contains("/nonexistent/mcp-server"),
        "{text}"
    );

    let refused_url = format!("http://127.0.0.1:{}/mcp", free_port());
    let refused = ServerSpec::streamable_http("refused", &refused_url).expect("valid spec");
    let err = gateway
        .add_server(refused)
        .await
        .expect_err("nothing listens");
    let text = mcp_gateway_core::error_chain(&err);
    assert!(
        text.contains("refused") && text.contains("could not connect"),
        "{text}"
    );

    let ghost = gateway.server("ghost").expect("still listed");
    assert_eq!(ghost.status, ServerStatus::Failed);
    assert!(
        ghost
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("could not start"),
        "{ghost:?}"
    );
    let err = gateway
        .call_tool("ghost__echo", json!({}))
        .await
        .expect_err("no such tool");
    assert!(matches!(err, Error::UnknownTool(_)), "{err:?}");

    let echoed = gateway
        .call_tool("good__echo", json!({ "message": "still here" }))
        .await
        .expect("the healthy server still answers");
    assert_eq!(first_text(&echoed), "Echo: still here");
    gateway.shutdown().await;
}

#[tokio::test]
async fn garbage_and_unknown_ids_are_reported_and_ignored() {
    let script = repo_root().join("mcp-gateway-core/tests/fixtures/misbehaving_server.py");
    let gateway = Gateway::builder().build();
    let mut events = gateway.subscribe();
    let spec =
        ServerSpec::stdio("rude", "python3", [script.display().to_string()]).expect("valid spec");
    gateway
        .add_server(spec)
        .await
        .expect("connects despite the noise");

    let garbage = next_matching(&mut events, "the garbage line", |event| {
        matches!(event, GatewayEvent::ProtocolViolation { detail, .. } if detail.contains("not JSON"))
    })
    .await;
    assert!(
        matches!(garbage, GatewayEvent::ProtocolViolation { ref server, .. } if server.as_str() == "rude")
    );
    next_matching(&mut events, "the unknown id", |event| {
        matches!(event, GatewayEvent::ProtocolViolation { detail, .. } if detail.contains("987654"))
    })
    .await;

    let pong = gateway
        .call_tool("rude__pong", json!({}))
        .await
        .expect("still answers");
    assert_eq!(first_text(&pong), "pong");
    gateway.shutdown().await;
}

#[tokio::test]
async fn an_upstream_error_names_the_server_and_keeps_the_connection() {
    let gateway = Gateway::builder()
        .server(everything_stdio("everything"))
        .build();
    gateway.start().await;
    let err = gateway
        .forward_tool_call(
            json!({ "name": "everything__echo", "arguments": { "message": 42 } }),
            &Default::default(),
        )
        .await;
    // server-everything reports invalid arguments either as a JSON-RPC error or as a tool error.
    match err {
        Err(Error::Upstream { server, .. }) => assert_eq!(server.as_str(), "everything"),
        Ok(result) => {
            let result: Value = serde_json::from_str(result.get()).expect("JSON");
            assert_eq!(result["isError"], true, "{result}")
        }
        Err(other) => panic!("unexpected error {other:?}"),
    }
    let echoed = gateway
        .call_tool("everything__echo", json!({ "message": "ok" }))
        .await
        .expect("the connection survives");
    assert_eq!(first_text(&echoed), "Echo: ok");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_line_that_is_not_utf8_is_skipped_and_the_same_child_keeps_answering() {
    let script = repo_root().join("mcp-gateway-core/tests/fixtures/misbehaving_server.py");
    let gateway = Gateway::builder().build();
    let mut events = gateway.subscribe();
    let spec = ServerSpec::stdio(
        "bytes",
        "python3",
        [script.display().to_string(), "--bad-bytes".into()],
    )
    .expect("valid spec")
    // Shorter than the test's deadline, so a call lost to a deaf reader fails the test clearly.
    .with_request_timeout(std::time::Duration::from_secs(10));
    gateway.add_server(spec).await.expect("connects");

    let first = gateway
        .call_tool("bytes__pong", json!({}))
        .await
        .expect("the call in flight is answered despite the bad line before its answer");
    let first = first_text(&first).to_owned();
    assert!(first.starts_with("pong from "), "{first}");
    let second = gateway
        .call_tool("bytes__pong", json!({}))
        .await
        .expect("a later call is answered too");
    assert_eq!(first_text(&second), first, "the child was replaced");

    next_matching(&mut events, "the line that is not UTF-8", |event| {
        matches!(event, GatewayEvent::ProtocolViolation { server, detail }
            if server.as_str() == "bytes" && detail.contains("UTF-8"))
    })
    .await;
    next_matching(
        &mut events,
        "the stderr line that is not UTF-8, read lossily",
        |event| {
            matches!(event, GatewayEvent::UpstreamLog { message, .. }
            if message.as_str().is_some_and(|m| m.contains("not UTF-8 either")))
        },
    )
    .await;
    next_matching(&mut events, "the stderr line after it", |event| {
        matches!(event, GatewayEvent::UpstreamLog { message, .. } if message == "stderr still read")
    })
    .await;
    gateway.shutdown().await;
}
