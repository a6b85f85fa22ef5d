//! Fuzz target: the relay's handling of any request body against a log that
//! holds real changes (verify each push, judge authority, admit, then serve
//! the pull). Nothing may panic, and the response must be consistent: one
//! ack or reject per pushed change, every ack held, one progress per cursor
//! never behind it nor past the head, entries in order, each once, each the
//! log's own entry at that position and in an asked-for range, and no gap:
//! every entry in scope up to a cursor's progress is sent (or was just
//! pushed by the requester). The response round-trips through the wire.
#![no_main]
use accordo_fuzz::{relay_fixture, RelayFixture};
use accordo_protocol::envelope::{ChangeHash, SignedChange};
use accordo_protocol::log::{serve_sync, LogStore};
use accordo_protocol::wire::{Request, Response, Scope};
use libfuzzer_sys::fuzz_target;
use std::collections::HashSet;
use std::sync::OnceLock;

static FIXTURE: OnceLock<RelayFixture> = OnceLock::new();

fn in_scope(scope: &Scope, change: &SignedChange) -> bool {
    match scope {
        Scope::All => true,
        Scope::Doc(doc) => change.doc == *doc,
    }
}

fuzz_target!(|data: &[u8]| {
    accordo_fuzz::init();
    let Ok(Request::Sync(req)) = Request::decode(data) else {
        return;
    };
    let fixture = FIXTURE.get_or_init(relay_fixture);
    let mut log = fixture.log.clone();
    let verified = req.push.iter().cloned().map(SignedChange::verify).collect();
    let resp = serve_sync(&mut log, &fixture.members, &req, verified).unwrap();

    // Push: exactly one outcome per change, acks held.
    assert_eq!(resp.acks.len() + resp.rejects.len(), req.push.len());
    let mut last = None;
    for r in &resp.rejects {
        assert!((r.index as usize) < req.push.len());
        assert!(last.is_none_or(|l| l < r.index), "rejects out of order");
        last = Some(r.index);
    }
    let held: HashSet<ChangeHash> = log.hashes().into_values().flatten().collect();
    assert!(
        resp.acks.iter().all(|h| held.contains(h)),
        "an ack for a change not held"
    );
    let acked: HashSet<ChangeHash> = resp.acks.iter().copied().collect();

    // Pull: progress per cursor, entries ordered, real, asked for, no gaps.
    let head = log.head_seq().unwrap();
    assert_eq!(resp.head_seq, head);
    assert_eq!(resp.progress.len(), req.cursors.len());
    for (p, c) in resp.progress.iter().zip(&req.cursors) {
        assert_eq!(p.scope, c.scope);
        assert!(p.reached >= c.after_seq, "progress behind the cursor");
        assert!(p.reached <= head.max(c.after_seq), "progress past the head");
    }
    let all: Vec<_> = log.all().cloned().collect();
    let mut sent = HashSet::new();
    for (i, e) in resp.entries.iter().enumerate() {
        assert!(
            i == 0 || resp.entries[i - 1].seq < e.seq,
            "entries out of order"
        );
        assert!(e.seq >= 1 && e.seq <= head);
        assert_eq!(
            &all[e.seq as usize - 1],
            e,
            "an entry that is not the log's"
        );
        let asked = req.cursors.iter().zip(&resp.progress).any(|(c, p)| {
            in_scope(&c.scope, &e.change) && c.after_seq < e.seq && e.seq <= p.reached
        });
        assert!(asked, "entry {} was not asked for", e.seq);
        sent.insert(e.seq);
    }
    for (c, p) in req.cursors.iter().zip(&resp.progress) {
        for e in &all[(c.after_seq.min(head) as usize)..(p.reached.min(head) as usize)] {
            if !in_scope(&c.scope, &e.change) || sent.contains(&e.seq) {
                continue;
            }
            let hash = automerge::Change::try_from(e.change.change.as_slice())
                .map(|ch| ChangeHash::from(ch.hash()))
                .expect("held changes parse");
            assert!(
                acked.contains(&hash),
                "entry {} skipped below the progress",
                e.seq
            );
        }
    }

    let resp = Response::Sync(resp);
    assert_eq!(Response::decode(&resp.encode()).as_ref(), Ok(&resp));
});
