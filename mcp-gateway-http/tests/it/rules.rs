//! The HTTP rules of `/mcp`, checked with `Router::oneshot` (no sockets): DNS-rebinding guard,
//! session lifecycle, and the 2026-07-28 header and `_meta` checks with their status codes.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use mcp_gateway_core::{DownstreamConfig, Gateway, McpServer};
use mcp_gateway_http::HttpConfig;
use serde_json::{Value, json};
use tower::ServiceExt;

fn router() -> Router {
    let gateway = Gateway::builder().build();
    mcp_gateway_http::router(
        McpServer::new(gateway, DownstreamConfig::default()),
        HttpConfig::default(),
    )
}

fn stateless_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

async fn send(
    router: &Router,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

fn post(body: &Value, headers: &[(&str, &str)]) -> Request<Body> {
    let mut request = Request::post("/mcp")
        .header("host", "127.0.0.1:4101")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Body::from(body.to_string())).expect("request")
}

fn stateless_post(method: &str, params: Value, extra: &[(&str, &str)]) -> Request<Body> {
    let mut headers = vec![
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", method),
    ];
    headers.extend_from_slice(extra);
    post(
        &json!({ "jsonrpc": "2.0", "id": 7, "method": method, "params": params }),
        &headers,
    )
}

#[tokio::test]
async fn a_foreign_host_or_origin_is_refused() {
    let router = router();
    let initialize = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } } });
    let mut request = post(&initialize, &[]);
    request
        .headers_mut()
        .insert("host", "evil.example.com".parse().expect("header"));
    assert_eq!(send(&router, request).await.0, StatusCode::FORBIDDEN);
    let request = post(&initialize, &[("origin", "http://evil.example.com")]);
    assert_eq!(send(&router, request).await.0, StatusCode::FORBIDDEN);
    let request = post(&initialize, &[("origin", "http://localhost:6274")]);
    assert_eq!(send(&router, request).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_request_without_any_host_is_refused() {
    let router = router();
    let ping = json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" });
    let mut request = post(&ping, &[]);
    request.headers_mut().remove("host");
    assert_eq!(request.uri().authority(), None);
    let (status, _, body) = send(&router, request).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // An absolute URI names the host when the header is missing, and is judged by it.
    let mut request = post(&ping, &[]);
    request.headers_mut().remove("host");
    *request.uri_mut() = "http://evil.example.com/mcp".parse().expect("uri");
    assert_eq!(send(&router, request).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_bearer_scheme_is_matched_whatever_its_case() {
    let gateway = Gateway::builder().build();
    let router = mcp_gateway_http::router(
        McpServer::new(gateway, DownstreamConfig::default()),
        HttpConfig::default().with_bearer_tokens(vec!["s3cret".into()]),
    );
    let initialize = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": { "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } } });
    for accepted in [
        "Bearer s3cret",
        "bearer s3cret",
        "BEARER s3cret",
        "Bearer   s3cret",
    ] {
        let request = post(&initialize, &[("authorization", accepted)]);
        assert_eq!(send(&router, request).await.0, StatusCode::OK, "{accepted}");
    }
    for refused in [
        "Bearer wrong",
        "Basic s3cret",
        "Bearers3cret",
        "s3cret",
        "Bearer",
    ] {
        let request = post(&initialize, &[("authorization", refused)]);
        assert_eq!(
            send(&router, request).await.0,
            StatusCode::UNAUTHORIZED,
            "{refused}"
        );
    }
}

