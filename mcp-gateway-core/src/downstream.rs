//! The gateway as one MCP server, independent of the transport that carries it.
//!
//! [`McpServer`] answers downstream clients: the session era (`initialize`, sessions, 2025-03-26 …
//! 2025-11-25) and the stateless 2026-07-28 revision (`server/discover`, per-request `_meta`). It
//! serves the merged lists from catalogue snapshots with cursors that stay valid while the list
//! changes, routes calls to their owners, relays progress, cancellation, logging and the upstreams'
//! own requests, and tells sessions when the merged lists change. Transports (`mcp-gateway-http`'s
//! Streamable HTTP and legacy SSE endpoints, [`serve_stdio`]) only move messages.

mod session;
mod stdio;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::Duration;

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::error::{Error, error_chain};
use crate::events::{GatewayEvent, LogSource};
use crate::gateway::Gateway;
use crate::jsonrpc::{self, Incoming, JsonRpcError, Message, Params};
use crate::registry::{Catalog, Entry};
use crate::upstream::{
    ListKind, PROGRESS_CAPACITY, RequestOptions, SESSION_VERSION, SESSION_VERSIONS,
    STATELESS_VERSION,
};

pub use session::{Session, new_session_id};
use session::{SessionClient, log_rank};
pub use stdio::serve_stdio;

/// JSON-RPC code of the 2026-07-28 revision for a protocol version the server does not speak.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
/// JSON-RPC code of the 2026-07-28 revision for headers that contradict the body.
pub const HEADER_MISMATCH: i64 = -32020;
/// JSON-RPC code of the session era for an unknown resource.
pub const RESOURCE_NOT_FOUND: i64 = -32002;

/// Catalogue snapshots kept so that a cursor handed out before a change still pages through the
/// list it started on.
const KEPT_SNAPSHOTS: usize = 16;

/// Settings of the downstream side.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DownstreamConfig {
    /// Entries per page of a merged list.
    pub page_size: usize,
    /// Most sessions open at once; `initialize` beyond it is refused.
    pub max_sessions: usize,
    /// A session with no traffic and no open stream for this long is closed.
    pub session_idle_timeout: Duration,
    /// How long a client gets to answer a relayed sampling, elicitation or roots request.
    pub client_request_timeout: Duration,
}

impl Default for DownstreamConfig {
    fn default() -> Self {
        Self {
            page_size: 1000,
            max_sessions: 10_000,
            session_idle_timeout: Duration::from_secs(30 * 60),
            client_request_timeout: Duration::from_secs(300),
        }
    }
}

impl DownstreamConfig {
    /// Sets the page size of merged lists.
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// Sets the session cap.
    pub fn with_max_sessions(mut self, max_sessions: usize) -> Self {
        self.max_sessions = max_sessions;
        self
    }

    /// Sets the idle timeout of sessions.
    pub fn with_session_idle_timeout(mut self, timeout: Duration) -> Self {
        self.session_idle_timeout = timeout;
        self
    }
}

/// The `_meta` key naming a stateless request's protocol version.
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// The `_meta` key carrying a stateless request's client capabilities.
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// Whether a message reads as a stateless 2026-07-28 request: it names a version in `_meta` (and
/// is not an `initialize`), or it is `server/discover`.
pub fn is_stateless_message(message: &Value) -> bool {
    message["method"] == "server/discover"
        || (message["method"] != "initialize"
            && params_meta(message).is_some_and(|meta| meta.get(META_PROTOCOL_VERSION).is_some()))
}

/// `params._meta` of a message. Read with `get`, not `pointer`, which allocates a string per path
/// segment: these lookups run on every request.
fn params_meta(message: &Value) -> Option<&Value> {
    message.get("params")?.get("_meta")
}

