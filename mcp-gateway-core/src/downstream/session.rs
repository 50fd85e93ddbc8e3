//! One downstream session: its negotiated version and capabilities, its requests in flight (for
//! cancellation), the requests the gateway relayed to it and awaits, its subscriptions, log level
//! and the streams that carry messages not tied to a request.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::jsonrpc::{self, JsonRpcError};
use crate::upstream::ClientRequestHandler;

/// The MCP log levels, least severe first.
const LOG_LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// The rank of an MCP log level, or `None` if it is not one.
pub(crate) fn log_rank(level: &str) -> Option<usize> {
    LOG_LEVELS.iter().position(|l| *l == level)
}

type ClientAnswer = oneshot::Sender<Result<Value, JsonRpcError>>;

/// A session's requests in flight: how many, and the tokens that cancel them by id. The count is
/// kept apart from the tokens because a client may reuse an id while a request with it is still
/// in flight; the count must not be dodged that way.
#[derive(Default)]
struct InFlight {
    count: usize,
    tokens: HashMap<String, CancellationToken>,
}

/// One request of a session in flight, from [`Session::begin`]; dropping it (answered,
/// cancelled, or the caller gone) ends the request's bookkeeping.
pub(crate) struct Call<'a> {
    session: &'a Session,
    key: String,
    /// Cancelled by `notifications/cancelled` or when the session closes.
    pub(crate) cancel: CancellationToken,
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        if let Ok(mut in_flight) = self.session.in_flight.lock() {
            in_flight.count = in_flight.count.saturating_sub(1);
            in_flight.tokens.remove(&self.key);
        }
    }
}

/// A session opened by `initialize`.
pub struct Session {
    id: Arc<str>,
    /// The client's network address, where the transport knows one (HTTP).
    peer: Option<IpAddr>,
    protocol_version: String,
    client_capabilities: Value,
    log_level: Mutex<Option<usize>>,
    /// Streams for messages not tied to a request (GET streams, stdout); the first open one is used.
    streams: Mutex<Vec<mpsc::Sender<Value>>>,
    in_flight: Mutex<InFlight>,
    client_requests: Mutex<HashMap<u64, ClientAnswer>>,
    next_client_request: AtomicU64,
    subscriptions: Mutex<HashSet<String>>,
    last_active: Mutex<Instant>,
}

impl Session {
    pub(crate) fn new(
        protocol_version: String,
        client_capabilities: Value,
        peer: Option<IpAddr>,
    ) -> Self {
        Self {
            id: Arc::from(new_session_id()),
            peer,
            protocol_version,
            client_capabilities,
            log_level: Mutex::new(None),
            streams: Mutex::new(Vec::new()),
            in_flight: Mutex::new(InFlight::default()),
            client_requests: Mutex::new(HashMap::new()),
            next_client_request: AtomicU64::new(1),
            subscriptions: Mutex::new(HashSet::new()),
            last_active: Mutex::new(Instant::now()),
        }
    }

    /// The session id (`Mcp-Session-Id`).
    pub fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn id_arc(&self) -> Arc<str> {
        self.id.clone()
    }

    /// The client's network address, where the transport knows one.
    pub fn peer(&self) -> Option<IpAddr> {
        self.peer
    }

    /// The negotiated protocol version.
    pub fn protocol_version(&self) -> &str {
        &self.protocol_version
    }

    /// Adds a stream for messages not tied to a request; it is dropped once its receiver is.
    pub fn attach_stream(&self, stream: mpsc::Sender<Value>) {
        if let Ok(mut streams) = self.streams.lock() {
            streams.retain(|s| !s.is_closed());
            streams.push(stream);
        }
    }

    fn has_streams(&self) -> bool {
        self.streams
            .lock()
            .is_ok_and(|streams| streams.iter().any(|s| !s.is_closed()))
    }

    /// Whether the session is in use beyond its requests: a stream open (GET, legacy SSE,
    /// stdout), a call in flight, or a relayed request awaiting the client's answer. A busy
    /// session is never reaped or evicted.
    pub(crate) fn is_busy(&self) -> bool {
        self.has_streams()
            || self.in_flight.lock().is_ok_and(|calls| calls.count > 0)
            || self
                .client_requests
                .lock()
                .is_ok_and(|waiting| !waiting.is_empty())
    }

    /// Sends a message on the first open stream; dropped when there is none or it is full
    /// (a client that does not read must not hold up the gateway).
    pub(crate) fn notify(&self, message: Value) {
        let Ok(streams) = self.streams.lock() else {
            return;
        };
        if let Some(stream) = streams.iter().find(|s| !s.is_closed()) {
            let _ = stream.try_send(message);
        }
    }

    pub(crate) fn touch(&self) {
        if let Ok(mut last) = self.last_active.lock() {
            *last = Instant::now();
        }
    }

    pub(crate) fn idle_for(&self) -> Duration {
        self.last_active
            .lock()
            .map(|last| last.elapsed())
            .unwrap_or_default()
    }

