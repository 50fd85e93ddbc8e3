//! What a discovery source yields: one [`ServerSpec`] per upstream MCP server.
//!
//! Secrets (environment values, header values) live in [`Secret`], whose `Debug` never shows the
//! value, so a spec can be logged or put in an event without leaking credentials.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::transport::in_process::InProcessServer;

/// A server's stable id: also the default namespace prefix of its tools and prompts.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerId(Arc<str>);

impl ServerId {
    /// Validates an id: 1–64 characters of ASCII letters, digits, `-`, `_` or `.`.
    pub fn new(id: impl AsRef<str>) -> Result<Self, Error> {
        let id = id.as_ref();
        let valid = !id.is_empty()
            && id.len() <= 64
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if valid {
            Ok(Self(Arc::from(id)))
        } else {
            Err(Error::InvalidSpec(format!(
                "server id `{id}` must be 1-64 characters of letters, digits, `-`, `_` or `.`"
            )))
        }
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for ServerId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl serde::Serialize for ServerId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// A value that must never be printed: `Debug` shows `***`, and there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<T: Into<String>> From<T> for Secret {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

/// How the gateway reaches an upstream.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TransportSpec {
    /// A child process speaking newline-delimited JSON-RPC on stdin/stdout.
    Stdio(StdioSpec),
    /// The Streamable HTTP transport (one endpoint, POST + optional SSE).
    StreamableHttp(HttpSpec),
    /// The deprecated HTTP+SSE transport of 2024-11-05 (`GET /sse` + `POST /message`).
    Sse(HttpSpec),
    /// An rmcp server handler running in this process, connected through an in-memory pipe.
    InProcess(InProcessServer),
}

impl TransportSpec {
    /// A short name of the transport kind, for events and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            TransportSpec::Stdio(_) => "stdio",
            TransportSpec::StreamableHttp(_) => "streamable-http",
            TransportSpec::Sse(_) => "sse",
            TransportSpec::InProcess(_) => "in-process",
        }
    }
}

/// A child process to start.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StdioSpec {
    /// The program.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables (values are secrets), set on top of the gateway's own
    /// environment, which the child inherits without `MCP_GATEWAY_TOKEN` and `MCP_MEMORY_TOKEN`.
    pub env: BTreeMap<String, Secret>,
    /// The working directory; the gateway's own when `None`.
    pub cwd: Option<PathBuf>,
}

/// An HTTP endpoint.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct HttpSpec {
    /// The endpoint URL (`…/mcp` for Streamable HTTP, `…/sse` for legacy SSE).
    pub url: String,
    /// Extra request headers (values are secrets: they often carry tokens).
    pub headers: BTreeMap<String, Secret>,
}

/// The URL's `user:password@` is a secret like the header values: never printed.
impl std::fmt::Debug for HttpSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSpec")
            .field("url", &crate::error::redact_url(&self.url))
            .field("headers", &self.headers)
            .finish()
    }
}

/// Which protocol era to speak to an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ProtocolPreference {
    /// Probe `server/discover` (2026-07-28) and fall back to `initialize`.
    #[default]
    Auto,
    /// Always the session era (`initialize`, 2025-11-25 offered).
    Session,
    /// Always the stateless 2026-07-28 revision.
    Stateless,
}

pub mod limits;

/// How a server's health is probed while it is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HealthConfig {
    /// Time between probes.
    pub interval: Duration,
    /// Deadline of one probe.
    pub timeout: Duration,
    /// Consecutive successes that make a degraded or unhealthy server healthy again.
    pub healthy_threshold: u32,
    /// Consecutive failures that make a server unhealthy (it is then reconnected).
    pub unhealthy_threshold: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(5),
            healthy_threshold: 1,
            unhealthy_threshold: 3,
        }
    }
}