/// The checks 2026-07-28 makes of every request, whatever the transport: `_meta` must carry the
/// protocol version and client capabilities, and the version must be one the gateway speaks.
pub fn check_stateless_meta(message: &Value) -> Result<(), JsonRpcError> {
    if message.get("id").is_none() {
        return Ok(());
    }
    let meta = params_meta(message);
    let version = meta
        .and_then(|m| m.get(META_PROTOCOL_VERSION))
        .and_then(Value::as_str);
    let capabilities = meta
        .and_then(|m| m.get(META_CLIENT_CAPABILITIES))
        .filter(|c| c.is_object());
    let (Some(version), Some(_)) = (version, capabilities) else {
        return Err(JsonRpcError::new(
            JsonRpcError::INVALID_PARAMS,
            format!(
                "params._meta must carry `{META_PROTOCOL_VERSION}` and `{META_CLIENT_CAPABILITIES}` in 2026-07-28"
            ),
        ));
    };
    if version != STATELESS_VERSION {
        return Err(JsonRpcError {
            code: UNSUPPORTED_PROTOCOL_VERSION,
            message: format!("unsupported protocol version `{version}`"),
            data: Some(json!({ "supported": [STATELESS_VERSION], "requested": version })),
        });
    }
    Ok(())
}

/// Who sent a message: a session-era session, or a stateless 2026-07-28 request.
#[derive(Clone)]
pub enum Caller {
    /// A session opened with `initialize`.
    Session(Arc<Session>),
    /// A stateless request; its `_meta` carries the version and capabilities.
    Stateless,
}

/// The aggregated MCP server. Create one per gateway and share it between transports.
pub struct McpServer {
    gateway: Gateway,
    config: DownstreamConfig,
    sessions: RwLock<HashMap<Arc<str>, Arc<Session>>>,
    snapshots: Mutex<VecDeque<Arc<Catalog>>>,
    /// Resource URI → sessions subscribed to it; the upstream is subscribed while any is.
    subscriptions: Mutex<HashMap<String, HashSet<Arc<str>>>>,
    /// Open stateless `subscriptions/listen` streams.
    listeners: Mutex<Vec<Listener>>,
}

/// One `subscriptions/listen` stream of the stateless era.
struct Listener {
    id: Value,
    /// The accepted filter (`toolsListChanged`, …), as acknowledged.
    accepted: Value,
    stream: mpsc::Sender<Value>,
}

impl Listener {
    fn wants(&self, key: &str) -> bool {
        self.accepted[key] == Value::Bool(true)
    }

    fn send(&self, method: &str, params: Option<Value>) {
        let mut params = params.unwrap_or_else(|| json!({}));
        params["_meta"] = json!({ "io.modelcontextprotocol/subscriptionId": self.id });
        let _ = self
            .stream
            .try_send(jsonrpc::notification(method, Some(params)));
    }
}

impl McpServer {
    /// Creates the server and starts the task that turns gateway events into notifications and
    /// closes idle sessions. Must be called inside a tokio runtime.
    pub fn new(gateway: Gateway, config: DownstreamConfig) -> Arc<Self> {
        let server = Arc::new(Self {
            gateway,
            config,
            sessions: RwLock::new(HashMap::new()),
            snapshots: Mutex::new(VecDeque::new()),
            subscriptions: Mutex::new(HashMap::new()),
            listeners: Mutex::new(Vec::new()),
        });
        tokio::spawn(relay_events(
            Arc::downgrade(&server),
            server.gateway.subscribe(),
        ));
        server
    }

    /// The gateway behind this server.
    pub fn gateway(&self) -> &Gateway {
        &self.gateway
    }

    /// The settings.
    pub fn config(&self) -> &DownstreamConfig {
        &self.config
    }

    /// How many sessions are open.
    pub fn session_count(&self) -> usize {
        self.sessions.read().map(|s| s.len()).unwrap_or_default()
    }

    /// Answers `initialize`: opens a session and returns it with the result to send.
    pub fn open_session(
        &self,
        params: Option<&Value>,
    ) -> Result<(Arc<Session>, Value), JsonRpcError> {
        let params = params.cloned().unwrap_or(Value::Null);
        let requested = params["protocolVersion"].as_str().unwrap_or_default();
        let version = if SESSION_VERSIONS.contains(&requested) {
            requested
        } else {
            SESSION_VERSION
        };
        let session = Arc::new(Session::new(
            version.to_owned(),
            params["capabilities"].clone(),
        ));
        {
            let mut sessions = self
                .sessions
                .write()
                .map_err(|_| internal("the session table is unavailable"))?;
            if sessions.len() >= self.config.max_sessions {
                return Err(internal(format!(
                    "the gateway already has {} sessions open; try again later",
                    self.config.max_sessions
                )));
            }
            sessions.insert(session.id_arc(), session.clone());
        }
        let mut result = json!({
            "protocolVersion": version,
            "capabilities": capabilities(),
            "serverInfo": server_info(),
        });
        if let Some(instructions) = self.instructions() {
            result["instructions"] = Value::String(instructions);
        }
        Ok((session, result))
    }

