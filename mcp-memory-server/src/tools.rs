//! The nine tools: their definitions (names, titles, descriptions, JSON Schemas and annotations
//! copied from `@modelcontextprotocol/server-memory@2026.8.31`), argument parsing, and the
//! shape of their results (`content` holds the pretty-printed JSON, `structuredContent` the
//! same value, exactly as the reference answers).
//!
//! Two deliberate differences from the reference's `tools/list`, both checked by the
//! differential tests: `create_entities`, `create_relations` and `add_observations` say
//! `idempotentHint: true`, because repeating one of them with the same arguments changes
//! nothing (existing names, relations and observations are skipped) and the annotations must
//! be truthful; and rmcp's `Tool` has no `execution` field, so the reference's
//! `execution: {taskSupport: "forbidden"}` — which is also what an absent field means — is not
//! sent.

use std::error::Error;
use std::sync::{Arc, LazyLock};

use rmcp::ErrorData;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::graph::{Entity, KnowledgeGraph, ObservationAddition, ObservationDeletion, Relation};
use crate::store::Store;

#[cfg(test)]
mod tests;

/// The longest name, entity type or relation field a call may store, in bytes.
pub(crate) const MAX_NAME_BYTES: usize = 4 * 1024;
/// The longest observation a call may store, in bytes.
pub(crate) const MAX_OBSERVATION_BYTES: usize = 1024 * 1024;

const DELETED_ENTITIES: &str = "Entities deleted successfully";
const DELETED_OBSERVATIONS: &str = "Observations deleted successfully";
const DELETED_RELATIONS: &str = "Relations deleted successfully";

/// The tool definitions, built once.
pub(crate) fn definitions() -> &'static [Tool] {
    static TOOLS: LazyLock<Vec<Tool>> = LazyLock::new(build_definitions);
    &TOOLS
}

/// One tool's definition.
pub(crate) fn definition(name: &str) -> Option<Tool> {
    definitions().iter().find(|tool| tool.name == name).cloned()
}

/// How a call failed.
#[derive(Debug)]
enum Failure {
    /// Bad arguments or an unknown entity: an `isError` result the caller reads.
    Tool(String),
    /// A JSON-RPC error.
    Protocol(ErrorData),
}

/// Runs one `tools/call`.
pub(crate) async fn call(
    store: &Arc<Store>,
    name: &str,
    arguments: Option<JsonObject>,
) -> Result<CallToolResult, ErrorData> {
    match execute(store, name, arguments).await {
        Ok(result) => Ok(result),
        Err(Failure::Tool(message)) => Ok(CallToolResult::error(vec![ContentBlock::text(message)])),
        Err(Failure::Protocol(error)) => Err(error),
    }
}

async fn execute(
    store: &Arc<Store>,
    name: &str,
    arguments: Option<JsonObject>,
) -> Result<CallToolResult, Failure> {
    match name {
        "create_entities" => {
            let args: CreateEntities = parse(name, arguments)?;
            check_entities(name, &args.entities)?;
            let created = blocking(store, move |s| s.create_entities(args.entities)).await??;
            result(&created, json!({ "entities": created }))
        }
        "create_relations" => {
            let args: CreateRelations = parse(name, arguments)?;
            check_relations(name, &args.relations)?;
            let created = blocking(store, move |s| s.create_relations(args.relations)).await??;
            result(&created, json!({ "relations": created }))
        }
        "add_observations" => {
            let args: AddObservations = parse(name, arguments)?;
            check_additions(name, &args.observations)?;
            let outcome = blocking(store, move |s| s.add_observations(args.observations)).await??;
            // The reference's exact wording, so prompts written against it still match.
            let results = outcome.map_err(|unknown| {
                Failure::Tool(format!("Entity with name {} not found", unknown.0))
            })?;
            result(&results, json!({ "results": results }))
        }
        "delete_entities" => {
            let args: DeleteEntities = parse(name, arguments)?;
            blocking(store, move |s| s.delete_entities(args.entity_names)).await??;
            Ok(success(DELETED_ENTITIES))
        }
        "delete_observations" => {
            let args: DeleteObservations = parse(name, arguments)?;
            blocking(store, move |s| s.delete_observations(args.deletions)).await??;
            Ok(success(DELETED_OBSERVATIONS))
        }
        "delete_relations" => {
            let args: DeleteRelations = parse(name, arguments)?;
            blocking(store, move |s| s.delete_relations(args.relations)).await??;
            Ok(success(DELETED_RELATIONS))
        }
        "read_graph" => {
            let _: ReadGraph = parse(name, arguments)?;
            // Serialising a large graph is real work too, so it stays off the async threads.
            blocking(store, |s| graph_result(&s.read_graph())).await?
        }
        "search_nodes" => {
            let args: SearchNodes = parse(name, arguments)?;
            blocking(store, move |s| graph_result(&s.search_nodes(&args.query))).await?
        }
        "open_nodes" => {
            let args: OpenNodes = parse(name, arguments)?;
            blocking(store, move |s| graph_result(&s.open_nodes(&args.names))).await?
        }
        _ => Err(Failure::Protocol(ErrorData::invalid_params(
            format!("unknown tool: {name}"),
            None,
        ))),
    }
}

