//! The statements the registry is made of, and the views of a change the
//! derivation judges them from (its envelope fields, its header).

use super::invite::Invite;
use crate::codes::Istat;
use crate::doc::DocId;
use crate::envelope::{
    derive_actor, parse_change, ChangeHash, EnvelopeError, SignedChange, VerifiedChange,
    ACTOR_ID_BYTES,
};
use crate::identity::{NodeId, Role};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Prefix of the automerge message that carries a statement.
const STATEMENT_MESSAGE_PREFIX: &str = "accordo-statement-v1 ";

/// The comune code carried by admin members, which speak for no comune.
pub const ADMIN_COMUNE: &str = "000000";

pub fn admin_comune() -> Istat {
    // Invariant: the constant is six digits.
    ADMIN_COMUNE.parse().expect("ADMIN_COMUNE is a valid code")
}

/// The last valid sequence number of one actor of a retired key in one document.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CutEntry {
    pub doc: DocId,
    #[serde(with = "hex::serde")]
    pub actor: [u8; ACTOR_ID_BYTES],
    pub max_seq: u64,
}

/// Which of a retired key's changes remain valid: exactly those listed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cut(pub Vec<CutEntry>);

impl Cut {
    /// Whether change `seq` of `actor` in `doc` is inside the cut.
    pub fn holds(&self, doc: &DocId, actor: &[u8; ACTOR_ID_BYTES], seq: u64) -> bool {
        self.0
            .iter()
            .any(|e| e.doc == *doc && e.actor == *actor && seq <= e.max_seq)
    }

    /// The union of two cuts (the more generous bound per document and actor).
    pub(crate) fn union(&mut self, other: &Cut) {
        for entry in &other.0 {
            match self
                .0
                .iter_mut()
                .find(|e| e.doc == entry.doc && e.actor == entry.actor)
            {
                Some(e) => e.max_seq = e.max_seq.max(entry.max_seq),
                None => self.0.push(entry.clone()),
            }
        }
        self.0.sort();
    }
}

/// A role in the registry: the member roles plus administrators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistryRole {
    Comune,
    Metro,
    Admin,
}

impl RegistryRole {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistryRole::Comune => "comune",
            RegistryRole::Metro => "metro",
            RegistryRole::Admin => "admin",
        }
    }

    /// The member role, for roles that write documents.
    pub fn member_role(self) -> Option<Role> {
        match self {
            RegistryRole::Comune => Some(Role::Comune),
            RegistryRole::Metro => Some(Role::Metro),
            RegistryRole::Admin => None,
        }
    }
}

impl fmt::Display for RegistryRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RegistryRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "comune" => Ok(RegistryRole::Comune),
            "metro" => Ok(RegistryRole::Metro),
            "admin" => Ok(RegistryRole::Admin),
            other => Err(format!(
                "invalid role {other:?}: expected `comune`, `metro` or `admin`"
            )),
        }
    }
}

/// One registry statement, carried as the message of one registry change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Statement {
    /// Founds the network; signed by an anchor.
    Genesis {
        network: String,
        admins: Vec<NodeId>,
    },
    /// Enrolls a key for a comune and role; signed by an admin (by an
    /// anchor for the admin role).
    Enroll {
        node: NodeId,
        comune: Istat,
        role: RegistryRole,
    },
    /// Retires a key: its changes outside `cut` are invalid.
    Revoke { node: NodeId, cut: Cut },
    /// Signed by the old key: enrolls `new` with the same comune and role
    /// (an anchor's new key is an anchor) and retires the signer with `cut`.
    Rotate { new: NodeId, cut: Cut },
    /// Signed by the invited key: enrolls it as the invitation says.
    Redeem { invite: Invite },
    /// Announces a relay of the network; a relay key writes nothing.
    AddRelay { relay: NodeId, addr: String },
    /// Makes `node` an anchor (an admin that manages admins and anchors);
    /// signed by an anchor.
    AddAnchor { node: NodeId },
    /// Retires the anchor `node`: its changes outside `cut` are invalid.
    /// Signed by an anchor; never the last active one.
    RetireAnchor { node: NodeId, cut: Cut },
}

impl Statement {
    /// The automerge message carrying this statement.
    pub fn to_message(&self) -> String {
        // Invariant: statements are plain data that JSON encodes infallibly.
        let json = serde_json::to_string(self).expect("statement encodes");
        format!("{STATEMENT_MESSAGE_PREFIX}{json}")
    }

    pub fn from_message(message: &str) -> Result<Statement, String> {
        let json = message
            .strip_prefix(STATEMENT_MESSAGE_PREFIX)
            .ok_or("the change carries no registry statement")?;
        serde_json::from_str(json).map_err(|e| format!("malformed statement: {e}"))
    }

    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Statement::Genesis { .. } => "genesis",
            Statement::Enroll { .. } => "enroll",
            Statement::Revoke { .. } => "revoke",
            Statement::Rotate { .. } => "rotate",
            Statement::Redeem { .. } => "redeem",
            Statement::AddRelay { .. } => "add_relay",
            Statement::AddAnchor { .. } => "add_anchor",
            Statement::RetireAnchor { .. } => "retire_anchor",
        }
    }
}

/// A registry change as the derivation needs it.
#[derive(Debug, Clone)]
pub struct RegistryChange {
    pub hash: ChangeHash,
    pub author: NodeId,
    pub actor: [u8; ACTOR_ID_BYTES],
    pub seq: u64,
    pub deps: Vec<ChangeHash>,
    pub statement: Result<Statement, String>,
}

impl RegistryChange {
    pub fn from_verified(change: &VerifiedChange) -> RegistryChange {
        RegistryChange::from_meta(&ChangeMeta::of_verified(change))
    }

    pub fn from_meta(meta: &ChangeMeta) -> RegistryChange {
        RegistryChange {
            hash: meta.hash,
            author: meta.author,
            actor: meta.actor,
            seq: meta.seq,
            deps: meta.deps.clone(),
            statement: Statement::from_message(meta.message.as_deref().unwrap_or("")),
        }
    }
}

/// What judging a change needs from it: its envelope fields and header.
#[derive(Debug, Clone)]
pub struct ChangeMeta {
    pub doc: DocId,
    pub author: NodeId,
    pub actor: [u8; ACTOR_ID_BYTES],
    pub seq: u64,
    pub hash: ChangeHash,
    pub deps: Vec<ChangeHash>,
    pub message: Option<String>,
    /// Seconds since the epoch, as the author's clock said (informative only).
    pub time_s: i64,
}

impl ChangeMeta {
    pub fn of_verified(change: &VerifiedChange) -> ChangeMeta {
        ChangeMeta {
            doc: change.envelope.doc.clone(),
            author: change.envelope.author,
            actor: change.actor,
            seq: change.seq,
            hash: change.hash,
            deps: change.deps.clone(),
            message: change.change.message().map(str::to_owned),
            time_s: change.change.timestamp(),
        }
    }

    /// Parses a stored envelope without re-checking its signature: only for
    /// envelopes that were verified before they were stored.
    pub fn of_stored(env: &SignedChange) -> Result<ChangeMeta, EnvelopeError> {
        let change = parse_change(&env.change)?;
        Ok(ChangeMeta {
            doc: env.doc.clone(),
            author: env.author,
            actor: derive_actor(&env.author, &env.actor_nonce),
            seq: change.seq(),
            hash: ChangeHash::from(change.hash()),
            deps: change.deps().iter().map(|h| ChangeHash::from(*h)).collect(),
            message: change.message().map(str::to_owned),
            time_s: change.timestamp(),
        })
    }
}
