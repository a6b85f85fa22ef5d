//! Fuzz target: an automerge bundle from any bytes (wire v2's codec). The
//! guard (`bundle::check`) and automerge behind it never panic, never abort
//! and never allocate past the guard's limits (libFuzzer's `-rss_limit_mb`
//! catches that); when a bundle is accepted, its changes are as many as the
//! guard counted and each one is an ordinary change chunk that re-parses to
//! the same hash.
#![no_main]
use accordo_protocol::bundle::{check, unbundle};
use accordo_protocol::envelope::parse_change;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    accordo_fuzz::init();
    let checked = check(data);
    let Ok(changes) = unbundle(data) else {
        return;
    };
    let shape = checked.expect("unbundle accepted what check refused");
    assert_eq!(shape.changes, changes.len() as u64);
    for c in &changes {
        let again = parse_change(c.raw_bytes()).expect("an unbundled change re-parses");
        assert_eq!(again.hash(), c.hash());
    }
});
