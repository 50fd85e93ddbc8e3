//! Resource subscriptions of sessions (`resources/subscribe`): which sessions want updates of
//! which URI. The owning upstream is subscribed while any session is, and a session is recorded
//! only once the upstream has accepted. What a closing session leaves behind is unsubscribed
//! upstream with a short deadline: awaited when a client closes its own session, queued for a
//! background task when the gateway reaps or evicts one, so that neither the notification relay
//! nor an `initialize` ever waits on an upstream.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{Caller, McpServer, Session, internal, to_jsonrpc};
use crate::gateway::Gateway;
use crate::jsonrpc::JsonRpcError;
use crate::upstream::RequestOptions;

/// How long an upstream gets to answer `resources/unsubscribe`: nothing waits on the answer but
/// the upstream's own bookkeeping, so a slow upstream is not worth more.
const UNSUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(5);
/// URIs waiting to be unsubscribed in the background; beyond it they are dropped with a warning
/// (the upstream then keeps sending updates that reach no session).
const RELEASE_QUEUE: usize = 256;
/// Background unsubscribes in flight at once, so one stuck upstream does not hold up the rest.
const RELEASES_AT_ONCE: usize = 8;

type ByUri = Arc<Mutex<HashMap<String, HashSet<Arc<str>>>>>;

/// Resource URI → sessions subscribed to it, and the queue of URIs to release upstream.
pub(crate) struct Subscriptions {
    by_uri: ByUri,
    release: mpsc::Sender<String>,
}

impl Subscriptions {
    /// Creates the table and starts the task that releases URIs in the background; it ends once
    /// the table is dropped and its queue is drained.
    pub(crate) fn new(gateway: Gateway) -> Self {
        let by_uri = ByUri::default();
        let (release, queue) = mpsc::channel(RELEASE_QUEUE);
        tokio::spawn(release_queued(gateway, by_uri.clone(), queue));
        Self { by_uri, release }
    }

    fn is_subscribed(&self, uri: &str) -> bool {
        is_subscribed(&self.by_uri, uri)
    }

    /// The sessions subscribed to `uri`.
    pub(crate) fn sessions(&self, uri: &str) -> Vec<Arc<str>> {
        self.by_uri
            .lock()
            .ok()
            .and_then(|s| s.get(uri).map(|s| s.iter().cloned().collect()))
            .unwrap_or_default()
    }

    fn add(&self, uri: &str, session: Arc<str>) -> Result<(), JsonRpcError> {
        self.by_uri
            .lock()
            .map_err(|_| internal("subscriptions unavailable"))?
            .entry(uri.to_owned())
            .or_default()
            .insert(session);
        Ok(())
    }

    /// Drops a session's interest in a URI; `true` if it was the last one.
    fn remove(&self, uri: &str, session: &str) -> bool {
        self.by_uri.lock().is_ok_and(|mut by_uri| {
            let Some(sessions) = by_uri.get_mut(uri) else {
                return false;
            };
            sessions.remove(session);
            let empty = sessions.is_empty();
            if empty {
                by_uri.remove(uri);
            }
            empty
        })
    }

    /// Drops a closed session's subscriptions and returns the URIs no session wants any more.
    pub(crate) fn remove_session(&self, session: &Session) -> Vec<String> {
        session
            .take_subscriptions()
            .into_iter()
            .filter(|uri| self.remove(uri, session.id()))
            .collect()
    }

    /// Queues URIs to be unsubscribed upstream by the background task.
    pub(crate) fn release_later(&self, uris: Vec<String>) {
        for uri in uris {
            if let Err(err) = self.release.try_send(uri) {
                tracing::warn!(uri = %err.into_inner(), "the unsubscribe queue is full; the upstream stays subscribed");
            }
        }
    }
}

fn is_subscribed(by_uri: &ByUri, uri: &str) -> bool {
    by_uri
        .lock()
        .is_ok_and(|s| s.get(uri).is_some_and(|s| !s.is_empty()))
}

/// Unsubscribes queued URIs, a few at a time, skipping any a session subscribed to again since.
async fn release_queued(gateway: Gateway, by_uri: ByUri, queue: mpsc::Receiver<String>) {
    let queue = futures::stream::unfold(queue, |mut queue| async move {
        queue.recv().await.map(|uri| (uri, queue))
    });
    queue
        .for_each_concurrent(RELEASES_AT_ONCE, |uri| {
            let (gateway, by_uri) = (&gateway, &by_uri);
            async move {
                if !is_subscribed(by_uri, &uri) {
                    unsubscribe_upstream(gateway, &uri).await;
                }
            }
        })
        .await;
}

/// Sends `resources/unsubscribe` to the URI's owner, within [`UNSUBSCRIBE_TIMEOUT`].
pub(crate) async fn unsubscribe_upstream(gateway: &Gateway, uri: &str) {
    let Ok(upstream) = gateway.resource_upstream(uri) else {
        return;
    };
    let options = RequestOptions::default().with_timeout(UNSUBSCRIBE_TIMEOUT);
    let params = Some(json!({ "uri": uri }));
    if let Err(err) = upstream
        .request("resources/unsubscribe", params, &options)
        .await
    {
        tracing::debug!(uri, error = %err, "unsubscribe failed");
    }
}

impl McpServer {
    /// Answers `resources/subscribe` and `resources/unsubscribe`.
    pub(super) async fn subscription(
        &self,
        caller: &Caller,
        method: &str,
        params: &Value,
    ) -> Result<Value, JsonRpcError> {
        let Caller::Session(session) = caller else {
            return Err(JsonRpcError::new(JsonRpcError::METHOD_NOT_FOUND, method));
        };
        let uri = params["uri"].as_str().unwrap_or_default();
        if method == "resources/subscribe" {
            // Two sessions subscribing at once may both ask the upstream; subscribing twice is
            // harmless, and recording before the answer would keep a refused subscription.
            if !self.subscriptions.is_subscribed(uri) {
                let upstream = self
                    .gateway
                    .resource_upstream(uri)
                    .map_err(|err| to_jsonrpc(&err, false))?;
                upstream
                    .request(
                        "resources/subscribe",
                        Some(json!({ "uri": uri })),
                        &RequestOptions::default(),
                    )
                    .await
                    .map_err(|err| to_jsonrpc(&err, false))?;
            }
            self.subscriptions.add(uri, session.id_arc())?;
            session.add_subscription(uri);
        } else {
            session.remove_subscription(uri);
            if self.subscriptions.remove(uri, session.id()) {
                unsubscribe_upstream(&self.gateway, uri).await;
            }
        }
        Ok(json!({}))
    }
}