    /// Registers a request in flight, holding its cancellation token, unless `max` requests are
    /// in flight already: then `None`, and the request must be refused.
    pub(crate) fn begin(&self, id: &Value, max: usize) -> Option<Call<'_>> {
        let mut in_flight = self.in_flight.lock().ok()?;
        if in_flight.count >= max {
            return None;
        }
        in_flight.count += 1;
        let key = request_key(id);
        let cancel = CancellationToken::new();
        in_flight.tokens.insert(key.clone(), cancel.clone());
        Some(Call {
            session: self,
            key,
            cancel,
        })
    }

    /// Cancels the request with this id (`notifications/cancelled`).
    pub(crate) fn cancel(&self, id: &Value) {
        let token = self
            .in_flight
            .lock()
            .ok()
            .and_then(|mut in_flight| in_flight.tokens.remove(&request_key(id)));
        if let Some(token) = token {
            token.cancel();
        }
    }

    pub(crate) fn cancel_all(&self) {
        if let Ok(mut in_flight) = self.in_flight.lock() {
            for (_, token) in in_flight.tokens.drain() {
                token.cancel();
            }
        }
        if let Ok(mut waiting) = self.client_requests.lock() {
            waiting.clear();
        }
    }

    /// Delivers the client's answer to a request the gateway relayed to it.
    pub(crate) fn complete_client_request(&self, id: &Value, outcome: Result<Value, JsonRpcError>) {
        let waiting = id
            .as_u64()
            .and_then(|id| self.client_requests.lock().ok()?.remove(&id));
        match waiting {
            Some(waiting) => {
                let _ = waiting.send(outcome);
            }
            None => tracing::debug!(session = %self.id, %id, "answer to no pending request"),
        }
    }

    pub(crate) fn add_subscription(&self, uri: &str) {
        if let Ok(mut subscriptions) = self.subscriptions.lock() {
            subscriptions.insert(uri.to_owned());
        }
    }

    pub(crate) fn remove_subscription(&self, uri: &str) {
        if let Ok(mut subscriptions) = self.subscriptions.lock() {
            subscriptions.remove(uri);
        }
    }

    pub(crate) fn take_subscriptions(&self) -> Vec<String> {
        self.subscriptions
            .lock()
            .map(|mut s| s.drain().collect())
            .unwrap_or_default()
    }

    pub(crate) fn set_log_level(&self, level: &str) {
        if let Ok(mut current) = self.log_level.lock() {
            *current = log_rank(level);
        }
    }

    /// Whether a log message of this level passes the session's `logging/setLevel`.
    pub(crate) fn wants_log(&self, level: &str) -> bool {
        let threshold = self.log_level.lock().ok().and_then(|l| *l);
        match (threshold, log_rank(level)) {
            (Some(threshold), Some(rank)) => rank >= threshold,
            _ => true,
        }
    }

    fn client_supports(&self, method: &str) -> bool {
        let capability = match method {
            "sampling/createMessage" => "sampling",
            "elicitation/create" => "elicitation",
            "roots/list" => "roots",
            _ => return false,
        };
        self.client_capabilities
            .get(capability)
            .is_some_and(|c| !c.is_null())
    }
}

/// The key of a request id in the in-flight table: its JSON text, written by serde_json directly
/// (the same text as `Display`, without the formatting machinery; this runs twice per call).
fn request_key(id: &Value) -> String {
    serde_json::to_string(id).unwrap_or_default()
}

/// Relays an upstream's requests to one session over the stream of the call that caused them.
pub(crate) struct SessionClient {
    session: Arc<Session>,
    stream: mpsc::Sender<Value>,
    timeout: Duration,
}

impl SessionClient {
    pub(crate) fn new(
        session: Arc<Session>,
        stream: mpsc::Sender<Value>,
        timeout: Duration,
    ) -> Self {
        Self {
            session,
            stream,
            timeout,
        }
    }
}

#[async_trait]
impl ClientRequestHandler for SessionClient {
    fn session_id(&self) -> &str {
        self.session.id()
    }

    async fn handle(&self, method: &str, params: Option<Value>) -> Result<Value, JsonRpcError> {
        if !self.session.client_supports(method) {
            return Err(JsonRpcError::new(
                JsonRpcError::METHOD_NOT_FOUND,
                format!("the client did not declare the capability `{method}` needs"),
            ));
        }
        let id = self
            .session
            .next_client_request
            .fetch_add(1, Ordering::Relaxed);
        let (answer, answered) = oneshot::channel();
        if let Ok(mut waiting) = self.session.client_requests.lock() {
            waiting.insert(id, answer);
        }
        let request = jsonrpc::request(id, method, params);
        if self.stream.send(request).await.is_err() {
            self.forget(id);
            return Err(JsonRpcError::new(
                JsonRpcError::INTERNAL_ERROR,
                "the client's stream closed before the request could be relayed",
            ));
        }
        match tokio::time::timeout(self.timeout, answered).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(JsonRpcError::new(
                JsonRpcError::INTERNAL_ERROR,
                "the client session ended before answering",
            )),
            Err(_) => {
                self.forget(id);
                Err(JsonRpcError::new(
                    JsonRpcError::INTERNAL_ERROR,
                    format!(
                        "the client did not answer `{method}` within {:?}",
                        self.timeout
                    ),
                ))
            }
        }
    }

    fn notify(&self, method: &str, params: &Value) {
        let passes = params["level"]
            .as_str()
            .is_none_or(|level| self.session.wants_log(level));
        if passes {
            let _ = self
                .stream
                .try_send(jsonrpc::notification(method, Some(params.clone())));
        }
    }
}

impl SessionClient {
    fn forget(&self, id: u64) {
        if let Ok(mut waiting) = self.session.client_requests.lock() {
            waiting.remove(&id);
        }
    }
}

/// A session id that cannot be guessed: 128 random bits, hex.
pub fn new_session_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
