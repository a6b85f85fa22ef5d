//! Fuzz target: the log rules under any history and any arrival order.
//!
//! Three authors edit one comune document, learn each other's changes,
//! restart (fresh nonce, fresh actor) and are rolled back to an earlier copy
//! of themselves *with the same nonce* (the equivocation the actor binding is
//! meant to make impossible for honest nodes, so a log must refuse it). The
//! changes they make are real signed envelopes, offered to a `MemLog` in an
//! order the fuzzer picks. After every offer the outcome must agree with the
//! log; at the end the log must be causally closed, deduplicated and hold
//! one change per (actor, seq), and offering everything again until nothing
//! moves must store every change except equivocations and what builds on
//! them.
#![no_main]
use accordo_fuzz::{comune_doc, Author};
use accordo_protocol::envelope::{ChangeHash, VerifiedChange};
use accordo_protocol::log::{admit, Admitted, LogStore, MemLog, RejectReason};
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::collections::{HashMap, HashSet};

const AUTHORS: usize = 3;
/// Keeps one input's work small (each op may sign a change).
const MAX_OPS: usize = 48;

#[derive(Arbitrary, Debug)]
enum Op {
    Edit { author: u8, field: u8, value: u8 },
    Learn { author: u8, from: u8 },
    Restart { author: u8 },
    Snapshot { author: u8 },
    Rollback { author: u8 },
    Offer { change: u8 },
    OfferAll,
}

struct World {
    authors: Vec<Author>,
    snapshots: Vec<Option<Author>>,
    generation: u8,
    made: Vec<VerifiedChange>,
    log: MemLog,
    rolled_back: bool,
}

fn offer(log: &mut MemLog, c: &VerifiedChange) -> Result<Admitted, RejectReason> {
    let head = log.head_seq().unwrap();
    let held_before = log.position(&c.envelope.doc, &c.hash).unwrap();
    let outcome = admit(log, c).expect("MemLog is infallible");
    let doc = &c.envelope.doc;
    match &outcome {
        Ok(Admitted::Stored(pos)) => {
            assert_eq!(held_before, None);
            assert_eq!(*pos, head + 1);
            assert_eq!(log.head_seq(), Ok(head + 1));
            for dep in &c.deps {
                let at = log.position(doc, dep).unwrap().expect("dependency held");
                assert!(at < *pos, "dependency stored after its dependent");
            }
        }
        Ok(Admitted::Duplicate(pos)) => {
            assert_eq!(held_before, Some(*pos));
            assert_eq!(log.head_seq(), Ok(head));
        }
        Err(reason) => {
            assert_eq!(held_before, None);
            assert_eq!(log.head_seq(), Ok(head), "a refused change was stored");
            match reason {
                RejectReason::Equivocation { seq, held, .. } => {
                    assert_eq!(*seq, c.seq);
                    assert_ne!(*held, c.hash);
                    assert_eq!(
                        log.hash_for_actor_seq(doc, &c.actor, c.seq),
                        Ok(Some(*held))
                    );
                }
                RejectReason::MissingDeps(missing) => {
                    assert!(!missing.is_empty());
                    for m in missing {
                        assert!(c.deps.contains(m));
                        assert_eq!(log.position(doc, m), Ok(None));
                    }
                }
                other => panic!("admit gave a relay-only reason: {other:?}"),
            }
        }
    }
    outcome
}

impl World {
    fn run(&mut self, op: &Op) {
        let pick = |i: u8| usize::from(i) % AUTHORS;
        match *op {
            Op::Edit {
                author,
                field,
                value,
            } => {
                let Some(env) = self.authors[pick(author)].try_edit(
                    comune_doc(),
                    &format!("k{}", field % 4),
                    &value.to_string(),
                ) else {
                    return;
                };
                let v = env.verify().expect("an author's own change verifies");
                if !self.made.iter().any(|m| m.hash == v.hash) {
                    self.made.push(v);
                }
            }
            Op::Learn { author, from } => {
                let (a, b) = (pick(author), pick(from));
                if a != b {
                    let mut other = self.authors[b].clone();
                    // A refused merge (same actor and seq, different change
                    // after a rollback) leaves the document as it was.
                    let _ = self.authors[a].learn(&mut other);
                }
            }
            Op::Restart { author } => {
                self.generation = self.generation.wrapping_add(1);
                self.authors[pick(author)].restart(self.generation);
            }
            Op::Snapshot { author } => {
                self.snapshots[pick(author)] = Some(self.authors[pick(author)].clone());
            }
            Op::Rollback { author } => {
                if let Some(s) = self.snapshots[pick(author)].clone() {
                    self.authors[pick(author)] = s;
                    self.rolled_back = true;
                }
            }
            Op::Offer { change } => {
                if !self.made.is_empty() {
                    let c = self.made[usize::from(change) % self.made.len()].clone();
                    let _ = offer(&mut self.log, &c);
                }
            }
            Op::OfferAll => {
                for c in self.made.clone() {
                    let _ = offer(&mut self.log, &c);
                }
            }
        }
    }

    fn check_log(&self) {
        let mut at: HashMap<ChangeHash, u64> = HashMap::new();
        let mut actor_seq = HashSet::new();
        for (i, entry) in self.log.all().enumerate() {
            assert_eq!(entry.seq, i as u64 + 1, "log positions are not dense");
            let v = entry
                .change
                .clone()
                .verify()
                .expect("the log holds verified changes");
            for dep in &v.deps {
                assert!(at.contains_key(dep), "log is not causally closed");
            }
            assert!(
                at.insert(v.hash, entry.seq).is_none(),
                "a change is held twice"
            );
            assert!(
                actor_seq.insert((v.actor, v.seq)),
                "two changes for one (actor, seq)"
            );
        }
    }

    /// Offers everything until nothing moves; then every change not held is
    /// an equivocation or builds on a change that is not held.
    fn settle(&mut self) {
        loop {
            let head = self.log.head_seq().unwrap();
            for c in self.made.clone() {
                let _ = offer(&mut self.log, &c);
            }
            if self.log.head_seq().unwrap() == head {
                break;
            }
        }
        let doc = comune_doc();
        for c in &self.made {
            if self.log.position(&doc, &c.hash).unwrap().is_some() {
                continue;
            }
            assert!(
                self.rolled_back,
                "an honest history did not fully enter the log"
            );
            match admit(&mut self.log.clone(), c).unwrap() {
                Err(RejectReason::Equivocation { .. }) => {}
                Err(RejectReason::MissingDeps(missing)) => {
                    assert!(missing
                        .iter()
                        .all(|m| self.made.iter().any(|x| x.hash == *m)));
                }
                other => panic!("a change stayed out of a settled log: {other:?}"),
            }
        }
    }
}

fuzz_target!(|ops: Vec<Op>| {
    accordo_fuzz::init();
    let mut world = World {
        authors: (0..AUTHORS as u8).map(|i| Author::new(i + 1, 0)).collect(),
        snapshots: vec![None; AUTHORS],
        generation: 0,
        made: Vec::new(),
        log: MemLog::default(),
        rolled_back: false,
    };
    for op in ops.iter().take(MAX_OPS) {
        world.run(op);
    }
    world.check_log();
    world.settle();
    world.check_log();
});
