//! `isolation`: how much one upstream turning hostile costs its healthy sibling. Prints, per
//! hostile behaviour, the sibling's call latency before and during it, as ratios (Markdown).
//!
//! ```sh
//! cargo build --release -p mcp-gateway-cli -p mcp-memory-server -p benches --bins
//! target/release/isolation --seconds 10
//! ```
//!
//! For each behaviour a fresh `mcp-gateway serve` (the real binary) fronts two stdio upstreams:
//! `memory` (the bundled `mcp-memory-server --stdio`, the healthy sibling) and `hostile` (the
//! Python fixture `mcp-gateway-core/tests/fixtures/hostile_server.py`). `--concurrency` session
//! clients call `memory__search_nodes` back to back for `--seconds` (the "before" window); then
//! the fixture is told to misbehave and the same load runs for another `--seconds` ("during"):
//!
//! * `flood-log` — it sends `notifications/message` as fast as it can write;
//! * `flood-list` — it sends `notifications/tools/list_changed` as fast as it can write;
//! * `huge` — one client calls its `huge` tool back to back, each answer a 100 MB line;
//! * `stop-reading` — it stops reading its stdin, and `--concurrency` clients keep calling it
//!   (each call waits for the 5 s request timeout of its config).
//!
//! Also reported: the gateway's CPU time and RSS at the end of each window, and how many
//! "signal queue full" lines its log holds.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use benches::client::{Endpoint, Era, McpClient};
use benches::process::{BoxError, Server, quoted, start_gateway, status_field, wait_listing};
use benches::stats::{histogram, process_cpu, record};
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use serde_json::json;

/// The fixture that turns hostile on command.
const HOSTILE_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../mcp-gateway-core/tests/fixtures/hostile_server.py"
);

/// How long one call of the healthy upstream may take before it counts as an error.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How the hostile upstream misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Behaviour {
    FloodLog,
    FloodList,
    Huge,
    StopReading,
}

/// Measures a healthy upstream's latency before and while its sibling misbehaves.
#[derive(Parser)]
#[command(about)]
struct Cli {
    /// The `mcp-gateway` binary [default: next to this one].
    #[arg(long)]
    gateway: Option<PathBuf>,
    /// The `mcp-memory-server` binary [default: next to this one].
    #[arg(long)]
    memory_server: Option<PathBuf>,
    /// Seconds of each window (before, during).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Session clients calling the healthy upstream.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// The behaviours to measure.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "flood-log,flood-list,huge,stop-reading"
    )]
    behaviours: Vec<Behaviour>,
}

fn main() -> Result<(), BoxError> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli))
}

/// One window's figures.
struct Window {
    calls: u64,
    errors: u64,
    p50_us: f64,
    p99_us: f64,
    gateway_cpu_s: f64,
    rss_kb: u64,
}

async fn run(cli: Cli) -> Result<(), BoxError> {
    let here = std::env::current_exe()?;
    let dir = here.parent().ok_or("this binary has no directory")?;
    let gateway = cli
        .gateway
        .clone()
        .unwrap_or_else(|| dir.join("mcp-gateway"));
    let memory = cli
        .memory_server
        .clone()
        .unwrap_or_else(|| dir.join("mcp-memory-server"));
    for binary in [&gateway, &memory] {
        if !binary.is_file() {
            return Err(format!(
                "{} not found: cargo build --release -p mcp-gateway-cli -p mcp-memory-server -p benches --bins",
                binary.display()
            )
            .into());
        }
    }
    let mut rows = Vec::new();
    for &behaviour in &cli.behaviours {
        eprintln!("isolation: {behaviour:?}");
        let work = tempfile::tempdir()?;
        let server = start(&gateway, &memory, work.path()).await?;
        let measured = measure(&cli, &server, behaviour).await;
        let warnings = std::fs::read_to_string(work.path().join("gateway"))
            .map(|log| log.matches("signal queue full").count())
            .unwrap_or_default();
        server.stop().await;
        let (before, during) = measured?;
        rows.push((behaviour, before, during, warnings));
    }
    println!(
        "| behaviour | calls before / during | errors during | p50 before → during (µs) | p50 ratio | p99 before → during (µs) | p99 ratio | gateway CPU during (s) | gateway RSS before → during (MiB) | \"signal queue full\" log lines |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (behaviour, before, during, warnings) in rows {
        println!(
            "| {behaviour:?} | {} / {} | {} | {:.0} → {:.0} | {:.2} | {:.0} → {:.0} | {:.2} | {:.2} | {:.1} → {:.1} | {warnings} |",
            before.calls,
            during.calls,
            during.errors,
            before.p50_us,
            during.p50_us,
            during.p50_us / before.p50_us,
            before.p99_us,
            during.p99_us,
            during.p99_us / before.p99_us,
            during.gateway_cpu_s,
            before.rss_kb as f64 / 1024.0,
            during.rss_kb as f64 / 1024.0,
        );
    }
    Ok(())
}

