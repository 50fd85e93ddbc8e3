//! Ending the router's streams when its server shuts down. A graceful shutdown waits for every
//! response to end, and the streams `/mcp` and `/sse` hold open for notifications never end on
//! their own: without this, a server with one client attached never stopped.

use std::time::Duration;

use axum::{Extension, Router};
use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

/// How long a call still answering on a stream may go on after shutdown is triggered, before its
/// stream is cut.
pub(crate) const CALL_GRACE: Duration = Duration::from_secs(3);

/// Ends the long-lived streams of the routers it is attached to: the session-era `GET /mcp`
/// stream, the legacy `/sse` stream and the 2026-07-28 `subscriptions/listen` stream end at
/// once when it is triggered, and the streams of calls still running end after a short grace.
///
/// [`serve`](crate::serve) attaches one of its own and triggers it when its shutdown signal
/// resolves. An application that serves [`router`](crate::router) itself attaches one and
/// triggers it before (or as) it starts its graceful shutdown:
///
/// ```no_run
/// # async fn run(server: std::sync::Arc<mcp_gateway_core::McpServer>) -> std::io::Result<()> {
/// use mcp_gateway_http::{HttpConfig, StreamShutdown, router};
///
/// let streams = StreamShutdown::new();
/// let app = streams.attach(router(server, HttpConfig::default()));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:4101").await?;
/// axum::serve(listener, app)
///     .with_graceful_shutdown(async move {
///         let _ = tokio::signal::ctrl_c().await;
///         streams.trigger();
///     })
///     .await
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct StreamShutdown {
    token: CancellationToken,
}

impl StreamShutdown {
    /// A handle not yet triggered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the streams of `router` end when this handle is triggered. A router holds one
    /// handle: attach it to a router that [`serve`](crate::serve) does not run.
    pub fn attach(&self, router: Router) -> Router {
        router.layer(Extension(self.clone()))
    }

    /// Ends the streams: long-lived ones at once, calls' after a grace of a few seconds.
    pub fn trigger(&self) {
        self.token.cancel();
    }

    /// Resolves when the handle is triggered.
    pub(crate) async fn triggered(&self) {
        self.token.cancelled().await;
    }
}

/// How a stream ends when its router's [`StreamShutdown`] is triggered.
#[derive(Clone, Copy)]
pub(crate) enum Ending {
    /// A stream that would otherwise never end: at once.
    Now,
    /// A call's stream, which ends with its answer: after [`CALL_GRACE`].
    AfterGrace,
}

/// `events`, ended when `shutdown` is triggered (a router without a handle never ends them).
pub(crate) fn until_shutdown<S: Stream>(
    events: S,
    shutdown: Option<StreamShutdown>,
    ending: Ending,
) -> impl Stream<Item = S::Item> {
    events.take_until(async move {
        let Some(shutdown) = shutdown else {
            return std::future::pending().await;
        };
        shutdown.triggered().await;
        if let Ending::AfterGrace = ending {
            tokio::time::sleep(CALL_GRACE).await;
        }
    })
}
