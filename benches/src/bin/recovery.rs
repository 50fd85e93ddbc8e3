//! `recovery`: how fast the gateway recovers from a lost upstream, measured from outside, the
//! way a client sees it (see BENCHMARKS.md, "Recovery").
//!
//! ```sh
//! cargo build --release -p mcp-gateway-cli -p mcp-memory-server -p benches --bins
//! target/release/recovery --rounds 20 [--out /tmp/recovery.json]
//! ```
//!
//! Every process is a child of this one and stopped at the end; everything is on loopback.
//!
//! * **stdio**: `mcp-gateway serve` fronting `bench-fixture --stdio`, whose `sleep_ms` keeps a
//!   call in flight (the memory server has no call that lasts). Each round sends `sleep_ms` of
//!   30 s, finds the upstream as the gateway's child in `/proc`, kills it with SIGKILL once the
//!   call is in flight, and measures from the kill to that call failing, and to the first
//!   successful `echo` of a second client that calls in a loop (2 ms between failed calls) from
//!   the kill on. The upstream's own start-up (spawn, `initialize`, a first answered `echo`,
//!   with nothing in between) is measured as many times, for comparison.
//! * **http**, twice: the gateway speaking 2026-07-28 to the upstream (negotiated) and pinned to
//!   the session era, whose session the restarted server no longer knows. `mcp-gateway serve`
//!   fronting `mcp-memory-server --listen` on a fixed port. Each
//!   round kills the server with SIGKILL, leaves it down `--down-ms`, starts it again on the
//!   same port, and measures from the moment its port accepts connections (polled every 1 ms)
//!   to the first successful `read_graph` of a client calling in a loop from the kill on.
//!
//! Restarts are the gateway's default policy except `max_failures`, raised so that twenty
//! rounds within a minute measure recovery rather than the crash-loop give-up.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use benches::client::{Endpoint, Era, McpClient};
use benches::process::{child_pids, wait_ready};
use benches::stats::median;
use benches::stdio_client::StdioClient;
use clap::Parser;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long anything measured may take before the run is abandoned.
const DEADLINE: Duration = Duration::from_secs(30);
/// Pause between a client's failed calls while the upstream is down.
const CALL_POLL: Duration = Duration::from_millis(2);
/// Pause between connection attempts to a restarted upstream's port.
const PORT_POLL: Duration = Duration::from_millis(1);
/// How long the long call runs before its upstream is killed: long enough to be in flight.
const IN_FLIGHT_AFTER: Duration = Duration::from_millis(100);
/// Quiet time between rounds, so that each starts from a settled, healthy connection.
const BETWEEN_ROUNDS: Duration = Duration::from_millis(300);

/// Measures recovery from a killed stdio upstream and a restarted HTTP upstream.
#[derive(Parser)]
#[command(about)]
struct Cli {
    /// The `mcp-gateway` binary [default: next to this one].
    #[arg(long)]
    gateway: Option<PathBuf>,
    /// Kills per scenario.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// How long the HTTP upstream stays down before it is started again, in ms.
    #[arg(long, default_value_t = 500)]
    down_ms: u64,
    /// Write every raw figure here as JSON.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Every figure, in ms, one per round.
#[derive(Serialize, Default)]
struct Results {
    /// stdio: from the kill to the in-flight call failing.
    stdio_kill_to_failed_call: Vec<f64>,
    /// stdio: from the kill to the first successful call.
    stdio_kill_to_success: Vec<f64>,
    /// The stdio upstream's own start-up, without the gateway.
    stdio_upstream_start: Vec<f64>,
    /// http, per upstream era the gateway speaks (`auto`: it negotiates 2026-07-28 with the
    /// memory server, which has no session to lose; `session`: pinned to 2025-11-25).
    http: BTreeMap<&'static str, HttpFigures>,
}

/// One HTTP scenario's figures, in ms, one per round.
#[derive(Serialize, Default)]
struct HttpFigures {
    /// From the port listening again to the first successful call.
    listening_to_success: Vec<f64>,
    /// From the kill to the first successful call (includes `--down-ms`).
    kill_to_success: Vec<f64>,
}

fn main() -> Result<(), BoxError> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> Result<(), BoxError> {
    let here = std::env::current_exe()?;
    let dir = here.parent().ok_or("this binary has no directory")?;
    let found = |path: PathBuf| -> Result<PathBuf, BoxError> {
        if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{} not found: build it first (cargo build --release -p mcp-gateway-cli -p mcp-memory-server -p benches --bins)",
                path.display()
            )
            .into())
        }
    };
    let gateway = found(
        cli.gateway
            .clone()
            .unwrap_or_else(|| dir.join("mcp-gateway")),
    )?;
    let fixture = found(dir.join("bench-fixture"))?;
    let memory = found(dir.join("mcp-memory-server"))?;
    let work = tempfile::tempdir()?;
    let mut results = Results::default();
    stdio_rounds(&cli, &gateway, &fixture, work.path(), &mut results).await?;
    for protocol in ["auto", "session"] {
        let figures = http_rounds(&cli, &gateway, &memory, work.path(), protocol).await?;
        results.http.insert(protocol, figures);
    }
    print!("{}", summary(&cli, &results));
    if let Some(out) = &cli.out {
        std::fs::write(out, serde_json::to_string_pretty(&results)?)?;
        eprintln!("raw figures written to {}", out.display());
    }
    Ok(())
}

