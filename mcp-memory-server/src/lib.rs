//! A durable knowledge-graph MCP server, a drop-in for `@modelcontextprotocol/server-memory`.
//!
//! It offers the reference server's nine tools with the same names, schemas and results
//! (`create_entities`, `create_relations`, `add_observations`, `delete_entities`,
//! `delete_observations`, `delete_relations`, `read_graph`, `search_nodes`, `open_nodes`),
//! reads and writes the same JSON-lines file, and adds what the reference lacks:
//!
//! * every acknowledged write is on disk before the reply, and a crash leaves a valid file
//!   (see the `store` module for the scheme: appends for additions, atomic rewrites for the
//!   rest);
//! * a corrupt file is reported with its line number and never overwritten;
//! * calls from many clients are serialised, and two servers cannot open one file;
//! * the graph is also a set of resources — `memory://graph` and `memory://entities/{name}` —
//!   with change notifications (`resources/subscribe` in the session era,
//!   `subscriptions/listen` in the stateless 2026-07-28 era).
//!
//! The library runs it in-process ([`MemoryServer`] is an rmcp `ServerHandler`) or over
//! Streamable HTTP ([`serve_http`]); the `mcp-memory-server` binary adds stdio, flags, signals
//! and logging. The library never installs a signal handler or a logger.

mod error;
mod graph;
mod http;
mod resources;
mod server;
mod store;
mod tools;

#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::path::PathBuf;

pub use error::MemoryError;
pub use http::{HttpConfig, MCP_PATH, serve_http};
pub use server::MemoryServer;

/// The memory file used when neither `--file` nor `MEMORY_FILE_PATH` names one:
/// `$XDG_DATA_HOME/mcp-gateway/memory.jsonl`, else `$HOME/.local/share/mcp-gateway/memory.jsonl`,
/// else (no home at all) `memory.jsonl` in the working directory.
///
/// The reference server's own default (a file inside its npm package) does not survive a
/// reinstall, so this one lives in the user's data directory instead, shared by the standalone
/// server and the gateway's in-process one.
pub fn default_memory_file() -> PathBuf {
    memory_file_under(std::env::var_os("XDG_DATA_HOME"), std::env::var_os("HOME"))
}

/// [`default_memory_file`] for given values of `XDG_DATA_HOME` and `HOME`; relative values are
/// ignored, as the XDG base directory specification asks.
fn memory_file_under(xdg_data_home: Option<OsString>, home: Option<OsString>) -> PathBuf {
    let data_home = xdg_data_home
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| {
            home.map(PathBuf::from)
                .filter(|home| home.is_absolute())
                .map(|home| home.join(".local").join("share"))
        });
    match data_home {
        Some(dir) => dir.join("mcp-gateway").join("memory.jsonl"),
        None => PathBuf::from("memory.jsonl"),
    }
}
