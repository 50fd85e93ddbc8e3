//! Streamable HTTP: rmcp's `StreamableHttpService` mounted at `/mcp` in an axum router, served
//! on a listener the caller bound, until the caller's shutdown future completes.

use std::future::Future;

use axum::Router;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{MemoryError, MemoryServer};

#[cfg(test)]
mod tests;

/// The MCP endpoint's path.
pub const MCP_PATH: &str = "/mcp";

/// HTTP settings for [`serve_http`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HttpConfig {
    /// The largest request body accepted, in bytes; larger ones get `413 Payload Too Large`.
    /// Default: 4 MiB.
    pub max_body_bytes: usize,
    /// `Host` header values accepted (with any port). Anything else gets `403`: this guards a
    /// local server against DNS rebinding. Default: `localhost`, `127.0.0.1`, `::1`.
    pub allowed_hosts: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 4 * 1024 * 1024,
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
        }
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
    axum::serve(listener, app)
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
fn router(server: MemoryServer, config: &HttpConfig, cancel: CancellationToken) -> Router {
    let mcp = StreamableHttpServerConfig::default()
        .with_allowed_hosts(config.allowed_hosts.clone())
        .with_max_request_body_bytes(config.max_body_bytes)
        .with_cancellation_token(cancel);
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        LocalSessionManager::default().into(),
        mcp,
    );
    Router::new().route_service(MCP_PATH, service)
}
