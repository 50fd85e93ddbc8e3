//! Plugs a discovery backend of the application's own into the gateway: [`RegistrySource`] reads
//! the servers from an MCP registry catalog served over HTTP and polls it for changes.
//!
//! To run with no setup, the example serves the catalog itself on `127.0.0.1:0`, listing two
//! servers: `clock`, a stdio MCP server that is this very binary started with `serve-clock`, and
//! `offline`, a URL nobody listens on. It builds a gateway from the catalog, prints the servers
//! and their status, calls the clock, then removes `offline` from the catalog, waits for the
//! gateway to notice, prints the servers again and exits.
//!
//! ```sh
//! cargo run -p example-registry-discovery
//! ```

mod registry;

use std::net::TcpListener as StdTcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use mcp_gateway_core::{Gateway, GatewayEvent, error_chain};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};
use serde_json::{Map, Value, json};

use crate::registry::RegistrySource;

/// The argument that makes this binary the `clock` stdio server instead of the demo.
const SERVE_CLOCK: &str = "serve-clock";
/// How often the gateway polls the catalog.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How long the demo waits for the gateway to see the catalog change.
const CHANGE_DEADLINE: Duration = Duration::from_secs(10);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some(SERVE_CLOCK) {
        return serve_clock().await;
    }

    let this_binary = std::env::current_exe().context("could not find this binary's path")?;
    let catalog = Arc::new(Mutex::new(json!({
        "servers": [
            {
                "name": "clock",
                "command": this_binary.display().to_string(),
                "args": [SERVE_CLOCK],
            },
            { "name": "offline", "url": format!("http://127.0.0.1:{}/mcp", closed_port()?) },
        ]
    })));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let catalog_url = format!("http://{}/v0/servers", listener.local_addr()?);
    let app = Router::new()
        .route("/v0/servers", get(serve_catalog))
        .with_state(catalog.clone());
    let catalog_server = tokio::spawn(async move { axum::serve(listener, app).await });
    println!("catalog at {catalog_url}");

    let source = RegistrySource::new(&catalog_url, POLL_INTERVAL)?;
    let gateway = Gateway::builder().discovery(Arc::new(source)).build();
    let mut events = gateway.subscribe();
    gateway.start().await;
    print_servers(&gateway);
    match gateway.call_tool("clock__now", json!({})).await {
        Ok(result) => println!("clock__now = {}", result["content"][0]["text"]),
        Err(err) => println!("clock__now failed: {}", error_chain(&err)),
    }

    println!("removing `offline` from the catalog");
    if let Ok(mut catalog) = catalog.lock()
        && let Some(servers) = catalog["servers"].as_array_mut()
    {
        servers.retain(|server| server["name"] != "offline");
    }
    let removed = tokio::time::timeout(CHANGE_DEADLINE, async {
        while let Some(envelope) = events.recv().await {
            if let GatewayEvent::ServerRemoved { server } = &envelope.event {
                return Some(server.clone());
            }
        }
        None
    })
    .await;
    match removed {
        Ok(Some(server)) => println!("the gateway removed `{server}`"),
        Ok(None) | Err(_) => println!("the gateway did not remove `offline` in time"),
    }
    print_servers(&gateway);

    gateway.shutdown().await;
    catalog_server.abort();
    Ok(())
}

fn print_servers(gateway: &Gateway) {
    for server in gateway.servers() {
        let status = format!("{:?}", server.status).to_lowercase();
        match &server.last_error {
            Some(error) => println!(
                "server {} over {}: {status} ({error})",
                server.id, server.transport
            ),
            None => println!("server {} over {}: {status}", server.id, server.transport),
        }
    }
}

async fn serve_catalog(State(catalog): State<Arc<Mutex<Value>>>) -> Json<Value> {
    Json(catalog.lock().map(|c| c.clone()).unwrap_or(Value::Null))
}

/// A loopback port with nothing listening on it (bound, then released).
fn closed_port() -> std::io::Result<u16> {
    Ok(StdTcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Runs as the catalog's `clock` server: MCP over stdin and stdout until the gateway closes them.
async fn serve_clock() -> anyhow::Result<()> {
    let running = Clock
        .serve((tokio::io::stdin(), tokio::io::stdout()))
        .await?;
    running.waiting().await?;
    Ok(())
}

/// An MCP server with one tool, `now`.
#[derive(Clone, Copy)]
struct Clock;

impl ServerHandler for Clock {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let schema = Map::from_iter([("type".to_owned(), json!("object"))]);
        Ok(ListToolsResult::with_all_items(vec![Tool::new(
            "now",
            "Seconds since the Unix epoch",
            schema,
        )]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if request.name != "now" {
            return Err(ErrorData::invalid_params(
                format!("no tool `{}`", request.name),
                None,
            ));
        }
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs())
            .unwrap_or_default();
        Ok(CallToolResult::success(vec![ContentBlock::text(seconds.to_string())]).into())
    }
}
