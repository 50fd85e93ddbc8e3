//! One server's place in the gateway, a [`Slot`]: its spec, its owner, its live state, and the
//! steps of its life. An id is claimed synchronously (so the first claim holds it), launched once
//! any slot it replaces has stopped, and stopped within a deadline.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLockWriteGuard};
use std::time::SystemTime;

use futures::FutureExt;
use tokio::sync::oneshot;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{Gateway, SHUTDOWN_DEADLINE, ServerSnapshot, unix_ms};
use crate::error::Error;
use crate::events::{AlertKind, GatewayEvent, ServerStatus};
use crate::registry::ServerCatalog;
use crate::spec::{ServerId, ServerSpec};
use crate::upstream::{Era, Upstream};

/// The discovery source that yielded a server.
#[derive(Debug, Clone)]
pub(super) struct Owner {
    /// The source's place in the order sources were registered: lower ranks win contested ids.
    pub(super) rank: usize,
    pub(super) name: String,
}

/// One server's place in the gateway.
pub(super) struct Slot {
    pub(super) spec: ServerSpec,
    /// `None`: added through the API.
    pub(super) owner: Option<Owner>,
    /// Cancelled when the server is removed or the gateway stops.
    pub(super) stop: CancellationToken,
    /// Cancelled when the supervisor has ended and its connection is closed.
    pub(super) finished: CancellationToken,
    /// Read and changed through [`Slot::state`].
    state: Mutex<SlotState>,
}

impl Slot {
    pub(super) fn new(
        spec: ServerSpec,
        owner: Option<Owner>,
        stop: CancellationToken,
    ) -> Arc<Self> {
        Arc::new(Slot {
            stop,
            finished: CancellationToken::new(),
            owner,
            state: Mutex::new(SlotState {
                status: ServerStatus::Connecting,
                upstream: None,
                lists: ServerCatalog::default(),
                last_error: None,
                era: None,
                next_attempt: None,
                recent_failures: 0,
                alerts: HashSet::new(),
            }),
            spec,
        })
    }

    /// The slot's state. A panic while it was held (a supervisor that died, then was caught)
    /// leaves plain data behind, so the lock is taken back: skipping every later update instead
    /// would leave the status stale forever.
    pub(super) fn state(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn source(&self) -> Option<&str> {
        self.owner.as_ref().map(|owner| owner.name.as_str())
    }
}

/// What claiming a server id did.
pub(super) enum Claim {
    /// The new slot holds the id, to be launched.
    Claimed(Pending),
    /// The same source already runs this very spec.
    Unchanged,
    /// The API or a higher-ranked source holds the id; nothing changed.
    Held(Arc<Slot>),
}

/// A slot in the servers map whose supervisor has not started yet.
pub(super) struct Pending {
    slot: Arc<Slot>,
    /// The slot it took the id from: the same source's older spec, or a lower-ranked source's.
    pub(super) replaced: Option<Arc<Slot>>,
    /// Dropped (cancelling `finished`) whenever the launch ends early or is never run, so
    /// `stop_slot` never waits for a supervisor that does not exist.
    finished: DropGuard,
}

pub(super) struct SlotState {
    pub(super) status: ServerStatus,
    pub(super) upstream: Option<Upstream>,
    pub(super) lists: ServerCatalog,
    pub(super) last_error: Option<String>,
    /// The era learned at the last handshake, reused on reconnect to skip the probe.
    pub(super) era: Option<Era>,
    /// When the next connection attempt starts, while waiting for it.
    pub(super) next_attempt: Option<SystemTime>,
    /// Failures within the restart policy's window.
    pub(super) recent_failures: u32,
    /// Alerts raised and not yet resolved.
    pub(super) alerts: HashSet<AlertKind>,
}

impl Gateway {
    /// Claims an id and launches its server; the API's way in (a held id is an error).
    pub(super) async fn add(&self, spec: ServerSpec, owner: Option<Owner>) -> Result<(), Error> {
        match self.claim(spec, owner)? {
            Claim::Claimed(pending) => self.launch(pending).await,
            Claim::Held(holder) => Err(Error::DuplicateServer(holder.spec.id.clone())),
            Claim::Unchanged => Ok(()),
        }
    }

