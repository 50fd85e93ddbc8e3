//! HTTP upstreams that try to take more than they should: an SSE `endpoint` event naming another
//! origin, a redirect to another port, an event that never ends, and a URL with a password that
//! must not end up in errors. Each is a raw TCP peer on 127.0.0.1, so nothing is left to a
//! library's good manners.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mcp_gateway_core::{
    Gateway, GatewayEvent, ProtocolPreference, ServerSpec, ServerStatus, error_chain,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{free_port, next_matching};

/// A listener on 127.0.0.1 that answers every connection the same way and counts them.
struct RawPeer {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl RawPeer {
    /// Answers each request with `head`, then `filler` bytes of `x`, then holds the connection
    /// open until the client leaves; with an empty `head`, answers nothing at all.
    async fn start(head: String, filler: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(answer(socket, head.clone(), filler));
            }
        });
        Self { port, connections }
    }

    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn answer(mut socket: TcpStream, head: String, filler: usize) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => request.extend_from_slice(&buffer[..read]),
        }
    }
    if !head.is_empty() && socket.write_all(head.as_bytes()).await.is_ok() {
        let chunk = vec![b'x'; 64 * 1024];
        let mut left = filler;
        while left > 0 {
            let part = left.min(chunk.len());
            if socket.write_all(&chunk[..part]).await.is_err() {
                return;
            }
            left -= part;
        }
    }
    // Hold the connection until the client goes away.
    while matches!(socket.read(&mut buffer).await, Ok(read) if read > 0) {}
}

const SSE_HEAD: &str =
    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\r\n";

#[tokio::test]
async fn an_sse_endpoint_on_another_origin_is_refused_and_never_contacted() {
    let elsewhere = RawPeer::start(String::new(), 0).await;
    let endpoint = format!("{}/message", elsewhere.origin());
    let sse = RawPeer::start(
        format!("{SSE_HEAD}event: endpoint\ndata: {endpoint}\n\n"),
        0,
    )
    .await;
    let spec = ServerSpec::sse("legacy", &format!("{}/sse", sse.origin()))
        .expect("valid spec")
        .with_header("Authorization", "Bearer secret-token")
        .with_header("X-Api-Key", "secret-key")
        .with_connect_timeout(Duration::from_secs(5));
    let gateway = Gateway::builder().build();
    let mut events = gateway.subscribe();

    let err = gateway
        .add_server(spec)
        .await
        .expect_err("an endpoint on another origin must be refused");
    let text = error_chain(&err);
    assert!(
        text.contains("legacy")
            && text.contains(&sse.origin())
            && text.contains(&elsewhere.origin()),
        "{text}"
    );
    assert_eq!(elsewhere.connections(), 0, "the other origin was contacted");
    next_matching(
        &mut events,
        "a status change naming both origins",
        |event| {
            matches!(event, GatewayEvent::StatusChanged { reason, to, .. }
            if *to != ServerStatus::Connecting
                && reason.contains(&sse.origin())
                && reason.contains(&elsewhere.origin()))
        },
    )
    .await;
    assert_eq!(elsewhere.connections(), 0, "the other origin was contacted");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_redirect_to_another_port_is_not_followed() {
    let elsewhere = RawPeer::start(String::new(), 0).await;
    let head = format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: {}/mcp\r\ncontent-length: 0\r\n\r\n",
        elsewhere.origin()
    );
    let redirecting = RawPeer::start(head, 0).await;
    let spec = ServerSpec::streamable_http("moved", &format!("{}/mcp", redirecting.origin()))
        .expect("valid spec")
        .with_header("X-Api-Key", "secret-key")
        .with_protocol(ProtocolPreference::Session)
        .with_connect_timeout(Duration::from_secs(5));
    let gateway = Gateway::builder().build();
    let err = gateway
        .add_server(spec)
        .await
        .expect_err("a redirect is not an answer");
    assert!(error_chain(&err).contains("307"), "{}", error_chain(&err));
    assert!(redirecting.connections() > 0, "the upstream was not asked");
    assert_eq!(elsewhere.connections(), 0, "the redirect was followed");
    gateway.shutdown().await;
}

#[tokio::test]
async fn an_sse_event_that_never_ends_fails_the_call_instead_of_filling_memory() {
    // A little more than the 64 MiB cap, then the connection stays open with the event unfinished.
    let endless = RawPeer::start(format!("{SSE_HEAD}data: "), 65 * 1024 * 1024).await;
    let spec = ServerSpec::streamable_http("endless", &format!("{}/mcp", endless.origin()))
        .expect("valid spec")
        .with_protocol(ProtocolPreference::Session)
        .with_connect_timeout(Duration::from_secs(20));
    let gateway = Gateway::builder().build();
    let err = gateway
        .add_server(spec)
        .await
        .expect_err("an endless event is not an answer");
    let text = error_chain(&err);
    assert!(text.contains("67108864 bytes"), "{text}");
    gateway.shutdown().await;
}

#[tokio::test]
async fn a_password_in_an_upstream_url_never_appears_in_errors() {
    let url = format!("http://user:hunter2@127.0.0.1:{}/mcp", free_port());
    let gateway = Gateway::builder().build();
    let mut events = gateway.subscribe();
    // The session era goes straight to `initialize`, whose error is the transport's own.
    let spec = ServerSpec::streamable_http("guarded", &url)
        .expect("valid spec")
        .with_protocol(ProtocolPreference::Session);
    let err = gateway.add_server(spec).await.expect_err("nothing listens");
    let text = error_chain(&err);
    assert!(text.contains("could not connect"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    let event = next_matching(&mut events, "the failed status", |event| {
        matches!(event, GatewayEvent::StatusChanged { reason, .. } if reason.contains("could not connect"))
    })
    .await;
    let event = serde_json::to_string(&event).expect("events serialise");
    assert!(!event.contains("hunter2"), "{event}");
    gateway.shutdown().await;

    // A URL refused by the spec itself is quoted redacted too.
    for bad in [
        "ftp://user:hunter2@host/mcp",
        "http://user:hunter2@host:port/mcp",
    ] {
        let err = ServerSpec::streamable_http("bad", bad).expect_err("not a valid url");
        let text = err.to_string();
        assert!(
            text.contains("***@host") && !text.contains("hunter2"),
            "{text}"
        );
    }
}
