//! The gateway tells its sessions when the merged lists change: a session's GET stream receives
//! `notifications/tools/list_changed` when an upstream is added at run time.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::support::{DEADLINE, RunningGateway, everything, open_session};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_an_upstream_notifies_open_sessions() {
    let gateway = RunningGateway::start(Vec::new()).await;
    let url = format!("{}/mcp", gateway.url);
    let client = reqwest::Client::new();
    let session = open_session(&client, &url).await;
    let stream = client
        .get(&url)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .send()
        .await
        .expect("GET stream");
    assert_eq!(stream.status(), 200);
    let mut body = stream.bytes_stream();

    // The GET stream is attached once its response is back; now change the catalogue.
    gateway
        .gateway
        .add_server(everything())
        .await
        .expect("everything connects");

    let mut seen = String::new();
    let found = tokio::time::timeout(DEADLINE, async {
        while let Some(Ok(chunk)) = body.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("notifications/tools/list_changed") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "stream so far: {seen}");

    // And a fresh list shows the new tools.
    let list = json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" });
    let listed: Value = client
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .json(&list)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("tools/list")
        .json()
        .await
        .expect("JSON answer");
    assert!(listed.to_string().contains("everything__echo"), "{listed}");
    gateway.stop().await;
}
