//! Raw JSON-RPC 2.0 framing. The forwarding path keeps every message as `serde_json::Value` so
//! that fields the gateway does not model (new spec fields, vendor `_meta`) pass through untouched;
//! rmcp's typed messages would drop them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// A JSON-RPC error object, as sent by a peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonRpcError {
    /// The error code.
    pub code: i64,
    /// A short description.
    pub message: String,
    /// Extra information, if the peer sent any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl JsonRpcError {
    /// The input is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// The message is not a valid request.
    pub const INVALID_REQUEST: i64 = -32600;
    /// The method does not exist or is not available.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// The parameters are invalid.
    pub const INVALID_PARAMS: i64 = -32602;
    /// An internal error.
    pub const INTERNAL_ERROR: i64 = -32603;

    /// An error with a code and a message.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }
}

impl std::fmt::Display for JsonRpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

/// One message received from a peer, sorted by kind.
#[derive(Debug)]
pub(crate) enum Incoming {
    Response {
        id: Value,
        outcome: Result<Value, JsonRpcError>,
    },
    Request {
        id: Value,
        method: String,
        params: Option<Value>,
    },
    Notification {
        method: String,
        params: Option<Value>,
    },
    Invalid(String),
}

/// Splits a received JSON value (a message or a batch) into classified messages.
pub(crate) fn classify(value: Value) -> Vec<Incoming> {
    match value {
        Value::Array(batch) => batch.into_iter().map(classify_one).collect(),
        other => vec![classify_one(other)],
    }
}

fn classify_one(value: Value) -> Incoming {
    let Value::Object(mut object) = value else {
        return Incoming::Invalid(format!("not a JSON-RPC object: {}", preview(&value)));
    };
    let id = object.remove("id");
    let method = match object.remove("method") {
        Some(Value::String(method)) => Some(method),
        Some(other) => return Incoming::Invalid(format!("method is not a string: {other}")),
        None => None,
    };
    let params = object.remove("params");
    match (method, id) {
        (Some(method), Some(id)) => Incoming::Request { id, method, params },
        (Some(method), None) => Incoming::Notification { method, params },
        (None, Some(id)) => {
            if let Some(result) = object.remove("result") {
                Incoming::Response {
                    id,
                    outcome: Ok(result),
                }
            } else if let Some(error) = object.remove("error") {
                let error = serde_json::from_value(error.clone()).unwrap_or_else(|_| {
                    JsonRpcError::new(
                        JsonRpcError::INTERNAL_ERROR,
                        format!("malformed error object: {}", preview(&error)),
                    )
                });
                Incoming::Response {
                    id,
                    outcome: Err(error),
                }
            } else {
                Incoming::Invalid(format!("response {id} has neither result nor error"))
            }
        }
        (None, None) => Incoming::Invalid("message has neither method nor id".into()),
    }
}

/// What a response carries: its result or its error. Anything but a response is an error.
pub(crate) fn outcome(value: Value) -> Result<Value, JsonRpcError> {
    match classify_one(value) {
        Incoming::Response { outcome, .. } => outcome,
        Incoming::Invalid(reason) => Err(JsonRpcError::new(JsonRpcError::INTERNAL_ERROR, reason)),
        _ => Err(JsonRpcError::new(
            JsonRpcError::INTERNAL_ERROR,
            "the upstream's answer is not a response",
        )),
    }
}

/// A request message.
pub(crate) fn request(id: u64, method: &str, params: Option<Value>) -> Value {
    let mut message = Map::with_capacity(4);
    message.insert("jsonrpc".into(), "2.0".into());
    message.insert("id".into(), id.into());
    message.insert("method".into(), method.into());
    if let Some(params) = params {
        message.insert("params".into(), params);
    }
    Value::Object(message)
}

/// A notification message.
pub(crate) fn notification(method: &str, params: Option<Value>) -> Value {
    let mut message = Map::with_capacity(3);
    message.insert("jsonrpc".into(), "2.0".into());
    message.insert("method".into(), method.into());
    if let Some(params) = params {
        message.insert("params".into(), params);
    }
    Value::Object(message)
}

/// A successful response. Built field by field: `json!` would make a deep copy of `result` (it
/// goes through `to_value`), a cost that grows with every tool result and merged list.
pub(crate) fn response(id: Value, result: Value) -> Value {
    let mut message = Map::with_capacity(3);
    message.insert("jsonrpc".into(), "2.0".into());
    message.insert("id".into(), id);
    message.insert("result".into(), result);
    Value::Object(message)
}

/// An error response.
pub(crate) fn error_response(id: Value, error: &JsonRpcError) -> Value {
    let mut message = Map::with_capacity(3);
    message.insert("jsonrpc".into(), "2.0".into());
    message.insert("id".into(), id);
    message.insert("error".into(), json!(error));
    Value::Object(message)
}

/// A short, bounded rendering of a value for error messages.
pub(crate) fn preview(value: &Value) -> String {
    truncate(&value.to_string(), 200)
}

/// Cuts `text` to at most `max` bytes on a character boundary, marking the cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
