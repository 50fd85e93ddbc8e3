//! One live connection to an upstream MCP server, shared by every caller.
//!
//! Callers' requests are multiplexed onto the connection by giving each a fresh upstream id;
//! the dispatcher task matches answers back to exactly their caller. Progress tokens are rewritten
//! the same way, so two callers that both chose token `1` still get only their own progress.
//! A caller that gives up (drop or timeout) sends `notifications/cancelled` to this upstream only.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::error::Error;
use crate::jsonrpc::{self, Incoming, JsonRpcError, Message, Params};
use crate::spec::{ProtocolPreference, ServerId, ServerSpec};
use crate::transport::{self, Outbound, TransportEvent};

/// The stateless revision, negotiated with `server/discover`.
pub const STATELESS_VERSION: &str = "2026-07-28";
/// The session-era version the gateway offers in `initialize`.
pub const SESSION_VERSION: &str = "2025-11-25";
/// Session-era versions the gateway accepts as an `initialize` counter-offer.
pub const SESSION_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// How long `Auto` waits for a `server/discover` answer before assuming the session era.
const DISCOVER_PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound of the channel that carries an upstream's notifications to the gateway.
const SIGNAL_CAPACITY: usize = 1024;
/// Bound of one caller's progress channel; progress beyond it is dropped, never blocking.
pub const PROGRESS_CAPACITY: usize = 64;

/// The protocol era an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Era {
    /// `initialize` + sessions (2024-11-05 … 2025-11-25).
    Session,
    /// Stateless 2026-07-28: `server/discover`, per-request `_meta`.
    Stateless,
}

/// What the handshake learned about an upstream.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct PeerInfo {
    /// The era in use.
    pub era: Era,
    /// The negotiated protocol version.
    pub protocol_version: String,
    /// The server's `serverInfo` (name, version, …) as it sent it.
    pub server_info: Value,
    /// The server's capabilities as it sent them.
    pub capabilities: Value,
    /// The server's instructions, if any.
    pub instructions: Option<String>,
}

impl PeerInfo {
    /// Whether the server advertises a capability (`tools`, `resources`, `prompts`, …).
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities
            .get(name)
            .is_some_and(|value| !value.is_null())
    }

    fn lists_change(&self, name: &str) -> bool {
        self.capabilities
            .pointer(&format!("/{name}/listChanged"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

/// Which merged list an upstream's `list_changed` is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ListKind {
    /// Tools.
    Tools,
    /// Resources and resource templates.
    Resources,
    /// Prompts.
    Prompts,
}

/// Something an upstream told the gateway outside of an answer to a request.
#[derive(Debug)]
pub(crate) enum Signal {
    ListChanged(ListKind),
    ResourceUpdated(Value),
    /// A log message, and the session it was delivered to (when one session's call was in flight).
    Log(Value, Option<String>),
    Stderr(String),
    ProtocolViolation(String),
    Closed(String),
}

/// Answers the requests an upstream sends to its client (`sampling/createMessage`,
/// `elicitation/create`, `roots/list`) on behalf of the downstream session whose call is in
/// flight on that upstream.
///
/// ```
/// use async_trait::async_trait;
/// use mcp_gateway_core::{ClientRequestHandler, JsonRpcError};
/// use serde_json::{Value, json};
///
/// /// Answers `roots/list` with one fixed root, and nothing else.
/// struct FixedRoots;
///
/// #[async_trait]
/// impl ClientRequestHandler for FixedRoots {
///     fn session_id(&self) -> &str {
///         "local"
///     }
///
///     async fn handle(&self, method: &str, _params: Option<Value>) -> Result<Value, JsonRpcError> {
///         match method {
///             "roots/list" => Ok(json!({ "roots": [{ "uri": "file:///srv/project" }] })),
///             other => Err(JsonRpcError::new(JsonRpcError::METHOD_NOT_FOUND, format!("no {other}"))),
///         }
///     }
/// }
/// ```
#[async_trait]
pub trait ClientRequestHandler: Send + Sync + 'static {
    /// The downstream session this handler speaks for; requests are routed to a handler only when
    /// every call in flight on the upstream belongs to the same session.
    fn session_id(&self) -> &str;

    /// Answers one request from the upstream.
    async fn handle(&self, method: &str, params: Option<Value>) -> Result<Value, JsonRpcError>;

    /// Receives a notification the upstream sent while this session's call was in flight (a log
    /// message). Must not block. The default drops it.
    fn notify(&self, _method: &str, _params: &Value) {}
}

/// Options of one request.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct RequestOptions {
    /// Deadline; the spec's `request_timeout` when `None`.
    pub timeout: Option<Duration>,
    /// Where `notifications/progress` for this request go, with the caller's own token restored.
    pub progress: Option<mpsc::Sender<Value>>,
    /// Who answers the upstream's own requests while this request is in flight.
    pub client: Option<Arc<dyn ClientRequestHandler>>,
    /// Extra HTTP headers for this request (HTTP upstreams only).
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for RequestOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestOptions")
            .field("timeout", &self.timeout)
            .field("progress", &self.progress.is_some())
            .field(
                "client",
                &self.client.as_ref().map(|c| c.session_id().to_owned()),
            )
            .finish()
    }
}

