//! Wire v2's signed unit: a run of one author's changes to one document,
//! authenticated by signed heads instead of one signature per change.
//!
//! Automerge changes form a hash-linked graph: each change names the hashes
//! of its dependencies. A [`SignedHeads`] statement — an ed25519 signature of
//! the author over (document, author, a set of change hashes) — therefore
//! vouches for every change in the causal past of those heads, as a signed
//! git tag vouches for its history. A unit carries the author's statements
//! and its changes (raw, or as one automerge bundle, see [`crate::bundle`]);
//! [`Unit::open`] accepts it only if
//!
//! 1. every statement's signature verifies (checked first, before a byte of
//!    the body is parsed);
//! 2. every change's actor is bound to the author by one of the unit's
//!    nonces ([`derive_actor`]), so the unit holds the author's changes only;
//! 3. the changes are in causal order and none repeats;
//! 4. every change is reached from a signed head through dependencies inside
//!    the unit. Actor ids are public, so anyone can make a change with the
//!    author's actor id; only a change in the past of heads the author
//!    signed is the author's. A head the unit does not hold covers nothing.
//!
//! What the opened changes may then do (authority, revocation cuts) is
//! judged by the log, as for v1 envelopes.

use crate::bundle::{self, BundleError};
use crate::doc::DocId;
use crate::envelope::{
    derive_actor, parse_change, ChangeHash, EnvelopeError, ACTOR_ID_BYTES, ACTOR_NONCE_BYTES,
    MAX_CHANGE_BYTES,
};
use crate::identity::NodeId;
use automerge::Change;
use ed25519_dalek::{Signature, Signer, SigningKey};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};

/// Domain separator of signed heads.
pub const HEADS_SIGNING_DOMAIN: &[u8] = b"accordo/heads/v2";
/// Most changes in one unit (as many as one v1 push).
pub const MAX_UNIT_CHANGES: usize = crate::wire::MAX_PUSH_CHANGES;
/// Most statements in one unit.
pub const MAX_UNIT_STATEMENTS: usize = 64;
/// Most heads in one statement.
pub const MAX_HEADS: usize = 1_024;
/// Most actor nonces in one unit (one per process start of the author).
pub const MAX_UNIT_NONCES: usize = 64;

/// An author's signature over a set of heads of one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedHeads {
    /// Sorted, without repeats.
    pub heads: Vec<ChangeHash>,
    pub signature: Signature,
}

/// The changes of a unit as they travel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// Uncompressed change chunks, in causal order.
    Changes(Vec<Vec<u8>>),
    /// One automerge bundle chunk.
    Bundle(Vec<u8>),
}

/// One author's changes to one document with the statements covering them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    pub doc: DocId,
    pub author: NodeId,
    pub nonces: Vec<[u8; ACTOR_NONCE_BYTES]>,
    pub statements: Vec<SignedHeads>,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("the unit has no changes")]
    Empty,
    #[error("the unit exceeds a limit: {0}")]
    TooLarge(&'static str),
    #[error("author id is not a valid ed25519 key")]
    BadAuthorKey,
    #[error("statement {0}'s heads are not sorted without repeats")]
    UnsortedHeads(usize),
    #[error("statement {0}'s signature does not verify")]
    BadSignature(usize),
    #[error(transparent)]
    Change(#[from] EnvelopeError),
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("change {0} is not the author's: its actor is bound to none of the unit's nonces")]
    ActorNotBound(ChangeHash),
    #[error("change {0} appears twice")]
    Duplicate(ChangeHash),
    #[error("change {0} comes before a dependency of it in the unit")]
    NotCausal(ChangeHash),
    #[error("change {0} is covered by no signed head of its author")]
    Uncovered(ChangeHash),
}

/// A change of an opened unit with its header fields.
#[derive(Debug, Clone)]
pub struct UnitChange {
    pub hash: ChangeHash,
    pub actor: [u8; ACTOR_ID_BYTES],
    pub nonce: [u8; ACTOR_NONCE_BYTES],
    pub seq: u64,
    pub deps: Vec<ChangeHash>,
    pub change: Change,
}

/// What [`Unit::open`] returns: the author's changes, in causal order.
#[derive(Debug, Clone)]
pub struct OpenedUnit {
    pub doc: DocId,
    pub author: NodeId,
    pub statements: Vec<SignedHeads>,
    pub changes: Vec<UnitChange>,
}

/// The canonical bytes a heads signature covers.
pub fn heads_payload(doc: &DocId, author: &NodeId, heads: &[ChangeHash]) -> Vec<u8> {
    let doc = doc.canonical();
    let mut out =
        Vec::with_capacity(HEADS_SIGNING_DOMAIN.len() + 40 + doc.len() + 32 * heads.len());
    out.extend_from_slice(HEADS_SIGNING_DOMAIN);
    out.extend_from_slice(&(doc.len() as u32).to_be_bytes());
    out.extend_from_slice(doc.as_bytes());
    out.extend_from_slice(&author.0);
    out.extend_from_slice(&(heads.len() as u32).to_be_bytes());
    for h in heads {
        out.extend_from_slice(&h.0);
    }
    out
}

impl SignedHeads {
    /// Signs `heads` (sorted and deduplicated here) of `doc`.
    pub fn sign(
        key: &SigningKey,
        doc: &DocId,
        heads: impl IntoIterator<Item = ChangeHash>,
    ) -> Self {
        let mut heads: Vec<ChangeHash> = heads.into_iter().collect();
        heads.sort();
        heads.dedup();
        let author = NodeId::from_signing_key(key);
        let signature = key.sign(&heads_payload(doc, &author, &heads));
        SignedHeads { heads, signature }
    }
}

