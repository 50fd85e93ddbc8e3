//! The gateway as one MCP server, independent of the transport that carries it.
//!
//! [`McpServer`] answers downstream clients: the session era (`initialize`, sessions, 2025-03-26 …
//! 2025-11-25) and the stateless 2026-07-28 revision (`server/discover`, per-request `_meta`). It
//! serves the merged lists from catalogue snapshots with cursors that stay valid while the list
//! changes, routes calls to their owners, relays progress, cancellation, logging and the upstreams'
//! own requests, and tells sessions when the merged lists change. Transports (`mcp-gateway-http`'s
//! Streamable HTTP and legacy SSE endpoints, [`serve_stdio`]) only move messages.

mod config;
mod listeners;
mod paging;
mod relay;
mod reply;
mod session;
mod session_table;
mod stateless;
mod stdio;
mod subscriptions;

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use tokio::sync::{Semaphore, mpsc};

use crate::gateway::Gateway;
use crate::jsonrpc::{self, Incoming, JsonRpcError, Message, Params};
use crate::registry::Catalog;
use crate::upstream::{
    PROGRESS_CAPACITY, RequestOptions, SESSION_VERSION, SESSION_VERSIONS, STATELESS_VERSION,
};
pub use config::DownstreamConfig;
use listeners::Listeners;
use relay::relay_events;
pub use reply::{Reply, to_jsonrpc};
use reply::{busy, internal};
pub use session::{Session, new_session_id};
use session::{SessionClient, log_rank};
use session_table::{SessionTable, TableFull};
pub use stateless::{
    META_CLIENT_CAPABILITIES, META_PROTOCOL_VERSION, check_stateless_meta, is_stateless_message,
};
use stateless::{stateless_raw_result, stateless_result};
pub use stdio::serve_stdio;
use subscriptions::{Subscriptions, unsubscribe_upstream};

/// JSON-RPC code of the 2026-07-28 revision for a protocol version the server does not speak.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
/// JSON-RPC code of the 2026-07-28 revision for headers that contradict the body.
pub const HEADER_MISMATCH: i64 = -32020;
/// JSON-RPC code of the session era for an unknown resource.
pub const RESOURCE_NOT_FOUND: i64 = -32002;

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
    sessions: SessionTable,
    snapshots: Mutex<VecDeque<Arc<Catalog>>>,
    subscriptions: Subscriptions,
    listeners: Listeners,
    /// One permit per request in flight, [`DownstreamConfig::max_calls`] in all.
    calls: Semaphore,
    /// The most verbose log level sent to the upstreams so far (its rank): each session filters
    /// for itself, so upstreams must send what the most verbose session asked for.
    upstream_log_rank: Mutex<Option<usize>>,
}

