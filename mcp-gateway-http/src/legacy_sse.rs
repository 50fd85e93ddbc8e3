//! The legacy HTTP+SSE transport (2024-11-05) for old clients: `GET /sse` opens a stream whose
//! first event names the POST endpoint (`/message?sessionId=…`); every answer and notification
//! then travels on that stream as a `message` event, and POSTs are acknowledged with 202.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use mcp_gateway_core::{Caller, Message, Session};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::AppState;
use crate::streamable::error_body;

/// Messages an SSE connection may hold before producers wait.
const STREAM_CAPACITY: usize = 256;

/// Open legacy connections by id.
#[derive(Default)]
pub(crate) struct Connections {
    open: Mutex<HashMap<String, Arc<Connection>>>,
}

struct Connection {
    stream: mpsc::Sender<Value>,
    session: Mutex<Option<Arc<Session>>>,
}

/// Removes its connection (and session) when the client's stream goes away.
struct Registration {
    state: AppState,
    id: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let connection = self
            .state
            .legacy
            .open
            .lock()
            .ok()
            .and_then(|mut open| open.remove(&self.id));
        let session = connection.and_then(|c| c.session.lock().ok()?.take());
        if let Some(session) = session {
            let server = self.state.server.clone();
            tokio::spawn(async move { server.close_session(session.id()).await });
        }
    }
}

pub(crate) async fn open(State(state): State<AppState>) -> Response {
    let id = mcp_gateway_core::new_session_id();
    let (stream, receiver) = mpsc::channel::<Value>(STREAM_CAPACITY);
    let connection = Arc::new(Connection {
        stream,
        session: Mutex::new(None),
    });
    if let Ok(mut open) = state.legacy.open.lock() {
        open.insert(id.clone(), connection);
    }
    let endpoint = Event::default()
        .event("endpoint")
        .data(format!("/message?sessionId={id}"));
    let registration = Registration {
        state: state.clone(),
        id,
    };
    // The endpoint event first, then every message; the registration lives as long as the stream.
    let messages = futures::stream::unfold(
        (Some(endpoint), receiver, registration),
        |(first, mut receiver, registration)| async move {
            let event = match first {
                Some(first) => first,
                None => {
                    let message = receiver.recv().await?;
                    Event::default().event("message").data(message.to_string())
                }
            };
            Some((
                Ok::<_, std::convert::Infallible>(event),
                (None, receiver, registration),
            ))
        },
    );
    Sse::new(messages)
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
    tokio::spawn(async move { deliver(state, connection, message).await });
    StatusCode::ACCEPTED.into_response()
}

async fn deliver(state: AppState, connection: Arc<Connection>, message: Message) {
    let body = message.value();
    let reply = if body["method"] == "initialize" {
        let id = body["id"].clone();
        match state.server.open_session(body.get("params")) {
            Ok((session, result)) => {
                session.attach_stream(connection.stream.clone());
                if let Ok(mut slot) = connection.session.lock() {
                    *slot = Some(session);
                }
                Some(serde_json::json!({ "jsonrpc": "2.0", "id": id, "result": result }))
            }
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
    if let Some(reply) = reply {
        let _ = connection.stream.send(reply).await;
    }
}
