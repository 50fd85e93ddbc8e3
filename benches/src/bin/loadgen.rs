//! `loadgen`: drives a Streamable HTTP MCP endpoint (or a stdio MCP server it starts) at a fixed
//! concurrency and prints one JSON report (calls, errors, throughput, p50/p90/p99/max latency).
//!
//! ```sh
//! loadgen --url http://127.0.0.1:4101/mcp --concurrency 16 --duration 5
//! loadgen --url http://127.0.0.1:4101/mcp --era stateless --count 100000
//! loadgen --url http://127.0.0.1:4101/mcp --mode setup --concurrency 4 --duration 3
//! loadgen --stdio "target/release/bench-fixture --stdio" --era stateless --concurrency 16
//! ```
//!
//! Each worker owns one keep-alive HTTP/1.1 connection (raw hyper) and, in the session era, one
//! MCP session opened before the clock starts. With `--stdio` every worker shares the one child,
//! its requests multiplexed by id, as a gateway's stdio upstream is. Modes:
//!
//! * `call` — `tools/call` of `--tool` (default `echo {message}`) in a loop;
//! * `setup` — session set-up: `initialize` + `notifications/initialized` + `tools/list` timed as
//!   one operation, then an untimed `DELETE` of the session (so runs do not pile up sessions).
//!
//! All workers connect, then run `--warmup` seconds unmeasured, then the measured window: a fixed
//! `--duration` or a fixed total `--count`. Only successful operations enter the histogram.
//! The report also gives the CPU time per call of the load generator, of a `--stdio` server, and
//! of any process named with `--cpu-pid`, over the same window.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use benches::client::{ClientError, Endpoint, Era, McpClient};
use benches::stats::{CpuPerCall, Report, histogram, process_cpu, record};
use benches::stdio_client::StdioClient;
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::Barrier;

/// What each iteration does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// `tools/call` in a loop.
    Call,
    /// `initialize` + `tools/list` (session era), then `DELETE`.
    Setup,
}

/// Load generator for Streamable HTTP MCP endpoints.
#[derive(Parser)]
#[command(about)]
struct Cli {
    /// The MCP endpoint, `http://HOST:PORT/PATH`.
    #[arg(long, required_unless_present = "stdio", conflicts_with = "stdio")]
    url: Option<String>,
    /// A stdio MCP server to start and drive directly: the command line, split on whitespace.
    #[arg(long)]
    stdio: Option<String>,
    /// Protocol era.
    #[arg(long, value_enum, default_value_t = Era::Session)]
    era: Era,
    /// What each iteration does.
    #[arg(long, value_enum, default_value_t = Mode::Call)]
    mode: Mode,
    /// Concurrent workers (one connection each).
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Measured window in seconds (ignored with --count).
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Measure this many operations in total instead of a fixed time.
    #[arg(long)]
    count: Option<u64>,
    /// Unmeasured seconds before the window.
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
    /// The tool to call.
    #[arg(long, default_value = "echo")]
    tool: String,
    /// The tool's arguments as JSON (default: `{"message": "hello"}`).
    #[arg(long)]
    arguments: Option<String>,
    /// A label copied into the report.
    #[arg(long, default_value = "")]
    label: String,
    /// Worker threads of the runtime (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Report this process's CPU time per call as NAME (`gateway=1234`); repeatable. The load
    /// generator itself is always reported (`loadgen`), and so is a `--stdio` server (`upstream`).
    #[arg(long = "cpu-pid", value_name = "NAME=PID", value_parser = parse_cpu_pid)]
    cpu_pids: Vec<(String, u32)>,
}

/// What one worker measured.
fn parse_cpu_pid(text: &str) -> Result<(String, u32), String> {
    let (name, pid) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not NAME=PID"))?;
    let pid = pid
        .parse()
        .map_err(|err| format!("`{pid}` is not a process id: {err}"))?;
    Ok((name.to_owned(), pid))
}

struct WorkerResult {
    latencies: Histogram<u64>,
    errors: u64,
    first_error: Option<String>,
    /// When its last measured operation ended.
    finished: Instant,
}

/// What a worker talks to.
enum Target {
    /// Its own connection to an HTTP endpoint.
    Http(Box<McpClient>),
    /// The stdio child every worker shares.
    Stdio(Arc<StdioClient>),
}

