//! MCP servers found by probing well-known localhost ports: the zero-configuration way to pick up
//! the team's reference servers (memory on 4100, storage on 4200, bedrock on 4300) when they run
//! on the same machine.
//!
//! A port counts only when `http://127.0.0.1:PORT/mcp` answers an MCP `initialize` request with a
//! JSON-RPC response (a result or an error, as a JSON body or an SSE event): an unrelated web
//! server answering 404 or HTML does not. The probe ends the session it may have opened with a
//! `DELETE`, so probing every few seconds leaves nothing behind on the server.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::future::join_all;
use reqwest::Response;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};
use sse_stream::SseByteStream;

use crate::discovery::DiscoverySource;
use crate::error::{BoxError, Error};
use crate::jsonrpc;
use crate::spec::{HttpSpec, ServerId, ServerSpec, TransportSpec};
use crate::upstream::SESSION_VERSION;

/// The ports probed by [`PortProbeSource::well_known`], with the server id each one gets.
pub const WELL_KNOWN_PORTS: [(&str, u16); 3] =
    [("memory", 4100), ("storage", 4200), ("bedrock", 4300)];
/// How often the ports are re-probed unless configured otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// How long one probe may take unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// The shortest re-probe interval: a zero interval would spin.
const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// The most of a probe answer that is read; an MCP `initialize` result is a few hundred bytes.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// The JSON-RPC id of the probe request.
const PROBE_ID: u64 = 1;
const SESSION_HEADER: &str = "mcp-session-id";

/// Servers on localhost ports that answer as MCP servers; re-probed on an interval.
///
/// Each configured port that answers yields a Streamable HTTP server at
/// `http://127.0.0.1:PORT/mcp` with the id given for that port. [`changed`] re-probes every
/// interval and resolves only when the set of answering ports differs from the one the last
/// [`discover`] saw, so the gateway adds servers that come up and removes those that go away.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// use mcp_gateway_core::Gateway;
/// use mcp_gateway_core::discovery::PortProbeSource;
///
/// # fn main() -> Result<(), mcp_gateway_core::Error> {
/// // memory on 4100, storage on 4200, bedrock on 4300, probed every 30 s.
/// let well_known = PortProbeSource::well_known()?.with_interval(Duration::from_secs(30));
/// // Or a list of your own.
/// let mine = PortProbeSource::new([("search", 4500)])?
///     .with_name("port-probe-search")
///     .with_timeout(Duration::from_millis(500));
/// let gateway = Gateway::builder()
///     .discovery(Arc::new(well_known))
///     .discovery(Arc::new(mine))
///     .build();
/// # drop(gateway);
/// # Ok(())
/// # }
/// ```
///
/// [`changed`]: DiscoverySource::changed
/// [`discover`]: DiscoverySource::discover
#[derive(Debug)]
pub struct PortProbeSource {
    name: String,
    ports: Vec<(ServerId, u16)>,
    interval: Duration,
    timeout: Duration,
    client: reqwest::Client,
    /// The ports that answered at the last [`DiscoverySource::discover`].
    last: Mutex<BTreeSet<u16>>,
}

