//! The Streamable HTTP endpoint at `/mcp`.
//!
//! Session era: `initialize` opens a session (`Mcp-Session-Id`), POSTs carry one message each,
//! calls answer on an SSE stream that also carries their progress, logs and relayed requests
//! (or with plain JSON when the answer comes quickly with nothing to stream before it), GET
//! opens the session's stream for everything else, DELETE ends the session.
//!
//! Stateless 2026-07-28: a POST whose `MCP-Protocol-Version` (or `_meta`) names 2026-07-28 is
//! served without a session, after checking the `_meta` keys and that the `Mcp-Method` /
//! `Mcp-Name` headers agree with the body; errors carry the HTTP status the revision assigns.

use std::convert::Infallible;
use std::net::IpAddr;
use std::time::Duration;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use mcp_gateway_core::{
    Caller, Catalog, HEADER_MISMATCH, JsonRpcError, META_PROTOCOL_VERSION, Message, Reply,
    SESSION_VERSIONS, STATELESS_VERSION, UNSUPPORTED_PROTOCOL_VERSION, check_stateless_meta,
    is_stateless_message,
};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::shutdown::{Ending, StreamShutdown, until_shutdown};
use crate::{AppState, PeerAddress, peer_ip};

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
/// Messages a request's SSE stream may hold before the producer waits.
const STREAM_CAPACITY: usize = 64;
/// JSON-RPC code the TypeScript and Python SDKs use for an unknown session.
const SESSION_NOT_FOUND: i64 = -32001;
/// How long a call's answer may take to be sent as plain JSON. A call that ends sooner with
/// nothing to stream before its answer costs one write and no stream machinery; a slower one gets
/// its SSE headers at this point, so clients that bound the wait for response headers (HTTP
/// clients' read timeouts) keep waiting, and keep-alive comments start.
const JSON_ANSWER_WINDOW: Duration = Duration::from_millis(100);

/// A JSON-RPC error response body.
pub(crate) fn error_body(id: &Value, code: i64, message: &str) -> axum::Json<Value> {
    axum::Json(json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } }))
}

fn error_response(status: StatusCode, id: &Value, code: i64, message: &str) -> Response {
    (status, error_body(id, code, message)).into_response()
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn accepts_event_stream(headers: &HeaderMap) -> bool {
    header(headers, header::ACCEPT.as_str())
        .is_some_and(|accept| accept.contains("text/event-stream") || accept.contains("*/*"))
}

/// `params._meta` of a message. Hot-path lookups use `get` chains, not `pointer`, which allocates
/// a string per path segment.
fn params_meta(message: &Value) -> Option<&Value> {
    message.get("params")?.get("_meta")
}

/// Whether a POST is a stateless 2026-07-28 request.
fn is_stateless(headers: &HeaderMap, message: &Value) -> bool {
    header(headers, VERSION_HEADER) == Some(STATELESS_VERSION)
        || (headers.get(SESSION_HEADER).is_none() && is_stateless_message(message))
}

pub(crate) async fn post(
    State(state): State<AppState>,
    shutdown: Option<Extension<StreamShutdown>>,
    peer: PeerAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let shutdown = shutdown.map(|Extension(shutdown)| shutdown);
    let message = match Message::from_slice(&body) {
        Ok(message) => message,
        Err(err) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                &Value::Null,
                -32700,
                &format!("parse error: {err}"),
            );
        }
    };
    let body = message.value();
    if is_stateless(&headers, body) {
        return stateless(state, shutdown, &headers, message).await;
    }
    if body["method"] == "initialize" && body.get("id").is_some() {
        return initialize(&state, peer_ip(peer), body);
    }
    let id = body.get("id").cloned().unwrap_or(Value::Null);
    let Some(session_id) = header(&headers, SESSION_HEADER) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            &id,
            -32600,
            "missing Mcp-Session-Id header: send initialize first",
        );
    };
    let Some(session) = state.server.session(session_id) else {
        return error_response(
            StatusCode::NOT_FOUND,
            &id,
            SESSION_NOT_FOUND,
            "session not found: initialize again",
        );
    };
    if let Some(version) = header(&headers, VERSION_HEADER)
        && !SESSION_VERSIONS.contains(&version)
    {
        return error_response(
            StatusCode::BAD_REQUEST,
            &id,
            -32600,
            &format!("unsupported MCP-Protocol-Version `{version}` in a session"),
        );
    }
    let caller = Caller::Session(session);
    let is_request = body.get("method").is_some() && body.get("id").is_some();
    if !is_request && !body.is_array() {
        state.server.handle(&caller, message, None).await;
        return StatusCode::ACCEPTED.into_response();
    }
    if accepts_event_stream(&headers) && streams(body) {
        return answer_or_stream(&state, shutdown, caller, message).await;
    }
    match state.server.handle(&caller, message, None).await {
        Some(reply) => json_reply(StatusCode::OK, reply.into_json()),
        None => StatusCode::ACCEPTED.into_response(),
    }
}

