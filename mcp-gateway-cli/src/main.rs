//! The `mcp-gateway` command. Its `serve` and `stdio` subcommands arrive with the MCP endpoint.

fn main() {
    eprintln!("mcp-gateway {}: no commands yet", env!("CARGO_PKG_VERSION"));
}
