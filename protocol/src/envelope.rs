//! Signed change envelopes.
//!
//! Every automerge change travels inside a [`SignedChange`]: the document it
//! belongs to, the author's key, the per-process actor nonce and the change
//! bytes, signed with the author's ed25519 key over a domain-separated
//! encoding. The change's automerge actor id must equal
//! [`derive_actor`]`(author, nonce)`, so an actor is bound to exactly one key
//! and a fresh nonce per process start gives a fresh actor: a node restored
//! from a backup, or a key used on two machines, can never produce two
//! different changes with the same (actor, seq).

use crate::doc::DocId;
use crate::identity::NodeId;
use automerge::Change;
use ed25519_dalek::{Signature, Signer, SigningKey};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Domain separator of change signatures.
pub const CHANGE_SIGNING_DOMAIN: &[u8] = b"accordo/change/v1";
/// Bytes of the per-process actor nonce: 128 bits makes a repeat negligible.
pub const ACTOR_NONCE_BYTES: usize = 16;
/// Bytes of a derived automerge actor id (RESEARCH: 16 bytes is the compact choice).
pub const ACTOR_ID_BYTES: usize = 16;
/// Largest change accepted. A single CLI edit is a few hundred bytes; a bulk
/// import batched into one change stays well under this. It also keeps one
/// envelope far below the frame cap.
pub const MAX_CHANGE_BYTES: usize = 1024 * 1024;

/// A 32-byte automerge change hash, printed as hex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChangeHash(pub [u8; 32]);

impl From<automerge::ChangeHash> for ChangeHash {
    fn from(h: automerge::ChangeHash) -> Self {
        ChangeHash(h.0)
    }
}

impl From<ChangeHash> for automerge::ChangeHash {
    fn from(h: ChangeHash) -> Self {
        automerge::ChangeHash(h.0)
    }
}

impl fmt::Display for ChangeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ChangeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChangeHash({})", hex::encode(&self.0[..6]))
    }
}

/// The actor id a key must use with a given nonce.
pub fn derive_actor(author: &NodeId, nonce: &[u8; ACTOR_NONCE_BYTES]) -> [u8; ACTOR_ID_BYTES] {
    let mut hasher = blake3::Hasher::new_derive_key("accordo/actor/v1");
    hasher.update(&author.0);
    hasher.update(nonce);
    let mut out = [0u8; ACTOR_ID_BYTES];
    out.copy_from_slice(&hasher.finalize().as_bytes()[..ACTOR_ID_BYTES]);
    out
}

/// An automerge change, its document and its author's signature.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedChange {
    pub doc: DocId,
    pub author: NodeId,
    pub actor_nonce: [u8; ACTOR_NONCE_BYTES],
    /// The automerge change chunk as produced by the author.
    pub change: Vec<u8>,
    pub signature: Signature,
}

impl fmt::Debug for SignedChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedChange")
            .field("doc", &self.doc)
            .field("author", &self.author)
            .field("change_bytes", &self.change.len())
            .finish_non_exhaustive()
    }
}

/// Why an envelope failed verification. Each is a distinct, expected failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("change of {0} bytes exceeds the {MAX_CHANGE_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("change bytes do not parse as an automerge change: {0}")]
    Malformed(String),
    #[error("author id is not a valid ed25519 key")]
    BadAuthorKey,
    #[error("change actor is not bound to the author's key and nonce")]
    ActorMismatch,
    #[error("signature does not verify")]
    BadSignature,
}

/// The canonical bytes a change signature covers.
pub fn signing_payload(
    doc: &DocId,
    author: &NodeId,
    nonce: &[u8; ACTOR_NONCE_BYTES],
    hash: &ChangeHash,
) -> Vec<u8> {
    let doc = doc.canonical();
    let mut out = Vec::with_capacity(CHANGE_SIGNING_DOMAIN.len() + 4 + doc.len() + 80);
    out.extend_from_slice(CHANGE_SIGNING_DOMAIN);
    out.extend_from_slice(&(doc.len() as u32).to_be_bytes());
    out.extend_from_slice(doc.as_bytes());
    out.extend_from_slice(&author.0);
    out.extend_from_slice(nonce);
    out.extend_from_slice(&hash.0);
    out
}

