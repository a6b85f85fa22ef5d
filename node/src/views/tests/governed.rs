//! The property of `views::tests` on a governed network: an admin's
//! registry enrolls both writers, and at a random point of the random
//! operations the admin revokes one of them with a cut drawn from what it
//! has learnt so far. The revocation then travels (to one replica, then
//! between them) while the revoked key may still be editing, so the verdict
//! on changes the views already derived changes. After every step the
//! incremental views equal the rebuilt ones, and the report from the views
//! equals the one from the documents; at the end every report made along
//! the way still verifies at its heads. Two fixed cases: a writer whose
//! change a revocation invalidated keeps editing, and an old report verifies
//! after a revocation, counting the changes it invalidated.

use super::*;
use crate::admin;
use crate::report_verify::{verify_json, Outcome};
use accordo_protocol::registry::RegistryRole;
use proptest::test_runner::{Config, TestRunner};
use std::sync::atomic::{AtomicUsize, Ordering};

/// One step of the schedule: an operation of the ungoverned test, or the
/// admin's log copied into one replica (`true`: A), as a pull would.
#[derive(Debug, Clone)]
enum Step {
    Op(Op),
    Registry(bool),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => op().prop_map(Step::Op),
        1 => any::<bool>().prop_map(Step::Registry),
    ]
}

/// The admin and two writers of comune 092009 it enrolled, each holding
/// the registry.
struct Network {
    admin: Replica,
    a: Replica,
    b: Replica,
    _dirs: [tempfile::TempDir; 3],
}

fn network() -> Network {
    let dirs = [
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    ];
    let relay = crate::replica::test_relay();
    let mut admin = admin::init(dirs[0].path(), relay, "test".into(), 1_000).unwrap();
    let anchors = vec![admin.id];
    let mut a = crate::replica::test_replica_governed(dirs[1].path(), anchors.clone());
    let mut b = crate::replica::test_replica_governed(dirs[2].path(), anchors);
    for id in [a.id, b.id] {
        let comune = "092009".parse().unwrap();
        admin::enroll(&mut admin, id, comune, RegistryRole::Comune, 1_000).unwrap();
    }
    copy_changes(&mut admin, &mut a);
    copy_changes(&mut admin, &mut b);
    Network {
        admin,
        a,
        b,
        _dirs: dirs,
    }
}

/// The admin learns every change `source` holds, then revokes `revoked`
/// with the cut of what it holds of that key.
fn revoke(admin: &mut Replica, source: &mut Replica, revoked: NodeId) {
    copy_changes(source, admin);
    admin::revoke(admin, revoked, 2_000).unwrap();
}

/// The own document's view state: the log position the views cover and
/// the changes they leave out.
fn own_state(r: &mut Replica) -> (u64, BTreeSet<ChangeHash>) {
    let own = r.own_doc();
    let state = r.store.read(|tx| view_state(tx, &own)).unwrap();
    state.map_or((0, BTreeSet::new()), |s| (s.view_seq, s.left_out))
}

/// Whether a change the views had already derived (at or before the
/// position `before` covered) is now left out: the verdict on it changed.
fn derived_then_left_out(r: &mut Replica, before: &(u64, BTreeSet<ChangeHash>)) -> bool {
    let (_, now) = own_state(r);
    let own = r.own_doc();
    now.difference(&before.1).any(|h| {
        let seq = r
            .store
            .read(|tx| tx.log().position(&own, h))
            .unwrap()
            .expect("a left-out change is in the log");
        seq <= before.0
    })
}

/// Every view row but `doc_state`'s (whose log positions differ between
/// replicas that received the same changes in another order), and each
/// document's heads.
fn views_but_log_positions(r: &mut Replica) -> (BTreeSet<String>, Vec<(DocId, Vec<String>)>) {
    let rows = r.store.read(rows::dump).unwrap();
    let rows = rows
        .into_iter()
        .filter(|row| !row.starts_with("doc_state:"))
        .collect();
    (rows, r.store.read(doc_heads).unwrap())
}

/// The JSON report `r` makes now.
fn report_now(r: &mut Replica) -> serde_json::Value {
    let as_of = Date::parse_any("as_of", "2026-06-30").unwrap();
    // As `accordo report` makes it, from the query store's facts.
    let facts = r.query(|tx| report_facts(tx, as_of, None)).unwrap();
    serde_json::to_value(report::build_from(facts)).unwrap()
}

