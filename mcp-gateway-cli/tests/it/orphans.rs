//! A gateway killed with SIGKILL gets no chance to clean up; its stdio children must die anyway.
//! One child is a real MCP server (which would also notice its stdin closing); the other ignores
//! its stdin entirely and sleeps, so only the kernel's parent-death signal (set through
//! `setpriv`) can end it.
//!
//! The test fails, never passes, when it cannot test: without `/proc`, without `setpriv`, or when
//! the children it would watch are not found running under the gateway before the kill.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{
    Background, DEADLINE, free_port, gateway_bin, marked, peer, wait_for_no_marked,
};

/// A field of `/proc/<pid>/status`, such as `PPid`.
fn status_field(pid: u32, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        Some(value.trim().to_owned())
    })
}

/// Kills every marked process left when the test ends, pass or fail, so a failing run does not
/// leave a sleeper behind for ten minutes.
struct Reaper<'a>(&'a str);

impl Drop for Reaper<'_> {
    fn drop(&mut self) {
        for pid in marked(self.0) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_die_with_a_sigkilled_gateway() {
    assert!(
        Path::new("/proc/self/environ").exists(),
        "this test finds the children through /proc, which this system does not have"
    );
    // The same places the gateway looks (`transport/stdio.rs`).
    assert!(
        ["/usr/bin/setpriv", "/bin/setpriv"]
            .iter()
            .any(|path| Path::new(path).exists()),
        "setpriv is missing: install util-linux; without it a SIGKILLed gateway leaves its \
         children running, which is what this test guards against"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = format!("orphan-{}", std::process::id());
    let _reaper = Reaper(&marker);
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
    // Both must be the gateway's own children (not, say, left over from another run), or the
    // kill below proves nothing.
    let children = marked(&marker);
    let parents: Vec<String> = children
        .iter()
        .filter_map(|pid| status_field(*pid, "PPid")?.parse::<u32>().ok())
        .filter(|parent| !children.contains(parent))
        .map(|parent| status_field(parent, "Name").unwrap_or_default())
        .collect();
    assert!(
        parents.len() >= 2 && parents.iter().all(|name| name == "mcp-gateway"),
        "the marked processes are not the gateway's children: their parents are {parents:?}"
    );

    gateway.kill().await;
    wait_for_no_marked(&marker, DEADLINE, "a child outlived its SIGKILLed gateway").await;
}
