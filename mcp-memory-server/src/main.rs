//! The `mcp-memory-server` binary: flags, logging to stderr, signals, and the choice between
//! Streamable HTTP (the default, `http://127.0.0.1:4100/mcp`) and stdio.
//!
//! Exit codes: 0 after a clean shutdown, 65 (`EX_DATAERR`) when the memory file is corrupt,
//! 2 for bad flags (an address beyond loopback without a token among them), 1 for anything else.

use std::error::Error;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use mcp_memory_server::{HttpConfig, MCP_PATH, MemoryError, MemoryServer, default_memory_file};
use rmcp::ServiceExt;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// How long open HTTP requests may take to finish after a shutdown signal.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// A knowledge-graph memory MCP server, compatible with @modelcontextprotocol/server-memory.
///
/// The memory file is --file, else $MEMORY_FILE_PATH, else
/// $XDG_DATA_HOME/mcp-gateway/memory.jsonl (default ~/.local/share/mcp-gateway/memory.jsonl).
/// Logs go to stderr; RUST_LOG sets the filter (default "info,rmcp=warn").
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Serve MCP over stdin/stdout instead of HTTP.
    #[arg(long, conflicts_with = "listen")]
    stdio: bool,

    /// Serve MCP Streamable HTTP on this address, at the path /mcp.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4100")]
    listen: SocketAddr,

    /// The JSON-lines memory file (the reference server's format).
    #[arg(long, value_name = "PATH", env = "MEMORY_FILE_PATH")]
    file: Option<PathBuf>,

    /// Also accept this Host header over HTTP (repeatable). Loopback names are always
    /// accepted; other names are refused to guard against DNS rebinding. Beyond loopback,
    /// without this flag, every name is accepted and the token protects the server.
    #[arg(long = "allow-host", value_name = "HOST")]
    allow_hosts: Vec<String>,

    /// Bearer token HTTP clients must send; required when listening beyond loopback.
    #[arg(long, env = "MCP_MEMORY_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rmcp=warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("mcp-memory-server: could not start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run(args));
    // A blocking stdin read cannot be cancelled; do not wait for it.
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}

async fn run(args: Args) -> ExitCode {
    let http = if args.stdio {
        None
    } else {
        match http_config(&args) {
            Ok(config) => Some(config),
            Err(message) => {
                eprintln!("mcp-memory-server: {message}");
                return ExitCode::from(2);
            }
        }
    };
    // Listen for signals before anything else, so that one arriving early is not fatal.
    let shutdown = match Shutdown::listen() {
        Ok(shutdown) => shutdown,
        Err(err) => {
            eprintln!("mcp-memory-server: could not listen for signals: {err}");
            return ExitCode::FAILURE;
        }
    };
    let path = args.file.unwrap_or_else(default_memory_file);
    let opened = tokio::task::spawn_blocking(move || MemoryServer::open(path)).await;
    let server = match opened {
        Ok(Ok(server)) => server,
        Ok(Err(err)) => return fail(&err),
        Err(err) => {
            eprintln!("mcp-memory-server: opening the memory file failed: {err}");
            return ExitCode::FAILURE;
        }
    };
    match http {
        None => serve_stdio(server, shutdown).await,
        Some(config) => serve_http(server, args.listen, config, shutdown).await,
    }
}

/// The gateway's rule: beyond loopback a token is required, and it protects the server.
fn http_config(args: &Args) -> Result<HttpConfig, String> {
    let mut config = HttpConfig::default();
    if !args.listen.ip().is_loopback() {
        if args.token.is_none() {
            return Err(format!(
                "listening on {} (beyond loopback) needs a token: pass --token or set MCP_MEMORY_TOKEN",
                args.listen
            ));
        }
        // Clients use whatever name reaches this host, unless --allow-host names them.
        if args.allow_hosts.is_empty() {
            config = config.with_any_host();
        }
    }
    config = config.with_allowed_hosts(args.allow_hosts.iter().cloned());
    if let Some(token) = &args.token {
        config = config.with_bearer_token(token.clone());
    }
    Ok(config)
}

async fn serve_stdio(server: MemoryServer, mut shutdown: Shutdown) -> ExitCode {
    tracing::info!(file = %server.path().display(), "serving MCP on stdio");
    let starting = server.serve(rmcp::transport::stdio_pipes());
    let running = tokio::select! {
        started = starting => match started {
            Ok(running) => running,
            Err(err) => {
                eprintln!("mcp-memory-server: the stdio session did not start: {err}");
                return ExitCode::FAILURE;
            }
        },
        () = shutdown.wait() => return ExitCode::SUCCESS,
    };
    let cancel = running.cancellation_token();
    let finished = running.waiting();
    tokio::pin!(finished);
    tokio::select! {
        _ = &mut finished => {}
        () = shutdown.wait() => {
            tracing::info!("shutting down");
            cancel.cancel();
            let _ = finished.await;
        }
    }
    ExitCode::SUCCESS
}

async fn serve_http(
    server: MemoryServer,
    addr: SocketAddr,
    config: HttpConfig,
    mut shutdown: Shutdown,
) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("mcp-memory-server: could not listen on {addr}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(file = %server.path().display(), "listening on http://{local}{MCP_PATH}");
    let stop = CancellationToken::new();
    let serving =
        mcp_memory_server::serve_http(server, listener, config, stop.clone().cancelled_owned());
    tokio::pin!(serving);
    let result = tokio::select! {
        result = &mut serving => result,
        () = shutdown.wait() => {
            tracing::info!("shutting down");
            stop.cancel();
            match tokio::time::timeout(DRAIN_DEADLINE, serving).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!("open requests did not finish in {DRAIN_DEADLINE:?}; exiting anyway");
                    Ok(())
                }
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

/// Prints the error and its causes on stderr and picks the exit code.
fn fail(err: &MemoryError) -> ExitCode {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    eprintln!("mcp-memory-server: {message}");
    match err {
        MemoryError::Corrupt { .. } => ExitCode::from(65),
        _ => ExitCode::FAILURE,
    }
}

/// SIGINT (Ctrl-C) and, on Unix, SIGTERM, registered when created.
struct Shutdown {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Shutdown {
    #[cfg(unix)]
    fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    #[cfg(not(unix))]
    fn listen() -> std::io::Result<Self> {
        Ok(Self {})
    }

    /// Completes at the next signal.
    #[cfg(unix)]
    async fn wait(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }

    #[cfg(not(unix))]
    async fn wait(&mut self) {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
