//! The Streamable HTTP transport (client side): every message is a POST to one endpoint; the
//! answer comes back as a JSON body or an SSE stream. In the session era a GET stream carries the
//! server's own notifications, and `Mcp-Session-Id` is echoed on every request.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::FutureExt;
use hyper::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Response, StatusCode, Uri};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::event_stream::{EventError, EventStream};
use super::http_client::{Body, HttpClient, parse_uri, read_limited, request_error, status_error};
use super::{Connected, INBOUND_CAPACITY, Outbound, TransportEvent};
use crate::error::Error;
use crate::jsonrpc::{self, Message, Outcome, truncate};
use crate::spec::{HttpSpec, ServerId};

// Header names and values built once: from a `&str` they are parsed and validated (and values
// copied) on every request.
const SESSION_HEADER: HeaderName = HeaderName::from_static("mcp-session-id");
const PROTOCOL_HEADER: HeaderName = HeaderName::from_static("mcp-protocol-version");
const METHOD_HEADER: HeaderName = HeaderName::from_static("mcp-method");
const NAME_HEADER: HeaderName = HeaderName::from_static("mcp-name");
const ACCEPT_BOTH: HeaderValue = HeaderValue::from_static("application/json, text/event-stream");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
const EVENT_STREAM: HeaderValue = HeaderValue::from_static("text/event-stream");
/// Delay bounds for reopening the session-era GET stream.
const GET_RETRY_MIN: Duration = Duration::from_millis(500);
const GET_RETRY_MAX: Duration = Duration::from_secs(30);
/// How long the handshake waits for the server to accept the GET stream.
const GET_OPEN_WAIT: Duration = Duration::from_secs(5);
/// How long closing waits for the server to acknowledge the session's `DELETE`.
const DELETE_TIMEOUT: Duration = Duration::from_secs(2);

/// Prepares the transport; nothing is sent until the handshake.
pub(crate) fn open(
    server: &ServerId,
    spec: &HttpSpec,
    connect_timeout: Duration,
) -> Result<Connected, Error> {
    let (events, inbound) = mpsc::channel(INBOUND_CAPACITY);
    let transport = StreamableHttp {
        server: server.clone(),
        client: HttpClient::new(server, spec, connect_timeout)?,
        endpoint: parse_uri(server, &spec.url)?,
        url: spec.url.clone(),
        session: Mutex::new(None),
        protocol_version: Mutex::new(None),
        events,
        cancel: CancellationToken::new(),
    };
    Ok(Connected {
        outbound: Box::new(transport),
        inbound,
    })
}

struct StreamableHttp {
    server: ServerId,
    client: HttpClient,
    /// The URL, parsed once.
    endpoint: Uri,
    url: String,
    session: Mutex<Option<HeaderValue>>,
    protocol_version: Mutex<Option<HeaderValue>>,
    events: mpsc::Sender<TransportEvent>,
    /// Stops the SSE readers when the connection closes.
    cancel: CancellationToken,
}

impl StreamableHttp {
    fn session(&self) -> Option<HeaderValue> {
        self.session.lock().ok().and_then(|s| s.clone())
    }

