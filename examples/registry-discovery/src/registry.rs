//! [`RegistrySource`]: a discovery backend of the embedding application's own, reading servers
//! from an MCP registry catalog served over HTTP and polling it for changes.
//!
//! The catalog is a JSON document:
//!
//! ```json
//! {
//!   "servers": [
//!     { "name": "memory", "url": "http://127.0.0.1:4100/mcp" },
//!     { "name": "time", "command": "uvx", "args": ["mcp-server-time"] }
//!   ]
//! }
//! ```
//!
//! Each entry has a `name` (the server id) and either a Streamable HTTP `url` or a stdio
//! `command` with optional `args`; other fields are ignored, so a richer registry document can be
//! read as it is.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use mcp_gateway_core::{BoxError, DiscoverySource, ServerSpec};
use serde::Deserialize;

/// The largest catalog read; anything bigger is refused rather than buffered.
const MAX_CATALOG_BYTES: usize = 1024 * 1024;
/// Deadline of one catalog fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Deserialize)]
struct Catalog {
    servers: Vec<CatalogEntry>,
}

#[derive(Deserialize)]
struct CatalogEntry {
    name: String,
    url: Option<String>,
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
}

/// Servers listed in a registry catalog at `url`, re-read every `interval`.
///
/// [`changed`](DiscoverySource::changed) polls the catalog and resolves only when its servers
/// differ from what the last [`discover`](DiscoverySource::discover) returned, so an unchanged
/// catalog costs one GET per interval and nothing in the gateway.
pub struct RegistrySource {
    url: String,
    interval: Duration,
    client: reqwest::Client,
    last: Mutex<Vec<ServerSpec>>,
}

impl RegistrySource {
    /// Reads the catalog at `url` every `interval`.
    pub fn new(url: impl Into<String>, interval: Duration) -> Result<Self, reqwest::Error> {
        // The demo catalog is on loopback; a real registry may want the system proxy back.
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(FETCH_TIMEOUT)
            .build()?;
        Ok(Self {
            url: url.into(),
            interval,
            client,
            last: Mutex::new(Vec::new()),
        })
    }

    async fn fetch(&self) -> Result<Vec<ServerSpec>, BoxError> {
        let response = self
            .client
            .get(&self.url)
            .send()
            .await?
            .error_for_status()?;
        let body = response.bytes().await?;
        if body.len() > MAX_CATALOG_BYTES {
            return Err(format!(
                "catalog `{}` is larger than {MAX_CATALOG_BYTES} bytes",
                self.url
            )
            .into());
        }
        let catalog: Catalog = serde_json::from_slice(&body)
            .map_err(|err| format!("catalog `{}` is not valid: {err}", self.url))?;
        catalog.servers.into_iter().map(spec).collect()
    }
}

/// One catalog entry as a server spec.
fn spec(entry: CatalogEntry) -> Result<ServerSpec, BoxError> {
    let spec = match (entry.url, entry.command) {
        (Some(url), None) => ServerSpec::streamable_http(&entry.name, &url)?,
        (None, Some(command)) => ServerSpec::stdio(&entry.name, &command, entry.args)?,
        _ => {
            return Err(format!(
                "catalog entry `{}` needs exactly one of `url` and `command`",
                entry.name
            )
            .into());
        }
    };
    Ok(spec.with_tag("registry"))
}

#[async_trait]
impl DiscoverySource for RegistrySource {
    fn name(&self) -> &str {
        "registry"
    }

    async fn discover(&self) -> Result<Vec<ServerSpec>, BoxError> {
        let specs = self.fetch().await?;
        if let Ok(mut last) = self.last.lock() {
            last.clone_from(&specs);
        }
        Ok(specs)
    }

    async fn changed(&self) {
        loop {
            tokio::time::sleep(self.interval).await;
            // A failed poll is not a change: the gateway keeps what it has until the next one.
            let Ok(specs) = self.fetch().await else {
                continue;
            };
            if self.last.lock().map_or(true, |last| *last != specs) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
