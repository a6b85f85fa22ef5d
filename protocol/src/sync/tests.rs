//! Convergence under random schedules: a relay and four nodes (two of the same
//! comune, one of another, one metro) edit while offline, sync in random
//! order, lose responses, restart with fresh actors and are restored from old
//! backups. After everyone syncs, all replicas of a document hold the same
//! changes and the same materialised values, and nothing acknowledged is lost.

use super::*;
use crate::authority::Member;
use crate::doc::DocId;
use crate::envelope::{derive_actor, SignedChange};
use crate::identity::{NodeId, Role};
use crate::log::{serve_sync, MemLog};
use crate::wire::{Request, Response};
use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ReadDoc, ROOT};
use ed25519_dalek::SigningKey;
use proptest::prelude::*;
use std::collections::{BTreeSet, HashSet};

#[derive(Clone)]
struct SimNode {
    key: SigningKey,
    member: Member,
    /// Process generation: every restart draws a fresh actor nonce.
    generation: u64,
    log: MemLog,
    outbox: Vec<SignedChange>,
    cursors: BTreeMap<Scope, u64>,
}

impl SimNode {
    fn new(seed: u8, comune: &str, role: Role) -> Self {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let member = Member {
            node: NodeId::from_signing_key(&key),
            comune: comune.parse().unwrap(),
            role,
        };
        let cursors = if role == Role::Metro {
            [(Scope::All, 0)].into()
        } else {
            [
                (Scope::Doc(DocId::Comune(member.comune.clone())), 0),
                (Scope::Doc(DocId::Plan), 0),
            ]
            .into()
        };
        SimNode {
            key,
            member,
            generation: 0,
            log: MemLog::default(),
            outbox: Vec::new(),
            cursors,
        }
    }

    fn nonce(&self, restarts: u64) -> [u8; 16] {
        let mut n = [0u8; 16];
        n[..8].copy_from_slice(&restarts.to_be_bytes());
        n[8] = self.key.to_bytes()[0];
        n
    }

    fn writable_doc(&self, plan: bool) -> DocId {
        if plan && self.member.role == Role::Metro {
            DocId::Plan
        } else {
            DocId::Comune(self.member.comune.clone())
        }
    }

    /// A local edit: load the document from the log with this process's actor,
    /// change one field, commit, sign, store and queue for push.
    fn edit(&mut self, restarts: &mut u64, plan: bool, field: u8, value: u32) {
        *restarts += 1; // every command is a fresh process
        self.generation = *restarts;
        let nonce = self.nonce(self.generation);
        let actor = derive_actor(&self.member.node, &nonce);
        let doc_id = self.writable_doc(plan);
        let mut doc = materialise(&self.log, &doc_id).with_actor(ActorId::from(&actor[..]));
        doc.put(ROOT, format!("f{field}"), value as i64).unwrap();
        doc.commit();
        let change = doc.get_last_local_change().unwrap();
        let env = SignedChange::sign(doc_id, &self.key, nonce, &change);
        let verified = env.clone().verify().unwrap();
        crate::log::admit(&mut self.log, &verified)
            .unwrap()
            .unwrap();
        self.outbox.push(env);
    }
}

fn materialise(log: &MemLog, doc: &DocId) -> AutoCommit {
    let changes: Vec<_> = log
        .all()
        .filter(|e| e.change.doc == *doc)
        .map(|e| automerge::Change::try_from(e.change.change.as_slice()).unwrap())
        .collect();
    let mut out = AutoCommit::new();
    out.apply_changes(changes).unwrap();
    out
}

struct Relay {
    log: MemLog,
    members: BTreeMap<NodeId, Member>,
    acked: HashSet<crate::envelope::ChangeHash>,
}

impl Relay {
    fn exchange(&mut self, req: Request) -> Response {
        // Through the real codec, as on the wire.
        let Request::Sync(req) = Request::decode(&req.encode()).unwrap() else {
            unreachable!()
        };
        let verified = req.push.iter().cloned().map(SignedChange::verify).collect();
        let resp = serve_sync(&mut self.log, &self.members, &req, verified).unwrap();
        self.acked.extend(resp.acks.iter().copied());
        Response::decode(&Response::Sync(resp).encode()).unwrap()
    }
}