async fn stdio_rounds(
    cli: &Cli,
    gateway: &Path,
    fixture: &Path,
    work: &Path,
    results: &mut Results,
) -> Result<(), BoxError> {
    let config = write_config(
        work,
        "gateway-stdio.toml",
        &format!(
            "command = {}\nargs = [\"--stdio\"]\n",
            quoted(&fixture.display().to_string())
        ),
    )?;
    let gateway = Gateway::start(gateway, &config, work, "gateway-stdio").await?;
    let endpoint = Endpoint::parse(&gateway.url)?;
    let mut caller = McpClient::connect(endpoint.clone(), Era::Session).await?;
    let mut poller = McpClient::connect(endpoint, Era::Session).await?;
    let echo = json!({ "message": "back?" });
    for round in 1..=cli.rounds {
        eprintln!("stdio: round {round}");
        let upstream = gateway.only_child()?;
        let long_call = async {
            let outcome = caller.call_tool("sleep_ms", &json!({ "ms": 30_000 })).await;
            (outcome, Instant::now())
        };
        let kill_and_poll = async {
            tokio::time::sleep(IN_FLIGHT_AFTER).await;
            kill(Pid::from_raw(upstream), Signal::SIGKILL)?;
            let killed = Instant::now();
            let answered = first_success(&mut poller, "echo", &echo).await?;
            Ok::<_, BoxError>((killed, answered))
        };
        let ((outcome, failed), polled) = tokio::join!(long_call, kill_and_poll);
        let (killed, answered) = polled?;
        if outcome.is_ok() {
            return Err("the call in flight on the killed upstream succeeded".into());
        }
        results
            .stdio_kill_to_failed_call
            .push(ms(failed.saturating_duration_since(killed)));
        results
            .stdio_kill_to_success
            .push(ms(answered.saturating_duration_since(killed)));
        tokio::time::sleep(BETWEEN_ROUNDS).await;
    }
    gateway.stop().await;

    let command = [fixture.display().to_string(), "--stdio".into()];
    for _ in 0..cli.rounds {
        let started = Instant::now();
        let client = StdioClient::spawn(&command, Era::Session).await?;
        client.call_tool("echo", &echo).await?;
        results.stdio_upstream_start.push(ms(started.elapsed()));
    }
    Ok(())
}

async fn http_rounds(
    cli: &Cli,
    gateway: &Path,
    memory: &Path,
    work: &Path,
    protocol: &str,
) -> Result<HttpFigures, BoxError> {
    let mut figures = HttpFigures::default();
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let file = work.join("memory.jsonl");
    let mut upstream = start_memory(memory, port, &file).await?;
    let config = write_config(
        work,
        "gateway-http.toml",
        &format!("url = \"http://127.0.0.1:{port}/mcp\"\nprotocol = \"{protocol}\"\n"),
    )?;
    let gateway = Gateway::start(gateway, &config, work, "gateway-http").await?;
    let mut poller = McpClient::connect(Endpoint::parse(&gateway.url)?, Era::Session).await?;
    let down = Duration::from_millis(cli.down_ms);
    let no_arguments = json!({});
    for round in 1..=cli.rounds {
        eprintln!("http ({protocol}): round {round}");
        let pid = upstream.id().ok_or("the memory server has exited")?;
        kill(Pid::from_raw(i32::try_from(pid)?), Signal::SIGKILL)?;
        let killed = Instant::now();
        upstream.wait().await?;
        let restart = async {
            tokio::time::sleep(down.saturating_sub(killed.elapsed())).await;
            let restarted = start_memory(memory, port, &file).await?;
            Ok::<_, BoxError>((restarted, Instant::now()))
        };
        let (restarted, answered) = tokio::join!(
            restart,
            first_success(&mut poller, "read_graph", &no_arguments)
        );
        let (restarted, listening) = restarted?;
        let answered = answered?;
        upstream = restarted;
        // Signed: a call may get through between the port opening and the poll seeing it.
        let since_listening = if answered >= listening {
            ms(answered - listening)
        } else {
            -ms(listening - answered)
        };
        figures.listening_to_success.push(since_listening);
        figures
            .kill_to_success
            .push(ms(answered.saturating_duration_since(killed)));
        tokio::time::sleep(BETWEEN_ROUNDS).await;
    }
    gateway.stop().await;
    let _ = upstream.kill().await;
    Ok(figures)
}

