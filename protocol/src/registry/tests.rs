//! Registry rules: who may state what, causal cuts, rotation, invitations,
//! and independence from the order in which statements are learnt.

use super::*;
use crate::envelope::SignedChange;
use crate::identity::Role;
use crate::testkit::{comune_doc, TestAuthor};
use proptest::prelude::*;

fn verified(env: SignedChange) -> VerifiedChange {
    env.verify().unwrap()
}

fn reg_change(env: &SignedChange) -> RegistryChange {
    RegistryChange::from_verified(&verified(env.clone()))
}

fn istat(s: &str) -> Istat {
    s.parse().unwrap()
}

fn enroll(node: NodeId, comune: &str, role: RegistryRole) -> Statement {
    Statement::Enroll {
        node,
        comune: istat(comune),
        role,
    }
}

fn derive(anchors: &[NodeId], envs: &[SignedChange]) -> Registry {
    let changes: Vec<RegistryChange> = envs.iter().map(reg_change).collect();
    Registry::derive(anchors.iter().copied(), &changes)
}

/// The cut an issuer holding `changes` (all by one key, one actor) would state.
fn cut_of(envs: &[SignedChange]) -> Cut {
    let mut cut = Cut::default();
    for env in envs {
        let v = verified(env.clone());
        cut.union(&Cut(vec![CutEntry {
            doc: v.envelope.doc.clone(),
            actor: v.actor,
            max_seq: v.seq,
        }]));
    }
    cut
}

struct Net {
    admin: TestAuthor,
    statements: Vec<SignedChange>,
}

impl Net {
    fn new() -> Net {
        let mut admin = TestAuthor::new(100, 1);
        let genesis = admin.statement(&Statement::Genesis {
            network: "cagliari".into(),
            admins: vec![admin.id()],
        });
        Net {
            admin,
            statements: vec![genesis],
        }
    }

    fn state(&mut self, s: Statement) -> SignedChange {
        let env = self.admin.statement(&s);
        self.statements.push(env.clone());
        env
    }

    fn registry(&self) -> Registry {
        derive(&[self.admin.id()], &self.statements)
    }
}

#[test]
fn an_anchor_enrolls_and_the_member_writes_its_comune_only() {
    let mut net = Net::new();
    let mut office = TestAuthor::new(1, 1);
    net.state(enroll(office.id(), "092009", RegistryRole::Comune));
    let reg = net.registry();
    assert!(reg.invalid.is_empty(), "{:?}", reg.invalid);
    let own = verified(office.edit(comune_doc(), "title", "Scuola"));
    assert_eq!(reg.authorize(&own), Ok(()));
    let other = verified(office.edit(DocId::Comune(istat("092051")), "title", "x"));
    assert!(matches!(
        reg.authorize(&other),
        Err(AuthorityError::WrongComune { .. })
    ));
    let plan = verified(office.edit(DocId::Plan, "axis", "x"));
    assert!(matches!(
        reg.authorize(&plan),
        Err(AuthorityError::NotMetro(_))
    ));
}

#[test]
fn a_statement_signed_by_a_non_admin_is_invalid() {
    let mut net = Net::new();
    let mut office = TestAuthor::new(1, 1);
    net.state(enroll(office.id(), "092009", RegistryRole::Comune));
    office.learn(&mut net.admin);
    let intruder = TestAuthor::new(2, 1);
    let forged = office.statement(&enroll(intruder.id(), "092051", RegistryRole::Metro));
    net.statements.push(forged.clone());
    let reg = net.registry();
    let reason = reg.invalid.get(&verified(forged).hash).unwrap();
    assert!(reason.contains("is not an admin"), "{reason}");
    assert!(reg.member(&intruder.id()).is_none());
}

#[test]
fn an_unpinned_key_cannot_found_the_network() {
    let mut rogue = TestAuthor::new(7, 1);
    let genesis = rogue.statement(&Statement::Genesis {
        network: "rogue".into(),
        admins: vec![rogue.id()],
    });
    let reg = derive(&[TestAuthor::new(100, 1).id()], &[genesis]);
    assert_eq!(reg.network, None);
    assert_eq!(reg.invalid.len(), 1);
}

