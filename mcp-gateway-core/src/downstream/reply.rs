//! The reply to a client's message, written out as JSON text: a forwarded result stays the
//! upstream's own text on its way to the client. Also the JSON-RPC errors the gateway answers
//! with: its own refusals and the engine's errors.

use serde_json::{Value, json};

use super::RESOURCE_NOT_FOUND;
use crate::error::{Error, error_chain};
use crate::jsonrpc::{self, JsonRpcError};

/// A reply to a client's message, written out as JSON text.
#[derive(Debug)]
pub struct Reply {
    pub(super) json: String,
    pub(super) error_code: Option<i64>,
}

impl Reply {
    pub(super) fn error(id: Value, error: &JsonRpcError) -> Self {
        Self {
            json: jsonrpc::to_text(&jsonrpc::error_response(id, error)),
            error_code: Some(error.code),
        }
    }

    /// The reply as JSON text.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The reply as JSON text, owned.
    pub fn into_json(self) -> String {
        self.json
    }

    /// The reply read back as a value, for what carries values (a call's stream) or looks inside.
    pub fn to_value(&self) -> Value {
        // The gateway wrote it as JSON, so it reads back; `null` is never reached.
        serde_json::from_str(&self.json).unwrap_or(Value::Null)
    }

    /// The JSON-RPC error code, when the reply is one error response (not for a batch).
    pub fn error_code(&self) -> Option<i64> {
        self.error_code
    }
}

pub(super) fn internal(message: impl Into<String>) -> JsonRpcError {
    JsonRpcError::new(JsonRpcError::INTERNAL_ERROR, message)
}

/// The refusal of a request over a cap on requests in flight: `who` has `max` of them already,
/// the limit set by the config key `key`. Internal, as for a full session table: the request was
/// fine, the gateway is busy.
pub(super) fn busy(who: &str, max: usize, key: &str) -> JsonRpcError {
    internal(format!(
        "{who} already has {max} requests in flight, its {key}; try again once one is answered"
    ))
}

/// The JSON-RPC error a client sees for an engine error: an upstream's own error verbatim, the
/// spec's codes for unknown names, and internal errors that name the server and the cause.
pub fn to_jsonrpc(error: &Error, stateless: bool) -> JsonRpcError {
    match error {
        Error::Upstream { error, .. } => error.clone(),
        Error::UnknownTool(_) | Error::UnknownPrompt(_) => {
            JsonRpcError::new(JsonRpcError::INVALID_PARAMS, error.to_string())
        }
        Error::UnknownResource(uri) => {
            let code = if stateless {
                JsonRpcError::INVALID_PARAMS
            } else {
                RESOURCE_NOT_FOUND
            };
            JsonRpcError {
                code,
                message: format!("resource not found: {uri}"),
                data: Some(json!({ "uri": uri })),
            }
        }
        other => JsonRpcError {
            code: JsonRpcError::INTERNAL_ERROR,
            message: error_chain(other),
            data: other.server().map(|server| json!({ "server": server })),
        },
    }
}
