//! A minimal MCP client over a child process's stdin/stdout, for load generation against a
//! stdio server with nothing in between: the "direct" side of the stdio benchmarks.
//!
//! One child serves every worker: requests are multiplexed on its stdin by id (a writer task
//! batches whatever is queued into one flush), and a reader task hands each response line to the
//! request with its id. Eras as in [`crate::client`]: the session era performs `initialize`
//! first; the stateless era sends `_meta` on every request.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

use crate::client::{
    ClientError, Era, SESSION_VERSION, outcome, params_text, preview, stateless_meta,
};

/// Requests waiting for their answers, by id.
type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// One stdio server child and the requests in flight on it.
pub struct StdioClient {
    era: Era,
    meta: String,
    next_id: AtomicU64,
    pending: Pending,
    lines: mpsc::Sender<Vec<u8>>,
    /// Killed when the client is dropped.
    child: Child,
}

impl StdioClient {
    /// The server process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Starts `command` (program and arguments) and, in the session era, performs the handshake.
    pub async fn spawn(command: &[String], era: Era) -> Result<Self, ClientError> {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| ClientError::BadAnswer("empty stdio command".into()))?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(ClientError::Connect)?;
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(ClientError::BadAnswer("the child has no pipes".into()));
        };
        let (lines, mut queued) = mpsc::channel::<Vec<u8>>(1024);
        tokio::spawn(async move {
            while let Some(line) = queued.recv().await {
                let mut batch = line;
                while let Ok(more) = queued.try_recv() {
                    batch.extend_from_slice(&more);
                }
                if stdin.write_all(&batch).await.is_err() || stdin.flush().await.is_err() {
                    return;
                }
            }
        });
        let pending: Pending = Arc::default();
        let answers = pending.clone();
        tokio::spawn(async move {
            let mut stdout = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = stdout.next_line().await {
                let Ok(message) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let id = message.get("id").and_then(Value::as_u64);
                let waiting = id.and_then(|id| answers.lock().ok()?.remove(&id));
                if let Some(waiting) = waiting {
                    let _ = waiting.send(message);
                }
            }
            // The child is gone: dropping the senders fails every waiting request.
            if let Ok(mut answers) = answers.lock() {
                answers.clear();
            }
        });
        let client = Self {
            era,
            meta: stateless_meta(),
            next_id: AtomicU64::new(1),
            pending,
            lines,
            child,
        };
        if era == Era::Session {
            let params = json!({
                "protocolVersion": SESSION_VERSION,
                "capabilities": {},
                "clientInfo": { "name": "loadgen", "version": env!("CARGO_PKG_VERSION") },
            });
            client.request("initialize", &params).await?;
            client
                .write(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.into())
                .await?;
        }
        Ok(client)
    }

    async fn write(&self, mut line: String) -> Result<(), ClientError> {
        line.push('\n');
        self.lines
            .send(line.into_bytes())
            .await
            .map_err(|_| ClientError::BadAnswer("the child's stdin is closed".into()))
    }

    /// Sends a request and returns its result.
    pub async fn request(&self, method: &str, params: &Value) -> Result<Value, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let text = params_text(params, self.era, &self.meta)?;
        let (answer, answered) = oneshot::channel();
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(id, answer);
        }
        self.write(format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{text}}}"#
        ))
        .await?;
        let message = answered
            .await
            .map_err(|_| ClientError::BadAnswer("the child exited".into()))?;
        outcome(message)
    }

    /// `tools/call`; a result with `isError: true` is an error.
    pub async fn call_tool(&self, name: &str, arguments: &Value) -> Result<Value, ClientError> {
        let params = json!({ "name": name, "arguments": arguments });
        let result = self.request("tools/call", &params).await?;
        if result.get("isError") == Some(&Value::Bool(true)) {
            return Err(ClientError::Tool(preview(&result)));
        }
        Ok(result)
    }
}
