//! The Python SDK's MCPServer over Streamable HTTP, negotiated in the stateless 2026-07-28 era,
//! merged with stdio and in-process upstreams.

use mcp_gateway_core::{Era, Gateway, InProcessServer, ServerSpec, ServerStatus};
use serde_json::{Map, json};

use crate::fixture::Fixture;
use crate::support::{
    PeerProcess, everything_stdio, first_text, free_port, peer_python, repo_root, tool_names,
};

#[tokio::test]
async fn python_stateless_server_merged_with_other_transports() {
    let port = free_port();
    let script = repo_root().join("peers/python/modern_server.py");
    let port_arg = port.to_string();
    let peer = PeerProcess::start(
        &peer_python(),
        &[&script.display().to_string(), &port_arg],
        port,
    )
    .await;
    let gateway = Gateway::builder()
        .server(ServerSpec::streamable_http("py", &peer.url("/mcp")).expect("valid spec"))
        .server(everything_stdio("everything"))
        .server(
            ServerSpec::in_process("local", InProcessServer::new("fixture", Fixture::default))
                .expect("valid spec"),
        )
        .build();
    gateway.start().await;

    let py = gateway.server("py").expect("listed");
    assert_eq!(py.status, ServerStatus::Healthy, "{py:?}");
    assert_eq!(py.era, Some(Era::Stateless), "{py:?}");
    assert_eq!(py.protocol_version.as_deref(), Some("2026-07-28"));
    assert_eq!(
        py.server_info.as_ref().map(|i| i["name"].clone()),
        Some(json!("py-modern-fixture"))
    );

    let names = tool_names(&gateway);
    for expected in ["py__echo", "py__add", "everything__echo", "local__add"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }

    let echoed = gateway
        .call_tool("py__echo", json!({ "message": "stateless" }))
        .await
        .expect("echo answers");
    assert_eq!(
        echoed["structuredContent"]["result"], "stateless",
        "{echoed}"
    );
    let sum = gateway
        .call_tool("py__add", json!({ "a": 2, "b": 3 }))
        .await
        .expect("add answers");
    assert_eq!(first_text(&sum), "5", "{sum}");
    let local = gateway
        .call_tool("local__add", json!({ "a": 1, "b": 1 }))
        .await
        .expect("in-process add answers");
    assert_eq!(first_text(&local), "2", "{local}");

    let mut arguments = Map::new();
    arguments.insert("name".into(), json!("Ada"));
    let prompt = gateway
        .get_prompt("py__greet", arguments)
        .await
        .expect("prompt answers");
    assert!(
        prompt["messages"][0]["content"]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Ada"),
        "{prompt}"
    );
    let hello = gateway
        .read_resource("py://hello")
        .await
        .expect("resource reads");
    assert!(hello["contents"][0]["text"].is_string(), "{hello}");
    gateway.shutdown().await;
}
