//! The mcp-gateway engine.
//!
//! A [`Gateway`] connects to upstream MCP servers (stdio child processes, Streamable HTTP,
//! legacy HTTP+SSE, or rmcp servers in this process), merges their tools, resources and prompts
//! into one namespaced [`Catalog`], routes every call to its owner over one shared connection per
//! upstream, and reports every change as a [`GatewayEvent`].
//!
//! It has no HTTP server and no CLI: adapters (the `mcp-gateway-http` crate) and embedding
//! applications drive it through this API. Four traits let applications plug in their own parts:
//! [`DiscoverySource`], [`HealthProbe`], [`ToolRegistry`] and [`EventSink`].
//!
//! ```no_run
//! # async fn run() -> Result<(), mcp_gateway_core::Error> {
//! use mcp_gateway_core::{Gateway, ServerSpec};
//!
//! let gateway = Gateway::builder()
//!     .server(ServerSpec::stdio("memory", "npx", ["-y", "@modelcontextprotocol/server-memory"])?)
//!     .build();
//! gateway.start().await;
//! let result = gateway
//!     .call_tool("memory__read_graph", serde_json::json!({}))
//!     .await?;
//! println!("{result}");
//! gateway.shutdown().await;
//! # Ok(())
//! # }
//! ```

pub mod discovery;
mod downstream;
mod error;
mod events;
#[doc(hidden)]
pub mod fuzzing;
mod gateway;
mod health;
mod jsonrpc;
mod registry;
pub mod sinks;
mod spec;
mod transport;
mod upstream;

pub use discovery::{DiscoverySource, StaticSource};
pub use downstream::{
    Caller, DownstreamConfig, HEADER_MISMATCH, META_CLIENT_CAPABILITIES, META_PROTOCOL_VERSION,
    McpServer, RESOURCE_NOT_FOUND, Reply, Session, UNSUPPORTED_PROTOCOL_VERSION,
    check_stateless_meta, is_stateless_message, new_session_id, serve_stdio, to_jsonrpc,
};
pub use error::{BoxError, Error, ErrorSide, error_chain};
pub use events::{
    AlertKind, CallOutcome, EVENT_SCHEMA_VERSION, EventBus, EventBusConfig, EventEnvelope,
    EventSink, EventSubscription, GatewayEvent, LogSource, ServerStatus, TracingSink,
};
pub use gateway::{Gateway, GatewayBuilder, ServerSnapshot};
pub use health::{HealthProbe, RoundTripProbe};
pub use jsonrpc::{JsonRpcError, Message, Params};
pub use registry::{
    Catalog, Collision, DefaultRegistry, Entry, NamingPolicy, PrefixMode, RegistryChange,
    ServerCatalog, ToolRegistry,
};
pub use sinks::{JsonLinesSink, WebhookSink};
pub use spec::limits;
pub use spec::{
    HealthConfig, HttpSpec, ProtocolPreference, RestartPolicy, Secret, ServerId, ServerSpec,
    StdioSpec, TransportSpec,
};
pub use transport::in_process::InProcessServer;
pub use upstream::{
    ClientRequestHandler, Era, ListKind, PROGRESS_CAPACITY, PeerInfo, RequestOptions,
    SESSION_VERSION, SESSION_VERSIONS, STATELESS_VERSION, Upstream,
};