/// Settings every worker shares.
struct Plan {
    era: Era,
    mode: Mode,
    tool: String,
    arguments: Value,
    warmup: Duration,
    /// `None` in count mode.
    window: Option<Duration>,
    /// Operations left to start, in count mode.
    remaining: AtomicI64,
    /// Every worker is connected; the warm-up starts.
    start: Barrier,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    if cli.concurrency == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    if cli.mode == Mode::Setup && (cli.era != Era::Session || cli.stdio.is_some()) {
        return Err(
            "--mode setup measures HTTP session set-up: use --url and --era session".into(),
        );
    }
    let arguments = match &cli.arguments {
        Some(text) => serde_json::from_str(text)?,
        None => json!({ "message": "hello" }),
    };
    let count = cli.count.map(|c| i64::try_from(c).unwrap_or(i64::MAX));
    let plan = Arc::new(Plan {
        era: cli.era,
        mode: cli.mode,
        tool: cli.tool.clone(),
        arguments,
        warmup: Duration::from_secs_f64(cli.warmup.max(0.0)),
        window: count
            .is_none()
            .then(|| Duration::from_secs_f64(cli.duration.max(0.001))),
        remaining: AtomicI64::new(count.unwrap_or(i64::MAX)),
        start: Barrier::new(cli.concurrency + 1),
    });
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = cli.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = runtime.enable_all().build()?;
    let report = runtime.block_on(run(&cli, plan))?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

async fn run(cli: &Cli, plan: Arc<Plan>) -> Result<Report, Box<dyn std::error::Error>> {
    // Connect every worker before the clock starts; a failed connection fails the run.
    let mut clients = Vec::with_capacity(cli.concurrency);
    let mut watched = cli.cpu_pids.clone();
    watched.push(("loadgen".into(), std::process::id()));
    // The stdio server lives as long as a client holds it: this one keeps it for the last reading.
    let mut stdio_server = None;
    if let Some(command) = &cli.stdio {
        let command: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
        let child = StdioClient::spawn(&command, plan.era)
            .await
            .map_err(|err| format!("starting {command:?}: {err}"))?;
        watched.extend(child.pid().map(|pid| ("upstream".to_owned(), pid)));
        let child = Arc::new(child);
        stdio_server = Some(child.clone());
        clients.extend((0..cli.concurrency).map(|_| Target::Stdio(child.clone())));
    }
    if let Some(url) = &cli.url {
        let endpoint = Endpoint::parse(url)?;
        for _ in 0..cli.concurrency {
            let client = McpClient::connect(endpoint.clone(), plan.era)
                .await
                .map_err(|err| format!("connecting to {url}: {err}"))?;
            clients.push(Target::Http(Box::new(client)));
        }
    }
    let workers: Vec<_> = clients
        .into_iter()
        .map(|client| tokio::spawn(worker(client, plan.clone())))
        .collect();
    plan.start.wait().await;
    let measured_from = Instant::now() + plan.warmup;
    let cpu_pids = watched.clone();
    let cpu_at_start = tokio::spawn(async move {
        tokio::time::sleep_until(measured_from.into()).await;
        read_cpu(&cpu_pids)
    });
    let mut latencies = histogram();
    let mut errors = 0;
    let mut first_error = None;
    let mut finished = measured_from;
    for worker in workers {
        let result = worker.await?;
        latencies.add(&result.latencies)?;
        errors += result.errors;
        first_error = first_error.or(result.first_error);
        finished = finished.max(result.finished);
    }
    let mode = match cli.mode {
        Mode::Call => "call",
        Mode::Setup => "setup",
    };
    let cpu_at_end = read_cpu(&watched);
    drop(stdio_server);
    let cpu_at_start = cpu_at_start.await?;
    let mut report = Report::new(
        cli.label.clone(),
        mode.into(),
        plan.era,
        cli.concurrency,
        &latencies,
        errors,
        finished.saturating_duration_since(measured_from),
        first_error,
    );
    for (name, after) in cpu_at_end {
        if let Some(before) = cpu_at_start.get(&name) {
            let per_call = CpuPerCall::between(*before, after, report.calls);
            report.cpu.insert(name, per_call);
        }
    }
    Ok(report)
}

/// The CPU time so far of each watched process that still runs.
fn read_cpu(watched: &[(String, u32)]) -> BTreeMap<String, (f64, f64)> {
    watched
        .iter()
        .filter_map(|(name, pid)| Some((name.clone(), process_cpu(*pid)?)))
        .collect()
}

async fn worker(mut client: Target, plan: Arc<Plan>) -> WorkerResult {
    plan.start.wait().await;
    let measured_from = Instant::now() + plan.warmup;
    let deadline = plan.window.map(|window| measured_from + window);
    let mut result = WorkerResult {
        latencies: histogram(),
        errors: 0,
        first_error: None,
        finished: measured_from,
    };
    // Set-up iterations open their own sessions: drop the one `connect` opened.
    if let (Mode::Setup, Target::Http(client)) = (plan.mode, &mut client) {
        let _ = client.close_session().await;
    }
    // Warm-up: same work, not recorded.
    while Instant::now() < measured_from {
        let _ = operation(&mut client, &plan).await;
        clean_up(&mut client, &plan).await;
    }
    loop {
        match deadline {
            Some(deadline) if Instant::now() >= deadline => break,
            None if plan.remaining.fetch_sub(1, Ordering::Relaxed) <= 0 => break,
            _ => {}
        }
        let started = Instant::now();
        let outcome = operation(&mut client, &plan).await;
        let ended = Instant::now();
        match outcome {
            Ok(()) => record(&mut result.latencies, ended - started),
            Err(err) => {
                result.errors += 1;
                result.first_error.get_or_insert_with(|| err.to_string());
            }
        }
        result.finished = ended;
        clean_up(&mut client, &plan).await;
    }
    if let (Era::Session, Target::Http(client)) = (plan.era, &mut client) {
        let _ = client.close_session().await;
    }
    result
}

/// After a set-up iteration, ends its session (untimed).
async fn clean_up(client: &mut Target, plan: &Plan) {
    if let (Mode::Setup, Target::Http(client)) = (plan.mode, client) {
        let _ = client.close_session().await;
    }
}

async fn operation(client: &mut Target, plan: &Plan) -> Result<(), ClientError> {
    match (plan.mode, client) {
        (Mode::Call, Target::Http(client)) => client
            .call_tool(&plan.tool, &plan.arguments)
            .await
            .map(drop),
        (Mode::Call, Target::Stdio(child)) => {
            child.call_tool(&plan.tool, &plan.arguments).await.map(drop)
        }
        (Mode::Setup, Target::Http(client)) => {
            client.initialize().await?;
            client.list_tools().await?;
            Ok(())
        }
        (Mode::Setup, Target::Stdio(_)) => Err(ClientError::BadAnswer(
            "set-up mode needs an HTTP endpoint".into(),
        )),
    }
}
