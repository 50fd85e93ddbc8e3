//! Shared helpers: where the installed peers live, starting HTTP peers on free ports, polling
//! with a deadline, and collecting events.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mcp_gateway_core::{EventSubscription, GatewayEvent, ServerSpec};

/// How long any single wait in these tests may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits in the workspace")
        .to_path_buf()
}

/// An installed peer executable; fails with the fix when the peers are not installed.
pub fn peer_bin(name: &str) -> String {
    let path = repo_root().join("peers/node_modules/.bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-peers.sh (scripts/test.sh does it)",
        path.display()
    );
    path.display().to_string()
}

/// The Python of the pinned peers venv.
pub fn peer_python() -> String {
    let path = repo_root().join("peers/.venv/bin/python");
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-peers.sh (scripts/test.sh does it)",
        path.display()
    );
    path.display().to_string()
}

pub fn everything_stdio(id: &str) -> ServerSpec {
    ServerSpec::stdio(id, &peer_bin("mcp-server-everything"), ["stdio"]).expect("valid spec")
}

pub fn memory_stdio(id: &str, file: &Path) -> ServerSpec {
    ServerSpec::stdio(id, &peer_bin("mcp-server-memory"), Vec::<String>::new())
        .expect("valid spec")
        .with_env("MEMORY_FILE_PATH", file.display().to_string())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A peer process that is killed when the test ends, pass or fail.
pub struct PeerProcess {
    child: Child,
    pub port: u16,
}

impl PeerProcess {
    /// Starts `command` with `PORT` set and waits until the port accepts connections.
    pub async fn start(command: &str, args: &[&str], port: u16) -> Self {
        let child = Command::new(command)
            .args(args)
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| panic!("could not start {command}: {err}"));
        let peer = Self { child, port };
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < DEADLINE,
                "{command} did not listen on {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        peer
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it holds; fails the test after [`DEADLINE`].
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads events until one matches; fails the test after [`DEADLINE`].
pub async fn next_matching(
    events: &mut EventSubscription,
    what: &str,
    mut matches: impl FnMut(&GatewayEvent) -> bool,
) -> GatewayEvent {
    let found = tokio::time::timeout(DEADLINE, async {
        while let Some(envelope) = events.recv().await {
            if matches(&envelope.event) {
                return Some(envelope.event.clone());
            }
        }
        None
    })
    .await;
    match found {
        Ok(Some(event)) => event,
        Ok(None) => panic!("the event bus closed before {what}"),
        Err(_) => panic!("timed out waiting for the event: {what}"),
    }
}

/// The `text` of a tool result's first content block.
pub fn first_text(result: &serde_json::Value) -> &str {
    result["content"][0]["text"].as_str().unwrap_or_default()
}

/// The names of the merged tools.
pub fn tool_names(gateway: &mcp_gateway_core::Gateway) -> Vec<String> {
    gateway
        .catalog()
        .tools()
        .iter()
        .map(|entry| {
            entry.definition["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// Live processes whose environment contains `marker` (a unique path given to one child).
pub fn processes_with_env(marker: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let alive = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                !stat
                    .rsplit(')')
                    .next()
                    .unwrap_or_default()
                    .trim_start()
                    .starts_with('Z')
            });
            alive
                && std::fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|env| String::from_utf8_lossy(&env).contains(marker))
        })
        .collect()
}

/// A binary of another workspace package (the conformance fixture), built by the same
/// `cargo test --workspace` run into the same target directory.
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
