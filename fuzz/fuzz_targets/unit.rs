//! Fuzz target: a wire v2 unit (signed heads over one author's changes)
//! from any bytes. Decoding never panics and round-trips; `open` never
//! panics, and when it accepts, every change is bound to the author by one
//! of the unit's nonces and re-parses to its hash, in causal order.
#![no_main]
use accordo_protocol::envelope::{derive_actor, parse_change};
use accordo_protocol::unit::Unit;
use libfuzzer_sys::fuzz_target;
use std::collections::{HashMap, HashSet};

fuzz_target!(|data: &[u8]| {
    accordo_fuzz::init();
    let Ok(unit) = postcard::from_bytes::<Unit>(data) else {
        return;
    };
    let bytes = postcard::to_stdvec(&unit).expect("a unit encodes");
    assert_eq!(postcard::from_bytes::<Unit>(&bytes).ok().as_ref(), Some(&unit));
    let Ok(opened) = unit.clone().open() else {
        return;
    };
    let actors: HashSet<_> = unit
        .nonces
        .iter()
        .map(|n| derive_actor(&unit.author, n))
        .collect();
    let pos: HashMap<_, _> = opened
        .changes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.hash, i))
        .collect();
    assert_eq!(pos.len(), opened.changes.len(), "a change repeats");
    for (i, c) in opened.changes.iter().enumerate() {
        assert!(actors.contains(&c.actor));
        assert_eq!(derive_actor(&unit.author, &c.nonce), c.actor);
        let again = parse_change(c.change.raw_bytes()).expect("re-parses");
        assert_eq!(again.hash(), c.change.hash());
        for d in &c.deps {
            if let Some(&j) = pos.get(d) {
                assert!(j < i, "a change before its dependency");
            }
        }
    }
});
