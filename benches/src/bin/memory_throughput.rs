//! Throughput of the memory server's `create_entities` and `search_nodes` at 1k and 100k
//! entities, measured the way the gateway runs it in-process: an rmcp client talking MCP to a
//! `MemoryServer` over an in-memory pipe, so every figure includes JSON-RPC framing, argument
//! parsing, result serialisation and — for writes — the `fdatasync` or rewrite that makes the
//! change durable before the answer.
//!
//! ```sh
//! cargo run --release -p benches --bin memory_throughput            # 1k and 100k
//! cargo run --release -p benches --bin memory_throughput -- 10000   # other sizes
//! MEMORY_BENCH_DIR=/mnt/ssd cargo run --release -p benches --bin memory_throughput
//! ```
//!
//! The memory file goes in a temporary directory under `MEMORY_BENCH_DIR` (default: the system
//! temporary directory); durability costs depend on that file system. Prints a Markdown table.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mcp_memory_server::MemoryServer;
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation, JsonObject,
    ProtocolVersion,
};
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

type BoxError = Box<dyn Error + Send + Sync>;
type Client = RunningService<RoleClient, ClientConfig>;

/// Entities per `create_entities` call when filling the graph.
const BATCH: usize = 1_000;
/// Single-entity `create_entities` calls timed once the graph is full.
const SINGLE_CREATES: usize = 200;
/// Topics the observations cycle through: a topic query matches 1 entity in this many.
const TOPICS: usize = 100;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let parsed = std::env::args()
        .skip(1)
        .map(|arg| arg.parse::<usize>())
        .collect::<Result<Vec<_>, _>>();
    let sizes = match parsed {
        Ok(sizes) if !sizes.is_empty() => sizes,
        Ok(_) => vec![1_000, 100_000],
        Err(err) => return Err(format!("sizes must be whole numbers: {err}").into()),
    };
    let base = std::env::var_os("MEMORY_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    println!("memory file under {}", base.display());
    println!();
    println!("| entities | operation | calls | total | per call | throughput |");
    println!("|---:|---|---:|---:|---:|---:|");
    for size in sizes {
        bench_size(size, &base).await?;
    }
    Ok(())
}

fn entity(i: usize) -> Value {
    json!({
        "name": format!("entity-{i:06}"),
        "entityType": format!("type-{}", i % 10),
        "observations": [
            format!("note {i} on topic {}.", i % TOPICS),
            "a second, ordinary observation".to_owned(),
            format!("seen {} times", i % 7),
        ],
    })
}

fn arguments(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

async fn call(client: &Client, tool: &str, args: Value) -> Result<Value, BoxError> {
    let request = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments(args));
    let result = client.call_tool(request).await?;
    if result.is_error == Some(true) {
        return Err(format!("{tool} failed: {:?}", result.content).into());
    }
    Ok(result.structured_content.unwrap_or(Value::Null))
}

/// A client of a fresh handler; the task serves it until the client goes away.
async fn connect(server: &MemoryServer) -> Result<(Client, JoinHandle<()>), BoxError> {
    let (client_io, server_io) = tokio::io::duplex(16 << 20);
    let handler = server.clone();
    let serving = tokio::spawn(async move {
        if let Ok(running) = handler.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let hello = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("memory-throughput", env!("CARGO_PKG_VERSION")),
    )
    .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE);
    Ok((hello.serve(client_io).await?, serving))
}

/// Prints one row: `units` are what the throughput counts (entities or calls).
fn row(size: usize, operation: &str, calls: usize, units: usize, unit: &str, elapsed: Duration) {
    let per_call = elapsed / u32::try_from(calls.max(1)).unwrap_or(u32::MAX);
    let rate = units as f64 / elapsed.as_secs_f64();
    println!(
        "| {size} | {operation} | {calls} | {:.2} s | {} | {rate:.0} {unit}/s |",
        elapsed.as_secs_f64(),
        human(per_call),
    );
}

