//! An upstream's log messages as events: a huge one is cut when its event is made, so neither
//! the signal queue nor the event history holds what the upstream sent.

use mcp_gateway_core::{Gateway, GatewayEvent, LogSource, ServerSpec};
use serde_json::json;

use crate::support::{first_text, next_matching, repo_root};

#[tokio::test]
async fn a_huge_upstream_log_message_is_cut_in_its_event_and_the_history() {
    let script = repo_root().join("mcp-gateway-core/tests/fixtures/misbehaving_server.py");
    let spec = ServerSpec::stdio(
        "loud",
        "python3",
        [
            script.display().to_string(),
            "--log-bytes".into(),
            "1000000".into(),
        ],
    )
    .expect("valid spec");
    let gateway = Gateway::builder().build();
    let mut events = gateway.subscribe();
    gateway.add_server(spec).await.expect("connects");
    let pong = gateway
        .call_tool("loud__pong", json!({}))
        .await
        .expect("answered");
    assert_eq!(first_text(&pong), "pong");

    let log = next_matching(&mut events, "the log message", |event| {
        matches!(
            event,
            GatewayEvent::UpstreamLog {
                source: LogSource::Notification,
                ..
            }
        )
    })
    .await;
    let GatewayEvent::UpstreamLog {
        message,
        level,
        logger,
        ..
    } = log
    else {
        unreachable!("matched above")
    };
    assert_eq!((level.as_str(), logger.as_deref()), ("info", Some("big")));
    let text = message.as_str().expect("the data, cut, is text");
    assert!(
        text.len() < 5000 && text.starts_with("xxxx") && text.ends_with("more bytes cut]"),
        "{} bytes kept, ending {:?}",
        text.len(),
        &text[text.len().saturating_sub(40)..]
    );
    let kept = gateway.events().history_since(0);
    assert!(kept.iter().any(|envelope| matches!(
        &envelope.event,
        GatewayEvent::UpstreamLog { message: kept, .. } if *kept == message
    )));
    gateway.shutdown().await;
}
