//! Supervision with real processes: a killed child is restarted (the first retry at once, with
//! no backoff), a call fails as soon as its child closes its output, a restarted HTTP server gets a
//! new session, a hanging server is judged unhealthy without blocking others, a crash loop ends
//! in `failed` with an alert, no child outlives the gateway, and none dies with a thread. A
//! supervisor that panics ends in `failed` with an alert too, and a spec that would make it panic
//! is refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mcp_gateway_core::{
    AlertKind, BoxError, Error, Gateway, GatewayEvent, HealthConfig, HealthProbe, InProcessServer,
    ProtocolPreference, RequestOptions, RestartPolicy, ServerSpec, ServerStatus, Upstream,
};
use serde_json::json;

use crate::fixture::Fixture;
use crate::support::{
    DEADLINE, PeerProcess, eventually, first_text, free_port, next_matching, peer_bin,
    processes_with_env, repo_root,
};

/// Fast probes and retries, so the tests see the whole path in well under a second per step.
fn quick(spec: ServerSpec) -> ServerSpec {
    spec.with_health(
        HealthConfig::default()
            .with_interval(Duration::from_millis(200))
            .with_timeout(Duration::from_millis(500))
            .with_thresholds(1, 2),
    )
    .with_restart(
        RestartPolicy::default()
            .with_backoff(Duration::from_millis(50), Duration::from_millis(400)),
    )
}

