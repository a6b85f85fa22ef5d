//! Anchor rotation: anchors added and retired by statements, followed by a
//! verifier from the keys it pinned; admins' and anchors' own rotations;
//! concurrent retirements decided by the canonical order.

use super::*;

fn hash(env: &SignedChange) -> ChangeHash {
    verified(env.clone()).hash
}

/// A copy of `author` (same key, nonce and history) to try a statement on.
fn fork(author: &TestAuthor) -> TestAuthor {
    TestAuthor {
        key: author.key.clone(),
        nonce: author.nonce,
        doc: author.doc.clone(),
    }
}

/// The network founded by `net.admin` (pinned) with a second anchor added,
/// which has learnt everything so far.
fn with_second_anchor(net: &mut Net) -> (TestAuthor, SignedChange) {
    let mut second = TestAuthor::new(102, 1);
    let add = net.state(Statement::AddAnchor { node: second.id() });
    second.learn(&mut net.admin);
    (second, add)
}

#[test]
fn an_added_anchor_governs_and_a_verifier_pinned_with_the_old_one_follows() {
    let mut net = Net::new();
    let old = net.admin.id();
    let (mut new, _) = with_second_anchor(&mut net);
    // The new anchor enrolls an admin and a comune, then retires the old one
    // with a cut over everything of it the new anchor holds.
    let deputy = TestAuthor::new(103, 1);
    let office = TestAuthor::new(1, 1);
    let mut signed = vec![
        new.statement(&enroll(deputy.id(), "092009", RegistryRole::Admin)),
        new.statement(&enroll(office.id(), "092009", RegistryRole::Comune)),
    ];
    let retire = new.statement(&Statement::RetireAnchor {
        node: old,
        cut: cut_of(&net.statements),
    });
    signed.push(retire.clone());
    // The old key, having learnt its retirement, signs on: refused.
    net.admin.learn(&mut new);
    let late = net.admin.statement(&enroll(
        TestAuthor::new(2, 1).id(),
        "092051",
        RegistryRole::Comune,
    ));
    net.statements.extend(signed);
    net.statements.push(late.clone());
    // Pinned with the old anchor only.
    let reg = net.registry();
    assert_eq!(reg.invalid.len(), 1, "{:?}", reg.invalid);
    assert!(
        reg.invalid[&hash(&late)].contains("retired"),
        "{:?}",
        reg.invalid
    );
    assert_eq!(reg.anchors(), [new.id()].into_iter().collect());
    assert!(reg.is_anchor(&new.id()) && !reg.is_anchor(&old) && reg.was_anchor(&old));
    assert!(!reg.admits(&old));
    assert!(reg.admits(&office.id()) && reg.admits(&deputy.id()));
    assert!(reg.member(&TestAuthor::new(2, 1).id()).is_none());
    assert!(matches!(
        reg.members[&old].status,
        KeyStatus::Revoked { ref by, .. } if by == &vec![new.id()]
    ));
    // The genesis and the old anchor's statements inside the cut stay valid.
    assert_eq!(reg.network.as_deref(), Some("cagliari"));
    assert!(reg.valid.contains(&hash(&retire)));
}

#[test]
fn a_key_that_is_not_an_anchor_cannot_add_or_retire_anchors() {
    let mut net = Net::new();
    let mut deputy = TestAuthor::new(103, 1);
    net.state(enroll(deputy.id(), "092009", RegistryRole::Admin));
    deputy.learn(&mut net.admin);
    let rogue = TestAuthor::new(104, 1);
    let add = deputy.statement(&Statement::AddAnchor { node: rogue.id() });
    let retire = deputy.statement(&Statement::RetireAnchor {
        node: net.admin.id(),
        cut: Cut::default(),
    });
    // Nor may an anchor be revoked as if it were a member key.
    let (mut second, _) = with_second_anchor(&mut net);
    let revoke = second.statement(&Statement::Revoke {
        node: net.admin.id(),
        cut: Cut::default(),
    });
    net.statements
        .extend([add.clone(), retire.clone(), revoke.clone()]);
    let reg = net.registry();
    assert!(
        reg.invalid[&hash(&add)].contains("is not an anchor"),
        "{:?}",
        reg.invalid
    );
    assert!(reg.invalid[&hash(&retire)].contains("is not an anchor"));
    assert!(reg.invalid[&hash(&revoke)].contains("retired with retire_anchor"));
    assert!(!reg.is_anchor(&rogue.id()) && reg.member(&rogue.id()).is_none());
    assert!(reg.is_anchor(&net.admin.id()));
}

