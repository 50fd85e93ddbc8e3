//! Judging whether an upstream answers. The engine runs the configured [`HealthProbe`] against a
//! live connection; the default does one cheap MCP round trip.

use async_trait::async_trait;

use crate::error::BoxError;
use crate::upstream::{Era, RequestOptions, Upstream};

/// Checks one upstream connection.
///
/// ```
/// use async_trait::async_trait;
/// use mcp_gateway_core::{BoxError, HealthProbe, RequestOptions, Upstream};
///
/// /// Healthy only if the server still offers a `search` tool.
/// struct HasSearchTool;
///
/// #[async_trait]
/// impl HealthProbe for HasSearchTool {
///     async fn probe(&self, upstream: &Upstream) -> Result<(), BoxError> {
///         let tools = upstream.request("tools/list", None, &RequestOptions::default()).await?;
///         let found = tools["tools"]
///             .as_array()
///             .is_some_and(|tools| tools.iter().any(|t| t["name"] == "search"));
///         if found { Ok(()) } else { Err("the search tool is gone".into()) }
///     }
/// }
/// ```
#[async_trait]
pub trait HealthProbe: Send + Sync + 'static {
    /// `Ok` if the upstream is healthy. The caller bounds it with the server's timeout.
    async fn probe(&self, upstream: &Upstream) -> Result<(), BoxError>;
}

/// The default probe: `ping` in the session era, `server/discover` in the stateless era (which
/// has no ping).
#[derive(Debug, Default, Clone, Copy)]
pub struct RoundTripProbe;

#[async_trait]
impl HealthProbe for RoundTripProbe {
    async fn probe(&self, upstream: &Upstream) -> Result<(), BoxError> {
        let method = match upstream.peer().era {
            Era::Session => "ping",
            Era::Stateless => "server/discover",
        };
        upstream
            .request(method, None, &RequestOptions::default())
            .await?;
        Ok(())
    }
}
