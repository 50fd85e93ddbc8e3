//! `mcp-gateway serve` and `mcp-gateway stdio` as a client sees them.

use serde_json::json;

use crate::support::{
    Background, DEADLINE, free_port, gateway_bin, inspector, names, peer, python_client,
    sibling_bin, wait_for_port,
};

/// A config fronting server-everything and server-memory over stdio and the bundled memory
/// server over HTTP.
fn write_config(dir: &std::path::Path, memory_url: &str) -> std::path::PathBuf {
    let config = format!(
        r#"
[servers.everything]
command = "{everything}"
args = ["stdio"]

[servers.memory]
command = "{memory}"
env = {{ MEMORY_FILE_PATH = "{memory_file}" }}

[servers.bundled]
url = "{memory_url}"
"#,
        everything = peer("node_modules/.bin/mcp-server-everything"),
        memory = peer("node_modules/.bin/mcp-server-memory"),
        memory_file = dir.join("reference.jsonl").display(),
    );
    let path = dir.join("gateway.toml");
    std::fs::write(&path, config).expect("config written");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_fronts_stdio_and_http_upstreams_for_the_inspector() {
    let dir = tempfile::tempdir().expect("temp dir");
    let memory_port = free_port();
    let memory_file = dir.path().join("bundled.jsonl").display().to_string();
    let memory_listen = format!("127.0.0.1:{memory_port}");
    let _bundled = Background::start(
        &sibling_bin("mcp-memory-server"),
        &["--listen", &memory_listen, "--file", &memory_file],
        &[],
    );
    wait_for_port(memory_port).await;
    let config = write_config(dir.path(), &format!("http://127.0.0.1:{memory_port}/mcp"));

    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let gateway = Background::start(
        gateway_bin(),
        &[
            "serve",
            "--config",
            &config.display().to_string(),
            "--listen",
            &listen,
        ],
        &[],
    );
    wait_for_port(port).await;
    let url = format!("http://127.0.0.1:{port}/mcp");
    let target = [url.as_str(), "--transport", "http"];

    let listed = inspector(&target, &["--method", "tools/list"]).await;
    let tools = names(&listed);
    for expected in [
        "everything__echo",
        "memory__create_entities",
        "bundled__create_entities",
        "bundled__search_nodes",
    ] {
        assert!(
            tools.iter().any(|t| t == expected),
            "{expected} missing from {tools:?}"
        );
    }
    let echoed = inspector(
        &target,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "everything__echo",
            "--tool-arg",
            "message=served",
        ],
    )
    .await;
    assert_eq!(echoed["content"][0]["text"], "Echo: served", "{echoed}");
    let entities =
        json!([{ "name": "gateway", "entityType": "software", "observations": ["serves MCP"] }])
            .to_string();
    for server in ["memory", "bundled"] {
        let tool = format!("{server}__create_entities");
        let created = inspector(
            &target,
            &[
                "--method",
                "tools/call",
                "--tool-name",
                &tool,
                "--tool-arg",
                &format!("entities={entities}"),
            ],
        )
        .await;
        assert_ne!(created["isError"], true, "{server}: {created}");
    }
    let found = inspector(
        &target,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "bundled__search_nodes",
            "--tool-arg",
            "query=serves",
        ],
    )
    .await;
    assert!(found.to_string().contains("gateway"), "{found}");
    // The Python SDK client in both eras: all three upstreams' tools, and progress relayed.
    for (mode, version) in [("legacy", "2025-11-25"), ("2026-07-28", "2026-07-28")] {
        let summary = python_client(
            &url,
            mode,
            "everything__trigger-long-running-operation",
            &json!({ "duration": 0.3, "steps": 3 }),
        )
        .await;
        assert_eq!(summary["protocolVersion"], version, "{summary}");
        assert_eq!(
            summary["progress"].as_array().map(Vec::len),
            Some(3),
            "{summary}"
        );
        let graph = python_client(&url, mode, "bundled__read_graph", &json!({})).await;
        assert!(
            graph["result"].to_string().contains("serves MCP"),
            "{graph}"
        );
        let tools = graph["tools"].to_string();
        assert!(
            tools.contains("memory__open_nodes") && tools.contains("everything__echo"),
            "{tools}"
        );
    }
    let status = gateway.terminate().await;
    assert!(
        status.success(),
        "SIGTERM ends the gateway cleanly: {status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_mode_serves_the_inspector_as_a_stdio_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let memory_file = dir.path().join("embedded.jsonl").display().to_string();
    // No config: the embedded default, the bundled memory server in process.
    let target = [
        gateway_bin(),
        "stdio",
        "--memory-file",
        memory_file.as_str(),
    ];
    let listed = inspector(&target, &["--method", "tools/list"]).await;
    let tools = names(&listed);
    assert!(tools.iter().any(|t| t == "memory__read_graph"), "{tools:?}");
    let created = inspector(
        &target,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "memory__create_entities",
            "--tool-arg",
            r#"entities=[{"name":"stdio","entityType":"mode","observations":["works"]}]"#,
        ],
    )
    .await;
    assert_ne!(created["isError"], true, "{created}");
    // A second process reads what the first wrote.
    let graph = inspector(
        &target,
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "memory__read_graph",
        ],
    )
    .await;
    assert!(graph.to_string().contains("works"), "{graph}");
}

/// A taken address fails the start before any upstream starts: no child is spawned only to be
/// stopped again, and the error names the address.
#[tokio::test]
async fn a_taken_address_fails_before_any_upstream_starts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bound");
    let address = taken.local_addr().expect("address").to_string();
    let started = dir.path().join("upstream-started");
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[servers.slow]\ncommand = \"sh\"\nargs = [\"-c\", \"touch '{}'; exec sleep 60\"]\n",
            started.display()
        ),
    )
    .expect("config written");
    let run = tokio::process::Command::new(gateway_bin())
        .args(["serve", "--config", &config.display().to_string()])
        .args(["--listen", &address])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .expect("the gateway exits")
        .expect("the gateway ran");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {address}")),
        "{stderr}"
    );
    assert!(
        !started.exists(),
        "an upstream was started for a gateway that could not listen"
    );
}

/// Sends one HTTP/1.1 POST to `/mcp` and returns the status code and the body.
async fn post_raw(port: u16, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connected");
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request written");
    let mut response = String::new();
    tokio::time::timeout(DEADLINE, stream.read_to_string(&mut response))
        .await
        .expect("answered before the deadline")
        .expect("response read");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_default();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The `[gateway]` limits of the config file reach the running gateway.
#[tokio::test]
async fn serve_applies_the_body_limit_of_the_config_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, "[gateway]\nmax_body_bytes = 1024\n").expect("config written");
    let port = free_port();
    let gateway = Background::start(
        gateway_bin(),
        &[
            "serve",
            "--config",
            &config.display().to_string(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
        &[],
    );
    wait_for_port(port).await;
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping","pad":""#;
    let within = format!("{ping}{}\"}}", " ".repeat(1024 - ping.len() - 2));
    let (status, body) = post_raw(port, &within).await;
    assert_ne!(status, 413, "{body}");
    let beyond = format!("{ping}{}\"}}", " ".repeat(1025 - ping.len() - 2));
    let (status, body) = post_raw(port, &beyond).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("max_body_bytes"), "{body}");
    gateway.kill().await;
}
