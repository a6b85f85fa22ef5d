//! The query store kept incrementally equals the one rebuilt from the log,
//! after random edits on two replicas of one comune, exchanges of their
//! changes in both directions (concurrent edits of the same fields make
//! conflicts), deletions and snapshots; and the report read from it equals
//! the report built from the materialised documents. `governed` does the
//! same under a registry with a revocation among the operations.

use super::*;
use crate::replica::Replica;
use accordo_domain::indicator::{self, Observation};
use accordo_domain::model::{Date, FundingLine, FundingSource};
use accordo_domain::portfolio;
use accordo_domain::report;
use accordo_protocol::envelope::SignedChange;
use accordo_protocol::log::{admit, Admitted, LogStore};
use accordo_protocol::wire::Scope;
use automerge::transaction::Transactable;
use proptest::prelude::*;
use std::path::Path;

fn replica(dir: &Path) -> Replica {
    let mut r = crate::replica::test_replica(dir);
    // As `accordo run` does: pulls keep the documents they derived.
    r.doc_cache.keep_documents();
    r
}

#[derive(Debug, Clone)]
enum Op {
    Add(bool, u8),
    SetPaid(bool, u8, u32),
    SetTitle(bool, u8, u8),
    Fund(bool, u8, u8, u32),
    Archive(bool, u8),
    Publish(bool, u8),
    Delete(bool, u8),
    Observe(bool, u8, u8, i16),
    /// A milestone (one of three) due on one of six days around the
    /// report's `as_of`, achieved or not.
    Milestone(bool, u8, u8, bool),
    /// The state set by hand (one of the list), or cleared.
    State(bool, u8, u8),
    /// Copies every change of one replica into the other (`true`: A to B).
    Sync(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (any::<bool>(), any::<u8>()).prop_map(|(w, s)| Op::Add(w, s)),
        3 => (any::<bool>(), any::<u8>(), 0u32..1_000_000).prop_map(|(w, p, c)| Op::SetPaid(w, p, c)),
        2 => (any::<bool>(), any::<u8>(), any::<u8>()).prop_map(|(w, p, s)| Op::SetTitle(w, p, s)),
        2 => (any::<bool>(), any::<u8>(), 0u8..3, 0u32..1_000_000).prop_map(|(w, p, l, c)| Op::Fund(w, p, l, c)),
        1 => (any::<bool>(), any::<u8>()).prop_map(|(w, p)| Op::Archive(w, p)),
        1 => (any::<bool>(), any::<u8>()).prop_map(|(w, p)| Op::Publish(w, p)),
        1 => (any::<bool>(), any::<u8>()).prop_map(|(w, p)| Op::Delete(w, p)),
        2 => (any::<bool>(), 0u8..3, 0u8..3, any::<i16>()).prop_map(|(w, c, p, v)| Op::Observe(w, c, p, v)),
        2 => (any::<bool>(), any::<u8>(), any::<u8>(), any::<bool>()).prop_map(|(w, p, m, a)| Op::Milestone(w, p, m, a)),
        1 => (any::<bool>(), any::<u8>(), any::<u8>()).prop_map(|(w, p, s)| Op::State(w, p, s)),
        3 => any::<bool>().prop_map(Op::Sync),
    ]
}

/// The `n`-th project of `r`'s own document (by id), if it has any.
fn nth_project(r: &mut Replica, n: u8) -> Option<String> {
    let own = r.own_doc();
    let doc = r.materialise(&own).unwrap();
    let mut ids: Vec<String> = portfolio::list(&doc).into_iter().map(|p| p.id).collect();
    ids.sort();
    (!ids.is_empty()).then(|| ids[n as usize % ids.len()].clone())
}

fn edit_project(r: &mut Replica, n: u8, f: impl FnOnce(&mut accordo_domain::model::Project)) {
    let Some(id) = nth_project(r, n) else { return };
    let own = r.own_doc();
    r.edit(&own, 1_000, |doc| {
        let old = portfolio::get(doc, &id)?;
        let mut new = old.clone();
        f(&mut new);
        portfolio::save(doc, Some(&old), &new)?;
        Ok(())
    })
    .unwrap();
}