/// One sync as `accordo sync` runs it; `lose_first` drops the first response
/// after the relay processed it (a broken connection), forcing a resend.
fn sync(node: &mut SimNode, relay: &mut Relay, lose_first: bool, budget: u32) -> bool {
    let mut session = SyncSession::new(node.cursors.clone());
    for round in 0..200 {
        let push: Vec<_> = node.outbox.iter().take(3).cloned().collect();
        let req = Request::Sync(session.request(push, budget, 0));
        let Response::Sync(resp) = relay.exchange(req) else {
            unreachable!()
        };
        if lose_first && round == 0 {
            continue;
        }
        session.check_response(&resp).unwrap();
        assert!(
            resp.rejects.is_empty(),
            "honest pushes are never refused: {:?}",
            resp.rejects
        );
        let accepted = accept_entries(&mut node.log, resp.entries).unwrap();
        assert!(accepted.refused.is_empty(), "{:?}", accepted.refused);
        session.commit_progress(&resp.progress);
        node.cursors = session.cursors().clone();
        let acked: HashSet<_> = resp.acks.into_iter().collect();
        node.outbox.retain(|e| {
            let h = automerge::Change::try_from(e.change.as_slice())
                .unwrap()
                .hash();
            !acked.contains(&h.into())
        });
        if session.caught_up() && node.outbox.is_empty() {
            return true;
        }
    }
    false
}

#[derive(Debug, Clone)]
enum Op {
    Edit {
        node: usize,
        plan: bool,
        field: u8,
        value: u32,
    },
    Sync {
        node: usize,
        lose_first: bool,
    },
    Backup {
        node: usize,
    },
    Restore {
        node: usize,
    },
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..4usize, any::<bool>(), 0..3u8, any::<u32>())
            .prop_map(|(node, plan, field, value)| Op::Edit { node, plan, field, value }),
        3 => (0..4usize, any::<bool>()).prop_map(|(node, lose_first)| Op::Sync { node, lose_first }),
        1 => (0..4usize).prop_map(|node| Op::Backup { node }),
        1 => (0..4usize).prop_map(|node| Op::Restore { node }),
    ]
}

