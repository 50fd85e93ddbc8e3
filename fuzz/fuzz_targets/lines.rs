//! An upstream's newline-delimited output (a stdio child, an in-process server), read by
//! `LineCodec` in chunks as a pipe delivers them. The first byte picks the line limit (1 to 64),
//! the second the chunk size (1 to 64); the rest is the stream.
//!
//! Holds: the lines are those of the whole stream split at `\n` (a `\r` before it dropped), each
//! line past the limit reported once as its first and last `limit` bytes, whatever the chunks;
//! between chunks the codec never holds more than the limit (and a `\r` that may end the line).

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mcp_gateway_core::fuzzing::{Line, LineCodec};
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let [limit, chunk, stream @ ..] = data else {
        return;
    };
    let limit = 1 + usize::from(limit % 64);
    let chunk = 1 + usize::from(chunk % 64);

    let mut codec = LineCodec::new(limit);
    let mut buffer = BytesMut::new();
    let mut lines = Vec::new();
    for piece in stream.chunks(chunk) {
        buffer.extend_from_slice(piece);
        while let Some(line) = codec.decode(&mut buffer).expect("decoding never fails") {
            lines.push(line);
        }
        // A last `\r` may be half of the line's `\r\n`, which the limit does not count.
        assert!(
            buffer.len() <= limit + 1,
            "{} bytes held with a limit of {limit}",
            buffer.len()
        );
    }
    while let Some(line) = codec.decode_eof(&mut buffer).expect("decoding never fails") {
        lines.push(line);
    }
    assert_eq!(
        lines,
        expected(stream, limit),
        "limit {limit}, chunks of {chunk}"
    );
});

/// The lines of the whole stream, read at once.
fn expected(stream: &[u8], limit: usize) -> Vec<Line> {
    let mut segments: Vec<&[u8]> = stream.split(|&byte| byte == b'\n').collect();
    // What follows the last `\n`: a last line without its end, if it is not empty.
    let last = segments.pop().filter(|last| !last.is_empty());
    let ended = segments
        .into_iter()
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line));
    ended
        .chain(last)
        .map(|line| {
            if line.len() > limit {
                Line::TooLong {
                    head: BytesMut::from(&line[..limit]),
                    tail: BytesMut::from(&line[line.len() - limit..]),
                }
            } else {
                Line::Complete(BytesMut::from(line))
            }
        })
        .collect()
}