    fn common_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(session) = self.session() {
            headers.insert(SESSION_HEADER, session);
        }
        if let Some(version) = self.protocol_version.lock().ok().and_then(|v| v.clone()) {
            headers.insert(PROTOCOL_HEADER, version);
        }
        headers
    }

    fn remember_session(&self, response: &Response<Body>) {
        if let Some(session) = response.headers().get(&SESSION_HEADER)
            && let Ok(mut slot) = self.session.lock()
        {
            *slot = Some(session.clone());
        }
    }

    /// Reads the rest of an SSE body, forwarding each message, until it ends or the transport
    /// closes.
    fn spawn_event_reader(&self, mut stream: EventStream) {
        let events = self.events.clone();
        let cancel = self.cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = forward_sse(&mut stream, &events) => {}
                _ = cancel.cancelled() => {}
            }
        });
    }

    /// Reads the SSE answer to the request `sent`. When its first message is the answer, returns
    /// it; what follows (normally only the stream's end, which lets the connection be reused) is
    /// left to a reader task only if it has not arrived yet. Otherwise every message, the first
    /// included, goes to the dispatcher in order. A stream that fails before its first message
    /// (an event past the size limit) fails the request.
    async fn read_answer(&self, body: Body, sent: &Value) -> Result<Option<Outcome>, Error> {
        let mut stream = EventStream::new(body);
        let first = tokio::select! {
            first = next_data(&mut stream) => first,
            _ = self.cancel.cancelled() => return Ok(None),
        };
        let first = match first {
            Some(Ok(first)) => first,
            Some(Err(err)) => {
                return Err(Error::transport_caused(
                    &self.server,
                    "could not read the answer",
                    err,
                ));
            }
            None => return Ok(None),
        };
        let Some(answer) = answer_to(&first, sent) else {
            let _ = self.events.send(message_event(&first)).await;
            self.spawn_event_reader(stream);
            return Ok(None);
        };
        match next_message(&mut stream).now_or_never() {
            Some(None) => {}
            Some(Some(event)) => {
                let _ = self.events.send(event).await;
                self.spawn_event_reader(stream);
            }
            None => self.spawn_event_reader(stream),
        }
        Ok(Some(answer))
    }

    /// Keeps the session-era GET stream open for the server's own notifications; `opened` fires
    /// once the first attempt has an answer (or failed).
    fn spawn_get_stream(&self, opened: oneshot::Sender<()>) {
        let client = self.client.clone();
        let endpoint = self.endpoint.clone();
        let mut headers = self.common_headers();
        headers.insert(ACCEPT, EVENT_STREAM);
        let events = self.events.clone();
        let cancel = self.cancel.clone();
        let server = self.server.clone();
        tokio::spawn(async move {
            let mut opened = Some(opened);
            let mut delay = GET_RETRY_MIN;
            loop {
                let request = client.send(Method::GET, &endpoint, headers.clone(), Bytes::new());
                let response = tokio::select! {
                    response = request => response,
                    _ = cancel.cancelled() => return,
                };
                if let Some(opened) = opened.take() {
                    let _ = opened.send(());
                }
                match response {
                    Ok(response) if response.status().is_success() => {
                        delay = GET_RETRY_MIN;
                        let mut stream = EventStream::new(response.into_body());
                        tokio::select! {
                            _ = forward_sse(&mut stream, &events) => {}
                            _ = cancel.cancelled() => return,
                        }
                    }
                    // 405: the server offers no GET stream; 404: the session is gone.
                    Ok(response) => {
                        tracing::debug!(server = %server, status = %response.status(), "no GET stream");
                        return;
                    }
                    Err(err) => {
                        tracing::debug!(server = %server, error = %err, "GET stream failed")
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = cancel.cancelled() => return,
                }
                delay = (delay * 2).min(GET_RETRY_MAX);
            }
        });
    }
}

#[async_trait]
impl Outbound for StreamableHttp {
    async fn send(&self, message: Message) -> Result<(), Error> {
        // What is sent this way (notifications, replies to the server's requests) is not a
        // request, so nothing can answer it and nothing waits for an answer.
        self.send_request(message, &[]).await.map(|_| ())
    }

    async fn send_request(
        &self,
        message: Message,
        headers: &[(String, String)],
    ) -> Result<Option<Outcome>, Error> {
        let mut request_headers = self.common_headers();
        request_headers.insert(ACCEPT, ACCEPT_BOTH);
        request_headers.insert(CONTENT_TYPE, JSON);
        routing_headers(message.value(), &mut request_headers);
        for (name, value) in headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .ok()
                .zip(HeaderValue::from_str(value).ok())
                .ok_or_else(|| {
                    Error::transport(
                        &self.server,
                        format!("`{name}: {value}` cannot be sent as an HTTP header"),
                    )
                })?;
            request_headers.insert(header.0, header.1);
        }
        let body = serde_json::to_vec(&message).map_err(|err| {
            Error::transport_caused(&self.server, "could not encode message", err)
        })?;
        let response = self
            .client
            .send(Method::POST, &self.endpoint, request_headers, body.into())
            .await
            .map_err(|err| request_error(&self.server, &self.url, err))?;
        self.remember_session(&response);
        let status = response.status();
        if status == StatusCode::ACCEPTED || status == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        if status.is_success() && is_event_stream(&response) {
            return self
                .read_answer(response.into_body(), message.value())
                .await;
        }
        let body = read_limited(response.into_body()).await.map_err(|err| {
            Error::transport(&self.server, format!("could not read the response: {err}"))
        })?;
        // The answer, or (whatever the status) a JSON-RPC error for this very request.
        let text = std::str::from_utf8(&body).ok();
        if let Some(outcome) = text.and_then(|text| answer_to(text, message.value())) {
            return Ok(Some(outcome));
        }
        match text.and_then(|text| serde_json::from_str::<Box<RawValue>>(text).ok()) {
            Some(value) if status.is_success() => {
                let _ = self.events.send(TransportEvent::Message(value)).await;
                Ok(None)
            }
            _ if self.session().is_some() && session_lost(status, &body) => {
                let reason = format!("the server no longer knows this session (HTTP {status})");
                let _ = self
                    .events
                    .send(TransportEvent::Closed(reason.clone()))
                    .await;
                Err(Error::transport(&self.server, reason))
            }
            _ => Err(status_error(&self.server, &self.url, status, &body)),
        }
    }

    fn set_protocol_version(&self, version: Option<&str>) {
        if let Ok(mut slot) = self.protocol_version.lock() {
            *slot = version.and_then(|v| HeaderValue::from_str(v).ok());
        }
    }

    async fn handshake_complete(&self) {
        if self.session().is_some() {
            let (opened, first_open) = oneshot::channel();
            self.spawn_get_stream(opened);
            let _ = tokio::time::timeout(GET_OPEN_WAIT, first_open).await;
        }
    }

    async fn close(&self) {
        self.cancel.cancel();
        let session = self.session.lock().ok().and_then(|mut s| s.take());
        if let Some(session) = session {
            let mut headers = HeaderMap::new();
            headers.insert(SESSION_HEADER, session);
            let ended = self
                .client
                .send(Method::DELETE, &self.endpoint, headers, Bytes::new());
            match tokio::time::timeout(DELETE_TIMEOUT, ended).await {
                Ok(Ok(_)) => {}
                Ok(Err(err)) => {
                    tracing::debug!(server = %self.server, error = %err, "session DELETE failed")
                }
                Err(_) => tracing::debug!(server = %self.server, "session DELETE timed out"),
            }
        }
    }
}

