//! Alerts leave the gateway: a real crash-looping stdio upstream makes the engine raise a
//! `failed` alert, and the built-in webhook sink POSTs it to a receiver started by the test.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use mcp_gateway_core::sinks::WebhookConfig;
use mcp_gateway_core::{Gateway, ProtocolPreference, RestartPolicy, ServerSpec, WebhookSink};
use serde_json::Value;

use crate::support::{DEADLINE, eventually};

type Received = Arc<Mutex<Vec<Value>>>;

async fn record(State(received): State<Received>, body: String) -> StatusCode {
    match serde_json::from_str(&body) {
        Ok(body) => {
            if let Ok(mut received) = received.lock() {
                received.push(body);
            }
            StatusCode::NO_CONTENT
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_alert_reaches_the_webhook() {
    let received = Received::default();
    let router = Router::new()
        .route("/alerts", post(record))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let address = listener.local_addr().expect("bound");
    let receiver = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });

    let alerts = Arc::new(
        WebhookSink::new(
            format!("http://{address}/alerts"),
            WebhookConfig::default()
                .with_backoff(Duration::from_millis(10), Duration::from_millis(100)),
        )
        .expect("valid webhook"),
    );
    let gateway = Gateway::builder().event_sink(alerts.clone()).build();
    let spec = ServerSpec::stdio("crashy", "python3", ["-c", "import sys; sys.exit(3)"])
        .expect("valid spec")
        .with_protocol(ProtocolPreference::Session)
        .with_restart(
            RestartPolicy::default()
                .with_backoff(Duration::from_millis(10), Duration::from_millis(40))
                .with_max_failures(3, Duration::from_secs(60)),
        );
    gateway
        .add_server(spec)
        .await
        .expect_err("it exits at once");

    let alert_arrived = || {
        received.lock().is_ok_and(|bodies| {
            bodies
                .iter()
                .any(|body| body["type"] == "alert_raised" && body["kind"] == "failed")
        })
    };
    eventually("the failed alert at the webhook", alert_arrived).await;

    let bodies = received.lock().map(|b| b.clone()).unwrap_or_default();
    assert_eq!(bodies.len(), 1, "alerts only, one of them: {bodies:?}");
    let alert = &bodies[0];
    assert_eq!(alert["server"], "crashy");
    assert_eq!(alert["version"], 1);
    assert!(alert["seq"].as_u64().is_some_and(|seq| seq > 0), "{alert}");
    let text = alert["text"].as_str().unwrap_or_default();
    assert!(
        text.starts_with(
            ":rotating_light: mcp-gateway alert: server `crashy` failed and will not be retried"
        ),
        "{text}"
    );
    assert!(alerts.flush(DEADLINE).await);
    assert_eq!(
        (alerts.delivered(), alerts.failed(), alerts.dropped()),
        (1, 0, 0)
    );

    gateway.shutdown().await;
    receiver.abort();
}