impl McpServer {
    /// Creates the server and starts the task that turns gateway events into notifications and
    /// closes idle sessions. Must be called inside a tokio runtime.
    pub fn new(gateway: Gateway, config: DownstreamConfig) -> Arc<Self> {
        let server = Arc::new(Self {
            subscriptions: Subscriptions::new(gateway.clone()),
            sessions: SessionTable::new(config.max_sessions, config.max_sessions_per_peer),
            listeners: Listeners::new(config.max_listeners),
            calls: Semaphore::new(config.max_calls),
            gateway,
            config,
            snapshots: Mutex::new(VecDeque::new()),
            upstream_log_rank: Mutex::new(None),
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
        self.sessions.len()
    }

    /// Answers `initialize` from a client whose address is unknown (stdio, in process): opens
    /// a session and returns it with the result to send. At the session cap the least recently
    /// used idle session is closed to make room; if every session is busy, the error says so.
    pub fn open_session(
        &self,
        params: Option<&Value>,
    ) -> Result<(Arc<Session>, Value), JsonRpcError> {
        self.open_session_at(None, params)
    }

    /// Answers `initialize` like [`open_session`](Self::open_session), for a client at `peer`:
    /// past [`DownstreamConfig::max_sessions_per_peer`] that address's own least recently used
    /// idle session makes room, so one client cannot push every other client out.
    pub fn open_session_from(
        &self,
        peer: IpAddr,
        params: Option<&Value>,
    ) -> Result<(Arc<Session>, Value), JsonRpcError> {
        self.open_session_at(Some(peer), params)
    }

    fn open_session_at(
        &self,
        peer: Option<IpAddr>,
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
            peer,
        ));
        let evicted = self.sessions.insert(session.clone()).map_err(|full| match full {
            TableFull::Everyone => internal(format!(
                "the gateway already has {} sessions open and all of them are busy; try again later",
                self.config.max_sessions
            )),
            TableFull::Peer(peer) => internal(format!(
                "{peer} already has {} sessions open and all of them are busy; close one or try again later",
                self.config.max_sessions_per_peer
            )),
        })?;
        if let Some(evicted) = evicted {
            tracing::debug!(session = %evicted.id(), "evicting the least recently used idle session");
            self.discard_session(&evicted);
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
        let session = self.sessions.touch(id)?;
        session.touch();
        Some(session)
    }

    /// Ends a session: cancels its calls and drops its subscriptions, waiting (briefly) for the
    /// upstreams to unsubscribe. `false` if it was unknown.
    pub async fn close_session(&self, id: &str) -> bool {
        let Some(session) = self.sessions.remove(id) else {
            return false;
        };
        let released = self.end_session(&session);
        futures::future::join_all(
            released
                .iter()
                .map(|uri| unsubscribe_upstream(&self.gateway, uri)),
        )
        .await;
        true
    }

    /// Ends a session the gateway closes itself (idle or evicted), without waiting on upstreams:
    /// its unsubscribes go to the background.
    fn discard_session(&self, session: &Session) {
        let released = self.end_session(session);
        self.subscriptions.release_later(released);
    }

    /// Cancels a removed session's calls and drops its subscriptions; returns the URIs no
    /// session wants any more.
    fn end_session(&self, session: &Session) -> Vec<String> {
        session.cancel_all();
        self.subscriptions.remove_session(session)
    }

    /// Opens a stateless `subscriptions/listen` stream: sends the acknowledgement (the accepted
    /// part of the requested filter) and then every matching notification, each carrying the
    /// request id as `subscriptionId`, until `stream` closes. With
    /// [`DownstreamConfig::max_listeners`] streams open, the request is answered with an error on
    /// `stream` instead, and the stream ends.
    pub async fn listen(&self, id: Value, params: Option<&Value>, stream: mpsc::Sender<Value>) {
        self.listeners.open(id, params, stream);
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
        let is_batch = message.is_array();
        let mut replies = Vec::new();
        for message in jsonrpc::classify(message) {
            let reply = self
                .handle_one(caller, message, arguments.take(), stream.clone())
                .await;
            if let Some(reply) = reply {
                replies.push(reply);
            }
        }
        // JSON-RPC answers a batch with an array, even of one answer.
        match replies.len() {
            0 => None,
            1 if !is_batch => replies.pop(),
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
                let Ok(_permit) = self.calls.try_acquire() else {
                    let max = self.config.max_calls;
                    return Some(Reply::error(id, &busy("the gateway", max, "max_calls")));
                };
                let outcome = match caller {
                    Caller::Session(session) => {
                        let max = self.config.max_calls_per_session;
                        let Some(call) = session.begin(&id, max) else {
                            let refusal = busy("this session", max, "max_calls_per_session");
                            return Some(Reply::error(id, &refusal));
                        };
                        let outcome = tokio::select! {
                            outcome = self.request(caller, &method, params, stream) => Some(outcome),
                            _ = call.cancel.cancelled() => None,
                        };
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

    /// Records the session's level, by which the gateway filters what the session receives. The
    /// upstreams are shared, so they are told a level only when it is more verbose than any told
    /// before: one session's `error` must not silence another session's `debug`.
    async fn set_level(&self, caller: &Caller, params: &Value) -> Result<Value, JsonRpcError> {
        let level = params["level"].as_str().unwrap_or_default();
        let Some(rank) = log_rank(level) else {
            return Err(JsonRpcError::new(
                JsonRpcError::INVALID_PARAMS,
                format!("unknown log level `{level}`"),
            ));
        };
        if let Caller::Session(session) = caller {
            session.set_log_level(level);
        }
        let more_verbose = self.upstream_log_rank.lock().is_ok_and(|mut sent| {
            let more = sent.is_none_or(|sent| rank < sent);
            if more {
                *sent = Some(rank);
            }
            more
        });
        if !more_verbose {
            return Ok(json!({}));
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

fn server_info() -> Value {
    json!({ "name": "mcp-gateway", "title": "MCP Gateway", "version": env!("CARGO_PKG_VERSION") })
}

/// The result of a request: built by the gateway, or JSON text (an upstream's, forwarded as it
/// came, perhaps with members appended).
enum Answer {
    Built(Value),
    Text(String),
}

#[cfg(test)]
mod tests;