/// Calls may produce progress, logs and relayed requests, so they answer on a stream.
fn streams(message: &Value) -> bool {
    matches!(
        message["method"].as_str(),
        Some("tools/call" | "prompts/get" | "resources/read" | "completion/complete")
    )
}

fn initialize(state: &AppState, peer: Option<IpAddr>, message: &Value) -> Response {
    let id = message["id"].clone();
    match state.open_session(peer, message.get("params")) {
        Ok((session, result)) => {
            let mut response =
                axum::Json(json!({ "jsonrpc": "2.0", "id": id, "result": result })).into_response();
            if let Ok(value) = HeaderValue::from_str(session.id()) {
                response.headers_mut().insert(SESSION_HEADER, value);
            }
            response
        }
        Err(error) => error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &id,
            error.code,
            &error.message,
        ),
    }
}

/// Runs a call and answers with JSON when its answer is the first thing it produces and comes
/// within [`JSON_ANSWER_WINDOW`]; otherwise streams what it produces, then its answer, as SSE.
/// The call runs inside this handler until it needs a stream (no task, no channel hop for the
/// common quick call), then moves to a task of its own. A stateless client that goes away cancels
/// the call; in the session era a disconnect is not a cancellation, and the call goes on. A
/// stream still open when the server shuts down is cut after a grace.
async fn answer_or_stream(
    state: &AppState,
    shutdown: Option<StreamShutdown>,
    caller: Caller,
    message: Message,
) -> Response {
    let stateless = matches!(caller, Caller::Stateless);
    let (stream, mut receiver) = mpsc::channel(STREAM_CAPACITY);
    let server = state.server.clone();
    let mut call = Call {
        work: Some(Box::pin(async move {
            server.handle(&caller, message, Some(stream)).await
        })),
        detach_on_drop: !stateless,
    };
    let window = tokio::time::sleep(JSON_ANSWER_WINDOW);
    let first = tokio::select! {
        biased;
        reply = std::future::poll_fn(|cx| call.poll_work(cx)) => {
            call.work = None;
            return finished(state, reply, receiver, stateless);
        }
        first = receiver.recv() => first,
        () = window => None,
    };
    // It needs a stream: the call goes on in a task, and its answer, written out, follows what
    // it produced.
    let cancel = CancellationToken::new();
    let (answer, answered) = oneshot::channel::<Reply>();
    if let Some(work) = call.work.take() {
        let work_cancel = cancel.clone();
        tokio::spawn(async move {
            let reply = if stateless {
                tokio::select! {
                    reply = work => reply,
                    _ = work_cancel.cancelled() => None,
                }
            } else {
                work.await
            };
            if let Some(reply) = reply {
                let _ = answer.send(reply);
            }
        });
    }
    let events = futures::stream::iter(first.map(event)).chain(call_events(
        receiver,
        answered,
        cancel.drop_guard(),
    ));
    let events = until_shutdown(events, shutdown, Ending::AfterGrace);
    sse_response(events, state.config.sse_keep_alive)
}

/// The answer to a call that ended inside the JSON window: JSON, or SSE if it produced messages
/// (progress, logs) before its answer.
fn finished(
    state: &AppState,
    reply: Option<Reply>,
    mut produced: mpsc::Receiver<Value>,
    stateless: bool,
) -> Response {
    let Some(reply) = reply else {
        return StatusCode::ACCEPTED.into_response();
    };
    match produced.try_recv() {
        Err(_) => json_reply(answer_status(&reply, stateless), reply.into_json()),
        Ok(first) => {
            // Nothing is left to cancel: the call has ended.
            let rest = message_events(produced, CancellationToken::new().drop_guard());
            let events = futures::stream::iter([event(first)])
                .chain(rest)
                .chain(futures::stream::iter([raw_event(reply.json())]));
            sse_response(events, state.config.sse_keep_alive)
        }
    }
}

/// A call being answered. If its handler is dropped before the call ends (the client left), a
/// session-era call goes on in a task of its own and a stateless one ends with it.
struct Call {
    work: Option<futures::future::BoxFuture<'static, Option<Reply>>>,
    detach_on_drop: bool,
}

impl Call {
    fn poll_work(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Reply>> {
        match self.work.as_mut() {
            Some(work) => work.as_mut().poll(cx),
            None => std::task::Poll::Pending,
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if let (Some(work), true) = (self.work.take(), self.detach_on_drop)
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(work);
        }
    }
}

fn sse_response(
    events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
    keep_alive: Duration,
) -> Response {
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(keep_alive))
        .into_response()
}

