//! Crashes and bad files: `kill -9` right after acknowledged writes and in the middle of a
//! stream of writes, a corrupt file, and a second server on a file already in use.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rmcp::service::ClientLifecycleMode;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::support::{
    Client, HttpServer, MEMORY_BIN, call_ok, http_client, reference_stdio, run, stateless, stop,
};

fn entity_names(graph: &Value) -> BTreeSet<String> {
    graph["entities"]
        .as_array()
        .map(|entities| {
            entities
                .iter()
                .filter_map(|e| e["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// One client's writes: an append, a rewrite and (every other round) a relation, per round.
async fn writer(client: Client, id: usize, rounds: usize) {
    for round in 0..rounds {
        let name = format!("w{id}-{round}");
        call_ok(
            &client,
            "create_entities",
            json!({ "entities": [{ "name": name, "entityType": "t", "observations": [] }] }),
        )
        .await;
        call_ok(
            &client,
            "add_observations",
            json!({ "observations": [{ "entityName": name, "contents": [format!("round {round}")] }] }),
        )
        .await;
        if round % 2 == 1 {
            call_ok(
                &client,
                "create_relations",
                json!({ "relations": [{ "from": name, "to": format!("w{id}-{}", round - 1), "relationType": "follows" }] }),
            )
            .await;
        }
    }
    stop(client).await;
}

/// Files in `dir` other than the memory file and its lock.
fn strays(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("readable")
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name != "memory.jsonl" && name != "memory.jsonl.lock")
        .collect()
}

#[tokio::test]
async fn acknowledged_writes_from_concurrent_clients_survive_kill_9() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("memory.jsonl");
    let server = HttpServer::start(&file).await;
    let (clients, rounds) = (4, 8);
    let mut writers = Vec::new();
    for id in 0..clients {
        let lifecycle = if id % 2 == 0 {
            ClientLifecycleMode::Initialize
        } else {
            stateless()
        };
        let client = http_client(&server.url, lifecycle).await;
        writers.push(tokio::spawn(writer(client, id, rounds)));
    }
    for writer in writers {
        writer.await.expect("no writer panicked");
    }
    // Every write above was acknowledged; nothing is in flight. No goodbye, no flush.
    server.kill9().await;

    let server = HttpServer::start(&file).await;
    let client = http_client(&server.url, ClientLifecycleMode::Initialize).await;
    let graph = call_ok(&client, "read_graph", json!({})).await;
    stop(client).await;
    let status = server.terminate().await;
    assert!(status.success(), "{status}");

    let expected: BTreeSet<String> = (0..clients)
        .flat_map(|id| (0..rounds).map(move |round| format!("w{id}-{round}")))
        .collect();
    assert_eq!(entity_names(&graph), expected);
    for entity in graph["entities"].as_array().into_iter().flatten() {
        assert_eq!(
            entity["observations"].as_array().map(Vec::len),
            Some(1),
            "{entity}"
        );
    }
    assert_eq!(
        graph["relations"].as_array().map(Vec::len),
        Some(clients * rounds / 2)
    );
    // The reference reads what the crash left, too.
    let reference = reference_stdio(&file).await;
    assert_eq!(call_ok(&reference, "read_graph", json!({})).await, graph);
    stop(reference).await;
}

#[tokio::test]
async fn kill_9_in_the_middle_of_writes_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("memory.jsonl");
    let server = HttpServer::start(&file).await;
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let client = http_client(&server.url, ClientLifecycleMode::Initialize).await;
    let log = Arc::clone(&acknowledged);
    // Appends and rewrites back to back, until the server dies under them.
    let writing = tokio::spawn(async move {
        for i in 0.. {
            let name = format!("e{i}");
            let request = rmcp::model::CallToolRequestParams::new("create_entities")
                .with_arguments(crate::support::object(json!({ "entities": [{ "name": name, "entityType": "t", "observations": [] }] })));
            if client.call_tool(request).await.is_err() {
                return;
            }
            let request = rmcp::model::CallToolRequestParams::new("add_observations")
                .with_arguments(crate::support::object(
                    json!({ "observations": [{ "entityName": name, "contents": ["o"] }] }),
                ));
            if client.call_tool(request).await.is_err() {
                return;
            }
            log.lock().expect("not poisoned").push(name);
        }
    });
    crate::support::eventually("40 acknowledged writes", || {
        acknowledged.lock().expect("not poisoned").len() >= 40
    })
    .await;
    server.kill9().await;
    // The client may retry against the dead server; its unacknowledged call does not count.
    writing.abort();
    let _ = writing.await;

    let server = HttpServer::start(&file).await;
    let client = http_client(&server.url, ClientLifecycleMode::Initialize).await;
    let graph = call_ok(&client, "read_graph", json!({})).await;
    stop(client).await;
    server.terminate().await;
    let present = entity_names(&graph);
    let acknowledged = acknowledged.lock().expect("not poisoned").clone();
    for name in &acknowledged {
        assert!(
            present.contains(name),
            "{name} was acknowledged but is gone"
        );
    }
    assert!(strays(dir.path()).is_empty(), "{:?}", strays(dir.path()));
}

#[tokio::test]
async fn a_corrupt_file_stops_the_binary_with_its_line_number_and_is_left_alone() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("memory.jsonl");
    let contents = concat!(
        r#"{"type":"entity","name":"A","entityType":"t","observations":[]}"#,
        "\n",
        r#"{"type":"entity","name":"B","entityType":"t","observ"#,
        "\n",
        r#"{"type":"entity","name":"C","entityType":"t","observations":[]}"#,
        "\n",
    );
    std::fs::write(&file, contents).expect("written");
    for mode in [&["--stdio"][..], &["--listen", "127.0.0.1:0"][..]] {
        let mut command = Command::new(MEMORY_BIN);
        command.args(mode).arg("--file").arg(&file);
        let (status, _, stderr) = run(&mut command).await;
        assert_eq!(status.code(), Some(65), "{mode:?}: {stderr}");
        let expected = format!("{}:2:", file.display());
        assert!(stderr.contains(&expected), "{mode:?}: {stderr}");
        assert!(stderr.contains("the file was not changed"), "{stderr}");
    }
    assert_eq!(std::fs::read_to_string(&file).expect("readable"), contents);
}

#[tokio::test]
async fn a_second_server_on_a_file_in_use_is_refused() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("memory.jsonl");
    let server = HttpServer::start(&file).await;
    let mut command = Command::new(MEMORY_BIN);
    command.arg("--stdio").arg("--file").arg(&file);
    let (status, _, stderr) = run(&mut command).await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is already in use by another memory server"),
        "{stderr}"
    );
    let status = server.terminate().await;
    assert!(status.success(), "{status}");
}
