use std::path::Path;
use std::time::Duration;

use mcp_gateway_core::{HealthConfig, TransportSpec};

use super::*;

#[test]
fn toml_servers_of_every_transport() {
    let config = parse(
        r#"
        [gateway]
        listen = "127.0.0.1:5000"
        separator = "."
        prefix = "on_collision"

        [servers.memory]
        command = "npx"
        args = ["-y", "@modelcontextprotocol/server-memory"]
        env = { MEMORY_FILE_PATH = "/tmp/m.jsonl" }
        cwd = "work"

        [servers.search]
        url = "http://127.0.0.1:4200/mcp"
        headers = { Authorization = "Bearer secret" }
        deny_tools = ["delete_everything"]

        [servers.old]
        url = "http://127.0.0.1:4300/sse"
        transport = "sse"
        enabled = false
        "#,
        Path::new("/etc/gw/gateway.toml"),
    )
    .expect("valid");
    assert_eq!(config.listen.as_deref(), Some("127.0.0.1:5000"));
    assert_eq!(config.naming.separator, ".");
    assert_eq!(config.servers.len(), 3);
    let memory = config
        .servers
        .iter()
        .find(|s| s.id.as_str() == "memory")
        .expect("memory");
    let TransportSpec::Stdio(stdio) = &memory.transport else {
        panic!("stdio expected")
    };
    assert_eq!(stdio.cwd.as_deref(), Some(Path::new("/etc/gw/work")));
    assert_eq!(stdio.env["MEMORY_FILE_PATH"].expose(), "/tmp/m.jsonl");
    let old = config
        .servers
        .iter()
        .find(|s| s.id.as_str() == "old")
        .expect("old");
    assert!(matches!(old.transport, TransportSpec::Sse(_)));
    assert!(!old.enabled);
    // Secrets do not print.
    assert!(!format!("{config:?}").contains("secret"));
}

#[test]
fn claude_desktop_json_is_read_as_is() {
    let config = parse(
        r#"{
          "mcpServers": {
            "everything": { "command": "npx", "args": ["-y", "@modelcontextprotocol/server-everything"], "autoApprove": [] },
            "remote": { "type": "sse", "url": "https://example.com/sse", "disabled": true }
          },
          "globalShortcut": "Ctrl+Space"
        }"#,
        Path::new("claude_desktop_config.json"),
    )
    .expect("valid");
    assert_eq!(config.servers.len(), 2);
    let remote = config
        .servers
        .iter()
        .find(|s| s.id.as_str() == "remote")
        .expect("remote");
    assert!(matches!(remote.transport, TransportSpec::Sse(_)));
    assert!(!remote.enabled);
}

#[test]
fn errors_name_the_key_and_the_problem() {
    let err = parse("[servers.x]\nargs = []\n", Path::new("g.toml")).expect_err("no command");
    assert!(
        err.contains("servers.x") && err.contains("command"),
        "{err}"
    );
    let err = parse(
        "[servers.x]\ncommand = \"a\"\nurl = \"http://h\"\n",
        Path::new("g.toml"),
    )
    .expect_err("both");
    assert!(
        err.contains("servers.x") && err.contains("not both"),
        "{err}"
    );
    let err = parse("[servers.x]\nurl = \"ftp://h\"\n", Path::new("g.toml")).expect_err("scheme");
    assert!(
        err.contains("servers.x: url") && err.contains("http or https"),
        "{err}"
    );
    let err = parse("[servers.x]\ncomand = \"a\"\n", Path::new("g.toml")).expect_err("typo");
    assert!(err.contains("comand"), "{err}");
    let err = parse(
        "[servers.\"bad id\"]\ncommand = \"a\"\n",
        Path::new("g.toml"),
    )
    .expect_err("id");
    assert!(err.contains("bad id"), "{err}");
    let err = parse("{}", Path::new("c.json")).expect_err("empty json");
    assert!(err.contains("mcpServers"), "{err}");
}

