//! The config file (`mcp-gateway-cli`'s `config::parse`): the first byte picks the format (even:
//! TOML, odd: the `mcpServers` JSON); the rest is the file's text.
//!
//! Holds: a file that is accepted names each server once, and every server it yields passes
//! `ServerSpec::validate`, the check the supervisor makes before it runs one: the file refuses
//! what the library would refuse.

#![no_main]

use std::collections::HashSet;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mcp_gateway_cli::config;

fuzz_target!(|data: &[u8]| {
    let [format, text @ ..] = data else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let path = if format % 2 == 0 {
        "/etc/mcp/gateway.toml"
    } else {
        "/etc/mcp/servers.json"
    };
    let Ok(config) = config::parse(text, Path::new(path)) else {
        return;
    };
    let mut ids = HashSet::new();
    for server in &config.servers {
        assert!(
            ids.insert(server.id.clone()),
            "server `{}` twice",
            server.id
        );
        if let Err(err) = server.validate() {
            panic!("the file accepted a server the library refuses: {err}");
        }
    }
});