async fn blocking<T: Send + 'static>(
    store: &Arc<Store>,
    work: impl FnOnce(&Store) -> T + Send + 'static,
) -> Result<T, Failure> {
    store.run(work).await.map_err(|err| {
        Failure::Protocol(ErrorData::internal_error(
            format!("the memory store task failed: {err}"),
            None,
        ))
    })
}

impl From<crate::MemoryError> for Failure {
    fn from(err: crate::MemoryError) -> Self {
        Failure::Tool(error_chain(&err))
    }
}

/// `err` and its sources, joined with ": ".
pub(crate) fn error_chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Pretty JSON text (as the reference's `JSON.stringify(x, null, 2)`) plus structured content.
fn result(text_value: &impl Serialize, structured: Value) -> Result<CallToolResult, Failure> {
    let text = serde_json::to_string_pretty(text_value).map_err(|err| {
        Failure::Protocol(ErrorData::internal_error(
            format!("could not serialise the result: {err}"),
            None,
        ))
    })?;
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(structured);
    Ok(result)
}

fn graph_result(graph: &KnowledgeGraph) -> Result<CallToolResult, Failure> {
    let structured = serde_json::to_value(graph).map_err(|err| {
        Failure::Protocol(ErrorData::internal_error(
            format!("could not serialise the graph: {err}"),
            None,
        ))
    })?;
    result(graph, structured)
}

fn success(message: &str) -> CallToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(message)]);
    result.structured_content = Some(json!({ "success": true, "message": message }));
    result
}

/// Parses arguments, naming the offending field: missing arguments count as `{}`, and unknown
/// fields are ignored (the reference's schema library strips them).
fn parse<T: DeserializeOwned>(tool: &str, arguments: Option<JsonObject>) -> Result<T, Failure> {
    let value = Value::Object(arguments.unwrap_or_default());
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let message = if path == "." {
            err.inner().to_string()
        } else {
            format!("{} at {path}", err.inner())
        };
        invalid(tool, &message)
    })
}

fn invalid(tool: &str, message: &str) -> Failure {
    Failure::Tool(format!(
        "Input validation error: Invalid arguments for tool {tool}: {message}"
    ))
}

fn check_len(tool: &str, path: &str, text: &str, limit: usize) -> Result<(), Failure> {
    if text.len() > limit {
        return Err(invalid(
            tool,
            &format!(
                "{path} is {} bytes long; the limit is {limit} bytes",
                text.len()
            ),
        ));
    }
    Ok(())
}

fn check_entities(tool: &str, entities: &[Entity]) -> Result<(), Failure> {
    for (i, entity) in entities.iter().enumerate() {
        check_len(
            tool,
            &format!("entities[{i}].name"),
            &entity.name,
            MAX_NAME_BYTES,
        )?;
        check_len(
            tool,
            &format!("entities[{i}].entityType"),
            &entity.entity_type,
            MAX_NAME_BYTES,
        )?;
        for (j, observation) in entity.observations.iter().enumerate() {
            check_len(
                tool,
                &format!("entities[{i}].observations[{j}]"),
                observation,
                MAX_OBSERVATION_BYTES,
            )?;
        }
    }
    Ok(())
}

