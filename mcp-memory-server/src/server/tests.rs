//! The handler through rmcp's own client over an in-memory pipe: resources, session-era
//! subscriptions, and the stateless era's `subscriptions/listen`.

use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, ErrorCode, ProtocolVersion,
    ReadResourceRequestParams, ServerNotification,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, NotificationContext, RunningService};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::mpsc;

use super::*;

const WAIT: Duration = Duration::from_secs(10);

/// A client that reports every `notifications/resources/updated` URI on a channel.
#[derive(Clone)]
struct Updates(mpsc::UnboundedSender<String>);

impl ClientHandler for Updates {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("memory-tests", "0"),
        )
        .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.0.send(params.uri);
    }
}

fn open() -> (TempDir, MemoryServer) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let server = MemoryServer::open(dir.path().join("memory.jsonl")).expect("opens");
    (dir, server)
}

/// Serves a clone of `server` to a new client over an in-memory pipe.
async fn connect(
    server: &MemoryServer,
    lifecycle: ClientLifecycleMode,
) -> (
    RunningService<RoleClient, Updates>,
    mpsc::UnboundedReceiver<String>,
) {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let handler = server.clone();
    tokio::spawn(async move {
        if let Ok(running) = handler.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let client = Updates(tx)
        .serve_with_lifecycle(client_io, lifecycle)
        .await
        .expect("client connects");
    (client, rx)
}

async fn session(
    server: &MemoryServer,
) -> (
    RunningService<RoleClient, Updates>,
    mpsc::UnboundedReceiver<String>,
) {
    connect(server, ClientLifecycleMode::Initialize).await
}

fn arguments(value: Value) -> rmcp::model::JsonObject {
    match value {
        Value::Object(map) => map,
        _ => rmcp::model::JsonObject::new(),
    }
}

async fn create(client: &RunningService<RoleClient, Updates>, names: &[&str]) {
    let entities: Vec<Value> = names
        .iter()
        .map(|name| json!({ "name": name, "entityType": "t", "observations": [] }))
        .collect();
    let result = client
        .call_tool(
            CallToolRequestParams::new("create_entities")
                .with_arguments(arguments(json!({ "entities": entities }))),
        )
        .await
        .expect("called");
    assert_ne!(result.is_error, Some(true), "{result:?}");
}

/// The next `n` updated URIs, sorted (one write's notifications come in no set order).
async fn next_updates(updates: &mut mpsc::UnboundedReceiver<String>, n: usize) -> Vec<String> {
    let mut uris = Vec::new();
    for _ in 0..n {
        let uri = tokio::time::timeout(WAIT, updates.recv())
            .await
            .expect("an update in time")
            .expect("the channel is open");
        uris.push(uri);
    }
    uris.sort();
    uris
}

#[tokio::test]
#[expect(
    deprecated,
    reason = "resources/subscribe is the session era's subscription"
)]
async fn session_subscribers_hear_about_the_resources_they_chose() {
    let (_dir, server) = open();
    let (client, mut updates) = session(&server).await;
    let (other, mut other_updates) = session(&server).await;
    for uri in ["memory://graph", "memory://entities/Alice%20Smith"] {
        client
            .subscribe(SubscribeRequestParams::new(uri))
            .await
            .expect("subscribed");
    }
    other
        .subscribe(SubscribeRequestParams::new("memory://knowledge-graph"))
        .await
        .expect("subscribed");

    create(&client, &["Alice Smith"]).await;
    assert_eq!(
        next_updates(&mut updates, 2).await,
        ["memory://entities/Alice%20Smith", "memory://graph"]
    );
    assert_eq!(
        next_updates(&mut other_updates, 1).await,
        ["memory://knowledge-graph"]
    );

    // Bob's creation changes the graph but not Alice: exactly one update, then the next
    // write's two prove that no stray Alice update was queued in between.
    create(&other, &["Bob"]).await;
    assert_eq!(next_updates(&mut updates, 1).await, ["memory://graph"]);
    client
        .unsubscribe(UnsubscribeRequestParams::new("memory://graph"))
        .await
        .expect("unsubscribed");
    let relate = CallToolRequestParams::new("create_relations").with_arguments(arguments(json!({
        "relations": [{ "from": "Bob", "to": "Alice Smith", "relationType": "knows" }]
    })));
    client.call_tool(relate).await.expect("called");
    assert_eq!(
        next_updates(&mut updates, 1).await,
        ["memory://entities/Alice%20Smith"]
    );
    assert_eq!(next_updates(&mut other_updates, 2).await.len(), 2);

    let refused = client
        .subscribe(SubscribeRequestParams::new("memory://elsewhere"))
        .await
        .expect_err("not a resource of this server");
    assert!(
        refused.to_string().contains("unknown resource"),
        "{refused}"
    );
}

