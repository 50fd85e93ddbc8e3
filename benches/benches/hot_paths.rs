//! Micro-benchmarks of the gateway's hot paths, through mcp-gateway-core's public API (divan).
//!
//! ```sh
//! cargo bench -p benches --bench hot_paths             # all
//! cargo bench -p benches --bench hot_paths -- registry # a subset, by name
//! ```
//!
//! * `registry`: routing lookup in a catalogue of 100 servers × 100 tools, the snapshot load a
//!   call does first, a rebuild after one server's list changed, and the merged `tools/list`
//!   page as the MCP server answers it (first page of 1,000 and the whole 10,000, serialised).
//! * `upstream`: one request through an upstream connection to an in-process rmcp server — id
//!   allocation and rewriting, the pending map, line framing both ways, the answer routed back —
//!   alone, at 16 in flight, and as `Gateway::call_tool` and `McpServer::handle` add their parts.
//!   The id rewriting itself (`prepare_params`) is private and is measured inside these paths
//!   rather than made public for a benchmark.
//! * `events`: one `EventBus::emit` with 0 and 1,000 subscribers, and the full fan-out: 1,000
//!   subscriber tasks woken and each receiving the event.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use benches::fixture::BenchFixture;
use divan::Bencher;
use mcp_gateway_core::{
    CallOutcome, Caller, DefaultRegistry, DownstreamConfig, EventBus, EventBusConfig, Gateway,
    GatewayEvent, InProcessServer, McpServer, RequestOptions, ServerCatalog, ServerId, ServerSpec,
    ToolRegistry,
};
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use tokio::sync::Notify;

const SERVERS: usize = 100;
const TOOLS: usize = 100;
const SUBSCRIBERS: usize = 1_000;

fn main() {
    divan::main();
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn tool(server: usize, tool: usize) -> Value {
    json!({
        "name": format!("tool_{tool}"),
        "description": format!("Tool {tool} of server {server}: does one thing well."),
        "inputSchema": {
            "type": "object",
            "properties": { "message": { "type": "string", "description": "What to say" } },
            "required": ["message"],
        },
    })
}

fn lists(server: usize, tools: usize) -> ServerCatalog {
    let mut lists = ServerCatalog::default();
    lists.tools = (0..tools).map(|t| tool(server, t)).collect();
    lists
}

fn server_id(server: usize) -> ServerId {
    ServerId::new(format!("server{server}")).expect("a valid server id")
}

/// A registry with 100 servers × 100 tools, prefixed `server{N}__tool_{M}`.
fn full_registry() -> DefaultRegistry {
    let registry = DefaultRegistry::default();
    for server in 0..SERVERS {
        let id = server_id(server);
        registry.set_server(&id, id.as_str(), lists(server, TOOLS));
    }
    registry
}

mod registry {
    use super::*;

    #[divan::bench(sample_size = 1_000)]
    fn lookup(bencher: Bencher) {
        let catalog = full_registry().catalog();
        let names: Vec<String> = (0..SERVERS)
            .map(|s| format!("server{s}__tool_{}", (s * 7) % TOOLS))
            .collect();
        let mut next = 0;
        bencher.bench_local(|| {
            next = (next + 1) % names.len();
            divan::black_box(catalog.tool(&names[next]).map(|entry| &entry.server))
        });
    }

    /// What a routed call does first: load the current snapshot, then look the name up.
    #[divan::bench(sample_size = 1_000)]
    fn snapshot_and_lookup(bencher: Bencher) {
        let registry = full_registry();
        bencher.bench_local(|| {
            let catalog = registry.catalog();
            divan::black_box(catalog.tool("server42__tool_42").is_some())
        });
    }

    /// One server's list changed: the whole 10,000-tool snapshot is rebuilt.
    #[divan::bench(sample_count = 20)]
    fn rebuild_after_change(bencher: Bencher) {
        let registry = full_registry();
        let id = server_id(7);
        let variants = [lists(7, TOOLS), lists(7, TOOLS - 1)];
        let mut flip = 0;
        bencher.bench_local(|| {
            flip ^= 1;
            registry.set_server(&id, id.as_str(), variants[flip].clone())
        });
    }

    fn merged_list(bencher: Bencher, page_size: usize) {
        let runtime = runtime();
        let gateway = Gateway::builder()
            .registry(Arc::new(full_registry()))
            .build();
        let server = runtime.block_on(async {
            McpServer::new(
                gateway,
                DownstreamConfig::default().with_page_size(page_size),
            )
        });
        let (session, _) = server.open_session(None).expect("a session");
        let caller = Caller::Session(session);
        let request = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {} });
        bencher.bench_local(|| {
            let reply = runtime.block_on(server.handle(&caller, request.clone(), None));
            reply.map(|reply| reply.json().len())
        });
    }

    /// The first page of the merged list (1,000 tools, the default page size), serialised.
    #[divan::bench(sample_count = 50)]
    fn merged_list_page(bencher: Bencher) {
        merged_list(bencher, 1_000);
    }

    /// All 10,000 tools in one page, serialised.
    #[divan::bench(sample_count = 20)]
    fn merged_list_all(bencher: Bencher) {
        merged_list(bencher, SERVERS * TOOLS);
    }
}