/// A long-lived SSE response of JSON-RPC messages, ended when the server shuts down.
fn sse(
    receiver: mpsc::Receiver<Value>,
    shutdown: Option<StreamShutdown>,
    keep_alive: Duration,
) -> Response {
    let events = message_events(receiver, CancellationToken::new().drop_guard());
    sse_response(until_shutdown(events, shutdown, Ending::Now), keep_alive)
}

fn message_events(
    receiver: mpsc::Receiver<Value>,
    guard: DropGuard,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold((receiver, guard), |(mut receiver, guard)| async move {
        let message = receiver.recv().await?;
        Some((event(message), (receiver, guard)))
    })
}

/// What a call produces, then its answer (as the server wrote it out), as SSE events; the
/// stream ends after the answer, or when the call ends without one. Everything the call produced
/// was queued before its answer, and queued messages go first. `guard` is dropped with the
/// stream.
fn call_events(
    produced: mpsc::Receiver<Value>,
    answered: oneshot::Receiver<Reply>,
    guard: DropGuard,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(Some((produced, answered, guard)), |state| async move {
        let (mut produced, mut answered, guard) = state?;
        tokio::select! {
            biased;
            Some(message) = produced.recv() => {
                Some((event(message), Some((produced, answered, guard))))
            }
            reply = &mut answered => reply.ok().map(|reply| (raw_event(reply.json()), None)),
        }
    })
}

/// A reply the server wrote out as an SSE `message` event.
fn raw_event(reply: &str) -> Result<Event, Infallible> {
    Ok(Event::default().event("message").data(reply))
}

/// One JSON-RPC message as an SSE `message` event.
fn event(message: Value) -> Result<Event, Infallible> {
    // `to_string` through serde_json's writer, not `Display` (the same text, but `Display` goes
    // through the formatting machinery for every string piece).
    let data = serde_json::to_string(&message).unwrap_or_default();
    Ok(Event::default().event("message").data(data))
}

pub(crate) async fn get(
    State(state): State<AppState>,
    shutdown: Option<Extension<StreamShutdown>>,
    headers: HeaderMap,
) -> Response {
    if header(&headers, VERSION_HEADER) == Some(STATELESS_VERSION) {
        return error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &Value::Null,
            -32600,
            "2026-07-28 has no GET stream; use subscriptions/listen",
        );
    }
    if !accepts_event_stream(&headers) {
        return error_response(
            StatusCode::NOT_ACCEPTABLE,
            &Value::Null,
            -32600,
            "GET needs Accept: text/event-stream",
        );
    }
    let Some(session_id) = header(&headers, SESSION_HEADER) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            &Value::Null,
            -32600,
            "missing Mcp-Session-Id header",
        );
    };
    let Some(session) = state.server.session(session_id) else {
        return error_response(
            StatusCode::NOT_FOUND,
            &Value::Null,
            SESSION_NOT_FOUND,
            "session not found",
        );
    };
    let (stream, receiver) = mpsc::channel(STREAM_CAPACITY);
    session.attach_stream(stream);
    sse(
        receiver,
        shutdown.map(|Extension(shutdown)| shutdown),
        state.config.sse_keep_alive,
    )
}

pub(crate) async fn delete(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(session_id) = header(&headers, SESSION_HEADER) else {
        return error_response(
            StatusCode::BAD_REQUEST,
            &Value::Null,
            -32600,
            "missing Mcp-Session-Id header",
        );
    };
    if state.server.close_session(session_id).await {
        StatusCode::OK.into_response()
    } else {
        error_response(
            StatusCode::NOT_FOUND,
            &Value::Null,
            SESSION_NOT_FOUND,
            "session not found",
        )
    }
}