impl RequestOptions {
    /// Sets the deadline.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Routes this request's progress notifications to `progress`.
    pub fn with_progress(mut self, progress: mpsc::Sender<Value>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Adds an HTTP header to this request (HTTP upstreams only).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Lets `client` answer the upstream's requests while this request is in flight.
    pub fn with_client(mut self, client: Arc<dyn ClientRequestHandler>) -> Self {
        self.client = Some(client);
        self
    }
}

struct Pending {
    answer: oneshot::Sender<Result<Box<RawValue>, JsonRpcError>>,
    client: Option<Arc<dyn ClientRequestHandler>>,
}

struct ProgressRoute {
    caller_token: Value,
    sink: mpsc::Sender<Value>,
}

struct Shared {
    server: ServerId,
    outbound: Box<dyn Outbound>,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
    /// Keyed by the upstream token, which is the request's upstream id.
    progress: Mutex<HashMap<u64, ProgressRoute>>,
    /// The per-request `_meta` of the stateless era, once negotiated.
    request_meta: Mutex<Option<Map<String, Value>>>,
    ready: AtomicBool,
    closed: Mutex<Option<String>>,
    request_timeout: Duration,
}

/// A shared connection to one upstream. Cheap to clone.
#[derive(Clone)]
pub struct Upstream {
    shared: Arc<Shared>,
    peer: Arc<PeerInfo>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("server", &self.shared.server)
            .field("era", &self.peer.era)
            .finish()
    }
}

/// A freshly connected upstream and the channel of its notifications.
pub(crate) struct Connection {
    pub upstream: Upstream,
    pub signals: mpsc::Receiver<Signal>,
}

