//! A change signed by a member key can carry any operations automerge's
//! parser accepts, and automerge 0.12's `apply_changes` panics on some of
//! them (an insert into a list the change never made, found by the
//! `apply_changes` fuzz target's first probes). Materialising a document
//! from such a change must leave it out, by name, show the rest, and leave
//! the node running.

use accordo_node::replica::{load_doc, load_doc_reporting, RefusedChange};
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
fn a_change_that_panics_automerge_is_left_out_by_name_and_the_rest_is_shown() {
    let (first, hostile) = honest_then_hostile();
    let hostile_hash = ChangeHash::from(
        Change::try_from(hostile.change.as_slice())
            .expect("the hostile change parses")
            .hash(),
    );
    let honest = load_doc(&doc(), std::slice::from_ref(&first)).expect("the honest change loads");
    assert_eq!(honest.length(ROOT), 1);

    let (loaded, refused) = load_doc_reporting(&doc(), &[first.clone(), hostile.clone()])
        .expect("the document loads without the hostile change");
    assert_eq!(loaded.length(ROOT), 1, "the honest change is still shown");
    assert_eq!(
        refused,
        vec![RefusedChange {
            change: hostile_hash,
            author: hostile.author,
            builds_on: None,
        }],
        "the hostile change is named"
    );
    assert!(refused[0].to_string().contains("panics"));
    let shown = load_doc(&doc(), &[first, hostile]).expect("load_doc shows the rest");
    assert_eq!(shown.length(ROOT), 1);
}

/// A change built on the refused one is left out too (its dependency is
/// missing from the document), and named with what it builds on.
#[test]
fn changes_built_on_a_refused_change_are_left_out_too() {
    let (first, hostile) = honest_then_hostile();
    let hostile_hash = ChangeHash::from(
        Change::try_from(hostile.change.as_slice())
            .expect("parses")
            .hash(),
    );
    let (key, mut am) = author();
    am.put(ROOT, "later", "x").expect("put");
    am.commit();
    let mut later = am.get_last_local_change().expect("committed").decode();
    later.deps = vec![automerge::ChangeHash(hostile_hash.0)];
    later.seq = 3;
    let later = SignedChange::sign(doc(), &key, NONCE, &Change::from(later));
    let (loaded, refused) =
        load_doc_reporting(&doc(), &[first, hostile, later]).expect("the rest loads");
    assert_eq!(loaded.length(ROOT), 1);
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert_eq!(refused[1].builds_on, Some(hostile_hash));
}
