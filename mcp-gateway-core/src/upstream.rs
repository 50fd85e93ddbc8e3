//! One live connection to an upstream MCP server, shared by every caller.
//!
//! Callers' requests are multiplexed onto the connection by giving each a fresh upstream id;
//! the dispatcher task matches answers back to exactly their caller. Progress tokens are rewritten
//! the same way, so two callers that both chose token `1` still get only their own progress.
//! A caller that gives up (drop or timeout) sends `notifications/cancelled` to this upstream only.
//!
//! `handshake.rs` negotiates the era; `dispatch.rs` is the task that reads the connection;
//! `owed.rs` writes what the gateway owes the upstream (answers to its requests, cancellations)
//! without anyone waiting on it.

mod dispatch;
mod handshake;
mod owed;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::jsonrpc::{self, JsonRpcError, Message, Params};
use crate::spec::{ProtocolPreference, ServerId, ServerSpec};
use crate::transport::{self, Outbound};
use owed::Owed;

/// The stateless revision, negotiated with `server/discover`.
pub const STATELESS_VERSION: &str = "2026-07-28";
/// The session-era version the gateway offers in `initialize`.
pub const SESSION_VERSION: &str = "2025-11-25";
/// Session-era versions the gateway accepts as an `initialize` counter-offer.
pub const SESSION_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

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
    /// Cancelled when the connection is given up from the writing side; ends the dispatcher.
    lost: CancellationToken,
    owed: Owed,
    request_timeout: Duration,
    /// One permit per forwarded call in flight, `max_calls` in all.
    calls: Semaphore,
    max_calls: usize,
}

impl Shared {
    fn closed_reason(&self) -> String {
        self.closed
            .lock()
            .ok()
            .and_then(|c| c.clone())
            .unwrap_or_else(|| "the connection closed".into())
    }

    /// Marks the connection closed and fails every call in flight at once.
    fn fail_all(&self, reason: &str) {
        if let Ok(mut closed) = self.closed.lock() {
            closed.get_or_insert_with(|| reason.to_owned());
        }
        // Dropping the senders wakes every waiting caller with a `Closed` error.
        if let Ok(mut pending) = self.pending.lock() {
            pending.clear();
        }
        if let Ok(mut progress) = self.progress.lock() {
            progress.clear();
        }
    }

    /// Gives the connection up: its calls fail with `reason` and the dispatcher stops, which
    /// reports it closed.
    fn declare_lost(&self, reason: String) {
        tracing::warn!(server = %self.server, reason = ?reason, "connection given up");
        self.fail_all(&reason);
        self.lost.cancel();
    }
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
        let (owed, owed_queue) = Owed::new(spec.id.clone());
        let shared = Arc::new(Shared {
            server: spec.id.clone(),
            outbound,
            next_id: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            progress: Mutex::new(HashMap::new()),
            request_meta: Mutex::new(None),
            ready: AtomicBool::new(false),
            closed: Mutex::new(None),
            lost: CancellationToken::new(),
            owed,
            request_timeout: spec.request_timeout,
            calls: Semaphore::new(spec.max_concurrent_calls),
            max_calls: spec.max_concurrent_calls,
        });
        let (signal_tx, signals) = mpsc::channel(SIGNAL_CAPACITY);
        tokio::spawn(dispatch::dispatch(shared.clone(), inbound, signal_tx));
        tokio::spawn(owed::drain(Arc::downgrade(&shared), owed_queue));

        let preference = match era_hint {
            Some(Era::Session) => ProtocolPreference::Session,
            Some(Era::Stateless) => ProtocolPreference::Stateless,
            None => spec.protocol,
        };
        let handshake = handshake::handshake(&shared, preference).await;
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
    ///
    /// These are the clients' calls, so they count against the spec's `max_concurrent_calls`:
    /// with that many in flight, the call fails at once with [`Error::Overloaded`]. Failing
    /// fast rather than waiting for a permit keeps a slow server's backlog out of the gateway
    /// and tells the client at once, which may retry or go elsewhere.
    pub async fn request_raw(
        &self,
        method: &str,
        params: Option<Params>,
        options: &RequestOptions,
    ) -> Result<Box<RawValue>, Error> {
        let Ok(_permit) = self.shared.calls.try_acquire() else {
            return Err(Error::Overloaded {
                server: self.shared.server.clone(),
                limit: self.shared.max_calls,
            });
        };
        request(&self.shared, method, params, options).await
    }

    /// Sends a notification, waiting at most the spec's `request_timeout` for the upstream to
    /// take it.
    pub async fn notify(&self, method: &str, params: Option<Value>) -> Result<(), Error> {
        let message = jsonrpc::notification(method, params).into();
        let after = self.shared.request_timeout;
        tokio::time::timeout(after, self.shared.outbound.send(message))
            .await
            .unwrap_or_else(|_| {
                Err(Error::Timeout {
                    server: self.shared.server.clone(),
                    method: method.to_owned(),
                    after,
                })
            })
    }

    /// Ends the connection: fails calls in flight and stops the transport (and child process).
    pub async fn close(&self) {
        self.shared.fail_all("the gateway closed the connection");
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
            self.shared.owed.cancel(self.id);
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
            reason: shared.closed_reason(),
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

#[cfg(test)]
mod tests;
