//! `bench-fixture`: the fast benchmark upstream (`echo` and `sleep_ms`, see
//! `benches::fixture`), over Streamable HTTP or stdio.
//!
//! ```sh
//! bench-fixture --stdio                     # MCP over stdin/stdout
//! bench-fixture --listen 127.0.0.1:0        # Streamable HTTP at http://ADDR/mcp
//! ```
//!
//! Over HTTP, rmcp's `StreamableHttpService` serves both eras: `initialize` opens a session
//! (answers on SSE), requests with the 2026-07-28 `_meta` are served statelessly. The first line
//! on stdout is `listening on http://ADDR/mcp`. The process stops on SIGINT, SIGTERM, or (stdio)
//! when stdin closes.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::ListenerExt as _;
use benches::fixture::BenchFixture;
use clap::Parser;
use rmcp::ServiceExt as _;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::signal::unix::{SignalKind, signal};

/// The benchmark upstream.
#[derive(Parser)]
#[command(about)]
#[command(group = clap::ArgGroup::new("transport").required(true))]
struct Cli {
    /// Serve MCP over stdin and stdout.
    #[arg(long, group = "transport")]
    stdio: bool,
    /// Serve Streamable HTTP at http://ADDR/mcp (port 0: any free port).
    #[arg(long, value_name = "ADDR", group = "transport")]
    listen: Option<SocketAddr>,
    /// Worker threads of the runtime (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = cli.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = runtime.enable_all().build()?;
    runtime.block_on(async move {
        match cli.listen {
            Some(addr) => serve_http(addr).await,
            None => serve_stdio().await,
        }
    })
}

async fn serve_stdio() -> Result<(), Box<dyn std::error::Error>> {
    let running = BenchFixture::new().serve(rmcp::transport::stdio()).await?;
    tokio::select! {
        _ = running.waiting() => {}
        _ = stopped() => {}
    }
    Ok(())
}

async fn serve_http(addr: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let service = StreamableHttpService::new(
        || Ok(BenchFixture::new()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}/mcp", listener.local_addr()?);
    let router = axum::Router::new().nest_service("/mcp", service);
    // Without TCP_NODELAY an SSE answer written in two pieces waits for the client's delayed
    // ACK: about 40 ms per call on Linux.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(stopped())
        .await?;
    Ok(())
}

/// Resolves on SIGINT or SIGTERM (never, if the handlers cannot be installed).
async fn stopped() {
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
}