/// A gateway fronting the memory server and the hostile fixture, both over stdio.
async fn start(gateway: &Path, memory: &Path, work: &Path) -> Result<Server, BoxError> {
    let config = work.join("gateway.toml");
    let memory_file = work.join("memory.jsonl");
    std::fs::write(
        &config,
        format!(
            "[servers.memory]\ncommand = {}\nargs = [\"--stdio\", \"--file\", {}]\n\n\
             [servers.hostile]\ncommand = \"python3\"\nargs = [{}]\nrequest_timeout_secs = 5\n",
            quoted(&memory.display().to_string()),
            quoted(&memory_file.display().to_string()),
            quoted(HOSTILE_FIXTURE),
        ),
    )?;
    let server = start_gateway(gateway, &config, work, "gateway", 1).await?;
    wait_listing(&server.url, |names| {
        names.iter().any(|name| name == "hostile__pong")
            && names.iter().any(|name| name == "memory__search_nodes")
    })
    .await?;
    Ok(server)
}

/// The before and during windows of one behaviour.
async fn measure(
    cli: &Cli,
    server: &Server,
    behaviour: Behaviour,
) -> Result<(Window, Window), BoxError> {
    let pid = server.process.id().ok_or("the gateway has exited")?;
    let endpoint = Endpoint::parse(&server.url)?;
    let window = Duration::from_secs_f64(cli.seconds);
    let before = sibling_load(&endpoint, cli.concurrency, window, pid).await?;

    let mut control = McpClient::connect(endpoint.clone(), Era::Session).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut hostile = Vec::new();
    match behaviour {
        Behaviour::FloodLog => {
            control
                .call_tool("hostile__flood", &json!({ "kind": "message" }))
                .await?;
        }
        Behaviour::FloodList => {
            control
                .call_tool("hostile__flood", &json!({ "kind": "tools" }))
                .await?;
        }
        Behaviour::Huge => {
            hostile.push(tokio::spawn(keep_calling(
                endpoint.clone(),
                "hostile__huge",
                stop.clone(),
            )));
        }
        Behaviour::StopReading => {
            control
                .call_tool("hostile__stop_reading", &json!({}))
                .await?;
            for _ in 0..cli.concurrency {
                hostile.push(tokio::spawn(keep_calling(
                    endpoint.clone(),
                    "hostile__pong",
                    stop.clone(),
                )));
            }
        }
    }
    let during = sibling_load(&endpoint, cli.concurrency, window, pid).await;
    stop.store(true, Ordering::Relaxed);
    for task in hostile {
        task.abort();
    }
    Ok((before, during?))
}

/// Calls `tool` of the hostile upstream back to back until `stop`, ignoring the outcome.
async fn keep_calling(endpoint: Endpoint, tool: &'static str, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        if let Ok(mut client) = McpClient::connect(endpoint.clone(), Era::Session).await {
            while !stop.load(Ordering::Relaxed) {
                if client.call_tool(tool, &json!({})).await.is_err() {
                    break;
                }
            }
            let _ = client.close_session().await;
        }
    }
}

/// `concurrency` session clients calling the healthy upstream back to back for `window`.
async fn sibling_load(
    endpoint: &Endpoint,
    concurrency: usize,
    window: Duration,
    pid: u32,
) -> Result<Window, BoxError> {
    let cpu_before = process_cpu(pid).unwrap_or_default();
    let errors = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + window;
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let mut client = McpClient::connect(endpoint.clone(), Era::Session).await?;
        let errors = errors.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = histogram();
            let arguments = json!({ "query": "nothing" });
            while Instant::now() < deadline {
                let started = Instant::now();
                let call = client.call_tool("memory__search_nodes", &arguments);
                match tokio::time::timeout(CALL_TIMEOUT, call).await {
                    Ok(Ok(_)) => record(&mut latencies, started.elapsed()),
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            let _ = client.close_session().await;
            latencies
        }));
    }
    let mut latencies: Histogram<u64> = histogram();
    for worker in workers {
        latencies.add(worker.await?)?;
    }
    let cpu_after = process_cpu(pid).unwrap_or_default();
    let us = |quantile: f64| latencies.value_at_quantile(quantile) as f64 / 1e3;
    Ok(Window {
        calls: latencies.len(),
        errors: errors.load(Ordering::Relaxed),
        p50_us: us(0.5),
        p99_us: us(0.99),
        gateway_cpu_s: (cpu_after.0 + cpu_after.1) - (cpu_before.0 + cpu_before.1),
        rss_kb: status_field(pid, "VmRSS").unwrap_or_default(),
    })
}
