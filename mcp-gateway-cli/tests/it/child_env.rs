//! A stdio child inherits the gateway's environment, except the gateway's own secrets: the
//! token clients must present (`MCP_GATEWAY_TOKEN`) and the memory server's (`MCP_MEMORY_TOKEN`)
//! would otherwise reach every upstream command the config names. The child's environment is
//! read where the kernel keeps it, `/proc/<pid>/environ`.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{Background, DEADLINE, free_port, gateway_bin, marked, wait_for_no_marked};

/// The variables of a process's initial environment, as `KEY=value` strings.
fn environment(pid: u32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).expect("the child's environment");
    raw.split(|byte| *byte == 0)
        .filter(|var| !var.is_empty())
        .map(|var| String::from_utf8_lossy(var).into_owned())
        .collect()
}

#[tokio::test]
async fn a_stdio_child_does_not_inherit_the_gateways_secrets() {
    assert!(
        Path::new("/proc/self/environ").exists(),
        "this test reads the child's environment through /proc, which this system does not have"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = format!("child-env-{}", std::process::id());
    // The child never answers its handshake: it only has to live long enough to be looked at.
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[servers.sleeper]
command = "python3"
args = ["-c", "import time; time.sleep(600)"]
env = {{ GW_MARKER = "{marker}", CONFIGURED = "passed" }}
connect_timeout_secs = 600
"#
        ),
    )
    .expect("config written");
    let listen = format!("127.0.0.1:{}", free_port());
    let config = config.display().to_string();
    let gateway = Background::start(
        gateway_bin(),
        &["serve", "--config", &config, "--listen", &listen],
        &[
            ("MCP_GATEWAY_TOKEN", "gateway-secret"),
            ("MCP_MEMORY_TOKEN", "memory-secret"),
            ("INHERITED", "kept"),
        ],
    );

    let started = Instant::now();
    let child = loop {
        if let Some(pid) = marked(&marker).first() {
            break *pid;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the gateway did not start its child"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let env = environment(child);
    let has = |var: &str| env.iter().any(|seen| seen == var);
    let leaked: Vec<&String> = env
        .iter()
        .filter(|var| var.starts_with("MCP_GATEWAY_TOKEN=") || var.starts_with("MCP_MEMORY_TOKEN="))
        .collect();
    assert!(leaked.is_empty(), "the child sees {leaked:?}");
    // The rest is inherited (npx needs PATH and HOME), and the config's own variables are set.
    assert!(
        has("INHERITED=kept") && has("CONFIGURED=passed"),
        "the child's environment lacks an inherited or a configured variable: {env:?}"
    );

    gateway.terminate().await;
    wait_for_no_marked(&marker, DEADLINE, "the child outlived its gateway").await;
}
