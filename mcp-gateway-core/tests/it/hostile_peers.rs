//! Stdio upstreams that turn hostile while a sibling keeps working: one that answers with a line
//! larger than the gateway reads, and one that floods notifications as fast as it can write. The
//! gateway must isolate each: the hostile upstream's calls fail with a reason (or it is merely
//! reported), an event says what happened, and the sibling answers throughout.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use mcp_gateway_core::{Gateway, GatewayEvent, ServerSpec, error_chain};
use serde_json::json;
use tracing_subscriber::layer::{Context, SubscriberExt};

use crate::support::{DEADLINE, eventually, first_text, next_matching, repo_root};

/// The fixture that turns hostile on command (`huge`, `flood`, `calm`, `stop_reading`).
fn hostile(id: &str) -> ServerSpec {
    let script = repo_root().join("mcp-gateway-core/tests/fixtures/hostile_server.py");
    ServerSpec::stdio(id, "python3", [script.display().to_string()])
        .expect("valid spec")
        // Longer than the test's deadline: a call that fails only by timing out fails the test.
        .with_request_timeout(DEADLINE * 4)
}

/// A gateway with the hostile upstream and a well-behaved sibling (the same fixture, left calm).
async fn hostile_and_sibling() -> Gateway {
    let gateway = Gateway::builder().build();
    gateway
        .add_server(hostile("hostile"))
        .await
        .expect("connects");
    gateway
        .add_server(hostile("sibling"))
        .await
        .expect("connects");
    gateway
}

async fn sibling_answers(gateway: &Gateway) {
    let pong = tokio::time::timeout(DEADLINE, gateway.call_tool("sibling__pong", json!({})))
        .await
        .expect("the sibling answers while its neighbour misbehaves")
        .expect("the sibling's call succeeds");
    assert!(first_text(&pong).starts_with("pong from "), "{pong}");
}

#[tokio::test]
async fn an_answer_longer_than_the_line_limit_fails_its_call_with_the_reason() {
    let gateway = hostile_and_sibling().await;
    let mut events = gateway.subscribe();
    let before = gateway
        .call_tool("hostile__pong", json!({}))
        .await
        .expect("answers before");

    // 100 MB on one line, past the 64 MiB the gateway reads of a line; the answer's id first
    // (Python, rmcp) and last (the TypeScript SDK).
    for id_last in [false, true] {
        let arguments = json!({ "bytes": 100_000_000, "id_last": id_last });
        let err = tokio::time::timeout(DEADLINE, gateway.call_tool("hostile__huge", arguments))
            .await
            .expect("the call fails when its answer is skipped, not when it times out")
            .expect_err("an answer that was not read cannot succeed");
        let text = error_chain(&err);
        assert!(
            text.contains("hostile") && text.contains("67108864 bytes"),
            "{text}"
        );
        next_matching(&mut events, "the skipped line reported", |event| {
            matches!(event, GatewayEvent::ProtocolViolation { server, detail }
                if server.as_str() == "hostile" && detail.contains("67108864 bytes"))
        })
        .await;
        sibling_answers(&gateway).await;
    }
    // The same child reads on after the skipped line.
    let after = gateway
        .call_tool("hostile__pong", json!({}))
        .await
        .expect("answers after");
    assert_eq!(
        first_text(&after),
        first_text(&before),
        "the child was replaced"
    );
    gateway.shutdown().await;
}

/// Starts a flood of `kind` and checks the sibling, and the flooding upstream itself, keep
/// answering while it lasts.
async fn flood_leaves_the_sibling_answering(kind: &str) {
    let gateway = hostile_and_sibling().await;
    let flooding = gateway
        .call_tool("hostile__flood", json!({ "kind": kind }))
        .await
        .expect("the flood starts");
    assert_eq!(first_text(&flooding), "flooding");
    // The fixture sends the first of the flood before that answer: the gateway is flooded now.
    for _ in 0..20 {
        sibling_answers(&gateway).await;
    }
    let calm = tokio::time::timeout(DEADLINE, gateway.call_tool("hostile__calm", json!({})))
        .await
        .expect("the flooding upstream's own answers get through the flood")
        .expect("calm succeeds");
    assert_eq!(first_text(&calm), "calm");
    let status = gateway.server("hostile").expect("listed").status;
    assert_eq!(status, mcp_gateway_core::ServerStatus::Healthy);
    tokio::time::timeout(Duration::from_secs(10), gateway.shutdown())
        .await
        .expect("shutdown is not held up by the flood");
}

/// The dispatcher's warnings (its only one: signals dropped from a full queue), per server.
static DROP_WARNINGS: OnceLock<Mutex<HashMap<String, usize>>> = OnceLock::new();

/// How many drop warnings `server` got so far. The first call installs the counting subscriber
/// as the process's default: a thread's own subscriber misses events while tests run in
/// parallel (tracing caches each call site's interest across threads).
fn drop_warnings(server: &str) -> usize {
    let counts = DROP_WARNINGS.get_or_init(|| {
        let _ = tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(CountDropWarnings),
        );
        Mutex::new(HashMap::new())
    });
    let counts = counts.lock().expect("not poisoned");
    counts.get(server).copied().unwrap_or_default()
}

struct CountDropWarnings;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountDropWarnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let metadata = event.metadata();
        if *metadata.level() != tracing::Level::WARN
            || metadata.module_path() != Some("mcp_gateway_core::upstream::dispatch")
        {
            return;
        }
        let mut server = ServerField(None);
        event.record(&mut server);
        if let (Some(server), Some(counts)) = (server.0, DROP_WARNINGS.get()) {
            *counts
                .lock()
                .expect("not poisoned")
                .entry(server)
                .or_default() += 1;
        }
    }
}

/// The `server` field of an event.
struct ServerField(Option<String>);

impl tracing::field::Visit for ServerField {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "server" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

#[tokio::test]
async fn a_flood_that_fills_the_signal_queue_logs_a_warning_a_second_not_one_per_signal() {
    assert_eq!(drop_warnings("flooder"), 0);
    let gateway = Gateway::builder().build();
    gateway
        .add_server(hostile("flooder"))
        .await
        .expect("connects");
    gateway
        .add_server(hostile("sibling"))
        .await
        .expect("connects");
    let started = Instant::now();
    // A list-changed flood fills the queue while each refresh waits a second for the list.
    gateway
        .call_tool(
            "flooder__flood",
            json!({ "kind": "tools", "list_delay": 1 }),
        )
        .await
        .expect("the flood starts");
    eventually("a dropped signal reported", || drop_warnings("flooder") > 0).await;
    sibling_answers(&gateway).await;
    gateway
        .call_tool("flooder__calm", json!({}))
        .await
        .expect("calm succeeds");
    gateway.shutdown().await;
    let seconds = started.elapsed().as_secs();
    let logged = drop_warnings("flooder");
    // One when the drops start, one a second after that, and one for those left at the end.
    assert!(
        logged as u64 <= seconds + 2,
        "{logged} warnings in {seconds} s of flood"
    );
}

#[tokio::test]
async fn a_log_notification_flood_leaves_the_sibling_answering() {
    flood_leaves_the_sibling_answering("message").await;
}

#[tokio::test]
async fn a_list_changed_flood_leaves_the_sibling_answering() {
    flood_leaves_the_sibling_answering("tools").await;
}
