//! Newline-delimited JSON framing over any byte stream: the stdio transport's child pipes and the
//! in-process transport's in-memory pipe.
//!
//! Lines are read as bytes by [`LineCodec`], which never fails on what a peer writes: a line that
//! is not UTF-8 or is too long is reported and skipped, and the next line is read as usual.
//! (tokio-util's `LinesCodec` fails on either, and a framed stream ends at its first error, which
//! left a stdio upstream deaf until it was restarted.)

use async_trait::async_trait;
use bytes::BytesMut;
use futures::StreamExt;
use serde_json::value::RawValue;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::codec::{Decoder, FramedRead};

use super::{MAX_MESSAGE_BYTES, Outbound, TransportEvent};
use crate::error::Error;
use crate::jsonrpc::{Message, answered_id, truncate};
use crate::spec::ServerId;

/// Messages queued for the writer task.
const OUTBOUND_CAPACITY: usize = 256;

/// Writes messages as lines, from a task that owns the writer.
pub(crate) struct LineWriter {
    server: ServerId,
    /// `None` once closed: dropping the last sender ends the writer, which closes the stream.
    queue: std::sync::Mutex<Option<mpsc::Sender<Vec<u8>>>>,
}

impl LineWriter {
    /// Spawns the writer task. It ends when every sender is gone or a write fails.
    pub(crate) fn spawn<W>(server: ServerId, mut writer: W) -> Self
    where
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (queue, mut pending) = mpsc::channel::<Vec<u8>>(OUTBOUND_CAPACITY);
        let task_server = server.clone();
        tokio::spawn(async move {
            while let Some(line) = pending.recv().await {
                let written = async {
                    writer.write_all(&line).await?;
                    // Drain whatever else is queued before paying for a flush.
                    while let Ok(more) = pending.try_recv() {
                        writer.write_all(&more).await?;
                    }
                    writer.flush().await
                };
                if let Err(err) = written.await {
                    tracing::debug!(server = %task_server, error = %err, "upstream writer stopped");
                    break;
                }
            }
            let _ = writer.shutdown().await;
        });
        Self {
            server,
            queue: std::sync::Mutex::new(Some(queue)),
        }
    }

    fn sender(&self) -> Option<mpsc::Sender<Vec<u8>>> {
        self.queue.lock().ok().and_then(|queue| queue.clone())
    }
}

#[async_trait]
impl Outbound for LineWriter {
    async fn send(&self, message: Message) -> Result<(), Error> {
        let mut line = serde_json::to_vec(&message).map_err(|err| {
            Error::transport_caused(&self.server, "could not encode message", err)
        })?;
        line.push(b'\n');
        let stopped = || Error::transport(&self.server, "the connection's writer has stopped");
        let queue = self.sender().ok_or_else(stopped)?;
        queue.send(line).await.map_err(|_| stopped())
    }

    async fn close(&self) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.take();
        }
    }
}

/// How much of a bad line is quoted when it is reported.
const QUOTED_BYTES: usize = 200;

/// Reads lines, parses each as JSON and forwards them; returns when the stream ends, with the
/// reason if reading failed.
pub(crate) async fn read_lines<R>(reader: R, events: mpsc::Sender<TransportEvent>) -> Option<String>
where
    R: AsyncRead + Unpin,
{
    let mut lines = FramedRead::new(reader, LineCodec::new(MAX_MESSAGE_BYTES));
    while let Some(line) = lines.next().await {
        let event = match line {
            Ok(Line::Complete(line)) => match std::str::from_utf8(&line) {
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => match serde_json::from_str::<Box<RawValue>>(text) {
                    Ok(value) => TransportEvent::Message(value),
                    Err(_) => TransportEvent::Garbage(truncate(text, QUOTED_BYTES)),
                },
                Err(_) => TransportEvent::Garbage(format!(
                    "a line that is not UTF-8 was skipped: {}",
                    quote(&line)
                )),
            },
            Ok(Line::TooLong { head, tail }) => TransportEvent::TooLong {
                detail: format!(
                    "a line longer than {MAX_MESSAGE_BYTES} bytes was skipped: {}",
                    quote(&head)
                ),
                answer_to: answered_id(&head, &tail),
            },
            Err(err) => return Some(format!("read failed: {err}")),
        };
        if events.send(event).await.is_err() {
            return None;
        }
    }
    None
}

/// The start of a bad line, readable whatever its bytes.
pub(crate) fn quote(line: &[u8]) -> String {
    let head = &line[..line.len().min(QUOTED_BYTES)];
    truncate(&String::from_utf8_lossy(head), QUOTED_BYTES)
}

