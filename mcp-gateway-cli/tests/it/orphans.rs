//! A gateway killed with SIGKILL gets no chance to clean up; its stdio children must die anyway.
//! One child is a real MCP server (which would also notice its stdin closing); the other ignores
//! its stdin entirely and sleeps, so only the kernel's parent-death signal (set through
//! `setpriv`) can end it.

use std::time::{Duration, Instant};

use crate::support::{
    Background, DEADLINE, free_port, gateway_bin, marked, peer, wait_for_no_marked,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_die_with_a_sigkilled_gateway() {
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = format!("orphan-{}", std::process::id());
    let config = dir.path().join("gateway.toml");
    let everything = peer("node_modules/.bin/mcp-server-everything");
    let text = format!(
        r#"
[servers.everything]
command = "{everything}"
args = ["stdio"]
env = {{ GW_MARKER = "{marker}" }}

[servers.sleeper]
command = "python3"
args = ["-c", "import time; time.sleep(600)"]
env = {{ GW_MARKER = "{marker}" }}
connect_timeout_secs = 600
"#
    );
    std::fs::write(&config, text).expect("config written");
    let listen = format!("127.0.0.1:{}", free_port());
    let config = config.display().to_string();
    let gateway = Background::start(
        gateway_bin(),
        &["serve", "--config", &config, "--listen", &listen],
        &[],
    );
    // The sleeper never answers its handshake, so the gateway is still starting: wait for the
    // children themselves rather than the port.
    let started = Instant::now();
    while marked(&marker).len() < 2 {
        assert!(
            started.elapsed() < DEADLINE,
            "the gateway did not start both children"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    gateway.kill().await;
    wait_for_no_marked(&marker, DEADLINE, "a child outlived its SIGKILLed gateway").await;
}
