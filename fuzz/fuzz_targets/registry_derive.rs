//! Fuzz target: the registry derivation is a pure function of the set of
//! statements held. The fuzzer writes a registry history — any statement
//! kind, by any of eight keys (key 0 is the pinned admin), with any causal
//! dependencies on earlier statements, invitations signed by any key, cuts
//! over any actors — and `Registry::derive` must not panic, must judge every
//! statement exactly once (valid or invalid), and must derive the same
//! registry from the statements in another arrival order. Document changes
//! by every key are then judged with `authorize_meta`, which must not panic
//! and must refuse a key that is not a member, and a retired key's change
//! outside any cut that retired it (every valid revocation's, and its
//! rotation's), as read from the valid statements themselves. Anchors are
//! added, retired and rotated too: the active anchor set is never empty.
#![no_main]
use accordo_fuzz::{comune_doc, id, key, COMUNE, NETWORK};
use accordo_protocol::doc::DocId;
use accordo_protocol::envelope::{derive_actor, ChangeHash};
use accordo_protocol::identity::{NodeId, RelayAddr, Role};
use accordo_protocol::registry::{
    ChangeMeta, Cut, CutEntry, Invite, Registry, RegistryChange, RegistryRole, Statement,
};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

const KEYS: u8 = 8;
const MAX_CHANGES: usize = 24;

#[derive(Arbitrary, Debug)]
struct Input {
    changes: Vec<Change>,
    shuffle: u64,
}

#[derive(Arbitrary, Debug)]
struct Change {
    author: u8,
    generation: bool,
    /// Indices into earlier changes (modulo their count).
    deps: Vec<u8>,
    statement: Stmt,
}

#[derive(Arbitrary, Debug)]
enum Stmt {
    Genesis {
        other_network: bool,
    },
    Enroll {
        node: u8,
        other_comune: bool,
        role: u8,
    },
    Revoke {
        node: u8,
        cut: Vec<(u8, bool, u8)>,
    },
    Rotate {
        new: u8,
        cut: Vec<(u8, bool, u8)>,
    },
    Redeem {
        admin: u8,
        nonce: u8,
        role: u8,
        other_network: bool,
        forged: bool,
    },
    AddRelay {
        relay: u8,
    },
    AddAnchor {
        node: u8,
    },
    RetireAnchor {
        node: u8,
        cut: Vec<(u8, bool, u8)>,
    },
    NotAStatement,
}

fn pick(k: u8) -> u8 {
    k % KEYS
}

fn actor(k: u8, generation: bool) -> [u8; 16] {
    derive_actor(&id(pick(k)), &[u8::from(generation); 16])
}

fn cut(entries: &[(u8, bool, u8)]) -> Cut {
    Cut(entries
        .iter()
        .take(4)
        .map(|&(k, generation, max_seq)| CutEntry {
            doc: if k & 0x80 == 0 {
                DocId::Registry
            } else {
                comune_doc()
            },
            actor: actor(k, generation),
            max_seq: u64::from(max_seq % 8),
        })
        .collect())
}

fn statement(s: &Stmt) -> Result<Statement, String> {
    let comune = |other: bool| {
        if other { "092051" } else { COMUNE }
            .parse()
            .expect("six digits")
    };
    let role = |r: u8| match r % 3 {
        0 => RegistryRole::Comune,
        1 => RegistryRole::Metro,
        _ => RegistryRole::Admin,
    };
    let network = |other: bool| if other { "elsewhere" } else { NETWORK }.to_owned();
    Ok(match s {
        Stmt::Genesis { other_network } => Statement::Genesis {
            network: network(*other_network),
            admins: vec![id(0)],
        },
        Stmt::Enroll {
            node,
            other_comune,
            role: r,
        } => Statement::Enroll {
            node: id(pick(*node)),
            comune: comune(*other_comune),
            role: role(*r),
        },
        Stmt::Revoke { node, cut: c } => Statement::Revoke {
            node: id(pick(*node)),
            cut: cut(c),
        },
        Stmt::Rotate { new, cut: c } => Statement::Rotate {
            new: id(pick(*new)),
            cut: cut(c),
        },
        Stmt::Redeem {
            admin,
            nonce,
            role: r,
            other_network,
            forged,
        } => {
            let relay = RelayAddr {
                id: id(7),
                host_port: "127.0.0.1:4433".into(),
            };
            let role = match r % 3 {
                0 => Role::Comune,
                1 => Role::Metro,
                _ => Role::Admin,
            };
            let mut invite = Invite::sign(
                &key(pick(*admin)),
                &network(*other_network),
                &relay,
                comune(false),
                role,
                i64::MAX,
                [nonce % 4; 16],
            );
            if *forged {
                invite.expires_ms = 0;
            }
            Statement::Redeem { invite }
        }
        Stmt::AddRelay { relay } => Statement::AddRelay {
            relay: id(pick(*relay)),
            addr: "127.0.0.1:4433".into(),
        },
        Stmt::AddAnchor { node } => Statement::AddAnchor {
            node: id(pick(*node)),
        },
        Stmt::RetireAnchor { node, cut: c } => Statement::RetireAnchor {
            node: id(pick(*node)),
            cut: cut(c),
        },
        Stmt::NotAStatement => return Err("the change carries no registry statement".into()),
    })
}

