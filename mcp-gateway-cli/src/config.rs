//! The config file: TOML (`[servers.NAME]` tables) or the JSON `mcpServers` format that Claude
//! Desktop, Cursor and VS Code use, read as is. Parsed in two steps — raw serde structs, then
//! validated specs — and every error names the file, the key and what is wrong.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mcp_gateway_core::{
    DownstreamConfig, EventBusConfig, HealthConfig, NamingPolicy, PrefixMode, ProtocolPreference,
    RestartPolicy, Secret, ServerSpec, limits,
};
use serde::Deserialize;

/// A validated config file.
#[derive(Debug, Default)]
pub struct Config {
    /// The address to listen on, if the file sets one.
    pub listen: Option<String>,
    /// How tool and prompt names are formed.
    pub naming: NamingPolicy,
    /// The upstream servers, in file order.
    pub servers: Vec<ServerSpec>,
    /// Discovery sources to run beside the file.
    pub discovery: DiscoveryConfig,
    /// Where events and alerts go besides the log.
    pub sinks: SinksConfig,
    /// The downstream side's limits (`[gateway]` keys); read at start only.
    pub downstream: DownstreamConfig,
    /// The largest HTTP request body, if the file sets one (`[gateway] max_body_bytes`).
    pub max_body_bytes: Option<usize>,
    /// The event bus's buffers (`[events]`); read at start only.
    pub events: EventBusConfig,
}

/// The `[sinks]` table.
#[derive(Debug, Default)]
pub struct SinksConfig {
    /// A webhook that receives alerts (Slack-compatible `text`), with its request headers.
    pub webhook: Option<(Secret, Vec<(String, Secret)>)>,
    /// A file every event is appended to as one JSON line.
    pub events_file: Option<PathBuf>,
}

/// The `[discovery]` table: sources that find servers beside the file's own list.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// Read `MCP_SERVER_<NAME>_*` and `MCP_GATEWAY_SERVERS` from the environment.
    pub env: bool,
    /// Probe these `(server id, port)` pairs on 127.0.0.1 for an MCP endpoint.
    pub probe_ports: Vec<(String, u16)>,
    /// Resolve these DNS SRV names, one server per target.
    pub dns_srv: Vec<String>,
}

/// A config error: the file and what is wrong, key first.
#[derive(Debug)]
pub struct ConfigError {
    file: PathBuf,
    message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.message)
    }
}

impl std::error::Error for ConfigError {}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawToml {
    #[serde(default)]
    gateway: RawGateway,
    #[serde(default)]
    discovery: RawDiscovery,
    #[serde(default)]
    sinks: RawSinks,
    #[serde(default)]
    events: RawEvents,
    #[serde(default)]
    servers: BTreeMap<String, RawServer>,
}

/// `[gateway]`. The limits are read at start only: `max_body_bytes` 1 KiB to 1 GiB (default
/// 4 MiB), `max_sessions` and `max_listeners` 1 to a million (10,000 each),
/// `max_sessions_per_peer` 1 to a million (1,000),
/// `session_idle_timeout_secs` 1 s to a day (30 min), `max_calls_per_session` (256) and
/// `max_calls` (10,000) 1 to a million.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    listen: Option<String>,
    separator: Option<String>,
    prefix: Option<String>,
    max_body_bytes: Option<usize>,
    max_sessions: Option<usize>,
    max_sessions_per_peer: Option<usize>,
    max_listeners: Option<usize>,
    session_idle_timeout_secs: Option<u64>,
    max_calls_per_session: Option<usize>,
    max_calls: Option<usize>,
}

/// `[events]`: the event bus's buffers, read at start only: `history` (4096 events) and
/// `subscriber_capacity` (4096) 1 to a million, `history_bytes` 1 KiB to 1 GiB (8 MiB).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEvents {
    history: Option<usize>,
    history_bytes: Option<usize>,
    subscriber_capacity: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDiscovery {
    #[serde(default)]
    env: bool,
    /// `true` for the well-known ports (4100 memory, 4200 storage, 4300 bedrock), or a table of
    /// `id = port`.
    probe_ports: Option<RawPorts>,
    #[serde(default)]
    dns_srv: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSinks {
    webhook: Option<String>,
    #[serde(default)]
    webhook_headers: BTreeMap<String, String>,
    events_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawPorts {
    WellKnown(bool),
    Named(BTreeMap<String, u16>),
}

/// One server as written. The TOML form and the JSON `mcpServers` form share it; JSON files
/// carry keys of other tools (`autoApprove`, `timeout`, …), so JSON drops keys outside
/// [`SERVER_KEYS`] before parsing while TOML rejects them as typos.
#[derive(Deserialize, Default)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
struct RawServer {
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cwd: Option<PathBuf>,
    url: Option<String>,
    /// TOML: `streamable-http` (default) or `sse`. JSON: `stdio`, `http`, `streamable-http`, `sse`.
    #[serde(alias = "type")]
    transport: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    namespace: Option<String>,
    #[serde(default)]
    allow_tools: Vec<String>,
    #[serde(default)]
    deny_tools: Vec<String>,
    protocol: Option<String>,
    connect_timeout_secs: Option<u64>,
    request_timeout_secs: Option<u64>,
    #[serde(default)]
    tags: Vec<String>,
    enabled: Option<bool>,
    /// The JSON format's way to switch a server off.
    disabled: Option<bool>,
    health: Option<RawHealth>,
    restart: Option<RawRestart>,
    max_concurrent_calls: Option<usize>,
}

/// `health = { interval_ms, timeout_ms, healthy_threshold, unhealthy_threshold }`: the interval
/// 10 ms to a day (86400000), the timeout 1 ms to a day, each threshold 1 to 1000.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    interval_ms: Option<u64>,
    timeout_ms: Option<u64>,
    healthy_threshold: Option<u32>,
    unhealthy_threshold: Option<u32>,
}

/// `restart = { initial_backoff_ms, max_backoff_ms, max_failures, window_secs }`: each backoff 1 ms
/// to a day with the initial one at most the max, max_failures 1 to 1000, the window 1 s to a day.
/// `connect_timeout_secs` and `request_timeout_secs` are 1 s to a day, `max_concurrent_calls` 1 to
/// a million.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRestart {
    initial_backoff_ms: Option<u64>,
    max_backoff_ms: Option<u64>,
    max_failures: Option<u32>,
    window_secs: Option<u64>,
}

