//! HTTP adapters for the mcp-gateway engine.
//!
//! [`router`] builds the axum router that serves an [`McpServer`]: the Streamable HTTP endpoint
//! at `/mcp` (both protocol eras) and the legacy HTTP+SSE endpoint at `/sse` + `/message`, behind
//! DNS-rebinding protection, optional bearer-token auth and a body size limit. [`serve`] runs it
//! on a listener until a shutdown signal, mini-redis style: the caller owns the listener and the
//! signal. [`StreamShutdown`] ends the router's streams, which would otherwise hold a graceful
//! shutdown forever; `serve` uses one, and an application serving the router itself attaches one.

mod guard;
mod legacy_sse;
mod shutdown;
mod streamable;

pub use shutdown::StreamShutdown;

use std::future::{Future, IntoFuture};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use mcp_gateway_core::{JsonRpcError, McpServer, Secret, Session};
use serde_json::Value;
use tokio::net::TcpListener;

/// Settings of the HTTP surface.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Host names accepted in `Host` and `Origin` (any port); `None` accepts any host. The default
    /// is the loopback names, the DNS-rebinding guard for a gateway bound to 127.0.0.1.
    pub allowed_hosts: Option<Vec<String>>,
    /// Bearer tokens that grant access; empty means no authentication (loopback only).
    pub bearer_tokens: Vec<Secret>,
    /// Largest request body accepted; 4 MiB by default. A larger one is answered with HTTP 413
    /// and a JSON-RPC error naming this limit, whether its `Content-Length` says so or it is
    /// streamed past the limit.
    pub max_body_bytes: usize,
    /// Interval of SSE keep-alive comments.
    pub sse_keep_alive: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            allowed_hosts: Some(vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()]),
            bearer_tokens: Vec::new(),
            max_body_bytes: 4 * 1024 * 1024,
            sse_keep_alive: Duration::from_secs(15),
        }
    }
}

impl HttpConfig {
    /// Sets the accepted host names (`None`: any).
    pub fn with_allowed_hosts(mut self, hosts: Option<Vec<String>>) -> Self {
        self.allowed_hosts = hosts;
        self
    }

    /// Requires one of these bearer tokens on every request.
    pub fn with_bearer_tokens(mut self, tokens: Vec<Secret>) -> Self {
        self.bearer_tokens = tokens;
        self
    }

    /// Sets the body size limit.
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }
}

/// Shared state of the handlers.
#[derive(Clone)]
pub(crate) struct AppState {
    pub server: Arc<McpServer>,
    pub config: Arc<HttpConfig>,
    pub legacy: Arc<legacy_sse::Connections>,
}

impl AppState {
    /// Opens a session for a client at `peer` (known when the router is served with connect
    /// info, as [`serve`] does), so the per-address session cap applies to it.
    pub(crate) fn open_session(
        &self,
        peer: Option<IpAddr>,
        params: Option<&Value>,
    ) -> Result<(Arc<Session>, Value), JsonRpcError> {
        match peer {
            Some(peer) => self.server.open_session_from(peer, params),
            None => self.server.open_session(params),
        }
    }
}

/// The client's address, present when the router is served with
/// `into_make_service_with_connect_info::<SocketAddr>()`.
pub(crate) type PeerAddress = Option<axum::Extension<axum::extract::ConnectInfo<SocketAddr>>>;

/// The IP address in a [`PeerAddress`].
pub(crate) fn peer_ip(peer: PeerAddress) -> Option<IpAddr> {
    peer.map(|axum::Extension(axum::extract::ConnectInfo(address))| address.ip())
}

/// The MCP endpoints of one gateway.
pub fn router(server: Arc<McpServer>, config: HttpConfig) -> Router {
    let state = AppState {
        server,
        legacy: Arc::new(legacy_sse::Connections::default()),
        config: Arc::new(config),
    };
    Router::new()
        .route(
            "/mcp",
            post(streamable::post)
                .get(streamable::get)
                .delete(streamable::delete),
        )
        .route("/sse", get(legacy_sse::open))
        .route("/message", post(legacy_sse::message))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::check,
        ))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            state.config.max_body_bytes,
        ))
        .layer(axum::middleware::map_response_with_state(
            state.config.max_body_bytes,
            body_too_large,
        ))
        .with_state(state)
}

/// Gives the body limit's 413 a JSON-RPC error naming the limit, as every other refusal has,
/// instead of the limit layer's plain text that a client's JSON parser would choke on.
async fn body_too_large(
    axum::extract::State(limit): axum::extract::State<usize>,
    response: Response,
) -> Response {
    if response.status() != StatusCode::PAYLOAD_TOO_LARGE {
        return response;
    }
    let message = format!(
        "the request body is larger than the gateway's limit of {limit} bytes (max_body_bytes)"
    );
    let body = streamable::error_body(&Value::Null, JsonRpcError::INVALID_REQUEST, &message);
    (StatusCode::PAYLOAD_TOO_LARGE, body).into_response()
}

/// How long [`serve`] waits for connections to close once its shutdown signal resolved: the
/// calls' grace, and a little for their last writes. A connection whose client stopped reading
/// can outlast it; `serve` returns anyway.
const DRAIN_DEADLINE: Duration = shutdown::CALL_GRACE.saturating_add(Duration::from_secs(2));

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting, ends the
/// router's long-lived streams at once and the streams of calls in progress after a grace of a
/// few seconds (see [`StreamShutdown`]), and returns when every connection has closed or after
/// a few seconds more, whichever comes first. A connection still open then is left to end on its
/// own (or with the runtime).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Without TCP_NODELAY an SSE answer (headers, event, closing chunk: several small writes)
    // waits for the client's delayed ACK: 40 ms per call.
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "could not set TCP_NODELAY");
        }
    });
    let streams = StreamShutdown::new();
    let router = streams.attach(router);
    let trigger = streams.clone();
    // With connect info the handlers know each client's address, for the per-address session cap.
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        trigger.trigger();
    });
    tokio::select! {
        served = served.into_future() => served,
        () = async {
            streams.triggered().await;
            tokio::time::sleep(DRAIN_DEADLINE).await;
        } => {
            tracing::warn!(deadline = ?DRAIN_DEADLINE, "connections still open after the shutdown deadline; not waiting for them");
            Ok(())
        }
    }
}