#[test]
fn discovery_sources_are_configured_in_their_table() {
    let config = parse(
        "[discovery]\nenv = true\nprobe_ports = true\ndns_srv = [\"_mcp._tcp.example.internal\"]\n",
        Path::new("g.toml"),
    )
    .expect("valid");
    assert!(config.discovery.env);
    assert_eq!(
        config.discovery.probe_ports,
        [
            ("memory".to_owned(), 4100),
            ("storage".to_owned(), 4200),
            ("bedrock".to_owned(), 4300)
        ]
    );
    assert_eq!(config.discovery.dns_srv, ["_mcp._tcp.example.internal"]);
    let named = parse(
        "[discovery]\nprobe_ports = { search = 4500 }\n",
        Path::new("g.toml"),
    )
    .expect("valid");
    assert_eq!(named.discovery.probe_ports, [("search".to_owned(), 4500)]);
    let err = parse("[discovery]\nprobe = true\n", Path::new("g.toml")).expect_err("typo");
    assert!(err.contains("probe"), "{err}");
}

#[test]
fn sinks_are_configured_and_their_secrets_stay_hidden() {
    let config = parse(
        "[sinks]\nwebhook = \"https://hooks.example.com/services/T0/B0/secret-token\"\nwebhook_headers = { Authorization = \"Bearer hidden\" }\nevents_file = \"events.jsonl\"\n",
        Path::new("/etc/gw/g.toml"),
    )
    .expect("valid");
    let (url, headers) = config.sinks.webhook.as_ref().expect("webhook");
    assert!(url.expose().ends_with("secret-token"));
    assert_eq!(headers[0].1.expose(), "Bearer hidden");
    assert_eq!(
        config.sinks.events_file.as_deref(),
        Some(Path::new("/etc/gw/events.jsonl"))
    );
    let printed = format!("{:?}", config.sinks);
    assert!(
        !printed.contains("secret-token") && !printed.contains("hidden"),
        "{printed}"
    );
}

#[test]
fn health_and_restart_are_set_per_server() {
    let config = parse(
        "[servers.x]\ncommand = \"a\"\nhealth = { interval_ms = 2000, unhealthy_threshold = 5 }\nrestart = { max_failures = 2, window_secs = 30 }\n",
        Path::new("g.toml"),
    )
    .expect("valid");
    let spec = &config.servers[0];
    assert_eq!(spec.health.interval, Duration::from_secs(2));
    assert_eq!(spec.health.unhealthy_threshold, 5);
    assert_eq!(spec.health.timeout, HealthConfig::default().timeout);
    assert_eq!(
        (spec.restart.max_failures, spec.restart.window),
        (2, Duration::from_secs(30))
    );
    let err = parse(
        "[servers.x]\ncommand = \"a\"\nhealth = { every = 1 }\n",
        Path::new("g.toml"),
    )
    .expect_err("unknown key");
    assert!(err.contains("every"), "{err}");
}