    /// The open session with this id, marked active.
    pub fn session(&self, id: &str) -> Option<Arc<Session>> {
        let session = self.sessions.read().ok()?.get(id).cloned()?;
        session.touch();
        Some(session)
    }

    /// Ends a session: cancels its calls and drops its subscriptions. `false` if it was unknown.
    pub async fn close_session(&self, id: &str) -> bool {
        let session = self.sessions.write().ok().and_then(|mut s| s.remove(id));
        let Some(session) = session else {
            return false;
        };
        session.cancel_all();
        for uri in session.take_subscriptions() {
            self.unsubscribe(&session, &uri).await;
        }
        true
    }

    /// Opens a stateless `subscriptions/listen` stream: sends the acknowledgement (the accepted
    /// part of the requested filter) and then every matching notification, each carrying the
    /// request id as `subscriptionId`, until `stream` closes.
    pub async fn listen(&self, id: Value, params: Option<&Value>, stream: mpsc::Sender<Value>) {
        let requested = params.map(|p| &p["notifications"]).unwrap_or(&Value::Null);
        let mut accepted = Map::new();
        for key in [
            "toolsListChanged",
            "promptsListChanged",
            "resourcesListChanged",
        ] {
            if requested[key] == Value::Bool(true) {
                accepted.insert(key.into(), true.into());
            }
        }
        let listener = Listener {
            id,
            accepted: Value::Object(accepted.clone()),
            stream,
        };
        listener.send(
            "notifications/subscriptions/acknowledged",
            Some(json!({ "notifications": accepted })),
        );
        if let Ok(mut listeners) = self.listeners.lock() {
            listeners.retain(|l| !l.stream.is_closed());
            listeners.push(listener);
        }
    }

    /// Handles one message from a client and returns the response to send, if it is a request,
    /// written out for the wire: a forwarded call's result is the upstream's own text, never
    /// parsed on the way, and so are its arguments when `message` holds them as text. Messages
    /// the call produces on the way (progress, logs, relayed requests) go to `stream`, the
    /// request's own stream; without one they are dropped.
    pub async fn handle(
        &self,
        caller: &Caller,
        message: impl Into<Message>,
        stream: Option<mpsc::Sender<Value>>,
    ) -> Option<Reply> {
        // Held arguments belong to a single message; a batch holds none.
        let (message, mut arguments) = message.into().into_parts();
        let mut replies = Vec::new();
        for message in jsonrpc::classify(message) {
            let reply = self
                .handle_one(caller, message, arguments.take(), stream.clone())
                .await;
            if let Some(reply) = reply {
                replies.push(reply);
            }
        }
        match replies.len() {
            0 => None,
            1 => replies.pop(),
            _ => {
                let batch: Vec<String> = replies.into_iter().map(Reply::into_json).collect();
                Some(Reply {
                    json: format!("[{}]", batch.join(",")),
                    error_code: None,
                })
            }
        }
    }

    async fn handle_one(
        &self,
        caller: &Caller,
        message: Incoming,
        arguments: Option<Box<RawValue>>,
        stream: Option<mpsc::Sender<Value>>,
    ) -> Option<Reply> {
        match message {
            Incoming::Request { id, method, params } => {
                let params = Params::new(
                    params.unwrap_or_else(|| Value::Object(Map::new())),
                    arguments,
                );
                let outcome = match caller {
                    Caller::Session(session) => {
                        let cancel = session.begin(&id);
                        let outcome = tokio::select! {
                            outcome = self.request(caller, &method, params, stream) => Some(outcome),
                            _ = cancel.cancelled() => None,
                        };
                        session.end(&id);
                        // A cancelled request gets no answer.
                        outcome?
                    }
                    Caller::Stateless => self.request(caller, &method, params, stream).await,
                };
                Some(match outcome {
                    Ok(answer) => Reply {
                        json: match answer {
                            Answer::Built(result) => {
                                jsonrpc::response_text(&id, &jsonrpc::to_text(&result))
                            }
                            Answer::Text(result) => jsonrpc::response_text(&id, &result),
                        },
                        error_code: None,
                    },
                    Err(error) => Reply::error(id, &error),
                })
            }
            Incoming::Notification { method, params } => {
                if let (Caller::Session(session), "notifications/cancelled") =
                    (caller, method.as_str())
                    && let Some(id) = params.as_ref().and_then(|p| p.get("requestId"))
                {
                    session.cancel(id);
                }
                None
            }
            Incoming::Response { id, outcome } => {
                if let Caller::Session(session) = caller {
                    session.complete_client_request(&id, outcome);
                }
                None
            }
            Incoming::Invalid(reason) => Some(Reply::error(
                Value::Null,
                &JsonRpcError::new(JsonRpcError::INVALID_REQUEST, reason),
            )),
        }
    }