/// Offset of the chunk type in an automerge chunk (after the 4-byte magic and
/// the 4-byte checksum), and the type of an uncompressed change chunk: the
/// only kind `SignedChange::sign` produces (`Change::raw_bytes`).
const CHUNK_TYPE_OFFSET: usize = 8;
const CHUNK_TYPE_CHANGE: u8 = 1;

/// Parses the change bytes of an envelope. These come from peers before any
/// signature is checked, and automerge 0.12 parses a whole document, bundle or
/// compressed chunk before refusing it as not a change; found by the
/// `envelope` fuzz target (inputs in the regression test below), a 105-byte
/// bundle chunk makes it panic in its column decoder (hexane) and another
/// makes it allocate gigabytes. So only uncompressed change chunks reach
/// automerge, and a panic inside it is an error too: no input may take down
/// a verifier, least of all the relay, which verifies under its store lock.
pub fn parse_change(bytes: &[u8]) -> Result<Change, EnvelopeError> {
    if bytes.get(CHUNK_TYPE_OFFSET) != Some(&CHUNK_TYPE_CHANGE) {
        return Err(EnvelopeError::Malformed(
            "not an uncompressed automerge change chunk".into(),
        ));
    }
    match std::panic::catch_unwind(|| Change::try_from(bytes)) {
        Ok(parsed) => parsed.map_err(|e| EnvelopeError::Malformed(e.to_string())),
        Err(_) => Err(EnvelopeError::Malformed(
            "the automerge parser failed on these bytes".into(),
        )),
    }
}

/// A change whose envelope verified: the parsed header fields travel with it.
#[derive(Debug, Clone)]
pub struct VerifiedChange {
    pub envelope: SignedChange,
    pub hash: ChangeHash,
    pub actor: [u8; ACTOR_ID_BYTES],
    pub seq: u64,
    pub deps: Vec<ChangeHash>,
    pub change: Change,
}

impl SignedChange {
    /// Signs `change` (already committed with actor `derive_actor(key, nonce)`).
    pub fn sign(
        doc: DocId,
        key: &SigningKey,
        actor_nonce: [u8; ACTOR_NONCE_BYTES],
        change: &Change,
    ) -> Self {
        let author = NodeId::from_signing_key(key);
        let hash = ChangeHash::from(change.hash());
        let signature = key.sign(&signing_payload(&doc, &author, &actor_nonce, &hash));
        SignedChange {
            doc,
            author,
            actor_nonce,
            change: change.raw_bytes().to_vec(),
            signature,
        }
    }