#[test]
fn every_timing_and_count_is_range_checked_with_its_key() {
    let cases = [
        ("connect_timeout_secs = 0", "connect_timeout_secs"),
        ("connect_timeout_secs = 86401", "connect_timeout_secs"),
        ("request_timeout_secs = 0", "request_timeout_secs"),
        (
            "request_timeout_secs = 18446744073709551615",
            "request_timeout_secs",
        ),
        ("health = { interval_ms = 0 }", "health.interval_ms"),
        ("health = { interval_ms = 9 }", "health.interval_ms"),
        (
            "health = { interval_ms = 18446744073709551615 }",
            "health.interval_ms",
        ),
        ("health = { timeout_ms = 0 }", "health.timeout_ms"),
        ("health = { timeout_ms = 86400001 }", "health.timeout_ms"),
        (
            "health = { healthy_threshold = 0 }",
            "health.healthy_threshold",
        ),
        (
            "health = { unhealthy_threshold = 0 }",
            "health.unhealthy_threshold",
        ),
        (
            "health = { unhealthy_threshold = 1001 }",
            "health.unhealthy_threshold",
        ),
        (
            "restart = { initial_backoff_ms = 0 }",
            "restart.initial_backoff_ms",
        ),
        (
            "restart = { max_backoff_ms = 86400001 }",
            "restart.max_backoff_ms",
        ),
        (
            "restart = { initial_backoff_ms = 2000, max_backoff_ms = 1000 }",
            "restart.max_backoff_ms",
        ),
        // Below the default initial backoff (50 ms).
        (
            "restart = { max_backoff_ms = 10 }",
            "restart.max_backoff_ms",
        ),
        ("restart = { max_failures = 0 }", "restart.max_failures"),
        ("restart = { max_failures = 1001 }", "restart.max_failures"),
        ("restart = { window_secs = 0 }", "restart.window_secs"),
        ("restart = { window_secs = 86401 }", "restart.window_secs"),
    ];
    for (setting, key) in cases {
        let text = format!("[servers.memory]\ncommand = \"a\"\n{setting}\n");
        let err = parse(&text, Path::new("g.toml")).expect_err(setting);
        assert!(
            err.starts_with(&format!("servers.memory.{key}: ")),
            "{setting}: {err}"
        );
    }
    // The same key in the JSON format.
    let err = parse(
        r#"{"mcpServers": {"memory": {"command": "a", "health": {"interval_ms": 0}}}}"#,
        Path::new("c.json"),
    )
    .expect_err("zero interval");
    assert!(
        err.starts_with("servers.memory.health.interval_ms: "),
        "{err}"
    );
}

#[test]
fn the_ends_of_each_range_are_accepted() {
    let config = parse(
        "[servers.low]\ncommand = \"a\"\nconnect_timeout_secs = 1\nrequest_timeout_secs = 1\n\
         health = { interval_ms = 10, timeout_ms = 1, healthy_threshold = 1, unhealthy_threshold = 1 }\n\
         restart = { initial_backoff_ms = 1, max_backoff_ms = 1, max_failures = 1, window_secs = 1 }\n\
         [servers.high]\ncommand = \"a\"\nconnect_timeout_secs = 86400\nrequest_timeout_secs = 86400\n\
         health = { interval_ms = 86400000, timeout_ms = 86400000, healthy_threshold = 1000, unhealthy_threshold = 1000 }\n\
         restart = { initial_backoff_ms = 86400000, max_backoff_ms = 86400000, max_failures = 1000, window_secs = 86400 }\n",
        Path::new("g.toml"),
    )
    .expect("valid");
    for spec in &config.servers {
        spec.validate().expect("within the library's limits");
    }
    let low = &config
        .servers
        .iter()
        .find(|s| s.id.as_str() == "low")
        .expect("low");
    assert_eq!(low.health.interval, Duration::from_millis(10));
    assert_eq!(low.restart.max_backoff, Duration::from_millis(1));
}

#[test]
fn a_range_error_names_the_file_and_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("gateway.toml");
    std::fs::write(
        &path,
        "[servers.memory]\ncommand = \"a\"\nhealth = { interval_ms = 0 }\n",
    )
    .expect("written");
    let err = load(&path).expect_err("zero interval").to_string();
    assert!(
        err.starts_with(&format!(
            "{}: servers.memory.health.interval_ms: 0 is outside 10..=86400000",
            path.display()
        )),
        "{err}"
    );
}

#[test]
fn the_gateway_limits_and_event_buffers_are_set_in_their_tables() {
    let config = parse(
        "[gateway]\nmax_body_bytes = 1024\nmax_sessions = 7\nmax_listeners = 8\n\
         max_sessions_per_peer = 6\nsession_idle_timeout_secs = 60\nmax_calls_per_session = 9\nmax_calls = 10\n\
         [events]\nhistory = 11\nhistory_bytes = 2048\nsubscriber_capacity = 12\n\
         [servers.memory]\ncommand = \"a\"\nmax_concurrent_calls = 13\n",
        Path::new("g.toml"),
    )
    .expect("valid");
    assert_eq!(config.max_body_bytes, Some(1024));
    let downstream = &config.downstream;
    assert_eq!(
        (
            downstream.max_sessions,
            downstream.max_sessions_per_peer,
            downstream.max_listeners,
            downstream.session_idle_timeout,
            downstream.max_calls_per_session,
            downstream.max_calls,
        ),
        (7, 6, 8, Duration::from_secs(60), 9, 10)
    );
    assert_eq!(
        (
            config.events.history,
            config.events.history_bytes,
            config.events.subscriber_capacity
        ),
        (11, 2048, 12)
    );
    assert_eq!(config.servers[0].max_concurrent_calls, 13);

    // Unset, each keeps the library's default.
    let config = parse("", Path::new("g.toml")).expect("valid");
    assert_eq!(config.max_body_bytes, None);
    let defaults = DownstreamConfig::default();
    assert_eq!(config.downstream.max_calls, defaults.max_calls);
    assert_eq!(
        config.events.history_bytes,
        EventBusConfig::default().history_bytes
    );
}

