//! The environment scheme: every form it accepts, and an error naming the variable for each
//! mistake it rejects.

use super::*;
use crate::spec::TransportSpec;

fn parse(vars: &[(&str, &str)]) -> Result<Vec<ServerSpec>, String> {
    EnvSource::new(vars.iter().copied())
        .parse()
        .map_err(|err| err.to_string())
}

fn error(vars: &[(&str, &str)]) -> String {
    match parse(vars) {
        Ok(specs) => panic!("expected an error, got {specs:?}"),
        Err(err) => err,
    }
}

#[test]
fn every_form_of_the_scheme() {
    let specs = parse(&[
        ("MCP_SERVER_MEMORY_URL", "http://127.0.0.1:4100/mcp"),
        ("MCP_SERVER_LEGACY_URL", "http://127.0.0.1:9000/sse"),
        ("MCP_SERVER_LEGACY_TRANSPORT", "SSE"),
        ("MCP_SERVER_TIME_COMMAND", "uvx"),
        (
            "MCP_SERVER_TIME_ARGS",
            "  mcp-server-time\t--local-timezone UTC ",
        ),
        ("MCP_SERVER_FILES_COMMAND", "npx"),
        (
            "MCP_SERVER_FILES_ARGS",
            r#"["-y", "@modelcontextprotocol/server-filesystem", "/tmp/with space"]"#,
        ),
        ("MCP_SERVER_FILES_TRANSPORT", "stdio"),
        (
            "MCP_GATEWAY_SERVERS",
            " storage=http://127.0.0.1:4200/mcp, Bedrock = http://127.0.0.1:4300/mcp ,",
        ),
    ])
    .expect("valid");
    let ids: Vec<&str> = specs.iter().map(|spec| spec.id.as_str()).collect();
    assert_eq!(
        ids,
        ["Bedrock", "files", "legacy", "memory", "storage", "time"]
    );

    let by_id = |id: &str| {
        &specs
            .iter()
            .find(|spec| spec.id.as_str() == id)
            .expect(id)
            .transport
    };
    let TransportSpec::StreamableHttp(memory) = by_id("memory") else {
        panic!("memory is streamable http: {:?}", by_id("memory"));
    };
    assert_eq!(memory.url, "http://127.0.0.1:4100/mcp");
    let TransportSpec::Sse(legacy) = by_id("legacy") else {
        panic!("legacy is sse: {:?}", by_id("legacy"));
    };
    assert_eq!(legacy.url, "http://127.0.0.1:9000/sse");
    let TransportSpec::Stdio(time) = by_id("time") else {
        panic!("time is stdio: {:?}", by_id("time"));
    };
    assert_eq!(time.command, "uvx");
    assert_eq!(time.args, ["mcp-server-time", "--local-timezone", "UTC"]);
    let TransportSpec::Stdio(files) = by_id("files") else {
        panic!("files is stdio: {:?}", by_id("files"));
    };
    assert_eq!(
        files.args,
        [
            "-y",
            "@modelcontextprotocol/server-filesystem",
            "/tmp/with space"
        ]
    );
    let TransportSpec::StreamableHttp(bedrock) = by_id("Bedrock") else {
        panic!("Bedrock is streamable http: {:?}", by_id("Bedrock"));
    };
    assert_eq!(bedrock.url, "http://127.0.0.1:4300/mcp");
}

#[test]
fn name_is_lowercased_and_keeps_underscores() {
    let specs = parse(&[(
        "MCP_SERVER_KNOWLEDGE_GRAPH_URL",
        "http://127.0.0.1:4100/mcp",
    )])
    .expect("valid");
    assert_eq!(specs[0].id.as_str(), "knowledge_graph");
}

#[test]
fn variables_outside_the_scheme_are_ignored() {
    let source = EnvSource::new([
        ("HOME", "/root"),
        ("MCP_SERVER_PORT", "8080"),
        ("MCP_GATEWAY_TOKEN", "secret"),
    ]);
    assert!(source.parse().expect("valid").is_empty());
    assert!(
        !format!("{source:?}").contains("HOME"),
        "only the scheme is kept"
    );
}

#[test]
fn debug_shows_names_not_values() {
    let source = EnvSource::new([("MCP_SERVER_A_URL", "http://user:hunter2@127.0.0.1/mcp")]);
    let debug = format!("{source:?}");
    assert!(debug.contains("MCP_SERVER_A_URL"), "{debug}");
    assert!(!debug.contains("hunter2"), "{debug}");
}