    /// Checks size, parse, actor binding and signature (`verify_strict`).
    /// Authority and causal rules are checked by the log that stores it.
    pub fn verify(self) -> Result<VerifiedChange, EnvelopeError> {
        if self.change.len() > MAX_CHANGE_BYTES {
            return Err(EnvelopeError::TooLarge(self.change.len()));
        }
        let key = self
            .author
            .verifying_key()
            .ok_or(EnvelopeError::BadAuthorKey)?;
        let change = parse_change(&self.change)?;
        let actor = derive_actor(&self.author, &self.actor_nonce);
        if change.actor_id().to_bytes() != actor {
            return Err(EnvelopeError::ActorMismatch);
        }
        let hash = ChangeHash::from(change.hash());
        let payload = signing_payload(&self.doc, &self.author, &self.actor_nonce, &hash);
        key.verify_strict(&payload, &self.signature)
            .map_err(|_| EnvelopeError::BadSignature)?;
        Ok(VerifiedChange {
            hash,
            actor,
            seq: change.seq(),
            deps: change.deps().iter().map(|h| ChangeHash::from(*h)).collect(),
            change,
            envelope: self,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{comune_doc, TestAuthor};

    #[test]
    fn a_signed_change_verifies() {
        let mut a = TestAuthor::new(1, 1);
        let env = a.edit(comune_doc(), "title", "Scuola");
        let v = env.clone().verify().unwrap();
        assert_eq!(v.seq, 1);
        assert!(v.deps.is_empty());
        assert_eq!(v.envelope, env);
    }

    #[test]
    fn altered_bytes_or_fields_are_rejected() {
        let mut a = TestAuthor::new(1, 1);
        let env = a.edit(comune_doc(), "title", "Scuola");

        let mut other_doc = env.clone();
        other_doc.doc = DocId::Plan;
        assert_eq!(other_doc.verify().unwrap_err(), EnvelopeError::BadSignature);

        let mut other_author = env.clone();
        other_author.author = TestAuthor::new(2, 1).id();
        assert_eq!(
            other_author.verify().unwrap_err(),
            EnvelopeError::ActorMismatch
        );

        let mut other_nonce = env.clone();
        other_nonce.actor_nonce[0] ^= 1;
        assert_eq!(
            other_nonce.verify().unwrap_err(),
            EnvelopeError::ActorMismatch
        );

        let mut flipped = env.clone();
        let last = flipped.change.len() - 1;
        flipped.change[last] ^= 0x55;
        assert!(matches!(
            flipped.verify().unwrap_err(),
            EnvelopeError::Malformed(_) | EnvelopeError::BadSignature
        ));

        let mut bad_sig = env.clone();
        let mut sig = bad_sig.signature.to_bytes();
        sig[3] ^= 1;
        bad_sig.signature = Signature::from_bytes(&sig);
        assert_eq!(bad_sig.verify().unwrap_err(), EnvelopeError::BadSignature);

        let mut huge = env;
        huge.change = vec![0; MAX_CHANGE_BYTES + 1];
        assert!(matches!(
            huge.verify().unwrap_err(),
            EnvelopeError::TooLarge(_)
        ));
    }

    /// Regression (fuzz target `envelope`, seeds
    /// fuzz/corpus/envelope/crash_automerge_*): bundle chunks on which
    /// automerge 0.12 panics (hexane's RLE decoder) or allocates gigabytes.
    #[test]
    fn chunks_that_break_automerge_are_malformed() {
        let panics = "856f4a83c5c15531035f000100000123020080282a9ff469a26cd00996e7cdd5f167f9ca\
            3f75a3e087109d000200004c4a83c5c1553103ee37a25df60f5b8fc9b3940000000000000000000000\
            0000000069856f4a83c5656e7473017f017f663036303000000031";
        let allocates =
            "856f4a83c5c15531035f000100000123288002012a9ff469a29a2ff669e7cacdd53f67f9f1\
            75a3e087109d000200004c4a83c5c155314e3666757a7a6572313246757a7a65724472697665724550\
            6950505069856f4a83c5656e7473017f017f663036303000000a31";
        let mut a = TestAuthor::new(1, 1);
        for bytes in [panics, allocates] {
            let bytes = hex::decode(bytes).unwrap();
            assert!(matches!(
                parse_change(&bytes),
                Err(EnvelopeError::Malformed(_))
            ));
            let mut env = a.edit(comune_doc(), "title", "Scuola");
            env.change = bytes;
            assert!(matches!(
                env.verify().unwrap_err(),
                EnvelopeError::Malformed(_)
            ));
        }
        // Envelopes as `sign` makes them still parse.
        let env = a.edit(comune_doc(), "title", "Scuola nuova");
        assert!(parse_change(&env.change).is_ok());
    }

    #[test]
    fn a_key_signing_for_someone_elses_actor_is_rejected() {
        // Author 2 signs a change whose actor belongs to author 1.
        let mut a = TestAuthor::new(1, 1);
        let env = a.edit(comune_doc(), "title", "x");
        let change = Change::try_from(env.change.as_slice()).unwrap();
        let forged = SignedChange::sign(
            comune_doc(),
            &TestAuthor::new(2, 1).key,
            env.actor_nonce,
            &change,
        );
        assert_eq!(forged.verify().unwrap_err(), EnvelopeError::ActorMismatch);
    }
}
