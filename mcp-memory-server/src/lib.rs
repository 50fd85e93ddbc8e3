//! The knowledge-graph memory MCP server (being built).
