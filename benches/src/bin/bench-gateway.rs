//! `bench-gateway`: measures the gateway against the upstream it fronts, in one run, and prints
//! the figures as ratios to direct (Markdown on stdout; every raw report as JSON with `--out`).
//!
//! ```sh
//! cargo build --release -p mcp-gateway-cli -p benches --bins
//! target/release/bench-gateway                       # or: benches/bench-gateway.sh
//! target/release/bench-gateway --rounds 5 --duration 3 --out /tmp/bench.json
//! ```
//!
//! What runs (all on loopback, every process a child of this one, all stopped at the end):
//!
//! * `bench-fixture --listen` — the HTTP upstream, also the "direct" target;
//! * `bench-fixture --stdio` driven by `loadgen --stdio` ("direct-stdio"): the baseline of the
//!   `gateway-stdio` rows, so that they compare the same stdio server with and without the
//!   gateway;
//! * `mcp-gateway serve` fronting that fixture over Streamable HTTP (`gateway-http`: the upstream
//!   era is negotiated, which gives 2026-07-28), the same with the upstream pinned to the session
//!   era (`gateway-http-session`), and one fronting
//!   `bench-fixture --stdio` (`gateway-stdio`), all with `prefix = "never"` so the tool is `echo`
//!   everywhere;
//! * `loadgen`, once per measurement, in its own process.
//!
//! 1. **Throughput and latency**: for each era and each concurrency (1, 16, 64), `--rounds`
//!    rounds of direct → the two HTTP gateways → direct-stdio → gateway-stdio, each `--duration`
//!    seconds of `tools/call echo` after `--warmup`. Ratios are taken per round (gateway over the
//!    direct run of the same kind in that round) and the median is reported, so drift in the
//!    machine's load cancels out. Each run also reports the CPU time per call (user + system)
//!    of the gateway, the upstream and the load generator over the measured window: a figure
//!    that waiting for a core on a busy machine does not inflate.
//! 2. **Session set-up rate**: `initialize` + `tools/list` per iteration, direct and gateway-http,
//!    interleaved the same way.
//! 3. **Peak RSS** (`VmHWM`) of both gateways after all of that.
//! 4. **Start-up**: a fresh gateway with three stdio upstreams (`bench-fixture --stdio`, or
//!    `--start-command`), from process start to the first successful `tools/list` that lists
//!    all their tools; compared with three bare upstreams started at once and handshaken over
//!    stdio (the upstreams' own start).
//! 5. **Idle memory**: that gateway's `VmRSS` with three idle upstreams, then with `--sessions`
//!    idle downstream sessions (initialized, no traffic); the same for the direct fixture.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use benches::client::{Endpoint, Era, McpClient};
use benches::process::{
    BoxError, READY_TIMEOUT, Server, child_pids, log_file, quoted, start_gateway, status_field,
    wait_ready,
};
use benches::stats::{CpuPerCall, Report, median};
use clap::Parser;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// Runs the gateway benchmarks and prints ratios to direct.
#[derive(Parser)]
#[command(about)]
struct Cli {
    /// The `mcp-gateway` binary [default: next to this one].
    #[arg(long)]
    gateway: Option<PathBuf>,
    /// Measured seconds per load run.
    #[arg(long, default_value_t = 2.0)]
    duration: f64,
    /// Unmeasured seconds before each load run.
    #[arg(long, default_value_t = 0.3)]
    warmup: f64,
    /// Interleaved rounds per configuration.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Concurrency levels.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
    /// Protocol eras of the downstream client.
    #[arg(long, value_delimiter = ',', default_value = "session,stateless")]
    eras: Vec<Era>,
    /// Concurrency of the session set-up runs.
    #[arg(long, default_value_t = 4)]
    setup_concurrency: usize,
    /// Idle downstream sessions for the memory figure.
    #[arg(long, default_value_t = 1000)]
    sessions: usize,
    /// Repetitions of the start-up measurement.
    #[arg(long, default_value_t = 5)]
    start_rounds: usize,
    /// The stdio upstream of the start-up and idle-memory measurements, as a command line split
    /// on whitespace [default: `bench-fixture --stdio`], e.g.
    /// `env MEMORY_FILE_PATH=/tmp/m.jsonl peers/node_modules/.bin/mcp-server-memory`.
    #[arg(long)]
    start_command: Option<String>,
    /// Skip the load and set-up runs: measure idle memory and start-up only.
    #[arg(long)]
    skip_load: bool,
    /// Write every raw figure here as JSON.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Everything measured, for `--out`.
#[derive(Serialize, Default)]
struct Results {
    load: Vec<Report>,
    setup: Vec<Report>,
    peak_rss_kb: BTreeMap<String, u64>,
    start_ms: BTreeMap<String, Vec<f64>>,
    idle_rss_kb: BTreeMap<String, u64>,
}

fn main() -> Result<(), BoxError> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli))
}

