//! The engine's error type. Every error knows its side (upstream server, downstream caller, or the
//! gateway itself) so adapters can pick the HTTP status, JSON-RPC code and retry policy from it.

use std::borrow::Cow;
use std::time::Duration;

use crate::jsonrpc::JsonRpcError;
use crate::spec::ServerId;

/// An error from an embedder's code (a discovery source, a probe, a sink).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Who is at fault for an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorSide {
    /// The upstream MCP server failed, misbehaved or is unreachable.
    Upstream,
    /// The caller asked for something that does not exist or is malformed.
    Downstream,
    /// The gateway itself (shutting down, misconfigured).
    Internal,
}

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A stdio upstream's command could not be started.
    #[error("server `{server}`: could not start `{command}`")]
    Spawn {
        /// The server.
        server: ServerId,
        /// The command that failed to start.
        command: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The connection to an upstream could not be made or broke at the transport level.
    #[error("server `{server}`: {message}")]
    Transport {
        /// The server.
        server: ServerId,
        /// What went wrong, for a person.
        message: String,
        /// The underlying cause, if any.
        #[source]
        source: Option<BoxError>,
    },
    /// The upstream did not complete the MCP handshake.
    #[error("server `{server}`: handshake failed: {message}")]
    Handshake {
        /// The server.
        server: ServerId,
        /// What went wrong.
        message: String,
    },
    /// The upstream answered a request with a JSON-RPC error.
    #[error("server `{server}` rejected `{method}`: {error}")]
    Upstream {
        /// The server.
        server: ServerId,
        /// The method the gateway sent.
        method: String,
        /// The error exactly as the upstream sent it.
        error: JsonRpcError,
    },
    /// The upstream did not answer in time.
    #[error("server `{server}` did not answer `{method}` within {after:?}")]
    Timeout {
        /// The server.
        server: ServerId,
        /// The method the gateway sent.
        method: String,
        /// How long the gateway waited.
        after: Duration,
    },
    /// The upstream connection closed while (or before) the request was in flight.
    #[error("server `{server}`: connection closed: {reason}")]
    Closed {
        /// The server.
        server: ServerId,
        /// Why it closed.
        reason: String,
    },
    /// The server already has as many forwarded calls in flight as its spec allows
    /// (`ServerSpec::max_concurrent_calls`); the call was not sent.
    #[error(
        "server `{server}` already has {limit} calls in flight, its max_concurrent_calls; try again later"
    )]
    Overloaded {
        /// The server.
        server: ServerId,
        /// Its `max_concurrent_calls`.
        limit: usize,
    },
    /// The server exists but has no live connection.
    #[error("server `{server}` is not connected: {reason}")]
    NotConnected {
        /// The server.
        server: ServerId,
        /// Its current status and last error.
        reason: String,
    },
    /// No server with that id.
    #[error("unknown server `{0}`")]
    UnknownServer(String),
    /// A server with that id already exists.
    #[error("server `{0}` already exists")]
    DuplicateServer(ServerId),
    /// No tool with that name in the merged registry.
    #[error("unknown tool `{0}`")]
    UnknownTool(String),
    /// No prompt with that name in the merged registry.
    #[error("unknown prompt `{0}`")]
    UnknownPrompt(String),
    /// No server owns that resource URI.
    #[error("no server owns resource `{0}`")]
    UnknownResource(String),
    /// A server spec or id is not valid.
    #[error("invalid server spec: {0}")]
    InvalidSpec(String),
    /// The gateway is shutting down and takes no new work.
    #[error("the gateway is shutting down")]
    ShuttingDown,
}

impl Error {
    /// Which side is at fault.
    pub fn side(&self) -> ErrorSide {
        match self {
            Error::Spawn { .. }
            | Error::Transport { .. }
            | Error::Handshake { .. }
            | Error::Upstream { .. }
            | Error::Timeout { .. }
            | Error::Closed { .. }
            | Error::Overloaded { .. }
            | Error::NotConnected { .. } => ErrorSide::Upstream,
            Error::UnknownServer(_)
            | Error::DuplicateServer(_)
            | Error::UnknownTool(_)
            | Error::UnknownPrompt(_)
            | Error::UnknownResource(_)
            | Error::InvalidSpec(_) => ErrorSide::Downstream,
            Error::ShuttingDown => ErrorSide::Internal,
        }
    }

    /// The server this error is about, if it is about one.
    pub fn server(&self) -> Option<&ServerId> {
        match self {
            Error::Spawn { server, .. }
            | Error::Transport { server, .. }
            | Error::Handshake { server, .. }
            | Error::Upstream { server, .. }
            | Error::Timeout { server, .. }
            | Error::Closed { server, .. }
            | Error::Overloaded { server, .. }
            | Error::NotConnected { server, .. } => Some(server),
            Error::DuplicateServer(server) => Some(server),
            _ => None,
        }
    }

    pub(crate) fn transport(server: &ServerId, message: impl Into<String>) -> Self {
        Error::Transport {
            server: server.clone(),
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn transport_caused(
        server: &ServerId,
        message: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::Transport {
            server: server.clone(),
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

/// Formats an error with its whole `source()` chain, for events and logs.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// A URL as it may be shown in errors, logs and events: any credentials in it (`user:password@`,
/// or a token given as the user name) are replaced by `***`.
///
/// Works on the text, not on a parsed URL, so a URL that does not parse is redacted too.
pub(crate) fn redact_url(url: &str) -> Cow<'_, str> {
    let Some(scheme_end) = url.find("://") else {
        return Cow::Borrowed(url);
    };
    let authority_start = scheme_end + 3;
    let rest = &url[authority_start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    match authority.rfind('@') {
        Some(at) => Cow::Owned(format!(
            "{}***{}",
            &url[..authority_start],
            &url[authority_start + at..]
        )),
        None => Cow::Borrowed(url),
    }
}

#[cfg(test)]
mod tests;
