//! Catalog entries as server specs.

use mcp_gateway_core::TransportSpec;

use super::*;

fn entry(value: serde_json::Value) -> CatalogEntry {
    serde_json::from_value(value).expect("a catalog entry")
}

#[test]
fn an_entry_is_a_url_or_a_command() {
    let http = spec(entry(serde_json::json!({
        "name": "memory",
        "url": "http://127.0.0.1:4100/mcp",
        "description": "ignored",
    })))
    .expect("valid");
    assert!(matches!(http.transport, TransportSpec::StreamableHttp(_)));
    assert_eq!(http.tags, ["registry"]);
    let stdio = spec(entry(serde_json::json!({
        "name": "time",
        "command": "uvx",
        "args": ["mcp-server-time"],
    })))
    .expect("valid");
    let TransportSpec::Stdio(stdio) = &stdio.transport else {
        panic!("stdio: {:?}", stdio.transport);
    };
    assert_eq!(stdio.args, ["mcp-server-time"]);
}

#[test]
fn an_entry_with_both_or_neither_is_an_error_naming_it() {
    for value in [
        serde_json::json!({ "name": "both", "url": "http://127.0.0.1/mcp", "command": "uvx" }),
        serde_json::json!({ "name": "neither" }),
    ] {
        let name = value["name"].as_str().unwrap_or_default().to_owned();
        let err = spec(entry(value)).expect_err("rejected");
        assert!(err.to_string().contains(&format!("`{name}`")), "{err}");
    }
}