/// One frame of a newline-delimited stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line, without its `\n` (or `\r\n`), as raw bytes: whether it is text is the reader's
    /// concern.
    Complete(BytesMut),
    /// A line longer than the limit, reported at its end (or the stream's): its first and last
    /// bytes, at most [`KEPT_BYTES`] and the limit each. The rest of it was skipped.
    TooLong {
        /// The line's first bytes.
        head: BytesMut,
        /// The line's last bytes.
        tail: BytesMut,
    },
}

/// How much of a skipped line's start and end is kept: enough to quote it and to find which
/// request it answers.
const KEPT_BYTES: usize = 4096;

/// A read buffer that grew past this for one long line is given back once the line is out: it
/// would otherwise stay allocated for the connection's life (57 MiB after one answer of 100 MB
/// was skipped, in the isolation benchmark).
const KEPT_CAPACITY: usize = 1 << 20;

/// Splits bytes into lines of at most `limit` bytes. It fails only when reading does; a line
/// past the limit is discarded up to its end as it arrives, so memory stays bounded, and is
/// reported once as [`Line::TooLong`] when it ends; the next line is read as usual. A line's
/// closing `\r\n` is not counted, however its bytes arrive.
pub struct LineCodec {
    limit: usize,
    /// The kept start and the end seen so far of a line past the limit, while it is skipped.
    skipped: Option<(BytesMut, BytesMut)>,
    /// How much of the buffer is already known to hold no `\n`.
    searched: usize,
}

impl LineCodec {
    /// A codec for lines of at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            skipped: None,
            searched: 0,
        }
    }

    fn kept(&self) -> usize {
        self.limit.min(KEPT_BYTES)
    }

    /// Moves `bytes`, a part of a line past the limit, into what is kept of it.
    fn skip(&mut self, bytes: &[u8]) {
        let kept = self.kept();
        let (_, tail) = self.skipped.get_or_insert_with(|| {
            (
                BytesMut::from(&bytes[..kept.min(bytes.len())]),
                BytesMut::new(),
            )
        });
        tail.extend_from_slice(&bytes[bytes.len().saturating_sub(kept)..]);
        if tail.len() > kept {
            let _ = tail.split_to(tail.len() - kept);
        }
    }
}

impl Decoder for LineCodec {
    type Item = Line;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Line>, std::io::Error> {
        let Some(offset) = memchr::memchr(b'\n', &buf[self.searched..]) else {
            // A `\r` at the end may be the first half of the line's `\r\n`, which is not
            // counted: whether a line fits must not depend on how its bytes arrived.
            let pending_cr = usize::from(buf.last() == Some(&b'\r'));
            if self.skipped.is_some() || buf.len() > self.limit + pending_cr {
                // The `\r` stays: it belongs to the line's end if a `\n` follows.
                let held = buf.len() - pending_cr;
                self.skip(&buf[..held]);
                if buf.capacity() > KEPT_CAPACITY {
                    // Copied out: what is left must not keep the large allocation alive.
                    *buf = BytesMut::from(&buf[held..]);
                } else {
                    let _ = buf.split_to(held);
                }
                self.searched = 0;
            } else {
                self.searched = buf.len();
            }
            return Ok(None);
        };
        let end = self.searched + offset;
        self.searched = 0;
        let mut line = buf.split_to(end + 1);
        if end >= KEPT_CAPACITY {
            // The rest is copied out, so the line's allocation goes when the line does.
            *buf = BytesMut::from(&buf[..]);
        }
        line.truncate(end);
        if line.last() == Some(&b'\r') {
            line.truncate(end - 1);
        }
        if self.skipped.is_some() || line.len() > self.limit {
            self.skip(&line);
            return Ok(self
                .skipped
                .take()
                .map(|(head, tail)| Line::TooLong { head, tail }));
        }
        Ok(Some(Line::Complete(line)))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Line>, std::io::Error> {
        if let Some(line) = self.decode(buf)? {
            return Ok(Some(line));
        }
        // A last line without its `\n`: a last `\r` is part of it, and may take it past the
        // limit.
        self.searched = 0;
        if self.skipped.is_some() || buf.len() > self.limit {
            self.skip(buf);
            buf.clear();
            return Ok(self
                .skipped
                .take()
                .map(|(head, tail)| Line::TooLong { head, tail }));
        }
        if buf.is_empty() {
            return Ok(None);
        }
        Ok(Some(Line::Complete(buf.split())))
    }
}

#[cfg(test)]
mod tests;
