//! Servers named in environment variables, for containers and CI jobs where a config file is one
//! moving part too many.
//!
//! # The scheme
//!
//! One server per `NAME`, where `NAME` is lowercased to become the server id (`_` is kept, so
//! `MCP_SERVER_KNOWLEDGE_GRAPH_URL` names the server `knowledge_graph`):
//!
//! | variable | meaning |
//! | --- | --- |
//! | `MCP_SERVER_<NAME>_URL` | a Streamable HTTP endpoint, e.g. `http://127.0.0.1:4100/mcp` |
//! | `MCP_SERVER_<NAME>_TRANSPORT` | with `_URL`: `http` (the default) or `sse` for the legacy HTTP+SSE transport, whose URL is the SSE endpoint; with `_COMMAND`: only `stdio` |
//! | `MCP_SERVER_<NAME>_COMMAND` | a program started as a stdio server |
//! | `MCP_SERVER_<NAME>_ARGS` | its arguments: split on whitespace, or a JSON array of strings when it starts with `[` |
//!
//! and one compact list for the common case of several HTTP servers:
//!
//! | variable | meaning |
//! | --- | --- |
//! | `MCP_GATEWAY_SERVERS` | `id=url,id=url`: Streamable HTTP servers; ids are taken as written; empty entries are ignored |
//!
//! An invalid entry fails the whole read with an error that names the variable, so the gateway
//! keeps the set it has rather than running with half a configuration. Variables that start with
//! `MCP_SERVER_` but end in none of the four suffixes above are ignored with a warning, because
//! other tools use that prefix too (`MCP_SERVER_PORT` is common).

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;

use crate::discovery::DiscoverySource;
use crate::error::{BoxError, Error};
use crate::spec::{ServerId, ServerSpec};

/// The prefix of the per-server variables.
pub const SERVER_PREFIX: &str = "MCP_SERVER_";
/// The compact `id=url,id=url` list.
pub const SERVERS_LIST: &str = "MCP_GATEWAY_SERVERS";

/// The per-server fields, by variable suffix.
const FIELDS: [(&str, Field); 4] = [
    ("_URL", Field::Url),
    ("_TRANSPORT", Field::Transport),
    ("_COMMAND", Field::Command),
    ("_ARGS", Field::Args),
];

/// Servers from environment variables; see the [module docs](self) for the scheme.
///
/// The variables are read once, when the source is made: a process's environment does not change
/// under it, and tests can pass a map instead of touching the real environment.
///
/// ```
/// use mcp_gateway_core::DiscoverySource;
/// use mcp_gateway_core::discovery::EnvSource;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), mcp_gateway_core::BoxError> {
/// let source = EnvSource::new([
///     ("MCP_SERVER_MEMORY_URL", "http://127.0.0.1:4100/mcp"),
///     ("MCP_SERVER_TIME_COMMAND", "uvx"),
///     ("MCP_SERVER_TIME_ARGS", "mcp-server-time --local-timezone UTC"),
///     ("MCP_GATEWAY_SERVERS", "storage=http://127.0.0.1:4200/mcp"),
/// ]);
/// let ids: Vec<String> = source
///     .discover()
///     .await?
///     .iter()
///     .map(|spec| spec.id.to_string())
///     .collect();
/// assert_eq!(ids, ["memory", "storage", "time"]);
/// # Ok(())
/// # }
/// ```
///
/// In an application, [`EnvSource::from_process_env`] reads the real environment.
#[derive(Clone)]
pub struct EnvSource {
    name: String,
    /// Only the variables of the scheme: nothing else from the environment is kept.
    vars: BTreeMap<String, String>,
    /// Variables of the scheme whose value is not valid Unicode.
    not_unicode: Vec<String>,
}

