//! The downstream side's settings: page size, the caps on sessions, listen streams and calls in
//! flight, and the session idle timeout.

use std::time::Duration;

use crate::spec::limits;

/// Settings of the downstream side.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DownstreamConfig {
    /// Entries per page of a merged list.
    pub page_size: usize,
    /// Most sessions open at once. At the cap, `initialize` evicts the least recently used
    /// session that is idle (no open stream, no call in flight); the evicted client's next
    /// request gets "session not found" and it initializes again. Only when every session is
    /// busy is `initialize` refused.
    pub max_sessions: usize,
    /// Most sessions open at once from one client address (HTTP clients; stdio has none). At
    /// this cap `initialize` evicts that address's own least recently used idle session, never
    /// another client's. Every client on the gateway's own host shares one loopback address.
    pub max_sessions_per_peer: usize,
    /// Most stateless `subscriptions/listen` streams open at once; beyond it a listen request is
    /// answered with an error and its stream ends.
    pub max_listeners: usize,
    /// A session with no traffic and nothing open for this long is closed.
    pub session_idle_timeout: Duration,
    /// How long a client gets to answer a relayed sampling, elicitation or roots request.
    pub client_request_timeout: Duration,
    /// Most requests (calls, reads, list pages, …) one session may have in flight at once; 256
    /// by default. One more is answered at once with a JSON-RPC error naming this limit, never
    /// queued. Stateless callers have no session; [`max_calls`](Self::max_calls) bounds them.
    pub max_calls_per_session: usize,
    /// Most requests in flight at once from all clients together, sessions and stateless
    /// callers alike; 10,000 by default. One more is answered at once with a JSON-RPC error
    /// naming this limit.
    pub max_calls: usize,
}

impl Default for DownstreamConfig {
    fn default() -> Self {
        Self {
            page_size: 1000,
            max_sessions: 10_000,
            max_sessions_per_peer: 1_000,
            max_listeners: 10_000,
            session_idle_timeout: Duration::from_secs(30 * 60),
            client_request_timeout: Duration::from_secs(300),
            max_calls_per_session: 256,
            max_calls: 10_000,
        }
    }
}

impl DownstreamConfig {
    /// Sets the page size of merged lists.
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size.max(1);
        self
    }

    /// Sets the session cap.
    pub fn with_max_sessions(mut self, max_sessions: usize) -> Self {
        self.max_sessions = max_sessions;
        self
    }

    /// Sets the cap on sessions from one client address (at least one).
    pub fn with_max_sessions_per_peer(mut self, max: usize) -> Self {
        self.max_sessions_per_peer = max.max(1);
        self
    }

    /// Sets the cap on stateless `subscriptions/listen` streams.
    pub fn with_max_listeners(mut self, max_listeners: usize) -> Self {
        self.max_listeners = max_listeners;
        self
    }

    /// Sets the idle timeout of sessions.
    pub fn with_session_idle_timeout(mut self, timeout: Duration) -> Self {
        self.session_idle_timeout = timeout;
        self
    }

    /// Sets the cap on one session's requests in flight, clamped into [`limits::CALLS`] (1 to a
    /// million).
    pub fn with_max_calls_per_session(mut self, max: usize) -> Self {
        self.max_calls_per_session = limits::clamp(max, &limits::CALLS);
        self
    }

    /// Sets the cap on all clients' requests in flight, clamped into [`limits::CALLS`] (1 to a
    /// million).
    pub fn with_max_calls(mut self, max: usize) -> Self {
        self.max_calls = limits::clamp(max, &limits::CALLS);
        self
    }
}