impl Upstream {
    /// Opens the transport and completes the handshake within the spec's connect timeout.
    pub(crate) async fn connect(
        spec: &ServerSpec,
        era_hint: Option<Era>,
    ) -> Result<Connection, Error> {
        let deadline = spec.connect_timeout;
        let connecting = Self::connect_unbounded(spec, era_hint);
        match tokio::time::timeout(deadline, connecting).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                server: spec.id.clone(),
                method: "the handshake".into(),
                after: deadline,
            }),
        }
    }

    async fn connect_unbounded(
        spec: &ServerSpec,
        era_hint: Option<Era>,
    ) -> Result<Connection, Error> {
        let transport::Connected { outbound, inbound } = transport::open(spec).await?;
        let shared = Arc::new(Shared {
            server: spec.id.clone(),
            outbound,
            next_id: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            progress: Mutex::new(HashMap::new()),
            request_meta: Mutex::new(None),
            ready: AtomicBool::new(false),
            closed: Mutex::new(None),
            request_timeout: spec.request_timeout,
        });
        let (signal_tx, signals) = mpsc::channel(SIGNAL_CAPACITY);
        tokio::spawn(dispatch(shared.clone(), inbound, signal_tx));

        let preference = match era_hint {
            Some(Era::Session) => ProtocolPreference::Session,
            Some(Era::Stateless) => ProtocolPreference::Stateless,
            None => spec.protocol,
        };
        let handshake = handshake(&shared, preference).await;
        let peer = match handshake {
            Ok(peer) => peer,
            Err(err) => {
                shared.outbound.close().await;
                return Err(err);
            }
        };
        shared.ready.store(true, Ordering::Release);
        shared.outbound.handshake_complete().await;
        let upstream = Upstream {
            shared,
            peer: Arc::new(peer),
        };
        if upstream.peer.era == Era::Stateless {
            upstream.spawn_listen();
        }
        Ok(Connection { upstream, signals })
    }

    /// The server this connection belongs to.
    pub fn server(&self) -> &ServerId {
        &self.shared.server
    }

    /// What the handshake learned.
    pub fn peer(&self) -> &PeerInfo {
        &self.peer
    }

    /// Why the connection closed, if it has.
    pub fn closed_reason(&self) -> Option<String> {
        self.shared.closed.lock().ok().and_then(|c| c.clone())
    }

    /// Sends a request and waits for its answer.
    pub async fn request(
        &self,
        method: &str,
        params: Option<Value>,
        options: &RequestOptions,
    ) -> Result<Value, Error> {
        let result = request(&self.shared, method, params.map(Params::from), options).await?;
        Ok(jsonrpc::parse(&result))
    }

    /// Sends a request and returns its result as the server wrote it, unparsed: for forwarding.
    /// Arguments the params hold as text are written into the request as they are.
    pub async fn request_raw(
        &self,
        method: &str,
        params: Option<Params>,
        options: &RequestOptions,
    ) -> Result<Box<RawValue>, Error> {
        request(&self.shared, method, params, options).await
    }

    /// Sends a notification.
    pub async fn notify(&self, method: &str, params: Option<Value>) -> Result<(), Error> {
        self.shared
            .outbound
            .send(jsonrpc::notification(method, params).into())
            .await
    }

    /// Ends the connection: fails calls in flight and stops the transport (and child process).
    pub async fn close(&self) {
        fail_all(&self.shared, "the gateway closed the connection");
        self.shared.outbound.close().await;
    }

    /// Opens the stateless era's `subscriptions/listen` stream for the lists the server says can
    /// change. It is a request that stays open; its notifications reach the dispatcher like any.
    fn spawn_listen(&self) {
        let mut filter = Map::new();
        for (capability, key) in [
            ("tools", "toolsListChanged"),
            ("prompts", "promptsListChanged"),
            ("resources", "resourcesListChanged"),
        ] {
            if self.peer.lists_change(capability) {
                filter.insert(key.into(), true.into());
            }
        }
        if filter.is_empty() {
            return;
        }
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let options = RequestOptions::default().with_timeout(Duration::MAX);
            let params = json!({ "notifications": filter });
            let ended = request(
                &shared,
                "subscriptions/listen",
                Some(params.into()),
                &options,
            )
            .await;
            tracing::debug!(server = %shared.server, result = ?ended, "subscriptions/listen ended");
        });
    }
}

async fn handshake(
    shared: &Arc<Shared>,
    preference: ProtocolPreference,
) -> Result<PeerInfo, Error> {
    match preference {
        ProtocolPreference::Session => initialize(shared).await,
        ProtocolPreference::Stateless => discover(shared).await,
        ProtocolPreference::Auto => {
            match tokio::time::timeout(DISCOVER_PROBE_TIMEOUT, discover(shared)).await {
                Ok(Ok(peer)) => Ok(peer),
                // The connection itself failed: falling back cannot help.
                Ok(Err(err @ (Error::Closed { .. } | Error::Spawn { .. }))) => Err(err),
                Ok(Err(Error::Transport {
                    source: Some(source),
                    ..
                })) if transport::is_connect_error(source.as_ref()) => Err(
                    Error::transport_caused(&shared.server, "could not connect", source),
                ),
                Ok(Err(err)) => {
                    tracing::debug!(server = %shared.server, error = %err, "no server/discover; using initialize");
                    initialize(shared).await
                }
                Err(_) => initialize(shared).await,
            }
        }
    }
}

