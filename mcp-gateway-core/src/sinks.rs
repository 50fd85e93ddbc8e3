//! Built-in [`EventSink`](crate::EventSink)s that do I/O: a [`WebhookSink`] that POSTs alerts
//! (Slack-compatible) and a [`JsonLinesSink`] that appends every event to a file.
//!
//! Both follow the same rule as every sink: `on_event` runs on the engine's path, so it never
//! blocks. Each sink owns a bounded queue and one background task; `on_event` only tries to put
//! the event in the queue, and an event that does not fit is dropped and counted
//! ([`WebhookSink::dropped`], [`JsonLinesSink::dropped`]) instead of slowing the engine down.
//! `flush` waits (with a deadline) until everything queued so far has been handled, for tests and
//! for an orderly shutdown.
//!
//! The constructors spawn the background task, so they must be called inside a tokio runtime;
//! outside one they return [`SinkError::NoRuntime`]. The task ends when the sink is dropped.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

mod jsonl;
mod webhook;

pub use jsonl::{JsonLinesConfig, JsonLinesSink};
pub use webhook::{EventFilter, WebhookConfig, WebhookSink};

/// Why a sink could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The sink's background task needs a tokio runtime, and there is none on this thread.
    #[error("the sink must be created inside a tokio runtime")]
    NoRuntime,
    /// The webhook URL is not a valid `http` or `https` URL.
    #[error("invalid webhook url: {0}")]
    InvalidUrl(String),
    /// A webhook header name or value is not valid in HTTP. The value itself is never shown.
    #[error("invalid webhook header `{0}`")]
    InvalidHeader(String),
    /// The HTTP client could not be built.
    #[error("could not build the webhook http client")]
    Client(#[source] reqwest::Error),
    /// The events file could not be opened.
    #[error("could not open events file `{}`", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
}

/// The counters a sink shares with its background task, and the "done" mark `flush` waits on.
#[derive(Debug)]
struct Counters {
    /// Events put in the queue.
    accepted: AtomicU64,
    /// Events that did not fit in the queue (or came after the task ended).
    dropped: AtomicU64,
    /// Events handled successfully.
    delivered: AtomicU64,
    /// Events the task gave up on.
    failed: AtomicU64,
    /// Events handled either way: `delivered + failed`, published so `flush` can wait on it.
    done: watch::Sender<u64>,
}

impl Counters {
    fn new() -> Self {
        Self {
            accepted: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            done: watch::Sender::new(0),
        }
    }

    fn accept(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    fn drop_one(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    fn delivered(&self, count: u64) {
        self.delivered.fetch_add(count, Ordering::Relaxed);
        self.done.send_modify(|done| *done += count);
    }

    fn failed(&self, count: u64) {
        self.failed.fetch_add(count, Ordering::Relaxed);
        self.done.send_modify(|done| *done += count);
    }

    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Waits until every event accepted before the call is delivered or given up on; `false` if
    /// that did not happen within `timeout`.
    async fn flush(&self, timeout: Duration) -> bool {
        let target = self.accepted.load(Ordering::Relaxed);
        let mut done = self.done.subscribe();
        // The sender lives as long as the sink, so `wait_for` only ends by reaching the target.
        matches!(
            tokio::time::timeout(timeout, done.wait_for(|done| *done >= target)).await,
            Ok(Ok(_))
        )
    }
}

/// The runtime the background task is spawned on.
fn runtime() -> Result<tokio::runtime::Handle, SinkError> {
    tokio::runtime::Handle::try_current().map_err(|_| SinkError::NoRuntime)
}
