//! The per-address session cap, over real sockets from two loopback addresses: a client that
//! opens more sessions than its cap pushes out its own oldest idle one, never another client's.

use std::net::{IpAddr, Ipv4Addr};

use mcp_gateway_core::DownstreamConfig;
use serde_json::json;

use crate::support::{RunningGateway, open_session};

/// A client whose connections come from `address` (any 127.0.0.0/8 address is this host).
fn client_from(address: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(address))
        .build()
        .expect("client")
}

/// The HTTP status of a `ping` in `session`.
async fn ping(client: &reqwest::Client, url: &str, session: &str) -> u16 {
    client
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", session)
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({ "jsonrpc": "2.0", "id": 2, "method": "ping" }))
        .send()
        .await
        .expect("ping")
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_client_past_its_address_cap_evicts_its_own_session_not_another_clients() {
    let gateway = RunningGateway::start_with(
        Vec::new(),
        DownstreamConfig::default().with_max_sessions_per_peer(1),
    )
    .await;
    let url = format!("{}/mcp", gateway.url);
    let one = client_from(Ipv4Addr::new(127, 0, 0, 1));
    let two = client_from(Ipv4Addr::new(127, 0, 0, 2));

    let first = open_session(&one, &url).await;
    let other = open_session(&two, &url).await;
    assert_eq!(ping(&one, &url, &first).await, 200);
    let second = open_session(&one, &url).await;

    assert_eq!(
        ping(&one, &url, &first).await,
        404,
        "the first session should be evicted"
    );
    assert_eq!(ping(&one, &url, &second).await, 200);
    assert_eq!(
        ping(&two, &url, &other).await,
        200,
        "another address's session was evicted"
    );
    gateway.stop().await;
}