/// Paths of the binaries this runner starts.
struct Binaries {
    gateway: PathBuf,
    fixture: PathBuf,
    loadgen: PathBuf,
}

fn binaries(cli: &Cli) -> Result<Binaries, BoxError> {
    let here = std::env::current_exe()?;
    let dir = here.parent().ok_or("this binary has no directory")?;
    let found = |path: PathBuf| -> Result<PathBuf, BoxError> {
        if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{} not found: build it first (cargo build --release -p mcp-gateway-cli -p benches --bins)",
                path.display()
            )
            .into())
        }
    };
    Ok(Binaries {
        gateway: found(
            cli.gateway
                .clone()
                .unwrap_or_else(|| dir.join("mcp-gateway")),
        )?,
        fixture: found(dir.join("bench-fixture"))?,
        loadgen: found(dir.join("loadgen"))?,
    })
}

async fn run(cli: Cli) -> Result<(), BoxError> {
    let bin = binaries(&cli)?;
    let work = tempfile::tempdir()?;
    let mut results = Results::default();

    let fixture = start_fixture(&bin, work.path()).await?;
    let direct = fixture.url.clone();
    let http_config = write_config(
        work.path(),
        "gateway-http.toml",
        &format!("[servers.fixture]\nurl = {}\n", quoted(&direct)),
    )?;
    let stdio_config = write_config(
        work.path(),
        "gateway-stdio.toml",
        &format!(
            "[servers.fixture]\ncommand = {}\nargs = [\"--stdio\"]\n",
            quoted(&bin.fixture.display().to_string())
        ),
    )?;
    let session_config = write_config(
        work.path(),
        "gateway-http-session.toml",
        &format!(
            "[servers.fixture]\nurl = {}\nprotocol = \"session\"\n",
            quoted(&direct)
        ),
    )?;
    let gateway_http =
        start_gateway(&bin.gateway, &http_config, work.path(), "gateway-http", 2).await?;
    let gateway_session = start_gateway(
        &bin.gateway,
        &session_config,
        work.path(),
        "gateway-http-session",
        2,
    )
    .await?;
    let gateway_stdio =
        start_gateway(&bin.gateway, &stdio_config, work.path(), "gateway-stdio", 2).await?;
    let stdio_command = format!("{} --stdio", bin.fixture.display());
    // Each target's loadgen arguments: where to send the load, and whose CPU time to report.
    let fixture_pid = fixture.process.id();
    let http_target = |url: &str, gateway: Option<&Server>| {
        let mut args = vec!["--url".to_owned(), url.to_owned()];
        args.extend(cpu_pid_args("upstream", fixture_pid));
        args.extend(cpu_pid_args(
            "gateway",
            gateway.and_then(|g| g.process.id()),
        ));
        args
    };
    let gateway_stdio_pid = gateway_stdio.process.id();
    let mut gateway_stdio_target = vec!["--url".to_owned(), gateway_stdio.url.clone()];
    gateway_stdio_target.extend(cpu_pid_args("gateway", gateway_stdio_pid));
    let stdio_child = gateway_stdio_pid.and_then(|pid| child_pids(pid).into_iter().next());
    gateway_stdio_target.extend(cpu_pid_args("upstream", stdio_child));
    let targets = [
        ("direct", http_target(&direct, None)),
        (
            "gateway-http",
            http_target(&gateway_http.url, Some(&gateway_http)),
        ),
        (
            "gateway-http-session",
            http_target(&gateway_session.url, Some(&gateway_session)),
        ),
        ("direct-stdio", vec!["--stdio".to_owned(), stdio_command]),
        ("gateway-stdio", gateway_stdio_target),
    ];

    let load_rounds = if cli.skip_load { 0 } else { cli.rounds };
    for &era in &cli.eras {
        for &concurrency in &cli.concurrency {
            for round in 1..=load_rounds {
                for (label, target) in &targets {
                    eprintln!("load: {era} c={concurrency} round {round}: {label}");
                    let report =
                        loadgen(&bin, &cli, target, era, "call", concurrency, label).await?;
                    results.load.push(report);
                }
            }
        }
    }
    for round in 1..=load_rounds {
        for (label, target) in &targets[..3] {
            eprintln!("setup: round {round}: {label}");
            let report = loadgen(
                &bin,
                &cli,
                target,
                Era::Session,
                "setup",
                cli.setup_concurrency,
                label,
            )
            .await?;
            results.setup.push(report);
        }
    }
    for (label, process) in [
        ("fixture", &fixture.process),
        ("gateway-http", &gateway_http.process),
        ("gateway-http-session", &gateway_session.process),
        ("gateway-stdio", &gateway_stdio.process),
    ] {
        if let Some(kb) = process.id().and_then(|pid| status_field(pid, "VmHWM")) {
            results.peak_rss_kb.insert(label.into(), kb);
        }
    }
    gateway_http.stop().await;
    gateway_session.stop().await;
    gateway_stdio.stop().await;

    // Idle memory, direct: the fixture's RSS before and after opening the idle sessions.
    idle_sessions(&fixture, "fixture", cli.sessions, &mut results).await?;
    fixture.stop().await;

    // Start-up: bare upstreams (one, and three at once) versus a gateway with three of them.
    let upstream: Vec<String> = match &cli.start_command {
        Some(line) => line.split_whitespace().map(str::to_owned).collect(),
        None => vec![bin.fixture.display().to_string(), "--stdio".into()],
    };
    let (program, args) = upstream.split_first().ok_or("--start-command is empty")?;
    let args: Vec<String> = args.iter().map(|arg| quoted(arg)).collect();
    let three_config = write_config(
        work.path(),
        "gateway-three.toml",
        &["a", "b", "c"]
            .iter()
            .map(|name| {
                format!(
                    "[servers.{name}]\ncommand = {}\nargs = [{}]\n",
                    quoted(program),
                    args.join(", ")
                )
            })
            .collect::<String>(),
    )?;
    for round in 1..=cli.start_rounds {
        eprintln!("start: round {round}");
        let (one, tools) = upstream_start(&upstream, 1).await?;
        let (three, _) = upstream_start(&upstream, 3).await?;
        let gateway = start_gateway(
            &bin.gateway,
            &three_config,
            work.path(),
            "gateway-three",
            3 * tools,
        )
        .await?;
        push(&mut results.start_ms, "upstream x1", one);
        push(&mut results.start_ms, "upstream x3", three);
        push(&mut results.start_ms, "gateway x3", gateway.ready_ms);
        if round == cli.start_rounds {
            idle_sessions(&gateway, "gateway-three", cli.sessions, &mut results).await?;
        }
        gateway.stop().await;
    }

    print!("{}", summary(&cli, &results));
    if let Some(out) = &cli.out {
        std::fs::write(out, serde_json::to_string_pretty(&results)?)?;
        eprintln!("raw figures written to {}", out.display());
    }
    Ok(())
}

