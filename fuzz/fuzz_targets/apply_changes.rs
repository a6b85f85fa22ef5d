//! Fuzz target: a document materialised from hostile change bytes, as a node
//! does with the changes it pulled (`accordo_node::replica::load_doc`, which
//! hands them to automerge's `apply_changes`). The input is split into
//! several changes (`accordo_fuzz::frames`). Loading never panics: a change
//! that makes automerge fail, or panic, is refused with an error naming it;
//! and a document that loads can be read and saved.
#![no_main]
use accordo_fuzz::{comune_doc, frames, id};
use accordo_protocol::envelope::SignedChange;
use automerge::ReadDoc;
use libfuzzer_sys::fuzz_target;

/// More changes than this in one input only slow the fuzzer down.
const MAX_CHANGES: usize = 32;

fuzz_target!(|data: &[u8]| {
    accordo_fuzz::init();
    let changes: Vec<SignedChange> = frames(data)
        .take(MAX_CHANGES)
        .map(|bytes| SignedChange {
            doc: comune_doc(),
            author: id(1),
            actor_nonce: [1; 16],
            change: bytes.to_vec(),
            // load_doc does not verify (the node verified before storing).
            signature: ed25519_dalek::Signature::from_bytes(&[0; 64]),
        })
        .collect();
    match accordo_node::replica::load_doc(&comune_doc(), &changes) {
        Ok(mut am) => {
            let _ = am.get_heads();
            let _ = am.keys(automerge::ROOT).count();
            let _ = am.save();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