impl HealthConfig {
    /// Sets the probe interval, clamped into [`limits::PROBE_INTERVAL`] (10 ms to a day).
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = limits::clamp(interval, &limits::PROBE_INTERVAL);
        self
    }

    /// Sets the probe deadline, clamped into [`limits::TIMEOUT`] (1 ms to a day).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = limits::clamp(timeout, &limits::TIMEOUT);
        self
    }

    /// Sets the success and failure thresholds, each clamped into [`limits::THRESHOLD`] (1 to
    /// 1000).
    pub fn with_thresholds(mut self, healthy: u32, unhealthy: u32) -> Self {
        self.healthy_threshold = limits::clamp(healthy, &limits::THRESHOLD);
        self.unhealthy_threshold = limits::clamp(unhealthy, &limits::THRESHOLD);
        self
    }

    fn validate(&self) -> Result<(), String> {
        limits::check("health.interval", self.interval, &limits::PROBE_INTERVAL)?;
        limits::check("health.timeout", self.timeout, &limits::TIMEOUT)?;
        limits::check(
            "health.healthy_threshold",
            self.healthy_threshold,
            &limits::THRESHOLD,
        )?;
        limits::check(
            "health.unhealthy_threshold",
            self.unhealthy_threshold,
            &limits::THRESHOLD,
        )
    }
}

/// How a lost or failed connection is retried: the first retry at once, since a crashed child
/// or a restarted server is usually back by then, and from the second consecutive failure after
/// `initial_backoff`, doubled each time up to `max_backoff`, with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RestartPolicy {
    /// Delay before the second retry; doubled on each further one. Short, so that a server that
    /// is listening again is found within about this much.
    pub initial_backoff: Duration,
    /// Longest delay between retries.
    pub max_backoff: Duration,
    /// More failures than this within `window` mark the server failed (no crash loop).
    pub max_failures: u32,
    /// The window failures are counted in.
    pub window: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(30),
            // With retries at 0, 50, 100, 200 ms … a server that stays unreachable is given up
            // after about 25 s of them (five failures, as before the short first delays, would
            // have given up after under a second).
            max_failures: 10,
            window: Duration::from_secs(60),
        }
    }
}

impl RestartPolicy {
    /// Sets the backoff bounds, each clamped into [`limits::BACKOFF`] (1 ms to a day); `max` is
    /// raised to `initial` when below it.
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = limits::clamp(initial, &limits::BACKOFF);
        self.max_backoff = limits::clamp(max, &limits::BACKOFF).max(self.initial_backoff);
        self
    }

    /// Sets the crash-loop cap: more than `max_failures` within `window` is failure.
    /// `max_failures` is clamped into [`limits::MAX_FAILURES`] (1 to 1000), `window` into
    /// [`limits::WINDOW`] (1 ms to a day).
    pub fn with_max_failures(mut self, max_failures: u32, window: Duration) -> Self {
        self.max_failures = limits::clamp(max_failures, &limits::MAX_FAILURES);
        self.window = limits::clamp(window, &limits::WINDOW);
        self
    }

    fn validate(&self) -> Result<(), String> {
        limits::check(
            "restart.initial_backoff",
            self.initial_backoff,
            &limits::BACKOFF,
        )?;
        limits::check("restart.max_backoff", self.max_backoff, &limits::BACKOFF)?;
        if self.max_backoff < self.initial_backoff {
            return Err(format!(
                "restart.max_backoff ({:?}) is below restart.initial_backoff ({:?})",
                self.max_backoff, self.initial_backoff
            ));
        }
        limits::check(
            "restart.max_failures",
            self.max_failures,
            &limits::MAX_FAILURES,
        )?;
        limits::check("restart.window", self.window, &limits::WINDOW)
    }

    /// The delay before retry number `attempt` (1-based, counting consecutive failures): none
    /// for the first, then `initial_backoff` doubled per further failure up to `max_backoff`,
    /// with ±20 % jitter so that many servers lost at once do not retry in step.
    pub fn backoff(&self, attempt: u32) -> Duration {
        if attempt <= 1 {
            return Duration::ZERO;
        }
        let doublings = (attempt - 2).min(20);
        let base = self
            .initial_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff);
        base.mul_f64(0.8 + 0.4 * fastrand::f64())
    }
}