#[test]
fn the_last_active_anchor_cannot_be_retired() {
    let mut net = Net::new();
    let me = net.admin.id();
    let alone = net.state(Statement::RetireAnchor {
        node: me,
        cut: Cut::default(),
    });
    let reg = net.registry();
    let reason = &reg.invalid[&hash(&alone)];
    assert!(reason.contains("last active anchor"), "{reason}");
    assert!(reg.is_anchor(&me));
    // With a second anchor, the first may retire itself; the second then
    // cannot retire itself.
    let (mut second, _) = with_second_anchor(&mut net);
    net.admin.learn(&mut second);
    let itself = net.state(Statement::RetireAnchor {
        node: me,
        cut: cut_of(&net.statements),
    });
    second.learn(&mut net.admin);
    let last = second.statement(&Statement::RetireAnchor {
        node: second.id(),
        cut: Cut::default(),
    });
    net.statements.push(last.clone());
    let reg = net.registry();
    assert!(reg.valid.contains(&hash(&itself)), "{:?}", reg.invalid);
    assert!(reg.invalid[&hash(&last)].contains("last active anchor"));
    assert_eq!(reg.anchors(), [second.id()].into_iter().collect());
}

#[test]
fn two_anchors_retiring_each_other_concurrently_leave_one_on_every_verifier() {
    let mut net = Net::new();
    let (mut second, _) = with_second_anchor(&mut net);
    let by_first = net.state(Statement::RetireAnchor {
        node: second.id(),
        cut: Cut::default(),
    });
    let by_second = second.statement(&Statement::RetireAnchor {
        node: net.admin.id(),
        cut: cut_of(&net.statements[..2]),
    });
    net.statements.push(by_second.clone());
    // Both were signed on the same head: the smaller hash comes first in the
    // canonical order and is applied; the other is by a retired key.
    let (winner, winner_key, loser) = if hash(&by_first) < hash(&by_second) {
        (&by_first, net.admin.id(), &by_second)
    } else {
        (&by_second, second.id(), &by_first)
    };
    for order in [
        net.statements.clone(),
        net.statements.iter().rev().cloned().collect(),
    ] {
        let reg = derive(&[net.admin.id()], &order);
        assert!(reg.valid.contains(&hash(winner)), "{:?}", reg.invalid);
        assert!(
            reg.invalid[&hash(loser)].contains("retired"),
            "{:?}",
            reg.invalid
        );
        assert_eq!(reg.anchors(), [winner_key].into_iter().collect());
    }
}