/// Calls `tool` until a call succeeds; returns when it did.
async fn first_success(
    client: &mut McpClient,
    tool: &str,
    arguments: &Value,
) -> Result<Instant, BoxError> {
    let deadline = Instant::now() + DEADLINE;
    let mut last_error = String::from("no call made");
    while Instant::now() < deadline {
        match client.call_tool(tool, arguments).await {
            Ok(_) => return Ok(Instant::now()),
            Err(err) => last_error = err.to_string(),
        }
        tokio::time::sleep(CALL_POLL).await;
    }
    Err(format!("no successful `{tool}` within {DEADLINE:?}: {last_error}").into())
}

/// Starts `mcp-memory-server --listen 127.0.0.1:PORT` and returns once its port accepts
/// connections.
async fn start_memory(memory: &Path, port: u16, file: &Path) -> Result<Child, BoxError> {
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(memory)
        .args(["--listen", &addr, "--file"])
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let deadline = Instant::now() + DEADLINE;
    while tokio::net::TcpStream::connect(&addr).await.is_err() {
        if Instant::now() > deadline {
            return Err(format!("the memory server did not listen on {addr}").into());
        }
        tokio::time::sleep(PORT_POLL).await;
    }
    Ok(child)
}

/// A gateway config with one upstream `up` (its transport lines given), tool names unprefixed.
fn write_config(dir: &Path, name: &str, transport: &str) -> Result<PathBuf, BoxError> {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "[gateway]\nprefix = \"never\"\n\n[servers.up]\n{transport}restart = {{ max_failures = 1000 }}\n"
        ),
    )?;
    Ok(path)
}

/// A TOML basic string (JSON string syntax is valid TOML for these paths).
fn quoted(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

/// A running `mcp-gateway serve`.
struct Gateway {
    process: Child,
    url: String,
}

impl Gateway {
    async fn start(
        binary: &Path,
        config: &Path,
        work: &Path,
        name: &str,
    ) -> Result<Self, BoxError> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let listen = format!("127.0.0.1:{port}");
        let log = work.join(format!("{name}.log"));
        let process = Command::new(binary)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .args(["--listen", &listen])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .kill_on_drop(true)
            .spawn()?;
        let url = format!("http://{listen}/mcp");
        wait_ready(&url, 1)
            .await
            .map_err(|err| format!("{name}: {err} (log: {})", log.display()))?;
        Ok(Self { process, url })
    }

    /// The gateway's one child process: its stdio upstream.
    fn only_child(&self) -> Result<i32, BoxError> {
        let pid = self.process.id().ok_or("the gateway has exited")?;
        match child_pids(pid).as_slice() {
            [child] => Ok(i32::try_from(*child)?),
            other => Err(format!("expected one upstream process, found {other:?}").into()),
        }
    }

    /// SIGTERM, up to 5 s to exit, then SIGKILL.
    async fn stop(mut self) {
        if let Some(pid) = self.process.id().and_then(|pid| i32::try_from(pid).ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        if tokio::time::timeout(Duration::from_secs(5), self.process.wait())
            .await
            .is_err()
        {
            let _ = self.process.kill().await;
        }
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// The value at quantile `q` (0 to 1) of some figures, by the nearest rank; 0 for none.
fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return 0.0;
    }
    // Nearest rank: the smallest value with at least q of the figures at or below it.
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// The figures as a Markdown table: median, p90 and max of each.
fn summary(cli: &Cli, results: &Results) -> String {
    let mut out = format!(
        "\n## Recovery ({} rounds; HTTP upstream down {} ms)\n\n| figure | median | p90 | max |\n|---|---:|---:|---:|\n",
        cli.rounds, cli.down_ms
    );
    let mut rows: Vec<(String, &Vec<f64>)> = vec![
        (
            "stdio: kill → in-flight call failed".into(),
            &results.stdio_kill_to_failed_call,
        ),
        (
            "stdio: kill → first successful call".into(),
            &results.stdio_kill_to_success,
        ),
        (
            "stdio: the upstream's own start-up".into(),
            &results.stdio_upstream_start,
        ),
    ];
    for (protocol, figures) in &results.http {
        rows.push((
            format!("http ({protocol}): port listening → first successful call"),
            &figures.listening_to_success,
        ));
        rows.push((
            format!("http ({protocol}): kill → first successful call"),
            &figures.kill_to_success,
        ));
    }
    for (name, values) in rows {
        let _ = writeln!(
            out,
            "| {name} | {:.1} ms | {:.1} ms | {:.1} ms |",
            median(values),
            quantile(values, 0.9),
            quantile(values, 1.0)
        );
    }
    out
}
