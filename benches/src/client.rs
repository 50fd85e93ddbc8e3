//! A minimal Streamable HTTP MCP client over raw hyper, for load generation.
//!
//! One [`McpClient`] owns one HTTP/1.1 keep-alive connection (reopened if the server closes it)
//! and, in the session era, one MCP session. It speaks both protocol eras:
//!
//! * **session** (2025-11-25): `initialize` + `notifications/initialized` once, then requests
//!   carrying `Mcp-Session-Id` and `MCP-Protocol-Version`;
//! * **stateless** (2026-07-28): no handshake and no `server/discover`; every request carries
//!   `_meta` with the protocol version and client capabilities, and the `MCP-Protocol-Version`,
//!   `Mcp-Method` and `Mcp-Name` headers.
//!
//! Answers are read whole and parsed as JSON or SSE (whichever the `Content-Type` says), taking
//! the response whose id matches the request. The client does as little as it can per call, so
//! that a benchmark measures the server rather than the client: request bodies are formatted from
//! pre-serialised parts.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

/// The stateless protocol revision.
pub const STATELESS_VERSION: &str = "2026-07-28";
/// The session-era version the client offers in `initialize`.
pub const SESSION_VERSION: &str = "2025-11-25";

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
const ACCEPT_BOTH: &str = "application/json, text/event-stream";
/// Longest error body quoted in an error.
const MAX_QUOTED: usize = 200;

/// The protocol era a client speaks.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Era {
    /// `initialize` and a session (2025-11-25).
    Session,
    /// Stateless 2026-07-28 requests.
    Stateless,
}

impl fmt::Display for Era {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Era::Session => "session",
            Era::Stateless => "stateless",
        })
    }
}

/// Why a request failed.
#[derive(Debug)]
pub enum ClientError {
    /// The TCP connection could not be opened.
    Connect(std::io::Error),
    /// HTTP failed (the connection broke, the server sent garbage).
    Http(hyper::Error),
    /// The server answered with a status that is not a success.
    Status(StatusCode, String),
    /// A JSON-RPC error answer.
    Rpc {
        /// The error code.
        code: i64,
        /// The error message.
        message: String,
    },
    /// A tool result with `isError: true`.
    Tool(String),
    /// The answer could not be read as the response to this request.
    BadAnswer(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Connect(err) => write!(f, "could not connect: {err}"),
            ClientError::Http(err) => write!(f, "http failed: {err}"),
            ClientError::Status(status, body) => write!(f, "HTTP {status}: {body}"),
            ClientError::Rpc { code, message } => write!(f, "JSON-RPC error {code}: {message}"),
            ClientError::Tool(text) => write!(f, "the tool reported an error: {text}"),
            ClientError::BadAnswer(why) => write!(f, "bad answer: {why}"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Connect(err) => Some(err),
            ClientError::Http(err) => Some(err),
            _ => None,
        }
    }
}

impl From<hyper::Error> for ClientError {
    fn from(err: hyper::Error) -> Self {
        ClientError::Http(err)
    }
}

/// Where an MCP endpoint is: `http://HOST:PORT/PATH`.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The socket address to connect to.
    pub addr: SocketAddr,
    /// `HOST:PORT`, sent as the `Host` header.
    pub authority: String,
    /// The path, `/mcp` usually.
    pub path: String,
}

impl Endpoint {
    /// Parses a plain-HTTP URL (no TLS: benchmarks run on loopback).
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("`{url}` is not an http:// URL"))?;
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, "/"),
        };
        let addr = authority
            .to_socket_addrs()
            .map_err(|err| format!("`{authority}`: {err}"))?
            .next()
            .ok_or_else(|| format!("`{authority}` resolves to no address"))?;
        Ok(Self {
            addr,
            authority: authority.to_owned(),
            path: path.to_owned(),
        })
    }
}

/// One HTTP answer, read whole.
struct Answer {
    status: StatusCode,
    content_type: Option<HeaderValue>,
    session: Option<HeaderValue>,
    body: Bytes,
}

/// An MCP client on one keep-alive connection.
pub struct McpClient {
    endpoint: Endpoint,
    era: Era,
    authority: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
    session: Option<HeaderValue>,
    next_id: u64,
    /// The stateless `_meta` object, serialised once.
    meta: String,
}

impl McpClient {
    /// Opens the connection; in the session era also performs the handshake.
    pub async fn connect(endpoint: Endpoint, era: Era) -> Result<Self, ClientError> {
        let authority = HeaderValue::from_str(&endpoint.authority)
            .map_err(|_| ClientError::BadAnswer("the host is not a valid header".into()))?;
        let meta = stateless_meta();
        let mut client = Self {
            endpoint,
            era,
            authority,
            sender: None,
            session: None,
            next_id: 1,
            meta,
        };
        client.open().await?;
        if era == Era::Session {
            client.initialize().await?;
        }
        Ok(client)
    }

