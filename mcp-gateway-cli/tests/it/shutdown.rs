//! Shutdown with clients still attached: SIGTERM ends `serve` although clients hold open
//! streams (a session's GET stream, a legacy `/sse` stream, a 2026-07-28 `subscriptions/listen`
//! stream, a call still running), and `stdio` ends when its input closes although a listen
//! stream is open, and on SIGTERM while its input is still open; none leaves a child behind. The clients speak raw HTTP/1.1 over TCP so
//! that nothing between them and the gateway reads, buffers or closes on their behalf.

use std::process::Stdio;
use std::time::Instant;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::support::{
    Background, DEADLINE, SHUTDOWN_DEADLINE, free_port, gateway_bin, marked, peer,
    wait_for_no_marked, wait_for_port,
};

/// Sends one HTTP/1.1 request on a new connection and reads the response head; the connection
/// is returned with the body unread.
async fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (String, TcpStream) {
    let mut connection = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connected");
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        head.push_str("content-type: application/json\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    connection
        .write_all(format!("{head}{body}").as_bytes())
        .await
        .expect("request sent");
    let mut received = Vec::new();
    while !received.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(DEADLINE, connection.read(&mut byte))
            .await
            .expect("a response head within the deadline")
            .expect("read");
        assert_eq!(read, 1, "the connection closed before the response head");
        received.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&received).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    (head, connection)
}

/// A header's value in a response head.
fn header_value<'h>(head: &'h str, name: &str) -> &'h str {
    head.lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
        .unwrap_or_else(|| panic!("no {name} in {head}"))
}

/// Opens every kind of long-lived stream `/mcp` and `/sse` serve, and returns their
/// connections. With `slow_tool`, also a call that runs for a minute and answers on a stream.
async fn open_streams(port: u16, slow_tool: Option<&str>) -> Vec<TcpStream> {
    let sse = [("accept", "application/json, text/event-stream")];
    let initialize = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } } });
    let (head, _) = request(port, "POST", "/mcp", &sse, Some(&initialize)).await;
    let session = header_value(&head, "mcp-session-id").to_owned();
    let session_headers = [
        ("accept", "application/json, text/event-stream"),
        ("mcp-session-id", session.as_str()),
    ];
    let mut streams = Vec::new();
    let (_, get) = request(port, "GET", "/mcp", &session_headers, None).await;
    streams.push(get);
    let (_, legacy) = request(port, "GET", "/sse", &[], None).await;
    streams.push(legacy);
    let listen = json!({ "jsonrpc": "2.0", "id": 2, "method": "subscriptions/listen", "params": {
        "notifications": { "toolsListChanged": true },
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        } } });
    let stateless = [
        ("accept", "application/json, text/event-stream"),
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "subscriptions/listen"),
    ];
    let (_, listen) = request(port, "POST", "/mcp", &stateless, Some(&listen)).await;
    streams.push(listen);
    if let Some(tool) = slow_tool {
        let call = json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": tool, "arguments": { "duration": 60, "steps": 60 },
            "_meta": { "progressToken": "slow" } } });
        let (head, call) = request(port, "POST", "/mcp", &session_headers, Some(&call)).await;
        assert!(head.contains("text/event-stream"), "{head}");
        streams.push(call);
    }
    streams
}

