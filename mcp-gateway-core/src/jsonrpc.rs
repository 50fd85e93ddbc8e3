//! Raw JSON-RPC 2.0 framing. The forwarding path keeps every message as `serde_json::Value` so
//! that fields the gateway does not model (new spec fields, vendor `_meta`) pass through untouched;
//! rmcp's typed messages would drop them. An upstream's results are not even parsed: they stay the
//! upstream's JSON text ([`RawValue`]) from its response to the client's, so a large result costs
//! a scan and a copy rather than a tree built, written out and freed; so are a call's arguments on
//! the way up ([`Message`]).

mod cut;
mod message;

pub(crate) use cut::answered_id;
pub use message::{Message, Params};

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
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

/// One message received from a peer, sorted by kind. `R` is how a result is held: parsed (a
/// client's answers) or as the peer's own JSON text (an upstream's answers).
#[derive(Debug)]
pub enum Incoming<R = Value> {
    /// An answer to a request.
    Response {
        /// The id of the request it answers.
        id: Value,
        /// Its result, or its error.
        outcome: Result<R, JsonRpcError>,
    },
    /// A request, which expects an answer.
    Request {
        /// Its id.
        id: Value,
        /// Its method.
        method: String,
        /// Its params, if it has any.
        params: Option<Value>,
    },
    /// A notification, which expects none.
    Notification {
        /// Its method.
        method: String,
        /// Its params, if it has any.
        params: Option<Value>,
    },
    /// Not a JSON-RPC message, and why.
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
    sort(Envelope {
        id: object.remove("id"),
        method: object.remove("method"),
        params: object.remove("params"),
        result: object.remove("result"),
        error: object.remove("error"),
    })
}

/// Sorts a message by the members it has: a method and an id make a request, a method alone a
/// notification, an id alone a response (which needs a result or an error).
fn sort<R>(message: Envelope<R>) -> Incoming<R> {
    let method = match message.method {
        Some(Value::String(method)) => Some(method),
        Some(other) => return Incoming::Invalid(format!("method is not a string: {other}")),
        None => None,
    };
    let params = message.params;
    match (method, message.id) {
        (Some(method), Some(id)) => Incoming::Request { id, method, params },
        (Some(method), None) => Incoming::Notification { method, params },
        (None, Some(id)) => match (message.result, message.error) {
            (Some(result), _) => Incoming::Response {
                id,
                outcome: Ok(result),
            },
            (None, Some(error)) => Incoming::Response {
                id,
                outcome: Err(error_object(error)),
            },
            (None, None) => {
                Incoming::Invalid(format!("response {id} has neither result nor error"))
            }
        },
        (None, None) => Incoming::Invalid("message has neither method nor id".into()),
    }
}

/// The members of a JSON-RPC message; `R` is how its result is held (read from text, it is left
/// unparsed).
#[derive(Deserialize)]
#[serde(bound(deserialize = "R: Deserialize<'de>"))]
struct Envelope<R> {
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    method: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    params: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    result: Option<R>,
    #[serde(default, deserialize_with = "present")]
    error: Option<Value>,
}

/// A field that is there, even as `null` (`Option`'s own rule would read `null` as absent, and a
/// response's `id` or `result` may be `null`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    field: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(field).map(Some)
}

/// Splits a received message (or batch), as the peer wrote it, into classified messages; results
/// stay unparsed.
pub fn classify_raw(message: &RawValue) -> Vec<Incoming<Box<RawValue>>> {
    if message.get().trim_start().starts_with('[') {
        return match serde_json::from_str::<Vec<&RawValue>>(message.get()) {
            Ok(batch) => batch.into_iter().map(classify_raw_one).collect(),
            Err(err) => vec![Incoming::Invalid(format!("malformed batch: {err}"))],
        };
    }
    vec![classify_raw_one(message)]
}

