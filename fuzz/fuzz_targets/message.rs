//! A client's JSON-RPC message, as the `/mcp` body or a stdio line: read with
//! `Message::from_slice`, then handled by an `McpServer` with no upstreams, statelessly and in a
//! session.
//!
//! Holds: a message reads exactly when the text is JSON (held arguments nested deeper than
//! serde_json's recursion limit aside: they are skipped as text, never parsed); written out, it
//! is one line and the same JSON; a request gets one reply with its id, which is JSON-RPC.

#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mcp_gateway_core::{Caller, DownstreamConfig, Gateway, McpServer, Message};
use serde_json::Value;
use tokio::runtime::Runtime;

/// How long one message may take; nothing here waits on a peer, so only a hang comes near it.
const DEADLINE: Duration = Duration::from_secs(10);

/// The runtime and the server, made once per process: a current-thread runtime, as the binary
/// uses on small machines.
fn harness() -> &'static (Runtime, Arc<McpServer>) {
    static HARNESS: OnceLock<(Runtime, Arc<McpServer>)> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let server = {
            let _entered = runtime.enter();
            McpServer::new(Gateway::builder().build(), DownstreamConfig::default())
        };
        (runtime, server)
    })
}

fuzz_target!(|data: &[u8]| {
    let parsed = serde_json::from_slice::<Value>(data);
    let message = match (Message::from_slice(data), &parsed) {
        (Ok(message), _) => message,
        (Err(_), Err(_)) => return,
        (Err(err), Ok(_)) => panic!("JSON that is not read as a message: {err}"),
    };
    let written = serde_json::to_vec(&message).expect("a message writes out");
    assert!(
        !written.contains(&b'\n') && !written.contains(&b'\r'),
        "a message written on more than one line"
    );
    match &parsed {
        Ok(value) => {
            let back: Value = serde_json::from_slice(&written).expect("what was written reads");
            assert_eq!(&back, value, "a message changed on its way through");
        }
        Err(err) => assert!(
            err.to_string().contains("recursion limit"),
            "text that is not JSON read as a message: {err}"
        ),
    }

    let (runtime, server) = harness();
    runtime.block_on(async {
        tokio::time::timeout(DEADLINE, async {
            let value = message.value().clone();
            check_reply(
                &value,
                server
                    .handle(&Caller::Stateless, message.clone(), None)
                    .await,
            );
            let (session, _) = server.open_session(None).expect("a session");
            let caller = Caller::Session(session.clone());
            check_reply(&value, server.handle(&caller, message, None).await);
            server.close_session(session.id()).await;
        })
        .await
        .expect("a message handled before the deadline");
    });
});

/// A request (an object with an id and a string method) gets a reply with its id; every reply is
/// JSON-RPC: a response object, or an array of them for a batch (JSON-RPC 2.0 answers a batch
/// with an array, whatever its length).
fn check_reply(message: &Value, reply: Option<mcp_gateway_core::Reply>) {
    let is_request =
        message.get("id").is_some() && message.get("method").is_some_and(Value::is_string);
    let Some(reply) = reply else {
        assert!(!is_request, "a request got no reply: {message}");
        return;
    };
    let value = serde_json::from_str::<Value>(reply.json()).expect("a reply is JSON");
    match &value {
        Value::Array(replies) => replies.iter().for_each(check_response),
        single => {
            assert!(
                !message.is_array(),
                "a batch answered without an array: {single}"
            );
            check_response(single);
            if is_request {
                assert_eq!(single.get("id"), message.get("id"), "a reply to another id");
            }
            let code = single.pointer("/error/code").and_then(Value::as_i64);
            assert_eq!(
                reply.error_code(),
                code,
                "the error code told is not the one sent"
            );
        }
    }
}

/// One JSON-RPC response: version 2.0, an id, and a result or an error.
fn check_response(response: &Value) {
    assert_eq!(response["jsonrpc"], "2.0", "not JSON-RPC 2.0: {response}");
    assert!(
        response.get("id").is_some(),
        "a response without an id: {response}"
    );
    assert!(
        response.get("result").is_some() != response.get("error").is_some(),
        "a response needs exactly one of result and error: {response}"
    );
}
