//! Test helpers shared by this crate's tests and, behind the `testkit`
//! feature, by the store, relay and node tests: a document author that makes
//! real signed changes.

use crate::doc::DocId;
use crate::envelope::{derive_actor, SignedChange, ACTOR_NONCE_BYTES};
use crate::identity::NodeId;
use crate::registry::Statement;
use automerge::transaction::{CommitOptions, Transactable};
use automerge::ReadDoc;
use automerge::{ActorId, AutoCommit, ROOT};
use ed25519_dalek::SigningKey;

/// A document author for tests: a key and one process's nonce.
pub struct TestAuthor {
    pub key: SigningKey,
    pub nonce: [u8; ACTOR_NONCE_BYTES],
    pub doc: AutoCommit,
}

impl TestAuthor {
    pub fn new(seed: u8, nonce: u8) -> Self {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let nonce = [nonce; ACTOR_NONCE_BYTES];
        let actor = derive_actor(&NodeId::from_signing_key(&key), &nonce);
        TestAuthor {
            key,
            nonce,
            doc: AutoCommit::new().with_actor(ActorId::from(&actor[..])),
        }
    }

    pub fn id(&self) -> NodeId {
        NodeId::from_signing_key(&self.key)
    }

    /// Signs one registry statement, made on this author's copy of the registry.
    pub fn statement(&mut self, statement: &Statement) -> SignedChange {
        let n = self.doc.get_heads().len() + self.doc.length(ROOT);
        self.doc
            .put(ROOT, format!("s{n}"), statement.to_message())
            .unwrap();
        self.doc
            .commit_with(CommitOptions::default().with_message(statement.to_message()));
        let change = self.doc.get_last_local_change().unwrap();
        SignedChange::sign(DocId::Registry, &self.key, self.nonce, &change)
    }

    /// Learns every change `other` made (a sync between the two).
    pub fn learn(&mut self, other: &mut TestAuthor) {
        self.doc.merge(&mut other.doc).unwrap();
    }

    pub fn edit(&mut self, doc: DocId, field: &str, value: &str) -> SignedChange {
        self.doc.put(ROOT, field, value).unwrap();
        self.doc.commit();
        let change = self.doc.get_last_local_change().unwrap();
        SignedChange::sign(doc, &self.key, self.nonce, &change)
    }
}

pub fn comune_doc() -> DocId {
    DocId::Comune("092009".parse().unwrap())
}
