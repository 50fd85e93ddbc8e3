//! Server-sent events from an upstream, each at most [`MAX_MESSAGE_BYTES`]: an upstream that
//! streams one event without end fails its stream instead of filling the gateway's memory.
//!
//! `sse-stream` buffers an event until its blank line, however long that takes, so the bytes read
//! since the last complete event are counted on the way in. Every byte counted is part of the
//! event being read (bytes after an event in the same chunk go uncounted, so an event may
//! overshoot the limit by at most one chunk before it is refused, never be refused below it).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use http_body_util::BodyDataStream;
use sse_stream::{Sse, SseByteStream};

use super::MAX_MESSAGE_BYTES;
use super::http_client::Body;

/// The events of one SSE response body.
pub struct EventStream {
    events: SseByteStream<BoxStream<'static, std::io::Result<Bytes>>>,
    /// Bytes read since the last complete event.
    pending: Arc<AtomicUsize>,
    limit: usize,
}

/// Why an event stream ended early.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// An event grew past the limit; the stream is dropped, as nothing after it can be trusted
    /// to start a new event.
    #[error("an SSE event grew past {0} bytes")]
    TooLarge(usize),
    /// The body could not be read or decoded.
    #[error("the SSE stream failed: {0}")]
    Failed(String),
}

impl EventStream {
    /// Reads `body` as an event stream with the production limit.
    pub(crate) fn new(body: Body) -> Self {
        Self::with_limit(BodyDataStream::new(body).boxed(), MAX_MESSAGE_BYTES)
    }

    /// Reads `chunks` as an event stream whose events may be at most `limit` bytes.
    pub fn with_limit(chunks: BoxStream<'static, std::io::Result<Bytes>>, limit: usize) -> Self {
        let pending = Arc::new(AtomicUsize::new(0));
        let counted = pending.clone();
        let chunks = chunks.map(move |chunk| {
            let chunk = chunk?;
            // Checked before the chunk is taken: it may finish the event in progress.
            if counted.load(Ordering::Relaxed) >= limit {
                return Err(std::io::Error::other("SSE event too large"));
            }
            counted.fetch_add(chunk.len(), Ordering::Relaxed);
            Ok(chunk)
        });
        Self {
            events: SseByteStream::new(chunks.boxed()),
            pending,
            limit,
        }
    }

    /// The next event; `None` once the body has ended, and after an error.
    pub async fn next(&mut self) -> Option<Result<Sse, EventError>> {
        match self.events.next().await? {
            Ok(event) => {
                self.pending.store(0, Ordering::Relaxed);
                Some(Ok(event))
            }
            Err(_) if self.pending.load(Ordering::Relaxed) >= self.limit => {
                Some(Err(EventError::TooLarge(self.limit)))
            }
            Err(err) => Some(Err(EventError::Failed(err.to_string()))),
        }
    }
}

#[cfg(test)]
mod tests;