#[test]
fn each_gateway_limit_is_range_checked_with_its_key() {
    let cases = [
        (
            "[gateway]\nmax_body_bytes = 1023",
            "gateway.max_body_bytes: 1023 is outside 1024..=1073741824",
        ),
        (
            "[gateway]\nmax_body_bytes = 1073741825",
            "gateway.max_body_bytes: ",
        ),
        (
            "[gateway]\nmax_sessions = 0",
            "gateway.max_sessions: 0 is outside 1..=1000000",
        ),
        (
            "[gateway]\nmax_sessions_per_peer = 0",
            "gateway.max_sessions_per_peer: 0 is outside 1..=1000000",
        ),
        (
            "[gateway]\nmax_listeners = 1000001",
            "gateway.max_listeners: ",
        ),
        (
            "[gateway]\nsession_idle_timeout_secs = 0",
            "gateway.session_idle_timeout_secs: 0 is outside 1..=86400",
        ),
        (
            "[gateway]\nsession_idle_timeout_secs = 86401",
            "gateway.session_idle_timeout_secs: ",
        ),
        (
            "[gateway]\nmax_calls_per_session = 0",
            "gateway.max_calls_per_session: 0 is outside 1..=1000000",
        ),
        ("[gateway]\nmax_calls = 1000001", "gateway.max_calls: "),
        (
            "[events]\nhistory = 0",
            "events.history: 0 is outside 1..=1000000",
        ),
        ("[events]\nhistory_bytes = 1", "events.history_bytes: "),
        (
            "[events]\nsubscriber_capacity = 0",
            "events.subscriber_capacity: ",
        ),
        (
            "[servers.memory]\ncommand = \"a\"\nmax_concurrent_calls = 0",
            "servers.memory.max_concurrent_calls: 0 is outside 1..=1000000",
        ),
    ];
    for (text, expected) in cases {
        let err = parse(text, Path::new("g.toml")).expect_err(text);
        assert!(err.starts_with(expected), "{text}: {err}");
    }
    // The ends of each range are accepted.
    for (low_or_high, text) in [
        (
            "low",
            "[gateway]\nmax_body_bytes = 1024\nmax_sessions = 1\nmax_listeners = 1\n\
             max_sessions_per_peer = 1\nsession_idle_timeout_secs = 1\nmax_calls_per_session = 1\nmax_calls = 1\n\
             [events]\nhistory = 1\nhistory_bytes = 1024\nsubscriber_capacity = 1\n\
             [servers.memory]\ncommand = \"a\"\nmax_concurrent_calls = 1\n",
        ),
        (
            "high",
            "[gateway]\nmax_body_bytes = 1073741824\nmax_sessions = 1000000\n\
             max_listeners = 1000000\nmax_sessions_per_peer = 1000000\n\
             session_idle_timeout_secs = 86400\n\
             max_calls_per_session = 1000000\nmax_calls = 1000000\n\
             [events]\nhistory = 1000000\nhistory_bytes = 1073741824\n\
             subscriber_capacity = 1000000\n\
             [servers.memory]\ncommand = \"a\"\nmax_concurrent_calls = 1000000\n",
        ),
    ] {
        let config = parse(text, Path::new("g.toml")).expect(low_or_high);
        config.servers[0]
            .validate()
            .expect("within the library's limits");
    }
}