/// Runs one schedule; returns how many times a revocation reached a
/// replica whose views had derived changes it invalidates.
fn run(steps: &[Step], revoke_at: usize, revoked_is_a: bool, admin_learns_from_a: bool) -> usize {
    let mut n = network();
    let mut counter = 0;
    let mut invalidated = 0;
    let mut reports = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        if i == revoke_at % steps.len() {
            let target = if revoked_is_a { n.a.id } else { n.b.id };
            let source = if admin_learns_from_a {
                &mut n.a
            } else {
                &mut n.b
            };
            revoke(&mut n.admin, source, target);
        }
        let before = (own_state(&mut n.a), own_state(&mut n.b));
        match step {
            Step::Op(op) => apply(&mut n.a, &mut n.b, op, &mut counter),
            Step::Registry(true) => copy_changes(&mut n.admin, &mut n.a),
            Step::Registry(false) => copy_changes(&mut n.admin, &mut n.b),
        }
        invalidated += usize::from(derived_then_left_out(&mut n.a, &before.0));
        invalidated += usize::from(derived_then_left_out(&mut n.b, &before.1));
        check(&mut n.a);
        check(&mut n.b);
        reports.push(report_now(&mut n.a));
    }
    // The revocation reaches both, and both exchange everything.
    copy_changes(&mut n.admin, &mut n.a);
    copy_changes(&mut n.admin, &mut n.b);
    copy_changes(&mut n.a, &mut n.b);
    copy_changes(&mut n.b, &mut n.a);
    check(&mut n.a);
    check(&mut n.b);
    assert_eq!(
        views_but_log_positions(&mut n.a),
        views_but_log_positions(&mut n.b),
        "after a full exchange both hold the same views"
    );
    for (i, r) in reports.iter().enumerate() {
        let outcome = verify_json(&mut n.a, Path::new("report.json"), r).unwrap();
        assert!(
            matches!(outcome, Outcome::Verified { .. }),
            "the report of step {i} verifies at its heads after the revocation: {outcome:?}"
        );
    }
    invalidated
}

#[test]
fn incremental_views_equal_rebuilt_under_a_registry_with_a_revocation() {
    let mut runner = TestRunner::new(Config {
        cases: 12,
        ..Config::default()
    });
    let invalidated = AtomicUsize::new(0);
    let strategy = (
        proptest::collection::vec(step(), 1..40),
        any::<usize>(),
        any::<bool>(),
        any::<bool>(),
    );
    runner
        .run(&strategy, |(steps, at, revoked_is_a, learns_from_a)| {
            let n = run(&steps, at, revoked_is_a, learns_from_a);
            invalidated.fetch_add(n, Ordering::Relaxed);
            Ok(())
        })
        .unwrap();
    assert!(
        invalidated.load(Ordering::Relaxed) > 0,
        "some schedule revoked changes the views had already derived"
    );
}

/// A writer whose change another's revocation invalidated (it built on a
/// change past the revoked key's cut) goes on editing: its next change
/// takes a fresh actor instead of reusing the left-out change's sequence
/// number (the log would refuse that as an equivocation), and is shown.
#[test]
fn a_writer_whose_change_a_revocation_invalidated_keeps_editing() {
    let mut n = network();
    let mut counter = 0;
    edit(&mut n.a, &Op::Add(true, 1), &mut counter);
    copy_changes(&mut n.a, &mut n.b);
    edit(&mut n.b, &Op::SetTitle(false, 0, 7), &mut counter);
    // The admin has seen nothing of A: the cut keeps none of its changes.
    let a_id = n.a.id;
    admin::revoke(&mut n.admin, a_id, 2_000).unwrap();
    copy_changes(&mut n.admin, &mut n.b);
    assert_eq!(
        nth_project(&mut n.b, 0),
        None,
        "A's project and B's edit of it are left out"
    );
    edit(&mut n.b, &Op::Add(false, 2), &mut counter);
    assert_eq!(nth_project(&mut n.b, 0).as_deref(), Some("p0002"));
    check(&mut n.b);
    let projects = n.b.query(|tx| projects(tx, None, true)).unwrap();
    assert_eq!(projects.len(), 1, "the views show B's new project only");
}

/// A report made before a revocation verifies afterwards (it is recomputed
/// at its heads from the log), and the outcome counts the changes under
/// those heads the registry now rules invalid.
#[test]
fn a_report_verifies_after_a_revocation_and_counts_what_it_invalidated() {
    let mut n = network();
    let mut counter = 0;
    edit(&mut n.a, &Op::Add(true, 1), &mut counter);
    edit(&mut n.a, &Op::SetPaid(true, 0, 500), &mut counter);
    let before = report_now(&mut n.a);
    assert_eq!(before["totals"]["paid_cents"], 500);
    let a_id = n.a.id;
    admin::revoke(&mut n.admin, a_id, 2_000).unwrap();
    copy_changes(&mut n.admin, &mut n.a);
    let after = report_now(&mut n.a);
    assert_eq!(
        after["totals"]["projects"], 0,
        "A's changes are left out now"
    );
    let outcome = verify_json(&mut n.a, Path::new("before.json"), &before).unwrap();
    assert_eq!(
        outcome,
        Outcome::Verified {
            documents: 2,
            digest: before["computed_from"]["digest"]
                .as_str()
                .unwrap()
                .to_owned(),
            now_invalid: 2,
        },
        "both of A's changes are under the old heads and now invalid"
    );
    let mut twice = before.clone();
    let first = twice["computed_from"]["documents"][0].clone();
    twice["computed_from"]["documents"]
        .as_array_mut()
        .unwrap()
        .push(first);
    let e = verify_json(&mut n.a, Path::new("twice.json"), &twice).unwrap_err();
    assert!(e.to_string().contains("listed twice"), "{e}");
    let outcome = verify_json(&mut n.a, Path::new("after.json"), &after).unwrap();
    assert!(
        matches!(outcome, Outcome::Verified { now_invalid: 0, .. }),
        "{outcome:?}"
    );
}