fn human(duration: Duration) -> String {
    let micros = duration.as_secs_f64() * 1e6;
    if micros >= 1_000.0 {
        format!("{:.2} ms", micros / 1_000.0)
    } else {
        format!("{micros:.0} µs")
    }
}

async fn bench_size(size: usize, base: &Path) -> Result<(), BoxError> {
    let dir = tempfile::tempdir_in(base)?;
    let path = dir.path().join("memory.jsonl");
    let server = MemoryServer::open(&path)?;
    let (client, serving) = connect(&server).await?;

    // Fill the graph in batches (appends), with a relation between every other pair.
    let started = Instant::now();
    let batches = size.div_ceil(BATCH);
    for batch in 0..batches {
        let entities: Vec<Value> = (batch * BATCH..((batch + 1) * BATCH).min(size))
            .map(entity)
            .collect();
        call(&client, "create_entities", json!({ "entities": entities })).await?;
    }
    row(
        size,
        &format!("create_entities, {BATCH} per call"),
        batches,
        size,
        "entities",
        started.elapsed(),
    );
    for batch in 0..size.div_ceil(2 * BATCH) {
        let relations: Vec<Value> = (batch * BATCH..((batch + 1) * BATCH).min(size / 2))
            .map(|i| {
                json!({
                    "from": format!("entity-{:06}", 2 * i),
                    "to": format!("entity-{:06}", 2 * i + 1),
                    "relationType": "precedes",
                })
            })
            .collect();
        call(
            &client,
            "create_relations",
            json!({ "relations": relations }),
        )
        .await?;
    }

    // One entity per call into the full graph: an append and an fdatasync each.
    let started = Instant::now();
    for i in 0..SINGLE_CREATES {
        call(
            &client,
            "create_entities",
            json!({ "entities": [entity(size + i)] }),
        )
        .await?;
    }
    row(
        size,
        "create_entities, 1 per call",
        SINGLE_CREATES,
        SINGLE_CREATES,
        "calls",
        started.elapsed(),
    );

    // Searches scan every entity; the answer size differs.
    let searches = if size >= 50_000 { 20 } else { 200 };
    for (label, query, expected) in [
        ("search_nodes, no match", "no such text".to_owned(), 0),
        (
            "search_nodes, 1% match",
            "topic 42.".to_owned(),
            (size + SINGLE_CREATES).div_ceil(TOPICS),
        ),
        (
            "search_nodes, 1 match",
            format!("entity-{:06}", size / 2),
            1,
        ),
    ] {
        let started = Instant::now();
        for _ in 0..searches {
            let found = call(&client, "search_nodes", json!({ "query": query })).await?;
            let count = found["entities"].as_array().map_or(0, Vec::len);
            // An approximate check: the 1% bucket is off by one at some sizes.
            if count.abs_diff(expected) > 1 {
                return Err(format!("{label}: {count} entities, expected about {expected}").into());
            }
        }
        row(
            size,
            label,
            searches,
            searches,
            "queries",
            started.elapsed(),
        );
    }

    // For comparison: a change the reference format cannot append, so the file is rewritten.
    let rewrites = 10;
    let started = Instant::now();
    for i in 0..rewrites {
        call(
            &client,
            "add_observations",
            json!({ "observations": [{ "entityName": "entity-000000", "contents": [format!("extra {i}")] }] }),
        )
        .await?;
    }
    row(
        size,
        "add_observations, 1 per call (rewrite)",
        rewrites,
        rewrites,
        "calls",
        started.elapsed(),
    );

    // The handler holds the store (and its lock) until its session ends.
    client.cancel().await?;
    serving.await?;
    drop(server);
    let bytes = std::fs::metadata(&path)?.len();
    let started = Instant::now();
    let reopened = MemoryServer::open(&path)?;
    let elapsed = started.elapsed();
    println!(
        "| {size} | open (load a {:.1} MB file) | 1 | {:.2} s | {} | — |",
        bytes as f64 / 1e6,
        elapsed.as_secs_f64(),
        human(elapsed)
    );
    drop(reopened);
    Ok(())
}
