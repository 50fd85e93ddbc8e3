use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;

use super::{SessionTable, TableFull};
use crate::downstream::session::Session;

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

fn session(peer: Option<IpAddr>) -> Arc<Session> {
    Arc::new(Session::new("2025-11-25".into(), Value::Null, peer))
}

/// Makes a session busy the way a client's open GET stream does; busy while the receiver lives.
fn hold_stream(session: &Session) -> mpsc::Receiver<Value> {
    let (stream, receiver) = mpsc::channel(1);
    session.attach_stream(stream);
    receiver
}

fn evicted_id(table: &SessionTable, session: Arc<Session>) -> Option<String> {
    match table.insert(session) {
        Ok(evicted) => evicted.map(|s| s.id().to_owned()),
        Err(_) => panic!("the table refused a session"),
    }
}

#[test]
fn a_peer_at_its_cap_evicts_its_own_oldest_idle_session_never_another_peers() {
    let table = SessionTable::new(100, 2);
    let other = session(Some(B));
    let first = session(Some(A));
    let second = session(Some(A));
    for s in [&other, &first, &second] {
        assert_eq!(evicted_id(&table, s.clone()), None);
    }
    // `first` was used since, so `second` is now A's least recently used.
    assert!(table.touch(first.id()).is_some());
    assert_eq!(
        evicted_id(&table, session(Some(A))),
        Some(second.id().to_owned())
    );
    assert!(
        table.get(other.id()).is_some(),
        "another peer's session was evicted"
    );
    assert!(table.get(first.id()).is_some());
    assert_eq!(table.len(), 3);
}

#[test]
fn a_peer_whose_sessions_are_all_busy_is_refused_while_others_still_get_in() {
    let table = SessionTable::new(100, 2);
    let busy: Vec<_> = (0..2).map(|_| session(Some(A))).collect();
    let _streams: Vec<_> = busy.iter().map(|s| hold_stream(s)).collect();
    for s in &busy {
        assert_eq!(evicted_id(&table, s.clone()), None);
    }
    assert!(matches!(
        table.insert(session(Some(A))),
        Err(TableFull::Peer(peer)) if peer == A
    ));
    assert_eq!(evicted_id(&table, session(Some(B))), None);
    assert_eq!(evicted_id(&table, session(None)), None);
    assert_eq!(table.len(), 4);
}

#[test]
fn a_busy_session_is_passed_over_for_the_next_idle_one_of_its_peer() {
    let table = SessionTable::new(100, 2);
    let streaming = session(Some(A));
    let idle = session(Some(A));
    let _stream = hold_stream(&streaming);
    evicted_id(&table, streaming.clone());
    evicted_id(&table, idle.clone());
    assert_eq!(
        evicted_id(&table, session(Some(A))),
        Some(idle.id().to_owned())
    );
    assert!(table.get(streaming.id()).is_some());
}

#[test]
fn the_whole_table_at_its_cap_evicts_the_least_recently_used_idle_session_of_anyone() {
    let table = SessionTable::new(2, 2);
    let oldest = session(Some(B));
    evicted_id(&table, oldest.clone());
    evicted_id(&table, session(None));
    assert_eq!(
        evicted_id(&table, session(Some(A))),
        Some(oldest.id().to_owned())
    );
    // The evicted session left the peer's index too: B can open two again without evicting.
    evicted_id(&table, session(Some(B)));
    assert_eq!(table.len(), 2);
}

#[test]
fn removing_a_session_frees_its_place_under_its_peers_cap() {
    let table = SessionTable::new(100, 1);
    let only = session(Some(A));
    evicted_id(&table, only.clone());
    assert!(table.remove(only.id()).is_some());
    assert_eq!(evicted_id(&table, session(Some(A))), None);
}
