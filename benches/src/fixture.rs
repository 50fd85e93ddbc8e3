//! The benchmark upstream: an rmcp server with two tools and nothing else, so that the figures
//! measure the path through the gateway rather than the tool.
//!
//! * `echo {message}` returns `message` as one text block;
//! * `sleep_ms {ms}` waits `ms` milliseconds (at most 60 s), then answers `slept`.
//!
//! The tool router is built once and shared: rmcp's default `#[tool_handler]` would rebuild it on
//! every `tools/list` and `tools/call`, which is work a benchmark upstream should not do.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

/// The server name in `serverInfo`.
pub const SERVER_NAME: &str = "bench-fixture";

/// Longest sleep `sleep_ms` accepts.
const MAX_SLEEP: Duration = Duration::from_secs(60);

static ROUTER: LazyLock<Arc<ToolRouter<BenchFixture>>> =
    LazyLock::new(|| Arc::new(BenchFixture::tool_router()));

/// Arguments of `echo`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct EchoArgs {
    /// The text to return.
    pub message: String,
}

/// Arguments of `sleep_ms`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SleepArgs {
    /// How long to wait, in milliseconds.
    pub ms: u64,
}

/// The fixture handler. Cheap to create: one per session or per stateless request.
#[derive(Clone)]
pub struct BenchFixture {
    tools: Arc<ToolRouter<BenchFixture>>,
}

impl Default for BenchFixture {
    fn default() -> Self {
        Self {
            tools: ROUTER.clone(),
        }
    }
}

impl BenchFixture {
    /// A handler sharing the process-wide tool router.
    pub fn new() -> Self {
        Self::default()
    }
}

#[tool_router]
impl BenchFixture {
    #[tool(description = "Returns its message as one text block")]
    async fn echo(&self, Parameters(args): Parameters<EchoArgs>) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::text(args.message)])
    }

    #[tool(description = "Waits `ms` milliseconds (at most 60 s), then answers")]
    async fn sleep_ms(&self, Parameters(args): Parameters<SleepArgs>) -> CallToolResult {
        tokio::time::sleep(Duration::from_millis(args.ms).min(MAX_SLEEP)).await;
        CallToolResult::success(vec![ContentBlock::text("slept")])
    }
}

#[tool_handler(router = self.tools)]
impl ServerHandler for BenchFixture {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION")))
    }
}
