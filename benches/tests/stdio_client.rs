//! The direct stdio client of `loadgen --stdio`, against the real `bench-fixture --stdio`: both
//! eras, and many requests in flight on the one child, each answered to its own caller.

use std::sync::Arc;

use benches::client::Era;
use benches::stdio_client::StdioClient;
use serde_json::{Value, json};

fn fixture() -> Vec<String> {
    vec![
        env!("CARGO_BIN_EXE_bench-fixture").to_owned(),
        "--stdio".to_owned(),
    ]
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn echoes_in_both_eras_with_many_calls_in_flight() {
    for era in [Era::Session, Era::Stateless] {
        let client = Arc::new(StdioClient::spawn(&fixture(), era).await.expect("starts"));
        let calls = (0..32).map(|n| {
            let client = client.clone();
            tokio::spawn(async move {
                let message = format!("{era} {n}");
                let result = client
                    .call_tool("echo", &json!({ "message": message }))
                    .await
                    .expect("answered");
                (message, text(&result).to_owned())
            })
        });
        for call in calls {
            let (sent, echoed) = call.await.expect("joined");
            assert_eq!(echoed, sent);
        }
    }
}

#[tokio::test]
async fn an_unknown_tool_is_an_error_not_a_hang() {
    let client = StdioClient::spawn(&fixture(), Era::Session)
        .await
        .expect("starts");
    let outcome = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        client.call_tool("no_such_tool", &json!({})),
    )
    .await
    .expect("answered in time");
    assert!(outcome.is_err(), "{outcome:?}");
}