    /// Puts a slot for `spec` in the servers map at once, before anything connects, so the map
    /// always says who holds an id and a contest is decided by rank, never by how long a launch
    /// takes. A source replaces its own older spec and any lower-ranked source's; the API
    /// replaces nothing.
    pub(super) fn claim(&self, spec: ServerSpec, owner: Option<Owner>) -> Result<Claim, Error> {
        if self.inner.shutdown.is_cancelled() {
            return Err(Error::ShuttingDown);
        }
        let mut servers = self.servers_mut();
        if let Some(current) = servers.get(&spec.id) {
            let rank = owner.as_ref().map(|owner| owner.rank);
            let held_by = current.owner.as_ref().map(|owner| owner.rank);
            match (rank, held_by) {
                (Some(rank), Some(held_by)) if rank == held_by && current.spec == spec => {
                    return Ok(Claim::Unchanged);
                }
                (Some(rank), Some(held_by)) if rank <= held_by => {}
                _ => return Ok(Claim::Held(current.clone())),
            }
        }
        let slot = Slot::new(spec, owner, self.inner.shutdown.child_token());
        let replaced = servers.insert(slot.spec.id.clone(), slot.clone());
        Ok(Claim::Claimed(Pending {
            finished: slot.finished.clone().drop_guard(),
            slot,
            replaced,
        }))
    }

    /// Starts a claimed slot's supervisor once the slot it replaces has stopped (one id never
    /// runs twice at once), and waits for its first connection attempt.
    pub(super) async fn launch(&self, pending: Pending) -> Result<(), Error> {
        let Pending {
            slot,
            replaced,
            finished,
        } = pending;
        if let Some(old) = replaced {
            self.retire(&old, "replaced").await;
        }
        if slot.stop.is_cancelled() {
            return Err(Error::ShuttingDown);
        }
        self.inner.events.emit(GatewayEvent::ServerAdded {
            server: slot.spec.id.clone(),
            transport: slot.spec.transport.kind().into(),
        });
        if !slot.spec.enabled {
            self.set_status(&slot, ServerStatus::Stopped, "disabled in its spec");
            return Ok(());
        }
        let (first, first_outcome) = oneshot::channel();
        let gateway = self.clone();
        self.inner.tasks.spawn(async move {
            let _finished = finished;
            let mut first = Some(first);
            let supervised = AssertUnwindSafe(gateway.supervise(&slot, &mut first))
                .catch_unwind()
                .await;
            if let Err(panic) = supervised {
                gateway.supervisor_panicked(&slot, first, panic).await;
            }
        });
        first_outcome.await.unwrap_or(Err(Error::ShuttingDown))
    }

    pub(super) fn set_status(&self, slot: &Slot, to: ServerStatus, reason: &str) {
        let from = std::mem::replace(&mut slot.state().status, to);
        if from != to {
            self.inner.events.emit(GatewayEvent::StatusChanged {
                server: slot.spec.id.clone(),
                from,
                to,
                reason: reason.to_owned(),
            });
        }
    }

    /// Stops a slot already taken out of the servers map and says it is gone.
    pub(super) async fn retire(&self, slot: &Slot, reason: &str) {
        self.stop_slot(slot, reason).await;
        self.inner.events.emit(GatewayEvent::ServerRemoved {
            server: slot.spec.id.clone(),
        });
    }

    /// Stops a server and returns once its connection (and child process) is gone, so a server
    /// restarted under the same id never runs twice at once.
    pub(super) async fn stop_slot(&self, slot: &Slot, reason: &str) {
        slot.stop.cancel();
        let upstream = slot.state().upstream.take();
        if let Some(upstream) = upstream {
            upstream.close().await;
        }
        let _ = tokio::time::timeout(SHUTDOWN_DEADLINE, slot.finished.cancelled()).await;
        let change = self.inner.registry.remove_server(&slot.spec.id);
        self.report(&slot.spec.id, change);
        self.set_status(slot, ServerStatus::Stopped, reason);
    }

    pub(super) fn slots(&self) -> Vec<Arc<Slot>> {
        let servers = self
            .inner
            .servers
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        servers.values().cloned().collect()
    }

    pub(super) fn slot(&self, id: &str) -> Option<Arc<Slot>> {
        let servers = self
            .inner
            .servers
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        servers.get(id).cloned()
    }

    /// The servers map for a change. Every change to it is one insert or remove, so a panic
    /// elsewhere while it was held cannot have left it half-changed: it is taken back, not
    /// given up on.
    pub(super) fn servers_mut(&self) -> RwLockWriteGuard<'_, HashMap<ServerId, Arc<Slot>>> {
        self.inner
            .servers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

pub(super) fn snapshot(slot: &Slot) -> ServerSnapshot {
    let state = slot.state();
    let peer = state.upstream.as_ref().map(|u| u.peer().clone());
    ServerSnapshot {
        id: slot.spec.id.clone(),
        transport: slot.spec.transport.kind(),
        status: state.status,
        era: state.era,
        protocol_version: peer.as_ref().map(|p| p.protocol_version.clone()),
        server_info: peer.map(|p| p.server_info),
        last_error: state.last_error.clone(),
        next_attempt_ms: state.next_attempt.map(unix_ms),
        recent_failures: state.recent_failures,
        alerts: state.alerts.iter().copied().collect(),
        source: slot.source().map(str::to_owned),
        tags: slot.spec.tags.clone(),
    }
}
