//! Streamable HTTP: rmcp's `StreamableHttpService` mounted at `/mcp` in an axum router, served
//! on a listener the caller bound, until the caller's shutdown future completes. In front of it:
//! the DNS-rebinding guard (`Host` and `Origin` must name an allowed host, checked by rmcp) and,
//! when a token is set, bearer-token authentication compared in constant time.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{MemoryError, MemoryServer};

#[cfg(test)]
mod tests;

/// The MCP endpoint's path.
pub const MCP_PATH: &str = "/mcp";

/// HTTP settings for [`serve_http`].
#[derive(Clone)]
#[non_exhaustive]
pub struct HttpConfig {
    /// The largest request body accepted, in bytes; larger ones get `413 Payload Too Large`.
    /// Default: 4 MiB.
    pub max_body_bytes: usize,
    /// `Host` header values accepted (with any port), and the hosts an `Origin` header may name
    /// (any scheme and port). Anything else gets `403`: this guards a local server against DNS
    /// rebinding. Empty accepts every host, for a server beyond loopback that a bearer token
    /// protects. Default: `localhost`, `127.0.0.1`, `::1`.
    pub allowed_hosts: Vec<String>,
    /// The token every request must carry as `Authorization: Bearer <token>`; others get `401`.
    /// Default: none, which only a loopback address should serve.
    pub bearer_token: Option<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 4 * 1024 * 1024,
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            bearer_token: None,
        }
    }
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("allowed_hosts", &self.allowed_hosts)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl HttpConfig {
    /// Sets [`HttpConfig::max_body_bytes`].
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// Adds to [`HttpConfig::allowed_hosts`] (for a server reached by another name).
    pub fn with_allowed_hosts(
        mut self,
        hosts: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.allowed_hosts.extend(hosts.into_iter().map(Into::into));
        self
    }

    /// Accepts every `Host` and `Origin`: for a server beyond loopback, reached by whatever name
    /// leads to it, that [`HttpConfig::bearer_token`] protects instead.
    pub fn with_any_host(mut self) -> Self {
        self.allowed_hosts.clear();
        self
    }

    /// Sets [`HttpConfig::bearer_token`].
    pub fn with_bearer_token(mut self, token: impl Into<String>) -> Self {
        self.bearer_token = Some(token.into());
        self
    }
}

/// Serves `server` over MCP Streamable HTTP at [`MCP_PATH`] on `listener` until `shutdown`
/// completes, then closes every session and stream and waits for open requests to finish.
///
/// Both protocol eras are served: an `initialize` opens a session (2025-11-25 and earlier), a
/// request carrying the 2026-07-28 `_meta` is answered statelessly. The caller owns the
/// listener (bind `127.0.0.1:0` in tests) and the shutdown signal; this function installs no
/// signal handler and no logger.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use mcp_memory_server::{HttpConfig, MemoryServer, serve_http};
///
/// let server = MemoryServer::open("/tmp/memory.jsonl")?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:4100").await?;
/// serve_http(server, listener, HttpConfig::default(), async {
///     let _ = tokio::signal::ctrl_c().await;
/// })
/// .await?;
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// [`MemoryError::Serve`] when accepting connections fails.
pub async fn serve_http<F>(
    server: MemoryServer,
    listener: TcpListener,
    config: HttpConfig,
    shutdown: F,
) -> Result<(), MemoryError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let cancel = CancellationToken::new();
    let app = router(server, &config, cancel.clone());
    axum::serve(without_delay(listener), app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Ends the sessions and their long-lived SSE streams, which graceful shutdown
            // would otherwise wait for forever.
            cancel.cancel();
        })
        .await
        .map_err(MemoryError::Serve)
}

/// The router: `/mcp` only. `cancel` ends every session and stream.
/// The listener with TCP_NODELAY set on each connection it accepts. Without it an SSE answer
/// (headers, the event, the closing chunk: small writes) waits for the client's delayed ACK: a
/// session-era call took 44 ms, and a gateway in front kept a connection per call in flight for
/// those 40 ms (65 connections to one upstream at c=1 in the soak).
fn without_delay(
    listener: TcpListener,
) -> impl axum::serve::Listener<Io = tokio::net::TcpStream, Addr = std::net::SocketAddr> {
    listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "could not set TCP_NODELAY");
        }
    })
}

fn router(server: MemoryServer, config: &HttpConfig, cancel: CancellationToken) -> Router {
    let origins = config
        .allowed_hosts
        .iter()
        .flat_map(|host| origins_of(host));
    let mcp = StreamableHttpServerConfig::default()
        .with_allowed_hosts(config.allowed_hosts.clone())
        .with_allowed_origins(origins)
        .with_max_request_body_bytes(config.max_body_bytes)
        .with_cancellation_token(cancel);
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        LocalSessionManager::default().into(),
        mcp,
    );
    let router = Router::new().route_service(MCP_PATH, service);
    match &config.bearer_token {
        Some(token) => router.layer(middleware::from_fn_with_state(
            Arc::<str>::from(token.as_str()),
            require_token,
        )),
        None => router,
    }
}

/// The origin patterns of pages served from `host`: http and https, on the port the entry names
/// or any port. An empty list of hosts gives no patterns, and rmcp then checks no `Origin`.
fn origins_of(host: &str) -> [String; 2] {
    // A bare IPv6 address takes brackets in an origin.
    let authority = if host.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let has_port = !authority.ends_with(']')
        && authority
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
    let port = if has_port { "" } else { ":*" };
    ["http", "https"].map(|scheme| format!("{scheme}://{authority}{port}"))
}

/// Refuses, with `401`, a request that does not carry the bearer token.
async fn require_token(State(token): State<Arc<str>>, request: Request, next: Next) -> Response {
    if bears(request.headers(), &token) {
        return next.run(request).await;
    }
    let mut response = (
        StatusCode::UNAUTHORIZED,
        "a valid bearer token is required\n",
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Whether `Authorization` is `Bearer <token>`, the scheme in any case (RFC 9110), the token
/// compared in constant time.
fn bears(headers: &HeaderMap, token: &str) -> bool {
    let Some((scheme, given)) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
    else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer")
        && bool::from(given.trim().as_bytes().ct_eq(token.as_bytes()))
}