fn apply(a: &mut Replica, b: &mut Replica, op: &Op, counter: &mut u32) {
    match op {
        Op::Sync(true) => copy_changes(a, b),
        Op::Sync(false) => copy_changes(b, a),
        other if op_who(other) => edit(a, other, counter),
        other => edit(b, other, counter),
    }
}

fn op_who(op: &Op) -> bool {
    match op {
        Op::Add(w, _)
        | Op::SetPaid(w, ..)
        | Op::SetTitle(w, ..)
        | Op::Fund(w, ..)
        | Op::Archive(w, _)
        | Op::Publish(w, _)
        | Op::Delete(w, _)
        | Op::Observe(w, ..)
        | Op::Milestone(w, ..)
        | Op::State(w, ..) => *w,
        Op::Sync(_) => true,
    }
}

fn edit(r: &mut Replica, op: &Op, counter: &mut u32) {
    let own = r.own_doc();
    match op {
        Op::Add(_, seed) => {
            *counter += 1;
            let id = format!("p{counter:04}");
            let cup = format!("B{:02}D{:011}", seed % 100, counter);
            r.edit(&own, 1_000, |doc| {
                portfolio::add_project(doc, &id, &cup.parse().unwrap(), "Progetto", None, 1_000)?;
                Ok(())
            })
            .unwrap();
        }
        Op::SetPaid(_, n, cents) => edit_project(r, *n, |p| p.paid_cents = Some(*cents as i64)),
        Op::SetTitle(_, n, s) => edit_project(r, *n, |p| p.title = format!("Titolo {s}")),
        Op::Fund(_, n, line, cents) => edit_project(r, *n, |p| {
            // Lines 0 and 1 share a source: a project counts once per source.
            let sources = [
                FundingSource::Pnrr,
                FundingSource::Pnrr,
                FundingSource::Fesr,
            ];
            p.funding.insert(
                format!("l{line}"),
                FundingLine {
                    source: sources[*line as usize % 3],
                    programme: None,
                    amount_cents: *cents as i64,
                },
            );
        }),
        Op::Archive(_, n) => edit_project(r, *n, |p| p.archived = !p.archived),
        Op::Publish(_, n) => edit_project(r, *n, |p| p.published = !p.published),
        Op::Delete(_, n) => {
            let Some(id) = nth_project(r, *n) else { return };
            r.edit(&own, 1_000, |doc| {
                doc.delete(automerge::ROOT, format!("project/{id}"))
                    .map_err(|e| ReplicaError::Edit(e.to_string()))
            })
            .unwrap();
        }
        Op::Observe(_, code, period, value) => {
            r.edit(&own, 1_000, |doc| {
                indicator::observe(
                    doc,
                    &format!("IND{code}"),
                    &format!("202{period}"),
                    &Observation {
                        value: f64::from(*value) / 4.0,
                        flag: None,
                    },
                )
                .map_err(|e| ReplicaError::Edit(e.to_string()))
            })
            .unwrap();
        }
        Op::Milestone(_, n, m, achieved) => edit_project(r, *n, |p| {
            let due = Date::new(2026, 4 + m % 6, 30).unwrap();
            p.milestones.insert(
                format!("m{}", m % 3),
                accordo_domain::model::Milestone {
                    code: format!("T{m}"),
                    description: "Collaudo".into(),
                    unit: None,
                    baseline: None,
                    target: None,
                    due,
                    achieved_date: achieved.then_some(due),
                    achieved_value: None,
                },
            );
        }),
        Op::State(_, n, s) => edit_project(r, *n, |p| {
            use accordo_domain::model::ProceduralState;
            let all = ProceduralState::ALL;
            p.state_override = all.get(*s as usize % (all.len() + 1)).copied();
        }),
        Op::Sync(_) => unreachable!("handled by apply"),
    }
}

/// Admits into `to` every change of `from` it lacks, as a pull does: in one
/// transaction with the views' update.
fn copy_changes(from: &mut Replica, to: &mut Replica) {
    let entries: Vec<SignedChange> = from
        .store
        .read(|tx| {
            let log = tx.log();
            let head = log.head_seq()?;
            log.entries(&Scope::All, 0, head, usize::MAX)
        })
        .unwrap()
        .into_iter()
        .map(|e| e.change)
        .collect();
    let anchors = to.settings.anchors.clone();
    // As `accordo run` stores a response: with the documents it keeps loaded.
    let cache = &mut to.doc_cache;
    to.store
        .write(|tx| {
            let mut docs = BTreeSet::new();
            for env in entries {
                let verified = env.verify().unwrap();
                if let Ok(Admitted::Stored(_)) = admit(&mut tx.log(), &verified)? {
                    docs.insert(verified.envelope.doc.clone());
                }
            }
            after_pull_cached(tx, &anchors, &docs, cache)
        })
        .unwrap();
}

