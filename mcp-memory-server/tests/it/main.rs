//! Integration tests of the memory server against real peers: the reference server
//! (differential), the MCP Inspector CLI and the Python SDK client (both eras, HTTP and stdio),
//! plus crash, corruption, bad-input and shutdown behaviour of the binary. One binary keeps
//! link times low.

mod auth;
mod bad_input;
mod differential;
mod durability;
mod inspector;
mod lifecycle;
mod python;
mod support;