impl EnvSource {
    /// A source over the given variables; those outside the scheme are dropped.
    pub fn new<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars = vars
            .into_iter()
            .map(|(key, value)| (key.into(), value.into()))
            .filter(|(key, _)| in_scheme(key))
            .collect();
        Self {
            name: "env".to_owned(),
            vars,
            not_unicode: Vec::new(),
        }
    }

    /// A source over this process's environment, read now.
    pub fn from_process_env() -> Self {
        let mut source = Self::new(std::iter::empty::<(String, String)>());
        for (key, value) in std::env::vars_os() {
            let Some(key) = key.to_str().filter(|key| in_scheme(key)) else {
                continue;
            };
            match value.into_string() {
                Ok(value) => {
                    source.vars.insert(key.to_owned(), value);
                }
                Err(_) => source.not_unicode.push(key.to_owned()),
            }
        }
        source
    }

    /// Renames the source (default `env`); the gateway tells sources apart by name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    fn parse(&self) -> Result<Vec<ServerSpec>, Error> {
        if let Some(key) = self.not_unicode.first() {
            return Err(Error::InvalidSpec(format!(
                "environment variable `{key}` is not valid unicode"
            )));
        }
        let mut servers: BTreeMap<ServerId, (String, ServerSpec)> = BTreeMap::new();
        let mut add = |key: String, spec: ServerSpec| match servers.get(&spec.id) {
            Some((first, _)) => Err(Error::InvalidSpec(format!(
                "server `{}` is defined by both `{first}` and `{key}`",
                spec.id
            ))),
            None => {
                servers.insert(spec.id.clone(), (key, spec));
                Ok(())
            }
        };
        for (name, entry) in self.entries() {
            let (key, spec) = entry.spec(&name)?;
            add(key, spec)?;
        }
        if let Some(list) = self.vars.get(SERVERS_LIST) {
            for spec in parse_list(list)? {
                add(SERVERS_LIST.to_owned(), spec)?;
            }
        }
        Ok(servers.into_values().map(|(_, spec)| spec).collect())
    }

    /// The per-server variables grouped by `NAME`, as written.
    fn entries(&self) -> BTreeMap<String, Entry<'_>> {
        let mut entries: BTreeMap<String, Entry<'_>> = BTreeMap::new();
        for (key, value) in &self.vars {
            let Some(rest) = key.strip_prefix(SERVER_PREFIX) else {
                continue;
            };
            let field = FIELDS
                .iter()
                .find_map(|(suffix, field)| rest.strip_suffix(suffix).map(|name| (name, *field)));
            let Some((name, field)) = field else {
                tracing::warn!(
                    variable = %key,
                    "ignoring an environment variable that ends in none of _URL, _TRANSPORT, _COMMAND, _ARGS"
                );
                continue;
            };
            let entry = entries.entry(name.to_owned()).or_default();
            let slot = match field {
                Field::Url => &mut entry.url,
                Field::Transport => &mut entry.transport,
                Field::Command => &mut entry.command,
                Field::Args => &mut entry.args,
            };
            *slot = Some((key.as_str(), value.as_str()));
        }
        entries
    }
}

impl fmt::Debug for EnvSource {
    /// Shows the variable names only: URLs and arguments may carry credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvSource")
            .field("name", &self.name)
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[async_trait]
impl DiscoverySource for EnvSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn discover(&self) -> Result<Vec<ServerSpec>, BoxError> {
        Ok(self.parse()?)
    }
}

#[derive(Debug, Clone, Copy)]
enum Field {
    Url,
    Transport,
    Command,
    Args,
}

/// One server's variables: `(name, value)` of each that is set.
#[derive(Default)]
struct Entry<'a> {
    url: Option<(&'a str, &'a str)>,
    transport: Option<(&'a str, &'a str)>,
    command: Option<(&'a str, &'a str)>,
    args: Option<(&'a str, &'a str)>,
}

