//! Supervision of one server, as a task per server: connect, watch the connection's signals and
//! probe its health, and when it is lost (a crashed child, a restarted HTTP server, a server that
//! stopped answering) reconnect: at once, then, if that fails too, with exponential backoff and
//! jitter (see [`RestartPolicy::backoff`](crate::spec::RestartPolicy::backoff)). More failures
//! than the restart policy allows within its window end in `failed` with an alert, never a crash
//! loop.
//! A spec outside [`limits`](crate::spec::limits) is refused the same way, and a supervisor that
//! panics (in an embedder's probe, say) is caught and ends there too, never as a silent dead task.
//! Every status change is one event with its reason.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use super::{Gateway, Slot, fetch_lists, panic_message, unix_ms};
use crate::error::{Error, error_chain};
use crate::events::{AlertKind, GatewayEvent, LogSource, ServerStatus};
use crate::upstream::{Connection, Signal, Upstream};

/// Why a live connection ended.
enum Ended {
    /// The server was removed or the gateway is stopping.
    Stopped,
    /// The connection was lost or judged unhealthy; the reason is for people.
    Lost(String),
}

impl Gateway {
    /// Runs one server until it is stopped or fails for good. The first attempt's outcome goes to
    /// `first`, so `add_server` can report it; the sender is left in place if it panics first.
    pub(super) async fn supervise(
        &self,
        slot: &Arc<Slot>,
        first: &mut Option<oneshot::Sender<Result<(), Error>>>,
    ) {
        let slot = slot.clone();
        let mut failures: VecDeque<Instant> = VecDeque::new();
        let mut attempt: u32 = 0;
        loop {
            if attempt == 0 {
                self.set_status(&slot, ServerStatus::Connecting, "connecting");
            }
            let reason = match self.establish(&slot).await {
                Ok((upstream, signals)) => {
                    if let Some(first) = first.take() {
                        let _ = first.send(Ok(()));
                    }
                    attempt = 0;
                    let ended = self.run_connection(&slot, &upstream, signals).await;
                    slot.state().upstream = None;
                    upstream.close().await;
                    match ended {
                        Ended::Stopped => return,
                        Ended::Lost(reason) => reason,
                    }
                }
                Err(Error::ShuttingDown) => return,
                Err(err) => {
                    let reason = error_chain(&err);
                    // Given up before `add_server` hears of it, so its caller sees the
                    // `failed` status and the alert, not the moment before them.
                    let permanent = is_permanent(&err);
                    if permanent {
                        self.give_up(&slot, &reason);
                    }
                    if let Some(first) = first.take() {
                        let _ = first.send(Err(err));
                    }
                    if permanent {
                        return;
                    }
                    reason
                }
            };
            slot.state().last_error = Some(reason.clone());
            let policy = slot.spec.restart;
            let now = Instant::now();
            failures.retain(|at| now.duration_since(*at) <= policy.window);
            failures.push_back(now);
            let recent = u32::try_from(failures.len()).unwrap_or(u32::MAX);
            slot.state().recent_failures = recent;
            if recent > policy.max_failures {
                let reason = format!(
                    "{recent} failures within {:?}, the last: {reason}",
                    policy.window
                );
                self.give_up(&slot, &reason);
                return;
            }
            attempt = attempt.saturating_add(1);
            let delay = policy.backoff(attempt);
            let at = SystemTime::now() + delay;
            slot.state().next_attempt = Some(at);
            self.set_status(&slot, ServerStatus::Reconnecting, &reason);
            self.inner.events.emit(GatewayEvent::ReconnectScheduled {
                server: slot.spec.id.clone(),
                attempt,
                delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                at_ms: unix_ms(at),
                reason,
            });
            // The first retry has no delay: it goes now, without a round through the timer.
            if !delay.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = slot.stop.cancelled() => return,
                }
            }
            slot.state().next_attempt = None;
        }
    }

    /// Turns a caught supervisor panic into what any fatal failure gives: the connection closed,
    /// status `failed`, an alert naming the panic, and `add_server` answered if it still waits.
    pub(super) async fn supervisor_panicked(
        &self,
        slot: &Slot,
        first: Option<oneshot::Sender<Result<(), Error>>>,
        panic: Box<dyn Any + Send>,
    ) {
        let reason = format!("its supervisor panicked: {}", panic_message(panic.as_ref()));
        tracing::error!(server = %slot.spec.id, reason = ?reason, "supervisor died");
        let upstream = slot.state().upstream.take();
        if let Some(upstream) = upstream {
            upstream.close().await;
        }
        if let Some(first) = first {
            let _ = first.send(Err(Error::NotConnected {
                server: slot.spec.id.clone(),
                reason: reason.clone(),
            }));
        }
        if !slot.stop.is_cancelled() {
            self.give_up(slot, &reason);
        }
    }

    /// Marks a server failed for good: no more attempts, its entries leave the registry, and an
    /// alert is raised.
    fn give_up(&self, slot: &Slot, reason: &str) {
        let server = &slot.spec.id;
        {
            let mut state = slot.state();
            state.last_error = Some(reason.to_owned());
            state.next_attempt = None;
        }
        let change = self.inner.registry.remove_server(server);
        self.report(server, change);
        self.set_status(slot, ServerStatus::Failed, reason);
        self.raise(
            slot,
            AlertKind::Failed,
            format!("server `{server}` failed and will not be retried: {reason}"),
        );
    }

    fn raise(&self, slot: &Slot, kind: AlertKind, message: String) {
        let fresh = slot.state().alerts.insert(kind);
        if fresh {
            tracing::warn!(server = %slot.spec.id, ?kind, message = ?message, "alert raised");
            self.inner.events.emit(GatewayEvent::AlertRaised {
                server: slot.spec.id.clone(),
                kind,
                message,
            });
        }
    }

    fn resolve(&self, slot: &Slot, kind: AlertKind, message: &str) {
        let raised = slot.state().alerts.remove(&kind);
        if raised {
            tracing::info!(server = %slot.spec.id, ?kind, "alert resolved");
            self.inner.events.emit(GatewayEvent::AlertResolved {
                server: slot.spec.id.clone(),
                kind,
                message: message.to_owned(),
            });
        }
    }

    /// Connects, loads the server's lists into the registry and marks it healthy. A spec outside
    /// the limits is refused here (a permanent error), since its fields are public and a zero
    /// interval or an overflowing duration would panic the timers below.
    async fn establish(
        &self,
        slot: &Arc<Slot>,
    ) -> Result<(Upstream, mpsc::Receiver<Signal>), Error> {
        slot.spec.validate()?;
        let server = &slot.spec.id;
        let era_hint = slot.state().era;
        let attempt = async {
            let Connection { upstream, signals } = Upstream::connect(&slot.spec, era_hint).await?;
            match fetch_lists(&upstream, &slot.spec).await {
                Ok(lists) => Ok((upstream, signals, lists)),
                Err(err) => {
                    upstream.close().await;
                    Err(err)
                }
            }
        };
        let (upstream, signals, lists) = tokio::select! {
            connected = attempt => connected?,
            _ = slot.stop.cancelled() => return Err(Error::ShuttingDown),
        };
        let peer = upstream.peer().clone();
        {
            let mut state = slot.state();
            state.upstream = Some(upstream.clone());
            state.era = Some(peer.era);
            state.last_error = None;
            state.lists = lists.clone();
        }
        self.inner.events.emit(GatewayEvent::Connected {
            server: server.clone(),
            era: peer.era,
            protocol_version: peer.protocol_version.clone(),
            server_info: peer.server_info.clone(),
        });
        let change = self
            .inner
            .registry
            .set_server(server, slot.spec.prefix(), lists);
        self.report(server, change);
        self.set_status(slot, ServerStatus::Healthy, "connected");
        self.resolve(slot, AlertKind::Unhealthy, "the server answers again");
        Ok((upstream, signals))
    }

    /// Serves one live connection: its signals, and a health probe on the configured interval.
    async fn run_connection(
        &self,
        slot: &Arc<Slot>,
        upstream: &Upstream,
        mut signals: mpsc::Receiver<Signal>,
    ) -> Ended {
        let health = slot.spec.health;
        let mut probes = tokio::time::interval_at(
            tokio::time::Instant::now() + health.interval,
            health.interval,
        );
        probes.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut failed, mut succeeded) = (0u32, 0u32);
        loop {
            tokio::select! {
                _ = slot.stop.cancelled() => return Ended::Stopped,
                signal = signals.recv() => {
                    let Some(signal) = signal else {
                        return Ended::Lost("the connection's reader stopped".into());
                    };
                    if let Some(ended) = self.on_signal(slot, upstream, signal, &mut signals).await {
                        return ended;
                    }
                }
                _ = probes.tick() => {
                    let outcome = tokio::time::timeout(health.timeout, self.inner.probe.probe(upstream)).await;
                    let problem = match outcome {
                        Ok(Ok(())) => None,
                        Ok(Err(err)) => Some(format!("health probe failed: {}", error_chain(err.as_ref()))),
                        Err(_) => Some(format!("health probe got no answer within {:?}", health.timeout)),
                    };
                    let status = slot.state().status;
                    match problem {
                        None => {
                            failed = 0;
                            succeeded = succeeded.saturating_add(1);
                            if status != ServerStatus::Healthy && succeeded >= health.healthy_threshold {
                                self.set_status(slot, ServerStatus::Healthy, "health probe succeeded");
                                self.resolve(slot, AlertKind::Unhealthy, "the server answers again");
                            }
                        }
                        Some(problem) => {
                            succeeded = 0;
                            failed = failed.saturating_add(1);
                            if failed >= health.unhealthy_threshold {
                                self.set_status(slot, ServerStatus::Unhealthy, &problem);
                                self.raise(slot, AlertKind::Unhealthy, format!("server `{}` is unhealthy: {problem}", slot.spec.id));
                                return Ended::Lost(format!("unhealthy after {failed} failed probes: {problem}"));
                            }
                            self.set_status(slot, ServerStatus::Degraded, &problem);
                        }
                    }
                }
            }
        }
    }

    /// Handles one signal; `Some` when it ends the connection.
    async fn on_signal(
        &self,
        slot: &Arc<Slot>,
        upstream: &Upstream,
        signal: Signal,
        signals: &mut mpsc::Receiver<Signal>,
    ) -> Option<Ended> {
        let server = slot.spec.id.clone();
        let event = match signal {
            Signal::ListChanged(kind) => {
                // Coalesce a burst of list changes into one refresh per kind.
                let mut kinds = vec![kind];
                let mut deferred = Vec::new();
                while let Ok(next) = signals.try_recv() {
                    match next {
                        Signal::ListChanged(kind) if !kinds.contains(&kind) => kinds.push(kind),
                        Signal::ListChanged(_) => {}
                        other => deferred.push(other),
                    }
                }
                for kind in kinds {
                    self.refresh(slot, upstream, kind).await;
                }
                for signal in deferred {
                    if let Some(ended) =
                        Box::pin(self.on_signal(slot, upstream, signal, signals)).await
                    {
                        return Some(ended);
                    }
                }
                return None;
            }
            Signal::Closed(reason) => {
                return Some(Ended::Lost(format!("connection closed: {reason}")));
            }
            Signal::ResourceUpdated(params) => GatewayEvent::ResourceUpdated {
                server,
                uri: params["uri"].as_str().unwrap_or_default().to_owned(),
            },
            Signal::Log(params, session) => GatewayEvent::UpstreamLog {
                server,
                source: LogSource::Notification,
                level: params["level"].as_str().unwrap_or("info").to_owned(),
                logger: params["logger"].as_str().map(str::to_owned),
                message: params.get("data").cloned().unwrap_or(Value::Null),
                session,
            },
            Signal::Stderr(line) => GatewayEvent::UpstreamLog {
                server,
                source: LogSource::Stderr,
                level: "info".into(),
                logger: None,
                message: Value::String(line),
                session: None,
            },
            Signal::ProtocolViolation(detail) => {
                tracing::warn!(server = %server, detail = ?detail, "upstream protocol violation");
                GatewayEvent::ProtocolViolation { server, detail }
            }
        };
        self.inner.events.emit(event);
        None
    }
}

/// Errors no retry can fix: the command does not exist or may not be run.
fn is_permanent(error: &Error) -> bool {
    matches!(
        error,
        Error::Spawn { source, .. }
            if matches!(source.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied)
    ) || matches!(error, Error::InvalidSpec(_))
}