#[tokio::test]
async fn stateless_listeners_get_updates_on_their_own_stream() {
    let (_dir, server) = open();
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    let (client, _) = connect(&server, lifecycle).await;
    let filter = SubscriptionFilter::builder()
        .resource_subscriptions(["memory://entities/Carol", "memory://unknown"])
        .build();
    let mut subscription = client.listen(filter).await.expect("acknowledged");
    assert_eq!(
        subscription.acknowledged().resource_subscriptions,
        Some(vec!["memory://entities/Carol".to_owned()])
    );
    create(&client, &["Dave"]).await;
    create(&client, &["Carol"]).await;
    let notification = tokio::time::timeout(WAIT, subscription.next())
        .await
        .expect("an update in time")
        .expect("no protocol error")
        .expect("the subscription is open");
    match notification {
        ServerNotification::ResourceUpdatedNotification(update) => {
            assert_eq!(update.params.uri, "memory://entities/Carol");
        }
        other => panic!("expected a resource update, got {other:?}"),
    }
}

#[tokio::test]
async fn resources_read_the_graph_and_single_entities() {
    let (_dir, server) = open();
    let (client, _) = session(&server).await;
    create(&client, &["Eve/1", "Frank"]).await;
    let read = |uri: &str| {
        let params = ReadResourceRequestParams::new(uri);
        let client = &client;
        async move { client.read_resource(params).await }
    };
    let entity = read("memory://entities/Eve%2F1").await.expect("exists");
    let text = match &entity.contents[0] {
        ResourceContents::TextResourceContents {
            text, mime_type, ..
        } => {
            assert_eq!(mime_type.as_deref(), Some("application/json"));
            text.clone()
        }
        other => panic!("expected text, got {other:?}"),
    };
    let value: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(value["entities"][0]["name"], "Eve/1");
    assert_eq!(value["entities"].as_array().map(Vec::len), Some(1));

    let graph = read("memory://graph").await.expect("exists");
    let ResourceContents::TextResourceContents { text, uri, .. } = &graph.contents[0] else {
        panic!("expected text");
    };
    assert_eq!(uri, "memory://graph");
    let value: Value = serde_json::from_str(text).expect("JSON");
    assert_eq!(value["entities"].as_array().map(Vec::len), Some(2));

    for missing in ["memory://entities/Nobody", "memory://other"] {
        match read(missing).await {
            Err(rmcp::ServiceError::McpError(error)) => {
                assert_eq!(error.code, ErrorCode::RESOURCE_NOT_FOUND, "{missing}");
            }
            other => panic!("expected not found for {missing}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn clones_share_one_store_and_one_lock() {
    let (dir, server) = open();
    let twin = server.clone();
    assert_eq!(twin.path(), server.path());
    let (client, _) = session(&twin).await;
    create(&client, &["Gina"]).await;
    let (reader, _) = session(&server).await;
    let found = reader
        .call_tool(
            CallToolRequestParams::new("open_nodes")
                .with_arguments(arguments(json!({ "names": ["Gina"] }))),
        )
        .await
        .expect("called");
    assert_eq!(
        found.structured_content.expect("structured")["entities"][0]["name"],
        "Gina"
    );
    let again = MemoryServer::open(dir.path().join("memory.jsonl"));
    assert!(
        matches!(again, Err(MemoryError::Locked { .. })),
        "{again:?}"
    );
    assert!(format!("{server:?}").contains("memory.jsonl"));
}