/// Whether JSON text is an object. Checked before reading one into a struct: serde would also
/// read a struct from an array, by position.
pub(crate) fn is_object(json: &RawValue) -> bool {
    json.get().trim_start().starts_with('{')
}

/// The envelope of JSON text that is one object (see [`is_object`]), its result left as text.
fn envelope(text: &str) -> Option<Envelope<Box<RawValue>>> {
    text.trim_start()
        .starts_with('{')
        .then(|| serde_json::from_str(text).ok())
        .flatten()
}

fn classify_raw_one(message: &RawValue) -> Incoming<Box<RawValue>> {
    match envelope(message.get()) {
        Some(envelope) => sort(envelope),
        None => Incoming::Invalid(format!(
            "not a JSON-RPC object: {}",
            truncate(message.get(), 200)
        )),
    }
}

/// What an upstream's response carries: its result (unparsed) or its error.
pub type Outcome = Result<Box<RawValue>, JsonRpcError>;

/// The outcome the JSON text `message` carries if it is the response to the request with id `id`;
/// `None` for anything else (a request, a notification, another id, a batch, text that is not
/// JSON). The text is read once: the envelope straight from it, the result kept as text.
pub fn answer_to(message: &str, id: &Value) -> Option<Outcome> {
    match sort(envelope(message)?) {
        Incoming::Response {
            id: answered,
            outcome,
        } if answered == *id => Some(outcome),
        _ => None,
    }
}

/// A peer's `error` member as an error, or an internal error saying it is malformed.
fn error_object(error: Value) -> JsonRpcError {
    serde_json::from_value(error.clone()).unwrap_or_else(|_| {
        JsonRpcError::new(
            JsonRpcError::INTERNAL_ERROR,
            format!("malformed error object: {}", preview(&error)),
        )
    })
}

/// Parses JSON text the gateway forwards into a value, for callers that want to look inside.
pub(crate) fn parse(raw: &RawValue) -> Value {
    // Text that came in as a `RawValue` is valid JSON, and any valid JSON is a `Value`.
    serde_json::from_str(raw.get()).unwrap_or(Value::Null)
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

/// A response written out, its result given as JSON text: copied in, not re-encoded.
pub(crate) fn response_text(id: &Value, result: &str) -> String {
    let id = to_text(id);
    let mut text = String::with_capacity(result.len() + id.len() + 32);
    text.push_str(r#"{"jsonrpc":"2.0","id":"#);
    text.push_str(&id);
    text.push_str(r#","result":"#);
    text.push_str(result);
    text.push('}');
    text
}

/// A message written out as JSON text.
pub(crate) fn to_text(message: &impl Serialize) -> String {
    // Values, raw JSON and string-keyed maps of them always serialise; should that ever change,
    // the client gets `null` and the log says why, rather than the gateway stopping.
    serde_json::to_string(message).unwrap_or_else(|err| {
        tracing::error!(error = %err, "could not encode a message");
        "null".into()
    })
}

/// A message written out as JSON text.
pub(crate) fn encode(message: &impl Serialize) -> Box<RawValue> {
    // Values, raw JSON and string-keyed maps of them always serialise; should that ever change,
    // the client gets `null` and the log says why, rather than the gateway stopping.
    serde_json::value::to_raw_value(message).unwrap_or_else(|err| {
        tracing::error!(error = %err, "could not encode a message");
        RawValue::NULL.to_owned()
    })
}

/// JSON text on one line, for peers that read one message per line. Outside strings a line break
/// is only whitespace (inside, it is escaped), so it becomes a space. Text without one (nearly
/// all) is found so with a vectorised search and borrowed.
pub(crate) fn one_line(json: &str) -> Cow<'_, str> {
    if memchr::memchr2(b'\n', b'\r', json.as_bytes()).is_none() {
        return Cow::Borrowed(json);
    }
    Cow::Owned(json.replace(['\n', '\r'], " "))
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

#[cfg(test)]
mod tests;
