//! The open sessions in order of last use, so that a full table makes room by evicting the least
//! recently used idle session instead of refusing every new client.
//!
//! Each use moves a session to the back of a `BTreeMap` keyed by a use counter: a lookup, an
//! insert and an eviction are O(log n). A busy session (an open stream, a call in flight) met
//! while looking for one to evict is moved to the back as if used, so each is passed over at most
//! once per round through the table rather than on every `initialize`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use super::session::Session;

/// The open sessions; see the module docs.
pub(crate) struct SessionTable {
    max: usize,
    inner: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    /// Session id → the session and its last use.
    sessions: HashMap<Arc<str>, (Arc<Session>, u64)>,
    /// Last use → session id, least recent first.
    by_use: BTreeMap<u64, Arc<str>>,
    next_use: u64,
}

impl Table {
    /// Marks a session as used now.
    fn use_now(&mut self, id: &Arc<str>) {
        let now = self.next_use;
        if let Some((_, used)) = self.sessions.get_mut(id) {
            self.by_use.remove(used);
            *used = now;
            self.by_use.insert(now, id.clone());
            self.next_use += 1;
        }
    }

    /// Removes the least recently used session with nothing open, looking at each session once.
    fn evict_idle(&mut self) -> Option<Arc<Session>> {
        for _ in 0..self.by_use.len() {
            let (_, id) = self.by_use.pop_first()?;
            let Some((session, used)) = self.sessions.get_mut(&id) else {
                continue;
            };
            if !session.is_busy() {
                return self.sessions.remove(&id).map(|(session, _)| session);
            }
            *used = self.next_use;
            self.by_use.insert(self.next_use, id);
            self.next_use += 1;
        }
        None
    }
}

/// Why a session could not be added.
pub(crate) struct TableFull;

impl SessionTable {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            inner: Mutex::new(Table::default()),
        }
    }

    /// Adds a session. At the cap the least recently used idle session makes room and is
    /// returned, for the caller to close; if every session is busy the table is full.
    pub(crate) fn insert(&self, session: Arc<Session>) -> Result<Option<Arc<Session>>, TableFull> {
        let mut table = self.inner.lock().map_err(|_| TableFull)?;
        let evicted = if table.sessions.len() >= self.max {
            Some(table.evict_idle().ok_or(TableFull)?)
        } else {
            None
        };
        let id = session.id_arc();
        let used = table.next_use;
        table.next_use += 1;
        table.by_use.insert(used, id.clone());
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
        let mut table = self.inner.lock().ok()?;
        let (session, used) = table.sessions.remove(id)?;
        table.by_use.remove(&used);
        Some(session)
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
