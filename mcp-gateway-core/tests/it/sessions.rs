//! Downstream sessions under pressure, against an in-process rmcp upstream that logs, holds
//! calls, and refuses or never answers some subscription requests: the session cap evicts idle
//! sessions instead of locking clients out, the stateless listen cap refuses, each session gets
//! the logs of its own level, a refused subscription is not recorded, and reaping a session whose
//! upstream never answers its unsubscribe does not hold up other sessions' notifications.
// rmcp marks logging deprecated (SEP-2577), but the gateway relays it and the fixture exercises it.
#![allow(deprecated)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_gateway_core::{
    Caller, DownstreamConfig, Gateway, InProcessServer, McpServer, ProtocolPreference, ServerSpec,
};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListResourcesResult,
    ListToolsResult, LoggingLevel, LoggingMessageNotificationParam, PaginatedRequestParams,
    Resource, ResourceUpdatedNotificationParam, ServerCapabilities, ServerConfig,
    SetLevelRequestParams, SubscribeRequestParams, Tool, UnsubscribeRequestParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::support::{DEADLINE, eventually};

/// The URI whose subscription the upstream refuses.
const REFUSED: &str = "fixture://refused";
/// The URI whose unsubscription the upstream never answers.
const STUCK: &str = "fixture://stuck";

#[derive(Default)]
struct UpstreamState {
    level: Mutex<Option<LoggingLevel>>,
    held: AtomicUsize,
    unsubscribes: AtomicUsize,
}

/// An upstream with resources to subscribe to, a level-filtered log and a call that never ends.
#[derive(Clone, Default)]
struct Upstream {
    state: Arc<UpstreamState>,
}

impl ServerHandler for Upstream {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_logging()
                .enable_resources()
                .enable_resources_subscribe()
                .build(),
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let schema = match json!({ "type": "object" }) {
            Value::Object(object) => object,
            _ => Map::new(),
        };
        Ok(ListToolsResult::with_all_items(
            ["warn", "hold", "touch"]
                .into_iter()
                .map(|name| Tool::new(name, name, schema.clone()))
                .collect(),
        ))
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(
            ["fixture://a", "fixture://b", REFUSED, STUCK]
                .into_iter()
                .map(|uri| Resource::new(uri, uri))
                .collect(),
        ))
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if request.uri == REFUSED {
            return Err(ErrorData::invalid_params("subscription refused", None));
        }
        Ok(())
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.state.unsubscribes.fetch_add(1, Ordering::SeqCst);
        if request.uri == STUCK {
            // Never answers: only the gateway giving up ends this.
            context.ct.cancelled().await;
        }
        Ok(())
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if let Ok(mut level) = self.state.level.lock() {
            *level = Some(request.level);
        }
        Ok(())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let failed =
            |err: rmcp::service::ServiceError| ErrorData::internal_error(err.to_string(), None);
        match request.name.as_ref() {
            "warn" => {
                // Like a real server, it sends only what the level it was given lets through.
                let level = self.state.level.lock().ok().and_then(|l| *l);
                let passes = matches!(
                    level,
                    None | Some(
                        LoggingLevel::Debug
                            | LoggingLevel::Info
                            | LoggingLevel::Notice
                            | LoggingLevel::Warning
                    )
                );
                if passes {
                    let sent = context
                        .peer
                        .notify_logging_message(LoggingMessageNotificationParam::new(
                            LoggingLevel::Warning,
                            json!("a warning"),
                        ))
                        .await;
                    sent.map_err(failed)?;
                }
            }
            "hold" => {
                self.state.held.fetch_add(1, Ordering::SeqCst);
                context.ct.cancelled().await;
            }
            "touch" => {
                let uris = request
                    .arguments
                    .and_then(|a| a.get("uris").cloned())
                    .unwrap_or_default();
                for uri in uris
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    context
                        .peer
                        .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
                        .await
                        .map_err(failed)?;
                }
            }
            other => {
                return Err(ErrorData::invalid_params(
                    format!("no tool `{other}`"),
                    None,
                ));
            }
        }
        Ok(CallToolResult::success(vec![ContentBlock::text("done")]).into())
    }
}

async fn gateway_with(upstream: &Upstream) -> Gateway {
    let upstream = upstream.clone();
    let spec = ServerSpec::in_process("up", InProcessServer::new("up", move || upstream.clone()))
        .expect("valid spec")
        .with_protocol(ProtocolPreference::Session);
    let gateway = Gateway::builder().server(spec).build();
    gateway.start().await;
    gateway
}