    async fn request(
        &self,
        caller: &Caller,
        method: &str,
        params: Params,
        stream: Option<mpsc::Sender<Value>>,
    ) -> Result<Answer, JsonRpcError> {
        let stateless = matches!(caller, Caller::Stateless);
        let mut result = match method {
            "initialize" if stateless => Err(JsonRpcError::new(
                JsonRpcError::METHOD_NOT_FOUND,
                "method not found: initialize is not part of 2026-07-28; call server/discover",
            )),
            "initialize" => Err(JsonRpcError::new(
                JsonRpcError::INVALID_REQUEST,
                "this session is already initialized",
            )),
            "ping" if !stateless => Ok(json!({})),
            "server/discover" => Ok(self.discover()),
            "tools/list" => self.page(&params.value, "tools", Catalog::tools),
            "prompts/list" => self.page(&params.value, "prompts", Catalog::prompts),
            "resources/list" => self.page(&params.value, "resources", Catalog::resources),
            "resources/templates/list" => self.page(
                &params.value,
                "resourceTemplates",
                Catalog::resource_templates,
            ),
            "tools/call" | "prompts/get" | "resources/read" | "completion/complete" => {
                let result = self.forward(caller, method, params, stream).await?;
                return Ok(Answer::Text(if stateless {
                    stateless_raw_result(method, result)
                } else {
                    String::from(Box::<str>::from(result))
                }));
            }
            "resources/subscribe" | "resources/unsubscribe" if !stateless => {
                self.subscription(caller, method, &params.value).await
            }
            "logging/setLevel" if !stateless => self.set_level(caller, &params.value).await,
            other => Err(JsonRpcError::new(
                JsonRpcError::METHOD_NOT_FOUND,
                format!("method not found: {other}"),
            )),
        }?;
        if stateless {
            stateless_result(method, &mut result);
        }
        Ok(Answer::Built(result))
    }

    /// Routes a call to its owner, relaying progress and the upstream's requests to the caller.
    async fn forward(
        &self,
        caller: &Caller,
        method: &str,
        params: Params,
        stream: Option<mpsc::Sender<Value>>,
    ) -> Result<Box<RawValue>, JsonRpcError> {
        let mut options = RequestOptions::default();
        let mut relay = None;
        if let Some(stream) = &stream {
            if params
                .value
                .get("_meta")
                .is_some_and(|meta| meta.get("progressToken").is_some())
            {
                let (progress, mut updates) = mpsc::channel::<Value>(PROGRESS_CAPACITY);
                options = options.with_progress(progress);
                let stream = stream.clone();
                relay = Some(tokio::spawn(async move {
                    while let Some(update) = updates.recv().await {
                        let notification =
                            jsonrpc::notification("notifications/progress", Some(update));
                        if stream.send(notification).await.is_err() {
                            return;
                        }
                    }
                }));
            }
            if let Caller::Session(session) = caller {
                options = options.with_client(Arc::new(SessionClient::new(
                    session.clone(),
                    stream.clone(),
                    self.config.client_request_timeout,
                )));
            }
        }
        let outcome = match method {
            "tools/call" => self.gateway.forward_tool_call(params, &options).await,
            "prompts/get" => self.gateway.forward_prompt_get(params, &options).await,
            "resources/read" => self.gateway.forward_resource_read(params, &options).await,
            _ => self.gateway.forward_completion(params, &options).await,
        };
        // Let the last progress updates reach the stream before the answer does.
        drop(options);
        if let Some(relay) = relay {
            let _ = relay.await;
        }
        outcome.map_err(|err| to_jsonrpc(&err, matches!(caller, Caller::Stateless)))
    }

