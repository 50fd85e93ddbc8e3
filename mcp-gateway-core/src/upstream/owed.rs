//! What the gateway owes an upstream that no caller waits on: answers to the upstream's own
//! requests (`ping`, sampling, elicitation, roots) and `notifications/cancelled` for calls whose
//! callers gave up.
//!
//! Neither the dispatcher nor a dropped call may wait on a write: the dispatcher must keep
//! reading, and a drop cannot wait at all. So each connection has one bounded queue of these
//! messages, drained by one task that gives every write a deadline. A full queue drops the
//! message and counts it (a cancellation is advisory, and an upstream that lets the queue fill is
//! not reading anyway). A write still blocked at its deadline means the upstream has stopped
//! reading its input: the connection is declared lost, so its callers fail at once with that
//! reason and the supervisor reconnects.

use std::sync::Weak;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::Shared;
use crate::jsonrpc::{self, JsonRpcError};
use crate::spec::ServerId;

/// How many owed messages may wait for their writer.
const OWED_CAPACITY: usize = 256;
/// How long one owed message may wait for the upstream to take it.
const OWED_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The queue of one connection's owed messages; enqueueing never waits.
pub(super) struct Owed {
    server: ServerId,
    queue: mpsc::Sender<Value>,
    dropped: AtomicU64,
}

impl Owed {
    /// Makes the queue; its receiving end goes to [`drain`].
    pub(super) fn new(server: ServerId) -> (Self, mpsc::Receiver<Value>) {
        let (queue, owed) = mpsc::channel(OWED_CAPACITY);
        let owed_queue = Self {
            server,
            queue,
            dropped: AtomicU64::new(0),
        };
        (owed_queue, owed)
    }

    /// Answers a request the upstream sent.
    pub(super) fn reply(&self, id: Value, answer: Result<Value, JsonRpcError>) {
        let message = match answer {
            Ok(result) => jsonrpc::response(id, result),
            Err(error) => jsonrpc::error_response(id, &error),
        };
        self.push(message, "an answer to its request");
    }

    /// Tells the upstream to stop working on a request whose caller gave up.
    pub(super) fn cancel(&self, id: u64) {
        let params = json!({ "requestId": id, "reason": "the caller cancelled the request" });
        let message = jsonrpc::notification("notifications/cancelled", Some(params));
        self.push(message, "a cancellation");
    }

    fn push(&self, message: Value, what: &str) {
        if self.queue.try_send(message).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // Only at powers of two: a flood shows in the log without flooding it.
            if dropped.is_power_of_two() {
                tracing::warn!(server = %self.server, dropped, what, "the upstream is not taking what the gateway owes it; dropped");
            }
        }
    }
}

/// Writes owed messages in order, each within its deadline, until the connection is gone. Holds
/// the connection weakly: the queue's sender lives in it, so the task ends with it.
pub(super) async fn drain(shared: Weak<Shared>, mut owed: mpsc::Receiver<Value>) {
    while let Some(message) = owed.recv().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if shared.lost.is_cancelled() {
            continue;
        }
        let written =
            tokio::time::timeout(OWED_WRITE_TIMEOUT, shared.outbound.send(message.into())).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::debug!(server = %shared.server, error = %err, "could not write to the upstream");
            }
            Err(_) => shared.declare_lost(format!(
                "the server is not reading its input: a message waited {} s to be written",
                OWED_WRITE_TIMEOUT.as_secs()
            )),
        }
    }
}