/// Sends SIGTERM to a gateway whose clients hold `streams`: it must exit cleanly before the
/// deadline (it used to wait for the streams forever), and every stream must end.
async fn assert_terminates(gateway: Background, streams: Vec<TcpStream>) {
    let status = gateway.terminate().await;
    assert!(
        status.success(),
        "SIGTERM ends the gateway cleanly: {status}"
    );
    for mut stream in streams {
        let mut rest = Vec::new();
        tokio::time::timeout(DEADLINE, stream.read_to_end(&mut rest))
            .await
            .expect("the stream ends with the gateway")
            .expect("read");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_serve_while_clients_hold_streams() {
    let dir = tempfile::tempdir().expect("temp dir");
    let memory_file = dir.path().join("memory.jsonl").display().to_string();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    // No config: the embedded default.
    let gateway = Background::start(
        gateway_bin(),
        &["serve", "--listen", &listen, "--memory-file", &memory_file],
        &[],
    );
    wait_for_port(port).await;
    let streams = open_streams(port, None).await;
    assert_terminates(gateway, streams).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_serve_and_its_children_during_a_call() {
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = format!("sigterm-{}", std::process::id());
    let config = dir.path().join("gateway.toml");
    let everything = peer("node_modules/.bin/mcp-server-everything");
    let text = format!(
        "[servers.everything]\ncommand = \"{everything}\"\nargs = [\"stdio\"]\nenv = {{ GW_MARKER = \"{marker}\" }}\n"
    );
    std::fs::write(&config, text).expect("config written");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let config = config.display().to_string();
    let gateway = Background::start(
        gateway_bin(),
        &["serve", "--config", &config, "--listen", &listen],
        &[],
    );
    wait_for_port(port).await;
    assert!(!marked(&marker).is_empty(), "the child runs");
    let streams = open_streams(port, Some("everything__trigger-long-running-operation")).await;
    assert_terminates(gateway, streams).await;
    wait_for_no_marked(&marker, SHUTDOWN_DEADLINE, "a child outlived the gateway").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_ends_when_its_input_closes_during_a_listen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = format!("stdin-{}", std::process::id());
    let config = dir.path().join("gateway.toml");
    let everything = peer("node_modules/.bin/mcp-server-everything");
    let text = format!(
        "[servers.everything]\ncommand = \"{everything}\"\nargs = [\"stdio\"]\nenv = {{ GW_MARKER = \"{marker}\" }}\n"
    );
    std::fs::write(&config, text).expect("config written");
    let mut gateway = tokio::process::Command::new(gateway_bin())
        .args(["stdio", "--config", &config.display().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the gateway starts");
    let mut input = gateway.stdin.take().expect("stdin");
    let mut output = BufReader::new(gateway.stdout.take().expect("stdout")).lines();
    let listen = json!({ "jsonrpc": "2.0", "id": 1, "method": "subscriptions/listen", "params": {
        "notifications": { "toolsListChanged": true },
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        } } });
    input
        .write_all(format!("{listen}\n").as_bytes())
        .await
        .expect("written");
    let acknowledged = tokio::time::timeout(DEADLINE, output.next_line())
        .await
        .expect("an acknowledgement within the deadline")
        .expect("read")
        .expect("a line");
    assert!(
        acknowledged.contains("subscriptions/acknowledged"),
        "{acknowledged}"
    );
    assert!(!marked(&marker).is_empty(), "the child runs");

    drop(input);
    let started = Instant::now();
    let status = tokio::time::timeout(SHUTDOWN_DEADLINE, gateway.wait())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "still running {:?} after its input closed",
                started.elapsed()
            )
        })
        .expect("exit status");
    assert!(status.success(), "{status}");
    wait_for_no_marked(&marker, SHUTDOWN_DEADLINE, "a child outlived the gateway").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_stdio_while_its_input_is_open() {
    let dir = tempfile::tempdir().expect("temp dir");
    let memory_file = dir.path().join("memory.jsonl").display().to_string();
    let mut gateway = tokio::process::Command::new(gateway_bin())
        .args(["stdio", "--memory-file", &memory_file])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the gateway starts");
    let mut input = gateway.stdin.take().expect("stdin");
    let mut output = BufReader::new(gateway.stdout.take().expect("stdout")).lines();
    // An answered ping: the gateway is up and reading its input.
    let initialize = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } } });
    input
        .write_all(format!("{initialize}\n").as_bytes())
        .await
        .expect("written");
    let answered = tokio::time::timeout(DEADLINE, output.next_line())
        .await
        .expect("an answer within the deadline")
        .expect("read")
        .expect("a line");
    assert!(answered.contains("protocolVersion"), "{answered}");

    let pid = gateway.id().expect("running").to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let status = tokio::time::timeout(SHUTDOWN_DEADLINE, gateway.wait())
        .await
        .expect("exits before the deadline after SIGTERM, its input still open")
        .expect("exit status");
    assert!(status.success(), "{status}");
    drop(input);
}