    /// The era this client speaks.
    pub fn era(&self) -> Era {
        self.era
    }

    /// The session id, once initialized (session era).
    pub fn session_id(&self) -> Option<&str> {
        self.session.as_ref().and_then(|s| s.to_str().ok())
    }

    async fn open(&mut self) -> Result<(), ClientError> {
        let stream = TcpStream::connect(self.endpoint.addr)
            .await
            .map_err(ClientError::Connect)?;
        stream.set_nodelay(true).map_err(ClientError::Connect)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends when the server closes the connection or the sender is dropped.
            let _ = connection.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// A sender that is ready for the next request, reconnecting once if the server closed it.
    async fn ready_sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, ClientError> {
        let usable = match self.sender.as_mut() {
            Some(sender) => sender.ready().await.is_ok(),
            None => false,
        };
        if !usable {
            self.sender = None;
            self.open().await?;
        }
        self.sender
            .as_mut()
            .ok_or_else(|| ClientError::BadAnswer("no connection".into()))
    }

    async fn send(
        &mut self,
        method: Method,
        body: Option<String>,
        mcp_method: Option<&str>,
        mcp_name: Option<&str>,
    ) -> Result<Answer, ClientError> {
        let mut request = Request::builder()
            .method(method)
            .uri(self.endpoint.path.as_str())
            .header(HOST, self.authority.clone())
            .header(ACCEPT, ACCEPT_BOTH);
        if let Some(session) = &self.session {
            request = request.header(SESSION_HEADER, session.clone());
        }
        match self.era {
            Era::Session if self.session.is_some() => {
                request = request.header(VERSION_HEADER, SESSION_VERSION);
            }
            Era::Session => {}
            Era::Stateless => {
                request = request.header(VERSION_HEADER, STATELESS_VERSION);
                if let Some(method) = mcp_method {
                    request = request.header("mcp-method", method);
                }
                if let Some(name) = mcp_name {
                    request = request.header("mcp-name", name);
                }
            }
        }
        let body = match body {
            Some(body) => {
                request = request.header(CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(body))
            }
            None => Full::new(Bytes::new()),
        };
        let request = request
            .body(body)
            .map_err(|err| ClientError::BadAnswer(format!("could not build the request: {err}")))?;
        let sender = self.ready_sender().await?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let content_type = response.headers().get(CONTENT_TYPE).cloned();
        let session = response.headers().get(SESSION_HEADER).cloned();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Answer {
            status,
            content_type,
            session,
            body,
        })
    }

    /// Sends a request and returns its result. `params` must be a JSON object; in the stateless
    /// era the client's `_meta` is added to it.
    pub async fn request(&mut self, method: &str, params: &Value) -> Result<Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let name = match method {
            "tools/call" | "prompts/get" => params.get("name"),
            "resources/read" => params.get("uri"),
            _ => None,
        }
        .and_then(Value::as_str);
        let text = self.params_text(params)?;
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{text}}}"#);
        let answer = self
            .send(Method::POST, Some(body), Some(method), name)
            .await?;
        if let Some(session) = answer.session.clone()
            && self.session.is_none()
        {
            self.session = Some(session);
        }
        read_answer(&answer, id)
    }

    fn params_text(&self, params: &Value) -> Result<String, ClientError> {
        params_text(params, self.era, &self.meta)
    }

    /// `initialize` + `notifications/initialized` (session era); a new session each time.
    pub async fn initialize(&mut self) -> Result<Value, ClientError> {
        self.session = None;
        let params = json!({
            "protocolVersion": SESSION_VERSION,
            "capabilities": {},
            "clientInfo": { "name": "loadgen", "version": env!("CARGO_PKG_VERSION") },
        });
        let result = self.request("initialize", &params).await?;
        if self.session.is_none() {
            return Err(ClientError::BadAnswer(
                "initialize answered without Mcp-Session-Id".into(),
            ));
        }
        let body = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_owned();
        let answer = self
            .send(
                Method::POST,
                Some(body),
                Some("notifications/initialized"),
                None,
            )
            .await?;
        if !answer.status.is_success() {
            return Err(ClientError::Status(answer.status, quote(&answer.body)));
        }
        Ok(result)
    }

    /// Ends the session with `DELETE` (session era; a no-op without a session).
    pub async fn close_session(&mut self) -> Result<(), ClientError> {
        if self.session.is_none() {
            return Ok(());
        }
        let answer = self.send(Method::DELETE, None, None, None).await?;
        self.session = None;
        if answer.status.is_success() {
            Ok(())
        } else {
            Err(ClientError::Status(answer.status, quote(&answer.body)))
        }
    }

    /// `tools/list`, one page: the tools' names.
    pub async fn list_tools(&mut self) -> Result<Vec<String>, ClientError> {
        let result = self.request("tools/list", &json!({})).await?;
        let tools = result
            .get("tools")
            .and_then(Value::as_array)
            .ok_or_else(|| ClientError::BadAnswer("tools/list result has no tools".into()))?;
        Ok(tools
            .iter()
            .filter_map(|tool| tool.get("name")?.as_str().map(str::to_owned))
            .collect())
    }

    /// `tools/call`; a result with `isError: true` is an error.
    pub async fn call_tool(&mut self, name: &str, arguments: &Value) -> Result<Value, ClientError> {
        let params = json!({ "name": name, "arguments": arguments });
        let result = self.request("tools/call", &params).await?;
        if result.get("isError") == Some(&Value::Bool(true)) {
            return Err(ClientError::Tool(preview(&result)));
        }
        Ok(result)
    }
}

