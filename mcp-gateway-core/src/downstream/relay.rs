//! Gateway events turned into notifications for the sessions that want them (list changes,
//! resource updates, upstream logs at each session's level), and the reaping of idle sessions,
//! in one task per server.

use std::sync::Weak;
use std::time::Duration;

use serde_json::json;

use super::McpServer;
use crate::events::{EventSubscription, GatewayEvent, LogSource};
use crate::jsonrpc;
use crate::upstream::ListKind;

/// The longest interval between two checks for idle sessions.
const REAP_PERIOD: Duration = Duration::from_secs(30);

impl McpServer {
    /// Turns one gateway event into notifications for the sessions that want it.
    fn relay(&self, event: &GatewayEvent) {
        match event {
            GatewayEvent::ListChanged { kind, .. } => {
                let method = match kind {
                    ListKind::Tools => "notifications/tools/list_changed",
                    ListKind::Resources => "notifications/resources/list_changed",
                    ListKind::Prompts => "notifications/prompts/list_changed",
                };
                for session in self.sessions.all() {
                    session.notify(jsonrpc::notification(method, None));
                }
                let key = match kind {
                    ListKind::Tools => "toolsListChanged",
                    ListKind::Resources => "resourcesListChanged",
                    ListKind::Prompts => "promptsListChanged",
                };
                self.listeners.notify(key, method);
            }
            GatewayEvent::ResourceUpdated { uri, .. } => {
                for id in self.subscriptions.sessions(uri) {
                    if let Some(session) = self.sessions.get(&id) {
                        session.notify(jsonrpc::notification(
                            "notifications/resources/updated",
                            Some(json!({ "uri": uri })),
                        ));
                    }
                }
            }
            GatewayEvent::UpstreamLog {
                server,
                source: LogSource::Notification,
                level,
                logger,
                message,
                session: None,
            } => {
                let logger = match logger {
                    Some(logger) => format!("{server}/{logger}"),
                    None => server.to_string(),
                };
                let params = json!({ "level": level, "logger": logger, "data": message });
                for session in self.sessions.all() {
                    if session.wants_log(level) {
                        session.notify(jsonrpc::notification(
                            "notifications/message",
                            Some(params.clone()),
                        ));
                    }
                }
            }
            _ => {}
        }
    }

    /// Closes sessions idle for longer than the configured timeout. Never waits on an upstream:
    /// this runs in the notification relay.
    fn close_idle_sessions(&self) {
        let timeout = self.config.session_idle_timeout;
        for session in self.sessions.all() {
            if session.idle_for() > timeout
                && !session.is_busy()
                && let Some(session) = self.sessions.remove(session.id())
            {
                tracing::debug!(session = %session.id(), "closing idle session");
                self.discard_session(&session);
            }
        }
    }
}

/// Relays gateway events to sessions and reaps idle sessions, until the server is dropped.
/// Sessions are checked every half idle timeout (at most every 30 s), so a session is reaped
/// within one and a half timeouts of its last use.
pub(super) async fn relay_events(server: Weak<McpServer>, mut events: EventSubscription) {
    let period = server.upgrade().map_or(REAP_PERIOD, |server| {
        (server.config.session_idle_timeout / 2).clamp(Duration::from_millis(10), REAP_PERIOD)
    });
    let mut reaper = tokio::time::interval(period);
    loop {
        tokio::select! {
            event = events.recv() => {
                let (Some(event), Some(server)) = (event, server.upgrade()) else { return };
                server.relay(&event.event);
            }
            _ = reaper.tick() => {
                let Some(server) = server.upgrade() else { return };
                server.close_idle_sessions();
            }
        }
    }
}
