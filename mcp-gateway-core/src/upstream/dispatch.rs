//! The dispatcher: one task per connection that reads everything the upstream sends, matches
//! answers to their callers, routes progress and logs, and answers the upstream's own requests.
//!
//! It never waits on a write to the upstream: an upstream that stops reading its input would
//! otherwise stop the gateway reading that upstream's answers too. Whatever it owes the upstream
//! goes through the connection's [`Owed`](super::owed::Owed) queue.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::{ClientRequestHandler, ListKind, Shared, Signal};
use crate::events::cut_log_message;
use crate::jsonrpc::{self, Incoming, JsonRpcError};
use crate::spec::ServerId;
use crate::transport::TransportEvent;

/// Reads the transport's events until it closes, answering callers and raising signals.
pub(super) async fn dispatch(
    shared: Arc<Shared>,
    mut inbound: mpsc::Receiver<TransportEvent>,
    signals: mpsc::Sender<Signal>,
) {
    // A mutex only so that the dispatcher's future is `Send`: nothing else ever locks it.
    let drops = std::sync::Mutex::new(Drops::default());
    let raise = |signal: Signal| {
        let sent = signals.try_send(signal);
        let Ok(mut drops) = drops.lock() else { return };
        match sent {
            Err(mpsc::error::TrySendError::Full(_)) => drops.dropped(&shared.server),
            Ok(()) => drops.report_due(&shared.server),
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    };
    let lost = shared.lost.clone();
    let lost = lost.cancelled();
    tokio::pin!(lost);
    let reason = loop {
        // An atomic load per message, so a flood of input cannot hide that the connection was
        // given up; the token's future is polled only when there is no input waiting.
        if shared.lost.is_cancelled() {
            break shared.closed_reason();
        }
        let event = tokio::select! {
            biased;
            event = inbound.recv() => event,
            () = &mut lost => break shared.closed_reason(),
        };
        let Some(event) = event else {
            break "the transport stopped".to_owned();
        };
        match event {
            TransportEvent::Message(message) => {
                for message in jsonrpc::classify_raw(&message) {
                    handle_message(&shared, message, &raise);
                }
            }
            TransportEvent::Garbage(text) => {
                raise(Signal::ProtocolViolation(format!("not JSON: {text}")));
            }
            TransportEvent::TooLong { detail, answer_to } => {
                // Its caller is told now, not when its request times out.
                let pending = answer_to.and_then(|id| shared.pending.lock().ok()?.remove(&id));
                if let Some(pending) = pending {
                    let error = JsonRpcError::new(
                        JsonRpcError::INTERNAL_ERROR,
                        format!("the answer was not read: {detail}"),
                    );
                    let _ = pending.answer.send(Err(error));
                }
                raise(Signal::ProtocolViolation(detail));
            }
            TransportEvent::Stderr(line) => raise(Signal::Stderr(line)),
            // Fail the calls now rather than when the process is reaped; read on for its last
            // stderr lines and its exit.
            TransportEvent::InputEnded(reason) => shared.fail_all(&reason),
            TransportEvent::Closed(reason) => break reason,
        }
    };
    if let Ok(mut drops) = drops.lock() {
        drops.report(&shared.server);
    }
    shared.fail_all(&reason);
    let _ = signals.send(Signal::Closed(reason)).await;
}

/// How often dropped signals are reported while a flood lasts.
const DROP_REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// Signals dropped because their queue was full, reported as a count at most once a second: one
/// warning per dropped signal turned an upstream's flood of notifications into a flood of the
/// gateway's own log lines (thousands a second, each a write to stderr).
#[derive(Default)]
struct Drops {
    /// Dropped since the last report.
    count: u64,
    last_report: Option<Instant>,
}

impl Drops {
    fn dropped(&mut self, server: &ServerId) {
        self.count += 1;
        self.report_due(server);
    }

    /// Reports the count if there is one and the last report is old enough.
    fn report_due(&mut self, server: &ServerId) {
        if self.count > 0
            && self
                .last_report
                .is_none_or(|at| at.elapsed() >= DROP_REPORT_INTERVAL)
        {
            self.report(server);
        }
    }

    fn report(&mut self, server: &ServerId) {
        if self.count > 0 {
            tracing::warn!(server = %server, dropped = self.count, "signal queue full; signals dropped");
            self.count = 0;
            self.last_report = Some(Instant::now());
        }
    }
}

fn handle_message(shared: &Arc<Shared>, message: Incoming<Box<RawValue>>, raise: &impl Fn(Signal)) {
    match message {
        Incoming::Response { id, outcome } => {
            let pending = id
                .as_u64()
                .and_then(|id| shared.pending.lock().ok()?.remove(&id));
            match pending {
                Some(pending) => {
                    let _ = pending.answer.send(outcome);
                }
                None => raise(Signal::ProtocolViolation(format!(
                    "answer to request id {id}, which is not waiting for one"
                ))),
            }
        }
        Incoming::Notification { method, params } => match method.as_str() {
            "notifications/progress" => route_progress(shared, params),
            "notifications/tools/list_changed" => raise(Signal::ListChanged(ListKind::Tools)),
            "notifications/resources/list_changed" => {
                raise(Signal::ListChanged(ListKind::Resources))
            }
            "notifications/prompts/list_changed" => raise(Signal::ListChanged(ListKind::Prompts)),
            "notifications/resources/updated" => {
                raise(Signal::ResourceUpdated(params.unwrap_or(Value::Null)))
            }
            "notifications/message" => {
                let params = params.unwrap_or(Value::Null);
                let delivered = match client_for(shared, &method) {
                    Ok(client) => {
                        client.notify(&method, &params);
                        Some(client.session_id().to_owned())
                    }
                    Err(_) => None,
                };
                raise(Signal::Log(log_for_event(params), delivered))
            }
            other => {
                tracing::debug!(server = %shared.server, method = other, "notification ignored")
            }
        },
        Incoming::Request { id, method, params } => {
            if method == "ping" {
                shared.owed.reply(id, Ok(json!({})));
                return;
            }
            match client_for(shared, &method) {
                Ok(client) => {
                    // Answered from its own task: the client may take minutes (a person
                    // answering an elicitation) and the dispatcher must keep reading.
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let answer = client.handle(&method, params).await;
                        shared.owed.reply(id, answer);
                    });
                }
                Err(answer) => shared.owed.reply(id, answer),
            }
        }
        Incoming::Invalid(reason) => raise(Signal::ProtocolViolation(reason)),
    }
}

