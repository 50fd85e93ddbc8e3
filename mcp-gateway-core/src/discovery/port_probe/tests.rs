//! What counts as an MCP answer, against canned HTTP servers on loopback, and the re-probe loop
//! on tokio's paused clock.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::*;

/// An HTTP server on a free loopback port that answers every request with its current
/// response (`None`: accepts and never answers). Stops when dropped.
struct Canned {
    port: u16,
    response: Arc<Mutex<Option<String>>>,
    task: JoinHandle<()>,
}

impl Canned {
    fn answer_with(&self, response: Option<String>) {
        *self.response.lock().expect("not poisoned") = response;
    }
}

impl Drop for Canned {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn canned(response: Option<String>) -> Canned {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let response = Arc::new(Mutex::new(response));
    let current = response.clone();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let Some(response) = current.lock().expect("not poisoned").clone() else {
                held.push(stream);
                continue;
            };
            tokio::spawn(async move {
                read_request(&mut stream).await;
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Canned {
        port,
        response,
        task,
    }
}

/// Reads one request: the head, then `content-length` bytes of body.
async fn read_request(stream: &mut tokio::net::TcpStream) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let Ok(read) = stream.read(&mut buffer).await else {
            return;
        };
        if read == 0 {
            return;
        }
        request.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&request);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())
                        .flatten()
                })
                .unwrap_or(0);
            if request.len() >= head_end + 4 + length {
                return;
            }
        }
    }
}

fn http(status: &str, content_type: &str, body: &str) -> Option<String> {
    Some(format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ))
}

fn source(port: u16) -> PortProbeSource {
    PortProbeSource::new([("probed", port)])
        .expect("valid")
        .with_timeout(Duration::from_millis(500))
}

const INITIALIZED: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"x","version":"1"}}}"#;

async fn verdict(response: Option<String>) -> Result<(), String> {
    let server = canned(response).await;
    source(server.port).probe(server.port).await
}

#[tokio::test]
async fn a_json_rpc_answer_counts_as_json_or_as_an_event() {
    let result = INITIALIZED;
    verdict(http("200 OK", "application/json", result))
        .await
        .expect("a JSON answer counts");
    let events = format!(
        "event: message\ndata: {}\n\nevent: message\ndata: {result}\n\n",
        r#"{"jsonrpc":"2.0","method":"notifications/message","params":{}}"#
    );
    verdict(http("200 OK", "text/event-stream", &events))
        .await
        .expect("an answer after a notification on an event stream counts");
    // A stateless-era server that refuses `initialize` still speaks MCP.
    let refused = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"no initialize"}}"#;
    verdict(http("400 Bad Request", "application/json", refused))
        .await
        .expect("a JSON-RPC error counts");
}

#[tokio::test]
async fn other_answers_do_not_count() {
    let cases = [
        http(
            "404 Not Found",
            "text/html",
            "<html><body>Not Found</body></html>",
        ),
        http("200 OK", "application/json", r#"{"status":"ok"}"#),
        http(
            "200 OK",
            "application/json",
            r#"{"jsonrpc":"2.0","id":7,"result":{}}"#,
        ),
        http(
            "200 OK",
            "text/event-stream",
            "data: {\"jsonrpc\":\"2.0\",\"method\":\"ping\"}\n\n",
        ),
        http(
            "200 OK",
            "application/json",
            &format!(
                r#"{{"jsonrpc":"2.0","id":1,"result":{{"pad":"{}"}}}}"#,
                "x".repeat(MAX_ANSWER_BYTES)
            ),
        ),
    ];
    for response in cases {
        let shown = response.clone().unwrap_or_default();
        let reason = verdict(response).await.expect_err("not MCP");
        assert!(
            reason.contains("not a JSON-RPC answer") || reason.contains("without an answer"),
            "{reason} for {}",
            shown.chars().take(120).collect::<String>()
        );
    }
}

#[tokio::test]
async fn a_silent_server_fails_the_probe_at_the_timeout() {
    let reason = verdict(None).await.expect_err("no answer");
    assert!(reason.contains("no answer within"), "{reason}");
}

#[tokio::test]
async fn a_closed_port_fails_the_probe() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("address").port()
    };
    let reason = source(port).probe(port).await.expect_err("refused");
    assert!(reason.contains("request failed"), "{reason}");
}

#[test]
fn ids_and_ports_must_be_unique_and_valid() {
    let twice = PortProbeSource::new([("a", 1), ("a", 2)]).expect_err("id twice");
    assert!(twice.to_string().contains("`a` is given twice"), "{twice}");
    let twice = PortProbeSource::new([("a", 1), ("b", 1)]).expect_err("port twice");
    assert!(
        twice.to_string().contains("port 1 is given twice"),
        "{twice}"
    );
    let invalid = PortProbeSource::new([("no spaces", 1)]).expect_err("bad id");
    assert!(invalid.to_string().contains("`no spaces`"), "{invalid}");
    let well_known = PortProbeSource::well_known().expect("valid");
    assert_eq!(
        well_known
            .ports
            .iter()
            .map(|(id, port)| (id.as_str(), *port))
            .collect::<Vec<_>>(),
        WELL_KNOWN_PORTS
    );
}

#[tokio::test(start_paused = true)]
async fn an_unchanged_set_never_reports_a_change() {
    // No ports: every re-probe finds the same empty set, so an hour of paused-clock intervals
    // passes without `changed` resolving.
    let source = PortProbeSource::new(Vec::<(&str, u16)>::new())
        .expect("valid")
        .with_interval(Duration::from_secs(10));
    assert!(source.discover().await.expect("probes").is_empty());
    let waited = tokio::time::timeout(Duration::from_secs(3600), source.changed()).await;
    assert!(waited.is_err(), "changed resolved without a change");
}

#[tokio::test]
async fn changed_resolves_when_a_port_starts_answering() {
    let server = canned(http("404 Not Found", "text/html", "<html></html>")).await;
    let source = source(server.port).with_interval(Duration::from_millis(20));
    assert!(source.discover().await.expect("probes").is_empty());
    server.answer_with(http("200 OK", "application/json", INITIALIZED));
    tokio::time::timeout(Duration::from_secs(30), source.changed())
        .await
        .expect("the change is seen");
    let found = source.discover().await.expect("probes");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id.as_str(), "probed");
    let TransportSpec::StreamableHttp(http) = &found[0].transport else {
        panic!("streamable http: {:?}", found[0].transport);
    };
    assert_eq!(http.url, format!("http://127.0.0.1:{}/mcp", server.port));
}