/// What the gateway, as a client, offers upstreams: it relays sampling, elicitation and roots to
/// the downstream session whose call is in flight.
fn client_capabilities() -> Value {
    json!({ "sampling": {}, "elicitation": { "form": {}, "url": {} }, "roots": {} })
}

fn client_info() -> Value {
    json!({ "name": "mcp-gateway", "version": env!("CARGO_PKG_VERSION") })
}

async fn initialize(shared: &Arc<Shared>) -> Result<PeerInfo, Error> {
    shared.outbound.set_protocol_version(None);
    let params = json!({
        "protocolVersion": SESSION_VERSION,
        "capabilities": client_capabilities(),
        "clientInfo": client_info(),
    });
    let result = request(
        shared,
        "initialize",
        Some(params.into()),
        &RequestOptions::default(),
    )
    .await?;
    let result = jsonrpc::parse(&result);
    let version = result
        .get("protocolVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !SESSION_VERSIONS.contains(&version.as_str()) {
        return Err(Error::Handshake {
            server: shared.server.clone(),
            message: format!(
                "the server offered protocol version `{version}`, which the gateway does not speak"
            ),
        });
    }
    shared.outbound.set_protocol_version(Some(&version));
    shared
        .outbound
        .send(jsonrpc::notification("notifications/initialized", None).into())
        .await?;
    Ok(PeerInfo {
        era: Era::Session,
        protocol_version: version,
        server_info: result.get("serverInfo").cloned().unwrap_or(Value::Null),
        capabilities: result
            .get("capabilities")
            .cloned()
            .unwrap_or_else(|| json!({})),
        instructions: result
            .get("instructions")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

async fn discover(shared: &Arc<Shared>) -> Result<PeerInfo, Error> {
    let mut meta = Map::new();
    meta.insert(
        "io.modelcontextprotocol/protocolVersion".into(),
        STATELESS_VERSION.into(),
    );
    meta.insert("io.modelcontextprotocol/clientInfo".into(), client_info());
    meta.insert(
        "io.modelcontextprotocol/clientCapabilities".into(),
        json!({}),
    );
    shared
        .outbound
        .set_protocol_version(Some(STATELESS_VERSION));
    let params = json!({ "_meta": meta });
    let result = request(
        shared,
        "server/discover",
        Some(params.into()),
        &RequestOptions::default(),
    )
    .await?;
    let result = jsonrpc::parse(&result);
    let speaks_stateless = result
        .get("supportedVersions")
        .and_then(Value::as_array)
        .is_some_and(|versions| versions.iter().any(|v| v == STATELESS_VERSION));
    if !speaks_stateless {
        return Err(Error::Handshake {
            server: shared.server.clone(),
            message: format!("server/discover does not list {STATELESS_VERSION}"),
        });
    }
    if let Ok(mut slot) = shared.request_meta.lock() {
        *slot = Some(meta);
    }
    Ok(PeerInfo {
        era: Era::Stateless,
        protocol_version: STATELESS_VERSION.into(),
        server_info: result
            .pointer("/_meta/io.modelcontextprotocol~1serverInfo")
            .cloned()
            .unwrap_or(Value::Null),
        capabilities: result
            .get("capabilities")
            .cloned()
            .unwrap_or_else(|| json!({})),
        instructions: result
            .get("instructions")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// Removes a request's bookkeeping if its caller goes away, and tells the upstream to stop.
struct InFlight<'a> {
    shared: &'a Arc<Shared>,
    id: u64,
    finished: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let was_pending = self
            .shared
            .pending
            .lock()
            .ok()
            .and_then(|mut pending| pending.remove(&self.id))
            .is_some();
        if let Ok(mut progress) = self.shared.progress.lock() {
            progress.remove(&self.id);
        }
        // Only a request the upstream still works on, on a connection past its handshake,
        // is worth a cancellation.
        if was_pending && self.shared.ready.load(Ordering::Acquire) {
            let shared = self.shared.clone();
            let id = self.id;
            tokio::spawn(async move {
                let params =
                    json!({ "requestId": id, "reason": "the caller cancelled the request" });
                let cancel = jsonrpc::notification("notifications/cancelled", Some(params));
                let _ = shared.outbound.send(cancel.into()).await;
            });
        }
    }
}

async fn request(
    shared: &Arc<Shared>,
    method: &str,
    params: Option<Params>,
    options: &RequestOptions,
) -> Result<Box<RawValue>, Error> {
    if let Some(reason) = shared.closed.lock().ok().and_then(|c| c.clone()) {
        return Err(Error::Closed {
            server: shared.server.clone(),
            reason,
        });
    }
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let (params, arguments) = params.map_or((None, None), |params| {
        let (value, arguments) = params.into_parts();
        (Some(value), arguments)
    });
    let params = prepare_params(shared, id, params, options.progress.clone());
    let (answer, answered) = oneshot::channel();
    if let Ok(mut pending) = shared.pending.lock() {
        pending.insert(
            id,
            Pending {
                answer,
                client: options.client.clone(),
            },
        );
    }
    let mut in_flight = InFlight {
        shared,
        id,
        finished: false,
    };
    // One deadline for both halves: an HTTP upstream that answers with JSON does the whole call
    // before its response headers, inside the send.
    let timeout = options.timeout.unwrap_or(shared.request_timeout);
    let exchange = async {
        let message = Message::new(jsonrpc::request(id, method, params), arguments);
        let sent = shared
            .outbound
            .send_request(message, &options.headers)
            .await;
        let answer = match sent {
            Ok(None) => return Ok(answered.await),
            Ok(Some(outcome)) => Ok(Ok(outcome)),
            Err(err) => Err(err),
        };
        // Answered in the exchange itself, or failed: nothing is pending any more.
        if let Ok(mut pending) = shared.pending.lock() {
            pending.remove(&id);
        }
        answer
    };
    let result = match tokio::time::timeout(timeout, exchange).await {
        Ok(Err(err)) => return Err(err),
        Ok(Ok(Ok(Ok(result)))) => Ok(result),
        Ok(Ok(Ok(Err(error)))) => Err(Error::Upstream {
            server: shared.server.clone(),
            method: method.to_owned(),
            error,
        }),
        Ok(Ok(Err(_))) => Err(Error::Closed {
            server: shared.server.clone(),
            reason: shared
                .closed
                .lock()
                .ok()
                .and_then(|c| c.clone())
                .unwrap_or_else(|| "the connection closed".into()),
        }),
        Err(_) => {
            return Err(Error::Timeout {
                server: shared.server.clone(),
                method: method.to_owned(),
                after: timeout,
            });
        }
    };
    in_flight.finished = true;
    if let Ok(mut progress) = shared.progress.lock() {
        progress.remove(&id);
    }
    result
}

/// Rewrites the caller's progress token to this request's upstream id, and adds the stateless
/// era's `_meta`. Everything else in `params` is left exactly as the caller sent it.
fn prepare_params(
    shared: &Shared,
    id: u64,
    params: Option<Value>,
    progress: Option<mpsc::Sender<Value>>,
) -> Option<Value> {
    let request_meta = shared.request_meta.lock().ok().and_then(|m| m.clone());
    let mut object = match params {
        Some(Value::Object(object)) => object,
        Some(other) => return Some(other),
        None if progress.is_none() && request_meta.is_none() => return None,
        None => Map::new(),
    };
    // Past the handshake, no stateless `_meta` means the session era.
    let session_era = request_meta.is_none() && shared.ready.load(Ordering::Acquire);
    let caller_token = strip_meta(&mut object, session_era);
    if progress.is_none() && request_meta.is_none() {
        return Some(Value::Object(object));
    }
    let meta = object
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        if let Some(request_meta) = request_meta {
            for (key, value) in request_meta {
                meta.entry(key).or_insert(value);
            }
        }
        if let Some(sink) = progress {
            meta.insert("progressToken".into(), id.into());
            if let Ok(mut routes) = shared.progress.lock() {
                routes.insert(
                    id,
                    ProgressRoute {
                        caller_token: caller_token.unwrap_or_else(|| id.into()),
                        sink,
                    },
                );
            }
        }
    }
    Some(Value::Object(object))
}

/// The `_meta` keys a 2026-07-28 caller sends on every request. A session-era upstream was told
/// its version at `initialize` and rejects a request whose `_meta` names another one.
const STATELESS_META_KEYS: [&str; 4] = [
    "io.modelcontextprotocol/protocolVersion",
    "io.modelcontextprotocol/clientInfo",
    "io.modelcontextprotocol/clientCapabilities",
    "io.modelcontextprotocol/logLevel",
];

/// Removes `_meta.progressToken` (progress reaches a caller only through its own route) and, for
/// a session-era upstream, the caller's stateless-era keys; returns the caller's token.
fn strip_meta(params: &mut Map<String, Value>, session_era: bool) -> Option<Value> {
    let meta = params.get_mut("_meta")?.as_object_mut()?;
    let token = meta.remove("progressToken");
    if session_era {
        for key in STATELESS_META_KEYS {
            meta.remove(key);
        }
    }
    if meta.is_empty() {
        params.remove("_meta");
    }
    token
}

/// Reads the transport's events until it closes, answering callers and raising signals.
async fn dispatch(
    shared: Arc<Shared>,
    mut inbound: mpsc::Receiver<TransportEvent>,
    signals: mpsc::Sender<Signal>,
) {
    let raise = |signal: Signal| {
        if let Err(mpsc::error::TrySendError::Full(signal)) = signals.try_send(signal) {
            tracing::warn!(server = %shared.server, ?signal, "signal queue full; dropped");
        }
    };
    let reason = loop {
        let Some(event) = inbound.recv().await else {
            break "the transport stopped".to_owned();
        };
        match event {
            TransportEvent::Message(message) => {
                for message in jsonrpc::classify_raw(&message) {
                    handle_message(&shared, message, &raise).await;
                }
            }
            TransportEvent::Garbage(text) => {
                raise(Signal::ProtocolViolation(format!("not JSON: {text}")));
            }
            TransportEvent::Stderr(line) => raise(Signal::Stderr(line)),
            TransportEvent::Closed(reason) => break reason,
        }
    };
    fail_all(&shared, &reason);
    let _ = signals.send(Signal::Closed(reason)).await;
}

/// Marks the connection closed and fails every call in flight at once.
fn fail_all(shared: &Shared, reason: &str) {
    if let Ok(mut closed) = shared.closed.lock() {
        closed.get_or_insert_with(|| reason.to_owned());
    }
    // Dropping the senders wakes every waiting caller with a `Closed` error.
    if let Ok(mut pending) = shared.pending.lock() {
        pending.clear();
    }
    if let Ok(mut progress) = shared.progress.lock() {
        progress.clear();
    }
}

async fn handle_message(
    shared: &Arc<Shared>,
    message: Incoming<Box<RawValue>>,
    raise: &impl Fn(Signal),
) {
    match message {
        Incoming::Response { id, outcome } => {
            let pending = id
                .as_u64()
                .and_then(|id| shared.pending.lock().ok()?.remove(&id));
            match pending {
                Some(pending) => {
                    let _ = pending.answer.send(outcome);
                }
                None => raise(Signal::ProtocolViolation(format!(
                    "answer to request id {id}, which is not waiting for one"
                ))),
            }
        }
        Incoming::Notification { method, params } => match method.as_str() {
            "notifications/progress" => route_progress(shared, params),
            "notifications/tools/list_changed" => raise(Signal::ListChanged(ListKind::Tools)),
            "notifications/resources/list_changed" => {
                raise(Signal::ListChanged(ListKind::Resources))
            }
            "notifications/prompts/list_changed" => raise(Signal::ListChanged(ListKind::Prompts)),
            "notifications/resources/updated" => {
                raise(Signal::ResourceUpdated(params.unwrap_or(Value::Null)))
            }
            "notifications/message" => {
                let params = params.unwrap_or(Value::Null);
                let delivered = match client_for(shared, &method) {
                    Ok(client) => {
                        client.notify(&method, &params);
                        Some(client.session_id().to_owned())
                    }
                    Err(_) => None,
                };
                raise(Signal::Log(params, delivered))
            }
            other => {
                tracing::debug!(server = %shared.server, method = other, "notification ignored")
            }
        },
        Incoming::Request { id, method, params } => {
            if method == "ping" {
                reply(shared, id, Ok(json!({}))).await;
                return;
            }
            match client_for(shared, &method) {
                Ok(client) => {
                    // Answered from its own task: the client may take minutes (a person
                    // answering an elicitation) and the dispatcher must keep reading.
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let answer = client.handle(&method, params).await;
                        reply(&shared, id, answer).await;
                    });
                }
                Err(answer) => reply(shared, id, answer).await,
            }
        }
        Incoming::Invalid(reason) => raise(Signal::ProtocolViolation(reason)),
    }
}

/// Finds the one downstream session that can answer an upstream's request, or the answer to
/// give when there is none.
fn client_for(
    shared: &Shared,
    method: &str,
) -> Result<Arc<dyn ClientRequestHandler>, Result<Value, JsonRpcError>> {
    let clients: Vec<Arc<dyn ClientRequestHandler>> = shared
        .pending
        .lock()
        .map(|pending| pending.values().filter_map(|p| p.client.clone()).collect())
        .unwrap_or_default();
    let Some(first) = clients.first() else {
        // Roots belong to a client session; outside any call the shared connection has none.
        if method == "roots/list" {
            return Err(Ok(json!({ "roots": [] })));
        }
        return Err(Err(JsonRpcError::new(
            JsonRpcError::METHOD_NOT_FOUND,
            format!(
                "`{method}` arrived while no client call was in flight on this server, so there is no client to ask"
            ),
        )));
    };
    if clients.iter().any(|c| c.session_id() != first.session_id()) {
        return Err(Err(JsonRpcError::new(
            JsonRpcError::INTERNAL_ERROR,
            format!(
                "`{method}` is ambiguous: calls from several client sessions are in flight on this server"
            ),
        )));
    }
    Ok(first.clone())
}

async fn reply(shared: &Shared, id: Value, answer: Result<Value, JsonRpcError>) {
    let message = match answer {
        Ok(result) => jsonrpc::response(id, result),
        Err(error) => jsonrpc::error_response(id, &error),
    };
    if let Err(err) = shared.outbound.send(message.into()).await {
        tracing::debug!(server = %shared.server, error = %err, "could not answer an upstream request");
    }
}

/// Delivers a progress notification to the caller whose request it is about, token restored.
fn route_progress(shared: &Shared, params: Option<Value>) {
    let Some(mut params) = params else { return };
    let Some(token) = params.get("progressToken").and_then(Value::as_u64) else {
        return;
    };
    let route = shared.progress.lock().ok().and_then(|routes| {
        routes
            .get(&token)
            .map(|r| (r.caller_token.clone(), r.sink.clone()))
    });
    if let Some((caller_token, sink)) = route {
        params["progressToken"] = caller_token;
        // Progress is advisory: a caller that does not keep up loses some, the upstream never waits.
        let _ = sink.try_send(params);
    }
}

#[cfg(test)]
mod tests;
