//! Starting a gateway with real upstreams behind the HTTP endpoint on a free loopback port.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use mcp_gateway_core::{DownstreamConfig, Gateway, McpServer, ServerSpec};
use mcp_gateway_http::HttpConfig;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// Deadline of any single wait in these tests.
pub const DEADLINE: Duration = Duration::from_secs(60);

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

pub fn everything() -> ServerSpec {
    ServerSpec::stdio(
        "everything",
        &peer("node_modules/.bin/mcp-server-everything"),
        ["stdio"],
    )
    .expect("valid spec")
}

pub fn memory(file: &Path) -> ServerSpec {
    ServerSpec::stdio(
        "memory",
        &peer("node_modules/.bin/mcp-server-memory"),
        Vec::<String>::new(),
    )
    .expect("valid spec")
    .with_env("MEMORY_FILE_PATH", file.display().to_string())
}

/// A gateway served over HTTP on 127.0.0.1; stopped on drop.
pub struct RunningGateway {
    pub gateway: Gateway,
    pub url: String,
    stop: CancellationToken,
}

impl RunningGateway {
    pub async fn start(servers: Vec<ServerSpec>) -> Self {
        Self::start_with(servers, DownstreamConfig::default()).await
    }

    pub async fn start_with(servers: Vec<ServerSpec>, downstream: DownstreamConfig) -> Self {
        let mut builder = Gateway::builder();
        for spec in servers {
            builder = builder.server(spec);
        }
        let gateway = builder.build();
        gateway.start().await;
        let server = McpServer::new(gateway.clone(), downstream);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let stop = CancellationToken::new();
        let shutdown = stop.clone();
        let router = mcp_gateway_http::router(server, HttpConfig::default());
        tokio::spawn(async move {
            let _ = mcp_gateway_http::serve(
                listener,
                router,
                async move { shutdown.cancelled().await },
            )
            .await;
        });
        Self {
            gateway,
            url: format!("http://{address}"),
            stop,
        }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.gateway.shutdown().await;
    }
}

/// Runs a command to completion within [`DEADLINE`]; returns (exit code, stdout, stderr).
pub async fn run(program: &str, args: &[&str]) -> (i32, String, String) {
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {program}: {err}"));
    let output = tokio::time::timeout(DEADLINE, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} did not finish within {DEADLINE:?}"))
        .expect("output");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The Python SDK client: lists tools and calls one; returns its JSON summary.
pub async fn python_client(url: &str, mode: &str, tool: &str, arguments: Value) -> Value {
    let script = peer("python/gateway_client.py");
    let python = peer(".venv/bin/python");
    let arguments = arguments.to_string();
    let (code, stdout, stderr) = run(&python, &[&script, url, mode, tool, &arguments]).await;
    assert_eq!(
        code, 0,
        "python client ({mode}) failed:\n{stdout}\n{stderr}"
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|err| panic!("bad output {stdout}: {err}"))
}

/// The MCP Inspector CLI; returns its JSON output.
pub async fn inspector(target: &[&str], method_args: &[&str]) -> Value {
    let inspector = peer("node_modules/.bin/mcp-inspector");
    let mut args = vec!["--cli", "--format", "json", "-q"];
    args.extend_from_slice(target);
    args.extend_from_slice(method_args);
    let (code, stdout, stderr) = run(&inspector, &args).await;
    assert_eq!(code, 0, "inspector {args:?} failed:\n{stdout}\n{stderr}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|err| panic!("bad output {stdout}: {err}"))
}

/// Opens a session-era session on `url` (`initialize`, 2025-11-25) and returns its id.
pub async fn open_session(client: &reqwest::Client, url: &str) -> String {
    let initialize = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "test", "version": "1" } } });
    let response = client
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await
        .expect("initialize");
    response.headers()["mcp-session-id"]
        .to_str()
        .expect("ascii")
        .to_owned()
}
