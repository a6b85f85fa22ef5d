//! Write authority: which member keys may write which document.
//!
//! A comune document accepts changes only from keys admitted for that comune;
//! the plan only from metro keys. Every member may read every document. The
//! membership itself comes from the relay's allowlist today and from the
//! signed registry later; both plug in through [`Membership`].

use crate::codes::Istat;
use crate::doc::DocId;
use crate::envelope::VerifiedChange;
use crate::identity::{NodeId, Role};
use serde::{Deserialize, Serialize};

/// An admitted key, the comune it speaks for and its role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub node: NodeId,
    pub comune: Istat,
    pub role: Role,
}

/// Looks up who a key is and judges its changes. Implemented by the relay's
/// local allowlist, by the signed registry and by test maps.
pub trait Membership {
    fn member(&self, node: &NodeId) -> Option<Member>;

    /// Whether `change` may be stored: by default, its author is a member
    /// allowed to write its document.
    fn authorize(&self, change: &VerifiedChange) -> Result<(), AuthorityError> {
        check_write(self, &change.envelope.author, &change.envelope.doc)
    }
}

impl Membership for std::collections::BTreeMap<NodeId, Member> {
    fn member(&self, node: &NodeId) -> Option<Member> {
        self.get(node).cloned()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum AuthorityError {
    #[error("author {0} is not an admitted member")]
    NotMember(NodeId),
    #[error("author {author} speaks for comune {comune} and may not write {doc}")]
    WrongComune {
        author: NodeId,
        comune: Istat,
        doc: DocId,
    },
    #[error("author {0} is not a metro key and may not write the plan")]
    NotMetro(NodeId),
    #[error("author {0} may not write the registry: only admin statements go there")]
    NotAdmin(NodeId),
    #[error("author {0} was retired (revoked or rotated) and this change is after its cut")]
    Retired(NodeId),
    #[error("registry statement refused: {0}")]
    Statement(String),
}

impl Member {
    /// Whether this member may write `doc`.
    pub fn check_write(&self, doc: &DocId) -> Result<(), AuthorityError> {
        match doc {
            DocId::Plan if self.role == Role::Metro => Ok(()),
            DocId::Comune(_) if self.role == Role::Admin => {
                Err(AuthorityError::NotAdmin(self.node))
            }
            DocId::Plan => Err(AuthorityError::NotMetro(self.node)),
            DocId::Registry if self.role == Role::Admin => Ok(()),
            DocId::Registry => Err(AuthorityError::NotAdmin(self.node)),
            DocId::Comune(c) if *c == self.comune => Ok(()),
            DocId::Comune(_) => Err(AuthorityError::WrongComune {
                author: self.node,
                comune: self.comune.clone(),
                doc: doc.clone(),
            }),
        }
    }

    /// The documents this member follows by default: its own and the plan,
    /// or, for the metropolitan office, everything.
    pub fn follows_all(&self) -> bool {
        matches!(self.role, Role::Metro | Role::Admin)
    }
}

/// Checks `author` may write `doc` under `membership`.
pub fn check_write<M: Membership + ?Sized>(
    membership: &M,
    author: &NodeId,
    doc: &DocId,
) -> Result<(), AuthorityError> {
    membership
        .member(author)
        .ok_or(AuthorityError::NotMember(*author))?
        .check_write(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(seed: u8, comune: &str, role: Role) -> Member {
        Member {
            node: NodeId([seed; 32]),
            comune: comune.parse().unwrap(),
            role,
        }
    }

    #[test]
    fn comune_writes_only_its_own_document() {
        let m = member(1, "092009", Role::Comune);
        assert!(m
            .check_write(&DocId::Comune("092009".parse().unwrap()))
            .is_ok());
        assert!(matches!(
            m.check_write(&DocId::Comune("092051".parse().unwrap())),
            Err(AuthorityError::WrongComune { .. })
        ));
        assert!(matches!(
            m.check_write(&DocId::Plan),
            Err(AuthorityError::NotMetro(_))
        ));
    }

    #[test]
    fn metro_writes_the_plan_and_its_own_comune_only() {
        let m = member(2, "092009", Role::Metro);
        assert!(m.check_write(&DocId::Plan).is_ok());
        assert!(m
            .check_write(&DocId::Comune("092009".parse().unwrap()))
            .is_ok());
        assert!(m
            .check_write(&DocId::Comune("092051".parse().unwrap()))
            .is_err());
    }

    #[test]
    fn unknown_keys_write_nothing() {
        let map = std::collections::BTreeMap::new();
        assert_eq!(
            check_write(&map, &NodeId([9; 32]), &DocId::Plan),
            Err(AuthorityError::NotMember(NodeId([9; 32])))
        );
    }
}
