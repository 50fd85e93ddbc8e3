//! Routing a client's call to the upstream that owns it: tools, resources, prompts and
//! completions, each forwarded with only the fields the gateway must rewrite, and every tool call
//! reported as started and finished on the event bus.

use std::time::Instant;

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::Gateway;
use crate::error::Error;
use crate::events::{CallOutcome, EventBus, GatewayEvent};
use crate::jsonrpc::{self, Params};
use crate::spec::ServerId;
use crate::upstream::RequestOptions;

impl Gateway {
    /// Forwards a client's `completion/complete` params to the owner of the prompt or resource
    /// they refer to; a prompt reference's `name` is rewritten to the upstream's name. The result
    /// is the upstream's JSON, unparsed.
    pub async fn forward_completion(
        &self,
        params: impl Into<Params>,
        options: &RequestOptions,
    ) -> Result<Box<RawValue>, Error> {
        let params = params.into();
        let reference = &params.value["ref"];
        let (upstream, params) = match reference["type"].as_str() {
            Some("ref/prompt") => {
                let name = reference["name"].as_str().unwrap_or_default();
                let catalog = self.catalog();
                let entry = catalog
                    .prompt(name)
                    .ok_or_else(|| Error::UnknownPrompt(name.to_owned()))?;
                let upstream = self.upstream(entry.server.as_str())?;
                let mut params = params.clone();
                params.value["ref"]["name"] = Value::String(entry.upstream_name.clone());
                (upstream, params)
            }
            _ => {
                let uri = reference["uri"].as_str().unwrap_or_default();
                (self.resource_upstream(uri)?, params)
            }
        };
        upstream
            .request_raw("completion/complete", Some(params), options)
            .await
    }

    /// Calls a tool by its exposed name.
    pub async fn call_tool(&self, name: &str, arguments: Value) -> Result<Value, Error> {
        let params = json!({ "name": name, "arguments": arguments });
        let result = self
            .forward_tool_call(params, &RequestOptions::default())
            .await?;
        Ok(jsonrpc::parse(&result))
    }

    /// Forwards a client's `tools/call` params: only `name` is rewritten to the upstream's name;
    /// `arguments` (as text, if they are held so), `_meta` and any other field pass through. The
    /// result is the upstream's JSON, unparsed.
    pub async fn forward_tool_call(
        &self,
        params: impl Into<Params>,
        options: &RequestOptions,
    ) -> Result<Box<RawValue>, Error> {
        let mut params = params.into();
        let catalog = self.catalog();
        let name = params.value["name"].as_str().unwrap_or_default();
        let entry = catalog
            .tool(name)
            .ok_or_else(|| Error::UnknownTool(name.to_owned()))?;
        let exposed = name.to_owned();
        let upstream = self.upstream(entry.server.as_str())?;
        params.value["name"] = Value::String(entry.upstream_name.clone());
        let param_headers = param_headers(&entry.definition, &params);
        let with_headers;
        let options = if param_headers.is_empty() {
            options
        } else {
            let mut extended = options.clone();
            extended.headers.extend(param_headers);
            with_headers = extended;
            &with_headers
        };
        self.inner.events.emit(GatewayEvent::ToolCallStarted {
            server: entry.server.clone(),
            tool: exposed.clone(),
        });
        let mut finished = CallFinished {
            events: &self.inner.events,
            server: &entry.server,
            tool: exposed,
            started: Instant::now(),
            outcome: None,
        };
        let result = upstream
            .request_raw("tools/call", Some(params), options)
            .await;
        finished.outcome = Some(match &result {
            Ok(result) if is_tool_error(result) => CallOutcome::ToolError,
            Ok(_) => CallOutcome::Ok,
            Err(err) => CallOutcome::Failed(err.to_string()),
        });
        result
    }

    /// Reads a resource from the server that owns its URI.
    pub async fn read_resource(&self, uri: &str) -> Result<Value, Error> {
        let result = self
            .forward_resource_read(json!({ "uri": uri }), &RequestOptions::default())
            .await?;
        Ok(jsonrpc::parse(&result))
    }

