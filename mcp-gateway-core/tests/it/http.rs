//! server-everything over Streamable HTTP and over the legacy HTTP+SSE transport.

use mcp_gateway_core::{Era, Gateway, GatewayEvent, ListKind, RequestOptions, ServerSpec};
use serde_json::json;

use crate::support::{PeerProcess, eventually, first_text, free_port, next_matching, peer_bin};

#[tokio::test]
async fn streamable_http_upstream_with_a_resource_added_at_run_time() {
    let peer = PeerProcess::start(
        &peer_bin("mcp-server-everything"),
        &["streamableHttp"],
        free_port(),
    )
    .await;
    let gateway = Gateway::builder().build();
    let spec = ServerSpec::streamable_http("everything", &peer.url("/mcp")).expect("valid spec");
    gateway.add_server(spec).await.expect("connects");
    let server = gateway.server("everything").expect("listed");
    assert_eq!(server.era, Some(Era::Session));
    assert_eq!(server.protocol_version.as_deref(), Some("2025-11-25"));

    let echoed = gateway
        .call_tool("everything__echo", json!({ "message": "over http" }))
        .await
        .expect("echo answers");
    assert_eq!(first_text(&echoed), "Echo: over http");

    // Progress comes on the call's own SSE stream, before the answer, with the caller's token.
    let (progress, mut seen) = tokio::sync::mpsc::channel(16);
    let params = json!({
        "name": "everything__trigger-long-running-operation",
        "arguments": { "duration": 0.2, "steps": 2 },
        "_meta": { "progressToken": "mine" },
    });
    let options = RequestOptions::default().with_progress(progress);
    gateway
        .forward_tool_call(params, &options)
        .await
        .expect("the long-running operation completes");
    for step in 1..=2 {
        let update = seen.try_recv().expect("progress before the answer");
        assert_eq!(update["progressToken"], "mine", "{update}");
        assert_eq!(update["progress"], step, "{update}");
    }

    let mut events = gateway.subscribe();
    let generation = gateway.catalog().generation();
    let uri = "demo://resource/session/gateway.txt.gz";
    gateway
        .call_tool(
            "everything__gzip-file-as-resource",
            json!({
                "name": "gateway.txt.gz",
                "data": "data:text/plain;base64,SGVsbG8sIGdhdGV3YXkh",
                "outputType": "resourceLink",
            }),
        )
        .await
        .expect("gzip-file-as-resource answers");

    let event = next_matching(&mut events, "resources list_changed", |event| {
        matches!(
            event,
            GatewayEvent::ListChanged {
                kind: ListKind::Resources,
                ..
            }
        )
    })
    .await;
    let GatewayEvent::ListChanged {
        generation: after,
        server,
        ..
    } = event
    else {
        unreachable!("matched above")
    };
    assert_eq!(server.as_str(), "everything");
    assert!(after > generation, "generation {after} after {generation}");
    eventually("the new resource in the catalog", || {
        gateway
            .catalog()
            .resources()
            .iter()
            .any(|r| r.upstream_name == uri)
    })
    .await;
    let read = gateway
        .read_resource(uri)
        .await
        .expect("the new resource reads");
    assert!(read["contents"][0]["blob"].is_string(), "{read}");
    gateway.shutdown().await;
}

#[tokio::test]
async fn legacy_sse_upstream() {
    let peer = PeerProcess::start(&peer_bin("mcp-server-everything"), &["sse"], free_port()).await;
    let gateway = Gateway::builder()
        .server(ServerSpec::sse("legacy", &peer.url("/sse")).expect("valid spec"))
        .build();
    gateway.start().await;
    let server = gateway.server("legacy").expect("listed");
    assert_eq!(server.era, Some(Era::Session), "{server:?}");
    assert!(gateway.catalog().tool("legacy__echo").is_some());
    let echoed = gateway
        .call_tool("legacy__echo", json!({ "message": "over sse" }))
        .await
        .expect("echo answers");
    assert_eq!(first_text(&echoed), "Echo: over sse");
    gateway.shutdown().await;
}

/// A 2026-07-28 HTTP upstream checks the SEP-2243 `Mcp-Param-*` headers of tools whose schema
/// names `x-mcp-header`; the gateway derives them from the arguments (the conformance fixture's
/// `test_custom_header` rejects a call without them).
#[tokio::test]
async fn param_headers_reach_a_stateless_http_upstream() {
    let fixture = crate::support::sibling_bin("conformance-fixture");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let peer = PeerProcess::start(&fixture, &["--listen", &listen], port).await;
    let gateway = Gateway::builder().build();
    let spec = ServerSpec::streamable_http("fixture", &peer.url("/mcp")).expect("valid spec");
    gateway.add_server(spec).await.expect("connects");
    assert_eq!(
        gateway.server("fixture").and_then(|s| s.era),
        Some(Era::Stateless)
    );
    for region in ["eu-west-1", "Zürich ☃"] {
        let result = gateway
            .call_tool("fixture__test_custom_header", json!({ "region": region }))
            .await
            .expect("the upstream accepts the call");
        assert_eq!(first_text(&result), format!("Region: {region}"), "{result}");
    }
    gateway.shutdown().await;
}

/// An HTTP upstream that answers with JSON does the whole call before its response headers: the
/// request deadline must cover that wait too, or a hung call never returns.
#[tokio::test]
async fn a_json_answer_that_never_comes_times_out() {
    use std::time::Duration;

    use axum::Json;
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Response};
    use mcp_gateway_core::{Error, ProtocolPreference};
    use serde_json::Value;

    /// Answers the handshake and `tools/list` at once, and `tools/call` never.
    async fn hangs_on_calls(Json(message): Json<Value>) -> Response {
        let id = message.get("id").cloned().unwrap_or(Value::Null);
        let result = match message.get("method").and_then(Value::as_str) {
            Some("initialize") => json!({
                "protocolVersion": "2025-11-25",
                "capabilities": { "tools": {} },
                "serverInfo": { "name": "hangs-on-calls", "version": "1" },
            }),
            Some("tools/list") => json!({
                "tools": [{ "name": "wait", "inputSchema": { "type": "object" } }],
            }),
            Some("tools/call") => std::future::pending().await,
            _ => return StatusCode::ACCEPTED.into_response(),
        };
        Json(json!({ "jsonrpc": "2.0", "id": id, "result": result })).into_response()
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/mcp", listener.local_addr().expect("address"));
    let app = axum::Router::new().route("/mcp", axum::routing::post(hangs_on_calls));
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let gateway = Gateway::builder().build();
    let spec = ServerSpec::streamable_http("hangs", &url)
        .expect("valid spec")
        .with_protocol(ProtocolPreference::Session)
        .with_request_timeout(Duration::from_millis(300));
    gateway.add_server(spec).await.expect("connects");
    let called = tokio::time::timeout(
        Duration::from_secs(10),
        gateway.call_tool("hangs__wait", json!({})),
    )
    .await
    .expect("the gateway gives up by itself");
    assert!(matches!(called, Err(Error::Timeout { .. })), "{called:?}");
    gateway.shutdown().await;
    server.abort();
}