/// The stateless era's `_meta` object, serialised.
pub(crate) fn stateless_meta() -> String {
    json!({
        "io.modelcontextprotocol/protocolVersion": STATELESS_VERSION,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": { "name": "loadgen", "version": env!("CARGO_PKG_VERSION") },
    })
    .to_string()
}

/// `params` as JSON text; in the stateless era with `meta` (pre-serialised) added as `_meta`.
pub(crate) fn params_text(params: &Value, era: Era, meta: &str) -> Result<String, ClientError> {
    let Value::Object(object) = params else {
        return Err(ClientError::BadAnswer("params must be an object".into()));
    };
    let text = params.to_string();
    if era == Era::Session {
        return Ok(text);
    }
    // `{...}` + `"_meta":{...}`: splice the pre-serialised meta in before the closing brace.
    let inner = &text[1..text.len() - 1];
    let separator = if object.is_empty() { "" } else { "," };
    Ok(format!(r#"{{{inner}{separator}"_meta":{meta}}}"#))
}

fn read_answer(answer: &Answer, id: u64) -> Result<Value, ClientError> {
    let event_stream = answer
        .content_type
        .as_ref()
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let found = if event_stream {
        sse_data(&answer.body)
            .into_iter()
            .filter_map(|data| serde_json::from_str::<Value>(&data).ok())
            .find(|message| is_response_to(message, id))
    } else {
        serde_json::from_slice::<Value>(&answer.body).ok()
    };
    match found {
        Some(message) if is_response_to(&message, id) => outcome(message),
        // An error body for a failed status still says the most about what went wrong.
        Some(message) if !answer.status.is_success() && message.get("error").is_some() => {
            outcome(message)
        }
        _ if !answer.status.is_success() => {
            Err(ClientError::Status(answer.status, quote(&answer.body)))
        }
        _ => Err(ClientError::BadAnswer(format!(
            "no response to request {id} in {}",
            quote(&answer.body)
        ))),
    }
}

fn is_response_to(message: &Value, id: u64) -> bool {
    message.get("id").and_then(Value::as_u64) == Some(id)
        && (message.get("result").is_some() || message.get("error").is_some())
}

pub(crate) fn outcome(mut message: Value) -> Result<Value, ClientError> {
    if let Some(error) = message.get("error") {
        return Err(ClientError::Rpc {
            code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        });
    }
    Ok(message
        .get_mut("result")
        .map(Value::take)
        .unwrap_or(Value::Null))
}

/// The `data` payloads of an SSE body, in order (multi-line data joined with `\n`; events with
/// no data, such as priming events and keep-alive comments, skipped).
pub fn sse_data(body: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(body);
    let mut payloads = Vec::new();
    let mut data: Option<String> = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            if let Some(done) = data.take().filter(|d| !d.is_empty()) {
                payloads.push(done);
            }
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        if field == "data" {
            match &mut data {
                Some(existing) => {
                    existing.push('\n');
                    existing.push_str(value);
                }
                None => data = Some(value.to_owned()),
            }
        }
    }
    if let Some(done) = data.filter(|d| !d.is_empty()) {
        payloads.push(done);
    }
    payloads
}

fn quote(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut end = text.len().min(MAX_QUOTED);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

pub(crate) fn preview(value: &Value) -> String {
    quote(value.to_string().as_bytes())
}

#[cfg(test)]
mod tests;
