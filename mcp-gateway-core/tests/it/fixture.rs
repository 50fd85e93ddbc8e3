//! An in-process rmcp server used as a fixture: it can add a tool at run time and announce it,
//! and it records cancellations so tests can see which upstream received them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Map, Value, json};

#[derive(Default)]
pub struct FixtureState {
    late_tool: AtomicBool,
    /// Calls of `wait_for_cancel` that have started.
    pub waiting: AtomicUsize,
    pub cancellations: AtomicUsize,
}

#[derive(Clone, Default)]
pub struct Fixture {
    pub state: Arc<FixtureState>,
}

fn schema(properties: Value) -> Map<String, Value> {
    match json!({ "type": "object", "properties": properties }) {
        Value::Object(object) => object,
        _ => Map::new(),
    }
}

impl ServerHandler for Fixture {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let number = json!({ "type": "number" });
        let mut tools = vec![
            Tool::new(
                "add",
                "Adds a and b",
                schema(json!({ "a": number, "b": number })),
            ),
            Tool::new(
                "register_late_tool",
                "Adds the tool `late` and announces it",
                schema(json!({})),
            ),
            Tool::new(
                "wait_for_cancel",
                "Returns only once cancelled",
                schema(json!({})),
            ),
        ];
        if self.state.late_tool.load(Ordering::SeqCst) {
            tools.push(Tool::new(
                "late",
                "Registered at run time",
                schema(json!({})),
            ));
        }
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let text = match request.name.as_ref() {
            "add" => {
                let arguments = request.arguments.unwrap_or_default();
                let sum = arguments.get("a").and_then(Value::as_f64).unwrap_or(0.0)
                    + arguments.get("b").and_then(Value::as_f64).unwrap_or(0.0);
                sum.to_string()
            }
            "register_late_tool" => {
                self.state.late_tool.store(true, Ordering::SeqCst);
                context
                    .peer
                    .notify_tool_list_changed()
                    .await
                    .map_err(|err| ErrorData::internal_error(err.to_string(), None))?;
                "registered".to_owned()
            }
            "late" if self.state.late_tool.load(Ordering::SeqCst) => "late tool ran".to_owned(),
            "wait_for_cancel" => {
                self.state.waiting.fetch_add(1, Ordering::SeqCst);
                context.ct.cancelled().await;
                self.state.cancellations.fetch_add(1, Ordering::SeqCst);
                "cancelled".to_owned()
            }
            other => {
                return Err(ErrorData::invalid_params(
                    format!("no tool `{other}`"),
                    None,
                ));
            }
        };
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
    }
}
