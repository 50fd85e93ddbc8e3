//! An upstream that stops reading its input but keeps writing: the gateway must keep reading
//! what it writes, must not pile up work for it, and must let it go with a reason.

use std::time::Duration;

use futures::future::join_all;
use mcp_gateway_core::{Gateway, GatewayEvent, RequestOptions, ServerSpec};
use serde_json::json;

use crate::support::{DEADLINE, first_text, next_matching, repo_root};

/// The fixture that stops reading stdin on its first `tools/call`, after sending `pings` pings.
fn stuck_reader(id: &str, pings: usize) -> ServerSpec {
    let script = repo_root().join("mcp-gateway-core/tests/fixtures/stuck_reader_server.py");
    ServerSpec::stdio(
        id,
        "python3",
        [
            script.display().to_string(),
            "--pings".into(),
            pings.to_string(),
        ],
    )
    .expect("valid spec")
}

#[tokio::test]
async fn an_upstream_that_stops_reading_still_has_its_answers_delivered_and_is_let_go() {
    let rude = repo_root().join("mcp-gateway-core/tests/fixtures/misbehaving_server.py");
    let gateway = Gateway::builder().build();
    let mut events = gateway.subscribe();
    gateway
        .add_server(stuck_reader("stuck", 1000))
        .await
        .expect("connects");
    gateway
        .add_server(
            ServerSpec::stdio("rude", "python3", [rude.display().to_string()]).expect("valid spec"),
        )
        .await
        .expect("connects");

    // The upstream floods the gateway with pings it never reads the answers to, then answers the
    // call: a dispatcher that waits to write those answers never reads this one.
    let answer = tokio::time::timeout(
        DEADLINE,
        gateway.call_tool("stuck__stop_reading", json!({})),
    )
    .await
    .expect("the answer arrives though the upstream no longer reads its input")
    .expect("the call succeeds");
    assert_eq!(first_text(&answer), "no longer reading");

    // Its answers cannot be written: the connection is declared lost, with the reason.
    next_matching(&mut events, "the stuck upstream let go", |event| {
        matches!(event, GatewayEvent::StatusChanged { server, reason, .. }
            if server.as_str() == "stuck" && reason.contains("not reading its input"))
    })
    .await;
    let pong = gateway
        .call_tool("rude__pong", json!({}))
        .await
        .expect("the other upstream is unaffected");
    assert_eq!(first_text(&pong), "pong");
    gateway.shutdown().await;
}

#[tokio::test]
async fn cancelled_calls_to_an_upstream_that_stopped_reading_spawn_no_tasks() {
    let gateway = Gateway::builder().build();
    gateway
        .add_server(stuck_reader("stuck", 0))
        .await
        .expect("connects");
    gateway
        .call_tool("stuck__stop_reading", json!({}))
        .await
        .expect("answered before it stops reading");
    let upstream = gateway.upstream("stuck").expect("connected");
    let quick = RequestOptions::default().with_timeout(Duration::from_millis(200));
    // More than a pipe holds: from here on every write to this upstream waits.
    let filler = json!({ "name": "stop_reading", "arguments": { "pad": "x".repeat(256 * 1024) } });
    let _ = upstream.request("tools/call", Some(filler), &quick).await;

    let alive = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let before = alive();
    let calls = (0..2000).map(|_| {
        upstream.request(
            "tools/call",
            Some(json!({ "name": "stop_reading" })),
            &quick,
        )
    });
    let results = join_all(calls).await;
    assert!(
        results.iter().all(Result::is_err),
        "nothing can be answered"
    );
    // Every one of those calls was cancelled; the cancellations must not each get a task.
    let after = alive();
    assert!(
        after < before + 100,
        "{} tasks alive after 2000 cancelled calls, {before} before",
        after
    );
    gateway.shutdown().await;
}