    /// Pages through a merged list. The cursor names the catalogue generation and offset, and that
    /// generation's snapshot is kept, so paging never skips or repeats an entry across a change.
    fn page(
        &self,
        params: &Value,
        key: &str,
        entries: fn(&Catalog) -> &[Entry],
    ) -> Result<Value, JsonRpcError> {
        let (catalog, offset) = match params.get("cursor").and_then(Value::as_str) {
            None => (self.current_snapshot(), 0),
            Some(cursor) => self.resume(cursor)?,
        };
        let all = entries(&catalog);
        let end = all.len().min(offset.saturating_add(self.config.page_size));
        let page: Vec<Value> = all
            .get(offset..end)
            .unwrap_or_default()
            .iter()
            .map(|entry| Value::clone(&entry.definition))
            .collect();
        let mut result = Map::new();
        result.insert(key.into(), Value::Array(page));
        if end < all.len() {
            result.insert(
                "nextCursor".into(),
                format!("{}.{end}", catalog.generation()).into(),
            );
        }
        Ok(Value::Object(result))
    }

    fn current_snapshot(&self) -> Arc<Catalog> {
        let catalog = self.gateway.catalog();
        if let Ok(mut kept) = self.snapshots.lock()
            && !kept.iter().any(|c| c.generation() == catalog.generation())
        {
            if kept.len() == KEPT_SNAPSHOTS {
                kept.pop_front();
            }
            kept.push_back(catalog.clone());
        }
        catalog
    }

    fn resume(&self, cursor: &str) -> Result<(Arc<Catalog>, usize), JsonRpcError> {
        let invalid = || {
            JsonRpcError::new(
                JsonRpcError::INVALID_PARAMS,
                format!("invalid cursor `{cursor}`"),
            )
        };
        let (generation, offset) = cursor.split_once('.').ok_or_else(invalid)?;
        let generation: u64 = generation.parse().map_err(|_| invalid())?;
        let offset: usize = offset.parse().map_err(|_| invalid())?;
        let kept = self.snapshots.lock().map_err(|_| invalid())?;
        let catalog = kept
            .iter()
            .find(|c| c.generation() == generation)
            .cloned()
            .ok_or_else(|| JsonRpcError::new(
                JsonRpcError::INVALID_PARAMS,
                format!("cursor `{cursor}` has expired: the list changed many times since; list again from the start"),
            ))?;
        Ok((catalog, offset))
    }

    fn discover(&self) -> Value {
        let mut versions = vec![STATELESS_VERSION];
        versions.extend(SESSION_VERSIONS.iter().rev());
        let mut result = json!({
            "supportedVersions": versions,
            "capabilities": capabilities(),
        });
        if let Some(instructions) = self.instructions() {
            result["instructions"] = Value::String(instructions);
        }
        result
    }

