//! The event bus: every state change of the engine as one [`GatewayEvent`], numbered and stamped,
//! fanned out to synchronous [`EventSink`]s, to bounded broadcast subscribers, and kept in a
//! bounded history ring so a dashboard that reconnects resumes from the sequence number it saw.
//! The ring is bounded by count and by bytes, and log messages are cut when their event is made,
//! so an upstream that logs megabytes costs kilobytes here.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::spec::ServerId;
use crate::upstream::{Era, ListKind};

/// Version of the serialised event schema; bumped on any incompatible change.
pub const EVENT_SCHEMA_VERSION: u32 = 1;

/// Longest log message an event keeps, in bytes of its text (the string itself, or the JSON text
/// of any other value); the same bound as a stderr line.
pub(crate) const MAX_LOG_MESSAGE: usize = 4096;

/// A server's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ServerStatus {
    /// Connecting or handshaking.
    Connecting,
    /// Connected and answering.
    Healthy,
    /// Answering, but slowly or with some failures.
    Degraded,
    /// Not answering.
    Unhealthy,
    /// Waiting to connect again.
    Reconnecting,
    /// Stopped on purpose (removed, disabled, gateway shutdown).
    Stopped,
    /// Gave up: the connection failed or closed and will not be retried.
    Failed,
}

/// Where an upstream log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LogSource {
    /// An MCP `notifications/message`.
    Notification,
    /// A line the child process wrote to stderr.
    Stderr,
}

/// How a tool call ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "message")]
#[non_exhaustive]
pub enum CallOutcome {
    /// The tool ran and returned a result.
    Ok,
    /// The tool ran and reported an error (`isError: true`).
    ToolError,
    /// The call failed (protocol error, timeout, connection lost).
    Failed(String),
}

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AlertKind {
    /// The server failed for good (a crash loop, a command that cannot start) and is no longer
    /// retried.
    Failed,
    /// The server stopped answering health probes.
    Unhealthy,
}

/// Everything that happens in the engine. Serialised with a `type` tag in snake case.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum GatewayEvent {
    /// The gateway started.
    GatewayStarted,
    /// The gateway is shutting down.
    GatewayStopping,
    /// A server was added (by a discovery source or the API).
    ServerAdded {
        /// The server.
        server: ServerId,
        /// Its transport kind.
        transport: String,
    },
    /// A discovery source's new set was applied (a config reload, a port that started answering).
    DiscoveryApplied {
        /// The source.
        source: String,
        /// Servers started.
        added: Vec<ServerId>,
        /// Servers stopped.
        removed: Vec<ServerId>,
        /// Servers restarted because their spec changed.
        changed: Vec<ServerId>,
    },
    /// A discovery source could not be read (an invalid config edit); the running set is kept.
    DiscoveryFailed {
        /// The source.
        source: String,
        /// What is wrong, for a person.
        error: String,
    },
    /// Two discovery sources yield the same server id. The source registered first runs its spec
    /// (a server added through the API keeps its id against every source); the other's is not
    /// started, and takes over if the winner lets the id go.
    DiscoveryConflict {
        /// The contested id.
        server: ServerId,
        /// The source whose spec runs (`None`: the server was added through the API).
        kept: Option<String>,
        /// The source whose spec is not started.
        rejected: String,
    },
    /// A server was removed.
    ServerRemoved {
        /// The server.
        server: ServerId,
    },
    /// A server's status changed.
    StatusChanged {
        /// The server.
        server: ServerId,
        /// The old status.
        from: ServerStatus,
        /// The new status.
        to: ServerStatus,
        /// Why, for a person.
        reason: String,
    },
    /// A lost or failed connection will be retried.
    ReconnectScheduled {
        /// The server.
        server: ServerId,
        /// Which retry this is (1 for the first).
        attempt: u32,
        /// The delay before it, in milliseconds.
        delay_ms: u64,
        /// When it will start, in milliseconds since the Unix epoch.
        at_ms: u64,
        /// Why the connection is being retried.
        reason: String,
    },
    /// Something needs an operator's attention.
    AlertRaised {
        /// The server.
        server: ServerId,
        /// What kind of problem.
        kind: AlertKind,
        /// What happened, for a person.
        message: String,
    },
    /// A raised alert no longer holds.
    AlertResolved {
        /// The server.
        server: ServerId,
        /// The kind of alert that ended.
        kind: AlertKind,
        /// Why it ended.
        message: String,
    },
    /// A connection completed its handshake.
    Connected {
        /// The server.
        server: ServerId,
        /// The era in use.
        era: Era,
        /// The negotiated protocol version.
        protocol_version: String,
        /// The server's own `serverInfo`.
        server_info: Value,
    },
    /// One of the merged lists changed.
    ListChanged {
        /// Which list.
        kind: ListKind,
        /// The server whose entries changed.
        server: ServerId,
        /// The registry generation after the change.
        generation: u64,
        /// How many entries the server now has in that list.
        count: usize,
    },
    /// Two servers offer the same exposed name; the second one's entry is not exposed.
    NameCollision {
        /// Which list.
        kind: ListKind,
        /// The contested name.
        name: String,
        /// The server that keeps the name.
        kept: ServerId,
        /// The server whose entry was rejected.
        rejected: ServerId,
    },
    /// An upstream resource a client subscribed to changed.
    ResourceUpdated {
        /// The server.
        server: ServerId,
        /// The resource.
        uri: String,
    },
    /// A tool call started.
    ToolCallStarted {
        /// The server.
        server: ServerId,
        /// The exposed tool name.
        tool: String,
    },
    /// A tool call ended.
    ToolCallFinished {
        /// The server.
        server: ServerId,
        /// The exposed tool name.
        tool: String,
        /// Wall time in microseconds.
        duration_us: u64,
        /// How it ended.
        outcome: CallOutcome,
    },
    /// A log line from an upstream.
    UpstreamLog {
        /// The server.
        server: ServerId,
        /// Where it came from.
        source: LogSource,
        /// The level (`info` for stderr lines).
        level: String,
        /// The upstream's logger name, if it gave one.
        logger: Option<String>,
        /// The message: the notification's `data`, or the stderr line.
        message: Value,
        /// The client session it was already delivered to, because that session's call was in
        /// flight on the server when it arrived.
        session: Option<String>,
    },
    /// An upstream broke the protocol (garbage, an answer to an id never sent); the gateway
    /// ignored the message and kept the connection.
    ProtocolViolation {
        /// The server.
        server: ServerId,
        /// What it did.
        detail: String,
    },
    /// A subscriber fell behind and missed this many events.
    Lagged {
        /// How many events were missed.
        missed: u64,
    },
}

