//! The Python SDK client (`mcp==2.3.0`), in the session era (`legacy`) and the stateless
//! 2026-07-28 era, over HTTP and over stdio: `peers/python/memory_check.py` creates, searches,
//! opens, reads a resource, subscribes to it and sees an update, and deletes.

use std::ffi::OsString;

use serde_json::Value;
use tokio::process::Command;

use crate::support::{HttpServer, MEMORY_BIN, peer, repo_root, run};

const MODES: [&str; 2] = ["legacy", "2026-07-28"];

async fn memory_check(mode: &str, target: Vec<OsString>) {
    let script = repo_root().join("peers/python/memory_check.py");
    let mut command = Command::new(peer(".venv/bin/python"));
    command.arg(script).arg(mode).args(&target);
    let (status, stdout, stderr) = run(&mut command).await;
    let summary: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|err| {
        panic!("memory_check.py {mode} printed no summary ({err}): {stdout}{stderr}")
    });
    assert!(status.success(), "{mode}: {summary}\n{stderr}");
    assert_eq!(summary["ok"], true, "{summary}");
    let expected_version = if mode == "legacy" { "2025-11-25" } else { mode };
    assert_eq!(summary["protocolVersion"], expected_version, "{summary}");
}

#[tokio::test]
async fn python_client_over_http_in_both_eras() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let server = HttpServer::start(&dir.path().join("memory.jsonl")).await;
    for mode in MODES {
        memory_check(mode, vec![server.url.clone().into()]).await;
    }
    let status = server.terminate().await;
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn python_client_over_stdio_in_both_eras() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("memory.jsonl");
    for mode in MODES {
        let target = vec![
            "--".into(),
            MEMORY_BIN.into(),
            "--stdio".into(),
            "--file".into(),
            file.clone().into(),
        ];
        memory_check(mode, target).await;
    }
}