/// Every document `r` keeps loaded that it would hand out now equals the
/// document loaded from the store: same heads, projects and indicator data.
fn cache_agrees(r: &mut Replica) {
    let held = r.doc_cache.held();
    for (doc, from) in held {
        let now = r
            .store
            .read(|tx| Ok::<_, ReplicaError>(view_state(tx, &doc)?))
            .unwrap()
            .map(|s| crate::doc_cache::DerivedFrom {
                view_seq: s.view_seq,
                heads: s.heads,
                left_out: s.left_out,
            });
        if now.as_ref() != Some(&from) {
            continue; // it would be dropped, not handed out
        }
        let mut cached = r.doc_cache.get(&doc).unwrap().0.doc.clone();
        let mut stored = r.materialise(&doc).unwrap();
        assert_eq!(heads_text(&mut cached), heads_text(&mut stored), "{doc}");
        assert_eq!(portfolio::list(&cached), portfolio::list(&stored), "{doc}");
        assert_eq!(indicator::data(&cached), indicator::data(&stored), "{doc}");
    }
}

fn check(r: &mut Replica) {
    cache_agrees(r);
    let as_of = Date::parse_any("as_of", "2026-06-30").unwrap();
    let from_views = report::build(&r.query(|tx| report_input(tx, as_of, None)).unwrap());
    let mut docs = r.materialise_all().unwrap();
    let from_docs = report::build(&report::input(as_of, None, &mut docs));
    assert_eq!(
        from_views, from_docs,
        "report from the views == from the documents (heads and digest included)"
    );
    // What `accordo report` builds: sums from the summary tables, no record.
    let fast = report::build_from(r.query(|tx| report_facts(tx, as_of, None)).unwrap());
    assert_eq!(
        fast, from_docs,
        "the report's facts == those of the documents"
    );
    assert_eq!(
        serde_json::to_string_pretty(&fast).unwrap(),
        serde_json::to_string_pretty(&from_docs).unwrap(),
        "the same bytes"
    );
    let json = serde_json::to_value(&fast).unwrap();
    assert_eq!(fast.computed_from.digest, report::digest_of_json(&json));
    assert_eq!(
        rebuilt_then_rolled_back(r).differing,
        0,
        "incremental views == rebuilt views"
    );
}

/// Why a probing transaction ended: always rolled back, carrying what the
/// rebuild found (so the views under test stay as the increments left them).
enum Probe {
    Rebuilt(Rebuilt),
    Failed(ReplicaError),
}

impl From<StoreError> for Probe {
    fn from(e: StoreError) -> Self {
        Probe::Failed(e.into())
    }
}