fn push(map: &mut BTreeMap<String, Vec<f64>>, key: &str, value: f64) {
    map.entry(key.into()).or_default().push(value);
}

/// A gateway config; single-upstream configs keep tool names unprefixed (`echo`), the
/// three-upstream one keeps the default prefixes (`a__echo`, …) so that no name collides.
fn write_config(dir: &Path, name: &str, servers: &str) -> Result<PathBuf, BoxError> {
    let path = dir.join(name);
    let gateway = if servers.matches("[servers.").count() == 1 {
        "[gateway]\nprefix = \"never\"\n\n"
    } else {
        ""
    };
    std::fs::write(&path, format!("{gateway}{servers}"))?;
    Ok(path)
}

async fn start_fixture(bin: &Binaries, work: &Path) -> Result<Server, BoxError> {
    let started = Instant::now();
    let mut process = Command::new(&bin.fixture)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(log_file(work, "fixture")?)
        .kill_on_drop(true)
        .spawn()?;
    let stdout = process.stdout.take().ok_or("fixture stdout missing")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(READY_TIMEOUT, lines.next_line())
        .await
        .map_err(|_| "the fixture did not say where it listens")??
        .ok_or("the fixture exited before listening")?;
    let url = line
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("unexpected fixture output: {line}"))?
        .to_owned();
    wait_ready(&url, 2).await?;
    Ok(Server {
        process,
        url,
        ready_ms: started.elapsed().as_secs_f64() * 1e3,
    })
}

