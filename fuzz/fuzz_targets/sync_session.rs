//! Fuzz target: a node's sync session fed whatever a hostile relay answers.
//!
//! The first byte picks the node's cursors (a metro node's `All` cursor, or a
//! comune node's comune and plan cursors, each at 0 or further on); the rest
//! is a series of u16-length-prefixed response bodies. Each is decoded; a
//! sync response goes through `check_response`, the pulled entries through
//! `accept_entries` into the node's `MemLog`, and, as the node does, the
//! cursors advance only if no entry was refused. Nothing may panic, and:
//! an accepted response names only asked-for scopes and a head no cursor is
//! beyond; the target is fixed by the first accepted response; every entry
//! is stored, a duplicate or refused; cursors never move back except by the
//! reset that follows a regressed relay; the log stays causally closed.
#![no_main]
use accordo_fuzz::{comune_doc, frames};
use accordo_protocol::doc::DocId;
use accordo_protocol::envelope::ChangeHash;
use accordo_protocol::log::{LogStore, MemLog};
use accordo_protocol::sync::{accept_entries, SyncError, SyncSession};
use accordo_protocol::wire::{Response, Scope};
use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;

fn session(config: u8) -> SyncSession {
    let start = u64::from(config >> 2);
    match config & 3 {
        0 => SyncSession::new([(Scope::All, 0)]),
        1 => SyncSession::new([(Scope::All, start)]),
        2 => SyncSession::new([(Scope::Doc(comune_doc()), 0), (Scope::Doc(DocId::Plan), 0)]),
        _ => SyncSession::new([
            (Scope::Doc(comune_doc()), start),
            (Scope::Doc(DocId::Plan), start / 2),
        ]),
    }
}

fn check_log(log: &MemLog) {
    let mut held = HashSet::new();
    for entry in log.all() {
        let v = entry
            .change
            .clone()
            .verify()
            .expect("the log holds verified changes");
        assert!(
            v.deps.iter().all(|d| held.contains(d)),
            "log is not causally closed"
        );
        assert!(held.insert(v.hash), "a change is held twice");
    }
}

fuzz_target!(|data: &[u8]| {
    accordo_fuzz::init();
    let Some((&config, rest)) = data.split_first() else {
        return;
    };
    let mut session = session(config);
    let mut log = MemLog::default();
    for body in frames(rest).take(16) {
        let Ok(Response::Sync(resp)) = Response::decode(body) else {
            continue;
        };
        let before = session.cursors().clone();
        let target_before = session.target();
        match session.check_response(&resp) {
            Ok(()) => {
                for p in &resp.progress {
                    assert!(before.contains_key(&p.scope));
                }
                assert!(before.values().all(|c| *c <= resp.head_seq));
                assert_eq!(
                    session.target(),
                    Some(target_before.unwrap_or(resp.head_seq))
                );
            }
            Err(SyncError::RelayRegressed { head, cursor }) => {
                assert_eq!(head, resp.head_seq);
                assert!(cursor > head && before.values().any(|c| *c == cursor));
                session.reset_cursors();
                assert!(session.cursors().values().all(|c| *c == 0));
                assert_eq!(session.target(), None);
                continue;
            }
            Err(SyncError::UnexpectedScope(scope)) => {
                assert!(!before.contains_key(&scope));
                assert_eq!(session.cursors(), &before);
                continue;
            }
        }
        let head = log.head_seq().unwrap();
        let n = resp.entries.len();
        let accepted = accept_entries(&mut log, resp.entries.clone()).unwrap();
        assert_eq!(
            accepted.stored.len() + accepted.duplicates + accepted.refused.len(),
            n
        );
        assert_eq!(log.head_seq().unwrap(), head + accepted.stored.len() as u64);
        let stored: HashSet<ChangeHash> = accepted.stored.iter().copied().collect();
        assert_eq!(
            stored.len(),
            accepted.stored.len(),
            "a change was stored twice"
        );
        // As the node does: a response with a refused entry is refused whole
        // and its progress is not committed.
        if accepted.refused.is_empty() {
            session.commit_progress(&resp.progress);
            for (scope, c) in session.cursors() {
                let reached = resp
                    .progress
                    .iter()
                    .filter(|p| p.scope == *scope)
                    .map(|p| p.reached);
                assert_eq!(*c, reached.fold(before[scope], u64::max));
            }
        }
        let caught_up = session
            .target()
            .is_some_and(|t| session.cursors().values().all(|c| *c >= t));
        assert_eq!(session.caught_up(), caught_up);
    }
    check_log(&log);
});