#[tokio::test]
async fn sessions_open_serve_and_end() {
    let router = router();
    let initialize = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": { "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } } });
    let (status, headers, body) = send(&router, post(&initialize, &[])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(body["result"]["capabilities"]["tools"]["listChanged"], true);
    let session = headers["mcp-session-id"]
        .to_str()
        .expect("ascii")
        .to_owned();

    let ping = json!({ "jsonrpc": "2.0", "id": 2, "method": "ping" });
    let (status, _, body) = send(&router, post(&ping, &[("mcp-session-id", &session)])).await;
    assert_eq!(
        (status, body["result"].clone()),
        (StatusCode::OK, json!({}))
    );

    let (status, _, body) = send(&router, post(&ping, &[])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _, _) = send(&router, post(&ping, &[("mcp-session-id", "nope")])).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let delete = Request::delete("/mcp")
        .header("host", "localhost")
        .header("mcp-session-id", &session)
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(&router, delete).await.0, StatusCode::OK);
    let (status, _, _) = send(&router, post(&ping, &[("mcp-session-id", &session)])).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn stateless_requests_are_served_without_a_session() {
    let router = router();
    let (status, _, body) = send(
        &router,
        stateless_post("server/discover", json!({ "_meta": stateless_meta() }), &[]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let result = &body["result"];
    assert!(
        result["supportedVersions"]
            .as_array()
            .is_some_and(|v| v.contains(&json!("2026-07-28"))),
        "{body}"
    );
    assert_eq!(result["resultType"], "complete");
    assert_eq!(
        result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "mcp-gateway"
    );

    let (status, _, body) = send(
        &router,
        stateless_post("tools/list", json!({ "_meta": stateless_meta() }), &[]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["tools"], json!([]));
    assert_eq!(body["result"]["ttlMs"], 0);
    assert_eq!(body["result"]["cacheScope"], "private");
}

/// A stateless request in a revision that does not exist yet.
fn future_version_request() -> Request<Body> {
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2027-01-01",
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    post(
        &json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": { "_meta": meta } }),
        &[
            ("mcp-protocol-version", "2027-01-01"),
            ("mcp-method", "tools/list"),
        ],
    )
}

#[tokio::test]
async fn stateless_errors_carry_the_revisions_codes_and_statuses() {
    let router = router();
    let cases: Vec<(Request<Body>, StatusCode, i64)> = vec![
        // No _meta at all.
        (
            stateless_post("tools/list", json!({}), &[]),
            StatusCode::BAD_REQUEST,
            -32602,
        ),
        // Mcp-Method disagrees with the body.
        (
            post(
                &json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": { "_meta": stateless_meta() } }),
                &[
                    ("mcp-protocol-version", "2026-07-28"),
                    ("mcp-method", "prompts/list"),
                ],
            ),
            StatusCode::BAD_REQUEST,
            -32020,
        ),
        // Mcp-Name disagrees with the tool name.
        (
            stateless_post(
                "tools/call",
                json!({ "name": "a__b", "arguments": {}, "_meta": stateless_meta() }),
                &[("mcp-name", "wrong")],
            ),
            StatusCode::BAD_REQUEST,
            -32020,
        ),
        // A version the gateway does not speak.
        (future_version_request(), StatusCode::BAD_REQUEST, -32022),
        // Methods the revision removed.
        (
            stateless_post("ping", json!({ "_meta": stateless_meta() }), &[]),
            StatusCode::NOT_FOUND,
            -32601,
        ),
        (
            stateless_post("initialize", json!({ "_meta": stateless_meta() }), &[]),
            StatusCode::NOT_FOUND,
            -32601,
        ),
        // The version header contradicts _meta.
        (
            post(
                &json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": { "_meta": stateless_meta() } }),
                &[
                    ("mcp-protocol-version", "2025-11-25"),
                    ("mcp-method", "tools/list"),
                ],
            ),
            StatusCode::BAD_REQUEST,
            -32020,
        ),
        // An unknown tool.
        (
            stateless_post(
                "tools/call",
                json!({ "name": "nobody__nothing", "arguments": {}, "_meta": stateless_meta() }),
                &[("mcp-name", " nobody__nothing ")],
            ),
            StatusCode::BAD_REQUEST,
            -32602,
        ),
    ];
    for (request, status, code) in cases {
        let (got, _, body) = send(&router, request).await;
        assert_eq!(
            (got, body["error"]["code"].as_i64()),
            (status, Some(code)),
            "{body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
    let (_, _, body) = send(&router, future_version_request()).await;
    assert_eq!(body["error"]["data"]["supported"], json!(["2026-07-28"]));
}

#[tokio::test]
async fn malformed_bodies_get_a_parse_error() {
    let router = router();
    let request = Request::post("/mcp")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .expect("request");
    let (status, _, body) = send(&router, request).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (StatusCode::BAD_REQUEST, Some(-32700))
    );
}

/// A request body of exactly `size` bytes: an `initialize` padded with a string member.
fn initialize_of_size(size: usize) -> String {
    let head = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"},"pad":""#;
    let tail = r#""}}"#;
    format!("{head}{}{tail}", "x".repeat(size - head.len() - tail.len()))
}

#[tokio::test]
async fn a_body_at_the_limit_passes_and_one_byte_more_is_413_with_a_json_error() {
    let limit = 1024;
    let router = mcp_gateway_http::router(
        McpServer::new(Gateway::builder().build(), DownstreamConfig::default()),
        HttpConfig::default().with_max_body_bytes(limit),
    );
    // With a Content-Length, and streamed without one: both are checked.
    for declared in [true, false] {
        for (size, expected) in [
            (limit, StatusCode::OK),
            (limit + 1, StatusCode::PAYLOAD_TOO_LARGE),
        ] {
            let body = initialize_of_size(size);
            assert_eq!(body.len(), size);
            let mut request = Request::post("/mcp")
                .header("host", "127.0.0.1:4101")
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream");
            if declared {
                request = request.header("content-length", size);
            }
            let request = request.body(Body::from(body)).expect("request");
            let (status, _, answer) = send(&router, request).await;
            assert_eq!(
                status, expected,
                "{size} bytes, declared {declared}: {answer}"
            );
            if expected == StatusCode::OK {
                assert!(answer["result"]["protocolVersion"].is_string(), "{answer}");
            } else {
                let message = answer["error"]["message"].as_str().unwrap_or_default();
                assert!(
                    message.contains("1024") && message.contains("max_body_bytes"),
                    "{size} bytes, declared {declared}: {answer}"
                );
                assert_eq!(answer["jsonrpc"], "2.0", "{answer}");
            }
        }
    }
}