/// Runs one `loadgen` against `target` (`--url URL` or `--stdio COMMAND`, and `--cpu-pid`s).
async fn loadgen(
    bin: &Binaries,
    cli: &Cli,
    target: &[String],
    era: Era,
    mode: &str,
    concurrency: usize,
    label: &str,
) -> Result<Report, BoxError> {
    let output = Command::new(&bin.loadgen)
        .args(target)
        .args(["--mode", mode, "--label", label])
        .args(["--era", &era.to_string()])
        .args(["--concurrency", &concurrency.to_string()])
        .args(["--duration", &cli.duration.to_string()])
        .args(["--warmup", &cli.warmup.to_string()])
        .stdin(Stdio::null())
        .output()
        .await?;
    if !output.status.success() {
        return Err(format!(
            "loadgen against {label} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let report: Report = serde_json::from_slice(&output.stdout)?;
    if report.errors > 0 {
        eprintln!(
            "  {} errors, first: {}",
            report.errors,
            report.first_error.as_deref().unwrap_or("?")
        );
    }
    Ok(report)
}

/// Starts `count` bare stdio upstreams at once and handshakes each (`initialize`,
/// `notifications/initialized`, `tools/list`); returns ms until the last one listed its tools,
/// and how many tools one lists.
async fn upstream_start(command: &[String], count: usize) -> Result<(f64, usize), BoxError> {
    let (program, args) = command.split_first().ok_or("empty upstream command")?;
    let started = Instant::now();
    let mut handshakes = Vec::new();
    for _ in 0..count {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        handshakes.push(tokio::spawn(async move {
            let result = stdio_handshake(&mut child).await;
            let elapsed = started.elapsed();
            let _ = child.kill().await;
            result.map(|tools| (elapsed, tools))
        }));
    }
    let mut last = Duration::ZERO;
    let mut tools = 0;
    for handshake in handshakes {
        let (elapsed, listed) = handshake.await??;
        last = last.max(elapsed);
        tools = listed;
    }
    Ok((last.as_secs_f64() * 1e3, tools))
}

/// Returns how many tools the upstream lists.
async fn stdio_handshake(child: &mut Child) -> Result<usize, BoxError> {
    let mut stdin = child.stdin.take().ok_or("upstream stdin missing")?;
    let stdout = child.stdout.take().ok_or("upstream stdout missing")?;
    let messages = [
        json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": { "name": "bench-gateway", "version": "0" } } }),
        json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }),
        json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {} }),
    ];
    let mut lines = BufReader::new(stdout).lines();
    let exchange = async {
        stdin
            .write_all(format!("{}\n", messages[0]).as_bytes())
            .await?;
        wait_for_id(&mut lines, 1).await?;
        for message in &messages[1..] {
            stdin.write_all(format!("{message}\n").as_bytes()).await?;
        }
        let listed = wait_for_id(&mut lines, 2).await?;
        Ok::<_, BoxError>(listed["result"]["tools"].as_array().map_or(0, Vec::len))
    };
    tokio::time::timeout(READY_TIMEOUT, exchange)
        .await
        .map_err(|_| "the stdio upstream did not answer")?
}

