//! End-to-end tests of the gateway's MCP endpoint with clients nobody here wrote (the Python SDK
//! client, the MCP Inspector CLI) in front of real upstreams (server-everything, server-memory),
//! plus `Router::oneshot` tests of the HTTP rules.

mod answers;
mod clients;
mod legacy;
mod notifications;
mod peers;
mod rules;
mod support;