fn status_of(gateway: &Gateway, id: &str) -> Option<ServerStatus> {
    gateway.server(id).map(|s| s.status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_child_fails_its_calls_at_once_and_is_restarted() {
    let marker = format!("gw-kill-{}", std::process::id());
    let spec = ServerSpec::stdio("everything", &peer_bin("mcp-server-everything"), ["stdio"])
        .expect("valid spec")
        .with_env("GW_TEST_MARKER", marker.clone());
    let gateway = Gateway::builder().server(quick(spec)).build();
    let mut events = gateway.subscribe();
    gateway.start().await;
    let pids = processes_with_env(&marker);
    assert_eq!(pids.len(), 1, "one child: {pids:?}");

    let (progress, mut running) = tokio::sync::mpsc::channel(64);
    let params = json!({
        "name": "everything__trigger-long-running-operation",
        "arguments": { "duration": 30, "steps": 30 },
        "_meta": { "progressToken": "long" },
    });
    let options = RequestOptions::default().with_progress(progress);
    let long_call = gateway.forward_tool_call(params, &options);
    let killer = async {
        // Kill once the upstream reports the call running.
        running.recv().await.expect("a first progress notification");
        std::process::Command::new("kill")
            .args(["-9", &pids[0].to_string()])
            .status()
            .expect("kill runs");
    };
    let (outcome, ()) = tokio::join!(long_call, killer);
    // The call fails because the connection closed, not after its two-minute timeout.
    match outcome {
        Err(Error::Closed { server, reason }) => {
            assert_eq!(server.as_str(), "everything");
            assert!(
                reason.contains("exited") || reason.contains("closed"),
                "{reason}"
            );
        }
        other => panic!("expected a closed-connection error, got {other:?}"),
    }

    next_matching(&mut events, "reconnecting", |e| {
        matches!(
            e,
            GatewayEvent::StatusChanged {
                to: ServerStatus::Reconnecting,
                ..
            }
        )
    })
    .await;
    next_matching(&mut events, "a scheduled reconnect", |e| {
        matches!(e, GatewayEvent::ReconnectScheduled { .. })
    })
    .await;
    next_matching(&mut events, "healthy again", |e| {
        matches!(
            e,
            GatewayEvent::StatusChanged {
                to: ServerStatus::Healthy,
                ..
            }
        )
    })
    .await;
    let echoed = gateway
        .call_tool("everything__echo", json!({ "message": "back" }))
        .await
        .expect("calls succeed again");
    assert_eq!(first_text(&echoed), "Echo: back");
    let restarted = processes_with_env(&marker);
    assert_eq!(restarted.len(), 1, "exactly one new child: {restarted:?}");
    assert_ne!(restarted, pids);
    gateway.shutdown().await;
    assert!(
        processes_with_env(&marker).is_empty(),
        "no child left behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_server_restarted_on_the_same_port_gets_a_new_session() {
    let port = free_port();
    let everything = peer_bin("mcp-server-everything");
    let server = PeerProcess::start(&everything, &["streamableHttp"], port).await;
    let spec = ServerSpec::streamable_http("remote", &server.url("/mcp")).expect("valid spec");
    let gateway = Gateway::builder().server(quick(spec)).build();
    let mut events = gateway.subscribe();
    gateway.start().await;
    assert_eq!(status_of(&gateway, "remote"), Some(ServerStatus::Healthy));

    drop(server);
    next_matching(
        &mut events,
        "reconnecting after the server went away",
        |e| {
            matches!(
                e,
                GatewayEvent::StatusChanged {
                    to: ServerStatus::Reconnecting,
                    ..
                }
            )
        },
    )
    .await;
    let err = gateway
        .call_tool("remote__echo", json!({ "message": "x" }))
        .await
        .expect_err("down");
    assert!(
        matches!(err, Error::NotConnected { .. }),
        "fails fast while down: {err:?}"
    );
    // The first retry went at once and failed; the next ones wait, and say when they will go.
    eventually("the next attempt visible", || {
        gateway
            .server("remote")
            .is_some_and(|snapshot| snapshot.next_attempt_ms.is_some())
    })
    .await;

    let _again = PeerProcess::start(&everything, &["streamableHttp"], port).await;
    next_matching(&mut events, "healthy on the new server", |e| {
        matches!(
            e,
            GatewayEvent::StatusChanged {
                to: ServerStatus::Healthy,
                ..
            }
        )
    })
    .await;
    let echoed = gateway
        .call_tool("remote__echo", json!({ "message": "new session" }))
        .await
        .expect("the new session works");
    assert_eq!(first_text(&echoed), "Echo: new session");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_server_is_judged_unhealthy_and_blocks_nothing_else() {
    let script = repo_root().join("mcp-gateway-core/tests/fixtures/misbehaving_server.py");
    let hanging = ServerSpec::stdio(
        "hang",
        "python3",
        [script.display().to_string(), "--hang".into()],
    )
    .expect("valid spec")
    .with_protocol(ProtocolPreference::Session)
    .with_request_timeout(Duration::from_millis(500));
    let local = ServerSpec::in_process("local", InProcessServer::new("local", Fixture::default))
        .expect("valid spec");
    let gateway = Gateway::builder()
        .server(quick(hanging))
        .server(local)
        .build();
    let mut events = gateway.subscribe();
    gateway.start().await;

    // On a loaded machine the 500 ms timeout can also cut the hanging server's handshake or
    // list refresh, and then its tool is briefly unknown; what must happen is that a call to it
    // ends in a timeout, never in an answer.
    let started = std::time::Instant::now();
    loop {
        match gateway.call_tool("hang__pong", json!({})).await {
            Err(Error::Timeout { .. }) => break,
            Err(Error::UnknownTool(_) | Error::Closed { .. }) => {
                assert!(
                    started.elapsed() < DEADLINE,
                    "the hanging server never connected"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => panic!("a call to the hanging server should time out: {other:?}"),
        }
    }
    let alert = next_matching(&mut events, "an unhealthy alert", |e| {
        matches!(
            e,
            GatewayEvent::AlertRaised {
                kind: AlertKind::Unhealthy,
                ..
            }
        )
    })
    .await;
    assert!(
        matches!(alert, GatewayEvent::AlertRaised { ref server, .. } if server.as_str() == "hang")
    );
    // The other server never noticed.
    let sum = gateway
        .call_tool("local__add", json!({ "a": 2, "b": 2 }))
        .await
        .expect("unaffected");
    assert_eq!(first_text(&sum), "4");
    assert_eq!(status_of(&gateway, "local"), Some(ServerStatus::Healthy));
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_ends_in_failed_with_an_alert() {
    let spec = ServerSpec::stdio("crashy", "python3", ["-c", "import sys; sys.exit(3)"])
        .expect("valid spec")
        .with_protocol(ProtocolPreference::Session)
        .with_restart(
            RestartPolicy::default()
                .with_backoff(Duration::from_millis(10), Duration::from_millis(40))
                .with_max_failures(3, Duration::from_secs(60)),
        );
    let gateway = Gateway::builder().build();
    let mut events = gateway.subscribe();
    let err = gateway
        .add_server(spec)
        .await
        .expect_err("it exits at once");
    assert!(err.to_string().contains("crashy"), "{err}");

    let mut retries = 0;
    loop {
        let event = next_matching(&mut events, "the crash loop's end", |e| {
            matches!(
                e,
                GatewayEvent::ReconnectScheduled { .. } | GatewayEvent::AlertRaised { .. }
            )
        })
        .await;
        match event {
            GatewayEvent::ReconnectScheduled { .. } => retries += 1,
            GatewayEvent::AlertRaised { kind, message, .. } => {
                assert_eq!(kind, AlertKind::Failed);
                assert!(message.contains("4 failures"), "{message}");
                break;
            }
            _ => unreachable!("filtered above"),
        }
    }
    assert_eq!(retries, 3, "three retries, then it gave up");
    eventually("status failed", || {
        status_of(&gateway, "crashy") == Some(ServerStatus::Failed)
    })
    .await;
    let snapshot = gateway.server("crashy").expect("still listed");
    assert!(snapshot.next_attempt_ms.is_none());
    assert!(snapshot.alerts.contains(&AlertKind::Failed));
    gateway.shutdown().await;
}

/// `setpriv --pdeathsig KILL` kills a child when the *thread* that started it exits, not the
/// process. A child started from a short-lived thread (one of the runtime's blocking threads,
/// say) would die with it; here those threads live 50 ms, so such a child would be gone well
/// within the second this test watches it.
#[test]
fn a_child_outlives_the_threads_around_its_start() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_keep_alive(Duration::from_millis(50))
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let marker = format!("gw-pdeath-{}", std::process::id());
        let spec = ServerSpec::stdio("everything", &peer_bin("mcp-server-everything"), ["stdio"])
            .expect("valid spec")
            .with_env("GW_TEST_MARKER", marker.clone());
        let gateway = Gateway::builder().server(quick(spec)).build();
        gateway.start().await;
        let first = processes_with_env(&marker);
        assert_eq!(first.len(), 1, "one child: {first:?}");
        let replaced = tokio::time::timeout(Duration::from_secs(1), async {
            while processes_with_env(&marker) == first {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            replaced.is_err(),
            "the child died with a thread: {first:?} became {:?}",
            processes_with_env(&marker)
        );
        gateway.shutdown().await;
    });
}

/// A probe written by an embedder that panics: it runs inside the supervisor.
struct PanickingProbe;

#[async_trait::async_trait]
impl HealthProbe for PanickingProbe {
    async fn probe(&self, _upstream: &Upstream) -> Result<(), BoxError> {
        panic!("the probe exploded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_supervisor_ends_in_failed_with_an_alert() {
    let marker = format!("gw-panic-{}", std::process::id());
    let spec = ServerSpec::stdio("everything", &peer_bin("mcp-server-everything"), ["stdio"])
        .expect("valid spec")
        .with_env("GW_TEST_MARKER", marker.clone());
    let gateway = Gateway::builder()
        .health_probe(Arc::new(PanickingProbe))
        .build();
    let mut events = gateway.subscribe();
    gateway.add_server(quick(spec)).await.expect("connects");

    let alert = next_matching(&mut events, "an alert about the panic", |e| {
        matches!(e, GatewayEvent::AlertRaised { .. })
    })
    .await;
    let GatewayEvent::AlertRaised { kind, message, .. } = alert else {
        unreachable!("filtered above")
    };
    assert_eq!(kind, AlertKind::Failed);
    assert!(message.contains("the probe exploded"), "{message}");
    let snapshot = gateway.server("everything").expect("still listed");
    assert_eq!(snapshot.status, ServerStatus::Failed, "{snapshot:?}");
    assert!(
        snapshot
            .last_error
            .is_some_and(|error| error.contains("the probe exploded")),
        "the reason stays visible"
    );
    eventually("the child stopped", || {
        processes_with_env(&marker).is_empty()
    })
    .await;
    gateway.shutdown().await;
}

/// A probe that counts its runs and always passes.
#[derive(Default)]
struct CountingProbe(AtomicUsize);

#[async_trait::async_trait]
impl HealthProbe for CountingProbe {
    async fn probe(&self, _upstream: &Upstream) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_with_a_zero_interval_is_refused_not_run() {
    let mut spec = ServerSpec::stdio("everything", &peer_bin("mcp-server-everything"), ["stdio"])
        .expect("valid spec");
    // The fields are public, so an embedder can bypass the clamping setters.
    spec.health.interval = Duration::ZERO;
    let probes = Arc::new(CountingProbe::default());
    let gateway = Gateway::builder().health_probe(probes.clone()).build();
    let err = gateway
        .add_server(spec)
        .await
        .expect_err("an interval of zero is refused");
    assert!(
        matches!(err, Error::InvalidSpec(ref message) if message.contains("health.interval")),
        "{err:?}"
    );
    let snapshot = gateway.server("everything").expect("listed");
    assert_eq!(snapshot.status, ServerStatus::Failed, "{snapshot:?}");
    assert!(snapshot.alerts.contains(&AlertKind::Failed));

    // Through the setter the same wish is clamped to the shortest interval, and probes run.
    let clamped = ServerSpec::stdio("clamped", &peer_bin("mcp-server-everything"), ["stdio"])
        .expect("valid spec")
        .with_health(HealthConfig::default().with_interval(Duration::ZERO));
    gateway.add_server(clamped).await.expect("runs");
    eventually("three probes", || probes.0.load(Ordering::Relaxed) >= 3).await;
    assert_eq!(status_of(&gateway, "clamped"), Some(ServerStatus::Healthy));
    gateway.shutdown().await;
}

/// The first reconnect after a lost connection goes at once: a backoff long enough to be seen
/// (a minute) applies only from the second consecutive failure, so the retry announced after a
/// killed child has no delay and the server answers again without waiting for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_reconnect_after_a_lost_connection_goes_at_once() {
    let marker = format!("gw-first-retry-{}", std::process::id());
    let script = repo_root().join("mcp-gateway-core/tests/fixtures/misbehaving_server.py");
    let spec = ServerSpec::stdio("pong", "python3", [script.display().to_string()])
        .expect("valid spec")
        .with_protocol(ProtocolPreference::Session)
        .with_env("GW_TEST_MARKER", marker.clone())
        .with_restart(
            RestartPolicy::default().with_backoff(Duration::from_secs(60), Duration::from_secs(60)),
        );
    let gateway = Gateway::builder().server(spec).build();
    let mut events = gateway.subscribe();
    gateway.start().await;
    let pids = processes_with_env(&marker);
    assert_eq!(pids.len(), 1, "one child: {pids:?}");

    std::process::Command::new("kill")
        .args(["-9", &pids[0].to_string()])
        .status()
        .expect("kill runs");
    let scheduled = next_matching(&mut events, "the first retry", |e| {
        matches!(e, GatewayEvent::ReconnectScheduled { .. })
    })
    .await;
    let GatewayEvent::ReconnectScheduled {
        attempt, delay_ms, ..
    } = scheduled
    else {
        unreachable!("filtered above")
    };
    assert_eq!(attempt, 1);
    assert_eq!(delay_ms, 0, "the first retry waits for no backoff");
    next_matching(&mut events, "healthy again", |e| {
        matches!(
            e,
            GatewayEvent::StatusChanged {
                to: ServerStatus::Healthy,
                ..
            }
        )
    })
    .await;
    let pong = gateway
        .call_tool("pong__pong", json!({}))
        .await
        .expect("calls succeed again");
    assert_eq!(first_text(&pong), "pong");
    gateway.shutdown().await;
}

/// A stdio server that closes its stdout on its first call and lives on: no answer can arrive
/// once its output is closed, whatever the process does next.
const CLOSES_ITS_OUTPUT: &str = r#"
import json, os, sys, time
for line in sys.stdin:
    request = json.loads(line)
    method, rid = request.get("method"), request.get("id")
    if rid is None:
        continue
    if method == "initialize":
        result = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                  "serverInfo": {"name": "mute", "version": "0"}}
    elif method == "tools/list":
        result = {"tools": [{"name": "go", "inputSchema": {"type": "object"}}]}
    elif method == "tools/call":
        os.close(1)
        time.sleep(120)
    else:
        result = {}
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": rid, "result": result}) + "\n")
    sys.stdout.flush()
"#;

/// A call in flight fails as soon as its stdio server closes its output, not when the process
/// exits or the call times out; the server is then stopped and started again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_fails_once_its_stdio_server_closes_its_output() {
    let marker = format!("gw-mute-{}", std::process::id());
    let spec = ServerSpec::stdio("mute", "python3", ["-c", CLOSES_ITS_OUTPUT])
        .expect("valid spec")
        .with_protocol(ProtocolPreference::Session)
        .with_request_timeout(Duration::from_secs(120))
        .with_env("GW_TEST_MARKER", marker.clone());
    let gateway = Gateway::builder().server(spec).build();
    let mut events = gateway.subscribe();
    gateway.start().await;
    let first = processes_with_env(&marker);
    assert_eq!(first.len(), 1, "one child: {first:?}");

    // The process lives two minutes and the call may take as long: only the closed output can
    // end the call before this deadline.
    let outcome = tokio::time::timeout(
        Duration::from_secs(10),
        gateway.call_tool("mute__go", json!({})),
    )
    .await
    .expect("the call fails instead of waiting for the process to exit");
    match outcome {
        Err(Error::Closed { reason, .. }) => {
            assert!(reason.contains("closed its output"), "{reason}")
        }
        other => panic!("expected a closed-connection error, got {other:?}"),
    }
    next_matching(&mut events, "reconnecting", |e| {
        matches!(
            e,
            GatewayEvent::StatusChanged {
                to: ServerStatus::Reconnecting,
                ..
            }
        )
    })
    .await;
    eventually("the mute child replaced", || {
        let now = processes_with_env(&marker);
        now.len() == 1 && now != first
    })
    .await;
    gateway.shutdown().await;
}