/// Serves one stateless 2026-07-28 request.
async fn stateless(
    state: AppState,
    shutdown: Option<StreamShutdown>,
    headers: &HeaderMap,
    message: Message,
) -> Response {
    let body = message.value();
    let id = body.get("id").cloned().unwrap_or(Value::Null);
    let checked = check_stateless(headers, body)
        .and_then(|()| check_param_headers(headers, &message, &state.server.gateway().catalog()));
    if let Err(error) = checked {
        let body = json!({ "jsonrpc": "2.0", "id": id, "error": error });
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    if body.get("id").is_none() {
        state.server.handle(&Caller::Stateless, message, None).await;
        return StatusCode::ACCEPTED.into_response();
    }
    if body["method"] == "subscriptions/listen" {
        let (stream, receiver) = mpsc::channel(STREAM_CAPACITY);
        state.server.listen(id, body.get("params"), stream).await;
        return sse(receiver, shutdown, state.config.sse_keep_alive);
    }
    let wants_progress = params_meta(body).is_some_and(|m| m.get("progressToken").is_some());
    if wants_progress && accepts_event_stream(headers) {
        return answer_or_stream(&state, shutdown, Caller::Stateless, message).await;
    }
    let Some(reply) = state.server.handle(&Caller::Stateless, message, None).await else {
        return StatusCode::ACCEPTED.into_response();
    };
    json_reply(answer_status(&reply, true), reply.into_json())
}

/// A reply the server wrote out, sent as it is.
fn json_reply(status: StatusCode, reply: String) -> Response {
    let body = Bytes::from(reply);
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The HTTP status of an answer sent as JSON: 200, except that the stateless revision gives some
/// errors their own status.
fn answer_status(reply: &Reply, stateless: bool) -> StatusCode {
    if !stateless {
        return StatusCode::OK;
    }
    let code = reply.error_code();
    match code {
        Some(-32601) => StatusCode::NOT_FOUND,
        Some(-32600 | -32602 | HEADER_MISMATCH | -32021 | UNSUPPORTED_PROTOCOL_VERSION) => {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::OK,
    }
}

/// SEP-2243 custom headers: a tool argument whose schema carries `x-mcp-header: X` must also
/// arrive as the header `Mcp-Param-X`, literally or as `=?base64?…?=`, with the same value.
fn check_param_headers(
    headers: &HeaderMap,
    message: &Message,
    catalog: &Catalog,
) -> Result<(), JsonRpcError> {
    let body = message.value();
    if body["method"] != "tools/call" {
        return Ok(());
    }
    let Some(tool) = body["params"]["name"]
        .as_str()
        .and_then(|name| catalog.tool(name))
    else {
        return Ok(());
    };
    let Some(properties) = tool.definition["inputSchema"]["properties"].as_object() else {
        return Ok(());
    };
    let headed: Vec<(&String, &str)> = properties
        .iter()
        .filter_map(|(parameter, schema)| Some((parameter, schema["x-mcp-header"].as_str()?)))
        .collect();
    if headed.is_empty() {
        return Ok(());
    }
    // Arguments held as text are parsed only for a tool that has such parameters.
    let arguments = message.arguments();
    for (parameter, suffix) in headed {
        let Some(argument) = arguments.get(parameter).filter(|a| !a.is_null()) else {
            continue;
        };
        let expected = match argument {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        let name = format!("mcp-param-{suffix}");
        let Some(raw) = header(headers, &name) else {
            return Err(JsonRpcError::new(
                HEADER_MISMATCH,
                format!(
                    "argument `{parameter}` must also be sent as the header Mcp-Param-{suffix}"
                ),
            ));
        };
        let value = decode_param(raw).ok_or_else(|| {
            JsonRpcError::new(
                HEADER_MISMATCH,
                format!("header Mcp-Param-{suffix} is not valid Base64"),
            )
        })?;
        if value != expected {
            return Err(JsonRpcError::new(
                HEADER_MISMATCH,
                format!("header Mcp-Param-{suffix} does not match argument `{parameter}`"),
            ));
        }
    }
    Ok(())
}

/// A header value as sent: `=?base64?…?=` is strict, padded Base64 of UTF-8; anything else is the
/// value itself.
fn decode_param(raw: &str) -> Option<String> {
    use base64::Engine;
    match raw
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok()),
        None => Some(raw.to_owned()),
    }
}

/// The 2026-07-28 checks: required `_meta`, a version the gateway speaks, and headers that agree
/// with the body. Every failure is answered with HTTP 400.
fn check_stateless(headers: &HeaderMap, message: &Value) -> Result<(), JsonRpcError> {
    let Some(method) = message["method"].as_str() else {
        return Err(JsonRpcError::new(
            JsonRpcError::INVALID_REQUEST,
            "a 2026-07-28 request must be a single JSON-RPC request or notification",
        ));
    };
    let mismatch = |message: String| Err(JsonRpcError::new(HEADER_MISMATCH, message));
    // Headers that contradict the body are a mismatch before anything else is judged.
    let version = params_meta(message)
        .and_then(|m| m.get(META_PROTOCOL_VERSION))
        .and_then(Value::as_str);
    let header_version = header(headers, VERSION_HEADER);
    if let Some(version) = version
        && header_version != Some(version)
    {
        return mismatch(format!(
            "MCP-Protocol-Version header {header_version:?} does not match _meta version `{version}`"
        ));
    }
    check_stateless_meta(message)?;
    let header_method = header(headers, "mcp-method");
    if header_method != Some(method) {
        return mismatch(format!(
            "Mcp-Method header {header_method:?} does not match the body's method `{method}`"
        ));
    }
    let params = message.get("params");
    let target = match method {
        "tools/call" | "prompts/get" => params.and_then(|p| p.get("name")),
        "resources/read" => params.and_then(|p| p.get("uri")),
        _ => None,
    };
    if let Some(target) = target.and_then(Value::as_str) {
        let header_name = header(headers, "mcp-name");
        if header_name != Some(target) {
            return mismatch(format!(
                "Mcp-Name header {header_name:?} does not match the body's `{target}`"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