/// Reads lines until the response with this id, and returns it.
async fn wait_for_id(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    id: u64,
) -> Result<Value, BoxError> {
    while let Some(line) = lines.next_line().await? {
        let message: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if message["id"].as_u64() == Some(id) {
            return Ok(message);
        }
    }
    Err("the stdio upstream closed its stdout".into())
}

/// Records `VmRSS` of a server, opens `sessions` idle sessions on it, and records it again.
async fn idle_sessions(
    server: &Server,
    label: &str,
    sessions: usize,
    results: &mut Results,
) -> Result<(), BoxError> {
    let pid = server.process.id().ok_or("the server has exited")?;
    settle().await;
    let before = status_field(pid, "VmRSS").ok_or("no VmRSS")?;
    let mut client = McpClient::connect(Endpoint::parse(&server.url)?, Era::Session).await?;
    // `connect` opened the first session; every `initialize` opens one more.
    for _ in 1..sessions {
        client.initialize().await?;
    }
    settle().await;
    let after = status_field(pid, "VmRSS").ok_or("no VmRSS")?;
    results.idle_rss_kb.insert(format!("{label} idle"), before);
    results
        .idle_rss_kb
        .insert(format!("{label} + {sessions} sessions"), after);
    Ok(())
}

/// Lets a server finish what the last requests started (freed buffers, finished tasks).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// `loadgen` arguments that report `pid`'s CPU time per call as `name`; none if it is unknown.
fn cpu_pid_args(name: &str, pid: Option<u32>) -> Vec<String> {
    pid.map(|pid| vec!["--cpu-pid".to_owned(), format!("{name}={pid}")])
        .unwrap_or_default()
}

/// The figures as ratios to direct, with the issue's targets.
fn summary(cli: &Cli, results: &Results) -> String {
    let mut out = String::new();
    let mut checks = Vec::new();
    if !results.load.is_empty() {
        load_summary(cli, results, &mut out, &mut checks);
    }
    memory_and_start_summary(cli, results, &mut out, &mut checks);
    let _ = writeln!(
        out,
        "\n## Targets\n\n| target | measured | met |\n|---|---|---|"
    );
    for line in checks {
        let _ = writeln!(out, "{line}");
    }
    out
}

