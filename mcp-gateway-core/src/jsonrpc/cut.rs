//! What can still be learned from a message too large to read: whether it answers one of the
//! gateway's requests, and which. Only its first and last bytes are kept when it is skipped, so
//! the caller waiting for it can be told at once instead of when its request times out.

use serde::de::{DeserializeOwned, IgnoredAny};

/// The id of the request that a cut-off message answers, found from its kept `head` and `tail`.
///
/// The head must show a response (a top-level `result` or `error` member before any `method`);
/// the id is read from the head when it comes before the large member (`{"jsonrpc","id",
/// "result"}`, as most SDKs write it), else from the tail when it is the last member
/// (`{"result",…,"id":7}`, as the TypeScript SDK writes it).
pub(crate) fn answered_id(head: &[u8], tail: &[u8]) -> Option<u64> {
    let mut rest = trim_start(head).strip_prefix(b"{")?;
    let (mut response, mut id) = (false, None);
    while let Some((key, after)) = next::<String>(rest) {
        let Some(after) = trim_start(after).strip_prefix(b":") else {
            break;
        };
        match key.as_str() {
            // A request or a notification from the upstream: its id is the upstream's own.
            "method" => return None,
            "result" | "error" => response = true,
            _ => {}
        }
        let after = if key == "id" {
            let Some((value, after)) = next::<serde_json::Value>(after) else {
                break;
            };
            id = value.as_u64();
            after
        } else {
            // The large member ends the walk: its value does not end within the head.
            let Some((IgnoredAny, after)) = next::<IgnoredAny>(after) else {
                break;
            };
            after
        };
        let Some(after) = trim_start(after).strip_prefix(b",") else {
            break;
        };
        rest = after;
    }
    if !response {
        return None;
    }
    id.or_else(|| last_member_id(tail))
}

/// The id when `"id": <number>` is the last member of the top-level object that `tail` ends.
fn last_member_id(tail: &[u8]) -> Option<u64> {
    let rest = trim_end(trim_end(tail).strip_suffix(b"}")?);
    let digits = rest.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    let (rest, number) = rest.split_at(rest.len() - digits);
    let id = std::str::from_utf8(number).ok()?.parse().ok()?;
    let rest = trim_end(trim_end(rest).strip_suffix(b":")?);
    let rest = trim_end(rest.strip_suffix(b"\"id\"")?);
    // A `,` (or the object's `{`) before the key: not the end of a string that holds `"id"`.
    matches!(rest.last(), Some(b',' | b'{')).then_some(id)
}

/// One JSON value at the start of `bytes` (after whitespace), and what follows it.
fn next<T: DeserializeOwned>(bytes: &[u8]) -> Option<(T, &[u8])> {
    let bytes = trim_start(bytes);
    let mut values = serde_json::Deserializer::from_slice(bytes).into_iter::<T>();
    let value = values.next()?.ok()?;
    Some((value, &bytes[values.byte_offset()..]))
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    &bytes[start..]
}

fn trim_end(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |end| end + 1);
    &bytes[..end]
}

#[cfg(test)]
mod tests;
