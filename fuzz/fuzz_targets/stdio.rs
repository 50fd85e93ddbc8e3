//! A client's bytes on the gateway's stdin (`serve_stdio`), followed by one more request, served
//! by an `McpServer` with no upstreams.
//!
//! Holds: every line written out is a JSON-RPC message, and the request after the input is
//! answered whatever came before it: no line a client writes stops the gateway reading.

#![no_main]

use std::io::Cursor;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mcp_gateway_core::{DownstreamConfig, Gateway, McpServer, serve_stdio};
use serde_json::Value;
use tokio::io::AsyncReadExt;
use tokio::runtime::Runtime;

/// How long one input may take. The input ends, so calls get `serve_stdio`'s grace (5 s) at
/// most, and with no upstreams nothing waits that long: only a hang comes near it.
const DEADLINE: Duration = Duration::from_secs(20);

/// The request sent after the input; its id is what the answer is found by.
const LAST_REQUEST: &[u8] = b"\n{\"jsonrpc\":\"2.0\",\"id\":\"fuzz-last\",\"method\":\"ping\"}\n";

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
    let (runtime, server) = harness();
    let input = Cursor::new([data, LAST_REQUEST].concat());
    let (mut client, gateway_output) = tokio::io::duplex(64 * 1024);
    let output = runtime.block_on(async {
        tokio::time::timeout(DEADLINE, async {
            let serve = serve_stdio(
                server.clone(),
                input,
                gateway_output,
                std::future::pending(),
            );
            let mut output = Vec::new();
            let (_, read) = tokio::join!(serve, client.read_to_end(&mut output));
            read.expect("the output reads");
            output
        })
        .await
        .expect("the input served before the deadline")
    });
    let mut answered = false;
    for line in output
        .split(|&byte| byte == b'\n')
        .filter(|line| !line.is_empty())
    {
        let message: Value = serde_json::from_slice(line).unwrap_or_else(|err| {
            panic!(
                "a line written is not JSON ({err}): {}",
                String::from_utf8_lossy(line)
            )
        });
        assert_eq!(message["jsonrpc"], "2.0", "not JSON-RPC 2.0: {message}");
        answered |= message["id"] == "fuzz-last";
    }
    assert!(answered, "the request after the input was not answered");
});