/// Throughput, latency and session set-up, with their targets.
fn load_summary(cli: &Cli, results: &Results, out: &mut String, checks: &mut Vec<String>) {
    let _ = writeln!(
        out,
        "\n## Throughput and latency (`tools/call echo`; medians of {} rounds of {} s)\n",
        cli.rounds, cli.duration
    );
    let _ = writeln!(
        out,
        "| era | conc. | direct | direct calls/s | direct p50 / p99 µs | target | calls/s (× direct) | p50 µs (Δ direct) | p99 µs (× direct) | errors |"
    );
    let _ = writeln!(out, "|---|---:|---|---:|---:|---|---:|---:|---:|---:|");
    for &era in &cli.eras {
        for &concurrency in &cli.concurrency {
            let runs = |label: &str| -> Vec<&Report> {
                results
                    .load
                    .iter()
                    .filter(|r| r.era == era && r.concurrency == concurrency && r.label == label)
                    .collect()
            };
            let figure = |runs: &[&Report], pick: fn(&Report) -> f64| {
                median(&runs.iter().map(|r| pick(r)).collect::<Vec<_>>())
            };
            for (label, baseline) in [
                ("gateway-http", "direct"),
                ("gateway-http-session", "direct"),
                ("gateway-stdio", "direct-stdio"),
                ("gateway-stdio", "direct"),
            ] {
                let gateway = runs(label);
                let direct = runs(baseline);
                if gateway.is_empty() || direct.is_empty() {
                    continue;
                }
                let paired = |pick: fn(&Report) -> f64, ratio: bool| {
                    let values: Vec<f64> = gateway
                        .iter()
                        .zip(&direct)
                        .map(|(g, d)| {
                            if ratio {
                                pick(g) / pick(d)
                            } else {
                                pick(g) - pick(d)
                            }
                        })
                        .collect();
                    median(&values)
                };
                let throughput_ratio = paired(|r| r.throughput, true);
                let p50_delta = paired(|r| r.p50_us, false);
                let p99_ratio = paired(|r| r.p99_us, true);
                let errors: u64 = gateway.iter().map(|r| r.errors).sum();
                let _ = writeln!(
                    out,
                    "| {era} | {concurrency} | {baseline} | {:.0} | {:.0} / {:.0} | {label} | {:.0} ({throughput_ratio:.2}×) | {:.0} ({p50_delta:+.0}) | {:.0} ({p99_ratio:.2}×) | {errors} |",
                    figure(&direct, |r| r.throughput),
                    figure(&direct, |r| r.p50_us),
                    figure(&direct, |r| r.p99_us),
                    figure(&gateway, |r| r.throughput),
                    figure(&gateway, |r| r.p50_us),
                    figure(&gateway, |r| r.p99_us),
                );
                // The stdio gateway against the HTTP server is shown, not judged: it compares two
                // different upstream servers as much as it measures the gateway.
                if label == "gateway-stdio" && baseline == "direct" {
                    continue;
                }
                if concurrency == 1 {
                    checks.push(check(
                        format!("{era} c=1 {label}: p50 ≤ {baseline} + 100 µs"),
                        format!("{p50_delta:+.0} µs"),
                        p50_delta <= 100.0,
                    ));
                    checks.push(check(
                        format!("{era} c=1 {label}: p99 ≤ 2× {baseline}"),
                        format!("{p99_ratio:.2}×"),
                        p99_ratio <= 2.0,
                    ));
                } else {
                    checks.push(check(
                        format!("{era} c={concurrency} {label}: throughput ≥ 0.5× {baseline}"),
                        format!("{throughput_ratio:.2}×"),
                        throughput_ratio >= 0.5,
                    ));
                }
                if label == "gateway-stdio" && concurrency == 16 {
                    let calls = figure(&gateway, |r| r.throughput);
                    checks.push(check(
                        format!("{era} c=16 stdio upstream: ≥ 5,000 calls/s"),
                        format!("{calls:.0} calls/s"),
                        calls >= 5_000.0,
                    ));
                }
            }
        }
    }

    cpu_summary(cli, results, out);

    let _ = writeln!(
        out,
        "\n## Session set-up (`initialize` + `notifications/initialized` + `tools/list`, concurrency {})\n",
        cli.setup_concurrency
    );
    let _ = writeln!(
        out,
        "| target | set-ups/s | × direct | p50 µs | p99 µs |\n|---|---:|---:|---:|---:|"
    );
    let setups = |label: &str| -> Vec<&Report> {
        results.setup.iter().filter(|r| r.label == label).collect()
    };
    let direct_setups = setups("direct");
    for label in ["direct", "gateway-http", "gateway-http-session"] {
        let runs = setups(label);
        let ratio = median(
            &runs
                .iter()
                .zip(&direct_setups)
                .map(|(g, d)| g.throughput / d.throughput)
                .collect::<Vec<_>>(),
        );
        let _ = writeln!(
            out,
            "| {label} | {:.0} | {ratio:.2}× | {:.0} | {:.0} |",
            median(&runs.iter().map(|r| r.throughput).collect::<Vec<_>>()),
            median(&runs.iter().map(|r| r.p50_us).collect::<Vec<_>>()),
            median(&runs.iter().map(|r| r.p99_us).collect::<Vec<_>>()),
        );
    }
}

