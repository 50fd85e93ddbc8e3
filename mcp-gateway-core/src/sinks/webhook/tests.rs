//! The webhook sink against a real HTTP receiver on loopback: the payload, retries, timeouts,
//! drops, redaction and the task's end.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap as AxumHeaders, StatusCode as AxumStatus};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::*;
use crate::events::{AlertKind, EVENT_SCHEMA_VERSION, ServerStatus};

/// How long any wait in these tests may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(20);

/// What the receiver does with one request.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Status(u16),
    /// Never answers.
    Hang,
    /// Answers 200 once the test opens the gate.
    Gate,
}

#[derive(Default)]
struct Script {
    answers: Mutex<VecDeque<Answer>>,
    bodies: Mutex<Vec<Value>>,
    authorization: Mutex<Vec<Option<String>>>,
    gate: watch::Sender<bool>,
}

/// An HTTP server on 127.0.0.1:0 that records every POST and answers from a script (200 once the
/// script is used up).
struct Receiver {
    url: String,
    script: Arc<Script>,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(answers: impl IntoIterator<Item = Answer>) -> Self {
        let script = Arc::new(Script {
            answers: Mutex::new(answers.into_iter().collect()),
            ..Script::default()
        });
        let router = Router::new()
            .route("/hook/secret-path", post(receive))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let address = listener.local_addr().expect("bound");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            url: format!("http://{address}/hook/secret-path"),
            script,
            server,
        }
    }

    fn requests(&self) -> usize {
        self.script.bodies.lock().expect("not poisoned").len()
    }

    fn bodies(&self) -> Vec<Value> {
        self.script.bodies.lock().expect("not poisoned").clone()
    }

    fn open_gate(&self) {
        self.script.gate.send_replace(true);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn receive(
    State(script): State<Arc<Script>>,
    headers: AxumHeaders,
    body: String,
) -> AxumStatus {
    let answer = script
        .answers
        .lock()
        .expect("not poisoned")
        .pop_front()
        .unwrap_or(Answer::Status(200));
    script.authorization.lock().expect("not poisoned").push(
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    );
    let body = serde_json::from_str(&body).unwrap_or(Value::String(body));
    script.bodies.lock().expect("not poisoned").push(body);
    match answer {
        Answer::Status(code) => AxumStatus::from_u16(code).expect("a valid status"),
        Answer::Hang => std::future::pending().await,
        Answer::Gate => {
            let _ = script.gate.subscribe().wait_for(|open| *open).await;
            AxumStatus::OK
        }
    }
}

/// Polls `check` until it holds; fails the test after [`DEADLINE`].
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn server() -> ServerId {
    ServerId::new("memory").expect("valid id")
}

fn envelope(seq: u64, event: GatewayEvent) -> EventEnvelope {
    EventEnvelope {
        version: EVENT_SCHEMA_VERSION,
        seq,
        time_ms: 1_700_000_000_000 + seq,
        event,
    }
}

fn raised(seq: u64) -> EventEnvelope {
    envelope(
        seq,
        GatewayEvent::AlertRaised {
            server: server(),
            kind: AlertKind::Unhealthy,
            message: "server `memory` is unhealthy: health probe got no answer within 5s".into(),
        },
    )
}

/// Fast retries, so a test sees every try in milliseconds.
fn quick() -> WebhookConfig {
    WebhookConfig::default()
        .with_backoff(Duration::from_millis(5), Duration::from_millis(20))
        .with_request_timeout(Duration::from_secs(5))
}

#[tokio::test]
async fn alerts_are_posted_as_the_envelope_plus_a_slack_text() {
    let receiver = Receiver::start([]).await;
    let sink = WebhookSink::new(
        &receiver.url,
        quick().with_header("authorization", "Bearer s3cret"),
    )
    .expect("valid config");

    sink.on_event(&envelope(
        1,
        GatewayEvent::StatusChanged {
            server: server(),
            from: ServerStatus::Healthy,
            to: ServerStatus::Unhealthy,
            reason: "no answer".into(),
        },
    ));
    sink.on_event(&raised(2));
    sink.on_event(&envelope(
        3,
        GatewayEvent::AlertResolved {
            server: server(),
            kind: AlertKind::Unhealthy,
            message: "the server answers again".into(),
        },
    ));
    assert!(sink.flush(DEADLINE).await, "delivered in time");

    assert_eq!(
        receiver.bodies(),
        vec![
            json!({
                "text": ":rotating_light: mcp-gateway alert: server `memory` is unhealthy: health probe got no answer within 5s",
                "version": 1,
                "seq": 2,
                "time_ms": 1_700_000_000_002_u64,
                "type": "alert_raised",
                "server": "memory",
                "kind": "unhealthy",
                "message": "server `memory` is unhealthy: health probe got no answer within 5s",
            }),
            json!({
                "text": ":white_check_mark: mcp-gateway alert resolved: server `memory` is no longer unhealthy: the server answers again",
                "version": 1,
                "seq": 3,
                "time_ms": 1_700_000_000_003_u64,
                "type": "alert_resolved",
                "server": "memory",
                "kind": "unhealthy",
                "message": "the server answers again",
            }),
        ],
        "only alerts, in order"
    );
    assert_eq!(
        *receiver.script.authorization.lock().expect("not poisoned"),
        vec![Some("Bearer s3cret".to_owned()); 2]
    );
    assert_eq!((sink.delivered(), sink.failed(), sink.dropped()), (2, 0, 0));
}

#[tokio::test]
async fn the_all_filter_sends_every_event() {
    let receiver = Receiver::start([]).await;
    let sink = WebhookSink::new(&receiver.url, quick().with_filter(EventFilter::All))
        .expect("valid config");
    sink.on_event(&envelope(1, GatewayEvent::GatewayStarted));
    sink.on_event(&raised(2));
    assert!(sink.flush(DEADLINE).await);
    let bodies = receiver.bodies();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0]["type"], "gateway_started");
    assert_eq!(
        bodies[0]["text"],
        ":information_source: mcp-gateway event `gateway_started`"
    );
    assert_eq!(bodies[1]["type"], "alert_raised");
}

