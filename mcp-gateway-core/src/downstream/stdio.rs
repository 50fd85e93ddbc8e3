//! The gateway as an MCP server over stdin/stdout, for desktop clients that launch a command.
//! One session; requests run concurrently so progress and cancellation work as over HTTP.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use super::{Caller, McpServer, check_stateless_meta, is_stateless_message};
use crate::jsonrpc::{self, JsonRpcError, Message};
use crate::transport::MAX_MESSAGE_BYTES;
use crate::transport::lines::{Line, LineCodec};

/// Messages queued for stdout.
const OUTPUT_CAPACITY: usize = 1024;
/// How long calls still running when the input ends may go on, so that a client that closes its
/// input after its last request still gets the answers.
const CALL_GRACE: Duration = Duration::from_secs(5);
/// How long what is queued for stdout may take to be written once the input ended.
const FLUSH_DEADLINE: Duration = Duration::from_secs(2);

/// Appends JSON text as one line: an upstream's result may be pretty-printed.
fn push_one_line(json: &str, line: &mut Vec<u8>) {
    line.extend_from_slice(jsonrpc::one_line(json).as_bytes());
}

/// Serves one client over a pair of byte streams until the input ends or `shutdown` resolves;
/// then calls in progress get a short grace, what is queued is written out within a deadline,
/// and the function returns, whatever is still open (a `subscriptions/listen` stream never ends
/// on its own).
pub async fn serve_stdio<R, W>(
    server: Arc<McpServer>,
    input: R,
    mut output: W,
    shutdown: impl std::future::Future<Output = ()>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    // Two queues: messages the gateway builds (answers to initialize, notifications, progress),
    // and replies to calls, already JSON text. A call's progress is queued before its reply is
    // produced, and the writer always empties the first queue first, so it is written first.
    let (out, mut pending) = mpsc::channel::<Value>(OUTPUT_CAPACITY);
    let (replies, mut pending_replies) = mpsc::channel::<String>(OUTPUT_CAPACITY);
    // Listen streams hold a sender for as long as they last, so the queues never close on their
    // own: once the input has ended, `finished` tells the writer to stop when they are empty.
    let finished = CancellationToken::new();
    let writer_finished = finished.clone();
    let mut writer = tokio::spawn(async move {
        let mut line = Vec::new();
        loop {
            line.clear();
            tokio::select! {
                biased;
                Some(message) = pending.recv() => {
                    if serde_json::to_writer(&mut line, &message).is_err() {
                        continue;
                    }
                }
                Some(reply) = pending_replies.recv() => push_one_line(&reply, &mut line),
                () = writer_finished.cancelled() => return,
                else => return,
            }
            line.push(b'\n');
            if output.write_all(&line).await.is_err() || output.flush().await.is_err() {
                return;
            }
        }
    });
    // Read as bytes: a line that is not UTF-8 or is too long is answered with an error and the
    // next line is read (tokio-util's `LinesCodec` ends the input at either).
    let mut lines = FramedRead::new(input, LineCodec::new(MAX_MESSAGE_BYTES));
    let mut caller: Option<Caller> = None;
    // Calls in progress; finished ones are reaped as lines arrive, so the set stays as large as
    // the calls really running.
    let mut calls = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while calls.try_join_next().is_some() {}
        let line = tokio::select! {
            line = lines.next() => line,
            _ = &mut shutdown => break,
        };
        let Some(line) = line else { break };
        let line = match line {
            Ok(Line::Complete(line)) if line.trim_ascii().is_empty() => continue,
            Ok(Line::Complete(line)) => line,
            Ok(Line::TooLong { .. }) => {
                let error = JsonRpcError::new(
                    JsonRpcError::PARSE_ERROR,
                    format!("a line longer than {MAX_MESSAGE_BYTES} bytes was skipped"),
                );
                let _ = out.send(jsonrpc::error_response(Value::Null, &error)).await;
                continue;
            }
            Err(err) => {
                tracing::debug!(error = %err, "stdin could not be read");
                break;
            }
        };
        let message = match Message::from_slice(&line) {
            Ok(message) => message,
            Err(err) => {
                let error =
                    JsonRpcError::new(JsonRpcError::PARSE_ERROR, format!("not JSON: {err}"));
                let _ = out.send(jsonrpc::error_response(Value::Null, &error)).await;
                continue;
            }
        };
        let body = message.value();
        if body["method"] == "initialize" {
            let reply = match server.open_session(body.get("params")) {
                Ok((session, result)) => {
                    session.attach_stream(out.clone());
                    if let Some(Caller::Session(old)) = caller.replace(Caller::Session(session)) {
                        server.close_session(old.id()).await;
                    }
                    jsonrpc::response(body["id"].clone(), result)
                }
                Err(error) => jsonrpc::error_response(body["id"].clone(), &error),
            };
            let _ = out.send(reply).await;
            continue;
        }
        let current = match &caller {
            Some(caller) => caller.clone(),
            // Without a session, 2026-07-28 requests are served statelessly.
            None if is_stateless_message(body) => {
                if let Err(error) = check_stateless_meta(body) {
                    let _ = out
                        .send(jsonrpc::error_response(body["id"].clone(), &error))
                        .await;
                    continue;
                }
                if body["method"] == "subscriptions/listen" {
                    server
                        .listen(body["id"].clone(), body.get("params"), out.clone())
                        .await;
                    continue;
                }
                Caller::Stateless
            }
            None => {
                if body.get("id").is_some() && body.get("method").is_some() {
                    let error = JsonRpcError::new(
                        JsonRpcError::INVALID_REQUEST,
                        "send initialize first (or use 2026-07-28 with its _meta)",
                    );
                    let _ = out
                        .send(jsonrpc::error_response(body["id"].clone(), &error))
                        .await;
                }
                continue;
            }
        };
        let server = server.clone();
        let out = out.clone();
        let replies = replies.clone();
        calls.spawn(async move {
            if let Some(reply) = server.handle(&current, message, Some(out)).await {
                let _ = replies.send(reply.into_json()).await;
            }
        });
    }
    let _ = tokio::time::timeout(CALL_GRACE, async {
        while calls.join_next().await.is_some() {}
    })
    .await;
    calls.shutdown().await;
    if let Some(Caller::Session(session)) = caller {
        server.close_session(session.id()).await;
    }
    drop(out);
    drop(replies);
    finished.cancel();
    if tokio::time::timeout(FLUSH_DEADLINE, &mut writer)
        .await
        .is_err()
    {
        // Nobody reads the output: what is left cannot be written.
        writer.abort();
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::{DownstreamConfig, Gateway};

    /// Found by the `stdio` fuzz target: a line that was not UTF-8 ended the input (tokio-util's
    /// `LinesCodec` stops at its first error), so the gateway never read the client again.
    #[tokio::test]
    async fn a_line_that_is_not_utf8_is_answered_and_the_next_one_is_read() {
        let server = McpServer::new(Gateway::builder().build(), DownstreamConfig::default());
        let input: &[u8] =
            b"\xff\xfe not UTF-8\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\"}\n";
        let (mut client, output) = tokio::io::duplex(64 * 1024);
        let mut written = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), async {
            let serve = serve_stdio(server, input, output, std::future::pending());
            let (_, read) = tokio::join!(serve, client.read_to_end(&mut written));
            read.expect("the output reads");
        })
        .await
        .expect("served before the deadline");
        let replies: Vec<Value> = written
            .split(|&byte| byte == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| serde_json::from_slice(line).expect("each line is JSON"))
            .collect();
        assert_eq!(replies.len(), 2, "{replies:?}");
        assert_eq!(replies[0]["error"]["code"], JsonRpcError::PARSE_ERROR);
        assert_eq!(replies[1]["id"], 1);
        assert!(
            replies[1]["result"]["protocolVersion"].is_string(),
            "{replies:?}"
        );
    }

    #[test]
    fn a_pretty_printed_reply_goes_out_as_one_line_with_the_same_value() {
        let pretty = "{\r\n  \"result\": {\n    \"text\": \"two\\nlines\"\n  }\n}";
        let mut line = Vec::new();
        push_one_line(pretty, &mut line);
        assert!(!line.contains(&b'\n') && !line.contains(&b'\r'));
        let sent: Value = serde_json::from_slice(&line).expect("still JSON");
        let original: Value = serde_json::from_str(pretty).expect("JSON");
        assert_eq!(sent, original);
        assert_eq!(sent["result"]["text"], "two\nlines");
    }
}
