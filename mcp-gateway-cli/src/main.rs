//! The `mcp-gateway` command: a thin shell that parses flags and the config file, builds the
//! gateway, and serves it over HTTP (`serve`) or stdio (`stdio`). It owns the process: logging,
//! signals and exit codes live here and nowhere else.

mod config_source;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use mcp_gateway_cli::config;
use mcp_gateway_core::discovery::{DnsSrvSource, EnvSource, PortProbeSource};
use mcp_gateway_core::sinks::{JsonLinesConfig, JsonLinesSink, WebhookConfig, WebhookSink};
use mcp_gateway_core::{
    DownstreamConfig, Gateway, GatewayBuilder, InProcessServer, McpServer, Secret, ServerSpec,
};
use mcp_gateway_http::HttpConfig;
use tokio::net::TcpSocket;
use tracing_subscriber::EnvFilter;

/// The gateway's default address.
const DEFAULT_LISTEN: &str = "127.0.0.1:4101";
/// Connections the kernel queues before the gateway accepts them.
const LISTEN_BACKLOG: u32 = 1024;
/// How long the runtime's leftover tasks and blocking threads get once the gateway has stopped.
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(1);

#[derive(Parser)]
#[command(
    name = "mcp-gateway",
    version,
    about = "One MCP endpoint in front of many MCP servers"
)]
struct Cli {
    /// Threads that run the gateway [default: half the available cores, at least one].
    #[arg(long, global = true, env = "MCP_GATEWAY_WORKER_THREADS")]
    worker_threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

/// The default thread count: half the cores. The gateway forwards while its upstreams compute,
/// usually on the same machine (stdio children always); at low concurrency a second thread
/// mostly adds cross-thread wake-ups, which cost more than the forwarding itself (BENCHMARKS.md).
fn default_worker_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |cores| (cores.get() / 2).max(1))
}

#[derive(Subcommand)]
enum Command {
    /// Serve the merged MCP server over Streamable HTTP (`/mcp`) and legacy SSE (`/sse`).
    Serve {
        /// Config file (TOML, or a Claude Desktop / Cursor / VS Code JSON file). Without one, the
        /// bundled memory server runs behind the gateway.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Address to listen on [default: the config's `gateway.listen`, else 127.0.0.1:4101].
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Bearer token clients must send; required when listening beyond loopback.
        #[arg(long, env = "MCP_GATEWAY_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// The bundled memory server's file, when it is the embedded default.
        #[arg(long, env = "MEMORY_FILE_PATH")]
        memory_file: Option<PathBuf>,
    },
    /// Serve the merged MCP server over stdin/stdout, for clients that launch a command.
    Stdio {
        /// Config file, as for `serve`. Without one, the bundled memory server.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The bundled memory server's file, when it is the embedded default.
        #[arg(long, env = "MEMORY_FILE_PATH")]
        memory_file: Option<PathBuf>,
    },
}

/// mimalloc: a sixth fewer instructions per forwarded call than the system allocator, at the same
/// idle memory (see BENCHMARKS.md, "Profile and changes").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Logs go to stderr: in stdio mode stdout carries the protocol.
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let worker_threads = cli
        .worker_threads
        .unwrap_or_else(default_worker_threads)
        .max(1);
    // One thread is the current-thread scheduler: the same single thread of work without the
    // multi-thread scheduler's shared queues, and without a second thread for the accept loop.
    let mut builder = if worker_threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(worker_threads);
        builder
    };
    let runtime = builder.enable_all().build()?;
    let result = runtime.block_on(run(cli.command));
    // Dropping the runtime would wait for its blocking threads, and one of them may be blocked
    // reading stdin (stdio mode) until the client writes or closes it: SIGTERM would not end the
    // process. Everything the gateway owns has been stopped by now.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    result
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve {
            config,
            listen,
            token,
            memory_file,
        } => serve(config.as_deref(), listen, token, memory_file).await,
        Command::Stdio {
            config,
            memory_file,
        } => stdio(config.as_deref(), memory_file).await,
    }
}

/// The config file's settings of the gateway's own surface: read at start, not reloaded.
#[derive(Default)]
struct Surface {
    /// `gateway.listen`.
    listen: Option<String>,
    /// The downstream limits.
    downstream: DownstreamConfig,
    /// `gateway.max_body_bytes`.
    max_body_bytes: Option<usize>,
}

/// Builds the gateway from a config file, or from the embedded default; nothing runs yet. Also
/// returns the config's settings of the gateway's surface.
fn build_gateway(
    config: Option<&Path>,
    memory_file: Option<PathBuf>,
) -> anyhow::Result<(Gateway, Surface)> {
    let mut builder = Gateway::builder();
    let (servers, naming, surface) = match config {
        Some(path) => {
            // Read once up front: a config that is wrong at start stops the gateway with the
            // error; later edits are reloaded by the source and a wrong one keeps the running set.
            let config = config::load(path)?;
            tracing::info!(config = %path.display(), servers = config.servers.len(), "mcp-gateway starting; the config file is watched for edits");
            builder = builder.discovery(Arc::new(config_source::ConfigFileSource::watch(path)?));
            builder = with_discovery(builder, &config.discovery)?;
            builder = with_sinks(builder, &config.sinks)?;
            builder = builder.event_buffers(config.events);
            let surface = Surface {
                listen: config.listen,
                downstream: config.downstream,
                max_body_bytes: config.max_body_bytes,
            };
            (Vec::new(), config.naming, surface)
        }
        None => {
            let file = memory_file.unwrap_or_else(mcp_memory_server::default_memory_file);
            tracing::info!(
                memory_file = %file.display(),
                "mcp-gateway starting with its embedded default: the bundled memory server, in process (pass --config to front your own servers)"
            );
            let memory = mcp_memory_server::MemoryServer::open(&file)
                .with_context(|| format!("opening the memory file {}", file.display()))?;
            let spec = ServerSpec::in_process(
                "memory",
                InProcessServer::new("memory", move || memory.clone()),
            )?;
            (vec![spec], Default::default(), Surface::default())
        }
    };
    builder = builder.naming(naming);
    for spec in servers {
        builder = builder.server(spec);
    }
    Ok((builder.build(), surface))
}