/// An event with its sequence number, time and schema version: the unit sinks and subscribers see.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct EventEnvelope {
    /// Schema version ([`EVENT_SCHEMA_VERSION`]).
    pub version: u32,
    /// Strictly increasing, starting at 1.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The event.
    #[serde(flatten)]
    pub event: GatewayEvent,
}

/// Receives every event. Called synchronously on the engine's path, so it must not block: a sink
/// that does I/O queues into its own bounded channel and counts what it drops.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use mcp_gateway_core::{EventEnvelope, EventSink, GatewayEvent};
///
/// /// Counts finished tool calls.
/// #[derive(Default)]
/// struct CallCounter(AtomicU64);
///
/// impl EventSink for CallCounter {
///     fn on_event(&self, event: &EventEnvelope) {
///         if let GatewayEvent::ToolCallFinished { .. } = event.event {
///             self.0.fetch_add(1, Ordering::Relaxed);
///         }
///     }
/// }
/// ```
pub trait EventSink: Send + Sync + 'static {
    /// Observes one event. Must return quickly and never panic.
    fn on_event(&self, event: &EventEnvelope);
}

impl<S: EventSink + ?Sized> EventSink for Arc<S> {
    fn on_event(&self, event: &EventEnvelope) {
        (**self).on_event(event)
    }
}

impl<S: EventSink + ?Sized> EventSink for Box<S> {
    fn on_event(&self, event: &EventEnvelope) {
        (**self).on_event(event)
    }
}

/// A sink that writes events as `tracing` events.
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingSink;

impl EventSink for TracingSink {
    fn on_event(&self, envelope: &EventEnvelope) {
        tracing::info!(target: "mcp_gateway::events", seq = envelope.seq, event = ?envelope.event);
    }
}

/// Sizes of the bus's buffers.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct EventBusConfig {
    /// Events a subscriber may fall behind before it gets [`GatewayEvent::Lagged`].
    pub subscriber_capacity: usize,
    /// Events kept for [`EventBus::history_since`].
    pub history: usize,
    /// Bytes of serialised events kept for [`EventBus::history_since`]: the oldest go first when
    /// either this or [`history`](Self::history) would be exceeded, and an event larger than the
    /// whole budget is not kept (sinks and subscribers still see it).
    pub history_bytes: usize,
}

impl Default for EventBusConfig {
    fn default() -> Self {
        Self {
            subscriber_capacity: 4096,
            history: 4096,
            history_bytes: 8 * 1024 * 1024,
        }
    }
}

/// The fan-out point of all events. Cheap to clone.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<BusInner>,
}

struct BusInner {
    next_seq: AtomicU64,
    sinks: ArcSwap<Vec<Arc<dyn EventSink>>>,
    broadcast: broadcast::Sender<Arc<EventEnvelope>>,
    history: Mutex<History>,
    history_capacity: usize,
    history_bytes: usize,
}

/// The kept events, each with its serialised size, and the sum of those sizes.
#[derive(Default)]
struct History {
    events: VecDeque<(Arc<EventEnvelope>, usize)>,
    bytes: usize,
}

impl History {
    fn pop_front(&mut self) -> bool {
        let Some((_, size)) = self.events.pop_front() else {
            return false;
        };
        self.bytes -= size;
        true
    }
}