#[tokio::test]
async fn a_5xx_or_429_is_retried_until_the_receiver_accepts() {
    let receiver = Receiver::start([Answer::Status(500), Answer::Status(429)]).await;
    let sink = WebhookSink::new(&receiver.url, quick()).expect("valid config");
    sink.on_event(&raised(1));
    assert!(sink.flush(DEADLINE).await);
    assert_eq!(receiver.requests(), 3, "500, 429, then 200");
    assert_eq!((sink.delivered(), sink.failed()), (1, 0));
    let bodies = receiver.bodies();
    assert!(
        bodies.iter().all(|body| body == &bodies[0]),
        "the same body each time"
    );
}

#[tokio::test]
async fn a_4xx_is_not_retried() {
    let receiver = Receiver::start([Answer::Status(400)]).await;
    let sink = WebhookSink::new(&receiver.url, quick()).expect("valid config");
    sink.on_event(&raised(1));
    assert!(sink.flush(DEADLINE).await);
    assert_eq!((sink.delivered(), sink.failed()), (0, 1));
    assert_eq!(receiver.requests(), 1, "no retry after a 400");

    // The sink carries on with the next event.
    sink.on_event(&raised(2));
    assert!(sink.flush(DEADLINE).await);
    assert_eq!((sink.delivered(), sink.failed()), (1, 1));
}

#[tokio::test]
async fn a_receiver_that_hangs_times_out_and_counts_a_failure() {
    let receiver = Receiver::start([Answer::Hang, Answer::Hang]).await;
    let config = quick()
        .with_request_timeout(Duration::from_millis(200))
        .with_max_attempts(2);
    let sink = WebhookSink::new(&receiver.url, config).expect("valid config");
    sink.on_event(&raised(1));
    assert!(sink.flush(DEADLINE).await);
    assert_eq!((sink.delivered(), sink.failed()), (0, 1));
    assert_eq!(
        receiver.requests(),
        2,
        "a timeout is retried, up to the attempts"
    );
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_counted_as_failed() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port");
    let sink = WebhookSink::new(
        format!("http://{closed}/hook"),
        quick().with_max_attempts(3),
    )
    .expect("valid config");
    sink.on_event(&raised(1));
    assert!(sink.flush(DEADLINE).await);
    assert_eq!((sink.delivered(), sink.failed()), (0, 1));
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_while_on_event_returns_at_once() {
    let receiver = Receiver::start([Answer::Gate]).await;
    let sink =
        WebhookSink::new(&receiver.url, quick().with_queue_capacity(2)).expect("valid config");
    sink.on_event(&raised(1));
    eventually("the first event in flight", || receiver.requests() == 1).await;

    // The receiver holds the first request, so two more fit in the queue and the rest drop. Each
    // call returns at once: on this single-threaded runtime a blocking one would hang the test.
    for seq in 2..12 {
        sink.on_event(&raised(seq));
    }
    assert_eq!(sink.dropped(), 8);

    receiver.open_gate();
    assert!(sink.flush(DEADLINE).await);
    assert_eq!((sink.delivered(), sink.failed(), sink.dropped()), (3, 0, 8));
    let seqs: Vec<u64> = receiver
        .bodies()
        .iter()
        .filter_map(|body| body["seq"].as_u64())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3], "the queued events, in order");
}

