use futures::stream;

use super::*;

/// An event stream over `text`, delivered one byte per chunk so the limit is met exactly.
fn byte_by_byte(text: &str, limit: usize) -> EventStream {
    let chunks: Vec<std::io::Result<Bytes>> = text
        .bytes()
        .map(|byte| Ok(Bytes::copy_from_slice(&[byte])))
        .collect();
    EventStream::with_limit(stream::iter(chunks).boxed(), limit)
}

#[tokio::test]
async fn an_event_of_exactly_the_limit_is_read_and_the_count_starts_again() {
    let event = "data: 12345\n\n";
    let mut events = byte_by_byte(&event.repeat(3), event.len());
    for _ in 0..3 {
        let event = events
            .next()
            .await
            .expect("an event")
            .expect("within the limit");
        assert_eq!(event.data.as_deref(), Some("12345"));
    }
    assert!(events.next().await.is_none());
}

#[tokio::test]
async fn an_event_one_byte_past_the_limit_fails_the_stream() {
    let event = "data: 123456\n\n";
    let mut events = byte_by_byte(event, event.len() - 1);
    assert_eq!(
        events.next().await,
        Some(Err(EventError::TooLarge(event.len() - 1)))
    );
    assert!(events.next().await.is_none());
}

#[tokio::test]
async fn an_event_that_never_ends_fails_once_past_the_limit() {
    // An endless `data:` line in large chunks: the stream fails instead of buffering forever.
    let chunks = stream::once(async { Ok(Bytes::from_static(b"data: ")) })
        .chain(stream::repeat_with(|| Ok(Bytes::from(vec![b'x'; 1000]))));
    let mut events = EventStream::with_limit(chunks.boxed(), 10_000);
    assert_eq!(events.next().await, Some(Err(EventError::TooLarge(10_000))));
}

#[tokio::test]
async fn a_body_error_is_reported_as_such() {
    let chunks = stream::iter([
        Ok(Bytes::from_static(b"data: 1\n\n")),
        Err(std::io::Error::other("connection reset")),
    ]);
    let mut events = EventStream::with_limit(chunks.boxed(), 100);
    assert!(events.next().await.is_some_and(|event| event.is_ok()));
    let err = events
        .next()
        .await
        .expect("the error")
        .expect_err("an error");
    assert!(
        matches!(&err, EventError::Failed(text) if text.contains("connection reset")),
        "{err}"
    );
}