#[test]
fn revocation_keeps_the_changes_before_the_cut_and_refuses_the_rest() {
    let mut net = Net::new();
    let mut office = TestAuthor::new(1, 1);
    net.state(enroll(office.id(), "092009", RegistryRole::Comune));
    let before = office.edit(comune_doc(), "title", "one");
    // The admin saw `before` and revokes; meanwhile, offline, the key writes on.
    let cut = cut_of(std::slice::from_ref(&before));
    net.state(Statement::Revoke {
        node: office.id(),
        cut,
    });
    let after = office.edit(comune_doc(), "title", "two");
    let reg = net.registry();
    assert!(reg.invalid.is_empty(), "{:?}", reg.invalid);
    assert_eq!(reg.authorize(&verified(before)), Ok(()));
    assert_eq!(
        reg.authorize(&verified(after)),
        Err(AuthorityError::Retired(office.id()))
    );
    assert!(!reg.admits(&office.id()));
}

#[test]
fn a_rotation_concurrent_with_a_revocation_does_not_escape_it() {
    let mut net = Net::new();
    let mut office = TestAuthor::new(1, 1);
    net.state(enroll(office.id(), "092009", RegistryRole::Comune));
    office.learn(&mut net.admin);
    // Concurrently: the admin revokes (having seen nothing of the key), and
    // the (stolen) key rotates itself to a fresh key.
    net.state(Statement::Revoke {
        node: office.id(),
        cut: Cut::default(),
    });
    let fresh = TestAuthor::new(3, 1);
    let rotate = office.statement(&Statement::Rotate {
        new: fresh.id(),
        cut: Cut::default(),
    });
    net.statements.push(rotate.clone());
    for order in [
        net.statements.clone(),
        net.statements.iter().rev().cloned().collect(),
    ] {
        let reg = derive(&[net.admin.id()], &order);
        assert!(reg.invalid.contains_key(&verified(rotate.clone()).hash));
        assert!(reg.member(&fresh.id()).is_none());
    }
}

#[test]
fn rotation_enrolls_the_new_key_and_keeps_old_history_valid() {
    let mut net = Net::new();
    let mut old = TestAuthor::new(1, 1);
    net.state(enroll(old.id(), "092009", RegistryRole::Comune));
    old.learn(&mut net.admin);
    let mut data = TestAuthor::new(1, 1);
    let history = data.edit(comune_doc(), "title", "old");
    let mut new = TestAuthor::new(4, 1);
    let rotate = old.statement(&Statement::Rotate {
        new: new.id(),
        cut: cut_of(std::slice::from_ref(&history)),
    });
    net.statements.push(rotate);
    let late = data.edit(comune_doc(), "title", "late");
    let reg = net.registry();
    assert!(reg.invalid.is_empty(), "{:?}", reg.invalid);
    assert_eq!(reg.authorize(&verified(history)), Ok(()));
    assert_eq!(
        reg.authorize(&verified(late)),
        Err(AuthorityError::Retired(old.id()))
    );
    assert_eq!(
        reg.authorize(&verified(new.edit(comune_doc(), "title", "new"))),
        Ok(())
    );
    assert_eq!(reg.member(&new.id()).unwrap().comune, istat("092009"));
}

