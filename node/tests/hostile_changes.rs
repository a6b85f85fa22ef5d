//! A change signed by a member key can carry any operations automerge's
//! parser accepts, and automerge 0.12's `apply_changes` panics on some of
//! them (an insert into a list the change never made, found by the
//! `apply_changes` fuzz target's first probes). Materialising a document
//! from such a change must refuse it, by name, and leave the node running.

use accordo_node::replica::{load_doc, ReplicaError};
use accordo_protocol::doc::DocId;
use accordo_protocol::envelope::{derive_actor, ChangeHash, SignedChange};
use accordo_protocol::identity::NodeId;
use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, Change, ObjType, ReadDoc, ROOT};
use ed25519_dalek::SigningKey;

const NONCE: [u8; 16] = [4; 16];

fn author() -> (SigningKey, AutoCommit) {
    let key = SigningKey::from_bytes(&[9; 32]);
    let actor = derive_actor(&NodeId::from_signing_key(&key), &NONCE);
    (key, AutoCommit::new().with_actor(ActorId::from(&actor[..])))
}

fn doc() -> DocId {
    DocId::Comune("092009".parse().expect("six digits"))
}

/// A valid first change (a title), then one that inserts into a list whose
/// creation was cut out of it: well-formed bytes, validly signed.
fn honest_then_hostile() -> (SignedChange, SignedChange) {
    let (key, mut am) = author();
    am.put(ROOT, "title", "Scuola").expect("put");
    am.commit();
    let first = am.get_last_local_change().expect("committed").clone();
    let list = am.put_object(ROOT, "phases", ObjType::List).expect("list");
    am.insert(&list, 0, "progettazione").expect("insert");
    am.commit();
    let mut expanded = am.get_last_local_change().expect("committed").decode();
    expanded.operations.remove(0);
    let hostile = Change::from(expanded);
    (
        SignedChange::sign(doc(), &key, NONCE, &first),
        SignedChange::sign(doc(), &key, NONCE, &hostile),
    )
}

#[test]
fn a_change_that_panics_automerge_is_refused_by_name() {
    let (first, hostile) = honest_then_hostile();
    let hostile_hash = ChangeHash::from(
        Change::try_from(hostile.change.as_slice())
            .expect("the hostile change parses")
            .hash(),
    );
    let honest = load_doc(&doc(), std::slice::from_ref(&first)).expect("the honest change loads");
    assert_eq!(honest.length(ROOT), 1);

    let err = match load_doc(&doc(), &[first, hostile.clone()]) {
        Err(e) => e,
        Ok(_) => panic!("the hostile change was applied"),
    };
    assert!(
        err.to_string().contains(&hostile_hash.to_string()),
        "the message names the change: {err}"
    );
    match err {
        ReplicaError::ChangeRefused {
            doc: d,
            change,
            author,
        } => {
            assert_eq!(d, doc());
            assert_eq!(change, hostile_hash, "the error names the change");
            assert_eq!(author, hostile.author);
        }
        other => panic!("another error: {other}"),
    }
}