fn run_schedule(ops: Vec<Op>, budget: u32) {
    let mut nodes = [
        SimNode::new(1, "092009", Role::Comune),
        SimNode::new(2, "092009", Role::Comune),
        SimNode::new(3, "092051", Role::Comune),
        SimNode::new(4, "092009", Role::Metro),
    ];
    let mut relay = Relay {
        log: MemLog::default(),
        members: nodes
            .iter()
            .map(|n| (n.member.node, n.member.clone()))
            .collect(),
        acked: HashSet::new(),
    };
    let mut backups: Vec<Option<SimNode>> = vec![None; nodes.len()];
    let mut restarts = 0u64;
    for op in ops {
        match op {
            Op::Edit {
                node,
                plan,
                field,
                value,
            } => nodes[node].edit(&mut restarts, plan, field, value),
            Op::Sync { node, lose_first } => {
                assert!(sync(&mut nodes[node], &mut relay, lose_first, budget));
            }
            Op::Backup { node } => backups[node] = Some(nodes[node].clone()),
            Op::Restore { node } => {
                if let Some(b) = backups[node].clone() {
                    nodes[node] = b; // its next edit draws a fresh nonce anyway
                }
            }
        }
    }
    // Heal: everyone syncs twice (the second pass carries what others pushed in the first).
    for _ in 0..2 {
        for node in nodes.iter_mut() {
            assert!(sync(node, &mut relay, false, budget));
        }
    }
    let relay_hashes: BTreeSet<_> = relay.log.hashes().into_values().flatten().collect();
    assert!(
        relay.acked.iter().all(|h| relay_hashes.contains(h)),
        "an acknowledged change was lost"
    );
    let mut docs: BTreeSet<DocId> = relay.log.hashes().into_keys().collect();
    docs.insert(DocId::Plan);
    for doc in docs {
        let mut expected = materialise(&relay.log, &doc);
        let followers: Vec<_> = nodes
            .iter()
            .filter(|n| {
                n.cursors.contains_key(&Scope::All)
                    || n.cursors.contains_key(&Scope::Doc(doc.clone()))
            })
            .collect();
        for n in followers {
            let mut got = materialise(&n.log, &doc);
            let mut a = got.get_heads();
            let mut b = expected.get_heads();
            a.sort();
            b.sort();
            assert_eq!(a, b, "heads of {doc} differ on {:?}", n.member.node);
            for f in 0..3 {
                let key = format!("f{f}");
                assert_eq!(
                    got.get(ROOT, &key).unwrap().map(|(v, _)| v.to_string()),
                    expected
                        .get(ROOT, &key)
                        .unwrap()
                        .map(|(v, _)| v.to_string()),
                );
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn random_schedules_converge(ops in proptest::collection::vec(arb_op(), 0..40), small in any::<bool>()) {
        // A tiny response budget forces many partial pulls.
        run_schedule(ops, if small { 200 } else { 1 << 20 });
    }
}

#[test]
fn a_restored_node_keeps_syncing_without_equivocating() {
    use Op::*;
    run_schedule(
        vec![
            Backup { node: 0 },
            Edit {
                node: 0,
                plan: false,
                field: 0,
                value: 1,
            },
            Sync {
                node: 0,
                lose_first: false,
            },
            Restore { node: 0 },
            Edit {
                node: 0,
                plan: false,
                field: 0,
                value: 2,
            },
            Sync {
                node: 0,
                lose_first: true,
            },
        ],
        1 << 20,
    );
}

#[test]
fn a_relay_that_lost_data_is_detected() {
    let mut session = SyncSession::new([(Scope::All, 10)]);
    let resp = SyncResponse {
        acks: vec![],
        rejects: vec![],
        head_seq: 3,
        progress: vec![],
        entries: vec![],
    };
    assert_eq!(
        session.check_response(&resp),
        Err(SyncError::RelayRegressed {
            head: 3,
            cursor: 10
        })
    );
}

#[test]
fn nodes_refuse_forged_entries_from_the_relay() {
    let mut node = SimNode::new(1, "092009", Role::Comune);
    let mut restarts = 0;
    node.edit(&mut restarts, false, 0, 7);
    let mut forged = node.outbox[0].clone();
    forged.doc = DocId::Plan; // the relay claims it belongs elsewhere
    let mut fresh = MemLog::default();
    let got = accept_entries(
        &mut fresh,
        vec![LogEntry {
            seq: 1,
            change: forged,
        }],
    )
    .unwrap();
    assert_eq!(got.refused.len(), 1);
    assert!(got.stored.is_empty());
}

/// Places only the keys in the set.
struct Known(BTreeSet<NodeId>);

impl Placement for Known {
    fn places(&self, change: &VerifiedChange) -> bool {
        self.0.contains(&change.envelope.author)
    }
}

#[test]
fn changes_of_unplaced_authors_are_set_aside_and_promoted_once_placed() {
    use crate::testkit::{comune_doc, TestAuthor};
    let mut stranger = TestAuthor::new(9, 1);
    let mut member = TestAuthor::new(3, 1);
    let first = stranger.edit(comune_doc(), "a", "1");
    // The member builds on the stranger's change.
    member.learn(&mut stranger);
    let second = member.edit(comune_doc(), "b", "2");
    let own = member.edit(comune_doc(), "c", "3");
    let entries: Vec<LogEntry> = [first, second, own]
        .into_iter()
        .enumerate()
        .map(|(i, change)| LogEntry {
            seq: i as u64 + 1,
            change,
        })
        .collect();
    let mut log = MemLog::default();
    let known = Known([member.id()].into());
    let got = accept_placed(&mut log, entries, &known, &BTreeSet::new()).unwrap();
    assert!(got.refused.is_empty(), "{:?}", got.refused);
    assert!(got.stored.is_empty(), "all three build on the stranger");
    assert_eq!(got.set_aside.len(), 3);
    assert_eq!(log.all().count(), 0);

    // Still unknown: nothing moves.
    let none = promote(&mut log, &got.set_aside, &known).unwrap();
    assert!(none.admitted.is_empty());
    // Once the stranger is placed, all three enter the log in causal order.
    let placed = Known([member.id(), stranger.id()].into());
    let moved = promote(&mut log, &got.set_aside, &placed).unwrap();
    assert_eq!(moved.admitted.len(), 3);
    assert!(moved.dropped.is_empty());
    assert_eq!(log.all().count(), 3);
}
