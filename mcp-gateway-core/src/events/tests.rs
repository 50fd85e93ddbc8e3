use std::sync::Mutex;

use serde_json::json;

use super::*;

#[derive(Default)]
struct Recorder(Mutex<Vec<u64>>);

impl EventSink for Recorder {
    fn on_event(&self, event: &EventEnvelope) {
        if let Ok(mut seen) = self.0.lock() {
            seen.push(event.seq);
        }
    }
}

fn server() -> ServerId {
    ServerId::new("memory").expect("valid id")
}

#[test]
fn events_serialise_with_a_type_tag_a_version_and_a_sequence_number() {
    let bus = EventBus::default();
    bus.emit(GatewayEvent::GatewayStarted);
    bus.emit(GatewayEvent::ToolCallFinished {
        server: server(),
        tool: "memory__read_graph".into(),
        duration_us: 120,
        outcome: CallOutcome::Failed("timed out".into()),
    });
    let history = bus.history_since(1);
    assert_eq!(history.len(), 1);
    let mut value = serde_json::to_value(&*history[0]).expect("serialisable");
    assert!(value["time_ms"].as_u64().is_some_and(|t| t > 0));
    value["time_ms"] = json!(0);
    assert_eq!(
        value,
        json!({
            "version": 1,
            "seq": 2,
            "time_ms": 0,
            "type": "tool_call_finished",
            "server": "memory",
            "tool": "memory__read_graph",
            "duration_us": 120,
            "outcome": { "kind": "failed", "message": "timed out" },
        })
    );
}

#[test]
fn sinks_see_every_event_in_order_and_history_is_bounded() {
    let bus = EventBus::new(EventBusConfig {
        subscriber_capacity: 8,
        history: 3,
        ..EventBusConfig::default()
    });
    let recorder = Arc::new(Recorder::default());
    bus.add_sink(recorder.clone());
    for _ in 0..5 {
        bus.emit(GatewayEvent::GatewayStarted);
    }
    assert_eq!(*recorder.0.lock().expect("not poisoned"), [1, 2, 3, 4, 5]);
    let kept: Vec<u64> = bus.history_since(0).iter().map(|e| e.seq).collect();
    assert_eq!(kept, [3, 4, 5]);
}

#[tokio::test]
async fn a_lagging_subscriber_is_told_how_much_it_missed() {
    let bus = EventBus::new(EventBusConfig {
        subscriber_capacity: 2,
        history: 0,
        ..EventBusConfig::default()
    });
    let mut subscription = bus.subscribe();
    for _ in 0..5 {
        bus.emit(GatewayEvent::GatewayStarted);
    }
    let first = subscription.recv().await.expect("bus alive");
    assert_eq!(first.event, GatewayEvent::Lagged { missed: 3 });
    let next = subscription.recv().await.expect("bus alive");
    assert_eq!(next.seq, 4);
}

/// A log event whose serialised size is `size(text)`: the same event with a longer `text` is
/// exactly that much larger.
fn log(text: &str) -> GatewayEvent {
    GatewayEvent::UpstreamLog {
        server: server(),
        source: LogSource::Stderr,
        level: "info".into(),
        logger: None,
        message: Value::String(text.into()),
        session: None,
    }
}

fn kept(bus: &EventBus) -> Vec<u64> {
    bus.history_since(0).iter().map(|e| e.seq).collect()
}

#[test]
fn history_is_bounded_by_bytes_oldest_first() {
    let size = Measure::len(&log("0123456789"));
    let bus = EventBus::new(EventBusConfig {
        history: 100,
        history_bytes: 3 * size,
        ..EventBusConfig::default()
    });
    for _ in 0..3 {
        bus.emit(log("0123456789"));
    }
    assert_eq!(kept(&bus), [1, 2, 3], "exactly the budget fits");
    bus.emit(log("0123456789"));
    assert_eq!(kept(&bus), [2, 3, 4]);
    // One byte more than a slot: two old events make room for it.
    bus.emit(log("0123456789+"));
    assert_eq!(kept(&bus), [4, 5]);
}

#[test]
fn an_event_larger_than_the_whole_budget_is_not_kept_but_still_delivered() {
    let size = Measure::len(&log("small"));
    let bus = EventBus::new(EventBusConfig {
        history: 100,
        history_bytes: size,
        ..EventBusConfig::default()
    });
    let recorder = Arc::new(Recorder::default());
    bus.add_sink(recorder.clone());
    bus.emit(log("small"));
    bus.emit(log("too large for the budget"));
    assert_eq!(kept(&bus), [1], "the large one neither kept nor evicting");
    assert_eq!(*recorder.0.lock().expect("not poisoned"), [1, 2]);
}

#[test]
fn a_log_message_at_the_limit_is_kept_and_one_byte_more_is_cut_with_a_count() {
    let at_limit = "a".repeat(MAX_LOG_MESSAGE);
    assert_eq!(cut_log_message(json!(at_limit)), json!(at_limit));
    let over = format!("{at_limit}bc");
    assert_eq!(
        cut_log_message(json!(over)),
        json!(format!("{at_limit}… [2 more bytes cut]"))
    );
}

#[test]
fn a_cut_never_splits_a_character() {
    // `é` is two bytes; the limit falls in the middle of the last one kept.
    let text = format!("{}é{}", "a".repeat(MAX_LOG_MESSAGE - 1), "z".repeat(10));
    let cut = cut_log_message(json!(text));
    let expected = format!("{}… [12 more bytes cut]", "a".repeat(MAX_LOG_MESSAGE - 1));
    assert_eq!(cut, json!(expected));
}

#[test]
fn a_large_structured_log_message_becomes_its_json_text_cut() {
    let small = json!({ "rows": [1, 2, 3] });
    assert_eq!(cut_log_message(small.clone()), small);
    let large = json!({ "rows": vec![12345; 2000] });
    let text = large.to_string();
    let cut = cut_log_message(large);
    let cut = cut.as_str().expect("cut to text");
    assert!(cut.starts_with(&text[..MAX_LOG_MESSAGE]), "{cut}");
    assert!(cut.ends_with(&format!(
        "… [{} more bytes cut]",
        text.len() - MAX_LOG_MESSAGE
    )));
}
