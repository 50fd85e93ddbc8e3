//! `soak`: a bounded soak of the real `mcp-gateway serve`, checked for leaks at the end.
//!
//! ```sh
//! cargo build --release -p mcp-gateway-cli -p mcp-memory-server -p benches --bins
//! target/release/soak                        # 10 minutes
//! target/release/soak --duration 60s --seed 42
//! ```
//!
//! The gateway runs with a config file naming three upstreams, each of the three kinds of
//! connection: the bundled memory server over stdio (`mem_stdio`) and over Streamable HTTP
//! (`mem_http`, a child of the soak), and `mcp-server-everything` over stdio (`everything`).
//! Workers open session-era sessions (initialize, a few calls, DELETE), stateless clients, and
//! keep one long session each, calling the upstreams' tools. Meanwhile a chaos task, at random
//! intervals, SIGKILLs one of the gateway's stdio children (found through `/proc`) or rewrites the
//! config file to add or remove a fourth server (`extra`, the memory server over stdio), which the
//! gateway reloads. Every choice comes from an RNG seeded with `--seed` (printed; timing still
//! varies from run to run).
//!
//! The run is a warm-up (a tenth of it, 5 to 60 s) and a steady phase. After each, workers and
//! chaos stop, the config is put back as it started, and the soak waits for the gateway to settle
//! (every upstream listed again, its children exactly the configured stdio servers); then it
//! records the gateway's open descriptors, RSS and children. It fails (exit code 1) when, from the
//! end of the warm-up to the end of the run:
//!
//! * open descriptors grew by more than `--fd-slack`, 8 by default (each stdio child holds
//!   three pipes and each connection to the HTTP upstream one socket, so a leaked child or
//!   connection shows; what varies without a leak is how many pooled connections the calls in
//!   flight when the load stopped left, at most one per worker, and the GET stream);
//! * the children are not exactly the configured stdio servers, all alive (no zombie left);
//! * RSS grew by more than `--rss-slack-mib`, 16 by default (the event history, at most 8 MiB,
//!   and the allocator's caches are full after the warm-up; ten minutes make about three million
//!   calls and half a million sessions, so a leak of a few bytes each exceeds it);
//! * any child the gateway ever had is still alive after it exited;
//! * no call succeeded in the steady phase, or the gateway exited early.
//!
//! The gateway's task count is not observable from outside (it exposes no metrics), so it is
//! not checked; its thread count is printed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use benches::client::{Endpoint, Era, McpClient};
use benches::process::{
    BoxError, Server, child_pids, command_line, fd_count, fd_kinds, free_port, is_alive, log_file,
    quoted, start_gateway, status_field, wait_listing, wait_ready,
};
use clap::Parser;
use serde_json::json;
use tokio::process::{Child, Command};