async fn request(server: &McpServer, caller: &Caller, method: &str, params: Value) -> Value {
    let message = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
    server
        .handle(caller, message, None)
        .await
        .expect("a request gets an answer")
        .to_value()
}

/// The next message on a stream whose `method` is `method`, skipping others; fails at the deadline.
async fn next_with_method(stream: &mut mpsc::Receiver<Value>, method: &str) -> Value {
    tokio::time::timeout(DEADLINE, async {
        loop {
            let message = stream.recv().await.expect("the stream stays open");
            if message["method"] == method {
                return message;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no `{method}` within {DEADLINE:?}"))
}

#[tokio::test]
async fn a_full_session_table_evicts_the_least_recently_used_idle_session() {
    let upstream = Upstream::default();
    let gateway = gateway_with(&upstream).await;
    let server = McpServer::new(
        gateway.clone(),
        DownstreamConfig::default().with_max_sessions(3),
    );

    // The two oldest sessions are busy: one has its stream open, one has a call in flight.
    let (streaming, _) = server.open_session(None).expect("a session");
    let (stream, _stream_open) = mpsc::channel(8);
    streaming.attach_stream(stream);
    let (calling, _) = server.open_session(None).expect("a session");
    let call = {
        let server = server.clone();
        let caller = Caller::Session(calling.clone());
        tokio::spawn(async move {
            request(
                &server,
                &caller,
                "tools/call",
                json!({ "name": "up__hold" }),
            )
            .await
        })
    };
    eventually("the call to reach the upstream", || {
        upstream.state.held.load(Ordering::SeqCst) == 1
    })
    .await;
    let (idle, _) = server.open_session(None).expect("a session");
    let subscribed = request(
        &server,
        &Caller::Session(idle.clone()),
        "resources/subscribe",
        json!({ "uri": "fixture://a" }),
    )
    .await;
    assert_eq!(subscribed["result"], json!({}), "{subscribed}");

    // A new client still gets a session: the idle one makes room, though it is the newest.
    let (newcomer, _) = server
        .open_session(None)
        .expect("a new client gets a session at the cap");
    assert_eq!(server.session_count(), 3);
    assert!(
        server.session(idle.id()).is_none(),
        "the idle session is evicted"
    );
    assert!(
        server.session(streaming.id()).is_some(),
        "a streaming session stays"
    );
    assert!(
        server.session(calling.id()).is_some(),
        "a calling session stays"
    );
    // It is closed like a reaped one: its subscription is released upstream.
    eventually("the evicted session's unsubscribe", || {
        upstream.state.unsubscribes.load(Ordering::SeqCst) == 1
    })
    .await;

    // With every session busy there is no room, and the refusal says why.
    let (stream, _newcomer_stream) = mpsc::channel(8);
    newcomer.attach_stream(stream);
    let Err(refused) = server.open_session(None) else {
        panic!("every session is busy, yet a session opened");
    };
    assert!(refused.message.contains("busy"), "{}", refused.message);

    assert!(server.close_session(calling.id()).await);
    let _ = tokio::time::timeout(DEADLINE, call).await;
    gateway.shutdown().await;
}

#[tokio::test]
async fn stateless_listen_streams_are_capped() {
    let upstream = Upstream::default();
    let gateway = gateway_with(&upstream).await;
    let server = McpServer::new(
        gateway.clone(),
        DownstreamConfig::default().with_max_listeners(2),
    );
    let params = json!({ "notifications": { "toolsListChanged": true } });
    let mut open = Vec::new();
    for id in 1..=2 {
        let (stream, mut receiver) = mpsc::channel(8);
        server.listen(json!(id), Some(&params), stream).await;
        let ack = next_with_method(&mut receiver, "notifications/subscriptions/acknowledged").await;
        assert_eq!(
            ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
            id
        );
        open.push(receiver);
    }

    let (stream, mut receiver) = mpsc::channel(8);
    server.listen(json!(3), Some(&params), stream).await;
    let refused = tokio::time::timeout(DEADLINE, receiver.recv())
        .await
        .expect("an answer before the deadline")
        .expect("the refusal");
    assert_eq!(refused["id"], 3, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("listen")),
        "{refused}"
    );
    assert!(receiver.recv().await.is_none(), "the refused stream ends");

    // A closed stream frees its place.
    drop(open.pop());
    let (stream, mut receiver) = mpsc::channel(8);
    server.listen(json!(4), Some(&params), stream).await;
    next_with_method(&mut receiver, "notifications/subscriptions/acknowledged").await;
    gateway.shutdown().await;
}

#[tokio::test]
async fn each_session_gets_the_logs_of_its_own_level() {
    let upstream = Upstream::default();
    let gateway = gateway_with(&upstream).await;
    let server = McpServer::new(gateway.clone(), DownstreamConfig::default());
    let (verbose, _) = server.open_session(None).expect("a session");
    let (quiet, _) = server.open_session(None).expect("a session");
    let (stream, mut verbose_stream) = mpsc::channel(64);
    verbose.attach_stream(stream);
    let (stream, mut quiet_stream) = mpsc::channel(64);
    quiet.attach_stream(stream);

    for (session, level) in [(&verbose, "debug"), (&quiet, "error")] {
        let set = request(
            &server,
            &Caller::Session(session.clone()),
            "logging/setLevel",
            json!({ "level": level }),
        )
        .await;
        assert_eq!(set["result"], json!({}), "{set}");
    }
    // A log outside any session's call goes to every session whose level lets it through.
    gateway
        .call_tool("up__warn", json!({}))
        .await
        .expect("warn answers");
    let log = next_with_method(&mut verbose_stream, "notifications/message").await;
    assert_eq!(log["params"]["level"], "warning");
    // The relay delivered to both sessions at once, so the quiet one's is there or never comes.
    while let Ok(message) = quiet_stream.try_recv() {
        assert_ne!(message["method"], "notifications/message", "{message}");
    }
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_refused_subscription_is_not_recorded() {
    let upstream = Upstream::default();
    let gateway = gateway_with(&upstream).await;
    let server = McpServer::new(gateway.clone(), DownstreamConfig::default());
    let (session, _) = server.open_session(None).expect("a session");
    let (stream, mut updates) = mpsc::channel(64);
    session.attach_stream(stream);
    let caller = Caller::Session(session.clone());

    let refused = request(
        &server,
        &caller,
        "resources/subscribe",
        json!({ "uri": REFUSED }),
    )
    .await;
    assert_eq!(
        refused["error"]["message"], "subscription refused",
        "{refused}"
    );
    let accepted = request(
        &server,
        &caller,
        "resources/subscribe",
        json!({ "uri": "fixture://a" }),
    )
    .await;
    assert_eq!(accepted["result"], json!({}), "{accepted}");

    // Updates are relayed in order: the refused URI's would come first if it were recorded.
    gateway
        .call_tool("up__touch", json!({ "uris": [REFUSED, "fixture://a"] }))
        .await
        .expect("touch answers");
    let update = next_with_method(&mut updates, "notifications/resources/updated").await;
    assert_eq!(update["params"]["uri"], "fixture://a", "{update}");

    // Closing the session releases only what the upstream accepted.
    assert!(server.close_session(session.id()).await);
    assert_eq!(upstream.state.unsubscribes.load(Ordering::SeqCst), 1);
    gateway.shutdown().await;
}

#[tokio::test]
async fn reaping_a_session_whose_upstream_never_unsubscribes_does_not_stall_notifications() {
    let upstream = Upstream::default();
    let gateway = gateway_with(&upstream).await;
    let config = DownstreamConfig::default().with_session_idle_timeout(Duration::from_millis(200));
    let server = McpServer::new(gateway.clone(), config);
    let (stale, _) = server.open_session(None).expect("a session");
    let (live, _) = server.open_session(None).expect("a session");
    let (stream, mut updates) = mpsc::channel(64);
    live.attach_stream(stream);
    for (session, uri) in [(&stale, STUCK), (&live, "fixture://b")] {
        let subscribed = request(
            &server,
            &Caller::Session(session.clone()),
            "resources/subscribe",
            json!({ "uri": uri }),
        )
        .await;
        assert_eq!(subscribed["result"], json!({}), "{subscribed}");
    }

    // The stale session is reaped and its unsubscribe reaches an upstream that never answers.
    eventually("the stale session to be reaped and unsubscribed", || {
        upstream.state.unsubscribes.load(Ordering::SeqCst) == 1
    })
    .await;
    assert!(server.session(stale.id()).is_none());
    gateway
        .call_tool("up__touch", json!({ "uris": ["fixture://b"] }))
        .await
        .expect("touch answers");
    let update = tokio::time::timeout(
        Duration::from_secs(10),
        next_with_method(&mut updates, "notifications/resources/updated"),
    )
    .await
    .expect("the live session's update arrives while the unsubscribe hangs");
    assert_eq!(update["params"]["uri"], "fixture://b");
    gateway.shutdown().await;
}
