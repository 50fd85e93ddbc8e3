//! An rmcp server in the same process: run-time tool registration and cancellation routing.

use std::sync::atomic::Ordering;
use std::time::Duration;

use mcp_gateway_core::{
    Gateway, GatewayEvent, InProcessServer, ListKind, ProtocolPreference, ServerSpec,
};
use serde_json::json;

use crate::fixture::Fixture;
use crate::support::{eventually, first_text, next_matching};

fn fixture_spec(id: &str, fixture: &Fixture, protocol: ProtocolPreference) -> ServerSpec {
    let fixture = fixture.clone();
    ServerSpec::in_process(id, InProcessServer::new(id, move || fixture.clone()))
        .expect("valid spec")
        .with_protocol(protocol)
}

#[tokio::test]
async fn a_tool_added_upstream_appears_with_a_new_generation_and_an_event() {
    let fixture = Fixture::default();
    let gateway = Gateway::builder()
        .server(fixture_spec("local", &fixture, ProtocolPreference::Session))
        .build();
    gateway.start().await;
    assert!(gateway.catalog().tool("local__late").is_none());
    let generation = gateway.catalog().generation();
    let mut events = gateway.subscribe();

    let registered = gateway
        .call_tool("local__register_late_tool", json!({}))
        .await
        .expect("register answers");
    assert_eq!(first_text(&registered), "registered");

    let event = next_matching(&mut events, "tools list_changed", |event| {
        matches!(
            event,
            GatewayEvent::ListChanged {
                kind: ListKind::Tools,
                ..
            }
        )
    })
    .await;
    let GatewayEvent::ListChanged {
        generation: after,
        count,
        ..
    } = event
    else {
        unreachable!("matched above")
    };
    assert!(after > generation, "generation {after} after {generation}");
    assert_eq!(count, 4);
    let late = gateway
        .call_tool("local__late", json!({}))
        .await
        .expect("the late tool is routed");
    assert_eq!(first_text(&late), "late tool ran");
    gateway.shutdown().await;
}

/// A caller that gives up cancels its request on the owning upstream, and on no other.
#[tokio::test]
async fn cancellation_reaches_only_the_owning_upstream() {
    for protocol in [ProtocolPreference::Session, ProtocolPreference::Auto] {
        let owner = Fixture::default();
        let bystander = Fixture::default();
        let gateway = Gateway::builder()
            .server(fixture_spec("owner", &owner, protocol))
            .server(fixture_spec("bystander", &bystander, protocol))
            .build();
        gateway.start().await;

        let call = gateway.call_tool("owner__wait_for_cancel", json!({}));
        let gave_up = tokio::time::timeout(Duration::from_millis(200), call).await;
        assert!(gave_up.is_err(), "the call should still be running");

        eventually("the owner to see the cancellation", || {
            owner.state.cancellations.load(Ordering::SeqCst) == 1
        })
        .await;
        // The bystander still answers and never saw a cancellation.
        let sum = gateway
            .call_tool("bystander__add", json!({ "a": 1, "b": 2 }))
            .await
            .expect("bystander answers");
        assert_eq!(first_text(&sum), "3");
        assert_eq!(bystander.state.cancellations.load(Ordering::SeqCst), 0);
        gateway.shutdown().await;
    }
}