/// Everything the gateway needs to know about one upstream server.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ServerSpec {
    /// Stable id; the default namespace of its tools and prompts.
    pub id: ServerId,
    /// How to reach it.
    pub transport: TransportSpec,
    /// Prefix for its tool and prompt names, instead of the id.
    pub namespace: Option<String>,
    /// When non-empty, only these upstream tool names are exposed.
    pub allow_tools: Vec<String>,
    /// Upstream tool names never exposed.
    pub deny_tools: Vec<String>,
    /// Protocol era preference.
    pub protocol: ProtocolPreference,
    /// Deadline for connecting and completing the handshake.
    pub connect_timeout: Duration,
    /// Deadline for one request (a tool call, a read, a list page).
    pub request_timeout: Duration,
    /// Free-form labels for operators.
    pub tags: Vec<String>,
    /// A disabled server is known but not connected.
    pub enabled: bool,
    /// Health probing while connected.
    pub health: HealthConfig,
    /// Retrying lost and failed connections.
    pub restart: RestartPolicy,
    /// Most forwarded calls (`tools/call`, `prompts/get`, `resources/read`,
    /// `completion/complete`) in flight on this server at once; 1024 by default. One more fails
    /// at once with [`Error::Overloaded`] naming the server and this limit, rather than queueing
    /// without bound behind a slow server. The gateway's own requests (health probes, list
    /// refreshes, subscriptions) are not counted, so a saturated server is not also reported
    /// unhealthy.
    pub max_concurrent_calls: usize,
}

impl ServerSpec {
    /// A spec with the given transport and safe defaults: 30 s to connect, 120 s per request.
    pub fn new(id: ServerId, transport: TransportSpec) -> Self {
        Self {
            id,
            transport,
            namespace: None,
            allow_tools: Vec::new(),
            deny_tools: Vec::new(),
            protocol: ProtocolPreference::Auto,
            connect_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(120),
            tags: Vec::new(),
            enabled: true,
            health: HealthConfig::default(),
            restart: RestartPolicy::default(),
            max_concurrent_calls: 1024,
        }
    }

    /// A child-process server.
    pub fn stdio<I, S>(id: &str, command: &str, args: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Ok(Self::new(
            ServerId::new(id)?,
            TransportSpec::Stdio(StdioSpec {
                command: command.to_owned(),
                args: args.into_iter().map(Into::into).collect(),
                env: BTreeMap::new(),
                cwd: None,
            }),
        ))
    }

    /// A Streamable HTTP server.
    pub fn streamable_http(id: &str, url: &str) -> Result<Self, Error> {
        Ok(Self::new(
            ServerId::new(id)?,
            TransportSpec::StreamableHttp(HttpSpec::new(url)?),
        ))
    }

    /// A legacy HTTP+SSE server; `url` is its SSE endpoint.
    pub fn sse(id: &str, url: &str) -> Result<Self, Error> {
        Ok(Self::new(
            ServerId::new(id)?,
            TransportSpec::Sse(HttpSpec::new(url)?),
        ))
    }

    /// A server running in this process.
    pub fn in_process(id: &str, server: InProcessServer) -> Result<Self, Error> {
        Ok(Self::new(
            ServerId::new(id)?,
            TransportSpec::InProcess(server),
        ))
    }

