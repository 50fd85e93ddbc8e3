//! The gateway and its upstreams as child processes of a benchmark: a config file written, the
//! gateway started on a free loopback port and polled until it lists its tools, stopped with
//! SIGTERM; and what `/proc` tells of a process (memory, descriptors, children).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::process::{Child, Command};

use crate::client::{Endpoint, Era, McpClient};

/// The error type of the benchmark binaries.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long a child may take to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between readiness polls.
const POLL: Duration = Duration::from_millis(2);

/// A child process of the benchmark, with its MCP URL.
pub struct Server {
    /// The process.
    pub process: Child,
    /// Its MCP endpoint.
    pub url: String,
    /// From spawn to the first successful `tools/list`, in ms.
    pub ready_ms: f64,
}

impl Server {
    /// SIGTERM, up to 5 s to exit, then SIGKILL.
    pub async fn stop(mut self) {
        if let Some(pid) = self.process.id() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(5), self.process.wait())
            .await
            .is_err()
        {
            let _ = self.process.kill().await;
        }
    }
}

/// Starts `mcp-gateway serve` with `config` on a free loopback port, its log in `work/name`,
/// and waits until it lists at least `tools` tools.
pub async fn start_gateway(
    gateway: &Path,
    config: &Path,
    work: &Path,
    name: &str,
    tools: usize,
) -> Result<Server, BoxError> {
    let listen = format!("127.0.0.1:{}", free_port()?);
    let started = Instant::now();
    let process = Command::new(gateway)
        .arg("serve")
        .arg("--config")
        .arg(config)
        .args(["--listen", &listen])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file(work, name)?)
        .kill_on_drop(true)
        .spawn()?;
    let url = format!("http://{listen}/mcp");
    wait_ready(&url, tools)
        .await
        .map_err(|err| format!("{name}: {err} (log: {})", work.join(name).display()))?;
    Ok(Server {
        process,
        url,
        ready_ms: started.elapsed().as_secs_f64() * 1e3,
    })
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> Result<u16, BoxError> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A file in `work` for a child's log.
pub fn log_file(work: &Path, name: &str) -> Result<std::fs::File, BoxError> {
    Ok(std::fs::File::create(work.join(name))?)
}

/// A TOML basic string (JSON string syntax is valid TOML for these paths and URLs).
pub fn quoted(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

/// Polls `tools/list` (stateless, one POST) until it lists `tools` tools.
pub async fn wait_ready(url: &str, tools: usize) -> Result<(), BoxError> {
    wait_listing(url, |names| names.len() >= tools).await
}

/// Polls `tools/list` (stateless, one POST) until `ready` holds for the names it lists.
pub async fn wait_listing(
    url: &str,
    mut ready: impl FnMut(&[String]) -> bool,
) -> Result<(), BoxError> {
    let endpoint = Endpoint::parse(url)?;
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut last_error = String::from("never answered");
    while Instant::now() < deadline {
        match McpClient::connect(endpoint.clone(), Era::Stateless).await {
            Ok(mut client) => match client.list_tools().await {
                Ok(names) if ready(&names) => return Ok(()),
                Ok(names) => last_error = format!("lists only {names:?}"),
                Err(err) => last_error = err.to_string(),
            },
            Err(err) => last_error = err.to_string(),
        }
        tokio::time::sleep(POLL).await;
    }
    Err(format!("{url} not ready after {READY_TIMEOUT:?}: {last_error}").into())
}

/// The child processes of `pid` (of any of its threads), from `/proc`.
pub fn child_pids(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("children")).ok())
        .flat_map(|children| {
            children
                .split_whitespace()
                .filter_map(|child| child.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// A number field of `/proc/PID/status`, without its unit: kB for `VmRSS` and `VmHWM`, a count
/// for `Threads`.
pub fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// How many file descriptors `pid` has open.
pub fn fd_count(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// Whether `pid` is a live process (not gone, not a zombie waiting to be reaped).
pub fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or_default()
            .trim_start()
            .starts_with('Z')
    })
}

/// A process's command line, its arguments joined with spaces.
pub fn command_line(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// What `pid`'s open descriptors are, counted by kind: `pipe`, `anon_inode:[eventpoll]`, a
/// path, or for a TCP socket its state and the local and remote ports (`tcp ESTABLISHED
/// 4101→53412`), so that a leak says what leaked.
pub fn fd_kinds(pid: u32) -> std::collections::BTreeMap<String, usize> {
    let sockets = tcp_sockets();
    let mut kinds = std::collections::BTreeMap::new();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return kinds;
    };
    for fd in fds.flatten() {
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue;
        };
        let target = target.display().to_string();
        let kind = match target.strip_prefix("socket:[") {
            Some(inode) => sockets
                .get(inode.trim_end_matches(']'))
                .cloned()
                .unwrap_or_else(|| "socket (not TCP)".into()),
            None if target.starts_with("pipe:") => "pipe".into(),
            None => target,
        };
        *kinds.entry(kind).or_default() += 1;
    }
    kinds
}

/// TCP sockets by inode, described as `tcp STATE local→remote` (ports only).
fn tcp_sockets() -> std::collections::HashMap<String, String> {
    const STATES: [&str; 12] = [
        "?",
        "ESTABLISHED",
        "SYN_SENT",
        "SYN_RECV",
        "FIN_WAIT1",
        "FIN_WAIT2",
        "TIME_WAIT",
        "CLOSE",
        "CLOSE_WAIT",
        "LAST_ACK",
        "LISTEN",
        "CLOSING",
    ];
    let port = |address: &str| {
        address
            .rsplit(':')
            .next()
            .and_then(|port| u16::from_str_radix(port, 16).ok())
            .unwrap_or_default()
    };
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let state = usize::from_str_radix(fields.get(3)?, 16).ok()?;
                    let state = STATES.get(state).copied().unwrap_or("?");
                    let described = format!(
                        "tcp {state} {}→{}",
                        port(fields.get(1)?),
                        port(fields.get(2)?)
                    );
                    Some((fields.get(9)?.to_string(), described))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}