/// How long one call may take before it counts as failed.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the gateway may take to settle after the load stops.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Soaks the real gateway with sessions, calls, upstream kills and config reloads.
#[derive(Parser)]
#[command(about)]
struct Cli {
    /// The `mcp-gateway` binary [default: next to this one].
    #[arg(long)]
    gateway: Option<PathBuf>,
    /// The `mcp-memory-server` binary [default: next to this one].
    #[arg(long)]
    memory_server: Option<PathBuf>,
    /// The `mcp-server-everything` executable [default: the one under peers/].
    #[arg(long)]
    everything: Option<PathBuf>,
    /// How long to run: seconds, or a number with `s` or `m`.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    duration: Duration,
    /// The RNG seed [default: random, printed].
    #[arg(long)]
    seed: Option<u64>,
    /// Concurrent workers.
    #[arg(long, default_value_t = 4)]
    workers: u64,
    /// Descriptors the gateway may have open beyond those after the warm-up.
    #[arg(long, default_value_t = 8)]
    fd_slack: usize,
    /// RSS growth allowed over the steady phase, MiB.
    #[arg(long, default_value_t = 16)]
    rss_slack_mib: u64,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.strip_suffix('m') {
        Some(minutes) => (minutes, 60.0),
        None => (text.strip_suffix('s').unwrap_or(text), 1.0),
    };
    let number: f64 = number
        .parse()
        .map_err(|_| format!("not a duration: {text} (say 600, 60s or 10m)"))?;
    Duration::try_from_secs_f64(number * unit).map_err(|err| format!("{text}: {err}"))
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("soak: could not start the runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("soak: FAILED (see the checks above)");
            std::process::ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("soak: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The binaries and files of one soak.
struct Setup {
    gateway: PathBuf,
    memory: PathBuf,
    everything: PathBuf,
    work: tempfile::TempDir,
    config: PathBuf,
    http_url: String,
}

impl Setup {
    /// Writes the config, with or without the `extra` server.
    fn write_config(&self, extra: bool) -> Result<(), BoxError> {
        let restart = "restart = { initial_backoff_ms = 100, max_backoff_ms = 2000, \
                       max_failures = 1000, window_secs = 60 }\n";
        let memory = quoted(&self.memory.display().to_string());
        let file = |name: &str| quoted(&self.work.path().join(name).display().to_string());
        let mut text = String::new();
        let _ = write!(
            text,
            "[servers.mem_stdio]\ncommand = {memory}\nargs = [\"--stdio\", \"--file\", {}]\n{restart}\n\
             [servers.mem_http]\nurl = {}\n{restart}\n\
             [servers.everything]\ncommand = {}\nargs = [\"stdio\"]\n{restart}\n",
            file("stdio.jsonl"),
            quoted(&self.http_url),
            quoted(&self.everything.display().to_string()),
        );
        if extra {
            let _ = write!(
                text,
                "\n[servers.extra]\ncommand = {memory}\nargs = [\"--stdio\", \"--file\", {}]\n{restart}",
                file("extra.jsonl"),
            );
        }
        // Written whole and renamed, so the watch never reads half a file.
        let staged = self.work.path().join("gateway.toml.new");
        std::fs::write(&staged, text)?;
        std::fs::rename(&staged, &self.config)?;
        Ok(())
    }
}

/// The tools the workers call, one per upstream; `extra` is configured only half the time.
const TOOLS: [&str; 4] = [
    "mem_stdio__search_nodes",
    "mem_http__search_nodes",
    "everything__echo",
    "extra__search_nodes",
];

/// What the soak counted.
#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    failed: AtomicU64,
    /// Failed calls per tool of [`TOOLS`].
    failed_by_tool: [AtomicU64; 4],
    sessions: AtomicU64,
    stateless: AtomicU64,
    kills: AtomicU64,
    reloads: AtomicU64,
}

/// The gateway's state at a quiet moment.
struct Sample {
    fds: usize,
    fd_kinds: std::collections::BTreeMap<String, usize>,
    rss_kb: u64,
    threads: u64,
    children: Vec<u32>,
}

async fn run(cli: Cli) -> Result<bool, BoxError> {
    let seed = cli.seed.unwrap_or_else(|| fastrand::u64(..));
    println!(
        "soak: seed {seed}, {:?}, {} workers",
        cli.duration, cli.workers
    );
    let here = std::env::current_exe()?;
    let dir = here.parent().ok_or("this binary has no directory")?;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let setup = Setup {
        gateway: existing(cli.gateway.clone(), dir.join("mcp-gateway"))?,
        memory: existing(cli.memory_server.clone(), dir.join("mcp-memory-server"))?,
        everything: existing(
            cli.everything.clone(),
            repo.join("peers/node_modules/.bin/mcp-server-everything"),
        )?,
        work: tempfile::tempdir()?,
        config: PathBuf::new(),
        http_url: format!("http://127.0.0.1:{}/mcp", free_port()?),
    };
    let setup = Setup {
        config: setup.work.path().join("gateway.toml"),
        ..setup
    };
    let http_upstream = start_http_memory(&setup).await?;
    setup.write_config(false)?;
    let gateway = start_gateway(
        &setup.gateway,
        &setup.config,
        setup.work.path(),
        "gateway",
        1,
    )
    .await?;
    let pid = gateway.process.id().ok_or("the gateway has exited")?;
    let outcome = soak(&cli, seed, &setup, &gateway, pid).await;
    gateway.stop().await;
    stop_child(http_upstream).await;
    let log = setup.work.path().join("gateway");
    let (mut passed, seen) = match outcome {
        Ok(outcome) => outcome,
        Err(err) => {
            eprintln!("soak: {err} (gateway log: {})", log.display());
            let _ = setup.work.keep();
            return Ok(false);
        }
    };
    // The gateway is gone: every child it ever had must be gone with it.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut alive: Vec<u32> = seen.clone();
    while !alive.is_empty() && Instant::now() < deadline {
        alive.retain(|&child| is_alive(child));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    passed &= check(
        "children after the gateway exited",
        format!("{} of the {} it ever had alive", alive.len(), seen.len()),
        alive.is_empty(),
    );
    if !passed {
        eprintln!("gateway log: {}", log.display());
        // Keep the directory for a look.
        let _ = setup.work.keep();
    }
    Ok(passed)
}

/// The warm-up, the steady phase and the checks; the children the gateway ever had.
async fn soak(
    cli: &Cli,
    seed: u64,
    setup: &Setup,
    gateway: &Server,
    pid: u32,
) -> Result<(bool, Vec<u32>), BoxError> {
    let endpoint = Endpoint::parse(&gateway.url)?;
    let counts = Arc::new(Counts::default());
    let mut seen = Vec::new();
    let warmup = (cli.duration / 10).clamp(Duration::from_secs(5), Duration::from_secs(60));
    let steady = cli.duration.saturating_sub(warmup);

    phase(cli, seed, setup, &endpoint, pid, &counts, warmup, &mut seen).await?;
    let start = settle(&gateway.url, pid, &mut seen).await?;
    let ok_before = counts.ok.load(Ordering::Relaxed);
    let started = Instant::now();
    phase(
        cli,
        seed ^ 0x5eed,
        setup,
        &endpoint,
        pid,
        &counts,
        steady,
        &mut seen,
    )
    .await?;
    let end = settle(&gateway.url, pid, &mut seen).await?;
    let ok_steady = counts.ok.load(Ordering::Relaxed) - ok_before;

    println!(
        "calls: {} ok, {} failed (kills and reloads fail some); sessions {}, stateless clients {}; \
         {} kills, {} reloads; {:.0} calls/s in the steady phase",
        counts.ok.load(Ordering::Relaxed),
        counts.failed.load(Ordering::Relaxed),
        counts.sessions.load(Ordering::Relaxed),
        counts.stateless.load(Ordering::Relaxed),
        counts.kills.load(Ordering::Relaxed),
        counts.reloads.load(Ordering::Relaxed),
        ok_steady as f64 / started.elapsed().as_secs_f64(),
    );
    let failed: Vec<String> = TOOLS
        .iter()
        .zip(&counts.failed_by_tool)
        .map(|(tool, failed)| format!("{tool} {}", failed.load(Ordering::Relaxed)))
        .collect();
    println!("failed calls by tool: {}", failed.join(", "));
    println!("gateway task count: not observable from outside (no metrics endpoint); skipped");
    println!("gateway threads: {} → {}", start.threads, end.threads);
    let mut passed = check(
        "gateway alive",
        "it answered to the end".into(),
        is_alive(pid),
    );
    passed &= check(
        "calls in the steady phase",
        format!("{ok_steady} ok"),
        ok_steady > 0,
    );
    if end.fds > start.fds {
        println!("descriptors after the warm-up: {:?}", start.fd_kinds);
        println!("descriptors at the end:        {:?}", end.fd_kinds);
    }
    passed &= check(
        "open descriptors",
        format!(
            "{} after the warm-up, {} at the end (slack {})",
            start.fds, end.fds, cli.fd_slack
        ),
        end.fds <= start.fds + cli.fd_slack,
    );
    let growth_kb = end.rss_kb.saturating_sub(start.rss_kb);
    passed &= check(
        "RSS",
        format!(
            "{:.1} MiB after the warm-up, {:.1} MiB at the end: +{:.1} MiB (slack {} MiB)",
            start.rss_kb as f64 / 1024.0,
            end.rss_kb as f64 / 1024.0,
            growth_kb as f64 / 1024.0,
            cli.rss_slack_mib
        ),
        growth_kb <= cli.rss_slack_mib * 1024,
    );
    passed &= check(
        "children",
        format!(
            "{} after the warm-up, {} at the end: {:?}",
            start.children.len(),
            end.children.len(),
            end.children
                .iter()
                .map(|&child| command_line(child))
                .collect::<Vec<_>>()
        ),
        end.children.len() == start.children.len(),
    );
    Ok((passed, seen))
}

/// Runs the workers and the chaos task for `length`.
#[allow(clippy::too_many_arguments)]
async fn phase(
    cli: &Cli,
    seed: u64,
    setup: &Setup,
    endpoint: &Endpoint,
    pid: u32,
    counts: &Arc<Counts>,
    length: Duration,
    seen: &mut Vec<u32>,
) -> Result<(), BoxError> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..cli.workers {
        let rng = fastrand::Rng::with_seed(seed.wrapping_add(worker + 1));
        workers.push(tokio::spawn(work(
            rng,
            endpoint.clone(),
            counts.clone(),
            stop.clone(),
        )));
    }
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut extra = false;
    let deadline = Instant::now() + length;
    while Instant::now() < deadline {
        let pause = Duration::from_millis(rng.u64(500..4000));
        tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        if Instant::now() >= deadline {
            break;
        }
        let children = child_pids(pid);
        remember(seen, &children);
        if rng.bool() && !children.is_empty() {
            let victim = children[rng.usize(..children.len())];
            let _ = Command::new("kill")
                .args(["-KILL", &victim.to_string()])
                .status()
                .await;
            counts.kills.fetch_add(1, Ordering::Relaxed);
        } else {
            extra = !extra;
            setup.write_config(extra)?;
            counts.reloads.fetch_add(1, Ordering::Relaxed);
        }
        if !is_alive(pid) {
            return Err("the gateway exited during the soak".into());
        }
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await?;
    }
    if extra {
        setup.write_config(false)?;
    }
    Ok(())
}

fn remember(seen: &mut Vec<u32>, children: &[u32]) {
    for &child in children {
        if !seen.contains(&child) {
            seen.push(child);
        }
    }
}

/// One worker: sessions that come and go, stateless clients, and one long session, until `stop`.
async fn work(
    mut rng: fastrand::Rng,
    endpoint: Endpoint,
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
) {
    let mut long: Option<McpClient> = None;
    while !stop.load(Ordering::Relaxed) {
        let calls = rng.usize(1..6);
        match rng.u8(..10) {
            // A session that comes, calls and leaves.
            0..=3 => {
                let Ok(Ok(mut client)) = tokio::time::timeout(
                    CALL_TIMEOUT,
                    McpClient::connect(endpoint.clone(), Era::Session),
                )
                .await
                else {
                    counts.failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                counts.sessions.fetch_add(1, Ordering::Relaxed);
                for _ in 0..calls {
                    call(&mut rng, &mut client, &counts).await;
                }
                let _ = tokio::time::timeout(CALL_TIMEOUT, client.close_session()).await;
            }
            // A stateless client.
            4..=6 => {
                let Ok(Ok(mut client)) = tokio::time::timeout(
                    CALL_TIMEOUT,
                    McpClient::connect(endpoint.clone(), Era::Stateless),
                )
                .await
                else {
                    counts.failed.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                counts.stateless.fetch_add(1, Ordering::Relaxed);
                for _ in 0..calls {
                    call(&mut rng, &mut client, &counts).await;
                }
            }
            // The worker's long session, opened again when it was lost.
            _ => {
                if long.is_none() {
                    let connect = McpClient::connect(endpoint.clone(), Era::Session);
                    match tokio::time::timeout(CALL_TIMEOUT, connect).await {
                        Ok(Ok(client)) => long = Some(client),
                        _ => {
                            counts.failed.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    }
                }
                if let Some(client) = long.as_mut() {
                    for _ in 0..calls {
                        if !call(&mut rng, client, &counts).await {
                            long = None;
                            break;
                        }
                    }
                }
            }
        }
    }
    if let Some(mut client) = long {
        let _ = tokio::time::timeout(CALL_TIMEOUT, client.close_session()).await;
    }
}

/// One call of a random tool; whether it succeeded.
async fn call(rng: &mut fastrand::Rng, client: &mut McpClient, counts: &Counts) -> bool {
    let tool = rng.usize(..TOOLS.len());
    let arguments = if TOOLS[tool] == "everything__echo" {
        json!({ "message": "soak" })
    } else {
        json!({ "query": "soak" })
    };
    let ok = matches!(
        tokio::time::timeout(CALL_TIMEOUT, client.call_tool(TOOLS[tool], &arguments)).await,
        Ok(Ok(_))
    );
    if ok {
        counts.ok.fetch_add(1, Ordering::Relaxed);
    } else {
        counts.failed.fetch_add(1, Ordering::Relaxed);
        counts.failed_by_tool[tool].fetch_add(1, Ordering::Relaxed);
    }
    ok
}

/// Waits until the gateway lists every configured upstream again and its children are exactly
/// the two configured stdio servers, all alive; then lets it finish closing what the load left
/// and samples it.
async fn settle(url: &str, pid: u32, seen: &mut Vec<u32>) -> Result<Sample, BoxError> {
    wait_listing(url, |names| {
        ["mem_stdio__", "mem_http__", "everything__"]
            .iter()
            .all(|prefix| names.iter().any(|name| name.starts_with(prefix)))
            && !names.iter().any(|name| name.starts_with("extra__"))
    })
    .await?;
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let children = loop {
        let children = child_pids(pid);
        remember(seen, &children);
        let live = children.iter().filter(|&&child| is_alive(child)).count();
        if children.len() == 2 && live == 2 {
            break children;
        }
        if Instant::now() >= deadline {
            let lines: Vec<String> = children
                .iter()
                .map(|&child| format!("{child} {}", command_line(child)))
                .collect();
            return Err(format!(
                "the gateway's children did not settle to the two configured stdio servers: {lines:?}"
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Closed connections and finished sessions are let go asynchronously; take the lowest
    // descriptor count over a few seconds rather than one that catches a close in flight.
    let mut fds = usize::MAX;
    for _ in 0..20 {
        fds = fds.min(fd_count(pid).ok_or("the gateway has exited")?);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(Sample {
        fds,
        fd_kinds: fd_kinds(pid),
        rss_kb: status_field(pid, "VmRSS").ok_or("the gateway has exited")?,
        threads: status_field(pid, "Threads").unwrap_or_default(),
        children,
    })
}

/// The memory server over Streamable HTTP, a child of the soak.
async fn start_http_memory(setup: &Setup) -> Result<Child, BoxError> {
    let endpoint = Endpoint::parse(&setup.http_url)?;
    let child = Command::new(&setup.memory)
        .args(["--listen", &endpoint.addr.to_string(), "--file"])
        .arg(setup.work.path().join("http.jsonl"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log_file(setup.work.path(), "mem_http")?)
        .kill_on_drop(true)
        .spawn()?;
    wait_ready(&setup.http_url, 1).await?;
    Ok(child)
}

async fn stop_child(mut child: Child) {
    let _ = child.kill().await;
}

fn existing(given: Option<PathBuf>, default: PathBuf) -> Result<PathBuf, BoxError> {
    let path = given.unwrap_or(default);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found: cargo build --release -p mcp-gateway-cli -p mcp-memory-server -p benches --bins \
             (and scripts/install-peers.sh for the peers)",
            path.display()
        )
        .into())
    }
}

/// Prints one check and returns whether it passed.
fn check(what: &str, measured: String, passed: bool) -> bool {
    println!(
        "{} {what}: {measured}",
        if passed { "ok  " } else { "FAIL" }
    );
    passed
}
