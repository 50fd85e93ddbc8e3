//! The HTTP adapter without sockets (`Router::oneshot`): the DNS-rebinding guard, the body
//! limit, the session handshake, and the only route.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;

use super::*;

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;

fn test_app(config: &HttpConfig) -> (tempfile::TempDir, Router) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let server = MemoryServer::open(dir.path().join("memory.jsonl")).expect("opens");
    (dir, router(server, config, CancellationToken::new()))
}

fn post(host: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(MCP_PATH)
        .header(header::HOST, host)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json, text/event-stream")
        .body(body.into())
        .expect("a valid request")
}

#[tokio::test]
async fn initialize_opens_a_session() {
    let (_dir, app) = test_app(&HttpConfig::default());
    let response = app
        .oneshot(post("127.0.0.1:4100", INITIALIZE))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("mcp-session-id"));
}

#[tokio::test]
async fn a_foreign_host_is_refused_unless_allowed() {
    let (_dir, app) = test_app(&HttpConfig::default());
    let response = app
        .oneshot(post("attacker.example", INITIALIZE))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let (_dir, app) = test_app(&HttpConfig::default().with_allowed_hosts(["memory.internal"]));
    let response = app
        .oneshot(post("memory.internal:4100", INITIALIZE))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_oversized_body_is_refused() {
    let (_dir, app) = test_app(&HttpConfig::default().with_max_body_bytes(1024));
    let padding = "x".repeat(2048);
    let body = INITIALIZE.replace(r#""name":"t""#, &format!(r#""name":"{padding}""#));
    let response = app
        .oneshot(post("localhost", body))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn only_the_mcp_path_is_served() {
    let (_dir, app) = test_app(&HttpConfig::default());
    let request = Request::get("/")
        .header(header::HOST, "localhost")
        .body(Body::empty())
        .expect("a valid request");
    let response = app.oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_foreign_origin_is_refused_even_with_an_allowed_host() {
    let (_dir, app) = test_app(&HttpConfig::default());
    let mut request = post("127.0.0.1:4100", INITIALIZE);
    request.headers_mut().insert(
        header::ORIGIN,
        header::HeaderValue::from_static("https://attacker.example"),
    );
    let response = app.oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    let (_dir, app) = test_app(&HttpConfig::default());
    let mut request = post("localhost:4100", INITIALIZE);
    request.headers_mut().insert(
        header::ORIGIN,
        header::HeaderValue::from_static("http://[::1]:5173"),
    );
    let response = app.oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK, "a loopback page is fine");
}

#[test]
fn origins_take_the_entrys_port_or_any_and_bracket_ipv6() {
    assert_eq!(
        origins_of("::1"),
        ["http://[::1]:*".to_owned(), "https://[::1]:*".to_owned()]
    );
    assert_eq!(
        origins_of("memory.internal:8443"),
        [
            "http://memory.internal:8443".to_owned(),
            "https://memory.internal:8443".to_owned()
        ]
    );
    assert_eq!(origins_of("[::1]:80")[0], "http://[::1]:80");
}

#[tokio::test]
async fn with_a_token_the_scheme_is_any_case_and_the_token_exact() {
    let config = HttpConfig::default().with_bearer_token("s3cret");
    for (authorization, expected) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some("Bearer s3cre"), StatusCode::UNAUTHORIZED),
        (Some("Basic s3cret"), StatusCode::UNAUTHORIZED),
        (Some("Bearers3cret"), StatusCode::UNAUTHORIZED),
        (Some("BEARER s3cret"), StatusCode::OK),
    ] {
        let (_dir, app) = test_app(&config);
        let mut request = post("localhost", INITIALIZE);
        if let Some(authorization) = authorization {
            request.headers_mut().insert(
                header::AUTHORIZATION,
                header::HeaderValue::from_static(authorization),
            );
        }
        let response = app.oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), expected, "{authorization:?}");
    }
}

#[tokio::test]
async fn accepted_connections_send_without_waiting_for_acks() {
    use axum::serve::Listener;

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let mut listener = without_delay(listener);
    let _client = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let (accepted, _) = listener.accept().await;
    assert!(accepted.nodelay().expect("readable option"));
}
