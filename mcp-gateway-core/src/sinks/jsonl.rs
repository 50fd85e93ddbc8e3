//! [`JsonLinesSink`]: appends every event to a file as one JSON line, through a bounded queue and
//! one writer task that writes and flushes a whole burst of queued events at a time.
//!
//! Each line is the event envelope exactly as the event stream serialises it (`version`, `seq`,
//! `time_ms`, `type` and the event's own fields), so `jq` and log shippers read the file as is.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::{Counters, SinkError, runtime};
use crate::events::{EventEnvelope, EventSink};

/// How a [`JsonLinesSink`] queues.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JsonLinesConfig {
    /// Events that may wait to be written; more are dropped and counted (default 4096, the size
    /// of the event bus's own history, since every event comes here).
    pub queue_capacity: usize,
}

impl Default for JsonLinesConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 4096,
        }
    }
}

impl JsonLinesConfig {
    /// Sets how many events may wait to be written (at least 1).
    pub fn with_queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.max(1);
        self
    }
}

/// An [`EventSink`] that appends every event to a file as one JSON line.
///
/// The file is opened in append mode, and created if missing, by the constructor, so a bad path
/// fails there and not later. `on_event` never blocks: it puts the event in a bounded queue, or
/// drops and counts it when the queue is full. One background task writes the queued events in
/// order, flushing after each burst; a failed write counts its events as failed and the task
/// carries on with the next burst.
///
/// The constructor spawns that task, so it must run inside a tokio runtime. When the sink is
/// dropped the task writes what is still queued and ends.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use mcp_gateway_core::sinks::JsonLinesConfig;
/// use mcp_gateway_core::{Gateway, JsonLinesSink};
///
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("events.jsonl");
/// let log = Arc::new(JsonLinesSink::new(&path, JsonLinesConfig::default())?);
/// let gateway = Gateway::builder().event_sink(log.clone()).build();
/// gateway.start().await;
/// gateway.shutdown().await;
/// assert!(log.flush(Duration::from_secs(5)).await);
/// let first = std::fs::read_to_string(&path)?;
/// assert!(first.starts_with(r#"{"version":1,"seq":1,"#));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct JsonLinesSink {
    path: PathBuf,
    queue: mpsc::Sender<EventEnvelope>,
    counters: Arc<Counters>,
}

impl JsonLinesSink {
    /// Opens (or creates) the file for appending and spawns the writer task.
    pub fn new(path: impl AsRef<Path>, config: JsonLinesConfig) -> Result<Self, SinkError> {
        let handle = runtime()?;
        let path = path.as_ref().to_path_buf();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| SinkError::Open {
                path: path.clone(),
                source,
            })?;
        let counters = Arc::new(Counters::new());
        let (queue, inbox) = mpsc::channel(config.queue_capacity.max(1));
        let writer = Writer {
            file: tokio::fs::File::from_std(file),
            path: path.clone(),
            counters: counters.clone(),
        };
        handle.spawn(writer.run(inbox));
        Ok(Self {
            path,
            queue,
            counters,
        })
    }

    /// The file events are appended to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        Counters::get(&self.counters.dropped)
    }

    /// Events written and flushed to the file.
    pub fn written(&self) -> u64 {
        Counters::get(&self.counters.delivered)
    }

    /// Events lost to a failed write.
    pub fn failed(&self) -> u64 {
        Counters::get(&self.counters.failed)
    }

    /// Waits until every event queued before the call is written and flushed (or lost to a
    /// failed write). Returns `false` if that did not happen within `timeout`.
    pub async fn flush(&self, timeout: Duration) -> bool {
        self.counters.flush(timeout).await
    }
}

impl EventSink for JsonLinesSink {
    fn on_event(&self, event: &EventEnvelope) {
        // Reserve first, so a full queue costs no clone.
        match self.queue.try_reserve() {
            Ok(permit) => {
                self.counters.accept();
                permit.send(event.clone());
            }
            Err(_) => self.counters.drop_one(),
        }
    }
}

/// The writer task's state.
struct Writer {
    file: tokio::fs::File,
    path: PathBuf,
    counters: Arc<Counters>,
}

impl Writer {
    /// Writes bursts until the sink is dropped and the queue is empty.
    async fn run(mut self, mut inbox: mpsc::Receiver<EventEnvelope>) {
        let mut burst = Vec::new();
        while let Some(first) = inbox.recv().await {
            // Take everything that is already waiting (at most one queue's worth), so one write
            // and one flush cover the whole burst.
            let mut lines = 0;
            let mut unserialisable = 0;
            let mut next = Some(first);
            let mut taken = 0;
            while let Some(envelope) = next.take() {
                if append_line(&mut burst, &envelope) {
                    lines += 1;
                } else {
                    unserialisable += 1;
                }
                taken += 1;
                if taken < inbox.max_capacity() {
                    next = inbox.try_recv().ok();
                }
            }
            if unserialisable > 0 {
                tracing::warn!(
                    sink = "jsonl",
                    events = unserialisable,
                    "could not serialise events"
                );
                self.counters.failed(unserialisable);
            }
            if lines == 0 {
                continue;
            }
            let written = async {
                self.file.write_all(&burst).await?;
                self.file.flush().await
            }
            .await;
            burst.clear();
            match written {
                Ok(()) => self.counters.delivered(lines),
                Err(err) => {
                    tracing::warn!(
                        sink = "jsonl",
                        path = %self.path.display(),
                        events = lines,
                        error = %err,
                        "could not write events"
                    );
                    self.counters.failed(lines);
                }
            }
        }
    }
}

/// Serialises one envelope and a newline onto `buffer`; `false` (and nothing added) if it does
/// not serialise, which the event types rule out but a half line must never reach the file.
fn append_line(buffer: &mut Vec<u8>, envelope: &EventEnvelope) -> bool {
    let start = buffer.len();
    if serde_json::to_writer(&mut *buffer, envelope).is_ok() {
        buffer.push(b'\n');
        true
    } else {
        buffer.truncate(start);
        false
    }
}

#[cfg(test)]
mod tests;
