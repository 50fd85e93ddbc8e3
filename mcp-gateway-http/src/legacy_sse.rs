//! The legacy HTTP+SSE transport (2024-11-05) for old clients: `GET /sse` opens a stream whose
//! first event names the POST endpoint (`/message?sessionId=…`); every answer and notification
//! then travels on that stream as a `message` event, and POSTs are acknowledged with 202. A
//! connection has one session (one `initialize`) and a bounded number of POSTs in flight; a
//! client that stops reading its stream is refused (429), then dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use mcp_gateway_core::{Caller, JsonRpcError, McpServer, Message, Session};
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::shutdown::{Ending, StreamShutdown, until_shutdown};
use crate::streamable::error_body;
use crate::{AppState, PeerAddress, peer_ip};

/// Messages an SSE connection may hold before producers wait.
const STREAM_CAPACITY: usize = 256;
/// POSTed messages one connection may have in flight (being handled, or their answer waiting
/// for room in the stream); beyond it POSTs are refused, so a client that does not read its
/// stream cannot pile up work.
const MAX_DELIVERIES: usize = 32;
/// How long an answer may wait for room in the stream. A stream still full after it belongs to
/// a client that stopped reading: the connection is dropped with its session.
const SEND_DEADLINE: Duration = Duration::from_secs(10);

/// Open legacy connections by id.
#[derive(Default)]
pub(crate) struct Connections {
    open: Mutex<HashMap<String, Arc<Connection>>>,
}

impl Connections {
    /// Ends connection `id` if it is open: its stream stops, everything waiting to send into it
    /// fails at once, and its session is closed.
    fn close(&self, id: &str, server: &Arc<McpServer>) {
        let connection = self.open.lock().ok().and_then(|mut open| open.remove(id));
        let Some(connection) = connection else {
            return;
        };
        // Dropping the receiver here, not when the response body is dropped, matters for a
        // client that stopped reading: its body is no longer polled and would keep it forever.
        if let Ok(mut receiver) = connection.receiver.lock() {
            receiver.take();
        }
        let session = connection.session.lock().ok().and_then(|mut s| s.take());
        if let Some(session) = session {
            let server = server.clone();
            tokio::spawn(async move { server.close_session(session.id()).await });
        }
    }
}

struct Connection {
    id: String,
    stream: mpsc::Sender<Value>,
    /// The stream's receiving end, read by the response body; `None` once the connection is
    /// closed.
    receiver: Mutex<Option<mpsc::Receiver<Value>>>,
    session: Mutex<Option<Arc<Session>>>,
    deliveries: Arc<Semaphore>,
    /// The client's address, for the per-address session cap.
    peer: Option<IpAddr>,
}

impl Connection {
    /// The next message for the client; `None` once the connection is closed.
    fn poll_message(&self, cx: &mut std::task::Context<'_>) -> Poll<Option<Value>> {
        match self.receiver.lock().ok().as_deref_mut() {
            Some(Some(receiver)) => receiver.poll_recv(cx),
            _ => Poll::Ready(None),
        }
    }
}

/// Closes its connection (and session) when the client's stream goes away.
struct Registration {
    state: AppState,
    id: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.state.legacy.close(&self.id, &self.state.server);
    }
}

pub(crate) async fn open(
    State(state): State<AppState>,
    shutdown: Option<Extension<StreamShutdown>>,
    peer: PeerAddress,
) -> Response {
    let id = mcp_gateway_core::new_session_id();
    let (stream, receiver) = mpsc::channel::<Value>(STREAM_CAPACITY);
    let connection = Arc::new(Connection {
        id: id.clone(),
        stream,
        receiver: Mutex::new(Some(receiver)),
        session: Mutex::new(None),
        deliveries: Arc::new(Semaphore::new(MAX_DELIVERIES)),
        peer: peer_ip(peer),
    });
    if let Ok(mut open) = state.legacy.open.lock() {
        open.insert(id.clone(), connection.clone());
    }
    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("/message?sessionId={id}"));
    let registration = Registration {
        state: state.clone(),
        id,
    };
    // The endpoint event first, then every message; the registration lives as long as the stream.
    let messages = futures::stream::poll_fn(move |cx| {
        let _registration = &registration;
        connection
            .poll_message(cx)
            .map(|message| Some(Event::default().event("message").data(message?.to_string())))
    });
    let events = futures::stream::iter([endpoint])
        .chain(messages)
        .map(Ok::<_, std::convert::Infallible>);
    let events = until_shutdown(
        events,
        shutdown.map(|Extension(shutdown)| shutdown),
        Ending::Now,
    );
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(state.config.sse_keep_alive))
        .into_response()
}