    /// Forwards a client's `resources/read` params unchanged to the owner of `uri`. The result is
    /// the upstream's JSON, unparsed.
    pub async fn forward_resource_read(
        &self,
        params: impl Into<Params>,
        options: &RequestOptions,
    ) -> Result<Box<RawValue>, Error> {
        let params = params.into();
        let uri = params.value["uri"].as_str().unwrap_or_default();
        let upstream = self.resource_upstream(uri)?;
        upstream
            .request_raw("resources/read", Some(params), options)
            .await
    }

    /// Gets a prompt by its exposed name.
    pub async fn get_prompt(
        &self,
        name: &str,
        arguments: Map<String, Value>,
    ) -> Result<Value, Error> {
        let params = json!({ "name": name, "arguments": arguments });
        let result = self
            .forward_prompt_get(params, &RequestOptions::default())
            .await?;
        Ok(jsonrpc::parse(&result))
    }

    /// Forwards a client's `prompts/get` params with only `name` rewritten. The result is the
    /// upstream's JSON, unparsed.
    pub async fn forward_prompt_get(
        &self,
        params: impl Into<Params>,
        options: &RequestOptions,
    ) -> Result<Box<RawValue>, Error> {
        let mut params = params.into();
        let catalog = self.catalog();
        let name = params.value["name"].as_str().unwrap_or_default();
        let entry = catalog
            .prompt(name)
            .ok_or_else(|| Error::UnknownPrompt(name.to_owned()))?;
        let upstream = self.upstream(entry.server.as_str())?;
        params.value["name"] = Value::String(entry.upstream_name.clone());
        upstream
            .request_raw("prompts/get", Some(params), options)
            .await
    }
}

/// The 2026-07-28 `Mcp-Param-{X}` headers a tool call carries: one per argument whose schema
/// names `x-mcp-header: X`, the value literal when it is plain visible ASCII and
/// `=?base64?…?=` otherwise (SEP-2243). Servers check them against the body.
fn param_headers(tool: &Value, params: &Params) -> Vec<(String, String)> {
    let Some(properties) = tool["inputSchema"]["properties"].as_object() else {
        return Vec::new();
    };
    let mut headed = properties
        .iter()
        .filter_map(|(parameter, schema)| Some((parameter, schema["x-mcp-header"].as_str()?)))
        .peekable();
    // Arguments held as text are parsed only for a tool that has such parameters.
    if headed.peek().is_none() {
        return Vec::new();
    }
    let arguments = params.arguments();
    headed
        .filter_map(|(parameter, suffix)| {
            let value = match arguments.get(parameter)? {
                Value::Null => return None,
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            let plain =
                value.bytes().all(|b| b.is_ascii_graphic() || b == b' ') && value.trim() == value;
            let value = if plain {
                value
            } else {
                use base64::Engine;
                let encoded = base64::engine::general_purpose::STANDARD.encode(value);
                format!("=?base64?{encoded}?=")
            };
            Some((format!("Mcp-Param-{suffix}"), value))
        })
        .collect()
}

/// Whether a `tools/call` result says the tool failed (`isError: true`). Reads that one member;
/// the rest of the result is skipped over, not parsed.
fn is_tool_error(result: &RawValue) -> bool {
    #[derive(serde::Deserialize)]
    struct Flag {
        #[serde(rename = "isError")]
        is_error: Option<bool>,
    }
    jsonrpc::is_object(result)
        && serde_json::from_str::<Flag>(result.get()).is_ok_and(|flag| flag.is_error == Some(true))
}

/// Emits `ToolCallFinished` when dropped, so that a call whose caller gave up (a stateless
/// client that disconnected, a dropped future) still ends in the event stream.
struct CallFinished<'a> {
    events: &'a EventBus,
    server: &'a ServerId,
    tool: String,
    started: Instant,
    /// `None` until the call ends by itself.
    outcome: Option<CallOutcome>,
}

impl Drop for CallFinished<'_> {
    fn drop(&mut self) {
        let outcome = self
            .outcome
            .take()
            .unwrap_or_else(|| CallOutcome::Failed("the caller cancelled the call".into()));
        self.events.emit(GatewayEvent::ToolCallFinished {
            server: self.server.clone(),
            tool: std::mem::take(&mut self.tool),
            duration_us: u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX),
            outcome,
        });
    }
}

#[cfg(test)]
mod tests;
