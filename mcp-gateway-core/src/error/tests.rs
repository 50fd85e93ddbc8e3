use super::redact_url;

#[test]
fn credentials_in_a_url_are_replaced() {
    assert_eq!(
        redact_url("http://user:secret@host:8080/mcp?x=1"),
        "http://***@host:8080/mcp?x=1"
    );
    assert_eq!(redact_url("https://token@host/mcp"), "https://***@host/mcp");
    // The last `@` of the authority ends the credentials; a password may hold one.
    assert_eq!(redact_url("http://u:p@ss@host/"), "http://***@host/");
    // One that does not parse is redacted all the same.
    assert_eq!(
        redact_url("http://u:secret@host:port/x"),
        "http://***@host:port/x"
    );
}

#[test]
fn a_url_without_credentials_is_unchanged() {
    for url in [
        "http://host/mcp",
        "http://host/path@with-at",
        "http://host/mcp?who=a@b",
        "http://host#a@b",
        "not a url",
    ] {
        assert_eq!(redact_url(url), url);
    }
}