/// The keys of [`RawServer`], as written in files.
const SERVER_KEYS: [&str; 20] = [
    "command",
    "args",
    "env",
    "cwd",
    "url",
    "transport",
    "type",
    "headers",
    "namespace",
    "allow_tools",
    "deny_tools",
    "protocol",
    "connect_timeout_secs",
    "request_timeout_secs",
    "tags",
    "enabled",
    "disabled",
    "health",
    "restart",
    "max_concurrent_calls",
];

#[derive(Deserialize)]
struct RawJson {
    #[serde(rename = "mcpServers", alias = "servers")]
    servers: Option<BTreeMap<String, serde_json::Map<String, serde_json::Value>>>,
}

/// Reads and validates a config file; the format is chosen by extension (`.json` or TOML).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let error = |message: String| ConfigError {
        file: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|err| error(format!("cannot read: {err}")))?;
    parse(&text, path).map_err(error)
}

/// Parses config text; `path` picks the format and resolves relative `cwd`s.
pub fn parse(text: &str, path: &Path) -> Result<Config, String> {
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let (gateway, servers, discovery, sinks, events) = if is_json {
        let raw: RawJson =
            serde_json::from_str(text).map_err(|err| format!("invalid JSON: {err}"))?;
        let servers = raw
            .servers
            .ok_or("no `mcpServers` (or `servers`) object at the top level")?
            .into_iter()
            .map(|(name, mut fields)| {
                fields.retain(|key, _| SERVER_KEYS.contains(&key.as_str()));
                serde_json::from_value(serde_json::Value::Object(fields))
                    .map(|server| (name.clone(), server))
                    .map_err(|err| format!("mcpServers.{name}: {err}"))
            })
            .collect::<Result<BTreeMap<String, RawServer>, _>>()?;
        (
            RawGateway::default(),
            servers,
            RawDiscovery::default(),
            RawSinks::default(),
            RawEvents::default(),
        )
    } else {
        let raw: RawToml = toml::from_str(text).map_err(|err| format!("invalid TOML: {err}"))?;
        (
            raw.gateway,
            raw.servers,
            raw.discovery,
            raw.sinks,
            raw.events,
        )
    };
    let downstream = ranges::downstream(&gateway)?;
    let events = ranges::event_buffers(&events)?;
    ranges::check_count(
        "gateway.max_body_bytes",
        gateway.max_body_bytes,
        &limits::BYTES,
    )?;
    let base = path.parent().unwrap_or(Path::new("."));
    let servers = servers
        .into_iter()
        .map(|(name, raw)| {
            ranges::check_ranges(&raw).map_err(|err| format!("servers.{name}.{err}"))?;
            server(&name, raw, is_json, base).map_err(|err| format!("servers.{name}: {err}"))
        })
        .collect::<Result<_, _>>()?;
    let mut naming = NamingPolicy::default();
    if let Some(separator) = gateway.separator {
        naming = naming.with_separator(separator);
    }
    if let Some(prefix) = gateway.prefix {
        let mode = match prefix.as_str() {
            "always" => PrefixMode::Always,
            "on_collision" => PrefixMode::OnCollision,
            "never" => PrefixMode::Never,
            other => {
                return Err(format!(
                    "gateway.prefix: `{other}` is not one of `always`, `on_collision`, `never`"
                ));
            }
        };
        naming = naming.with_mode(mode);
    }
    let probe_ports = match discovery.probe_ports {
        None | Some(RawPorts::WellKnown(false)) => Vec::new(),
        Some(RawPorts::WellKnown(true)) => {
            mcp_gateway_core::discovery::port_probe::WELL_KNOWN_PORTS
                .iter()
                .map(|(id, port)| ((*id).to_owned(), *port))
                .collect()
        }
        Some(RawPorts::Named(ports)) => ports.into_iter().collect(),
    };
    Ok(Config {
        listen: gateway.listen,
        naming,
        servers,
        discovery: DiscoveryConfig {
            env: discovery.env,
            probe_ports,
            dns_srv: discovery.dns_srv,
        },
        sinks: SinksConfig {
            webhook: sinks.webhook.map(|url| {
                let headers = sinks
                    .webhook_headers
                    .into_iter()
                    .map(|(name, value)| (name, Secret::new(value)))
                    .collect();
                (Secret::new(url), headers)
            }),
            events_file: sinks.events_file.map(|file| base.join(file)),
        },
        downstream,
        max_body_bytes: gateway.max_body_bytes,
        events,
    })
}