/// Some variables, and the parts the error message must contain.
type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);

#[test]
fn errors_name_the_variable() {
    let cases: &[Case<'_>] = &[
        (
            &[("MCP_SERVER_A_URL", "not a url")],
            &["`MCP_SERVER_A_URL`", "`not a url`"],
        ),
        (
            &[("MCP_SERVER_A_URL", "ftp://127.0.0.1/mcp")],
            &["`MCP_SERVER_A_URL`", "http or https"],
        ),
        (
            &[
                ("MCP_SERVER_A_URL", "http://127.0.0.1/mcp"),
                ("MCP_SERVER_A_TRANSPORT", "websocket"),
            ],
            &["`MCP_SERVER_A_TRANSPORT`", "`websocket`"],
        ),
        (
            &[
                ("MCP_SERVER_A_URL", "http://127.0.0.1/mcp"),
                ("MCP_SERVER_A_COMMAND", "npx"),
            ],
            &["`MCP_SERVER_A_URL`", "`MCP_SERVER_A_COMMAND`", "not both"],
        ),
        (
            &[
                ("MCP_SERVER_A_URL", "http://127.0.0.1/mcp"),
                ("MCP_SERVER_A_ARGS", "-y"),
            ],
            &["`MCP_SERVER_A_ARGS`", "`MCP_SERVER_A_COMMAND`"],
        ),
        (
            &[("MCP_SERVER_A_ARGS", "-y")],
            &[
                "`MCP_SERVER_A_ARGS`",
                "`MCP_SERVER_A_URL`",
                "`MCP_SERVER_A_COMMAND`",
            ],
        ),
        (
            &[
                ("MCP_SERVER_A_COMMAND", "npx"),
                ("MCP_SERVER_A_TRANSPORT", "sse"),
            ],
            &["`MCP_SERVER_A_TRANSPORT`", "`stdio`"],
        ),
        (
            &[("MCP_SERVER_A_COMMAND", "  ")],
            &["`MCP_SERVER_A_COMMAND`", "empty"],
        ),
        (
            &[
                ("MCP_SERVER_A_COMMAND", "npx"),
                ("MCP_SERVER_A_ARGS", r#"["-y", 3]"#),
            ],
            &["`MCP_SERVER_A_ARGS`", "JSON array of strings"],
        ),
        (
            &[("MCP_SERVER_BAD!_URL", "http://127.0.0.1/mcp")],
            &["`MCP_SERVER_BAD!_URL`", "`bad!`"],
        ),
        (
            &[("MCP_SERVER__URL", "http://127.0.0.1/mcp")],
            &["`MCP_SERVER__URL`", "server id ``"],
        ),
        (
            &[("MCP_GATEWAY_SERVERS", "a=http://127.0.0.1/mcp,b")],
            &["`MCP_GATEWAY_SERVERS`", "entry `b`"],
        ),
        (
            &[("MCP_GATEWAY_SERVERS", "a=/relative")],
            &["`MCP_GATEWAY_SERVERS`", "`/relative`"],
        ),
        (
            &[
                ("MCP_SERVER_A_URL", "http://127.0.0.1/mcp"),
                ("MCP_GATEWAY_SERVERS", "a=http://127.0.0.1:1/mcp"),
            ],
            &["server `a`", "`MCP_SERVER_A_URL`", "`MCP_GATEWAY_SERVERS`"],
        ),
        (
            &[
                ("MCP_SERVER_A_URL", "http://127.0.0.1/mcp"),
                ("MCP_SERVER_a_URL", "http://127.0.0.1/mcp"),
            ],
            &["server `a`", "`MCP_SERVER_A_URL`", "`MCP_SERVER_a_URL`"],
        ),
    ];
    for (vars, expected) in cases {
        let message = error(vars);
        for part in *expected {
            assert!(message.contains(part), "{message:?} lacks {part:?}");
        }
    }
}

#[test]
fn a_value_that_is_not_unicode_is_an_error_naming_it() {
    let mut source = EnvSource::new([("MCP_SERVER_A_URL", "http://127.0.0.1/mcp")]);
    source.not_unicode.push("MCP_SERVER_B_URL".to_owned());
    let message = source.parse().expect_err("rejected").to_string();
    assert!(message.contains("`MCP_SERVER_B_URL`"), "{message}");
}
