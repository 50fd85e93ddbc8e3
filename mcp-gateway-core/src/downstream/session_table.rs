//! The open sessions in order of last use, so that a full table makes room by evicting the least
//! recently used idle session instead of refusing every new client, and so that one client
//! address cannot take the whole table: past its own cap, a peer makes room among its own
//! sessions, never among other clients'.
//!
//! Each use moves a session to the back of a `BTreeMap` keyed by a use counter (one for the whole
//! table, one per peer address, sharing the counter): a lookup, an insert and an eviction are
//! O(log n). A busy session (an open stream, a call in flight) met while looking for one to evict
//! is moved to the back as if used, so each is passed over at most once per round through the
//! table rather than on every `initialize`.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::session::Session;

/// The open sessions; see the module docs.
pub(crate) struct SessionTable {
    max: usize,
    max_per_peer: usize,
    inner: Mutex<Table>,
}

/// Last use → session id, least recent first.
type ByUse = BTreeMap<u64, Arc<str>>;

#[derive(Default)]
struct Table {
    /// Session id → the session and its last use.
    sessions: HashMap<Arc<str>, (Arc<Session>, u64)>,
    by_use: ByUse,
    /// The same order for each peer address's sessions.
    by_peer: HashMap<IpAddr, ByUse>,
    next_use: u64,
}

impl Table {
    fn peer_order(&mut self, session: &Session) -> Option<&mut ByUse> {
        self.by_peer.get_mut(&session.peer()?)
    }

    /// Marks a session as used now.
    fn use_now(&mut self, id: &Arc<str>) {
        let now = self.next_use;
        let Some((session, used)) = self.sessions.get_mut(id) else {
            return;
        };
        let before = std::mem::replace(used, now);
        let session = session.clone();
        self.by_use.remove(&before);
        self.by_use.insert(now, id.clone());
        if let Some(order) = self.peer_order(&session) {
            order.remove(&before);
            order.insert(now, id.clone());
        }
        self.next_use += 1;
    }

    /// Removes a session from every index.
    fn remove(&mut self, id: &str) -> Option<Arc<Session>> {
        let (session, used) = self.sessions.remove(id)?;
        self.by_use.remove(&used);
        if let Some(peer) = session.peer()
            && let Some(order) = self.by_peer.get_mut(&peer)
        {
            order.remove(&used);
            if order.is_empty() {
                self.by_peer.remove(&peer);
            }
        }
        Some(session)
    }

    /// Removes the least recently used session with nothing open, among all sessions or among
    /// one peer's, looking at each candidate once.
    fn evict_idle(&mut self, among: Option<IpAddr>) -> Option<Arc<Session>> {
        let candidates = match among {
            Some(peer) => self.by_peer.get(&peer)?.len(),
            None => self.by_use.len(),
        };
        for _ in 0..candidates {
            let order = match among {
                Some(peer) => self.by_peer.get(&peer)?,
                None => &self.by_use,
            };
            let (_, id) = order.first_key_value()?;
            let id = id.clone();
            let (session, _) = self.sessions.get(&id)?;
            if !session.is_busy() {
                return self.remove(&id);
            }
            self.use_now(&id);
        }
        None
    }
}

/// Why a session could not be added.
pub(crate) enum TableFull {
    /// Every session is busy.
    Everyone,
    /// Every session of this peer address is busy.
    Peer(IpAddr),
}

impl SessionTable {
    pub(crate) fn new(max: usize, max_per_peer: usize) -> Self {
        Self {
            max,
            max_per_peer,
            inner: Mutex::new(Table::default()),
        }
    }

    /// Adds a session. At its peer's cap the peer's least recently used idle session makes room;
    /// at the table's cap, the least recently used idle session of anyone. The evicted session is
    /// returned for the caller to close; if every candidate is busy the table is full.
    pub(crate) fn insert(&self, session: Arc<Session>) -> Result<Option<Arc<Session>>, TableFull> {
        let mut table = self.inner.lock().map_err(|_| TableFull::Everyone)?;
        let peer = session.peer();
        let peer_count = peer
            .and_then(|peer| table.by_peer.get(&peer))
            .map_or(0, BTreeMap::len);
        let evicted = match peer {
            Some(peer) if peer_count >= self.max_per_peer => {
                Some(table.evict_idle(Some(peer)).ok_or(TableFull::Peer(peer))?)
            }
            _ if table.sessions.len() >= self.max => {
                Some(table.evict_idle(None).ok_or(TableFull::Everyone)?)
            }
            _ => None,
        };
        let id = session.id_arc();
        let used = table.next_use;
        table.next_use += 1;
        table.by_use.insert(used, id.clone());
        if let Some(peer) = peer {
            table
                .by_peer
                .entry(peer)
                .or_default()
                .insert(used, id.clone());
        }
        table.sessions.insert(id, (session, used));
        Ok(evicted)
    }

    /// The session with this id, marked as used now.
    pub(crate) fn touch(&self, id: &str) -> Option<Arc<Session>> {
        let mut table = self.inner.lock().ok()?;
        let (id, session) = table
            .sessions
            .get_key_value(id)
            .map(|(id, (session, _))| (id.clone(), session.clone()))?;
        table.use_now(&id);
        Some(session)
    }

    /// The session with this id, without marking it used (the gateway's own deliveries).
    pub(crate) fn get(&self, id: &str) -> Option<Arc<Session>> {
        let table = self.inner.lock().ok()?;
        table.sessions.get(id).map(|(session, _)| session.clone())
    }

    pub(crate) fn remove(&self, id: &str) -> Option<Arc<Session>> {
        self.inner.lock().ok()?.remove(id)
    }

    pub(crate) fn all(&self) -> Vec<Arc<Session>> {
        self.inner
            .lock()
            .map(|table| table.sessions.values().map(|(s, _)| s.clone()).collect())
            .unwrap_or_default()
    }

    pub(crate) fn len(&self) -> usize {
        self.inner
            .lock()
            .map(|t| t.sessions.len())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
