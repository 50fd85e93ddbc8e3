//! Integration tests of the engine against real MCP peers: the official reference servers over
//! stdio, Streamable HTTP and legacy SSE, the Python SDK's MCPServer (2026-07-28), an in-process
//! rmcp server, and a deliberately misbehaving upstream. One binary keeps link times low.

mod alerts;
mod discovery;
mod failures;
mod fixture;
mod hostile;
mod hostile_peers;
mod http;
mod in_process;
mod limits;
mod logs;
mod python;
mod sessions;
mod stdio;
mod stuck_upstream;
mod supervision;
mod support;