impl Entry<'_> {
    /// The spec, and the variable that defines it (for duplicate errors).
    fn spec(&self, name: &str) -> Result<(String, ServerSpec), Error> {
        let id = name.to_lowercase();
        match (self.url, self.command) {
            (Some((url_key, _)), Some((command_key, _))) => Err(Error::InvalidSpec(format!(
                "environment variables `{url_key}` and `{command_key}` are both set: a server has a url or a command, not both"
            ))),
            (Some((key, url)), None) => {
                if let Some((args_key, _)) = self.args {
                    return Err(Error::InvalidSpec(format!(
                        "environment variable `{args_key}` is set for a server with a url; arguments need `{SERVER_PREFIX}{name}_COMMAND`"
                    )));
                }
                let sse = match self.transport {
                    None => false,
                    Some((transport_key, value)) => {
                        match value.trim().to_ascii_lowercase().as_str() {
                            "http" | "streamable-http" | "streamable_http" | "streamablehttp" => {
                                false
                            }
                            "sse" => true,
                            other => {
                                return Err(Error::InvalidSpec(format!(
                                    "environment variable `{transport_key}`: `{other}` is not `http` or `sse`"
                                )));
                            }
                        }
                    }
                };
                let url = url.trim();
                let spec = if sse {
                    ServerSpec::sse(&id, url)
                } else {
                    ServerSpec::streamable_http(&id, url)
                };
                Ok((key.to_owned(), spec.map_err(|err| naming(key, err))?))
            }
            (None, Some((key, command))) => {
                if let Some((transport_key, value)) = self.transport
                    && !value.trim().eq_ignore_ascii_case("stdio")
                {
                    return Err(Error::InvalidSpec(format!(
                        "environment variable `{transport_key}`: a server with a command speaks `stdio`, not `{}`",
                        value.trim()
                    )));
                }
                let command = command.trim();
                if command.is_empty() {
                    return Err(Error::InvalidSpec(format!(
                        "environment variable `{key}` is empty"
                    )));
                }
                let args = match self.args {
                    Some((args_key, args)) => parse_args(args_key, args)?,
                    None => Vec::new(),
                };
                let spec = ServerSpec::stdio(&id, command, args).map_err(|err| naming(key, err))?;
                Ok((key.to_owned(), spec))
            }
            (None, None) => {
                let key = self.transport.or(self.args).map_or_else(
                    || format!("{SERVER_PREFIX}{name}"),
                    |(key, _)| key.to_owned(),
                );
                Err(Error::InvalidSpec(format!(
                    "environment variable `{key}` is set but neither `{SERVER_PREFIX}{name}_URL` nor `{SERVER_PREFIX}{name}_COMMAND` is"
                )))
            }
        }
    }
}

/// Whether a variable belongs to the scheme.
fn in_scheme(key: &str) -> bool {
    key.starts_with(SERVER_PREFIX) || key == SERVERS_LIST
}

/// Arguments: a JSON array of strings when the value starts with `[`, else whitespace-split.
fn parse_args(key: &str, value: &str) -> Result<Vec<String>, Error> {
    let value = value.trim();
    if value.starts_with('[') {
        serde_json::from_str(value).map_err(|err| {
            Error::InvalidSpec(format!(
                "environment variable `{key}` is not a JSON array of strings: {err}"
            ))
        })
    } else {
        Ok(value.split_whitespace().map(str::to_owned).collect())
    }
}

/// The `id=url,id=url` list.
fn parse_list(list: &str) -> Result<Vec<ServerSpec>, Error> {
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (id, url) = entry.split_once('=').ok_or_else(|| {
                Error::InvalidSpec(format!(
                    "environment variable `{SERVERS_LIST}`: entry `{entry}` is not `id=url`"
                ))
            })?;
            ServerSpec::streamable_http(id.trim(), url.trim())
                .map_err(|err| naming(SERVERS_LIST, err))
        })
        .collect()
}

/// Puts the variable's name in front of a spec error.
fn naming(key: &str, err: Error) -> Error {
    match err {
        Error::InvalidSpec(reason) => {
            Error::InvalidSpec(format!("environment variable `{key}`: {reason}"))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests;