    /// The upstreams' instructions, each under its server's name.
    fn instructions(&self) -> Option<String> {
        let parts: Vec<String> = self
            .gateway
            .upstreams()
            .iter()
            .filter_map(|upstream| {
                let text = upstream.peer().instructions.as_deref()?.trim();
                (!text.is_empty())
                    .then(|| format!("Tools of server `{}`:\n{text}", upstream.server()))
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join("\n\n"))
    }

    async fn subscription(
        &self,
        caller: &Caller,
        method: &str,
        params: &Value,
    ) -> Result<Value, JsonRpcError> {
        let Caller::Session(session) = caller else {
            return Err(JsonRpcError::new(JsonRpcError::METHOD_NOT_FOUND, method));
        };
        let uri = params["uri"].as_str().unwrap_or_default();
        if method == "resources/subscribe" {
            let first = {
                let mut subscriptions = self
                    .subscriptions
                    .lock()
                    .map_err(|_| internal("subscriptions unavailable"))?;
                let sessions = subscriptions.entry(uri.to_owned()).or_default();
                sessions.insert(session.id_arc());
                sessions.len() == 1
            };
            session.add_subscription(uri);
            if first {
                let upstream = self
                    .gateway
                    .resource_upstream(uri)
                    .map_err(|err| to_jsonrpc(&err, false))?;
                upstream
                    .request(
                        "resources/subscribe",
                        Some(json!({ "uri": uri })),
                        &RequestOptions::default(),
                    )
                    .await
                    .map_err(|err| to_jsonrpc(&err, false))?;
            }
        } else {
            session.remove_subscription(uri);
            self.unsubscribe(session, uri).await;
        }
        Ok(json!({}))
    }

    /// Drops a session's interest in a URI; the last one out unsubscribes upstream.
    async fn unsubscribe(&self, session: &Session, uri: &str) {
        let last = self.subscriptions.lock().is_ok_and(|mut subscriptions| {
            let Some(sessions) = subscriptions.get_mut(uri) else {
                return false;
            };
            sessions.remove(session.id());
            let empty = sessions.is_empty();
            if empty {
                subscriptions.remove(uri);
            }
            empty
        });
        if last && let Ok(upstream) = self.gateway.resource_upstream(uri) {
            let _ = upstream
                .request(
                    "resources/unsubscribe",
                    Some(json!({ "uri": uri })),
                    &RequestOptions::default(),
                )
                .await;
        }
    }

    /// Records the session's level and passes it on to every upstream that logs.
    async fn set_level(&self, caller: &Caller, params: &Value) -> Result<Value, JsonRpcError> {
        let level = params["level"].as_str().unwrap_or_default();
        if log_rank(level).is_none() {
            return Err(JsonRpcError::new(
                JsonRpcError::INVALID_PARAMS,
                format!("unknown log level `{level}`"),
            ));
        }
        if let Caller::Session(session) = caller {
            session.set_log_level(level);
        }
        let upstreams = self.gateway.upstreams();
        let options = RequestOptions::default();
        let updates = upstreams
            .iter()
            .filter(|u| u.peer().has_capability("logging"))
            .map(|u| {
                u.request(
                    "logging/setLevel",
                    Some(json!({ "level": level })),
                    &options,
                )
            });
        futures::future::join_all(updates).await;
        Ok(json!({}))
    }

    fn sessions(&self) -> Vec<Arc<Session>> {
        self.sessions
            .read()
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Turns one gateway event into notifications for the sessions that want it.
    fn relay(&self, event: &GatewayEvent) {
        match event {
            GatewayEvent::ListChanged { kind, .. } => {
                let method = match kind {
                    ListKind::Tools => "notifications/tools/list_changed",
                    ListKind::Resources => "notifications/resources/list_changed",
                    ListKind::Prompts => "notifications/prompts/list_changed",
                };
                for session in self.sessions() {
                    session.notify(jsonrpc::notification(method, None));
                }
                let key = match kind {
                    ListKind::Tools => "toolsListChanged",
                    ListKind::Resources => "resourcesListChanged",
                    ListKind::Prompts => "promptsListChanged",
                };
                if let Ok(mut listeners) = self.listeners.lock() {
                    listeners.retain(|l| !l.stream.is_closed());
                    for listener in listeners.iter().filter(|l| l.wants(key)) {
                        listener.send(method, None);
                    }
                }
            }
            GatewayEvent::ResourceUpdated { uri, .. } => {
                let subscribers: Vec<Arc<str>> = self
                    .subscriptions
                    .lock()
                    .ok()
                    .and_then(|s| s.get(uri.as_str()).map(|s| s.iter().cloned().collect()))
                    .unwrap_or_default();
                for id in subscribers {
                    if let Some(session) =
                        self.sessions.read().ok().and_then(|s| s.get(&id).cloned())
                    {
                        session.notify(jsonrpc::notification(
                            "notifications/resources/updated",
                            Some(json!({ "uri": uri })),
                        ));
                    }
                }
            }
            GatewayEvent::UpstreamLog {
                server,
                source: LogSource::Notification,
                level,
                logger,
                message,
                session: None,
            } => {
                let logger = match logger {
                    Some(logger) => format!("{server}/{logger}"),
                    None => server.to_string(),
                };
                let params = json!({ "level": level, "logger": logger, "data": message });
                for session in self.sessions() {
                    if session.wants_log(level) {
                        session.notify(jsonrpc::notification(
                            "notifications/message",
                            Some(params.clone()),
                        ));
                    }
                }
            }
            _ => {}
        }
    }

    /// Closes sessions idle for longer than the configured timeout.
    async fn close_idle_sessions(&self) {
        let idle: Vec<Arc<str>> = self
            .sessions()
            .iter()
            .filter(|s| s.idle_for() > self.config.session_idle_timeout && !s.has_streams())
            .map(|s| s.id_arc())
            .collect();
        for id in idle {
            tracing::debug!(session = %id, "closing idle session");
            self.close_session(&id).await;
        }
    }
}

/// Relays gateway events to sessions and reaps idle sessions, until the server is dropped.
async fn relay_events(server: Weak<McpServer>, mut events: crate::events::EventSubscription) {
    let mut reaper = tokio::time::interval(Duration::from_secs(30));
    loop {
        tokio::select! {
            event = events.recv() => {
                let (Some(event), Some(server)) = (event, server.upgrade()) else { return };
                server.relay(&event.event);
            }
            _ = reaper.tick() => {
                let Some(server) = server.upgrade() else { return };
                server.close_idle_sessions().await;
            }
        }
    }
}

/// What the gateway offers downstream: everything, always, because upstreams come and go.
fn capabilities() -> Value {
    json!({
        "tools": { "listChanged": true },
        "resources": { "subscribe": true, "listChanged": true },
        "prompts": { "listChanged": true },
        "logging": {},
        "completions": {},
    })
}

/// [`server_info`] written out once, for the results that are forwarded as text.
fn encoded_server_info() -> &'static RawValue {
    static ENCODED: OnceLock<Box<RawValue>> = OnceLock::new();
    ENCODED.get_or_init(|| jsonrpc::encode(&server_info()))
}

fn server_info() -> Value {
    json!({ "name": "mcp-gateway", "title": "MCP Gateway", "version": env!("CARGO_PKG_VERSION") })
}

/// A reply to a client's message, written out as JSON text.
#[derive(Debug)]
pub struct Reply {
    json: String,
    error_code: Option<i64>,
}

impl Reply {
    fn error(id: Value, error: &JsonRpcError) -> Self {
        Self {
            json: jsonrpc::to_text(&jsonrpc::error_response(id, error)),
            error_code: Some(error.code),
        }
    }

