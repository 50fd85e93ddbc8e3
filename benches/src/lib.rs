//! Benchmarks and the load generator for mcp-gateway (see BENCHMARKS.md once they land).
