//! The handshake: `server/discover` (the stateless 2026-07-28 era) or `initialize` (the session
//! era), chosen by the spec's `ProtocolPreference`, with `Auto` probing the first and falling back.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{
    Era, PeerInfo, RequestOptions, SESSION_VERSION, SESSION_VERSIONS, STATELESS_VERSION, Shared,
    request,
};
use crate::error::Error;
use crate::jsonrpc;
use crate::spec::ProtocolPreference;
use crate::transport;

/// How long `Auto` waits for a `server/discover` answer before assuming the session era.
const DISCOVER_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Negotiates the era `preference` asks for and returns what the server said about itself.
pub(super) async fn handshake(
    shared: &Arc<Shared>,
    preference: ProtocolPreference,
) -> Result<PeerInfo, Error> {
    match preference {
        ProtocolPreference::Session => initialize(shared).await,
        ProtocolPreference::Stateless => discover(shared).await,
        ProtocolPreference::Auto => {
            match tokio::time::timeout(DISCOVER_PROBE_TIMEOUT, discover(shared)).await {
                Ok(Ok(peer)) => Ok(peer),
                // The connection itself failed: falling back cannot help.
                Ok(Err(err @ (Error::Closed { .. } | Error::Spawn { .. }))) => Err(err),
                Ok(Err(Error::Transport {
                    source: Some(source),
                    ..
                })) if transport::is_connect_error(source.as_ref()) => Err(
                    Error::transport_caused(&shared.server, "could not connect", source),
                ),
                Ok(Err(err)) => {
                    tracing::debug!(server = %shared.server, error = %err, "no server/discover; using initialize");
                    initialize(shared).await
                }
                Err(_) => initialize(shared).await,
            }
        }
    }
}

/// What the gateway, as a client, offers upstreams: it relays sampling, elicitation and roots to
/// the downstream session whose call is in flight.
fn client_capabilities() -> Value {
    json!({ "sampling": {}, "elicitation": { "form": {}, "url": {} }, "roots": {} })
}

fn client_info() -> Value {
    json!({ "name": "mcp-gateway", "version": env!("CARGO_PKG_VERSION") })
}

async fn initialize(shared: &Arc<Shared>) -> Result<PeerInfo, Error> {
    shared.outbound.set_protocol_version(None);
    let params = json!({
        "protocolVersion": SESSION_VERSION,
        "capabilities": client_capabilities(),
        "clientInfo": client_info(),
    });
    let result = request(
        shared,
        "initialize",
        Some(params.into()),
        &RequestOptions::default(),
    )
    .await?;
    let result = jsonrpc::parse(&result);
    let version = result
        .get("protocolVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if !SESSION_VERSIONS.contains(&version.as_str()) {
        return Err(Error::Handshake {
            server: shared.server.clone(),
            message: format!(
                "the server offered protocol version `{version}`, which the gateway does not speak"
            ),
        });
    }
    shared.outbound.set_protocol_version(Some(&version));
    shared
        .outbound
        .send(jsonrpc::notification("notifications/initialized", None).into())
        .await?;
    Ok(PeerInfo {
        era: Era::Session,
        protocol_version: version,
        server_info: result.get("serverInfo").cloned().unwrap_or(Value::Null),
        capabilities: result
            .get("capabilities")
            .cloned()
            .unwrap_or_else(|| json!({})),
        instructions: result
            .get("instructions")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

async fn discover(shared: &Arc<Shared>) -> Result<PeerInfo, Error> {
    let mut meta = Map::new();
    meta.insert(
        "io.modelcontextprotocol/protocolVersion".into(),
        STATELESS_VERSION.into(),
    );
    meta.insert("io.modelcontextprotocol/clientInfo".into(), client_info());
    meta.insert(
        "io.modelcontextprotocol/clientCapabilities".into(),
        json!({}),
    );
    shared
        .outbound
        .set_protocol_version(Some(STATELESS_VERSION));
    let params = json!({ "_meta": meta });
    let result = request(
        shared,
        "server/discover",
        Some(params.into()),
        &RequestOptions::default(),
    )
    .await?;
    let result = jsonrpc::parse(&result);
    let speaks_stateless = result
        .get("supportedVersions")
        .and_then(Value::as_array)
        .is_some_and(|versions| versions.iter().any(|v| v == STATELESS_VERSION));
    if !speaks_stateless {
        return Err(Error::Handshake {
            server: shared.server.clone(),
            message: format!("server/discover does not list {STATELESS_VERSION}"),
        });
    }
    if let Ok(mut slot) = shared.request_meta.lock() {
        *slot = Some(meta);
    }
    Ok(PeerInfo {
        era: Era::Stateless,
        protocol_version: STATELESS_VERSION.into(),
        server_info: result
            .pointer("/_meta/io.modelcontextprotocol~1serverInfo")
            .cloned()
            .unwrap_or(Value::Null),
        capabilities: result
            .get("capabilities")
            .cloned()
            .unwrap_or_else(|| json!({})),
        instructions: result
            .get("instructions")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}
