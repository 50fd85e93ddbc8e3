//! Embeds the gateway in an application: an in-process MCP server (a tiny clock) sits behind the
//! gateway next to any stdio servers named on the command line, and the application lists the
//! merged tools, calls one, and prints the events it saw.
//!
//! ```sh
//! cargo run -p example-embedding                                   # the in-process server only
//! cargo run -p example-embedding -- npx -y @modelcontextprotocol/server-everything
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use mcp_gateway_core::{Gateway, InProcessServer, ServerSpec, error_chain};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Map, json};

/// An MCP server that lives in this process: one tool, `now`.
#[derive(Clone, Default)]
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut builder = Gateway::builder().server(ServerSpec::in_process(
        "clock",
        InProcessServer::new("clock", Clock::default),
    )?);
    let mut command = std::env::args().skip(1);
    if let Some(program) = command.next() {
        builder = builder.server(ServerSpec::stdio("cli", &program, command)?);
    }
    let gateway = builder.build();
    let mut events = gateway.subscribe();
    gateway.start().await;

    for server in gateway.servers() {
        match &server.last_error {
            Some(error) => println!("server {}: {:?} ({error})", server.id, server.status),
            None => println!(
                "server {}: {:?} over {}",
                server.id, server.status, server.transport
            ),
        }
    }
    for tool in gateway.catalog().tools() {
        println!(
            "tool {} -> {} on {}",
            tool.definition["name"], tool.upstream_name, tool.server
        );
    }
    match gateway.call_tool("clock__now", json!({})).await {
        Ok(result) => println!("clock__now = {}", result["content"][0]["text"]),
        Err(err) => println!("clock__now failed: {}", error_chain(&err)),
    }

    gateway.shutdown().await;
    while let Ok(Some(event)) =
        tokio::time::timeout(std::time::Duration::from_millis(10), events.recv()).await
    {
        println!("event {}", serde_json::to_string(&*event)?);
    }
    Ok(())
}