impl PortProbeSource {
    /// Probes these `(server id, port)` pairs; ids and ports must be unique.
    pub fn new<I, S>(ports: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = (S, u16)>,
        S: AsRef<str>,
    {
        let mut seen_ids = BTreeSet::new();
        let mut seen_ports = BTreeSet::new();
        let mut checked = Vec::new();
        for (id, port) in ports {
            let id = ServerId::new(id)?;
            if !seen_ids.insert(id.clone()) {
                return Err(Error::InvalidSpec(format!(
                    "port probe: server id `{id}` is given twice"
                )));
            }
            if !seen_ports.insert(port) {
                return Err(Error::InvalidSpec(format!(
                    "port probe: port {port} is given twice"
                )));
            }
            checked.push((id, port));
        }
        // No proxy: a probe of 127.0.0.1 must not leave the machine through `HTTP_PROXY`.
        let client = reqwest::Client::builder()
            .no_proxy()
            // Nor through a redirect: the answer must come from the port itself.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| {
                Error::InvalidSpec(format!(
                    "port probe: could not build the HTTP client: {err}"
                ))
            })?;
        Ok(Self {
            name: "port-probe".to_owned(),
            ports: checked,
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            client,
            last: Mutex::new(BTreeSet::new()),
        })
    }

    /// Probes [`WELL_KNOWN_PORTS`].
    pub fn well_known() -> Result<Self, Error> {
        Self::new(WELL_KNOWN_PORTS)
    }

    /// Sets how often the ports are re-probed (default 10 s, at least 10 ms).
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(MIN_INTERVAL);
        self
    }

    /// Sets how long one probe may take (default 1 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Renames the source (default `port-probe`); the gateway tells sources apart by name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The configured ports that answer now, probed concurrently.
    async fn answering(&self) -> BTreeSet<u16> {
        let probes = self.ports.iter().map(|(id, port)| async move {
            match self.probe(*port).await {
                Ok(()) => Some(*port),
                Err(reason) => {
                    tracing::debug!(server = %id, port, %reason, "no MCP server on the port");
                    None
                }
            }
        });
        join_all(probes).await.into_iter().flatten().collect()
    }

    /// Whether an MCP server answers on `port`; the error says why not.
    async fn probe(&self, port: u16) -> Result<(), String> {
        let url = endpoint(port);
        let request = jsonrpc::request(
            PROBE_ID,
            "initialize",
            Some(json!({
                "protocolVersion": SESSION_VERSION,
                "capabilities": {},
                "clientInfo": { "name": "mcp-gateway-port-probe", "version": env!("CARGO_PKG_VERSION") },
            })),
        );
        let answered = tokio::time::timeout(self.timeout, async {
            let response = self
                .client
                .post(&url)
                .header(ACCEPT, "application/json, text/event-stream")
                .json(&request)
                .send()
                .await
                .map_err(|err| format!("request failed: {err}"))?;
            let session = response.headers().get(SESSION_HEADER).cloned();
            read_answer(response).await.map(|()| session)
        })
        .await
        .map_err(|_| format!("no answer within {:?}", self.timeout))??;
        if let Some(session) = answered {
            // Best effort: a server that keeps the session until it expires is no harm.
            let _ = tokio::time::timeout(
                self.timeout,
                self.client
                    .delete(&url)
                    .header(SESSION_HEADER, session)
                    .send(),
            )
            .await;
        }
        Ok(())
    }
}

#[async_trait]
impl DiscoverySource for PortProbeSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn discover(&self) -> Result<Vec<ServerSpec>, BoxError> {
        let answering = self.answering().await;
        let specs = self
            .ports
            .iter()
            .filter(|(_, port)| answering.contains(port))
            .map(|(id, port)| {
                let http = HttpSpec::new(&endpoint(*port))?;
                Ok(ServerSpec::new(
                    id.clone(),
                    TransportSpec::StreamableHttp(http),
                ))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = answering;
        Ok(specs)
    }

    /// Re-probes every interval; resolves when the answering ports differ from the last
    /// [`discover`](DiscoverySource::discover).
    async fn changed(&self) {
        loop {
            tokio::time::sleep(self.interval).await;
            let answering = self.answering().await;
            if *self.last.lock().unwrap_or_else(PoisonError::into_inner) != answering {
                return;
            }
        }
    }
}

fn endpoint(port: u16) -> String {
    format!("http://127.0.0.1:{port}/mcp")
}

/// Reads a probe answer (a JSON body or an SSE stream, at most [`MAX_ANSWER_BYTES`]) and checks
/// that it holds a JSON-RPC response to the probe.
async fn read_answer(response: Response) -> Result<(), String> {
    let status = response.status();
    let event_stream = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"));
    let body = response.bytes_stream().scan(0usize, |read, chunk| {
        let next = match chunk {
            Ok(chunk) if *read + chunk.len() > MAX_ANSWER_BYTES => None,
            Ok(chunk) => {
                *read += chunk.len();
                Some(Ok::<Bytes, reqwest::Error>(chunk))
            }
            Err(err) => Some(Err(err)),
        };
        std::future::ready(next)
    });
    if event_stream {
        let mut events = std::pin::pin!(SseByteStream::new(body));
        while let Some(event) = events.next().await {
            let event = event.map_err(|err| format!("unreadable event stream: {err}"))?;
            let answer = event
                .data
                .and_then(|data| serde_json::from_str::<Value>(&data).ok());
            if answer.as_ref().is_some_and(answers_probe) {
                return Ok(());
            }
        }
        Err(format!(
            "HTTP {status}: the event stream ended without an answer"
        ))
    } else {
        let mut body = std::pin::pin!(body);
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|err| format!("unreadable body: {err}"))?;
            bytes.extend_from_slice(&chunk);
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(answer) if answers_probe(&answer) => Ok(()),
            _ => Err(format!("HTTP {status}: not a JSON-RPC answer")),
        }
    }
}

/// Whether `message` is a JSON-RPC response (result or error) to the probe request.
fn answers_probe(message: &Value) -> bool {
    message["jsonrpc"] == "2.0"
        && message["id"] == PROBE_ID
        && (message["result"].is_object() || message["error"].is_object())
}

#[cfg(test)]
mod tests;
