//! Who may talk to the HTTP server: beyond loopback only holders of the bearer token, and the
//! server refuses to start there without one.

use reqwest::StatusCode;
use tokio::process::Command;

use crate::support::{HttpServer, MEMORY_BIN, run};

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;

/// POSTs an `initialize` with the given `Authorization` header, if any.
async fn initialize(url: &str, authorization: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INITIALIZE);
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    request.send().await.expect("the server answers")
}

#[tokio::test]
async fn a_non_loopback_address_without_a_token_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (status, _, stderr) = run(Command::new(MEMORY_BIN)
        .args(["--listen", "0.0.0.0:0", "--file"])
        .arg(dir.path().join("memory.jsonl"))
        .env_remove("MCP_MEMORY_TOKEN"))
    .await;
    assert!(!status.success(), "it started: {stderr}");
    assert!(
        stderr.contains("needs a token") && stderr.contains("--token"),
        "{stderr}"
    );
}

#[tokio::test]
async fn beyond_loopback_only_requests_bearing_the_token_are_served() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let server = HttpServer::start_with(
        &dir.path().join("memory.jsonl"),
        &["--listen", "0.0.0.0:0", "--token", "s3cret"],
    )
    .await;
    // Reached by an address the server does not know the name of: the token protects it.
    let url = server.url.replace("0.0.0.0", "127.0.0.1");

    let refused = initialize(&url, None).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        refused
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    let wrong = initialize(&url, Some("Bearer s3cres")).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let served = initialize(&url, Some("bearer s3cret")).await;
    assert_eq!(
        served.status(),
        StatusCode::OK,
        "the scheme is case-insensitive"
    );
    let status = server.terminate().await;
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn a_token_given_on_loopback_is_required_too() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let server = HttpServer::start_with(
        &dir.path().join("memory.jsonl"),
        &["--listen", "127.0.0.1:0", "--token", "s3cret"],
    )
    .await;
    assert_eq!(
        initialize(&server.url, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        initialize(&server.url, Some("Bearer s3cret"))
            .await
            .status(),
        StatusCode::OK
    );
    let status = server.terminate().await;
    assert!(status.success(), "{status}");
}