#[tokio::test]
async fn flush_reports_a_queue_that_does_not_drain() {
    let receiver = Receiver::start([Answer::Gate]).await;
    let sink = WebhookSink::new(&receiver.url, quick()).expect("valid config");
    sink.on_event(&raised(1));
    assert!(!sink.flush(Duration::from_millis(50)).await);
    receiver.open_gate();
    assert!(sink.flush(DEADLINE).await);
}

#[tokio::test]
async fn dropping_the_sink_ends_its_task_even_mid_request() {
    let receiver = Receiver::start([Answer::Hang]).await;
    let sink = WebhookSink::new(&receiver.url, quick()).expect("valid config");
    sink.on_event(&raised(1));
    eventually("the request in flight", || receiver.requests() == 1).await;

    // The task holds the only other reference to the counters: once they are gone, so is it.
    let counters = Arc::downgrade(&sink.counters);
    drop(sink);
    eventually("the delivery task to end", || counters.upgrade().is_none()).await;
}

#[tokio::test]
async fn the_url_path_and_header_values_never_print() {
    let config = quick().with_header("authorization", "Bearer s3cret");
    let sink = WebhookSink::new(
        "https://hooks.example.com/services/T000/B000/XXXX",
        config.clone(),
    )
    .expect("valid config");
    let printed = format!("{config:?} {sink:?}");
    assert!(!printed.contains("s3cret"), "{printed}");
    assert!(!printed.contains("XXXX"), "{printed}");
    assert!(
        printed.contains("https://hooks.example.com/***"),
        "{printed}"
    );
}

#[tokio::test]
async fn bad_urls_and_headers_are_rejected_without_echoing_secrets() {
    for url in ["not a url", "ftp://example.com/hook"] {
        let err = WebhookSink::new(url, quick()).expect_err("rejected");
        assert!(matches!(err, SinkError::InvalidUrl(_)), "{err:?}");
    }
    let err = WebhookSink::new("http://127.0.0.1:9/", quick().with_header("bad name", "x"))
        .expect_err("rejected");
    assert_eq!(err.to_string(), "invalid webhook header `bad name`");
    let err = WebhookSink::new(
        "http://127.0.0.1:9/",
        quick().with_header("authorization", "s3cret\nvalue"),
    )
    .expect_err("rejected");
    assert!(!format!("{err} {err:?}").contains("s3cret"));
}

#[test]
fn outside_a_runtime_the_constructor_says_so() {
    let err =
        WebhookSink::new("http://127.0.0.1:9/", WebhookConfig::default()).expect_err("no runtime");
    assert!(matches!(err, SinkError::NoRuntime), "{err:?}");
}

#[test]
fn alert_texts_name_the_server_once() {
    assert_eq!(
        text(&GatewayEvent::AlertRaised {
            server: server(),
            kind: AlertKind::Failed,
            message: "server `memory` failed and will not be retried: 4 failures in 60s".into(),
        }),
        ":rotating_light: mcp-gateway alert: server `memory` failed and will not be retried: 4 failures in 60s"
    );
    assert_eq!(
        text(&GatewayEvent::AlertRaised {
            server: server(),
            kind: AlertKind::Unhealthy,
            message: "probe timed out".into(),
        }),
        ":rotating_light: mcp-gateway alert: server `memory` unhealthy: probe timed out"
    );
}
