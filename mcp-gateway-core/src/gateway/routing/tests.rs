use serde_json::value::RawValue;

use super::*;

#[test]
fn only_is_error_true_marks_a_tool_error() {
    let cases = [
        (r#"{"content":[],"isError":true}"#, true),
        (
            r#"{"isError":false,"content":[{"type":"text","text":"isError: true"}]}"#,
            false,
        ),
        (r#"{"content":[]}"#, false),
        (r#"{"isError":"true"}"#, false),
        ("[true]", false),
    ];
    for (text, expected) in cases {
        let result = RawValue::from_string(text.to_owned()).expect("JSON");
        assert_eq!(is_tool_error(&result), expected, "{text}");
    }
}