    /// The reply as JSON text.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The reply as JSON text, owned.
    pub fn into_json(self) -> String {
        self.json
    }

    /// The reply read back as a value, for what carries values (a call's stream) or looks inside.
    pub fn to_value(&self) -> Value {
        // The gateway wrote it as JSON, so it reads back; `null` is never reached.
        serde_json::from_str(&self.json).unwrap_or(Value::Null)
    }

    /// The JSON-RPC error code, when the reply is one error response (not for a batch).
    pub fn error_code(&self) -> Option<i64> {
        self.error_code
    }
}

/// The result of a request: built by the gateway, or JSON text (an upstream's, forwarded as it
/// came, perhaps with members appended).
enum Answer {
    Built(Value),
    Text(String),
}

/// The members 2026-07-28 requires of a `method` result, with the values the gateway gives them
/// where the upstream (perhaps session era) did not; `_meta.serverInfo` comes on top.
fn stateless_defaults(method: &str) -> Vec<(&'static str, Value)> {
    let mut defaults = vec![("resultType", Value::from("complete"))];
    if method.ends_with("/list") || method == "resources/read" || method == "server/discover" {
        defaults.push(("ttlMs", 0.into()));
        defaults.push(("cacheScope", "private".into()));
    }
    defaults
}

/// Adds what 2026-07-28 requires of every result, where the upstream (perhaps session era) did not.
fn stateless_result(method: &str, result: &mut Value) {
    let Value::Object(result) = result else {
        return;
    };
    for (key, value) in stateless_defaults(method) {
        result.entry(key).or_insert(value);
    }
    let meta = result
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        meta.insert("io.modelcontextprotocol/serverInfo".into(), server_info());
    }
}

