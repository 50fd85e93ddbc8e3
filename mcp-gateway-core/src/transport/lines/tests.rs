use super::*;

/// Feeds `chunks` to a fresh codec one after the other, then ends the stream; returns every
/// frame, with complete lines as text.
fn frames(limit: usize, chunks: &[&[u8]]) -> Vec<String> {
    let mut codec = LineCodec::new(limit);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut push = |line: Line| {
        out.push(match line {
            Line::Complete(line) => String::from_utf8_lossy(&line).into_owned(),
            Line::TooLong { head, tail } => format!(
                "too long: {} … {}",
                String::from_utf8_lossy(&head),
                String::from_utf8_lossy(&tail)
            ),
        })
    };
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(line) = codec.decode(&mut buf).expect("never fails on data") {
            push(line);
        }
    }
    while let Some(line) = codec.decode_eof(&mut buf).expect("never fails on data") {
        push(line);
    }
    out
}

#[test]
fn lines_are_split_on_newlines_with_or_without_a_carriage_return() {
    assert_eq!(
        frames(100, &[b"one\r\ntw", b"o\n\nthree"]),
        ["one", "two", "", "three"]
    );
}

#[test]
fn a_line_of_the_limit_passes_and_one_byte_more_is_skipped_alone() {
    assert_eq!(
        frames(4, &[b"abcd\nabcde\nok\n"]),
        ["abcd", "too long: abcd … bcde", "ok"]
    );
}

#[test]
fn a_long_line_arriving_in_pieces_is_reported_once_and_skipped_to_its_end() {
    let chunks: [&[u8]; 5] = [b"0123", b"4567", b"89ab", b"cd\nnext", b"\n"];
    assert_eq!(frames(5, &chunks), ["too long: 01234 … 9abcd", "next"]);
}

#[test]
fn a_long_last_line_without_its_newline_is_reported_once() {
    assert_eq!(
        frames(3, &[b"ok\n", b"abcdef", b"ghij"]),
        ["ok", "too long: abc … hij"]
    );
}

/// Found by the `lines` fuzz target: a line of exactly the limit was reported too long when its
/// `\r\n` arrived split across two reads, though it passed when both came in one.
#[test]
fn a_line_of_the_limit_passes_however_its_crlf_is_split() {
    assert_eq!(frames(1, &[b"d\r\n"]), ["d"]);
    assert_eq!(frames(1, &[b"d\r", b"\n"]), ["d"]);
    assert_eq!(frames(4, &[b"ab", b"cd\r", b"\nok\n"]), ["abcd", "ok"]);
}

#[test]
fn a_last_line_past_the_limit_by_its_carriage_return_is_too_long() {
    // Without its `\n`, the `\r` is part of the line.
    assert_eq!(frames(1, &[b"d\r"]), ["too long: d … \r"]);
    assert_eq!(
        frames(1, &[b"ok\nd\r"]),
        ["too long: o … k", "too long: d … \r"]
    );
}

#[tokio::test]
async fn a_line_that_is_not_utf8_is_reported_and_the_next_one_is_read() {
    let input: &[u8] = b"\xff\xfe bad\n{\"jsonrpc\":\"2.0\",\"method\":\"ping\"}\n";
    let (events, mut received) = mpsc::channel(8);
    assert_eq!(read_lines(input, events).await, None);
    match received.recv().await {
        Some(TransportEvent::Garbage(text)) => {
            assert!(text.contains("not UTF-8") && text.contains("bad"), "{text}")
        }
        other => panic!("expected garbage, got {other:?}"),
    }
    match received.recv().await {
        Some(TransportEvent::Message(message)) => assert!(message.get().contains("ping")),
        other => panic!("expected the next message, got {other:?}"),
    }
}

#[test]
fn the_buffer_of_a_long_line_is_given_back_once_the_line_is_out() {
    let big = vec![b'x'; 4 << 20];
    // Skipped: past the limit, arriving before its newline.
    let mut codec = LineCodec::new(1024);
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&big);
    assert_eq!(codec.decode(&mut buf).expect("never fails"), None);
    buf.extend_from_slice(b"\nok\n");
    assert!(matches!(
        codec.decode(&mut buf),
        Ok(Some(Line::TooLong { .. }))
    ));
    assert_eq!(
        codec.decode(&mut buf).expect("never fails"),
        Some(Line::Complete(BytesMut::from("ok")))
    );
    buf.reserve(1);
    assert!(buf.capacity() < 1 << 20, "{} bytes kept", buf.capacity());

    // Read: within the limit, handed on and dropped by its reader.
    let mut codec = LineCodec::new(8 << 20);
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&big);
    buf.extend_from_slice(b"\nnext");
    let line = codec.decode(&mut buf).expect("never fails");
    assert!(matches!(line, Some(Line::Complete(ref line)) if line.len() == big.len()));
    drop(line);
    buf.reserve(1);
    assert!(buf.capacity() < 1 << 20, "{} bytes kept", buf.capacity());
}
