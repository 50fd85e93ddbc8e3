//! End-to-end tests of the `mcp-gateway` binary with clients nobody here wrote: the MCP
//! Inspector CLI drives `mcp-gateway stdio` as a stdio server and `mcp-gateway serve` over HTTP,
//! in front of server-everything and server-memory (stdio) and the bundled memory server (HTTP);
//! and the official conformance suite runs against `serve` with the conformance fixture behind it.

mod child_env;
mod conformance;
mod orphans;
mod serve;
mod shutdown;
mod support;