/// Regression, found by the `registry_derive` fuzz target (property: a
/// document change is inside every cut that retired its key). A key rotated
/// with a cut, then revoked by an admin whose cut reaches further (the admin
/// held later changes of the old key: a thief's, say), could still write up
/// to the revocation's cut, because document changes were judged against the
/// member's settled status (the revocation's cut only) while statements were
/// judged against both. Both are now judged against every cut.
#[test]
fn a_rotated_then_revoked_key_stays_inside_its_rotation_cut() {
    let mut net = Net::new();
    let mut old = TestAuthor::new(1, 1);
    net.state(enroll(old.id(), "092009", RegistryRole::Comune));
    old.learn(&mut net.admin);
    let mut data = TestAuthor::new(1, 1);
    let history = data.edit(comune_doc(), "title", "old");
    let rotate = old.statement(&Statement::Rotate {
        new: TestAuthor::new(4, 1).id(),
        cut: cut_of(std::slice::from_ref(&history)),
    });
    net.statements.push(rotate.clone());
    let late = data.edit(comune_doc(), "title", "late");
    // The admin held the rotation and the late change when it revoked the key.
    net.admin.learn(&mut old);
    net.state(Statement::Revoke {
        node: old.id(),
        cut: cut_of(&[history, late.clone(), rotate]),
    });
    let reg = net.registry();
    assert!(reg.invalid.is_empty(), "{:?}", reg.invalid);
    assert_eq!(
        reg.authorize(&verified(late)),
        Err(AuthorityError::Retired(old.id()))
    );
}

fn invite(admin: &TestAuthor, nonce: u8) -> Invite {
    Invite::sign(
        &admin.key,
        "cagliari",
        &format!("{}@127.0.0.1:4433", admin.id()).parse().unwrap(),
        istat("092051"),
        Role::Comune,
        1_000,
        [nonce; 16],
    )
}

#[test]
fn an_invitation_is_redeemed_once() {
    let mut net = Net::new();
    let inv = invite(&net.admin, 1);
    let token = inv.to_token();
    let parsed = Invite::from_token(&token).unwrap();
    assert_eq!(parsed, inv);
    let mut first = TestAuthor::new(5, 1);
    let mut second = TestAuthor::new(6, 1);
    let r1 = first.statement(&Statement::Redeem {
        invite: parsed.clone(),
    });
    let r2 = second.statement(&Statement::Redeem { invite: parsed });
    net.statements.extend([r1.clone(), r2.clone()]);
    let reg = net.registry();
    // Exactly one wins, the same one in any order: the smaller hash.
    let (h1, h2) = (verified(r1).hash, verified(r2).hash);
    let (winner, loser) = if h1 < h2 { (h1, h2) } else { (h2, h1) };
    assert!(reg.valid.contains(&winner));
    assert!(reg.invalid[&loser].contains("already redeemed"));
    let reversed: Vec<_> = net.statements.iter().rev().cloned().collect();
    assert_eq!(derive(&[net.admin.id()], &reversed).valid, reg.valid);
}

#[test]
fn a_v2_token_carries_the_anchors_to_pin_under_its_signature() {
    let net = Net::new();
    let deputy = TestAuthor::new(103, 1);
    let relay = format!("{}@127.0.0.1:4433", net.admin.id())
        .parse()
        .unwrap();
    let pinning = |anchors: Vec<NodeId>| {
        Invite::sign_pinning(
            &deputy.key,
            "cagliari",
            &relay,
            istat("092051"),
            Role::Comune,
            1_000,
            [3; 16],
            anchors,
        )
    };
    let inv = pinning(vec![net.admin.id()]);
    let token = inv.to_token();
    assert!(token.starts_with(INVITE_TOKEN_V2_PREFIX), "{token}");
    let parsed = Invite::from_token(&token).unwrap();
    assert_eq!(parsed, inv);
    assert_eq!(parsed.anchors_to_pin(), vec![net.admin.id()]);
    // The anchors are signed: swapping them breaks the signature.
    let mut altered = inv.clone();
    altered.anchors = vec![deputy.id()];
    assert_eq!(altered.verify_signature(), Err(InviteError::BadSignature));
    // Pins that are just the signer make a v1 token, as before.
    let own = pinning(vec![deputy.id()]);
    assert!(own.to_token().starts_with(INVITE_TOKEN_PREFIX));
    assert!(own.anchors.is_empty());
    assert_eq!(own.anchors_to_pin(), vec![deputy.id()]);
    // A redemption carrying a v2 invitation round-trips through its message.
    let s = Statement::Redeem {
        invite: inv.clone(),
    };
    assert_eq!(Statement::from_message(&s.to_message()).unwrap(), s);
}