fn check_relations(tool: &str, relations: &[Relation]) -> Result<(), Failure> {
    for (i, relation) in relations.iter().enumerate() {
        for (field, text) in [
            ("from", &relation.from),
            ("to", &relation.to),
            ("relationType", &relation.relation_type),
        ] {
            check_len(
                tool,
                &format!("relations[{i}].{field}"),
                text,
                MAX_NAME_BYTES,
            )?;
        }
    }
    Ok(())
}

fn check_additions(tool: &str, additions: &[ObservationAddition]) -> Result<(), Failure> {
    for (i, addition) in additions.iter().enumerate() {
        for (j, content) in addition.contents.iter().enumerate() {
            check_len(
                tool,
                &format!("observations[{i}].contents[{j}]"),
                content,
                MAX_OBSERVATION_BYTES,
            )?;
        }
    }
    Ok(())
}

#[derive(serde::Deserialize)]
struct CreateEntities {
    entities: Vec<Entity>,
}

#[derive(serde::Deserialize)]
struct CreateRelations {
    relations: Vec<Relation>,
}

#[derive(serde::Deserialize)]
struct AddObservations {
    observations: Vec<ObservationAddition>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteEntities {
    entity_names: Vec<String>,
}

#[derive(serde::Deserialize)]
struct DeleteObservations {
    deletions: Vec<ObservationDeletion>,
}

#[derive(serde::Deserialize)]
struct DeleteRelations {
    relations: Vec<Relation>,
}

#[derive(serde::Deserialize)]
struct ReadGraph {}

#[derive(serde::Deserialize)]
struct SearchNodes {
    query: String,
}

#[derive(serde::Deserialize)]
struct OpenNodes {
    names: Vec<String>,
}

// ---- JSON Schemas, as the reference's zod definitions render them (draft-07) ----

const DRAFT_07: &str = "http://json-schema.org/draft-07/schema#";

fn string(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

fn strings(description: &str) -> Value {
    json!({ "type": "array", "items": { "type": "string" }, "description": description })
}

/// An object schema; output schemas also forbid additional properties.
fn object(properties: Value, required: &[&str], output: bool) -> Value {
    let mut schema = json!({ "type": "object", "properties": properties, "required": required });
    if output {
        schema["additionalProperties"] = json!(false);
    }
    schema
}

fn entity_schema(output: bool) -> Value {
    object(
        json!({
            "name": string("The name of the entity"),
            "entityType": string("The type of the entity"),
            "observations": strings("An array of observation contents associated with the entity"),
        }),
        &["name", "entityType", "observations"],
        output,
    )
}

fn relation_schema(output: bool) -> Value {
    object(
        json!({
            "from": string("The name of the entity where the relation starts"),
            "to": string("The name of the entity where the relation ends"),
            "relationType": string("The type of the relation"),
        }),
        &["from", "to", "relationType"],
        output,
    )
}

fn array_of(items: Value) -> Value {
    json!({ "type": "array", "items": items })
}

/// A top-level schema: the draft-07 `$schema` marker plus an object schema.
fn root(properties: Value, required: &[&str], output: bool) -> JsonObject {
    let mut schema = object(properties, required, output);
    schema["$schema"] = json!(DRAFT_07);
    match schema {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    }
}

fn graph_output() -> JsonObject {
    root(
        json!({
            "entities": array_of(entity_schema(true)),
            "relations": array_of(relation_schema(true)),
        }),
        &["entities", "relations"],
        true,
    )
}

fn status_output() -> JsonObject {
    root(
        json!({ "success": { "type": "boolean" }, "message": { "type": "string" } }),
        &["success", "message"],
        true,
    )
}

/// Hints: read-only, destructive, idempotent; no tool reaches outside the graph.
fn hints(read_only: bool, destructive: bool, idempotent: bool) -> ToolAnnotations {
    ToolAnnotations::new()
        .read_only(read_only)
        .destructive(destructive)
        .idempotent(idempotent)
        .open_world(false)
}

fn tool(
    name: &'static str,
    title: &str,
    description: &'static str,
    input: JsonObject,
    output: JsonObject,
    annotations: ToolAnnotations,
) -> Tool {
    Tool::new(name, description, input)
        .with_title(title)
        .with_raw_output_schema(Arc::new(output))
        .with_annotations(annotations)
}

fn build_definitions() -> Vec<Tool> {
    let mut read_graph_input = JsonObject::new();
    read_graph_input.insert("$schema".to_owned(), json!(DRAFT_07));
    read_graph_input.insert("type".to_owned(), json!("object"));
    read_graph_input.insert("properties".to_owned(), json!({}));
    vec![
        tool(
            "create_entities",
            "Create Entities",
            "Create multiple new entities in the knowledge graph",
            root(
                json!({ "entities": array_of(entity_schema(false)) }),
                &["entities"],
                false,
            ),
            root(
                json!({ "entities": array_of(entity_schema(true)) }),
                &["entities"],
                true,
            ),
            hints(false, false, true),
        ),
        tool(
            "create_relations",
            "Create Relations",
            "Create multiple new relations between entities in the knowledge graph. Relations \
             should be in active voice",
            root(
                json!({ "relations": array_of(relation_schema(false)) }),
                &["relations"],
                false,
            ),
            root(
                json!({ "relations": array_of(relation_schema(true)) }),
                &["relations"],
                true,
            ),
            hints(false, false, true),
        ),
        tool(
            "add_observations",
            "Add Observations",
            "Add new observations to existing entities in the knowledge graph",
            root(
                json!({ "observations": array_of(object(
                    json!({
                        "entityName": string("The name of the entity to add the observations to"),
                        "contents": strings("An array of observation contents to add"),
                    }),
                    &["entityName", "contents"],
                    false,
                )) }),
                &["observations"],
                false,
            ),
            root(
                json!({ "results": array_of(object(
                    json!({
                        "entityName": { "type": "string" },
                        "addedObservations": { "type": "array", "items": { "type": "string" } },
                    }),
                    &["entityName", "addedObservations"],
                    true,
                )) }),
                &["results"],
                true,
            ),
            hints(false, false, true),
        ),
        tool(
            "delete_entities",
            "Delete Entities",
            "Delete multiple entities and their associated relations from the knowledge graph",
            root(
                json!({ "entityNames": strings("An array of entity names to delete") }),
                &["entityNames"],
                false,
            ),
            status_output(),
            hints(false, true, true),
        ),
        tool(
            "delete_observations",
            "Delete Observations",
            "Delete specific observations from entities in the knowledge graph",
            root(
                json!({ "deletions": array_of(object(
                    json!({
                        "entityName": string("The name of the entity containing the observations"),
                        "observations": strings("An array of observations to delete"),
                    }),
                    &["entityName", "observations"],
                    false,
                )) }),
                &["deletions"],
                false,
            ),
            status_output(),
            hints(false, true, true),
        ),
        tool(
            "delete_relations",
            "Delete Relations",
            "Delete multiple relations from the knowledge graph",
            root(
                json!({ "relations": {
                    "type": "array",
                    "items": relation_schema(false),
                    "description": "An array of relations to delete",
                } }),
                &["relations"],
                false,
            ),
            status_output(),
            hints(false, true, true),
        ),
        tool(
            "read_graph",
            "Read Graph",
            "Read the entire knowledge graph",
            read_graph_input,
            graph_output(),
            hints(true, false, true),
        ),
        tool(
            "search_nodes",
            "Search Nodes",
            "Search for nodes in the knowledge graph based on a query",
            root(
                json!({ "query": string(
                    "The search query to match against entity names, types, and observation content",
                ) }),
                &["query"],
                false,
            ),
            graph_output(),
            hints(true, false, true),
        ),
        tool(
            "open_nodes",
            "Open Nodes",
            "Open specific nodes in the knowledge graph by their names",
            root(
                json!({ "names": strings("An array of entity names to retrieve") }),
                &["names"],
                false,
            ),
            graph_output(),
            hints(true, false, true),
        ),
    ]
}
