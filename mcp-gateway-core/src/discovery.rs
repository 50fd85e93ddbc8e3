//! Where server specs come from. The gateway merges every source's set; a source that can tell
//! when its set changed gets re-read, and only added, removed or changed servers are touched.
//!
//! The trait and [`StaticSource`] are re-exported at the crate root; the other built-in sources
//! live in this module:
//!
//! - [`EnvSource`]: `MCP_SERVER_<NAME>_URL`, `…_COMMAND` and the `MCP_GATEWAY_SERVERS` list
//!   ([`env`](mod@env) has the scheme);
//! - [`PortProbeSource`]: MCP endpoints answering on well-known localhost ports, re-probed on an
//!   interval;
//! - [`DnsSrvSource`]: one Streamable HTTP server per target of a DNS SRV name, re-resolved on an
//!   interval or the records' TTL.
//!
//! Several sources can feed one gateway; each owns the servers it yielded. When two yield the
//! same id, the one registered first runs it and the other is reported with a
//! `DiscoveryConflict` event (see [`Gateway::start`](crate::Gateway::start)).

pub mod dns_srv;
pub mod env;
pub mod port_probe;

use async_trait::async_trait;

pub use dns_srv::DnsSrvSource;
pub use env::EnvSource;
pub use port_probe::PortProbeSource;

use crate::error::BoxError;
use crate::spec::ServerSpec;

/// A source of upstream server specs.
///
/// ```
/// use async_trait::async_trait;
/// use mcp_gateway_core::{BoxError, DiscoverySource, ServerSpec};
///
/// /// Servers listed in an environment variable as `id=url,id=url`.
/// struct EnvList;
///
/// #[async_trait]
/// impl DiscoverySource for EnvList {
///     fn name(&self) -> &str {
///         "env-list"
///     }
///
///     async fn discover(&self) -> Result<Vec<ServerSpec>, BoxError> {
///         let list = std::env::var("MY_MCP_SERVERS").unwrap_or_default();
///         list.split(',')
///             .filter_map(|pair| pair.split_once('='))
///             .map(|(id, url)| Ok(ServerSpec::streamable_http(id, url)?))
///             .collect()
///     }
/// }
/// ```
#[async_trait]
pub trait DiscoverySource: Send + Sync + 'static {
    /// A short name for logs and events.
    fn name(&self) -> &str;

    /// The current set of servers.
    async fn discover(&self) -> Result<Vec<ServerSpec>, BoxError>;

    /// Resolves when the set may have changed and [`discover`](Self::discover) should be called
    /// again. The default never resolves: the set is fixed.
    async fn changed(&self) {
        std::future::pending::<()>().await
    }
}

/// A fixed list of servers.
#[derive(Debug, Clone)]
pub struct StaticSource {
    name: String,
    specs: Vec<ServerSpec>,
}

impl StaticSource {
    /// A source that always yields `specs`.
    pub fn new(name: impl Into<String>, specs: Vec<ServerSpec>) -> Self {
        Self {
            name: name.into(),
            specs,
        }
    }
}

#[async_trait]
impl DiscoverySource for StaticSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn discover(&self) -> Result<Vec<ServerSpec>, BoxError> {
        Ok(self.specs.clone())
    }
}
