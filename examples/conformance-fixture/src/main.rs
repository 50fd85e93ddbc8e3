//! `conformance-fixture`: an MCP server with every tool, resource and prompt that the official
//! conformance suite's *server* scenarios call, so the suite can run against the gateway with
//! this server behind it (or against this server directly, as a reference).
//!
//! ```sh
//! conformance-fixture --stdio                   # MCP over stdin/stdout
//! conformance-fixture --listen 127.0.0.1:3000   # Streamable HTTP at http://127.0.0.1:3000/mcp
//! ```
//!
//! Over HTTP both protocol eras are served: `initialize` opens a session (2025-11-25 and older),
//! and requests carrying the 2026-07-28 `_meta` are served statelessly. Only loopback `Host`s
//! are accepted (DNS-rebinding protection). With port 0 the system picks a free port; the line
//! `listening on http://ADDR/mcp` on stdout tells which. Logs go to stderr (`RUST_LOG`).

mod fixture;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use rmcp::ServiceExt as _;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use fixture::{Fixture, Shared};

/// The MCP server the conformance suite's server scenarios expect.
#[derive(Parser)]
#[command(version, about)]
#[command(group = clap::ArgGroup::new("transport").required(true))]
struct Cli {
    /// Serve MCP over stdin and stdout.
    #[arg(long, group = "transport")]
    stdio: bool,
    /// Serve Streamable HTTP at http://ADDR/mcp (port 0: any free port).
    #[arg(long, value_name = "ADDR", group = "transport")]
    listen: Option<SocketAddr>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    let shared = Shared::new()?;
    match cli.listen {
        Some(addr) => serve_http(addr, shared).await,
        None => serve_stdio(shared).await,
    }
}

async fn serve_stdio(shared: Arc<Shared>) -> anyhow::Result<()> {
    let server = Fixture::new(shared)
        .serve(rmcp::transport::stdio())
        .await
        .context("mcp handshake over stdio failed")?;
    server.waiting().await?;
    Ok(())
}

async fn serve_http(addr: SocketAddr, shared: Arc<Shared>) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    // rmcp's defaults already allow loopback `Host`s only; browsers' `Origin`s are held to
    // loopback too.
    let config = StreamableHttpServerConfig::default()
        .with_allowed_origins(["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"])
        .with_cancellation_token(shutdown.child_token());
    let service = StreamableHttpService::new(
        move || Ok(Fixture::new(shared.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    println!("listening on http://{local}/mcp");
    let router = axum::Router::new().nest_service("/mcp", service);
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            // On a failed signal handler there is no way to be told to stop: stop now.
            let _ = tokio::signal::ctrl_c().await;
            shutdown.cancel();
        })
        .await?;
    Ok(())
}
