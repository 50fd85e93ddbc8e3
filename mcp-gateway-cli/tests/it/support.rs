//! Paths of the installed peers and binaries, processes killed on drop, bounded runs, and the
//! processes a test marked.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Deadline of any single wait in these tests.
pub const DEADLINE: Duration = Duration::from_secs(60);
/// How long a gateway may take to exit once told to: its HTTP drain, then its upstreams' stop.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(15);

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits in the workspace")
        .to_path_buf()
}

pub fn peer(relative: &str) -> String {
    let path = repo_root().join("peers").join(relative);
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-peers.sh (scripts/test.sh does it)",
        path.display()
    );
    path.display().to_string()
}

pub fn gateway_bin() -> &'static str {
    env!("CARGO_BIN_EXE_mcp-gateway")
}

/// A binary of another workspace package (`mcp-memory-server`, `conformance-fixture`), built by
/// the same `cargo test --workspace` run into the same target directory.
pub fn sibling_bin(name: &str) -> String {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --workspace` (cargo test --workspace does)",
        path.display()
    );
    path.display().to_string()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A background process, killed when the test ends.
pub struct Background(tokio::process::Child);

impl Background {
    pub fn start(program: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        Self(
            command
                .spawn()
                .unwrap_or_else(|err| panic!("cannot start {program}: {err}")),
        )
    }

    /// Kills the process with SIGKILL and reaps it.
    pub async fn kill(mut self) {
        let _ = self.0.kill().await;
    }

    /// Sends SIGTERM and waits for the exit, at most [`SHUTDOWN_DEADLINE`].
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.0.id().expect("running") as i32;
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        tokio::time::timeout(SHUTDOWN_DEADLINE, self.0.wait())
            .await
            .expect("exits before the deadline after SIGTERM")
            .expect("exit status")
    }
}

/// Waits until something accepts connections on `port`.
pub async fn wait_for_port(port: u16) {
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(started.elapsed() < DEADLINE, "nothing listens on {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs the Inspector CLI against `target` and returns the JSON it printed.
pub async fn inspector(target: &[&str], method: &[&str]) -> Value {
    let inspector = peer("node_modules/.bin/mcp-inspector");
    let mut args = vec!["--cli", "--format", "json", "-q"];
    args.extend_from_slice(target);
    args.extend_from_slice(method);
    let output = tokio::time::timeout(
        DEADLINE,
        tokio::process::Command::new(&inspector)
            .args(&args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("inspector {args:?} did not finish"))
    .expect("inspector runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "inspector {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str::<Value>(stdout.trim())
        .unwrap_or_else(|err| panic!("bad output {stdout}: {err}"))["result"]
        .take()
}

pub fn names(listed: &Value) -> Vec<String> {
    listed["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The Python SDK client (`peers/python/gateway_client.py`): lists tools and calls one in the
/// given era; returns its JSON summary.
pub async fn python_client(url: &str, mode: &str, tool: &str, arguments: &Value) -> Value {
    let output = tokio::time::timeout(
        DEADLINE,
        tokio::process::Command::new(peer(".venv/bin/python"))
            .args([
                &peer("python/gateway_client.py"),
                url,
                mode,
                tool,
                &arguments.to_string(),
            ])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("the python client ({mode}) did not finish"))
    .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "python client ({mode}) failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|err| panic!("bad output {stdout}: {err}"))
}

/// Live processes whose environment holds `GW_MARKER=<marker>`.
pub fn marked(marker: &str) -> Vec<u32> {
    let wanted = format!("GW_MARKER={marker}");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let running = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                !stat
                    .rsplit(')')
                    .next()
                    .unwrap_or_default()
                    .trim_start()
                    .starts_with('Z')
            });
            running
                && std::fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == wanted.as_bytes()))
        })
        .collect()
}

/// Waits until no process marked `marker` is alive; fails after `deadline`.
pub async fn wait_for_no_marked(marker: &str, deadline: Duration, what: &str) {
    let started = Instant::now();
    while !marked(marker).is_empty() {
        assert!(started.elapsed() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
