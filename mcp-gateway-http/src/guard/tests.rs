use super::*;

fn loopback() -> Vec<String> {
    vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()]
}

#[test]
fn hosts_are_matched_by_name_whatever_the_port() {
    assert!(host_allowed("127.0.0.1:4101", &loopback()));
    assert!(host_allowed("LOCALHOST", &loopback()));
    assert!(host_allowed("[::1]:80", &loopback()));
    assert!(!host_allowed("evil.example.com", &loopback()));
    assert!(!host_allowed(
        "127.0.0.1.evil.example.com:4101",
        &loopback()
    ));
}

#[test]
fn origins_are_matched_by_their_host() {
    assert!(origin_allowed("http://localhost:6274", &loopback()));
    assert!(!origin_allowed("http://evil.example.com", &loopback()));
    assert!(!origin_allowed("null", &loopback()));
}

#[test]
fn the_bearer_scheme_is_case_insensitive_and_the_token_exact() {
    assert_eq!(bearer_token("Bearer abc"), Some("abc"));
    assert_eq!(bearer_token("bEaReR  abc"), Some("abc"));
    assert_eq!(bearer_token("Bearer abc "), Some("abc "));
    assert_eq!(bearer_token("Bearer "), None);
    assert_eq!(bearer_token("Basic abc"), None);
    assert_eq!(bearer_token("Bearerabc"), None);
}
