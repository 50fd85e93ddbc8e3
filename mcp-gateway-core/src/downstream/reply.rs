//! The reply to a client's message, written out as JSON text: a forwarded result stays the
//! upstream's own text on its way to the client.

use serde_json::Value;

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
