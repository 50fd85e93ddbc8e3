//! The stateless 2026-07-28 `subscriptions/listen` streams: what each accepted, the
//! notifications sent to them, and the cap on how many may be open at once.

use std::sync::Mutex;

use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::internal;
use crate::jsonrpc;

/// One `subscriptions/listen` stream.
struct Listener {
    id: Value,
    /// The accepted filter (`toolsListChanged`, …), as acknowledged.
    accepted: Value,
    stream: mpsc::Sender<Value>,
}

impl Listener {
    fn wants(&self, key: &str) -> bool {
        self.accepted[key] == Value::Bool(true)
    }

    fn send(&self, method: &str, params: Option<Value>) {
        let mut params = params.unwrap_or_else(|| json!({}));
        params["_meta"] = json!({ "io.modelcontextprotocol/subscriptionId": self.id });
        let _ = self
            .stream
            .try_send(jsonrpc::notification(method, Some(params)));
    }
}

/// The open listen streams, at most `max`.
pub(crate) struct Listeners {
    max: usize,
    open: Mutex<Vec<Listener>>,
}

impl Listeners {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            open: Mutex::new(Vec::new()),
        }
    }

    /// Opens a stream: acknowledges the accepted part of the requested filter, or, when `max`
    /// streams are open already, answers the request with an error and closes the stream.
    pub(crate) fn open(&self, id: Value, params: Option<&Value>, stream: mpsc::Sender<Value>) {
        let Ok(mut open) = self.open.lock() else {
            return;
        };
        open.retain(|l| !l.stream.is_closed());
        if open.len() >= self.max {
            let error = internal(format!(
                "the gateway already has {} subscriptions/listen streams open; try again later",
                self.max
            ));
            let _ = stream.try_send(jsonrpc::error_response(id, &error));
            return;
        }
        let requested = params.map(|p| &p["notifications"]).unwrap_or(&Value::Null);
        let mut accepted = Map::new();
        for key in [
            "toolsListChanged",
            "promptsListChanged",
            "resourcesListChanged",
        ] {
            if requested[key] == Value::Bool(true) {
                accepted.insert(key.into(), true.into());
            }
        }
        let listener = Listener {
            id,
            accepted: Value::Object(accepted.clone()),
            stream,
        };
        listener.send(
            "notifications/subscriptions/acknowledged",
            Some(json!({ "notifications": accepted })),
        );
        open.push(listener);
    }

    /// Sends `method` to every open stream that accepted `key`.
    pub(crate) fn notify(&self, key: &str, method: &str) {
        if let Ok(mut open) = self.open.lock() {
            open.retain(|l| !l.stream.is_closed());
            for listener in open.iter().filter(|l| l.wants(key)) {
                listener.send(method, None);
            }
        }
    }
}
