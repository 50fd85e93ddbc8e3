//! MCP servers published as DNS SRV records, the way Kubernetes headless services and Consul
//! publish the endpoints of a service: one record per instance, each naming a host and a port.
//!
//! Every target of the SRV name becomes a Streamable HTTP server at `http://TARGET:PORT/mcp` (the
//! path is configurable). Priority and weight are ignored: the gateway wants every instance, not
//! one of them. A target of `.` ("no service", RFC 2782) is skipped, and a name that does not
//! exist or has no SRV records yields no servers, so a service scaled to zero empties the set.
//! Other failures (no answer, a refused query) are errors, and the gateway keeps its set.
//!
//! The targets are connected by name, through the system's resolver; the name servers given to
//! [`DnsSrvSource::with_name_servers`] answer only the SRV query.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{Name, RData};

use crate::discovery::DiscoverySource;
use crate::error::{BoxError, Error};
use crate::spec::ServerSpec;

/// How often the name is re-resolved unless configured otherwise, or sooner when the records'
/// TTL runs out first.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// The endpoint path on each target unless configured otherwise.
pub const DEFAULT_PATH: &str = "/mcp";

/// Re-resolution never comes sooner than this, whatever the TTL (a TTL of 0 would spin).
const MIN_REFRESH: Duration = Duration::from_secs(1);
/// The shortest configurable interval.
const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Deadline of one DNS query, tried [`QUERY_ATTEMPTS`] times per name server.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
const QUERY_ATTEMPTS: usize = 2;
/// Room left in a 64-character server id for a `-N` suffix.
const MAX_ID_BASE: usize = 56;

/// Servers from the targets of a DNS SRV name, re-resolved on an interval or the records' TTL.
///
/// Each target yields one server whose id is the first label of the target's host name
/// (`mcp-0.mcp.prod.svc.cluster.local.` → `mcp-0`), made unique with `-2`, `-3`, … in the order
/// of (host, port) when several targets share a first label.
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// use mcp_gateway_core::Gateway;
/// use mcp_gateway_core::discovery::DnsSrvSource;
///
/// # fn main() -> Result<(), mcp_gateway_core::Error> {
/// // The system's resolver (`/etc/resolv.conf`): a Kubernetes headless service.
/// let cluster = DnsSrvSource::new("_mcp._tcp.mcp.prod.svc.cluster.local.")?;
/// // A Consul agent's DNS interface, with its own path and interval.
/// let consul = DnsSrvSource::with_name_servers(
///     "_mcp._tcp.service.consul.",
///     ["127.0.0.1:8600".parse().expect("a socket address")],
/// )?
/// .with_path("/v1/mcp")
/// .with_interval(Duration::from_secs(10))
/// .with_name("consul");
/// let gateway = Gateway::builder()
///     .discovery(Arc::new(cluster))
///     .discovery(Arc::new(consul))
///     .build();
/// # drop(gateway);
/// # Ok(())
/// # }
/// ```
pub struct DnsSrvSource {
    name: String,
    srv_name: Name,
    resolver: TokioResolver,
    path: String,
    interval: Duration,
    /// What the last [`DiscoverySource::discover`] resolved.
    last: Mutex<Resolved>,
}

/// One resolution: the (host, port) targets, and how long the answer may be cached.
#[derive(Debug, Default)]
struct Resolved {
    targets: BTreeSet<(String, u16)>,
    ttl: Option<Duration>,
}

impl DnsSrvSource {
    /// Resolves `srv_name` with the system's resolver configuration (`/etc/resolv.conf`).
    pub fn new(srv_name: &str) -> Result<Self, Error> {
        let builder = TokioResolver::builder_tokio().map_err(|err| {
            Error::InvalidSpec(format!(
                "dns srv `{srv_name}`: could not read the system's resolver configuration: {err}"
            ))
        })?;
        Self::build(srv_name, builder)
    }

    /// Resolves `srv_name` by asking only these name servers (UDP, then TCP for long answers).
    pub fn with_name_servers<I>(srv_name: &str, name_servers: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = SocketAddr>,
    {
        let name_servers: Vec<NameServerConfig> = name_servers
            .into_iter()
            .map(|address| {
                let mut udp = ConnectionConfig::udp();
                udp.port = address.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = address.port();
                NameServerConfig::new(address.ip(), true, vec![udp, tcp])
            })
            .collect();
        if name_servers.is_empty() {
            return Err(Error::InvalidSpec(format!(
                "dns srv `{srv_name}`: the list of name servers is empty"
            )));
        }
        let builder = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(name_servers),
            TokioRuntimeProvider::default(),
        );
        Self::build(srv_name, builder)
    }