impl EventBus {
    /// A bus with the given buffer sizes.
    pub fn new(config: EventBusConfig) -> Self {
        let (broadcast, _) = broadcast::channel(config.subscriber_capacity.max(1));
        Self {
            inner: Arc::new(BusInner {
                next_seq: AtomicU64::new(1),
                sinks: ArcSwap::from_pointee(Vec::new()),
                broadcast,
                history: Mutex::new(History::default()),
                history_capacity: config.history,
                history_bytes: config.history_bytes,
            }),
        }
    }

    /// Adds a sink; it sees every event from now on.
    pub fn add_sink(&self, sink: Arc<dyn EventSink>) {
        self.inner.sinks.rcu(|sinks| {
            let mut sinks = Vec::clone(sinks);
            sinks.push(sink.clone());
            sinks
        });
    }

    /// Numbers, stamps and delivers an event.
    pub fn emit(&self, event: GatewayEvent) {
        let time_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        // Measured once, outside the lock; the envelope's few fixed fields are left out.
        let size = (self.inner.history_capacity > 0).then(|| Measure::len(&event));
        // The history lock also orders sequence numbers, so history and subscribers see them
        // strictly increasing.
        let Ok(mut history) = self.inner.history.lock() else {
            return;
        };
        let envelope = Arc::new(EventEnvelope {
            version: EVENT_SCHEMA_VERSION,
            seq: self.inner.next_seq.fetch_add(1, Ordering::Relaxed),
            time_ms,
            event,
        });
        if let Some(size) = size.filter(|&size| size <= self.inner.history_bytes) {
            while (history.events.len() >= self.inner.history_capacity
                || history.bytes + size > self.inner.history_bytes)
                && history.pop_front()
            {}
            history.events.push_back((envelope.clone(), size));
            history.bytes += size;
        }
        let _ = self.inner.broadcast.send(envelope.clone());
        drop(history);
        for sink in self.inner.sinks.load().iter() {
            sink.on_event(&envelope);
        }
    }

    /// A stream of every event from now on.
    pub fn subscribe(&self) -> EventSubscription {
        EventSubscription {
            receiver: self.inner.broadcast.subscribe(),
        }
    }

    /// The kept events with a sequence number above `seq`, oldest first.
    pub fn history_since(&self, seq: u64) -> Vec<Arc<EventEnvelope>> {
        self.inner
            .history
            .lock()
            .map(|history| {
                history
                    .events
                    .iter()
                    .filter(|(event, _)| event.seq > seq)
                    .map(|(event, _)| event.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(EventBusConfig::default())
    }
}

/// A log message as an event keeps it: as sent when its text is at most [`MAX_LOG_MESSAGE`]
/// bytes, otherwise that text cut there (as a string) and marked with how many bytes were cut.
pub(crate) fn cut_log_message(message: Value) -> Value {
    let (kept, total) = match &message {
        Value::String(text) if text.len() <= MAX_LOG_MESSAGE => return message,
        Value::String(text) => (text.as_bytes()[..MAX_LOG_MESSAGE].to_vec(), text.len()),
        other => {
            let mut measure = Measure {
                kept: Vec::new(),
                keep: MAX_LOG_MESSAGE,
                total: 0,
            };
            if serde_json::to_writer(&mut measure, other).is_err()
                || measure.total <= MAX_LOG_MESSAGE
            {
                return message;
            }
            (measure.kept, measure.total)
        }
    };
    // The cut may split a character: keep only the whole ones.
    let text = match std::str::from_utf8(&kept) {
        Ok(text) => text,
        Err(err) => std::str::from_utf8(&kept[..err.valid_up_to()]).unwrap_or_default(),
    };
    let cut = total - text.len();
    Value::String(format!("{text}… [{cut} more bytes cut]"))
}

/// A writer that counts the bytes of serialised JSON and keeps only the first `keep` of them,
/// so measuring a huge value allocates nothing beyond what it keeps.
struct Measure {
    kept: Vec<u8>,
    keep: usize,
    total: usize,
}

impl Measure {
    /// The length of `value`'s JSON text.
    fn len(value: &impl Serialize) -> usize {
        let mut measure = Self {
            kept: Vec::new(),
            keep: 0,
            total: 0,
        };
        let _ = serde_json::to_writer(&mut measure, value);
        measure.total
    }
}

impl io::Write for Measure {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.keep.saturating_sub(self.kept.len()).min(buf.len());
        self.kept.extend_from_slice(&buf[..room]);
        self.total += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A subscriber's view of the bus.
pub struct EventSubscription {
    receiver: broadcast::Receiver<Arc<EventEnvelope>>,
}

impl EventSubscription {
    /// The next event; `None` once the bus is gone. A subscriber that fell behind gets a
    /// [`GatewayEvent::Lagged`] (with sequence number 0) telling how many it missed.
    pub async fn recv(&mut self) -> Option<Arc<EventEnvelope>> {
        match self.receiver.recv().await {
            Ok(event) => Some(event),
            Err(broadcast::error::RecvError::Lagged(missed)) => Some(Arc::new(EventEnvelope {
                version: EVENT_SCHEMA_VERSION,
                seq: 0,
                time_ms: 0,
                event: GatewayEvent::Lagged { missed },
            })),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

#[cfg(test)]
mod tests;
