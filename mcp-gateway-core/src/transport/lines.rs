//! Newline-delimited JSON framing over any byte stream: the stdio transport's child pipes and the
//! in-process transport's in-memory pipe.

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::value::RawValue;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};

use super::{MAX_MESSAGE_BYTES, Outbound, TransportEvent};
use crate::error::Error;
use crate::jsonrpc::{Message, truncate};
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

/// Reads lines, parses each as JSON and forwards them; returns when the stream ends.
pub(crate) async fn read_lines<R>(reader: R, events: mpsc::Sender<TransportEvent>) -> Option<String>
where
    R: AsyncRead + Unpin,
{
    let mut lines = FramedRead::new(reader, LinesCodec::new_with_max_length(MAX_MESSAGE_BYTES));
    while let Some(line) = lines.next().await {
        let event = match line {
            Ok(line) if line.trim().is_empty() => continue,
            Ok(line) => match serde_json::from_str::<Box<RawValue>>(&line) {
                Ok(value) => TransportEvent::Message(value),
                Err(_) => TransportEvent::Garbage(truncate(&line, 200)),
            },
            Err(LinesCodecError::MaxLineLengthExceeded) => TransportEvent::Garbage(format!(
                "a line longer than {MAX_MESSAGE_BYTES} bytes was skipped"
            )),
            Err(LinesCodecError::Io(err)) => return Some(format!("read failed: {err}")),
        };
        if events.send(event).await.is_err() {
            return None;
        }
    }
    None
}
