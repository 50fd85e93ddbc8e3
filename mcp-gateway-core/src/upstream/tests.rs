use serde_json::json;

use super::*;

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(object) => object,
        _ => Map::new(),
    }
}

#[test]
fn a_session_era_upstream_never_sees_a_callers_stateless_meta() {
    let mut params = object(json!({
        "name": "echo",
        "_meta": {
            "progressToken": 7,
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": { "name": "c" },
            "io.modelcontextprotocol/logLevel": "debug",
            "vendor/trace": "abc",
        },
    }));
    assert_eq!(strip_meta(&mut params, true), Some(json!(7)));
    assert_eq!(
        Value::Object(params),
        json!({ "name": "echo", "_meta": { "vendor/trace": "abc" } })
    );
}

#[test]
fn a_stateless_upstream_keeps_the_callers_meta_and_an_empty_meta_goes() {
    let mut params = object(json!({
        "_meta": { "io.modelcontextprotocol/protocolVersion": "2026-07-28", "progressToken": "t" },
    }));
    assert_eq!(strip_meta(&mut params, false), Some(json!("t")));
    assert_eq!(
        Value::Object(params),
        json!({ "_meta": { "io.modelcontextprotocol/protocolVersion": "2026-07-28" } })
    );
    let mut only_token = object(json!({ "a": 1, "_meta": { "progressToken": 1 } }));
    strip_meta(&mut only_token, true);
    assert_eq!(Value::Object(only_token), json!({ "a": 1 }));
}
