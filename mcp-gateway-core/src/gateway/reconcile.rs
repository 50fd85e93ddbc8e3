//! Discovery reconciliation: what each source yields becomes running servers, and a source that
//! reports a change gets only its added, removed or changed servers touched.
//!
//! Sources rank in the order they were registered (the builder's own servers first, then each
//! [`GatewayBuilder::discovery`](super::GatewayBuilder::discovery) in turn). When two yield the
//! same id, the higher-ranked source's spec runs whatever order they answered in: a lower-ranked
//! holder is replaced. The other source is told with a `DiscoveryConflict` event, its spec is not
//! counted as added, and it takes the id over when the winner lets it go. A server added through
//! the API keeps its id against every source.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, MutexGuard, PoisonError};
use std::time::Duration;

use futures::FutureExt;
use futures::future::join_all;

use super::slot::{Claim, Owner, Slot};
use super::{Gateway, panic_message};
use crate::discovery::DiscoverySource;
use crate::error::error_chain;
use crate::events::GatewayEvent;
use crate::spec::{ServerId, ServerSpec};

/// How long one read of a source may take. A source that hangs would otherwise hold up
/// [`Gateway::start`] and every later reload of that source.
const DISCOVERY_DEADLINE: Duration = Duration::from_secs(30);

impl Gateway {
    /// Reads every discovery source, connects their servers concurrently, and keeps watching the
    /// sources that report changes. A server that fails to connect is reported (status `failed`,
    /// an event) and does not stop the others. Each read is bounded by a deadline.
    ///
    /// When two sources yield one id, the one registered first runs it, whichever answers first;
    /// the other is reported with [`GatewayEvent::DiscoveryConflict`] and takes the id over if
    /// the first lets it go.
    pub async fn start(&self) {
        self.inner.events.emit(GatewayEvent::GatewayStarted);
        let initial = (0..self.inner.sources.len()).map(|rank| async move {
            self.reconcile(rank).await;
            self.inner.tasks.spawn(self.clone().watch(rank));
        });
        join_all(initial).await;
    }