#[test]
fn forged_and_damaged_tokens_are_refused() {
    let net = Net::new();
    let mut inv = invite(&net.admin, 1);
    inv.comune = istat("092009");
    assert_eq!(
        Invite::from_token(&inv.to_token()),
        Err(InviteError::BadSignature)
    );
    let token = invite(&net.admin, 1).to_token();
    assert!(matches!(
        Invite::from_token(&token[..token.len() - 4]),
        Err(InviteError::Damaged(_))
    ));
    assert_eq!(Invite::from_token("hello"), Err(InviteError::NotAToken));
    // Signed by a key that is not an admin: valid signature, invalid redemption.
    let rogue = TestAuthor::new(9, 1);
    let mut net = Net::new();
    let mut joiner = TestAuthor::new(5, 1);
    let r = joiner.statement(&Statement::Redeem {
        invite: invite(&rogue, 2),
    });
    net.statements.push(r.clone());
    let reg = net.registry();
    assert!(reg.invalid[&verified(r).hash].contains("not an admin"));
}

#[test]
fn two_admins_enrolling_concurrently_converge() {
    let mut net = Net::new();
    let mut second = TestAuthor::new(101, 1);
    net.state(enroll(second.id(), "092009", RegistryRole::Admin));
    second.learn(&mut net.admin);
    let (a, b) = (TestAuthor::new(1, 1), TestAuthor::new(2, 1));
    net.state(enroll(a.id(), "092009", RegistryRole::Comune));
    let by_second = second.statement(&enroll(b.id(), "092051", RegistryRole::Comune));
    net.statements.push(by_second);
    let reg = net.registry();
    assert!(reg.invalid.is_empty(), "{:?}", reg.invalid);
    assert!(reg.member(&a.id()).is_some() && reg.member(&b.id()).is_some());
}

