//! An upstream's server-sent events (a Streamable HTTP answer or GET stream, a legacy SSE
//! stream), read by `EventStream` in chunks as the body delivers them. The first byte picks the
//! event size cap (1 to 256 bytes), the second the chunk size (1 to 64); the rest is the body.
//!
//! Holds: the events are those of the whole body read at once, whatever the chunks, up to an
//! event that grows past the cap, which ends the stream; no event read is larger than the cap
//! plus two chunks (the bytes after the previous event in its last chunk, and the chunk that
//! crossed the cap); nothing follows an error.

#![no_main]

use bytes::Bytes;
use futures::StreamExt;
use futures::executor::block_on;
use libfuzzer_sys::fuzz_target;
use mcp_gateway_core::fuzzing::{EventError, EventStream};
use sse_stream::Sse;

fuzz_target!(|data: &[u8]| {
    let [cap, chunk, body @ ..] = data else {
        return;
    };
    let cap = 1 + usize::from(*cap);
    let chunk = 1 + usize::from(chunk % 64);

    let (events, error) = read(body, chunk, cap);
    for event in &events {
        assert!(
            size(event) <= cap + 2 * chunk,
            "an event of {} bytes read with a cap of {cap} and chunks of {chunk}",
            size(event)
        );
    }
    let (whole, whole_error) = read(body, body.len().max(1), usize::MAX);
    assert!(
        !matches!(whole_error, Some(EventError::TooLarge(_))),
        "no cap, yet too large"
    );
    if matches!(error, Some(EventError::TooLarge(_))) {
        assert!(
            whole.starts_with(&events),
            "events read before the cap differ from the body read at once (chunks of {chunk})"
        );
    } else {
        assert_eq!(events, whole, "chunks of {chunk} change the events");
        assert_eq!(
            error.is_some(),
            whole_error.is_some(),
            "chunks of {chunk} change the ending"
        );
    }
});

/// Every event of `body` delivered in chunks of `chunk` bytes, and the error that ended them.
fn read(body: &[u8], chunk: usize, cap: usize) -> (Vec<Sse>, Option<EventError>) {
    let chunks: Vec<std::io::Result<Bytes>> = body
        .chunks(chunk)
        .map(|piece| Ok(Bytes::copy_from_slice(piece)))
        .collect();
    let mut stream = EventStream::with_limit(futures::stream::iter(chunks).boxed(), cap);
    let mut events = Vec::new();
    block_on(async {
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => events.push(event),
                Err(error) => {
                    assert!(stream.next().await.is_none(), "something after an error");
                    return (events, Some(error));
                }
            }
        }
        (events, None)
    })
}

/// What an event holds, in bytes.
fn size(event: &Sse) -> usize {
    [&event.data, &event.event, &event.id]
        .into_iter()
        .flatten()
        .map(String::len)
        .sum()
}