mod upstream {
    use super::*;

    /// A gateway with the benchmark fixture in process, started.
    fn gateway(runtime: &Runtime) -> Gateway {
        let spec = ServerSpec::in_process("fx", InProcessServer::new("fx", BenchFixture::new))
            .expect("a valid spec");
        let gateway = Gateway::builder().server(spec).build();
        runtime.block_on(gateway.start());
        gateway
    }

    /// `tools/call` params as the upstream sees them (its own tool name).
    fn call_params() -> Value {
        json!({ "name": "echo", "arguments": { "message": "hello" } })
    }

    /// One `tools/call` through the shared upstream connection.
    #[divan::bench]
    fn request(bencher: Bencher) {
        let runtime = runtime();
        let gateway = gateway(&runtime);
        let upstream = gateway.upstream("fx").expect("connected");
        let options = RequestOptions::default();
        let params = call_params();
        bencher.bench_local(|| {
            runtime.block_on(upstream.request("tools/call", Some(params.clone()), &options))
        });
    }

    /// 16 `tools/call`s in flight at once on the one connection (time per batch of 16).
    #[divan::bench]
    fn request_16_in_flight(bencher: Bencher) {
        let runtime = runtime();
        let gateway = gateway(&runtime);
        let upstream = gateway.upstream("fx").expect("connected");
        let options = RequestOptions::default();
        let params = call_params();
        bencher.bench_local(|| {
            runtime.block_on(futures_join(
                (0..16).map(|_| upstream.request("tools/call", Some(params.clone()), &options)),
            ))
        });
    }

    /// `Gateway::call_tool`: adds the catalogue lookup, the name rewrite and two events.
    #[divan::bench]
    fn gateway_call_tool(bencher: Bencher) {
        let runtime = runtime();
        let gateway = gateway(&runtime);
        bencher.bench_local(|| {
            runtime.block_on(gateway.call_tool("fx__echo", json!({ "message": "hello" })))
        });
    }

    /// `McpServer::handle` of a session's `tools/call` message: everything but HTTP.
    #[divan::bench]
    fn server_handle_call(bencher: Bencher) {
        let runtime = runtime();
        let gateway = gateway(&runtime);
        let server =
            runtime.block_on(async { McpServer::new(gateway, DownstreamConfig::default()) });
        let (session, _) = server.open_session(None).expect("a session");
        let caller = Caller::Session(session);
        // The exposed name carries the server's prefix.
        let params = json!({ "name": "fx__echo", "arguments": { "message": "hello" } });
        let request =
            json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params });
        // An answer that is not a result (an unknown tool, say) would time the error path.
        let reply = runtime.block_on(server.handle(&caller, request.clone(), None));
        assert!(
            reply
                .as_ref()
                .is_some_and(|r| r.to_value().get("result").is_some()),
            "tools/call through the server failed: {reply:?}"
        );
        bencher.bench_local(|| runtime.block_on(server.handle(&caller, request.clone(), None)));
    }

    /// Awaits every future of an iterator, concurrently, on the current task.
    async fn futures_join<F: std::future::Future>(futures: impl Iterator<Item = F>) {
        let mut pinned: Vec<_> = futures.map(Box::pin).map(Some).collect();
        std::future::poll_fn(|cx| {
            let mut pending = false;
            for slot in pinned.iter_mut() {
                if let Some(future) = slot {
                    if future.as_mut().poll(cx).is_ready() {
                        *slot = None;
                    } else {
                        pending = true;
                    }
                }
            }
            if pending {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(())
            }
        })
        .await;
    }
}

mod events {
    use super::*;

    fn event() -> GatewayEvent {
        GatewayEvent::ToolCallFinished {
            server: server_id(1),
            tool: "server1__echo".into(),
            duration_us: 120,
            outcome: CallOutcome::Ok,
        }
    }

    /// The emitting side alone, with 0 or 1,000 subscribers that do not read (they lag).
    #[divan::bench(args = [0, 1_000], sample_size = 1_000)]
    fn emit(bencher: Bencher, subscribers: usize) {
        let bus = EventBus::new(EventBusConfig::default());
        let _subscriptions: Vec<_> = (0..subscribers).map(|_| bus.subscribe()).collect();
        bencher.bench_local(|| bus.emit(event()));
    }

    /// One event delivered to 1,000 subscriber tasks: emit, then wait until every one has it.
    #[divan::bench(sample_count = 50)]
    fn fan_out_1000(bencher: Bencher) {
        let runtime = runtime();
        let bus = EventBus::new(EventBusConfig::default());
        let remaining = Arc::new(AtomicUsize::new(0));
        let all_received = Arc::new(Notify::new());
        for _ in 0..SUBSCRIBERS {
            let mut subscription = bus.subscribe();
            let remaining = remaining.clone();
            let all_received = all_received.clone();
            runtime.spawn(async move {
                while subscription.recv().await.is_some() {
                    if remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                        all_received.notify_one();
                    }
                }
            });
        }
        bencher.bench_local(|| {
            remaining.store(SUBSCRIBERS, Ordering::Release);
            bus.emit(event());
            runtime.block_on(all_received.notified());
        });
    }
}