fn server(name: &str, raw: RawServer, is_json: bool, base: &Path) -> Result<ServerSpec, String> {
    let transport = raw.transport.as_deref();
    let mut spec = match (&raw.command, &raw.url) {
        (Some(_), Some(_)) => return Err("give either `command` or `url`, not both".into()),
        (None, None) => {
            return Err("needs `command` (a child process) or `url` (an HTTP server)".into());
        }
        (Some(command), None) => {
            if !matches!(transport, None | Some("stdio")) {
                return Err(format!(
                    "`{}` does not go with `command`",
                    transport.unwrap_or_default()
                ));
            }
            let mut spec =
                ServerSpec::stdio(name, command, raw.args).map_err(|err| err.to_string())?;
            for (key, value) in raw.env {
                spec = spec.with_env(key, value);
            }
            if let Some(cwd) = raw.cwd {
                spec = spec.with_cwd(base.join(cwd));
            }
            spec
        }
        (None, Some(url)) => {
            let spec = match transport {
                None | Some("streamable-http" | "http" | "streamableHttp") => {
                    ServerSpec::streamable_http(name, url)
                }
                Some("sse") => ServerSpec::sse(name, url),
                Some(other) => {
                    let key = if is_json { "type" } else { "transport" };
                    return Err(format!(
                        "{key}: `{other}` is not `streamable-http` or `sse`"
                    ));
                }
            };
            let mut spec = spec.map_err(|err| format!("url: {err}"))?;
            for (key, value) in raw.headers {
                spec = spec.with_header(key, value);
            }
            spec
        }
    };
    if let Some(namespace) = raw.namespace {
        spec = spec.with_namespace(namespace);
    }
    if let Some(protocol) = raw.protocol {
        spec = spec.with_protocol(match protocol.as_str() {
            "auto" => ProtocolPreference::Auto,
            "session" => ProtocolPreference::Session,
            "stateless" => ProtocolPreference::Stateless,
            other => {
                return Err(format!(
                    "protocol: `{other}` is not `auto`, `session` or `stateless`"
                ));
            }
        });
    }
    if let Some(secs) = raw.connect_timeout_secs {
        spec = spec.with_connect_timeout(Duration::from_secs(secs));
    }
    if let Some(secs) = raw.request_timeout_secs {
        spec = spec.with_request_timeout(Duration::from_secs(secs));
    }
    for tag in raw.tags {
        spec = spec.with_tag(tag);
    }
    if let Some(health) = raw.health {
        let defaults = HealthConfig::default();
        let ms =
            |value: Option<u64>, default: Duration| value.map_or(default, Duration::from_millis);
        spec = spec.with_health(
            defaults
                .with_interval(ms(health.interval_ms, defaults.interval))
                .with_timeout(ms(health.timeout_ms, defaults.timeout))
                .with_thresholds(
                    health
                        .healthy_threshold
                        .unwrap_or(defaults.healthy_threshold),
                    health
                        .unhealthy_threshold
                        .unwrap_or(defaults.unhealthy_threshold),
                ),
        );
    }
    if let Some(restart) = raw.restart {
        let defaults = RestartPolicy::default();
        let ms =
            |value: Option<u64>, default: Duration| value.map_or(default, Duration::from_millis);
        spec = spec.with_restart(
            defaults
                .with_backoff(
                    ms(restart.initial_backoff_ms, defaults.initial_backoff),
                    ms(restart.max_backoff_ms, defaults.max_backoff),
                )
                .with_max_failures(
                    restart.max_failures.unwrap_or(defaults.max_failures),
                    restart
                        .window_secs
                        .map_or(defaults.window, Duration::from_secs),
                ),
        );
    }
    if let Some(max) = raw.max_concurrent_calls {
        spec = spec.with_max_concurrent_calls(max);
    }
    let enabled = raw.enabled.unwrap_or(true) && !raw.disabled.unwrap_or(false);
    Ok(spec
        .with_allow_tools(raw.allow_tools)
        .with_deny_tools(raw.deny_tools)
        .with_enabled(enabled))
}

mod ranges;
#[cfg(test)]
mod tests;