    /// Follows one source's changes until shutdown. A source whose `changed` panics is reported
    /// and no longer followed; the gateway keeps its current set.
    async fn watch(self, rank: usize) {
        let source = self.inner.sources[rank].clone();
        let shutdown = self.inner.shutdown.clone();
        let follow = async {
            loop {
                tokio::select! {
                    _ = source.changed() => {}
                    _ = shutdown.cancelled() => return,
                }
                tokio::select! {
                    _ = self.reconcile(rank) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        };
        if let Err(panic) = AssertUnwindSafe(follow).catch_unwind().await {
            let error = format!(
                "its watch panicked ({}); changes are no longer followed",
                panic_message(panic.as_ref())
            );
            tracing::error!(source = %source.name(), error = ?error, "discovery watch died");
            self.inner.events.emit(GatewayEvent::DiscoveryFailed {
                source: source.name().to_owned(),
                error,
            });
        }
    }

    /// Brings the servers owned by the source at `rank` in line with what it yields now.
    async fn reconcile(&self, rank: usize) {
        let source = self.inner.sources[rank].clone();
        let name = source.name().to_owned();
        let specs = match discover(source.as_ref()).await {
            Ok(specs) => specs,
            Err(error) => {
                tracing::warn!(source = %name, error = ?error, "discovery failed; keeping the current set");
                self.inner.events.emit(GatewayEvent::DiscoveryFailed {
                    source: name,
                    error,
                });
                return;
            }
        };
        let mut wanted: Vec<ServerSpec> = Vec::with_capacity(specs.len());
        for spec in specs {
            // One id twice in one source: its first entry counts, as between sources.
            if wanted.iter().any(|kept| kept.id == spec.id) {
                self.conflict(&spec.id, Some(&name), &name);
            } else {
                wanted.push(spec);
            }
        }
        wanted.sort_by(|a, b| a.id.cmp(&b.id));
        self.yielded()[rank] = wanted.clone();

        let mut removed = Vec::new();
        for slot in self.slots() {
            let owned = slot.owner.as_ref().is_some_and(|owner| owner.rank == rank);
            if owned
                && !wanted.iter().any(|spec| spec.id == slot.spec.id)
                && let Some(slot) = self.take_owned(&slot.spec.id, rank)
            {
                self.retire(&slot, "removed").await;
                removed.push(slot.spec.id.clone());
            }
        }
        removed.sort();

        let owner = Owner { rank, name };
        let (mut added, mut changed, mut launches) = (Vec::new(), Vec::new(), Vec::new());
        for spec in wanted {
            let id = spec.id.clone();
            let Ok(claim) = self.claim(spec, Some(owner.clone())) else {
                // Shutting down: nothing more starts.
                break;
            };
            match claim {
                Claim::Unchanged => {}
                Claim::Held(holder) => self.conflict(&id, holder.source(), &owner.name),
                Claim::Claimed(pending) => {
                    match pending.replaced.as_ref().map(|old| old.owner.as_ref()) {
                        None => added.push(id),
                        Some(Some(previous)) if previous.rank == rank => changed.push(id),
                        // Only a lower-ranked source's slot is ever replaced by another source.
                        Some(previous) => {
                            let rejected = previous.map_or("", |p| p.name.as_str());
                            self.conflict(&id, Some(&owner.name), rejected);
                            added.push(id);
                        }
                    }
                    launches.push(self.launch(pending));
                }
            }
        }
        // Failures are already reported as status and events.
        join_all(launches).await;
        if !(added.is_empty() && removed.is_empty() && changed.is_empty()) {
            self.inner.events.emit(GatewayEvent::DiscoveryApplied {
                source: owner.name,
                added,
                removed: removed.clone(),
                changed,
            });
        }
        for id in removed {
            self.hand_over(&id).await;
        }
    }

    /// Gives an id its owner let go to the highest-ranked source that still yields it.
    async fn hand_over(&self, id: &ServerId) {
        let next = self.yielded().iter().enumerate().find_map(|(rank, specs)| {
            let spec = specs.iter().find(|spec| &spec.id == id)?;
            Some((rank, spec.clone()))
        });
        let Some((rank, spec)) = next else {
            return;
        };
        let name = self.inner.sources[rank].name().to_owned();
        let owner = Owner {
            rank,
            name: name.clone(),
        };
        let launched = match self.claim(spec, Some(owner)) {
            Ok(Claim::Claimed(pending)) => self.launch(pending).await,
            // Someone else took it meanwhile, or the gateway is stopping.
            _ => return,
        };
        if let Err(err) = launched {
            tracing::debug!(server = %id, error = ?error_chain(&err), "handed-over server did not connect");
        }
        self.inner.events.emit(GatewayEvent::DiscoveryApplied {
            source: name,
            added: vec![id.clone()],
            removed: Vec::new(),
            changed: Vec::new(),
        });
    }

    /// Takes a server out of the servers map if the source at `rank` still owns it.
    fn take_owned(&self, id: &ServerId, rank: usize) -> Option<Arc<Slot>> {
        let mut servers = self.servers_mut();
        let owned = servers
            .get(id)
            .and_then(|slot| slot.owner.as_ref())
            .is_some_and(|owner| owner.rank == rank);
        if owned { servers.remove(id) } else { None }
    }

    fn conflict(&self, server: &ServerId, kept: Option<&str>, rejected: &str) {
        tracing::warn!(
            server = %server,
            kept = kept.unwrap_or("the API"),
            rejected,
            "two discovery sources yield one server id; the first registered keeps it"
        );
        self.inner.events.emit(GatewayEvent::DiscoveryConflict {
            server: server.clone(),
            kept: kept.map(str::to_owned),
            rejected: rejected.to_owned(),
        });
    }

    fn yielded(&self) -> MutexGuard<'_, Vec<Vec<ServerSpec>>> {
        self.inner
            .yielded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Reads a source within [`DISCOVERY_DEADLINE`]. A source that hangs or panics is a failed read
/// (the current set is kept), not a stuck start or a dead watch.
async fn discover(source: &dyn DiscoverySource) -> Result<Vec<ServerSpec>, String> {
    let read = AssertUnwindSafe(source.discover()).catch_unwind();
    match tokio::time::timeout(DISCOVERY_DEADLINE, read).await {
        Ok(Ok(Ok(specs))) => Ok(specs),
        Ok(Ok(Err(err))) => Err(error_chain(err.as_ref())),
        Ok(Err(panic)) => Err(format!(
            "discovery panicked: {}",
            panic_message(panic.as_ref())
        )),
        Err(_) => Err(format!("no answer within {DISCOVERY_DEADLINE:?}")),
    }
}
