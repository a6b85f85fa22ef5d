//! Fuzz target: a signed change envelope from any bytes. Decoding never
//! panics and round-trips; `verify` (size, automerge parse, actor binding,
//! `verify_strict`) never panics and, when it accepts, what it reports agrees
//! with the envelope; the stored-envelope parser agrees with it; and the
//! first admission into an empty `MemLog` stores a change without
//! dependencies (then a second one is a duplicate) and refuses one with
//! dependencies, storing nothing.
#![no_main]
use accordo_protocol::envelope::{derive_actor, ChangeHash, SignedChange};
use accordo_protocol::log::{admit, Admitted, LogStore, MemLog, RejectReason};
use accordo_protocol::registry::{ChangeMeta, RegistryChange};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    accordo_fuzz::init();
    let Ok(env) = postcard::from_bytes::<SignedChange>(data) else {
        return;
    };
    let bytes = postcard::to_stdvec(&env).expect("an envelope encodes");
    assert_eq!(
        postcard::from_bytes::<SignedChange>(&bytes).ok().as_ref(),
        Some(&env)
    );

    // The parser used on already stored envelopes must not panic either.
    let meta = ChangeMeta::of_stored(&env);
    if let Ok(m) = &meta {
        let _ = RegistryChange::from_meta(m);
    }

    let v = match env.clone().verify() {
        Ok(v) => v,
        Err(e) => {
            let _ = RejectReason::from(e).to_string();
            return;
        }
    };
    assert_eq!(v.envelope, env);
    assert_eq!(v.actor, derive_actor(&env.author, &env.actor_nonce));
    assert_eq!(v.hash, ChangeHash::from(v.change.hash()));
    assert_eq!(v.seq, v.change.seq());
    let m = meta.expect("a verified envelope parses as stored");
    assert_eq!(
        (m.hash, m.seq, &m.deps, m.actor),
        (v.hash, v.seq, &v.deps, v.actor)
    );

    let mut log = MemLog::default();
    let first = admit(&mut log, &v).expect("MemLog is infallible");
    if v.deps.is_empty() {
        assert_eq!(first, Ok(Admitted::Stored(1)));
        let second = admit(&mut log, &v).expect("MemLog is infallible");
        assert_eq!(second, Ok(Admitted::Duplicate(1)));
        assert_eq!(log.head_seq(), Ok(1));
    } else {
        match first {
            Err(RejectReason::MissingDeps(missing)) => assert_eq!(missing, v.deps),
            other => panic!("a change with dependencies entered an empty log: {other:?}"),
        }
        assert_eq!(log.head_seq(), Ok(0));
    }
});