/// A statement of the retired anchor concurrent with its retirement is
/// invalid even when the canonical order visits it first: the phase runs
/// again without it (the `vetoed` path), in whatever order it was learnt.
#[test]
fn a_retired_anchors_concurrent_statements_are_invalid_whatever_the_order() {
    let mut net = Net::new();
    let (mut second, _) = with_second_anchor(&mut net);
    let retire = second.statement(&Statement::RetireAnchor {
        node: net.admin.id(),
        cut: cut_of(&net.statements),
    });
    // Offline, the old anchor adds an anchor and enrolls a comune: pick the
    // candidates the canonical order puts before the retirement.
    let (mut rogue, mut office) = (None, None);
    for seed in 110u8..200 {
        let mut old = fork(&net.admin);
        let add = old.statement(&Statement::AddAnchor {
            node: TestAuthor::new(seed, 1).id(),
        });
        if rogue.is_none() && hash(&add) < hash(&retire) {
            rogue = Some((old, add, seed));
        }
    }
    let (mut old, add, seed) = rogue.expect("some candidate hashes below the retirement");
    for n in 1u8..100 {
        let mut o = fork(&old);
        let e = o.statement(&enroll(
            TestAuthor::new(n, 1).id(),
            "092009",
            RegistryRole::Comune,
        ));
        if office.is_none() && hash(&e) < hash(&retire) {
            office = Some((o, e, n));
        }
    }
    let (o, enrolled, n) = office.expect("some candidate hashes below the retirement");
    old = o;
    // The rogue anchor, trusting its addition, enrolls a key of its own.
    let mut rogue_key = TestAuthor::new(seed, 1);
    rogue_key.learn(&mut old);
    let by_rogue = rogue_key.statement(&enroll(
        TestAuthor::new(3, 3).id(),
        "092051",
        RegistryRole::Metro,
    ));
    net.statements.extend([
        retire.clone(),
        add.clone(),
        enrolled.clone(),
        by_rogue.clone(),
    ]);
    let all = net.statements.clone();
    for order in [all.clone(), all.iter().rev().cloned().collect()] {
        let reg = derive(&[net.admin.id()], &order);
        assert!(reg.valid.contains(&hash(&retire)), "{:?}", reg.invalid);
        assert!(
            reg.invalid[&hash(&add)].contains("outside whose cut"),
            "{:?}",
            reg.invalid
        );
        assert!(
            reg.invalid[&hash(&enrolled)].contains("retired"),
            "{:?}",
            reg.invalid
        );
        assert!(reg.invalid.contains_key(&hash(&by_rogue)));
        assert!(!reg.was_anchor(&TestAuthor::new(seed, 1).id()));
        assert!(reg.member(&TestAuthor::new(n, 1).id()).is_none());
        assert_eq!(reg.anchors(), [second.id()].into_iter().collect());
    }
}

#[test]
fn an_anchor_rotates_its_own_key_and_the_new_key_is_an_anchor() {
    let mut net = Net::new();
    let old = net.admin.id();
    let mut new = TestAuthor::new(105, 1);
    let rotate = net.state(Statement::Rotate {
        new: new.id(),
        cut: Cut::default(),
    });
    new.learn(&mut net.admin);
    let office = TestAuthor::new(1, 1);
    let by_new = new.statement(&enroll(office.id(), "092009", RegistryRole::Comune));
    let late = net.admin.statement(&Statement::AddRelay {
        relay: TestAuthor::new(9, 9).id(),
        addr: "127.0.0.1:1".into(),
    });
    net.statements.extend([by_new.clone(), late.clone()]);
    let reg = net.registry();
    assert!(reg.valid.contains(&hash(&rotate)) && reg.valid.contains(&hash(&by_new)));
    assert!(
        reg.invalid[&hash(&late)].contains("retired"),
        "{:?}",
        reg.invalid
    );
    assert_eq!(reg.anchors(), [new.id()].into_iter().collect());
    assert!(matches!(reg.members[&old].status, KeyStatus::Rotated { to, .. } if to == new.id()));
    assert!(reg.admits(&office.id()));
    // The old key's genesis stays valid: the rotation's cut holds it.
    assert_eq!(reg.network.as_deref(), Some("cagliari"));
}

#[test]
fn an_admin_rotates_its_key_but_not_out_of_a_concurrent_revocation() {
    let mut net = Net::new();
    let mut deputy = TestAuthor::new(103, 1);
    net.state(enroll(deputy.id(), "092009", RegistryRole::Admin));
    deputy.learn(&mut net.admin);
    let mut fresh = TestAuthor::new(106, 1);
    let rotate = deputy.statement(&Statement::Rotate {
        new: fresh.id(),
        cut: Cut::default(),
    });
    fresh.learn(&mut deputy);
    let by_fresh = fresh.statement(&enroll(
        TestAuthor::new(1, 1).id(),
        "092009",
        RegistryRole::Comune,
    ));
    let mut rotated = net.statements.clone();
    rotated.extend([rotate.clone(), by_fresh.clone()]);
    let reg = derive(&[net.admin.id()], &rotated);
    assert!(reg.invalid.is_empty(), "{:?}", reg.invalid);
    assert!(reg.admits(&fresh.id()) && !reg.admits(&deputy.id()));
    assert!(!reg.is_anchor(&fresh.id()));
    // Concurrently, the anchor revokes the deputy (having seen nothing of
    // the rotation): the rotation is outside the cut, in any order.
    net.state(Statement::Revoke {
        node: deputy.id(),
        cut: Cut::default(),
    });
    net.statements.extend([rotate.clone(), by_fresh.clone()]);
    for order in [
        net.statements.clone(),
        net.statements.iter().rev().cloned().collect(),
    ] {
        let reg = derive(&[net.admin.id()], &order);
        assert!(
            reg.invalid.contains_key(&hash(&rotate)),
            "{:?}",
            reg.invalid
        );
        assert!(reg.invalid.contains_key(&hash(&by_fresh)));
        assert!(reg.member(&fresh.id()).is_none());
    }
}

