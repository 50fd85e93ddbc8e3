//! Both eras on one HTTP server, with change notifications crossing between them, and clean
//! exits on SIGTERM with sessions and notification streams still open (HTTP) or stdin still
//! open (stdio).

use std::process::Stdio;

use rmcp::model::{
    ClientConfig, ResourceUpdatedNotificationParam, ServerNotification, SubscribeRequestParams,
    SubscriptionFilter,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, NotificationContext};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientHandler, RoleClient};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::support::{
    DEADLINE, HttpServer, MEMORY_BIN, call_ok, hello, http_client, signal, stateless,
};

/// A session-era client that reports `notifications/resources/updated` URIs.
#[derive(Clone)]
struct Updates(mpsc::UnboundedSender<String>);

impl ClientHandler for Updates {
    fn get_info(&self) -> ClientConfig {
        hello()
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.0.send(params.uri);
    }
}

#[tokio::test]
#[expect(
    deprecated,
    reason = "resources/subscribe is the session era's subscription"
)]
async fn notifications_cross_eras_and_sigterm_ends_open_streams() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let server = HttpServer::start(&dir.path().join("memory.jsonl")).await;

    let (tx, mut updates) = mpsc::unbounded_channel();
    let session = Updates(tx)
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_uri(server.url.as_str()),
            ClientLifecycleMode::Initialize,
        )
        .await
        .expect("a session-era client connects");
    session
        .subscribe(SubscribeRequestParams::new("memory://entities/Ann"))
        .await
        .expect("subscribed");
    let modern = http_client(&server.url, stateless()).await;
    let filter = SubscriptionFilter::builder()
        .resource_subscription("memory://graph")
        .build();
    let mut listening = modern.listen(filter).await.expect("acknowledged");

    // The stateless client writes; the session-era subscriber hears of it.
    call_ok(
        &modern,
        "create_entities",
        json!({ "entities": [{ "name": "Ann", "entityType": "t", "observations": [] }] }),
    )
    .await;
    let uri = tokio::time::timeout(DEADLINE, updates.recv())
        .await
        .expect("an update in time")
        .expect("the channel is open");
    assert_eq!(uri, "memory://entities/Ann");
    let first = tokio::time::timeout(DEADLINE, listening.next())
        .await
        .expect("an update in time")
        .expect("no protocol error");
    assert!(
        matches!(first, Some(ServerNotification::ResourceUpdatedNotification(ref n)) if n.params.uri == "memory://graph"),
        "{first:?}"
    );
    // The session-era client writes; the stateless listener hears of it.
    call_ok(
        &session,
        "add_observations",
        json!({ "observations": [{ "entityName": "Ann", "contents": ["here"] }] }),
    )
    .await;
    let second = tokio::time::timeout(DEADLINE, listening.next())
        .await
        .expect("an update in time")
        .expect("no protocol error");
    assert!(
        matches!(
            second,
            Some(ServerNotification::ResourceUpdatedNotification(_))
        ),
        "{second:?}"
    );

    // The session's GET stream and the listen stream are still open: SIGTERM must end them.
    let status = server.terminate().await;
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn sigterm_stops_the_stdio_server_while_stdin_is_open() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut child = Command::new(MEMORY_BIN)
        .arg("--stdio")
        .arg("--file")
        .arg(dir.path().join("memory.jsonl"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("starts");
    let mut stdin = child.stdin.take().expect("piped");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": { "protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": { "name": "t", "version": "0" } }
    });
    stdin
        .write_all(format!("{initialize}\n").as_bytes())
        .await
        .expect("written");
    let answer = tokio::time::timeout(DEADLINE, stdout.next_line())
        .await
        .expect("an answer in time")
        .expect("readable")
        .expect("a line");
    let answer: serde_json::Value = serde_json::from_str(&answer).expect("JSON on stdout");
    assert_eq!(answer["result"]["serverInfo"]["name"], "mcp-memory-server");

    signal(child.id().expect("running"), "TERM").await;
    let status = tokio::time::timeout(DEADLINE, child.wait())
        .await
        .expect("exits in time")
        .expect("wait works");
    assert!(status.success(), "{status}");
    drop(stdin);
}