fn history(input: &Input) -> Vec<RegistryChange> {
    let mut out: Vec<RegistryChange> = Vec::new();
    let mut seqs = std::collections::HashMap::new();
    for (i, c) in input.changes.iter().take(MAX_CHANGES).enumerate() {
        let author = pick(c.author);
        let seq = seqs.entry((author, c.generation)).or_insert(0u64);
        *seq += 1;
        let mut deps: Vec<ChangeHash> = Vec::new();
        if !out.is_empty() {
            for d in &c.deps {
                let h = out[usize::from(*d) % out.len()].hash;
                if !deps.contains(&h) {
                    deps.push(h);
                }
            }
        }
        let hash = ChangeHash(*blake3::hash(&(i as u64).to_be_bytes()).as_bytes());
        out.push(RegistryChange {
            hash,
            author: id(author),
            actor: actor(author, c.generation),
            seq: *seq,
            deps,
            statement: statement(&c.statement),
        });
    }
    out
}

fn shuffled(changes: &[RegistryChange], seed: u64) -> Vec<RegistryChange> {
    let mut out = changes.to_vec();
    let mut x = seed | 1;
    for i in (1..out.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.swap(i, (x % (i as u64 + 1)) as usize);
    }
    out
}

/// The cuts retiring `node`, read from the valid statements themselves: the
/// union of its revocations' cuts, and its rotation's cut.
fn retirements(
    reg: &Registry,
    changes: &[RegistryChange],
    node: NodeId,
) -> (Option<Vec<CutEntry>>, Option<Vec<CutEntry>>) {
    let mut revocations: Option<Vec<CutEntry>> = None;
    let mut rotation = None;
    for c in changes.iter().filter(|c| reg.valid.contains(&c.hash)) {
        match &c.statement {
            Ok(
                Statement::Revoke { node: n, cut } | Statement::RetireAnchor { node: n, cut },
            ) if *n == node => {
                revocations
                    .get_or_insert_with(Vec::new)
                    .extend(cut.0.iter().cloned());
            }
            Ok(Statement::Rotate { cut, .. }) if c.author == node => rotation = Some(cut.0.clone()),
            _ => {}
        }
    }
    (revocations, rotation)
}

fn holds(cut: &[CutEntry], m: &ChangeMeta) -> bool {
    cut.iter()
        .any(|e| e.doc == m.doc && e.actor == m.actor && m.seq <= e.max_seq)
}

fn same(a: &Registry, b: &Registry) {
    assert_eq!(a.network, b.network);
    assert_eq!(a.members, b.members);
    assert_eq!(a.relays, b.relays);
    assert_eq!(a.redeemed, b.redeemed);
    assert_eq!(a.valid, b.valid);
    assert_eq!(a.invalid, b.invalid);
    assert_eq!(a.anchors(), b.anchors());
}

fuzz_target!(|input: Input| {
    accordo_fuzz::init();
    let anchors: Vec<NodeId> = vec![id(0)];
    let changes = history(&input);
    let reg = Registry::derive(anchors.clone(), &changes);
    assert_eq!(reg.valid.len() + reg.invalid.len(), changes.len());
    for c in &changes {
        assert!(reg.valid.contains(&c.hash) != reg.invalid.contains_key(&c.hash));
    }
    assert!(!reg.anchors().is_empty(), "the network was left without an anchor");
    same(
        &reg,
        &Registry::derive(anchors.clone(), &shuffled(&changes, input.shuffle)),
    );
    same(
        &reg,
        &Registry::derive(anchors, &shuffled(&changes, !input.shuffle)),
    );

    for k in 0..KEYS {
        let (revocations, rotation) = retirements(&reg, &changes, id(k));
        for (doc, generation, seq) in [
            (comune_doc(), false, 1),
            (comune_doc(), true, 3),
            (DocId::Plan, true, 9),
        ] {
            let meta = ChangeMeta {
                doc: doc.clone(),
                author: id(k),
                actor: actor(k, generation),
                seq,
                hash: ChangeHash([k; 32]),
                deps: Vec::new(),
                message: None,
                time_s: 0,
            };
            if reg.authorize_meta(&meta).is_err() {
                continue;
            }
            assert!(
                reg.members.contains_key(&id(k)),
                "a key that is not a member wrote"
            );
            if let Some(cut) = &revocations {
                assert!(
                    holds(cut, &meta),
                    "a revoked key wrote outside its revocation cut"
                );
            }
            if let Some(cut) = &rotation {
                assert!(
                    holds(cut, &meta),
                    "a rotated key wrote outside its rotation cut"
                );
            }
        }
    }
});
