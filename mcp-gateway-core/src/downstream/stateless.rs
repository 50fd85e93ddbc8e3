//! What the stateless 2026-07-28 revision asks of every request and result: the `_meta` checks
//! made whatever the transport, and the members the gateway adds to a result where the upstream
//! (perhaps a session-era one) did not write them, appended to a forwarded result's text without
//! parsing it.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::{UNSUPPORTED_PROTOCOL_VERSION, server_info};
use crate::jsonrpc::{self, JsonRpcError};
use crate::upstream::STATELESS_VERSION;

/// The `_meta` key naming a stateless request's protocol version.
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// The `_meta` key carrying a stateless request's client capabilities.
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// Whether a message reads as a stateless 2026-07-28 request: it names a version in `_meta` (and
/// is not an `initialize`), or it is `server/discover`.
pub fn is_stateless_message(message: &Value) -> bool {
    message["method"] == "server/discover"
        || (message["method"] != "initialize"
            && params_meta(message).is_some_and(|meta| meta.get(META_PROTOCOL_VERSION).is_some()))
}

/// `params._meta` of a message. Read with `get`, not `pointer`, which allocates a string per path
/// segment: these lookups run on every request.
fn params_meta(message: &Value) -> Option<&Value> {
    message.get("params")?.get("_meta")
}

/// The checks 2026-07-28 makes of every request, whatever the transport: `_meta` must carry the
/// protocol version and client capabilities, and the version must be one the gateway speaks.
pub fn check_stateless_meta(message: &Value) -> Result<(), JsonRpcError> {
    if message.get("id").is_none() {
        return Ok(());
    }
    let meta = params_meta(message);
    let version = meta
        .and_then(|m| m.get(META_PROTOCOL_VERSION))
        .and_then(Value::as_str);
    let capabilities = meta
        .and_then(|m| m.get(META_CLIENT_CAPABILITIES))
        .filter(|c| c.is_object());
    let (Some(version), Some(_)) = (version, capabilities) else {
        return Err(JsonRpcError::new(
            JsonRpcError::INVALID_PARAMS,
            format!(
                "params._meta must carry `{META_PROTOCOL_VERSION}` and `{META_CLIENT_CAPABILITIES}` in 2026-07-28"
            ),
        ));
    };
    if version != STATELESS_VERSION {
        return Err(JsonRpcError {
            code: UNSUPPORTED_PROTOCOL_VERSION,
            message: format!("unsupported protocol version `{version}`"),
            data: Some(json!({ "supported": [STATELESS_VERSION], "requested": version })),
        });
    }
    Ok(())
}

/// [`server_info`] written out once, for the results that are forwarded as text.
fn encoded_server_info() -> &'static RawValue {
    static ENCODED: OnceLock<Box<RawValue>> = OnceLock::new();
    ENCODED.get_or_init(|| jsonrpc::encode(&server_info()))
}

/// The members 2026-07-28 requires of a `method` result, with the values the gateway gives them
/// where the upstream (perhaps session era) did not; `_meta.serverInfo` comes on top.
fn stateless_defaults(method: &str) -> Vec<(&'static str, Value)> {
    let mut defaults = vec![("resultType", Value::from("complete"))];
    if method.ends_with("/list") || method == "resources/read" || method == "server/discover" {
        defaults.push(("ttlMs", 0.into()));
        defaults.push(("cacheScope", "private".into()));
    }
    defaults
}

/// Adds what 2026-07-28 requires of every result, where the upstream (perhaps session era) did not.
pub(crate) fn stateless_result(method: &str, result: &mut Value) {
    let Value::Object(result) = result else {
        return;
    };
    for (key, value) in stateless_defaults(method) {
        result.entry(key).or_insert(value);
    }
    let meta = result
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        meta.insert("io.modelcontextprotocol/serverInfo".into(), server_info());
    }
}

/// [`stateless_result`] for a forwarded result. Without a `_meta` of the upstream's (the common
/// case) the missing members are appended to its text after one scan for which are there.
pub(crate) fn stateless_raw_result(method: &str, result: Box<RawValue>) -> String {
    /// Which of the members the gateway may add are there already.
    #[derive(serde::Deserialize)]
    struct Present {
        #[serde(rename = "resultType")]
        result_type: Option<serde::de::IgnoredAny>,
        #[serde(rename = "ttlMs")]
        ttl_ms: Option<serde::de::IgnoredAny>,
        #[serde(rename = "cacheScope")]
        cache_scope: Option<serde::de::IgnoredAny>,
        #[serde(rename = "_meta")]
        meta: Option<serde::de::IgnoredAny>,
    }
    impl Present {
        fn has(&self, key: &str) -> bool {
            match key {
                "resultType" => self.result_type.is_some(),
                "ttlMs" => self.ttl_ms.is_some(),
                "cacheScope" => self.cache_scope.is_some(),
                _ => false,
            }
        }
    }
    let present = jsonrpc::is_object(&result)
        .then(|| serde_json::from_str::<Present>(result.get()).ok())
        .flatten();
    let Some(present) = present else {
        // Not an object: nothing to add to.
        return String::from(Box::<str>::from(result));
    };
    if present.meta.is_some() {
        return stateless_split_result(method, &result);
    }
    let mut text = String::from(Box::<str>::from(result));
    text.truncate(text.trim_end().len());
    // The closing brace goes; the object is empty if only its opening brace is left.
    text.pop();
    let mut empty = text.trim_end() == "{";
    let mut append = |key: &str, value: &str| {
        if !empty {
            text.push(',');
        }
        empty = false;
        text.push('"');
        text.push_str(key);
        text.push_str("\":");
        text.push_str(value);
    };
    for (key, value) in stateless_defaults(method) {
        if !present.has(key) {
            append(key, &jsonrpc::to_text(&value));
        }
    }
    let meta = format!(
        "{{\"io.modelcontextprotocol/serverInfo\":{}}}",
        encoded_server_info().get()
    );
    append("_meta", &meta);
    text.push('}');
    text
}

/// [`stateless_raw_result`] for a result with a `_meta` of its own: its top level and `_meta`
/// are split into members, each left as the upstream wrote it, and written out again with the
/// gateway's members added. A `_meta` that is not an object is left as it is, as
/// [`stateless_result`] does.
fn stateless_split_result(method: &str, result: &RawValue) -> String {
    let Ok(mut members) = serde_json::from_str::<BTreeMap<String, &RawValue>>(result.get()) else {
        return result.get().to_owned();
    };
    let defaults: Vec<(&str, Box<RawValue>)> = stateless_defaults(method)
        .into_iter()
        .filter(|(key, _)| !members.contains_key(*key))
        .map(|(key, value)| (key, jsonrpc::encode(&value)))
        .collect();
    let meta = members
        .get("_meta")
        .filter(|meta| jsonrpc::is_object(meta))
        .and_then(|meta| serde_json::from_str::<BTreeMap<String, &RawValue>>(meta.get()).ok())
        .map(|mut fields| {
            fields.insert(
                "io.modelcontextprotocol/serverInfo".into(),
                encoded_server_info(),
            );
            jsonrpc::encode(&fields)
        });
    for (key, value) in &defaults {
        members.insert((*key).to_owned(), value);
    }
    if let Some(meta) = &meta {
        members.insert("_meta".into(), meta);
    }
    jsonrpc::to_text(&members)
}
