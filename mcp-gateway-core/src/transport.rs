//! Upstream transports. Each one moves raw JSON-RPC values: outgoing through [`Outbound`],
//! incoming as [`TransportEvent`]s on a bounded channel read by the upstream's dispatcher.

pub(crate) mod event_stream;
pub(crate) mod http;
mod http_client;
pub mod in_process;
pub(crate) mod lines;
pub(crate) mod sse;
pub(crate) mod stdio;

use async_trait::async_trait;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::error::Error;
use crate::jsonrpc::{Message, Outcome};
use crate::spec::{ServerSpec, TransportSpec};
pub(crate) use http_client::is_connect_error;

/// How many received messages may wait for the dispatcher before a transport's reader waits.
pub(crate) const INBOUND_CAPACITY: usize = 1024;

/// Largest single message accepted from an upstream (a line, an SSE event or a JSON body).
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Something a transport received.
#[derive(Debug)]
pub(crate) enum TransportEvent {
    /// A message or a batch, as the peer wrote it (checked to be JSON).
    Message(Box<RawValue>),
    /// Bytes that are not JSON, kept for the error event.
    Garbage(String),
    /// A message too large to read was skipped; `answer_to` is the gateway's request it
    /// answered, when what was kept of it tells.
    TooLong {
        detail: String,
        answer_to: Option<u64>,
    },
    /// A line the child process wrote to stderr.
    Stderr(String),
    /// No message can arrive any more (a child closed its stdout), so calls in flight can never
    /// be answered; `Closed` follows once the connection is gone.
    InputEnded(String),
    /// The connection is gone and will deliver nothing more.
    Closed(String),
}

/// The sending half of a transport.
#[async_trait]
pub(crate) trait Outbound: Send + Sync {
    /// Sends one message. For HTTP transports this waits for the response headers.
    async fn send(&self, message: Message) -> Result<(), Error>;

    /// Sends one request. Returns its answer when the exchange itself carried it first (an HTTP
    /// response whose first message is the answer), which spares the dispatcher a round;
    /// otherwise the answer arrives on the inbound channel like everything else. `headers` are
    /// extra HTTP headers (the 2026-07-28 `Mcp-Param-*`); transports that are not HTTP ignore them.
    async fn send_request(
        &self,
        message: Message,
        _headers: &[(String, String)],
    ) -> Result<Option<Outcome>, Error> {
        self.send(message).await.map(|()| None)
    }

    /// Records the protocol version to announce (HTTP sends it as a header on every request);
    /// `None` before a session-era `initialize`, which must go without one.
    fn set_protocol_version(&self, _version: Option<&str>) {}

    /// Called once the handshake is complete. Streamable HTTP opens its GET stream here and
    /// returns once the server has accepted it, so no notification sent after the handshake is
    /// lost to a stream that is not open yet.
    async fn handshake_complete(&self) {}

    /// Ends the connection: stops the child, ends the HTTP session. Bounded in time.
    async fn close(&self);
}

/// A live transport: the sending half and the channel of received events.
pub(crate) struct Connected {
    pub outbound: Box<dyn Outbound>,
    pub inbound: mpsc::Receiver<TransportEvent>,
}

/// Opens the transport a spec names.
pub(crate) async fn open(spec: &ServerSpec) -> Result<Connected, Error> {
    match &spec.transport {
        TransportSpec::Stdio(stdio) => stdio::open(&spec.id, stdio),
        TransportSpec::StreamableHttp(http) => http::open(&spec.id, http, spec.connect_timeout),
        TransportSpec::Sse(http) => sse::open(&spec.id, http, spec.connect_timeout).await,
        TransportSpec::InProcess(server) => Ok(server.connect(&spec.id)),
    }
}
