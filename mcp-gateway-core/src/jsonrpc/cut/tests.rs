use super::*;

/// The head and tail a skipped line of `text` keeps, `kept` bytes each.
fn cut(text: &str, kept: usize) -> Option<u64> {
    let bytes = text.as_bytes();
    answered_id(
        &bytes[..kept.min(bytes.len())],
        &bytes[bytes.len().saturating_sub(kept)..],
    )
}

fn big() -> String {
    "x".repeat(1000)
}

#[test]
fn the_id_is_read_from_the_head_when_it_comes_first() {
    let line = format!(
        r#"{{"jsonrpc": "2.0", "id": 42, "result": {{"text": "{}"}}}}"#,
        big()
    );
    assert_eq!(cut(&line, 100), Some(42));
    let error = format!(
        r#"{{"id":7,"error":{{"code":1,"message":"{}"}},"jsonrpc":"2.0"}}"#,
        big()
    );
    assert_eq!(cut(&error, 100), Some(7));
}

#[test]
fn the_id_is_read_from_the_tail_when_it_comes_last() {
    let line = format!(
        r#"{{"result":{{"text":"{}"}},"jsonrpc":"2.0","id":9}}"#,
        big()
    );
    assert_eq!(cut(&line, 100), Some(9));
    let spaced = format!("{{\"result\": \"{}\", \"id\" : 9 }}\r", big());
    assert_eq!(cut(&spaced, 100), Some(9));
}

#[test]
fn requests_and_nested_ids_are_not_answers() {
    // The upstream's own request: its id is not one of the gateway's.
    let request = format!(
        r#"{{"method":"sampling/createMessage","params":{{"t":"{}"}},"id":3}}"#,
        big()
    );
    assert_eq!(cut(&request, 100), None);
    // An `id` inside the result, or inside a string, is not the message's id.
    let nested = format!(r#"{{"result":{{"t":"{}","id":3}}}}"#, big());
    assert_eq!(cut(&nested, 100), None);
    let quoted = format!(r#"{{"result":"{}\",\"id\":3}}"}}"#, big());
    assert_eq!(cut(&quoted, 100), None);
    // No member that says it is an answer.
    let unknown = format!(r#"{{"id":3,"data":"{}"}}"#, big());
    assert_eq!(cut(&unknown, 100), None);
    assert_eq!(cut(&format!("[{}]", big()), 100), None);
    assert_eq!(cut(&big(), 100), None);
}
