//! HTTP adapters for the mcp-gateway engine: the MCP Streamable HTTP endpoint, the REST API,
//! event streams and metrics. Empty until the MCP endpoint lands; the crate exists so the
//! dependency direction cli → http → core is fixed from the start.