/// [`stateless_result`] for a forwarded result. Without a `_meta` of the upstream's (the common
/// case) the missing members are appended to its text after one scan for which are there.
fn stateless_raw_result(method: &str, result: Box<RawValue>) -> String {
    /// Which of the members the gateway may add are there already.
    #[derive(serde::Deserialize)]
    struct Present {
        #[serde(rename = "resultType")]
        result_type: Option<serde::de::IgnoredAny>,
        #[serde(rename = "ttlMs")]
        ttl_ms: Option<serde::de::IgnoredAny>,
        #[serde(rename = "cacheScope")]
        cache_scope: Option<serde::de::IgnoredAny>,
        #[serde(rename = "_meta")]
        meta: Option<serde::de::IgnoredAny>,
    }
    impl Present {
        fn has(&self, key: &str) -> bool {
            match key {
                "resultType" => self.result_type.is_some(),
                "ttlMs" => self.ttl_ms.is_some(),
                "cacheScope" => self.cache_scope.is_some(),
                _ => false,
            }
        }
    }
    let present = jsonrpc::is_object(&result)
        .then(|| serde_json::from_str::<Present>(result.get()).ok())
        .flatten();
    let Some(present) = present else {
        // Not an object: nothing to add to.
        return String::from(Box::<str>::from(result));
    };
    if present.meta.is_some() {
        return stateless_split_result(method, &result);
    }
    let mut text = String::from(Box::<str>::from(result));
    text.truncate(text.trim_end().len());
    // The closing brace goes; the object is empty if only its opening brace is left.
    text.pop();
    let mut empty = text.trim_end() == "{";
    let mut append = |key: &str, value: &str| {
        if !empty {
            text.push(',');
        }
        empty = false;
        text.push('"');
        text.push_str(key);
        text.push_str("\":");
        text.push_str(value);
    };
    for (key, value) in stateless_defaults(method) {
        if !present.has(key) {
            append(key, &jsonrpc::to_text(&value));
        }
    }
    let meta = format!(
        "{{\"io.modelcontextprotocol/serverInfo\":{}}}",
        encoded_server_info().get()
    );
    append("_meta", &meta);
    text.push('}');
    text
}

/// [`stateless_raw_result`] for a result with a `_meta` of its own: its top level and `_meta`
/// are split into members, each left as the upstream wrote it, and written out again with the
/// gateway's members added. A `_meta` that is not an object is left as it is, as
/// [`stateless_result`] does.
fn stateless_split_result(method: &str, result: &RawValue) -> String {
    let Ok(mut members) = serde_json::from_str::<BTreeMap<String, &RawValue>>(result.get()) else {
        return result.get().to_owned();
    };
    let defaults: Vec<(&str, Box<RawValue>)> = stateless_defaults(method)
        .into_iter()
        .filter(|(key, _)| !members.contains_key(*key))
        .map(|(key, value)| (key, jsonrpc::encode(&value)))
        .collect();
    let meta = members
        .get("_meta")
        .filter(|meta| jsonrpc::is_object(meta))
        .and_then(|meta| serde_json::from_str::<BTreeMap<String, &RawValue>>(meta.get()).ok())
        .map(|mut fields| {
            fields.insert(
                "io.modelcontextprotocol/serverInfo".into(),
                encoded_server_info(),
            );
            jsonrpc::encode(&fields)
        });
    for (key, value) in &defaults {
        members.insert((*key).to_owned(), value);
    }
    if let Some(meta) = &meta {
        members.insert("_meta".into(), meta);
    }
    jsonrpc::to_text(&members)
}

fn internal(message: impl Into<String>) -> JsonRpcError {
    JsonRpcError::new(JsonRpcError::INTERNAL_ERROR, message)
}

/// The JSON-RPC error a client sees for an engine error: an upstream's own error verbatim, the
/// spec's codes for unknown names, and internal errors that name the server and the cause.
pub fn to_jsonrpc(error: &Error, stateless: bool) -> JsonRpcError {
    match error {
        Error::Upstream { error, .. } => error.clone(),
        Error::UnknownTool(_) | Error::UnknownPrompt(_) => {
            JsonRpcError::new(JsonRpcError::INVALID_PARAMS, error.to_string())
        }
        Error::UnknownResource(uri) => {
            let code = if stateless {
                JsonRpcError::INVALID_PARAMS
            } else {
                RESOURCE_NOT_FOUND
            };
            JsonRpcError {
                code,
                message: format!("resource not found: {uri}"),
                data: Some(json!({ "uri": uri })),
            }
        }
        other => JsonRpcError {
            code: JsonRpcError::INTERNAL_ERROR,
            message: error_chain(other),
            data: other.server().map(|server| json!({ "server": server })),
        },
    }
}

#[cfg(test)]
mod tests;
