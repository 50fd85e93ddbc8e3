//! The in-process transport: an rmcp server handler running as a task in this process, reached
//! through an in-memory pipe with the same newline-delimited framing as stdio. No sockets, no child.

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use rmcp::{ServerHandler, ServiceExt};
use tokio::io::DuplexStream;
use tokio::sync::mpsc;

use super::lines::{LineWriter, read_lines};
use super::{Connected, INBOUND_CAPACITY, TransportEvent};
use crate::spec::ServerId;

/// Bytes buffered in each direction of the in-memory pipe.
const PIPE_BYTES: usize = 1024 * 1024;

type Launch = dyn Fn(DuplexStream) -> BoxFuture<'static, ()> + Send + Sync;

/// An MCP server that runs inside the gateway's process.
///
/// Each connection gets a fresh handler from the factory, exactly as each stdio connection gets a
/// fresh child process.
///
/// ```no_run
/// # use mcp_gateway_core::{InProcessServer, ServerSpec};
/// # #[derive(Clone, Default)] struct MyServer;
/// # impl rmcp::ServerHandler for MyServer {}
/// let spec = ServerSpec::in_process("mine", InProcessServer::new("my-server", MyServer::default))?;
/// # Ok::<(), mcp_gateway_core::Error>(())
/// ```
#[derive(Clone)]
pub struct InProcessServer {
    name: Arc<str>,
    launch: Arc<Launch>,
}

impl InProcessServer {
    /// Wraps a factory of rmcp server handlers; `name` appears in logs.
    pub fn new<S, F>(name: &str, factory: F) -> Self
    where
        S: ServerHandler,
        F: Fn() -> S + Send + Sync + 'static,
    {
        let server_name: Arc<str> = Arc::from(name);
        let task_name = server_name.clone();
        let launch = move |io: DuplexStream| -> BoxFuture<'static, ()> {
            let handler = factory();
            let name = task_name.clone();
            Box::pin(async move {
                match handler.serve(io).await {
                    Ok(running) => {
                        let _ = running.waiting().await;
                    }
                    Err(err) => {
                        tracing::warn!(server = %name, error = %err, "in-process server ended")
                    }
                }
            })
        };
        Self {
            name: server_name,
            launch: Arc::new(launch),
        }
    }

    /// Starts a fresh handler and returns the client side of its pipe.
    pub(crate) fn connect(&self, server: &ServerId) -> Connected {
        let (client_io, server_io) = tokio::io::duplex(PIPE_BYTES);
        tokio::spawn((self.launch)(server_io));
        let (reader, writer) = tokio::io::split(client_io);
        let (events, inbound) = mpsc::channel(INBOUND_CAPACITY);
        tokio::spawn(async move {
            let reason = read_lines(reader, events.clone())
                .await
                .unwrap_or_else(|| "the in-process server ended".to_owned());
            let _ = events.send(TransportEvent::Closed(reason)).await;
        });
        Connected {
            outbound: Box::new(LineWriter::spawn(server.clone(), writer)),
            inbound,
        }
    }
}

impl fmt::Debug for InProcessServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("InProcessServer").field(&self.name).finish()
    }
}

impl PartialEq for InProcessServer {
    /// Two in-process servers are the same when they share one factory.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.launch, &other.launch)
    }
}