/// The changes of `changes` no other of them depends on.
pub fn frontier(changes: &[Change]) -> Vec<ChangeHash> {
    let depended: HashSet<automerge::ChangeHash> = changes
        .iter()
        .flat_map(|c| c.deps().iter().copied())
        .collect();
    changes
        .iter()
        .map(|c| c.hash())
        .filter(|h| !depended.contains(h))
        .map(ChangeHash::from)
        .collect()
}

impl Unit {
    /// Seals `changes` (the author's, in causal order, made with actors
    /// `derive_actor(key, nonce)` for `nonces`) under one statement over
    /// their frontier. `bundle`, if given, is their automerge bundle; it
    /// travels instead of the raw changes when it is smaller.
    pub fn seal(
        doc: DocId,
        key: &SigningKey,
        nonces: Vec<[u8; ACTOR_NONCE_BYTES]>,
        changes: &[Change],
        bundle: Option<Vec<u8>>,
    ) -> Unit {
        let statement = SignedHeads::sign(key, &doc, frontier(changes));
        let raw: usize = changes.iter().map(|c| c.raw_bytes().len()).sum();
        let body = match bundle {
            Some(b) if b.len() < raw => Body::Bundle(b),
            _ => Body::Changes(changes.iter().map(|c| c.raw_bytes().to_vec()).collect()),
        };
        Unit {
            doc,
            author: NodeId::from_signing_key(key),
            nonces,
            statements: vec![statement],
            body,
        }
    }

    /// Verifies the unit (see the module documentation) and returns its
    /// changes in causal order.
    pub fn open(self) -> Result<OpenedUnit, UnitError> {
        if self.statements.len() > MAX_UNIT_STATEMENTS {
            return Err(UnitError::TooLarge("statements"));
        }
        if self.nonces.len() > MAX_UNIT_NONCES {
            return Err(UnitError::TooLarge("nonces"));
        }
        let key = self.author.verifying_key().ok_or(UnitError::BadAuthorKey)?;
        for (i, s) in self.statements.iter().enumerate() {
            if s.heads.len() > MAX_HEADS {
                return Err(UnitError::TooLarge("heads"));
            }
            if s.heads.windows(2).any(|w| w[0] >= w[1]) {
                return Err(UnitError::UnsortedHeads(i));
            }
            key.verify_strict(
                &heads_payload(&self.doc, &self.author, &s.heads),
                &s.signature,
            )
            .map_err(|_| UnitError::BadSignature(i))?;
        }
        let changes = match &self.body {
            Body::Changes(raw) => {
                if raw.len() > MAX_UNIT_CHANGES {
                    return Err(UnitError::TooLarge("changes"));
                }
                raw.iter()
                    .map(|bytes| {
                        if bytes.len() > MAX_CHANGE_BYTES {
                            return Err(EnvelopeError::TooLarge(bytes.len()));
                        }
                        parse_change(bytes)
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
            Body::Bundle(bytes) => {
                if bundle::check(bytes)?.changes > MAX_UNIT_CHANGES as u64 {
                    return Err(UnitError::TooLarge("changes"));
                }
                bundle::unbundle(bytes)?
            }
        };
        if changes.is_empty() {
            return Err(UnitError::Empty);
        }
        let bound: HashMap<[u8; ACTOR_ID_BYTES], [u8; ACTOR_NONCE_BYTES]> = self
            .nonces
            .iter()
            .map(|n| (derive_actor(&self.author, n), *n))
            .collect();
        let mut index: HashMap<ChangeHash, usize> = HashMap::with_capacity(changes.len());
        let mut opened = Vec::with_capacity(changes.len());
        for (i, change) in changes.into_iter().enumerate() {
            let hash = ChangeHash::from(change.hash());
            let actor: [u8; ACTOR_ID_BYTES] = change
                .actor_id()
                .to_bytes()
                .try_into()
                .map_err(|_| UnitError::ActorNotBound(hash))?;
            let nonce = *bound.get(&actor).ok_or(UnitError::ActorNotBound(hash))?;
            if index.insert(hash, i).is_some() {
                return Err(UnitError::Duplicate(hash));
            }
            let deps: Vec<ChangeHash> =
                change.deps().iter().map(|h| ChangeHash::from(*h)).collect();
            // A dependency inside the unit must come earlier (it is in the
            // index by now); one outside is the verifier's to hold.
            opened.push(UnitChange {
                hash,
                actor,
                nonce,
                seq: change.seq(),
                deps,
                change,
            });
        }
        for (i, c) in opened.iter().enumerate() {
            if c.deps.iter().any(|d| index.get(d).is_some_and(|&j| j >= i)) {
                return Err(UnitError::NotCausal(c.hash));
            }
        }
        // Coverage: walk back from every signed head the unit holds.
        let mut covered = vec![false; opened.len()];
        let mut stack: Vec<usize> = self
            .statements
            .iter()
            .flat_map(|s| s.heads.iter())
            .filter_map(|h| index.get(h).copied())
            .collect();
        while let Some(i) = stack.pop() {
            if std::mem::replace(&mut covered[i], true) {
                continue;
            }
            stack.extend(opened[i].deps.iter().filter_map(|d| index.get(d).copied()));
        }
        if let Some(i) = covered.iter().position(|c| !c) {
            return Err(UnitError::Uncovered(opened[i].hash));
        }
        Ok(OpenedUnit {
            doc: self.doc,
            author: self.author,
            statements: self.statements,
            changes: opened,
        })
    }
}

#[cfg(test)]
mod tests;
