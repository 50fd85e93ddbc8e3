//! The MCP Inspector CLI (`@modelcontextprotocol/inspector@2.12.0`), a client nobody here wrote:
//! the raw tool list against the reference's, and create / search / read / delete over stdio
//! and over HTTP in both protocol eras.

use std::ffi::OsString;
use std::path::Path;

use serde_json::{Value, json};
use tokio::process::Command;

use crate::support::{HttpServer, MEMORY_BIN, peer, reference_js, run};

/// Runs one Inspector CLI call and returns its `result` (it prints `{"result": …}`).
async fn inspector(home: &Path, args: Vec<OsString>) -> Value {
    let mut command = Command::new(peer("node_modules/.bin/mcp-inspector"));
    // The Inspector keeps a catalogue under $HOME/.mcp-inspector; keep it out of the real home.
    command
        .env("HOME", home)
        .args(["--cli", "--format", "json", "-q"])
        .args(&args);
    let (status, stdout, stderr) = run(&mut command).await;
    assert!(
        status.success(),
        "inspector {args:?} failed: {stderr}{stdout}"
    );
    let output: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|err| panic!("inspector printed no JSON ({err}): {stdout}"));
    output["result"].clone()
}

fn os(items: &[&str]) -> Vec<OsString> {
    items.iter().map(OsString::from).collect()
}

/// The target arguments for our server over stdio on `file`.
fn ours(file: &Path) -> Vec<OsString> {
    let mut args = os(&[MEMORY_BIN, "--stdio", "--file"]);
    args.push(file.into());
    args
}

fn tool_call(target: Vec<OsString>, tool: &str, arguments: &Value) -> Vec<OsString> {
    let mut args = target;
    args.extend(os(&["--method", "tools/call", "--tool-name", tool]));
    args.push("--tool-args-json".into());
    args.push(arguments.to_string().into());
    args
}

fn names(result: &Value) -> Vec<String> {
    result["structuredContent"]["entities"]
        .as_array()
        .map(|entities| {
            entities
                .iter()
                .filter_map(|e| e["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn the_raw_tool_list_matches_the_reference_but_for_two_documented_details() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut reference = os(&["-e"]);
    let mut env = OsString::from("MEMORY_FILE_PATH=");
    env.push(dir.path().join("reference.jsonl"));
    reference.push(env);
    reference.push("node".into());
    reference.push(reference_js().into());
    reference.extend(os(&["--method", "tools/list"]));
    let mut expected = inspector(dir.path(), reference).await;

    let mut mine = ours(&dir.path().join("ours.jsonl"));
    mine.extend(os(&["--method", "tools/list"]));
    let actual = inspector(dir.path(), mine).await;

    for tool in expected["tools"].as_array_mut().expect("a tool array") {
        let name = tool["name"].as_str().unwrap_or_default().to_owned();
        // rmcp's Tool has no `execution` field; "forbidden" is also what its absence means.
        assert_eq!(
            tool["execution"],
            json!({ "taskSupport": "forbidden" }),
            "{name}"
        );
        if let Some(fields) = tool.as_object_mut() {
            fields.remove("execution");
        }
        // Repeating a create or an add changes nothing: these are idempotent in truth.
        if ["create_entities", "create_relations", "add_observations"].contains(&name.as_str()) {
            assert_eq!(
                tool["annotations"]["idempotentHint"],
                json!(false),
                "{name}"
            );
            tool["annotations"]["idempotentHint"] = json!(true);
        }
    }
    assert_eq!(actual, expected);
}

#[tokio::test]
async fn inspector_creates_searches_reads_and_deletes_over_stdio() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("memory.jsonl");
    let home = dir.path();
    // Each call is its own server process: the file carries the graph from one to the next.
    let created = inspector(
        home,
        tool_call(
            ours(&file),
            "create_entities",
            &json!({ "entities": [
                { "name": "Ada Lovelace", "entityType": "person", "observations": ["Wrote the first program"] },
                { "name": "Charles Babbage", "entityType": "person", "observations": ["Designed the engine"] },
            ] }),
        ),
    )
    .await;
    assert_eq!(names(&created), ["Ada Lovelace", "Charles Babbage"]);

    let found = inspector(
        home,
        tool_call(
            ours(&file),
            "search_nodes",
            &json!({ "query": "FIRST PROGRAM" }),
        ),
    )
    .await;
    assert_eq!(names(&found), ["Ada Lovelace"]);

    let mut read = ours(&file);
    read.extend(os(&[
        "--method",
        "resources/read",
        "--uri",
        "memory://entities/Charles%20Babbage",
    ]));
    let resource = inspector(home, read).await;
    let text = resource["contents"][0]["text"].as_str().unwrap_or_default();
    let entity: Value = serde_json::from_str(text).expect("the resource is JSON");
    assert_eq!(entity["entities"][0]["name"], "Charles Babbage");

    inspector(
        home,
        tool_call(
            ours(&file),
            "delete_entities",
            &json!({ "entityNames": ["Ada Lovelace"] }),
        ),
    )
    .await;
    let graph = inspector(home, tool_call(ours(&file), "read_graph", &json!({}))).await;
    assert_eq!(names(&graph), ["Charles Babbage"]);
}

#[tokio::test]
async fn inspector_over_http_in_both_eras() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let server = HttpServer::start(&dir.path().join("memory.jsonl")).await;
    let home = dir.path();
    let legacy = || os(&[&server.url, "--protocol-era", "legacy"]);
    let modern = || os(&[&server.url, "--protocol-era", "modern"]);

    inspector(
        home,
        tool_call(
            legacy(),
            "create_entities",
            &json!({ "entities": [
                { "name": "Grace", "entityType": "person", "observations": ["Found a moth"] },
                { "name": "Mark II", "entityType": "computer", "observations": [] },
            ] }),
        ),
    )
    .await;
    inspector(
        home,
        tool_call(
            modern(),
            "create_relations",
            &json!({ "relations": [{ "from": "Grace", "to": "Mark II", "relationType": "debugged" }] }),
        ),
    )
    .await;

    let found = inspector(
        home,
        tool_call(modern(), "search_nodes", &json!({ "query": "moth" })),
    )
    .await;
    assert_eq!(names(&found), ["Grace"]);
    assert_eq!(
        found["structuredContent"]["relations"][0]["relationType"],
        "debugged"
    );

    let mut read = modern();
    read.extend(os(&[
        "--method",
        "resources/read",
        "--uri",
        "memory://graph",
    ]));
    let resource = inspector(home, read).await;
    let text = resource["contents"][0]["text"].as_str().unwrap_or_default();
    let graph: Value = serde_json::from_str(text).expect("the resource is JSON");
    assert_eq!(graph["entities"].as_array().map(Vec::len), Some(2));

    inspector(
        home,
        tool_call(
            legacy(),
            "delete_entities",
            &json!({ "entityNames": ["Mark II"] }),
        ),
    )
    .await;
    let opened = inspector(
        home,
        tool_call(
            legacy(),
            "open_nodes",
            &json!({ "names": ["Grace", "Mark II"] }),
        ),
    )
    .await;
    assert_eq!(names(&opened), ["Grace"]);
    assert_eq!(opened["structuredContent"]["relations"], json!([]));
    let status = server.terminate().await;
    assert!(status.success(), "{status}");
}
