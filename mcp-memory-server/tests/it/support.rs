//! Shared helpers: where the peers live, starting our binary (stdio or HTTP) and the reference
//! server, calling tools, and bounded waits.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use rmcp::RoleClient;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation,
    JsonObject, ProtocolVersion,
};
use rmcp::service::Peer;
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RunningService};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long any single wait in these tests may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// An rmcp client session.
pub type Client = RunningService<RoleClient, ClientConfig>;

/// Our binary, built by cargo for this test run.
pub const MEMORY_BIN: &str = env!("CARGO_BIN_EXE_mcp-memory-server");

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits in the workspace")
        .to_path_buf()
}

/// A file under `peers/`; fails with the fix when the peers are not installed.
pub fn peer(relative: &str) -> PathBuf {
    let path = repo_root().join("peers").join(relative);
    assert!(
        path.exists(),
        "{} is missing: run scripts/install-peers.sh (scripts/test.sh does it)",
        path.display()
    );
    path
}

/// The reference server's entry point (`@modelcontextprotocol/server-memory@2026.8.31`).
pub fn reference_js() -> PathBuf {
    peer("node_modules/@modelcontextprotocol/server-memory/dist/index.js")
}

/// The client identity of these tests; it offers the last handshake-era revision.
pub fn hello() -> ClientConfig {
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("memory-it", "0"),
    )
    .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
}

/// The stateless 2026-07-28 lifecycle.
pub fn stateless() -> ClientLifecycleMode {
    ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    }
}

async fn over_stdio(command: Command, lifecycle: ClientLifecycleMode) -> Client {
    let program = command.as_std().get_program().to_owned();
    let (transport, _) = TokioChildProcess::builder(command)
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("could not start {program:?}: {err}"));
    tokio::time::timeout(DEADLINE, hello().serve_with_lifecycle(transport, lifecycle))
        .await
        .expect("the handshake finishes in time")
        .expect("the handshake succeeds")
}

/// Our server over stdio on `file`.
pub async fn ours_stdio(file: &Path, lifecycle: ClientLifecycleMode) -> Client {
    let mut command = Command::new(MEMORY_BIN);
    command.arg("--stdio").arg("--file").arg(file);
    over_stdio(command, lifecycle).await
}

/// The reference server over stdio on `file`.
pub async fn reference_stdio(file: &Path) -> Client {
    let mut command = Command::new("node");
    command.arg(reference_js()).env("MEMORY_FILE_PATH", file);
    over_stdio(command, ClientLifecycleMode::Initialize).await
}

/// A client of an HTTP server, in either era.
pub async fn http_client(url: &str, lifecycle: ClientLifecycleMode) -> Client {
    let transport = StreamableHttpClientTransport::from_uri(url);
    tokio::time::timeout(DEADLINE, hello().serve_with_lifecycle(transport, lifecycle))
        .await
        .expect("the handshake finishes in time")
        .expect("the handshake succeeds")
}

pub fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        other => panic!("expected a JSON object, got {other}"),
    }
}

/// Calls a tool and returns its result (an `isError` result included).
pub async fn call(client: &Peer<RoleClient>, tool: &str, arguments: Value) -> CallToolResult {
    let request = CallToolRequestParams::new(tool.to_owned()).with_arguments(object(arguments));
    tokio::time::timeout(DEADLINE, client.call_tool(request))
        .await
        .unwrap_or_else(|_| panic!("{tool} answers in time"))
        .unwrap_or_else(|err| panic!("{tool} failed at the protocol level: {err}"))
}

/// Calls a tool that must succeed and returns its structured content.
pub async fn call_ok(client: &Peer<RoleClient>, tool: &str, arguments: Value) -> Value {
    let result = call(client, tool, arguments).await;
    assert_ne!(result.is_error, Some(true), "{tool}: {}", text(&result));
    result.structured_content.unwrap_or(Value::Null)
}

/// The text of a result's first content block.
pub fn text(result: &CallToolResult) -> String {
    result
        .content
        .first()
        .and_then(|block| block.as_text())
        .map(|text| text.text.clone())
        .unwrap_or_default()
}

/// Our binary serving Streamable HTTP on a free loopback port; killed when dropped.
pub struct HttpServer {
    child: Child,
    pub url: String,
}

impl HttpServer {
    /// Starts the server on `file` and waits for the address it logs.
    pub async fn start(file: &Path) -> Self {
        Self::start_with(file, &["--listen", "127.0.0.1:0"]).await
    }

    /// Starts the server on `file` with more flags (`--listen` among them) and waits for the
    /// address it logs. `MCP_MEMORY_TOKEN` is not inherited.
    pub async fn start_with(file: &Path, flags: &[&str]) -> Self {
        let mut child = Command::new(MEMORY_BIN)
            .args(flags)
            .arg("--file")
            .arg(file)
            .env_remove("MCP_MEMORY_TOKEN")
            .env("RUST_LOG", "info,rmcp=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the server starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut lines = BufReader::new(stderr).lines();
        let url = tokio::time::timeout(DEADLINE, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(at) = line.find("listening on http://") {
                    let url = line[at + "listening on ".len()..]
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    return Some(url);
                }
            }
            None
        })
        .await
        .expect("the server logs its address in time")
        .expect("the server logs its address before exiting");
        // Keep draining stderr so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self { child, url }
    }

    /// SIGKILL: no shutdown code runs.
    pub async fn kill9(mut self) {
        self.child.kill().await.expect("killed");
    }

    /// SIGTERM, then the exit status (within the deadline).
    pub async fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().expect("still running");
        signal(pid, "TERM").await;
        tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .expect("the server exits in time after SIGTERM")
            .expect("wait works")
    }
}

/// Sends a signal with kill(1), which every Unix has.
pub async fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .await
        .expect("kill runs");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// Runs a command to completion within the deadline: (status, stdout, stderr).
pub async fn run(command: &mut Command) -> (ExitStatus, String, String) {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(DEADLINE, command.output())
        .await
        .expect("the command finishes in time")
        .expect("the command starts");
    (
        output.status,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Ends a client session and waits for its server process (if any) to exit.
pub async fn stop(client: Client) {
    let _ = tokio::time::timeout(DEADLINE, client.cancel()).await;
}

/// Polls `check` until it holds; fails the test after [`DEADLINE`].
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !check() {
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