#[derive(serde::Deserialize)]
pub(crate) struct MessageQuery {
    #[serde(rename = "sessionId")]
    session_id: String,
}

pub(crate) async fn message(
    State(state): State<AppState>,
    Query(query): Query<MessageQuery>,
    body: Bytes,
) -> Response {
    let connection = state
        .legacy
        .open
        .lock()
        .ok()
        .and_then(|open| open.get(&query.session_id).cloned());
    let Some(connection) = connection else {
        return (
            StatusCode::NOT_FOUND,
            error_body(&Value::Null, -32001, "unknown sessionId: open /sse again"),
        )
            .into_response();
    };
    let message = match Message::from_slice(&body) {
        Ok(message) => message,
        Err(err) => {
            return (
                StatusCode::BAD_REQUEST,
                error_body(&Value::Null, -32700, &format!("parse error: {err}")),
            )
                .into_response();
        }
    };
    // The permit is taken here, not in the task, so that the tasks of one connection are
    // bounded however fast its client POSTs.
    let Ok(permit) = connection.deliveries.clone().try_acquire_owned() else {
        let id = message.value().get("id").cloned().unwrap_or(Value::Null);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            error_body(
                &id,
                -32000,
                "too many messages in flight on this connection: read the /sse stream",
            ),
        )
            .into_response();
    };
    tokio::spawn(async move { deliver(state, connection, message, permit).await });
    StatusCode::ACCEPTED.into_response()
}

async fn deliver(
    state: AppState,
    connection: Arc<Connection>,
    message: Message,
    _permit: OwnedSemaphorePermit,
) {
    let body = message.value();
    let reply = if body["method"] == "initialize" {
        let id = body["id"].clone();
        match initialize(&state, &connection, body.get("params")) {
            Ok(result) => Some(serde_json::json!({ "jsonrpc": "2.0", "id": id, "result": result })),
            Err(error) => Some(serde_json::json!({ "jsonrpc": "2.0", "id": id, "error": error })),
        }
    } else {
        let session = connection.session.lock().ok().and_then(|s| s.clone());
        let id = body.get("id").cloned();
        match session {
            Some(session) => {
                state
                    .server
                    .handle(&Caller::Session(session), message, Some(connection.stream.clone()))
                    .await
                    .map(|reply| reply.to_value())
            }
            None => id.map(|id| {
                serde_json::json!({ "jsonrpc": "2.0", "id": id, "error": { "code": -32600, "message": "send initialize first" } })
            }),
        }
    };
    let Some(reply) = reply else { return };
    if tokio::time::timeout(SEND_DEADLINE, connection.stream.send(reply))
        .await
        .is_err()
    {
        tracing::warn!(connection = %connection.id, "legacy SSE client stopped reading its stream; dropping the connection");
        state.legacy.close(&connection.id, &state.server);
    }
}

/// Opens the connection's session. A connection has one: a second `initialize` is refused (the
/// protocol initializes once), and so is one on a connection already closed, whose session
/// nobody would close.
fn initialize(
    state: &AppState,
    connection: &Connection,
    params: Option<&Value>,
) -> Result<Value, JsonRpcError> {
    let mut slot = connection
        .session
        .lock()
        .map_err(|_| JsonRpcError::new(JsonRpcError::INTERNAL_ERROR, "connection state lost"))?;
    if slot.is_some() {
        return Err(JsonRpcError::new(
            JsonRpcError::INVALID_REQUEST,
            "this connection is already initialized: open /sse again for a new session",
        ));
    }
    if connection.receiver.lock().map_or(true, |r| r.is_none()) {
        return Err(JsonRpcError::new(
            JsonRpcError::INVALID_REQUEST,
            "this connection is closed: open /sse again",
        ));
    }
    let (session, result) = state.open_session(connection.peer, params)?;
    session.attach_stream(connection.stream.clone());
    *slot = Some(session);
    Ok(result)
}
