//! The built-in discovery sources against real peers: the port probe finds server-everything on
//! a free port and drops it when it dies, the DNS SRV source follows a loopback DNS server the
//! test runs, and the environment source feeds a gateway a stdio server. Two sources yielding one
//! id: the first registered keeps it, whatever the order they answer in, and the other is told.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::rdata::SRV;
use hickory_resolver::proto::rr::{Name, RData, Record};
use mcp_gateway_core::discovery::{DnsSrvSource, EnvSource, PortProbeSource};
use mcp_gateway_core::{
    BoxError, DiscoverySource, Gateway, GatewayEvent, InProcessServer, ServerSpec, ServerStatus,
    StaticSource, TransportSpec,
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::fixture::Fixture;
use crate::support::{DEADLINE, PeerProcess, eventually, first_text, free_port, peer_bin};

/// Re-probe and re-resolve quickly: the tests wait for changes by polling with a deadline.
const INTERVAL: Duration = Duration::from_millis(100);

fn ids(specs: &[ServerSpec]) -> Vec<&str> {
    specs.iter().map(|spec| spec.id.as_str()).collect()
}

fn url(spec: &ServerSpec) -> &str {
    match &spec.transport {
        TransportSpec::StreamableHttp(http) => &http.url,
        other => panic!("{} is not streamable http: {other:?}", spec.id),
    }
}

/// Waits for `source` to report a change; fails the test after [`DEADLINE`].
async fn changed(source: &dyn DiscoverySource, what: &str) {
    if tokio::time::timeout(DEADLINE, source.changed())
        .await
        .is_err()
    {
        panic!("timed out waiting for {what}");
    }
}

/// A web server that is not an MCP server: every request gets a 404 HTML page.
async fn html_server() -> (u16, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let task = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buffer = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => head.extend_from_slice(&buffer[..read]),
                    }
                }
                let body = "<html><body><h1>Not Found</h1></body></html>";
                let response = format!(
                    "HTTP/1.1 404 Not Found\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (port, task)
}

#[tokio::test]
async fn port_probe_adds_a_live_server_and_removes_it_when_it_dies() {
    let peer = PeerProcess::start(
        &peer_bin("mcp-server-everything"),
        &["streamableHttp"],
        free_port(),
    )
    .await;
    let (html_port, html) = html_server().await;
    let source = Arc::new(
        PortProbeSource::new([("everything", peer.port), ("html", html_port)])
            .expect("valid ports")
            .with_interval(INTERVAL),
    );

    let found = source.discover().await.expect("probes");
    assert_eq!(ids(&found), ["everything"], "only the MCP server counts");
    assert_eq!(url(&found[0]), peer.url("/mcp"));

    let gateway = Gateway::builder().discovery(source.clone()).build();
    gateway.start().await;
    let server = gateway.server("everything").expect("discovered");
    assert_eq!(server.status, ServerStatus::Healthy, "{server:?}");
    assert_eq!(server.source.as_deref(), Some("port-probe"));
    let echoed = gateway
        .call_tool("everything__echo", json!({ "message": "probed" }))
        .await
        .expect("echo answers");
    assert_eq!(first_text(&echoed), "Echo: probed");

    drop(peer);
    eventually("the dead server removed", || {
        gateway.server("everything").is_none()
    })
    .await;
    assert!(gateway.servers().is_empty(), "{:?}", gateway.servers());
    gateway.shutdown().await;
    html.abort();
}