/// What a log notification's event keeps: its level, logger and data, each cut to size. The
/// signal queue and the event history hold this, never the megabytes an upstream may send.
fn log_for_event(mut params: Value) -> Value {
    let kept: Map<String, Value> = ["level", "logger", "data"]
        .into_iter()
        .filter_map(|key| {
            let value = params.get_mut(key)?.take();
            Some((key.to_owned(), cut_log_message(value)))
        })
        .collect();
    Value::Object(kept)
}

/// Finds the one downstream session that can answer an upstream's request, or the answer to
/// give when there is none.
fn client_for(
    shared: &Shared,
    method: &str,
) -> Result<Arc<dyn ClientRequestHandler>, Result<Value, JsonRpcError>> {
    let clients: Vec<Arc<dyn ClientRequestHandler>> = shared
        .pending
        .lock()
        .map(|pending| pending.values().filter_map(|p| p.client.clone()).collect())
        .unwrap_or_default();
    let Some(first) = clients.first() else {
        // Roots belong to a client session; outside any call the shared connection has none.
        if method == "roots/list" {
            return Err(Ok(json!({ "roots": [] })));
        }
        return Err(Err(JsonRpcError::new(
            JsonRpcError::METHOD_NOT_FOUND,
            format!(
                "`{method}` arrived while no client call was in flight on this server, so there is no client to ask"
            ),
        )));
    };
    if clients.iter().any(|c| c.session_id() != first.session_id()) {
        return Err(Err(JsonRpcError::new(
            JsonRpcError::INTERNAL_ERROR,
            format!(
                "`{method}` is ambiguous: calls from several client sessions are in flight on this server"
            ),
        )));
    }
    Ok(first.clone())
}

/// Delivers a progress notification to the caller whose request it is about, token restored.
fn route_progress(shared: &Shared, params: Option<Value>) {
    let Some(mut params) = params else { return };
    let Some(token) = params.get("progressToken").and_then(Value::as_u64) else {
        return;
    };
    let route = shared.progress.lock().ok().and_then(|routes| {
        routes
            .get(&token)
            .map(|r| (r.caller_token.clone(), r.sink.clone()))
    });
    if let Some((caller_token, sink)) = route {
        params["progressToken"] = caller_token;
        // Progress is advisory: a caller that does not keep up loses some, the upstream never waits.
        let _ = sink.try_send(params);
    }
}