#[test]
fn an_enrolled_admin_made_an_anchor_keeps_its_earlier_statements() {
    let mut net = Net::new();
    let mut deputy = TestAuthor::new(103, 1);
    net.state(enroll(deputy.id(), "092009", RegistryRole::Admin));
    deputy.learn(&mut net.admin);
    let before = deputy.statement(&enroll(
        TestAuthor::new(1, 1).id(),
        "092009",
        RegistryRole::Comune,
    ));
    net.admin.learn(&mut deputy);
    net.state(Statement::AddAnchor { node: deputy.id() });
    deputy.learn(&mut net.admin);
    let after = deputy.statement(&enroll(
        TestAuthor::new(2, 1).id(),
        "092009",
        RegistryRole::Admin,
    ));
    net.statements.extend([before.clone(), after.clone()]);
    let reg = net.registry();
    assert!(reg.invalid.is_empty(), "{:?}", reg.invalid);
    assert!(reg.is_anchor(&deputy.id()));
    assert!(reg.admits(&TestAuthor::new(2, 1).id()));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// With anchors added, retired and rotated among the statements, the
    /// derived registry still depends on the set alone.
    #[test]
    fn anchor_changes_ignore_arrival_order(seed in any::<u64>(), picks in proptest::collection::vec(0u8..7, 1..12)) {
        let mut net = Net::new();
        let pinned = net.admin.id();
        let mut anchors: Vec<TestAuthor> = vec![std::mem::replace(&mut net.admin, TestAuthor::new(0, 0))];
        let mut fresh_seed = 120u8;
        for (n, pick) in picks.iter().enumerate() {
            let k = n % anchors.len();
            // Each anchor signs on what it has learnt (some of it concurrent).
            let mut a = std::mem::replace(&mut anchors[k], TestAuthor::new(0, 0));
            if n % 3 != 0 {
                for other in anchors.iter_mut() {
                    a.learn(other);
                }
            }
            fresh_seed += 1;
            let fresh = TestAuthor::new(fresh_seed, 1);
            let target = anchors[(k + 1) % anchors.len()].id();
            // A cut entry naming no real actor keeps each statement's text
            // unique (the test author's copy skips a write of a value it holds).
            let unique = Cut(vec![CutEntry { doc: DocId::Plan, actor: [n as u8; 16], max_seq: 0 }]);
            let s = match pick {
                0 | 1 => Statement::AddAnchor { node: fresh.id() },
                2 => Statement::RetireAnchor { node: if anchors.len() > 1 { target } else { a.id() }, cut: unique },
                3 => Statement::Rotate { new: fresh.id(), cut: Cut::default() },
                4 => enroll(fresh.id(), "092009", RegistryRole::Admin),
                5 => enroll(fresh.id(), "092009", RegistryRole::Comune),
                _ => Statement::RetireAnchor { node: a.id(), cut: unique },
            };
            net.statements.push(a.statement(&s));
            let new_anchor = matches!(pick, 0 | 1 | 3);
            anchors[k] = a;
            if new_anchor {
                let mut f = fresh;
                for other in anchors.iter_mut() {
                    f.learn(other);
                }
                anchors.push(f);
            }
        }
        let reference = derive(&[pinned], &net.statements);
        let mut shuffled = net.statements.clone();
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let other = derive(&[pinned], &shuffled);
        prop_assert_eq!(&other.valid, &reference.valid);
        prop_assert_eq!(&other.members, &reference.members);
        prop_assert_eq!(&other.invalid, &reference.invalid);
        prop_assert_eq!(other.anchors(), reference.anchors());
        prop_assert!(!reference.anchors().is_empty(), "never left without an anchor");
    }
}
