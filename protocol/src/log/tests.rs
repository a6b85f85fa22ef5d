//! The log rules, each with a test that a violation is refused and stores nothing.

use super::*;
use crate::authority::Member;
use crate::envelope::SignedChange;
use crate::identity::{NodeId, Role};
use crate::testkit::{comune_doc, TestAuthor};
use crate::wire::Cursor;

fn membership(authors: &[(&TestAuthor, &str, Role)]) -> BTreeMap<NodeId, Member> {
    authors
        .iter()
        .map(|(a, comune, role)| {
            (
                a.id(),
                Member {
                    node: a.id(),
                    comune: comune.parse().unwrap(),
                    role: *role,
                },
            )
        })
        .collect()
}

fn push(
    log: &mut MemLog,
    members: &BTreeMap<NodeId, Member>,
    envs: Vec<SignedChange>,
) -> (Vec<ChangeHash>, Vec<Rejected>) {
    let verified = envs.into_iter().map(SignedChange::verify).collect();
    ingest_push(log, members, verified).unwrap()
}

#[test]
fn changes_are_stored_once_and_duplicates_acked() {
    let mut a = TestAuthor::new(1, 1);
    let members = membership(&[(&a, "092009", Role::Comune)]);
    let mut log = MemLog::default();
    let c1 = a.edit(comune_doc(), "k", "v1");
    let c2 = a.edit(comune_doc(), "k", "v2");
    let (acks, rejects) = push(&mut log, &members, vec![c1.clone(), c2.clone()]);
    assert_eq!((acks.len(), rejects.len()), (2, 0));
    let (acks_again, rejects) = push(&mut log, &members, vec![c1, c2]);
    assert_eq!(acks_again, acks, "a resent push is acknowledged again");
    assert!(rejects.is_empty());
    assert_eq!(log.head_seq().unwrap(), 2, "nothing stored twice");
}

#[test]
fn missing_dependencies_are_refused() {
    let mut a = TestAuthor::new(1, 1);
    let members = membership(&[(&a, "092009", Role::Comune)]);
    let mut log = MemLog::default();
    let _c1 = a.edit(comune_doc(), "k", "v1");
    let c2 = a.edit(comune_doc(), "k", "v2");
    let (acks, rejects) = push(&mut log, &members, vec![c2]);
    assert!(acks.is_empty());
    assert!(matches!(rejects[0].reason, RejectReason::MissingDeps(ref d) if d.len() == 1));
    assert_eq!(log.head_seq().unwrap(), 0);
}

#[test]
fn equivocation_is_refused() {
    // Same key and nonce used twice (a restored backup without a fresh nonce):
    // two different changes with the same (actor, seq).
    let mut a = TestAuthor::new(1, 1);
    let mut twin = TestAuthor::new(1, 1);
    let members = membership(&[(&a, "092009", Role::Comune)]);
    let mut log = MemLog::default();
    let c1 = a.edit(comune_doc(), "k", "original");
    let forked = twin.edit(comune_doc(), "k", "forked");
    let (_, rejects) = push(&mut log, &members, vec![c1, forked]);
    assert_eq!(rejects.len(), 1);
    assert!(matches!(
        rejects[0].reason,
        RejectReason::Equivocation { seq: 1, .. }
    ));
    assert_eq!(log.head_seq().unwrap(), 1);
}

