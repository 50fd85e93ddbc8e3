//! The legacy `/sse` + `/message` endpoint's limits, checked with `Router::oneshot` on tokio's
//! paused clock: one `initialize` per connection, a client that never reads its stream can
//! neither pile up deliveries nor keep its connection forever, and an embedder's
//! `StreamShutdown` ends the stream.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use mcp_gateway_core::{DownstreamConfig, Gateway, McpServer};
use mcp_gateway_http::{HttpConfig, StreamShutdown};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::support::DEADLINE;

fn server() -> Arc<McpServer> {
    McpServer::new(Gateway::builder().build(), DownstreamConfig::default())
}

fn router(server: &Arc<McpServer>) -> Router {
    mcp_gateway_http::router(server.clone(), HttpConfig::default())
}

/// Opens `/sse`; returns its body and the POST endpoint its first event names.
async fn open(router: &Router) -> (Body, String) {
    let request = Request::get("/sse")
        .header("host", "localhost")
        .body(Body::empty())
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = next_event(&mut body).await.expect("the endpoint event");
    let endpoint = first
        .lines()
        .find_map(|line| line.strip_prefix("data: "))
        .expect("the endpoint")
        .to_owned();
    (body, endpoint)
}

/// The next SSE event's text, skipping keep-alive comments; `None` when the stream ended.
async fn next_event(body: &mut Body) -> Option<String> {
    loop {
        let frame = tokio::time::timeout(DEADLINE, body.frame())
            .await
            .expect("an event or the end within the deadline")?
            .expect("a frame");
        if let Ok(data) = frame.into_data() {
            let text = String::from_utf8_lossy(&data).into_owned();
            if !text.starts_with(':') {
                return Some(text);
            }
        }
    }
}

/// The JSON-RPC message of the next `message` event.
async fn next_message(body: &mut Body) -> Value {
    let event = next_event(body).await.expect("a message");
    let data = event
        .lines()
        .find_map(|line| line.strip_prefix("data: "))
        .expect("data");
    serde_json::from_str(data).expect("JSON")
}

async fn post(router: &Router, endpoint: &str, message: &Value) -> StatusCode {
    let request = Request::post(endpoint)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Body::from(message.to_string()))
        .expect("request");
    router
        .clone()
        .oneshot(request)
        .await
        .expect("infallible")
        .status()
}

fn initialize(id: u64) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } } })
}

#[tokio::test(start_paused = true)]
async fn a_second_initialize_on_one_connection_is_refused() {
    let server = server();
    let router = router(&server);
    let (mut body, endpoint) = open(&router).await;
    assert_eq!(
        post(&router, &endpoint, &initialize(1)).await,
        StatusCode::ACCEPTED
    );
    let first = next_message(&mut body).await;
    assert_eq!(first["result"]["protocolVersion"], "2024-11-05", "{first}");
    assert_eq!(
        post(&router, &endpoint, &initialize(2)).await,
        StatusCode::ACCEPTED
    );
    let second = next_message(&mut body).await;
    assert_eq!(second["id"], 2, "{second}");
    assert_eq!(second["error"]["code"], -32600, "{second}");
    assert_eq!(server.session_count(), 1);
    // The connection's one session goes with its stream.
    drop(body);
    let started = tokio::time::Instant::now();
    while server.session_count() > 0 {
        assert!(
            started.elapsed() < DEADLINE,
            "the session outlived its stream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_reads_is_refused_then_dropped() {
    let server = server();
    let router = router(&server);
    let (mut body, endpoint) = open(&router).await;
    assert_eq!(
        post(&router, &endpoint, &initialize(1)).await,
        StatusCode::ACCEPTED
    );
    // Nobody reads the stream: its buffer fills, deliveries wait, and further POSTs are refused
    // rather than each leaving a task behind.
    let mut refused = None;
    for id in 2..2000 {
        let ping = json!({ "jsonrpc": "2.0", "id": id, "method": "ping" });
        let status = post(&router, &endpoint, &ping).await;
        if status != StatusCode::ACCEPTED {
            refused = Some(status);
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(refused, Some(StatusCode::TOO_MANY_REQUESTS));
    // A stream that stays full ends its connection and its session.
    let ping = json!({ "jsonrpc": "2.0", "id": 0, "method": "ping" });
    let started = tokio::time::Instant::now();
    while post(&router, &endpoint, &ping).await != StatusCode::NOT_FOUND {
        assert!(
            started.elapsed() < DEADLINE,
            "the stuck connection was kept"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server.session_count(), 0);
    while next_event(&mut body).await.is_some() {}
}

#[tokio::test(start_paused = true)]
async fn a_triggered_stream_shutdown_ends_the_stream_and_its_session() {
    let server = server();
    let streams = StreamShutdown::new();
    let router = streams.attach(router(&server));
    let (mut body, endpoint) = open(&router).await;
    assert_eq!(
        post(&router, &endpoint, &initialize(1)).await,
        StatusCode::ACCEPTED
    );
    next_message(&mut body).await;
    assert_eq!(server.session_count(), 1);
    streams.trigger();
    assert_eq!(next_event(&mut body).await, None);
    // The server drops a body that ended, and with it the connection.
    drop(body);
    let started = tokio::time::Instant::now();
    while server.session_count() > 0 {
        assert!(
            started.elapsed() < DEADLINE,
            "the session outlived its stream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