/// What `rebuild` finds, without keeping its result: the transaction is
/// rolled back, so the incremental views (and snapshots) carry on.
fn rebuilt_then_rolled_back(r: &mut Replica) -> Rebuilt {
    let anchors = r.settings.anchors.clone();
    let probe = r.store.write(|tx| match rebuild(tx, &anchors) {
        Ok(rebuilt) => Err::<(), _>(Probe::Rebuilt(rebuilt)),
        Err(e) => Err(Probe::Failed(e)),
    });
    match probe {
        Err(Probe::Rebuilt(rebuilt)) => rebuilt,
        Err(Probe::Failed(e)) => panic!("rebuilding the views failed: {e}"),
        Ok(()) => unreachable!("the probe always rolls back"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn incremental_views_equal_views_rebuilt_from_the_log(ops in proptest::collection::vec(op(), 1..60)) {
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (mut a, mut b) = (replica(da.path()), replica(db.path()));
        let mut counter = 0;
        for op in &ops {
            apply(&mut a, &mut b, op, &mut counter);
        }
        check(&mut a);
        check(&mut b);
        // After a full exchange both hold the same views.
        copy_changes(&mut a, &mut b);
        copy_changes(&mut b, &mut a);
        let dump_a = a.store.read(rows::dump).unwrap();
        let dump_b = b.store.read(rows::dump).unwrap();
        prop_assert_eq!(dump_a, dump_b);
    }
}

/// A document kept loaded is used for the next pull when nothing else
/// touched it, and dropped (the document loaded again) after a local edit
/// or a rolled-back pull; the views stay those of a rebuild throughout.
#[test]
fn a_kept_document_is_used_only_while_it_is_the_one_the_views_came_from() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (mut a, mut b) = (replica(da.path()), replica(db.path()));
    let mut counter = 0;
    let hits = |r: &Replica| r.doc_cache.stats().2;
    edit(&mut a, &Op::Add(true, 1), &mut counter);
    copy_changes(&mut a, &mut b);
    assert_eq!(hits(&b), 0, "nothing kept yet");
    edit(&mut a, &Op::SetPaid(true, 0, 7), &mut counter);
    copy_changes(&mut a, &mut b);
    assert_eq!(hits(&b), 1, "the document kept by the last pull");
    check(&mut b);
    // A local edit on b edits the kept document and keeps it edited, so
    // the next pull uses it too.
    edit(&mut b, &Op::SetTitle(false, 0, 3), &mut counter);
    assert_eq!(hits(&b), 2, "the local edit used the kept document");
    check(&mut b);
    edit(&mut a, &Op::SetPaid(true, 0, 8), &mut counter);
    copy_changes(&mut a, &mut b);
    assert_eq!(hits(&b), 3, "and the pull after it");
    check(&mut b);
    // An edit by another process on b's directory: the kept document is
    // no longer the views' one, and is loaded again for b's next edit.
    let mut other = Replica::open(db.path()).unwrap();
    edit(&mut other, &Op::SetPaid(false, 0, 4), &mut counter);
    drop(other);
    let misses = b.doc_cache.stats().3;
    edit(&mut b, &Op::SetTitle(false, 0, 5), &mut counter);
    assert_eq!((hits(&b), b.doc_cache.stats().3), (3, misses + 1));
    check(&mut b);
    let own = b.own_doc();
    let doc = b.materialise(&own).unwrap();
    let id = nth_project(&mut b, 0).unwrap();
    let p = portfolio::get(&doc, &id).unwrap();
    assert_eq!(
        (p.paid_cents, p.title.as_str()),
        (Some(4), "Titolo 5"),
        "the other process's edit is kept"
    );
    // A refused edit puts the kept document back untouched.
    use automerge::ReadDoc;
    let refused = b.edit(&own, 1_000, |doc| {
        doc.put(automerge::ROOT, "stray", 1)
            .map_err(|e| ReplicaError::Edit(e.to_string()))?;
        Err::<(), _>(ReplicaError::Edit("refused".into()))
    });
    assert!(refused.is_err());
    edit(&mut b, &Op::SetTitle(false, 0, 6), &mut counter);
    assert_eq!(hits(&b), 5, "the refused edit left the document kept");
    let doc = b.materialise(&own).unwrap();
    assert!(doc.get(automerge::ROOT, "stray").unwrap().is_none());
    check(&mut b);
    // A pull that rolls back after the cache kept its document.
    edit(&mut a, &Op::SetPaid(true, 0, 9), &mut counter);
    let entries: Vec<SignedChange> = a
        .store
        .read(|tx| {
            let log = tx.log();
            log.entries(&Scope::All, 0, log.head_seq()?, usize::MAX)
        })
        .unwrap()
        .into_iter()
        .map(|e| e.change)
        .collect();
    let cache = &mut b.doc_cache;
    let rolled_back: Result<(), ReplicaError> = b.store.write(|tx| {
        let mut docs = BTreeSet::new();
        for env in entries {
            let verified = env.verify().unwrap();
            if let Ok(Admitted::Stored(_)) = admit(&mut tx.log(), &verified)? {
                docs.insert(verified.envelope.doc.clone());
            }
        }
        after_pull_cached(tx, &[], &docs, cache)?;
        Err(ReplicaError::Edit("roll back".into()))
    });
    assert!(rolled_back.is_err());
    assert_eq!(
        b.doc_cache.stats().0,
        1,
        "the rolled-back pull's document is kept"
    );
    let misses = b.doc_cache.stats().3;
    copy_changes(&mut a, &mut b);
    assert_eq!(b.doc_cache.stats().3, misses + 1, "and not used");
    check(&mut b);
    edit(&mut a, &Op::SetPaid(true, 0, 10), &mut counter);
    copy_changes(&mut a, &mut b);
    // (The rolled-back pull itself used the document b's last edit kept.)
    assert_eq!(hits(&b), 7, "then the pulls use it again");
    check(&mut b);
}

#[test]
fn snapshots_are_taken_and_used_and_a_stale_one_is_ignored() {
    let d = tempfile::tempdir().unwrap();
    let mut r = replica(d.path());
    let mut counter = 0;
    for i in 0..(SNAPSHOT_EVERY + 3) {
        edit(&mut r, &Op::Add(true, i as u8), &mut counter);
    }
    let own = r.own_doc();
    let loaded = r
        .store
        .read(|tx| snapshot::load(tx, &own, &HashSet::new()))
        .unwrap();
    assert!(loaded.from_snapshot, "a snapshot was saved and used");
    assert!(
        loaded.tail_changes < SNAPSHOT_EVERY,
        "only the tail is applied"
    );
    assert_eq!(portfolio::list(&loaded.doc).len(), SNAPSHOT_EVERY + 3);
    // A verdict that leaves out a change the snapshot holds: the snapshot is
    // stale and the document is rebuilt from the log without that change.
    let first = r
        .store
        .read(|tx| tx.log().doc_changes(&own))
        .unwrap()
        .remove(0);
    let hash = first.verify().unwrap().hash;
    let invalid: HashSet<ChangeHash> = [hash].into_iter().collect();
    let loaded = r
        .store
        .read(|tx| snapshot::load(tx, &own, &invalid))
        .unwrap();
    assert!(!loaded.from_snapshot);
    assert!(portfolio::list(&loaded.doc).len() < SNAPSHOT_EVERY + 3);
}

const SNAPSHOT_EVERY: usize = snapshot::SNAPSHOT_AFTER_CHANGES;

mod governed;

/// The publication state is a column of the query store, and a store whose
/// views were derived before the column existed (what migration 9 leaves:
/// the column at its default, every document marked as covering nothing)
/// gets the right value again when it is next opened.
#[test]
fn publication_is_a_column_and_a_migrated_store_derives_it_again() {
    let d = tempfile::tempdir().unwrap();
    let mut r = replica(d.path());
    let mut counter = 0;
    edit(&mut r, &Op::Add(true, 1), &mut counter);
    edit(&mut r, &Op::Add(true, 2), &mut counter);
    let id = nth_project(&mut r, 0).unwrap();
    let target = crate::ops::project::Target {
        cup: None,
        id: Some(id.clone()),
    };
    let author = crate::ops::Author::default();
    let (p, changed) = crate::ops::project::publish(&mut r, &target, true, &author).unwrap();
    assert!(p.published && changed);
    let (_, again) = crate::ops::project::publish(&mut r, &target, true, &author).unwrap();
    assert!(!again, "publishing a published project writes nothing");
    let published = |r: &mut Replica| -> Vec<(String, bool)> {
        r.query(|tx| {
            let mut stmt = tx
                .sql()
                .prepare("SELECT id, published FROM view_projects ORDER BY id")
                .unwrap();
            let rows = stmt
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .unwrap();
            Ok(rows.map(Result::unwrap).collect())
        })
        .unwrap()
    };
    let want = published(&mut r);
    assert_eq!(want.iter().filter(|(_, p)| *p).count(), 1);
    assert!(want.contains(&(id, true)));
    r.store
        .write(|tx| {
            tx.sql()
                .execute_batch(
                    "UPDATE view_projects SET published = 0; UPDATE doc_state SET view_seq = 0;",
                )
                .map_err(StoreError::from)?;
            Ok::<_, ReplicaError>(())
        })
        .unwrap();
    drop(r);
    let mut r = Replica::open(d.path()).unwrap();
    assert_eq!(published(&mut r), want);
    assert_eq!(rebuilt_then_rolled_back(&mut r).differing, 0);
}
