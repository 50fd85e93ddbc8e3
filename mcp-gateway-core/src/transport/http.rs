//! The Streamable HTTP transport (client side): every message is a POST to one endpoint; the
//! answer comes back as a JSON body or an SSE stream. In the session era a GET stream carries the
//! server's own notifications, and `Mcp-Session-Id` is echoed on every request.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use sse_stream::SseByteStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{Connected, INBOUND_CAPACITY, MAX_MESSAGE_BYTES, Outbound, TransportEvent};
use crate::error::Error;
use crate::jsonrpc::truncate;
use crate::spec::{HttpSpec, ServerId};

// Header names and values built once: from a `&str` they are parsed and validated (and values
// copied) on every request.
const SESSION_HEADER: HeaderName = HeaderName::from_static("mcp-session-id");
const PROTOCOL_HEADER: HeaderName = HeaderName::from_static("mcp-protocol-version");
const METHOD_HEADER: HeaderName = HeaderName::from_static("mcp-method");
const NAME_HEADER: HeaderName = HeaderName::from_static("mcp-name");
const ACCEPT_BOTH: HeaderValue = HeaderValue::from_static("application/json, text/event-stream");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
const EVENT_STREAM: &str = "text/event-stream";
/// Longest error body quoted in an error message.
const MAX_QUOTED_BODY: usize = 300;
/// Delay bounds for reopening the session-era GET stream.
const GET_RETRY_MIN: Duration = Duration::from_millis(500);
const GET_RETRY_MAX: Duration = Duration::from_secs(30);
/// How long the handshake waits for the server to accept the GET stream.
const GET_OPEN_WAIT: Duration = Duration::from_secs(5);

/// Builds the shared HTTP client used by the HTTP and SSE transports of one upstream.
pub(crate) fn client(
    server: &ServerId,
    spec: &HttpSpec,
    connect_timeout: Duration,
) -> Result<reqwest::Client, Error> {
    let mut headers = HeaderMap::new();
    for (name, value) in &spec.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|err| {
            Error::InvalidSpec(format!("server `{server}`: header name `{name}`: {err}"))
        })?;
        let mut value = HeaderValue::from_str(value.expose()).map_err(|_| {
            Error::InvalidSpec(format!(
                "server `{server}`: header `{name}` has a value that is not valid in HTTP"
            ))
        })?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    reqwest::Client::builder()
        .default_headers(headers)
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .build()
        .map_err(|err| Error::transport_caused(server, "could not build the HTTP client", err))
}

