//! The legacy HTTP+SSE transport of 2024-11-05 (client side). rmcp dropped it, yet many servers
//! still speak only this: `GET` the SSE URL, wait for the `endpoint` event naming the POST URL,
//! then POST each message there; every answer arrives on the SSE stream as a `message` event.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use hyper::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::{Method, Uri};
use reqwest::Url;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::event_stream::EventStream;
use super::http_client::{HttpClient, parse_uri, read_limited, request_error, status_error};
use super::{Connected, INBOUND_CAPACITY, Outbound, TransportEvent};
use crate::error::{Error, redact_url};
use crate::jsonrpc::{Message, truncate};
use crate::spec::{HttpSpec, ServerId};

/// Deadline for one POST to the message endpoint.
const POST_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens the SSE stream and waits, within `connect_timeout`, for the `endpoint` event.
pub(crate) async fn open(
    server: &ServerId,
    spec: &HttpSpec,
    connect_timeout: Duration,
) -> Result<Connected, Error> {
    let client = HttpClient::new(server, spec, connect_timeout)?;
    let base = Url::parse(&spec.url)
        .map_err(|err| Error::InvalidSpec(format!("server `{server}`: url: {err}")))?;
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
    let response = client
        .send(
            Method::GET,
            &parse_uri(server, &spec.url)?,
            headers,
            Bytes::new(),
        )
        .await
        .map_err(|err| request_error(server, &spec.url, err))?;
    if !response.status().is_success() {
        let status = response.status();
        let body = read_limited(response.into_body()).await.unwrap_or_default();
        return Err(status_error(server, &spec.url, status, &body));
    }

    let (events, inbound) = mpsc::channel(INBOUND_CAPACITY);
    let (endpoint_tx, endpoint_rx) = oneshot::channel();
    let cancel = CancellationToken::new();
    let reader_cancel = cancel.clone();
    tokio::spawn(async move {
        let reason = tokio::select! {
            reason = read_stream(EventStream::new(response.into_body()), events.clone(), endpoint_tx) => reason,
            _ = reader_cancel.cancelled() => return,
        };
        let _ = events.send(TransportEvent::Closed(reason)).await;
    });

    let endpoint = match tokio::time::timeout(connect_timeout, endpoint_rx).await {
        Ok(Ok(endpoint)) => endpoint,
        Ok(Err(_)) => {
            return Err(Error::transport(
                server,
                "the SSE stream ended before naming its message endpoint",
            ));
        }
        Err(_) => {
            cancel.cancel();
            return Err(Error::transport(
                server,
                format!("no `endpoint` event on the SSE stream within {connect_timeout:?}"),
            ));
        }
    };
    let bad_endpoint = |err: &dyn std::fmt::Display| {
        cancel.cancel();
        Error::transport(
            server,
            format!(
                "bad endpoint `{}` from the server: {err}",
                redact_url(&endpoint)
            ),
        )
    };
    let endpoint = base.join(&endpoint).map_err(|err| bad_endpoint(&err))?;
    // The spec's headers carry credentials for the SSE URL's server: a message endpoint
    // elsewhere would receive them with every POST.
    if endpoint.origin() != base.origin() {
        return Err(bad_endpoint(&format_args!(
            "it is on {}, not on the SSE stream's origin {}; refused so the server's credentials \
             go nowhere else",
            endpoint.origin().ascii_serialization(),
            base.origin().ascii_serialization()
        )));
    }
    let endpoint_uri = endpoint
        .as_str()
        .parse::<Uri>()
        .map_err(|err| bad_endpoint(&err))?;
    Ok(Connected {
        outbound: Box::new(LegacySse {
            server: server.clone(),
            client,
            endpoint_uri,
            endpoint,
            cancel,
        }),
        inbound,
    })
}

/// Reads the SSE stream: the first `endpoint` event goes to `endpoint`, `message` events onward.
async fn read_stream(
    mut stream: EventStream,
    events: mpsc::Sender<TransportEvent>,
    endpoint: oneshot::Sender<String>,
) -> String {
    let mut endpoint = Some(endpoint);
    while let Some(event) = stream.next().await {
        let event = match event {
            Ok(event) => event,
            Err(err) => return err.to_string(),
        };
        let Some(data) = event.data else { continue };
        match event.event.as_deref() {
            Some("endpoint") => {
                if let Some(endpoint) = endpoint.take() {
                    let _ = endpoint.send(data.trim().to_owned());
                }
            }
            None | Some("message") => {
                let event = match serde_json::from_str::<Box<RawValue>>(&data) {
                    Ok(value) => TransportEvent::Message(value),
                    Err(_) => TransportEvent::Garbage(truncate(&data, 200)),
                };
                if events.send(event).await.is_err() {
                    return "the connection was dropped".into();
                }
            }
            Some(_) => {}
        }
    }
    "the SSE stream ended".into()
}

struct LegacySse {
    server: ServerId,
    client: HttpClient,
    endpoint_uri: Uri,
    /// The same endpoint, as written in messages.
    endpoint: Url,
    cancel: CancellationToken,
}

#[async_trait]
impl Outbound for LegacySse {
    async fn send(&self, message: Message) -> Result<(), Error> {
        let body = serde_json::to_vec(&message).map_err(|err| {
            Error::transport_caused(&self.server, "could not encode message", err)
        })?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let sent = self
            .client
            .send(Method::POST, &self.endpoint_uri, headers, body.into());
        let response = tokio::time::timeout(POST_TIMEOUT, sent)
            .await
            .map_err(|_| {
                Error::transport(
                    &self.server,
                    format!(
                        "POST to {} timed out after {POST_TIMEOUT:?}",
                        redact_url(self.endpoint.as_str())
                    ),
                )
            })?
            .map_err(|err| request_error(&self.server, self.endpoint.as_str(), err))?;
        if response.status().is_success() {
            return Ok(());
        }
        let status = response.status();
        let body = read_limited(response.into_body()).await.unwrap_or_default();
        Err(status_error(
            &self.server,
            self.endpoint.as_str(),
            status,
            &body,
        ))
    }

    async fn close(&self) {
        self.cancel.cancel();
    }
}