#[test]
fn an_enrolled_admin_cannot_enroll_admins_nor_act_before_its_enrollment() {
    let mut net = Net::new();
    let mut second = TestAuthor::new(101, 1);
    // Signed before second learnt of its enrollment: not in its causal past.
    let early = second.statement(&enroll(
        TestAuthor::new(1, 1).id(),
        "092009",
        RegistryRole::Comune,
    ));
    net.state(enroll(second.id(), "092009", RegistryRole::Admin));
    second.learn(&mut net.admin);
    let admin_by_admin = second.statement(&enroll(
        TestAuthor::new(2, 1).id(),
        "092009",
        RegistryRole::Admin,
    ));
    net.statements
        .extend([early.clone(), admin_by_admin.clone()]);
    let reg = net.registry();
    assert!(reg.invalid[&verified(early).hash].contains("was not an admin"));
    assert!(reg.invalid[&verified(admin_by_admin).hash].contains("only an anchor"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// The derived registry depends on the set of statements, never on the
    /// order they were learnt in.
    #[test]
    fn derivation_ignores_arrival_order(seed in any::<u64>(), picks in proptest::collection::vec(0u8..6, 1..14)) {
        let mut net = Net::new();
        let mut keys: Vec<TestAuthor> = (0..4).map(|i| TestAuthor::new(10 + i, 1)).collect();
        for (n, pick) in picks.iter().enumerate() {
            let k = n % keys.len();
            let id = keys[k].id();
            match pick {
                0 | 1 => { net.state(enroll(id, "092009", RegistryRole::Comune)); }
                2 => { net.state(Statement::Revoke { node: id, cut: Cut::default() }); }
                3 => {
                    keys[k].learn(&mut net.admin);
                    let fresh = TestAuthor::new(50 + n as u8, 1).id();
                    let s = keys[k].statement(&Statement::Rotate { new: fresh, cut: Cut::default() });
                    net.statements.push(s);
                }
                4 => {
                    let inv = invite(&net.admin, (n % 2) as u8);
                    let s = keys[k].statement(&Statement::Redeem { invite: inv });
                    net.statements.push(s);
                }
                _ => { net.state(enroll(id, "092051", RegistryRole::Metro)); }
            }
        }
        let reference = net.registry();
        let mut shuffled = net.statements.clone();
        // A deterministic shuffle from the seed.
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let other = derive(&[net.admin.id()], &shuffled);
        prop_assert_eq!(&other.valid, &reference.valid);
        prop_assert_eq!(&other.members, &reference.members);
        prop_assert_eq!(&other.invalid, &reference.invalid);
    }
}

#[test]
fn judging_a_log_invalidates_post_cut_changes_and_what_builds_on_them() {
    let mut net = Net::new();
    let mut bad = TestAuthor::new(1, 1);
    let mut honest = TestAuthor::new(2, 1);
    net.state(enroll(bad.id(), "092009", RegistryRole::Comune));
    net.state(enroll(honest.id(), "092009", RegistryRole::Comune));
    let kept = bad.edit(comune_doc(), "title", "kept");
    net.state(Statement::Revoke {
        node: bad.id(),
        cut: cut_of(std::slice::from_ref(&kept)),
    });
    let late = bad.edit(comune_doc(), "title", "late");
    // An honest office merged the late change before learning of the revocation.
    honest.learn(&mut bad);
    let built_on = honest.edit(comune_doc(), "title", "on top");
    let independent = TestAuthor::new(2, 2).edit(comune_doc(), "cost", "1");
    let mut log: Vec<ChangeMeta> = net
        .statements
        .iter()
        .map(|e| ChangeMeta::of_verified(&verified(e.clone())))
        .collect();
    for e in [&kept, &late, &built_on, &independent] {
        log.push(ChangeMeta::of_stored(e).unwrap());
    }
    let verdict = judge(&[net.admin.id()].into_iter().collect(), &log);
    let hash = |e: &SignedChange| verified(e.clone()).hash;
    assert!(!verdict.invalid.contains_key(&hash(&kept)));
    assert!(verdict.invalid[&hash(&late)].contains("retired"));
    assert!(verdict.invalid[&hash(&built_on)].contains("depends on the invalid change"));
    assert!(!verdict.invalid.contains_key(&hash(&independent)));
}

/// A relay that alters, forges or replays envelopes: the node refuses the
/// altered ones outright, stores replays once, and never shows a forged one
/// (a valid signature by a key the registry does not know).
#[test]
fn a_hostile_relay_cannot_make_a_node_show_what_the_registry_does_not_authorise() {
    use crate::log::MemLog;
    use crate::sync::accept_entries;
    use crate::wire::LogEntry;
    let mut net = Net::new();
    let mut office = TestAuthor::new(1, 1);
    net.state(enroll(office.id(), "092009", RegistryRole::Comune));
    let honest = office.edit(comune_doc(), "title", "honest");
    let mut altered = office.edit(comune_doc(), "title", "second");
    altered.change[20] ^= 0x40;
    let forged = TestAuthor::new(66, 1).edit(comune_doc(), "title", "forged");
    let entries: Vec<LogEntry> = net
        .statements
        .iter()
        .cloned()
        .chain([honest.clone(), honest.clone(), forged.clone(), altered])
        .enumerate()
        .map(|(i, change)| LogEntry {
            seq: i as u64 + 1,
            change,
        })
        .collect();
    let mut log = MemLog::default();
    let accepted = accept_entries(&mut log, entries).unwrap();
    assert_eq!(
        accepted.refused.len(),
        1,
        "the altered envelope: {:?}",
        accepted.refused
    );
    assert_eq!(accepted.duplicates, 1, "the replay");
    let metas: Vec<ChangeMeta> = log
        .all()
        .map(|e| ChangeMeta::of_stored(&e.change).unwrap())
        .collect();
    let verdict = judge(&[net.admin.id()].into_iter().collect(), &metas);
    let hash = |e: &SignedChange| verified(e.clone()).hash;
    assert!(verdict.invalid[&hash(&forged)].contains("not an admitted member"));
    assert!(!verdict.invalid.contains_key(&hash(&honest)));
}

mod anchors;