/// Prepares the transport; nothing is sent until the handshake.
pub(crate) fn open(
    server: &ServerId,
    spec: &HttpSpec,
    connect_timeout: Duration,
) -> Result<Connected, Error> {
    let (events, inbound) = mpsc::channel(INBOUND_CAPACITY);
    let transport = StreamableHttp {
        server: server.clone(),
        client: client(server, spec, connect_timeout)?,
        endpoint: reqwest::Url::parse(&spec.url).ok(),
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
    client: reqwest::Client,
    /// The URL, parsed once: reqwest would parse `url` again on every request.
    endpoint: Option<reqwest::Url>,
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

    fn remember_session(&self, response: &Response) {
        if let Some(session) = response.headers().get(&SESSION_HEADER)
            && let Ok(mut slot) = self.session.lock()
        {
            *slot = Some(session.clone());
        }
    }

    /// Reads an SSE body, forwarding each `data` payload, until it ends or the transport closes.
    fn spawn_event_reader(&self, response: Response) {
        let events = self.events.clone();
        let cancel = self.cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = forward_sse(response, &events) => {}
                _ = cancel.cancelled() => {}
            }
        });
    }

    /// Keeps the session-era GET stream open for the server's own notifications; `opened` fires
    /// once the first attempt has an answer (or failed).
    fn spawn_get_stream(&self, opened: oneshot::Sender<()>) {
        let client = self.client.clone();
        let url = self.url.clone();
        let headers = self.common_headers();
        let events = self.events.clone();
        let cancel = self.cancel.clone();
        let server = self.server.clone();
        tokio::spawn(async move {
            let mut opened = Some(opened);
            let mut delay = GET_RETRY_MIN;
            loop {
                let request = client
                    .get(&url)
                    .headers(headers.clone())
                    .header(ACCEPT, EVENT_STREAM)
                    .send();
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
                        tokio::select! {
                            _ = forward_sse(response, &events) => {}
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
    async fn send(&self, message: Value) -> Result<(), Error> {
        self.send_with_headers(message, &[]).await
    }

    async fn send_with_headers(
        &self,
        message: Value,
        headers: &[(String, String)],
    ) -> Result<(), Error> {
        let request = match &self.endpoint {
            Some(endpoint) => self.client.post(endpoint.clone()),
            None => self.client.post(&self.url),
        };
        let mut request = request
            .headers(self.common_headers())
            .header(ACCEPT, ACCEPT_BOTH);
        for (name, value) in routing_headers(&message) {
            request = request.header(name, value);
        }
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let body = serde_json::to_vec(&message).map_err(|err| {
            Error::transport_caused(&self.server, "could not encode message", err)
        })?;
        let response = request
            .header(CONTENT_TYPE, JSON)
            .body(body)
            .send()
            .await
            .map_err(|err| request_error(&self.server, &self.url, err))?;
        self.remember_session(&response);
        let status = response.status();
        if status == StatusCode::ACCEPTED || status == StatusCode::NO_CONTENT {
            return Ok(());
        }
        if status.is_success() && is_event_stream(&response) {
            self.spawn_event_reader(response);
            return Ok(());
        }
        let body = read_limited(response).await.map_err(|err| {
            Error::transport(&self.server, format!("could not read the response: {err}"))
        })?;
        let parsed = serde_json::from_slice::<Value>(&body).ok();
        match parsed {
            Some(value) if status.is_success() => {
                let _ = self.events.send(TransportEvent::Message(value)).await;
                Ok(())
            }
            // A JSON-RPC error for this very request: deliver it as the answer.
            Some(value) if answers(&value, &message) => {
                let _ = self.events.send(TransportEvent::Message(value)).await;
                Ok(())
            }
            _ if self.session().is_some() && session_lost(status, &body) => {
                let reason = format!("the server no longer knows this session (HTTP {status})");
                let _ = self
                    .events
                    .send(TransportEvent::Closed(reason.clone()))
                    .await;
                Err(Error::transport(&self.server, reason))
            }
            _ => Err(Error::transport(
                &self.server,
                format!(
                    "HTTP {status} from {}: {}",
                    self.url,
                    truncate(&String::from_utf8_lossy(&body), MAX_QUOTED_BODY)
                ),
            )),
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
            let ended = self
                .client
                .delete(&self.url)
                .header(SESSION_HEADER, session)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if let Err(err) = ended {
                tracing::debug!(server = %self.server, error = %err, "session DELETE failed");
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

/// The 2026-07-28 routing headers: `Mcp-Method` always, `Mcp-Name` for calls that name a target.
fn routing_headers(message: &Value) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = Vec::new();
    let Some(method) = message.get("method").and_then(Value::as_str) else {
        return headers;
    };
    if let Ok(value) = HeaderValue::from_str(method) {
        headers.push((METHOD_HEADER, value));
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
        headers.push((NAME_HEADER, value));
    }
    headers
}

fn is_event_stream(response: &Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(EVENT_STREAM))
}

/// Whether `reply` is a JSON-RPC response to the request `sent`.
fn answers(reply: &Value, sent: &Value) -> bool {
    match (reply.get("id"), sent.get("id")) {
        (Some(reply_id), Some(sent_id)) => reply_id == sent_id,
        _ => false,
    }
}

/// Forwards every `data` payload of an SSE body as a message.
pub(crate) async fn forward_sse(response: Response, events: &mpsc::Sender<TransportEvent>) {
    let mut stream = SseByteStream::new(response.bytes_stream());
    while let Some(Ok(event)) = stream.next().await {
        let Some(data) = event.data.filter(|data| !data.is_empty()) else {
            continue;
        };
        let event = match serde_json::from_str::<Value>(&data) {
            Ok(value) => TransportEvent::Message(value),
            Err(_) => TransportEvent::Garbage(truncate(&data, 200)),
        };
        if events.send(event).await.is_err() {
            return;
        }
    }
}

/// Reads a body up to [`MAX_MESSAGE_BYTES`].
pub(crate) async fn read_limited(response: Response) -> Result<Bytes, String> {
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|err| err.to_string())?;
        if body.len() + chunk.len() > MAX_MESSAGE_BYTES {
            return Err(format!("body larger than {MAX_MESSAGE_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// A clear message for a failed HTTP request.
pub(crate) fn request_error(server: &ServerId, url: &str, err: reqwest::Error) -> Error {
    let what = if err.is_connect() {
        format!("could not connect to {url}")
    } else if err.is_timeout() {
        format!("request to {url} timed out")
    } else {
        format!("request to {url} failed")
    };
    Error::transport_caused(server, what, err)
}