/// Starts the gateway (every upstream's first connection attempt) and logs how each went.
async fn start_gateway(gateway: &Gateway) {
    gateway.start().await;
    for server in gateway.servers() {
        match &server.last_error {
            Some(error) => {
                tracing::warn!(server = %server.id, status = ?server.status, error = ?error, "upstream not connected")
            }
            None => {
                tracing::info!(server = %server.id, status = ?server.status, transport = server.transport, "upstream")
            }
        }
    }
}

async fn serve(
    config: Option<&Path>,
    listen: Option<SocketAddr>,
    token: Option<String>,
    memory_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let (gateway, surface) = build_gateway(config, memory_file)?;
    let address = match (listen, surface.listen) {
        (Some(address), _) => address,
        (None, Some(address)) => address
            .parse()
            .with_context(|| format!("gateway.listen `{address}` is not an address"))?,
        (None, None) => DEFAULT_LISTEN.parse()?,
    };
    let mut http = HttpConfig::default();
    if let Some(max) = surface.max_body_bytes {
        http = http.with_max_body_bytes(max);
    }
    if !address.ip().is_loopback() {
        let Some(token) = &token else {
            bail!(
                "listening on {address} (beyond loopback) needs a token: pass --token or set MCP_GATEWAY_TOKEN"
            );
        };
        // Beyond loopback clients use whatever name reaches this host; the token protects it.
        http = http
            .with_allowed_hosts(None)
            .with_bearer_tokens(vec![Secret::new(token)]);
    } else if let Some(token) = token {
        http = http.with_bearer_tokens(vec![Secret::new(token)]);
    }
    // The address is taken before any upstream starts, so a port in use fails at once rather
    // than after every child has been spawned; it accepts connections only once all is ready.
    let socket = reserve(address).with_context(|| format!("cannot listen on {address}"))?;
    start_gateway(&gateway).await;
    // Binding does not exclude another socket that also set SO_REUSEADDR and is not listening
    // yet; the loser of such a race finds out here.
    let listener = match socket.listen(LISTEN_BACKLOG) {
        Ok(listener) => listener,
        Err(err) => {
            gateway.shutdown().await;
            return Err(err).with_context(|| format!("cannot listen on {address}"));
        }
    };
    tracing::info!(address = %listener.local_addr()?, "serving MCP at http://{}/mcp", listener.local_addr()?);
    let server = McpServer::new(gateway.clone(), surface.downstream);
    let served = mcp_gateway_http::serve(
        listener,
        mcp_gateway_http::router(server, http),
        shutdown_signal(),
    )
    .await;
    tracing::info!("shutting down");
    gateway.shutdown().await;
    served.context("the HTTP server failed")
}

/// A socket bound to `address`, not yet listening.
fn reserve(address: SocketAddr) -> std::io::Result<TcpSocket> {
    let socket = match address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    // As std's `TcpListener::bind` does: a restarted gateway may rebind while its old
    // connections linger in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    Ok(socket)
}

async fn stdio(config: Option<&Path>, memory_file: Option<PathBuf>) -> anyhow::Result<()> {
    let (gateway, surface) = build_gateway(config, memory_file)?;
    start_gateway(&gateway).await;
    let server: Arc<McpServer> = McpServer::new(gateway.clone(), surface.downstream);
    mcp_gateway_core::serve_stdio(
        server,
        tokio::io::stdin(),
        tokio::io::stdout(),
        shutdown_signal(),
    )
    .await;
    gateway.shutdown().await;
    Ok(())
}

/// Adds the `[discovery]` sources of the config.
fn with_discovery(
    mut builder: GatewayBuilder,
    discovery: &config::DiscoveryConfig,
) -> anyhow::Result<GatewayBuilder> {
    if discovery.env {
        builder = builder.discovery(Arc::new(EnvSource::from_process_env()));
    }
    if !discovery.probe_ports.is_empty() {
        let probe =
            PortProbeSource::new(discovery.probe_ports.iter().map(|(id, port)| (id, *port)))
                .context("discovery.probe_ports")?;
        builder = builder.discovery(Arc::new(probe));
    }
    for name in &discovery.dns_srv {
        let source =
            DnsSrvSource::new(name).with_context(|| format!("discovery.dns_srv `{name}`"))?;
        builder = builder.discovery(Arc::new(source));
    }
    Ok(builder)
}

/// Adds the `[sinks]` of the config.
fn with_sinks(
    mut builder: GatewayBuilder,
    sinks: &config::SinksConfig,
) -> anyhow::Result<GatewayBuilder> {
    if let Some((url, headers)) = &sinks.webhook {
        let mut webhook = WebhookConfig::default();
        for (name, value) in headers {
            webhook = webhook.with_header(name.clone(), value.clone());
        }
        let sink = WebhookSink::new(url.expose(), webhook).context("sinks.webhook")?;
        builder = builder.event_sink(Arc::new(sink));
    }
    if let Some(file) = &sinks.events_file {
        let sink = JsonLinesSink::new(file, JsonLinesConfig::default())
            .with_context(|| format!("sinks.events_file {}", file.display()))?;
        builder = builder.event_sink(Arc::new(sink));
    }
    Ok(builder)
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot watch SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