/// CPU time per call of each process, which waiting for a core on a busy machine does not
/// inflate the way it inflates latency.
fn cpu_summary(cli: &Cli, results: &Results, out: &mut String) {
    let _ = writeln!(
        out,
        "\n## CPU time per call (µs: user + system; medians of {} rounds)\n",
        cli.rounds
    );
    let _ = writeln!(
        out,
        "| era | conc. | target | gateway | upstream | loadgen |\n|---|---:|---|---:|---:|---:|"
    );
    for &era in &cli.eras {
        for &concurrency in &cli.concurrency {
            for label in [
                "direct",
                "gateway-http",
                "gateway-http-session",
                "direct-stdio",
                "gateway-stdio",
            ] {
                let runs: Vec<&Report> = results
                    .load
                    .iter()
                    .filter(|r| r.era == era && r.concurrency == concurrency && r.label == label)
                    .collect();
                if runs.is_empty() {
                    continue;
                }
                let cell = |process: &str| {
                    let of = |pick: fn(&CpuPerCall) -> f64| {
                        let values: Vec<f64> = runs
                            .iter()
                            .filter_map(|r| r.cpu.get(process).map(pick))
                            .collect();
                        (!values.is_empty()).then(|| median(&values))
                    };
                    match (
                        of(CpuPerCall::total_us),
                        of(|c| c.user_us),
                        of(|c| c.system_us),
                    ) {
                        (Some(total), Some(user), Some(system)) => {
                            format!("{total:.1} ({user:.1} + {system:.1})")
                        }
                        _ => "—".to_owned(),
                    }
                };
                let _ = writeln!(
                    out,
                    "| {era} | {concurrency} | {label} | {} | {} | {} |",
                    cell("gateway"),
                    cell("upstream"),
                    cell("loadgen"),
                );
            }
        }
    }
}

/// Memory and start-up, with their targets.
fn memory_and_start_summary(
    cli: &Cli,
    results: &Results,
    out: &mut String,
    checks: &mut Vec<String>,
) {
    let _ = writeln!(
        out,
        "\n## Memory\n\n| process | figure | MB |\n|---|---|---:|"
    );
    for (label, kb) in &results.peak_rss_kb {
        let _ = writeln!(
            out,
            "| {label} | peak RSS (VmHWM) after the load runs | {:.1} |",
            *kb as f64 / 1024.0
        );
    }
    for (label, kb) in &results.idle_rss_kb {
        let _ = writeln!(out, "| {label} | VmRSS | {:.1} |", *kb as f64 / 1024.0);
    }
    let per_session = |label: &str| -> Option<f64> {
        let before = results.idle_rss_kb.get(&format!("{label} idle"))?;
        let after = results
            .idle_rss_kb
            .get(&format!("{label} + {} sessions", cli.sessions))?;
        Some((*after as f64 - *before as f64) / cli.sessions.max(1) as f64)
    };
    let gateway_session = per_session("gateway-three");
    let fixture_session = per_session("fixture");
    let _ = writeln!(
        out,
        "\nPer idle downstream session: gateway {} KB, direct fixture (rmcp) {} KB.",
        gateway_session.map_or("?".into(), |kb| format!("{kb:.1}")),
        fixture_session.map_or("?".into(), |kb| format!("{kb:.1}")),
    );
    if let Some(idle) = results.idle_rss_kb.get("gateway-three idle") {
        let mb = *idle as f64 / 1024.0;
        checks.push(check(
            "gateway RSS with three idle upstreams < 20 MB".into(),
            format!("{mb:.1} MB"),
            mb < 20.0,
        ));
    }
    if let Some(kb) = gateway_session {
        checks.push(check(
            "gateway RSS per idle downstream session < 40 KB".into(),
            format!("{kb:.1} KB"),
            kb < 40.0,
        ));
    }

    let _ = writeln!(
        out,
        "\n## Start to first successful `tools/list` (three stdio upstreams; medians of {} starts)\n",
        cli.start_rounds
    );
    let _ = writeln!(out, "| what | ms |\n|---|---:|");
    for (label, values) in &results.start_ms {
        let _ = writeln!(out, "| {label} | {:.1} |", median(values));
    }
    let start = |key: &str| results.start_ms.get(key).map(|v| median(v));
    if let (Some(gateway), Some(three)) = (start("gateway x3"), start("upstream x3")) {
        checks.push(check(
            "start-up dominated by the upstreams' own start".into(),
            format!(
                "gateway {gateway:.1} ms vs three upstreams {three:.1} ms (+{:.1} ms)",
                gateway - three
            ),
            gateway - three <= three,
        ));
    }
}

fn check(target: String, measured: String, met: bool) -> String {
    format!(
        "| {target} | {measured} | {} |",
        if met { "yes" } else { "**no**" }
    )
}