    fn build(
        srv_name: &str,
        mut builder: hickory_resolver::ResolverBuilder<TokioRuntimeProvider>,
    ) -> Result<Self, Error> {
        let parsed = Name::from_str(srv_name).map_err(|err| {
            Error::InvalidSpec(format!("dns srv name `{srv_name}` is not valid: {err}"))
        })?;
        let options = builder.options_mut();
        options.timeout = QUERY_TIMEOUT;
        options.attempts = QUERY_ATTEMPTS;
        let resolver = builder.build().map_err(|err| {
            Error::InvalidSpec(format!(
                "dns srv `{srv_name}`: could not build the resolver: {err}"
            ))
        })?;
        Ok(Self {
            name: format!("dns-srv:{srv_name}"),
            srv_name: parsed,
            resolver,
            path: DEFAULT_PATH.to_owned(),
            interval: DEFAULT_INTERVAL,
            last: Mutex::new(Resolved::default()),
        })
    }

    /// Sets the endpoint path on each target (default `/mcp`).
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        self.path = if path.starts_with('/') {
            path
        } else {
            format!("/{path}")
        };
        self
    }

    /// Sets the longest time between two resolutions (default 30 s, at least 10 ms); a shorter
    /// TTL on the records re-resolves sooner, but not more than once a second.
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(MIN_INTERVAL);
        self
    }

    /// Renames the source (default `dns-srv:<srv name>`); the gateway tells sources apart by name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    async fn resolve(&self) -> Result<Resolved, LookupError> {
        let lookup = match self.resolver.srv_lookup(self.srv_name.clone()).await {
            Ok(lookup) => lookup,
            Err(err) if err.is_no_records_found() => return Ok(Resolved::default()),
            Err(source) => {
                return Err(LookupError {
                    name: self.srv_name.to_string(),
                    source,
                });
            }
        };
        let mut resolved = Resolved::default();
        for record in lookup.answers() {
            let RData::SRV(srv) = &record.data else {
                continue;
            };
            let ttl = Duration::from_secs(u64::from(record.ttl));
            resolved.ttl = Some(resolved.ttl.map_or(ttl, |shortest| shortest.min(ttl)));
            if srv.target.is_root() {
                continue;
            }
            let host = srv.target.to_ascii();
            let host = host.strip_suffix('.').unwrap_or(&host).to_owned();
            resolved.targets.insert((host, srv.port));
        }
        Ok(resolved)
    }

    /// How long to wait before the next resolution.
    fn refresh_delay(&self) -> Duration {
        let ttl = self.last.lock().unwrap_or_else(PoisonError::into_inner).ttl;
        ttl.map_or(self.interval, |ttl| ttl.max(MIN_REFRESH).min(self.interval))
    }
}

impl fmt::Debug for DnsSrvSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DnsSrvSource")
            .field("name", &self.name)
            .field("srv_name", &self.srv_name.to_string())
            .field("path", &self.path)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl DiscoverySource for DnsSrvSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn discover(&self) -> Result<Vec<ServerSpec>, BoxError> {
        let resolved = self.resolve().await?;
        let specs = specs(&resolved.targets, &self.path)?;
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = resolved;
        Ok(specs)
    }

    /// Re-resolves after the interval (or the TTL, when shorter); resolves when the targets
    /// differ from the last [`discover`](DiscoverySource::discover).
    async fn changed(&self) {
        loop {
            tokio::time::sleep(self.refresh_delay()).await;
            match self.resolve().await {
                Ok(resolved) => {
                    let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
                    if last.targets != resolved.targets {
                        return;
                    }
                    // Same targets: only the TTL, and so the next delay, may have moved.
                    last.ttl = resolved.ttl;
                }
                Err(err) => tracing::warn!(
                    source = %self.name,
                    error = %crate::error::error_chain(&err),
                    "dns srv re-resolution failed; keeping the current set"
                ),
            }
        }
    }
}

/// A failed SRV query.
#[derive(Debug, thiserror::Error)]
#[error("could not resolve the srv name `{name}`")]
struct LookupError {
    name: String,
    #[source]
    source: NetError,
}

/// One Streamable HTTP server per target, with ids unique in the order of the targets.
fn specs(targets: &BTreeSet<(String, u16)>, path: &str) -> Result<Vec<ServerSpec>, Error> {
    let mut used = BTreeSet::new();
    targets
        .iter()
        .map(|(host, port)| {
            let base = id_base(host);
            let id = std::iter::once(base.clone())
                .chain((2..).map(|n| format!("{base}-{n}")))
                .find(|id| !used.contains(id))
                .unwrap_or(base);
            used.insert(id.clone());
            ServerSpec::streamable_http(&id, &format!("http://{host}:{port}{path}"))
        })
        .collect()
}

/// The first label of `host`, lowercased, with anything an id cannot hold replaced by `-`.
fn id_base(host: &str) -> String {
    let label: String = host
        .split('.')
        .next()
        .unwrap_or_default()
        .chars()
        .take(MAX_ID_BASE)
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-' | '_') => c,
            _ => '-',
        })
        .collect();
    if label.is_empty() {
        "srv".to_owned()
    } else {
        label
    }
}

#[cfg(test)]
mod tests;
