//! The JSON-lines sink against real files: order, appending, drops and the task's end.

use std::time::Instant;

use serde_json::Value;

use super::*;
use crate::events::{EventBus, GatewayEvent};
use crate::spec::ServerId;

/// How long any wait in these tests may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(20);

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("readable")
        .lines()
        .map(|line| serde_json::from_str(line).expect("every line is JSON"))
        .collect()
}

fn tool_call(n: usize) -> GatewayEvent {
    GatewayEvent::ToolCallStarted {
        server: ServerId::new("memory").expect("valid id"),
        tool: format!("memory__tool_{n}"),
    }
}

#[tokio::test]
async fn every_event_becomes_one_parseable_line_in_order() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("events.jsonl");
    let sink = Arc::new(JsonLinesSink::new(&path, JsonLinesConfig::default()).expect("opens"));
    let bus = EventBus::default();
    bus.add_sink(sink.clone());

    bus.emit(GatewayEvent::GatewayStarted);
    for n in 0..500 {
        bus.emit(tool_call(n));
        if n % 100 == 0 {
            // Let the writer take a burst mid-stream too.
            tokio::task::yield_now().await;
        }
    }
    assert!(sink.flush(DEADLINE).await, "written in time");

    let lines = lines(&path);
    assert_eq!(lines.len(), 501);
    assert_eq!(lines[0]["type"], "gateway_started");
    assert_eq!(lines[0]["version"], 1);
    for (index, line) in lines.iter().enumerate() {
        assert_eq!(line["seq"], index as u64 + 1, "in order: {line}");
    }
    assert_eq!(lines[500]["tool"], "memory__tool_499");
    assert_eq!((sink.written(), sink.failed(), sink.dropped()), (501, 0, 0));
}

#[tokio::test]
async fn an_existing_file_is_appended_to() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("events.jsonl");
    std::fs::write(&path, "{\"earlier\":true}\n").expect("writable");
    let sink = JsonLinesSink::new(&path, JsonLinesConfig::default()).expect("opens");
    let bus = EventBus::default();
    bus.add_sink(Arc::new(sink));
    bus.emit(GatewayEvent::GatewayStarted);
    // The bus owns the sink here; dropping it ends the writer after it wrote the queue.
    drop(bus);

    let started = Instant::now();
    while lines(&path).len() < 2 {
        assert!(
            started.elapsed() < DEADLINE,
            "timed out waiting for the line"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let lines = lines(&path);
    assert_eq!(lines[0]["earlier"], true, "kept: {lines:?}");
    assert_eq!(lines[1]["type"], "gateway_started");
}

#[tokio::test]
async fn a_file_that_cannot_be_opened_fails_at_construction() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("missing-dir/events.jsonl");
    let err = JsonLinesSink::new(&path, JsonLinesConfig::default()).expect_err("no such dir");
    assert!(matches!(err, SinkError::Open { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("could not open events file `"),
        "{err}"
    );
}

#[tokio::test]
async fn a_full_queue_drops_and_counts() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("events.jsonl");
    let sink = JsonLinesSink::new(&path, JsonLinesConfig::default().with_queue_capacity(4))
        .expect("opens");
    let bus = EventBus::default();
    let sink = Arc::new(sink);
    bus.add_sink(sink.clone());

    // On this single-threaded runtime the writer cannot run between these calls, so exactly the
    // queue's capacity gets through.
    for n in 0..100 {
        bus.emit(tool_call(n));
    }
    assert_eq!(sink.dropped(), 96);
    assert!(sink.flush(DEADLINE).await);
    assert_eq!(sink.written(), 4);
    let seqs: Vec<u64> = lines(&path)
        .iter()
        .filter_map(|line| line["seq"].as_u64())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
}

#[tokio::test]
async fn dropping_the_sink_writes_the_queue_and_ends_the_task() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("events.jsonl");
    let sink = Arc::new(JsonLinesSink::new(&path, JsonLinesConfig::default()).expect("opens"));
    let bus = EventBus::default();
    bus.add_sink(sink.clone());
    for n in 0..10 {
        bus.emit(tool_call(n));
    }
    // The writer task holds the only other reference to the counters: once they are gone, so is
    // the task.
    let counters = Arc::downgrade(&sink.counters);
    drop(bus);
    drop(sink);
    let started = Instant::now();
    while counters.upgrade().is_some() {
        assert!(
            started.elapsed() < DEADLINE,
            "timed out waiting for the writer to end"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(lines(&path).len(), 10, "the queue was written first");
}

#[test]
fn outside_a_runtime_the_constructor_says_so() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let err = JsonLinesSink::new(dir.path().join("events.jsonl"), JsonLinesConfig::default())
        .expect_err("no runtime");
    assert!(matches!(err, SinkError::NoRuntime), "{err:?}");
}
