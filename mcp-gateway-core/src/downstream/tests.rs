use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::registry::{DefaultRegistry, ServerCatalog, ToolRegistry};
use crate::spec::ServerId;

fn tools(names: &[&str]) -> ServerCatalog {
    ServerCatalog {
        tools: names
            .iter()
            .map(|n| json!({ "name": n, "inputSchema": {} }))
            .collect(),
        ..ServerCatalog::default()
    }
}

fn server_with(registry: Arc<DefaultRegistry>, page_size: usize) -> Arc<McpServer> {
    let gateway = Gateway::builder().registry(registry).build();
    McpServer::new(
        gateway,
        DownstreamConfig::default().with_page_size(page_size),
    )
}

async fn list(server: &McpServer, caller: &Caller, cursor: Option<&str>) -> Value {
    let params = match cursor {
        Some(cursor) => json!({ "cursor": cursor }),
        None => json!({}),
    };
    let request = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": params });
    let reply = server
        .handle(caller, request, None)
        .await
        .expect("a request gets an answer");
    reply.to_value()
}

fn names(reply: &Value) -> Vec<String> {
    reply["result"]["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn paging_survives_a_change_in_the_middle() {
    let registry = Arc::new(DefaultRegistry::default());
    let id = ServerId::new("s").expect("valid id");
    registry.set_server(&id, "s", tools(&["a", "b", "c", "d", "e"]));
    let server = server_with(registry.clone(), 2);
    let (session, _) = server.open_session(None).expect("session");
    let caller = Caller::Session(session);

    let first = list(&server, &caller, None).await;
    assert_eq!(names(&first), ["s__a", "s__b"]);
    // The list changes between pages: the client still walks the list it started on.
    registry.set_server(&id, "s", tools(&["z"]));
    let mut seen = names(&first);
    let mut cursor = first["result"]["nextCursor"].as_str().map(str::to_owned);
    while let Some(next) = cursor {
        let page = list(&server, &caller, Some(&next)).await;
        seen.extend(names(&page));
        cursor = page["result"]["nextCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, ["s__a", "s__b", "s__c", "s__d", "s__e"]);
    // A fresh listing sees the new list.
    assert_eq!(names(&list(&server, &caller, None).await), ["s__z"]);
}

#[tokio::test]
async fn a_bad_cursor_is_invalid_params() {
    let server = server_with(Arc::new(DefaultRegistry::default()), 2);
    for cursor in ["garbage", "99.0"] {
        let reply = list(&server, &Caller::Stateless, Some(cursor)).await;
        assert_eq!(
            reply["error"]["code"],
            JsonRpcError::INVALID_PARAMS,
            "{reply}"
        );
    }
}

#[tokio::test]
async fn initialize_negotiates_a_session_version() {
    let server = server_with(Arc::new(DefaultRegistry::default()), 10);
    for (offered, expected) in [
        ("2025-03-26", "2025-03-26"),
        ("2025-11-25", "2025-11-25"),
        ("2026-07-28", "2025-11-25"),
        ("1999-01-01", "2025-11-25"),
    ] {
        let params = json!({ "protocolVersion": offered, "capabilities": {}, "clientInfo": { "name": "t", "version": "1" } });
        let (session, result) = server.open_session(Some(&params)).expect("session");
        assert_eq!(result["protocolVersion"], expected);
        assert_eq!(session.protocol_version(), expected);
    }
    assert_eq!(server.session_count(), 4);
}

#[tokio::test]
async fn unknown_methods_and_cancelled_requests() {
    let server = server_with(Arc::new(DefaultRegistry::default()), 10);
    let (session, _) = server.open_session(None).expect("session");
    let caller = Caller::Session(session.clone());
    let reply = server
        .handle(
            &caller,
            json!({ "jsonrpc": "2.0", "id": "x", "method": "no/such" }),
            None,
        )
        .await
        .expect("answer");
    assert_eq!(reply.error_code(), Some(JsonRpcError::METHOD_NOT_FOUND));
    let reply = reply.to_value();
    assert_eq!(reply["error"]["code"], JsonRpcError::METHOD_NOT_FOUND);
    assert_eq!(reply["id"], "x");
    // Notifications and the client's answers to unknown ids get no reply.
    let cancelled = json!({ "jsonrpc": "2.0", "method": "notifications/cancelled", "params": { "requestId": 5 } });
    assert!(server.handle(&caller, cancelled, None).await.is_none());
    let stray = json!({ "jsonrpc": "2.0", "id": 99, "result": {} });
    assert!(server.handle(&caller, stray, None).await.is_none());
    assert!(server.close_session(session.id()).await);
    assert!(!server.close_session(session.id()).await);
}

#[test]
fn a_forwarded_result_gets_the_stateless_members_like_a_built_one() {
    let cases = [
        (
            "tools/call",
            json!({ "content": [{ "type": "text", "text": "hi" }] }),
        ),
        (
            "resources/read",
            json!({ "contents": [], "_meta": { "vendor/x": 1 }, "resultType": "incomplete" }),
        ),
        (
            "prompts/get",
            json!({ "messages": [], "_meta": "not an object" }),
        ),
    ];
    for (method, result) in cases {
        let mut built = result.clone();
        stateless_result(method, &mut built);
        let raw = RawValue::from_string(result.to_string()).expect("JSON");
        let forwarded: Value =
            serde_json::from_str(&stateless_raw_result(method, raw)).expect("JSON");
        assert_eq!(forwarded, built, "{method}");
    }
    // Texts as upstreams write them, with their own spacing; appended to, not rewritten.
    for (method, text) in [
        ("tools/call", "{}"),
        ("tools/call", "{ }\n"),
        (
            "resources/read",
            r#"{ "resultType": "complete", "contents" : [] }  "#,
        ),
        (
            "resources/read",
            r#"{"ttlMs":5,"cacheScope":"shared","contents":[]}"#,
        ),
    ] {
        let mut built: Value = serde_json::from_str(text).expect("JSON");
        stateless_result(method, &mut built);
        let raw = RawValue::from_string(text.to_owned()).expect("JSON");
        let forwarded = stateless_raw_result(method, raw);
        let forwarded: Value = serde_json::from_str(&forwarded).expect("JSON");
        assert_eq!(forwarded, built, "{text}");
    }
    let mut read =
        json!({ "contents": [], "_meta": { "vendor/x": 1 }, "resultType": "incomplete" });
    stateless_result("resources/read", &mut read);
    // The upstream's own members win; the gateway only fills in what is missing.
    assert_eq!(read["resultType"], "incomplete");
    assert_eq!(read["ttlMs"], 0);
    assert_eq!(read["_meta"]["vendor/x"], 1);
    assert_eq!(
        read["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "mcp-gateway"
    );
    // A result that is not an object is passed on as it came.
    let odd = RawValue::from_string("[1, 2]".into()).expect("JSON");
    assert_eq!(stateless_raw_result("tools/call", odd), "[1, 2]");
}

/// Found by the `message` fuzz target: a batch whose one request was answered got that answer
/// alone, where JSON-RPC 2.0 answers a batch with an array whatever its length.
#[tokio::test]
async fn a_batch_with_one_answer_is_answered_with_an_array() {
    let server = server_with(Arc::new(DefaultRegistry::default()), 10);
    let batch = json!([
        { "jsonrpc": "2.0", "id": 3, "method": "no/such/method" },
        { "jsonrpc": "2.0", "method": "notifications/initialized" },
    ]);
    let reply = server
        .handle(&Caller::Stateless, batch, None)
        .await
        .expect("a batch with a request gets an answer");
    let replies = reply.to_value();
    let replies = replies
        .as_array()
        .expect("a batch is answered with an array");
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0]["id"], 3);
    assert_eq!(replies[0]["error"]["code"], JsonRpcError::METHOD_NOT_FOUND);
    assert_eq!(
        reply.error_code(),
        None,
        "a batch's reply is not one error response"
    );
}
