//! Unit tests of the client's answer parsing (no sockets, no timing).

use super::*;

fn answer(content_type: &str, status: StatusCode, body: &str) -> Answer {
    Answer {
        status,
        content_type: Some(HeaderValue::from_str(content_type).expect("valid header")),
        session: None,
        body: Bytes::from(body.to_owned()),
    }
}

#[test]
fn reads_a_json_answer() {
    let body = r#"{"jsonrpc":"2.0","id":7,"result":{"content":[]}}"#;
    let result = read_answer(&answer("application/json", StatusCode::OK, body), 7);
    assert_eq!(result.ok(), Some(json!({ "content": [] })));
}

#[test]
fn reads_an_sse_answer_after_a_priming_event_and_a_notification() {
    let body = "id: 0\r\nretry: 3000\r\ndata:\r\n\r\n: keep-alive\n\n\
                event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n\
                event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"ok\":true}}\n\n";
    let result = read_answer(&answer("text/event-stream", StatusCode::OK, body), 3);
    assert_eq!(result.ok(), Some(json!({ "ok": true })));
}

#[test]
fn a_jsonrpc_error_and_a_missing_answer_are_errors() {
    let body = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"no such tool"}}"#;
    let result = read_answer(&answer("application/json", StatusCode::OK, body), 1);
    assert!(matches!(result, Err(ClientError::Rpc { code: -32602, .. })));
    let result = read_answer(
        &answer("text/event-stream", StatusCode::OK, "data: \n\n"),
        1,
    );
    assert!(matches!(result, Err(ClientError::BadAnswer(_))));
    let result = read_answer(&answer("text/plain", StatusCode::NOT_FOUND, "gone"), 1);
    assert!(matches!(
        result,
        Err(ClientError::Status(StatusCode::NOT_FOUND, _))
    ));
}

#[test]
fn multi_line_data_is_joined() {
    assert_eq!(sse_data(b"data: a\ndata: b\n\ndata: c"), ["a\nb", "c"]);
}

#[test]
fn parses_an_endpoint() {
    let endpoint = Endpoint::parse("http://127.0.0.1:4101/mcp").expect("valid url");
    assert_eq!(endpoint.authority, "127.0.0.1:4101");
    assert_eq!(endpoint.path, "/mcp");
    assert!(Endpoint::parse("https://127.0.0.1/mcp").is_err());
}
