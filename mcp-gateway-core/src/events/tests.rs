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
