//! The documented default memory file.

use std::ffi::OsString;
use std::path::PathBuf;

use super::memory_file_under;

fn os(value: &str) -> Option<OsString> {
    Some(OsString::from(value))
}

#[test]
fn the_default_file_follows_the_xdg_rules() {
    assert_eq!(
        memory_file_under(os("/data"), os("/home/ada")),
        PathBuf::from("/data/mcp-gateway/memory.jsonl")
    );
    assert_eq!(
        memory_file_under(None, os("/home/ada")),
        PathBuf::from("/home/ada/.local/share/mcp-gateway/memory.jsonl")
    );
    // Relative values do not count.
    assert_eq!(
        memory_file_under(os("relative"), os("/home/ada")),
        PathBuf::from("/home/ada/.local/share/mcp-gateway/memory.jsonl")
    );
    assert_eq!(
        memory_file_under(None, os("")),
        PathBuf::from("memory.jsonl")
    );
    assert_eq!(memory_file_under(None, None), PathBuf::from("memory.jsonl"));
}
