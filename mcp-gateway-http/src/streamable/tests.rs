use super::*;

#[test]
fn param_headers_are_literal_unless_fully_wrapped_base64() {
    assert_eq!(
        decode_param("=?base64?SGVsbG8=?=").as_deref(),
        Some("Hello")
    );
    assert_eq!(decode_param("SGVsbG8=").as_deref(), Some("SGVsbG8="));
    assert_eq!(
        decode_param("=?base64?SGVsbG8=").as_deref(),
        Some("=?base64?SGVsbG8=")
    );
    // Missing padding and characters outside the alphabet are errors, not literals.
    assert_eq!(decode_param("=?base64?SGVsbG8?="), None);
    assert_eq!(decode_param("=?base64?SGVs!!!bG8=?="), None);
}