#[test]
fn authority_is_checked_per_document() {
    let mut comune = TestAuthor::new(1, 1);
    let mut stranger = TestAuthor::new(2, 1);
    let mut metro = TestAuthor::new(3, 1);
    let members = membership(&[
        (&comune, "092009", Role::Comune),
        (&metro, "092009", Role::Metro),
    ]);
    let mut log = MemLog::default();
    let other_comune = DocId::Comune("092051".parse().unwrap());
    let (acks, rejects) = push(
        &mut log,
        &members,
        vec![
            comune.edit(other_comune, "k", "x"),
            comune.edit(DocId::Plan, "k", "x"),
            stranger.edit(comune_doc(), "k", "x"),
            metro.edit(DocId::Plan, "k", "x"),
        ],
    );
    assert_eq!(acks.len(), 1, "only the metro plan edit is allowed");
    let reasons: Vec<_> = rejects
        .iter()
        .map(|r| (r.index, r.reason.clone()))
        .collect();
    assert!(matches!(
        reasons[0],
        (
            0,
            RejectReason::Unauthorized(AuthorityError::WrongComune { .. })
        )
    ));
    assert!(matches!(
        reasons[1],
        (1, RejectReason::Unauthorized(AuthorityError::NotMetro(_)))
    ));
    assert!(matches!(
        reasons[2],
        (2, RejectReason::Unauthorized(AuthorityError::NotMember(_)))
    ));
    assert_eq!(log.head_seq().unwrap(), 1);
}

#[test]
fn bad_envelopes_are_refused_with_their_index() {
    let mut a = TestAuthor::new(1, 1);
    let members = membership(&[(&a, "092009", Role::Comune)]);
    let mut log = MemLog::default();
    let mut bad = a.edit(comune_doc(), "k", "v");
    bad.doc = DocId::Comune("092051".parse().unwrap());
    let (acks, rejects) = push(&mut log, &members, vec![bad]);
    assert!(acks.is_empty());
    assert_eq!(rejects[0].index, 0);
    assert!(matches!(rejects[0].reason, RejectReason::Envelope(_)));
}

fn request(cursors: Vec<(Scope, u64)>, max_response_bytes: u32) -> SyncRequest {
    SyncRequest {
        push: vec![],
        cursors: cursors
            .into_iter()
            .map(|(scope, after_seq)| Cursor { scope, after_seq })
            .collect(),
        max_response_bytes,
        wait_ms: 0,
    }
}

#[test]
fn pulls_filter_by_scope_and_respect_the_budget() {
    let mut a = TestAuthor::new(1, 1);
    let mut m = TestAuthor::new(3, 1);
    let members = membership(&[(&a, "092009", Role::Comune), (&m, "092009", Role::Metro)]);
    let mut log = MemLog::default();
    let mut envs = Vec::new();
    for i in 0..5 {
        envs.push(a.edit(comune_doc(), "k", &format!("v{i}")));
        envs.push(m.edit(DocId::Plan, "k", &format!("p{i}")));
    }
    push(&mut log, &members, envs);
    let (head, progress, entries) = serve_pull(
        &log,
        &request(vec![(Scope::Doc(DocId::Plan), 0)], 1 << 20),
        &HashSet::new(),
    )
    .unwrap();
    assert_eq!(head, 10);
    assert_eq!(entries.len(), 5);
    assert!(entries.iter().all(|e| e.change.doc == DocId::Plan));
    assert_eq!(progress[0].reached, 10);

    // A budget of one byte still moves one entry per round trip, and the
    // cursor stops at it instead of claiming the whole range.
    let (_, progress, entries) =
        serve_pull(&log, &request(vec![(Scope::All, 0)], 1), &HashSet::new()).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(progress[0].reached, 1);

    // Nothing new: an empty answer that still reports the head.
    let (head, progress, entries) = serve_pull(
        &log,
        &request(vec![(Scope::All, 10)], 1 << 20),
        &HashSet::new(),
    )
    .unwrap();
    assert_eq!((head, progress[0].reached, entries.len()), (10, 10, 0));
}

#[test]
fn changes_pushed_in_the_request_are_not_echoed_back() {
    let mut a = TestAuthor::new(1, 1);
    let members = membership(&[(&a, "092009", Role::Comune)]);
    let mut log = MemLog::default();
    let mut req = request(vec![(Scope::Doc(comune_doc()), 0)], 1 << 20);
    req.push = vec![a.edit(comune_doc(), "k", "v")];
    let verified = req.push.iter().cloned().map(SignedChange::verify).collect();
    let resp = serve_sync(&mut log, &members, &req, verified).unwrap();
    assert_eq!(resp.acks.len(), 1);
    assert!(resp.entries.is_empty());
    assert_eq!(resp.progress[0].reached, 1);
}