    /// Adds an environment variable (stdio only; ignored otherwise).
    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<Secret>) -> Self {
        if let TransportSpec::Stdio(stdio) = &mut self.transport {
            stdio.env.insert(key.into(), value.into());
        }
        self
    }

    /// Sets the working directory (stdio only; ignored otherwise).
    pub fn with_cwd(mut self, cwd: impl Into<PathBuf>) -> Self {
        if let TransportSpec::Stdio(stdio) = &mut self.transport {
            stdio.cwd = Some(cwd.into());
        }
        self
    }

    /// Adds a request header (HTTP and SSE only; ignored otherwise).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Secret>) -> Self {
        if let TransportSpec::StreamableHttp(http) | TransportSpec::Sse(http) = &mut self.transport
        {
            http.headers.insert(name.into(), value.into());
        }
        self
    }

    /// Sets the namespace prefix used instead of the id.
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Exposes only these upstream tools.
    pub fn with_allow_tools<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        tools: I,
    ) -> Self {
        self.allow_tools = tools.into_iter().map(Into::into).collect();
        self
    }

    /// Hides these upstream tools.
    pub fn with_deny_tools<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tools: I) -> Self {
        self.deny_tools = tools.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the protocol era preference.
    pub fn with_protocol(mut self, protocol: ProtocolPreference) -> Self {
        self.protocol = protocol;
        self
    }

    /// Sets the connect and handshake deadline, clamped into [`limits::TIMEOUT`] (1 ms to a day).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = limits::clamp(timeout, &limits::TIMEOUT);
        self
    }

    /// Sets the per-request deadline, clamped into [`limits::TIMEOUT`] (1 ms to a day).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = limits::clamp(timeout, &limits::TIMEOUT);
        self
    }

    /// Adds a tag.
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Sets health probing.
    pub fn with_health(mut self, health: HealthConfig) -> Self {
        self.health = health;
        self
    }

    /// Sets the restart policy.
    pub fn with_restart(mut self, restart: RestartPolicy) -> Self {
        self.restart = restart;
        self
    }

    /// Sets the cap on forwarded calls in flight, clamped into [`limits::CALLS`] (1 to a
    /// million).
    pub fn with_max_concurrent_calls(mut self, max: usize) -> Self {
        self.max_concurrent_calls = limits::clamp(max, &limits::CALLS);
        self
    }

    /// Enables or disables the server.
    pub fn with_enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Checks every timing and count against [`limits`]. The public fields can be set to anything,
    /// so the gateway checks each spec before running it and marks one that fails `failed`.
    pub fn validate(&self) -> Result<(), Error> {
        limits::check("connect_timeout", self.connect_timeout, &limits::TIMEOUT)
            .and_then(|()| limits::check("request_timeout", self.request_timeout, &limits::TIMEOUT))
            .and_then(|()| self.health.validate())
            .and_then(|()| self.restart.validate())
            .and_then(|()| {
                limits::check(
                    "max_concurrent_calls",
                    self.max_concurrent_calls,
                    &limits::CALLS,
                )
            })
            .map_err(|problem| Error::InvalidSpec(format!("server `{}`: {problem}", self.id)))
    }

    /// The prefix of this server's names in the merged registry.
    pub fn prefix(&self) -> &str {
        self.namespace.as_deref().unwrap_or(self.id.as_str())
    }

    /// Whether an upstream tool passes the allow and deny lists.
    pub fn exposes_tool(&self, name: &str) -> bool {
        (self.allow_tools.is_empty() || self.allow_tools.iter().any(|t| t == name))
            && !self.deny_tools.iter().any(|t| t == name)
    }
}

impl HttpSpec {
    /// Validates the URL's scheme.
    pub fn new(url: &str) -> Result<Self, Error> {
        let shown = crate::error::redact_url(url);
        let parsed = reqwest::Url::parse(url)
            .map_err(|err| Error::InvalidSpec(format!("url `{shown}` is not valid: {err}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::InvalidSpec(format!(
                "url `{shown}` must use http or https"
            )));
        }
        Ok(Self {
            url: url.to_owned(),
            headers: BTreeMap::new(),
        })
    }
}

#[cfg(test)]
mod tests;