/// What the test DNS server answers to every SRV query.
#[derive(Clone)]
enum Zone {
    /// These `(target, port)` records; none is NXDOMAIN.
    Records(Vec<(&'static str, u16)>),
    /// REFUSED, as a server that will not answer for the name does.
    Refuse,
}

/// A DNS server on a loopback UDP port answering SRV queries from a zone the test can change.
struct DnsServer {
    address: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    task: JoinHandle<()>,
}

impl DnsServer {
    async fn start(zone: Zone) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let address = socket.local_addr().expect("address");
        let zone = Arc::new(Mutex::new(zone));
        let current = zone.clone();
        let task = tokio::spawn(async move {
            let mut buffer = [0u8; 1500];
            while let Ok((read, from)) = socket.recv_from(&mut buffer).await {
                let Ok(query) = Message::from_vec(&buffer[..read]) else {
                    continue;
                };
                let zone = current.lock().expect("not poisoned").clone();
                let answer = answer(&query, &zone);
                if let Ok(bytes) = answer.to_vec() {
                    let _ = socket.send_to(&bytes, from).await;
                }
            }
        });
        Self {
            address,
            zone,
            task,
        }
    }

    fn set(&self, zone: Zone) {
        *self.zone.lock().expect("not poisoned") = zone;
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(query: &Message, zone: &Zone) -> Message {
    let mut response = Message::response(query.metadata.id, query.metadata.op_code);
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.authoritative = true;
    response.add_queries(query.queries.clone());
    match zone {
        Zone::Refuse => response.metadata.response_code = ResponseCode::Refused,
        Zone::Records(records) if records.is_empty() => {
            response.metadata.response_code = ResponseCode::NXDomain;
        }
        Zone::Records(records) => {
            for query in &query.queries {
                for (target, port) in records {
                    let target = Name::from_str(target).expect("a valid target");
                    response.add_answer(Record::from_rdata(
                        query.name().clone(),
                        0,
                        RData::SRV(SRV::new(0, 0, *port, target)),
                    ));
                }
            }
        }
    }
    response
}

#[tokio::test]
async fn dns_srv_follows_the_records() {
    let dns = DnsServer::start(Zone::Records(vec![
        ("beta.example.internal.", 8081),
        ("alpha.example.internal.", 8080),
        ("alpha.other.internal.", 9090),
        (".", 1),
    ]))
    .await;
    let source = DnsSrvSource::with_name_servers("_mcp._tcp.example.internal.", [dns.address])
        .expect("valid")
        .with_interval(INTERVAL);

    let found = source.discover().await.expect("resolves");
    assert_eq!(ids(&found), ["alpha", "alpha-2", "beta"]);
    assert_eq!(url(&found[0]), "http://alpha.example.internal:8080/mcp");
    assert_eq!(url(&found[1]), "http://alpha.other.internal:9090/mcp");
    assert_eq!(url(&found[2]), "http://beta.example.internal:8081/mcp");

    dns.set(Zone::Records(vec![("beta.example.internal.", 8081)]));
    changed(&source, "a target to go away").await;
    let found = source.discover().await.expect("resolves");
    assert_eq!(ids(&found), ["beta"]);

    dns.set(Zone::Records(Vec::new()));
    changed(&source, "the name to go away").await;
    assert!(
        source
            .discover()
            .await
            .expect("NXDOMAIN is no servers")
            .is_empty(),
        "a name that does not exist has no servers"
    );

    dns.set(Zone::Refuse);
    let error = source.discover().await.expect_err("REFUSED is an error");
    let message = mcp_gateway_core::error_chain(error.as_ref());
    assert!(
        message.contains("`_mcp._tcp.example.internal.`"),
        "the error names the srv name: {message}"
    );
}

#[tokio::test]
async fn dns_srv_feeds_a_gateway() {
    let peer = PeerProcess::start(
        &peer_bin("mcp-server-everything"),
        &["streamableHttp"],
        free_port(),
    )
    .await;
    let dns = DnsServer::start(Zone::Records(vec![("localhost.", peer.port)])).await;
    let source = DnsSrvSource::with_name_servers("_mcp._tcp.example.internal.", [dns.address])
        .expect("valid")
        .with_name("dns");
    let gateway = Gateway::builder().discovery(Arc::new(source)).build();
    gateway.start().await;
    let server = gateway.server("localhost").expect("discovered");
    assert_eq!(server.status, ServerStatus::Healthy, "{server:?}");
    assert_eq!(server.source.as_deref(), Some("dns"));
    let echoed = gateway
        .call_tool("localhost__echo", json!({ "message": "resolved" }))
        .await
        .expect("echo answers");
    assert_eq!(first_text(&echoed), "Echo: resolved");
    gateway.shutdown().await;
}

#[tokio::test]
async fn env_source_feeds_a_gateway() {
    let everything = peer_bin("mcp-server-everything");
    let source = EnvSource::new([
        ("MCP_SERVER_EVERYTHING_COMMAND", everything.as_str()),
        ("MCP_SERVER_EVERYTHING_ARGS", r#"["stdio"]"#),
        ("PATH", "/not/kept"),
    ]);
    let gateway = Gateway::builder().discovery(Arc::new(source)).build();
    gateway.start().await;
    let server = gateway.server("everything").expect("discovered");
    assert_eq!(server.status, ServerStatus::Healthy, "{server:?}");
    assert_eq!(server.source.as_deref(), Some("env"));
    let echoed = gateway
        .call_tool(
            "everything__echo",
            json!({ "message": "from the environment" }),
        )
        .await
        .expect("echo answers");
    assert_eq!(first_text(&echoed), "Echo: from the environment");
    gateway.shutdown().await;
}

/// A source whose set the test changes, optionally answering only after another source has.
struct Switchable {
    name: &'static str,
    specs: Mutex<Vec<ServerSpec>>,
    edited: Notify,
    /// Notified on every `discover`.
    discovered: Arc<Notify>,
    /// When set, the first `discover` waits for this notification.
    after: Mutex<Option<Arc<Notify>>>,
}

impl Switchable {
    fn new(name: &'static str, specs: Vec<ServerSpec>, after: Option<Arc<Notify>>) -> Self {
        Self {
            name,
            specs: Mutex::new(specs),
            edited: Notify::new(),
            discovered: Arc::new(Notify::new()),
            after: Mutex::new(after),
        }
    }

    fn set(&self, specs: Vec<ServerSpec>) {
        *self.specs.lock().expect("not poisoned") = specs;
        self.edited.notify_one();
    }
}

#[async_trait::async_trait]
impl DiscoverySource for Switchable {
    fn name(&self) -> &str {
        self.name
    }

    async fn discover(&self) -> Result<Vec<ServerSpec>, BoxError> {
        let after = self.after.lock().expect("not poisoned").take();
        if let Some(after) = after {
            after.notified().await;
        }
        self.discovered.notify_one();
        Ok(self.specs.lock().expect("not poisoned").clone())
    }

    async fn changed(&self) {
        self.edited.notified().await;
    }
}

fn tagged_stdio(id: &str, tag: &str) -> ServerSpec {
    ServerSpec::stdio(id, &peer_bin("mcp-server-everything"), ["stdio"])
        .expect("valid spec")
        .with_tag(tag)
}

fn tagged_in_process(id: &str, tag: &str) -> ServerSpec {
    ServerSpec::in_process(id, InProcessServer::new(id, Fixture::default))
        .expect("valid spec")
        .with_tag(tag)
}

fn conflicts(gateway: &Gateway) -> Vec<(String, Option<String>, String)> {
    gateway
        .events()
        .history_since(0)
        .iter()
        .filter_map(|envelope| match &envelope.event {
            GatewayEvent::DiscoveryConflict {
                server,
                kept,
                rejected,
            } => Some((server.to_string(), kept.clone(), rejected.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_source_keeps_a_contested_id_and_the_other_is_told() {
    let first = StaticSource::new("first", vec![tagged_stdio("memory", "first")]);
    let second = StaticSource::new(
        "second",
        vec![
            tagged_stdio("memory", "second"),
            tagged_in_process("solo", "second"),
        ],
    );
    let gateway = Gateway::builder()
        .discovery(Arc::new(first))
        .discovery(Arc::new(second))
        .build();
    gateway.start().await;

    let memory = gateway.server("memory").expect("running");
    assert_eq!(memory.source.as_deref(), Some("first"), "{memory:?}");
    assert_eq!(memory.tags, ["first"]);
    assert_eq!(memory.status, ServerStatus::Healthy);
    let applied: Vec<(String, Vec<String>)> = gateway
        .events()
        .history_since(0)
        .iter()
        .filter_map(|envelope| match &envelope.event {
            GatewayEvent::DiscoveryApplied { source, added, .. } => Some((
                source.clone(),
                added.iter().map(ToString::to_string).collect(),
            )),
            _ => None,
        })
        .collect();
    assert!(
        applied.contains(&("second".to_owned(), vec!["solo".to_owned()])),
        "the second source's lost id is not reported added: {applied:?}"
    );
    assert!(
        !applied.contains(&(
            "second".to_owned(),
            vec!["memory".to_owned(), "solo".to_owned()]
        )),
        "{applied:?}"
    );
    assert_eq!(
        conflicts(&gateway),
        [(
            "memory".to_owned(),
            Some("first".to_owned()),
            "second".to_owned()
        )]
    );
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_source_wins_even_when_it_answers_last_and_hands_the_id_back() {
    let second = Arc::new(Switchable::new(
        "second",
        vec![tagged_in_process("memory", "second")],
        None,
    ));
    // The first source answers only after the second one has: the worst order for it.
    let first = Arc::new(Switchable::new(
        "first",
        vec![tagged_in_process("memory", "first")],
        Some(second.discovered.clone()),
    ));
    let gateway = Gateway::builder()
        .discovery(first.clone())
        .discovery(second.clone())
        .build();
    gateway.start().await;
    let memory = gateway.server("memory").expect("running");
    assert_eq!(memory.source.as_deref(), Some("first"), "{memory:?}");
    assert_eq!(memory.tags, ["first"]);
    assert_eq!(
        conflicts(&gateway),
        [(
            "memory".to_owned(),
            Some("first".to_owned()),
            "second".to_owned()
        )]
    );

    // When the first source lets the id go, the second source's spec takes it over.
    first.set(Vec::new());
    eventually("the second source's spec running", || {
        gateway.server("memory").is_some_and(|server| {
            server.source.as_deref() == Some("second") && server.status == ServerStatus::Healthy
        })
    })
    .await;
    assert_eq!(gateway.server("memory").expect("running").tags, ["second"]);
    gateway.shutdown().await;
}