/// Whether an error answer means the server forgot the session: 404 is the spec's signal, and
/// some servers (the TypeScript SDK's among them) answer 400 naming the session instead, which a
/// gateway must treat the same or it keeps sending a dead session id forever.
fn session_lost(status: StatusCode, body: &[u8]) -> bool {
    status == StatusCode::NOT_FOUND
        || (status == StatusCode::BAD_REQUEST
            && String::from_utf8_lossy(body)
                .to_ascii_lowercase()
                .contains("session"))
}

/// Adds the 2026-07-28 routing headers: `Mcp-Method` always, `Mcp-Name` for calls that name a
/// target.
fn routing_headers(message: &Value, headers: &mut HeaderMap) {
    let Some(method) = message.get("method").and_then(Value::as_str) else {
        return;
    };
    if let Ok(value) = HeaderValue::from_str(method) {
        headers.insert(METHOD_HEADER, value);
    }
    // `get` chains, not `pointer`: a JSON pointer allocates a string per path segment.
    let params = message.get("params");
    let target = match method {
        "tools/call" | "prompts/get" => params.and_then(|p| p.get("name")),
        "resources/read" => params.and_then(|p| p.get("uri")),
        _ => None,
    };
    if let Some(value) = target
        .and_then(Value::as_str)
        .and_then(|t| HeaderValue::from_str(t).ok())
    {
        headers.insert(NAME_HEADER, value);
    }
}

fn is_event_stream(response: &Response<Body>) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(EVENT_STREAM.as_bytes()))
}

/// The outcome `reply` carries if it is the response to the request `sent`.
fn answer_to(reply: &str, sent: &Value) -> Option<Outcome> {
    jsonrpc::answer_to(reply, sent.get("id")?)
}

/// Forwards every message of an SSE body until it ends.
async fn forward_sse(stream: &mut EventStream, events: &mpsc::Sender<TransportEvent>) {
    while let Some(event) = next_message(stream).await {
        if events.send(event).await.is_err() {
            return;
        }
    }
}

/// The next `data` payload of an SSE body, parsed; `None` once the body ends or fails. An event
/// past the size limit is reported (as garbage) before the stream is given up.
async fn next_message(stream: &mut EventStream) -> Option<TransportEvent> {
    match next_data(stream).await? {
        Ok(data) => Some(message_event(&data)),
        Err(err @ EventError::TooLarge(_)) => Some(TransportEvent::Garbage(format!(
            "{err}; the rest of its stream was dropped"
        ))),
        Err(err @ EventError::Failed(_)) => {
            tracing::debug!(error = %err, "an upstream's event stream ended");
            None
        }
    }
}

/// The next non-empty `data` payload of an SSE body; `None` once the body ends.
async fn next_data(stream: &mut EventStream) -> Option<Result<String, EventError>> {
    loop {
        match stream.next().await? {
            Ok(event) => {
                if let Some(data) = event.data.filter(|data| !data.is_empty()) {
                    return Some(Ok(data));
                }
            }
            Err(err) => return Some(Err(err)),
        }
    }
}

/// An SSE `data` payload as a message, or as garbage when it is not JSON.
fn message_event(data: &str) -> TransportEvent {
    match serde_json::from_str::<Box<RawValue>>(data) {
        Ok(value) => TransportEvent::Message(value),
        Err(_) => TransportEvent::Garbage(truncate(data, 200)),
    }
}
