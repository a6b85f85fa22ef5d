//! The metropolitan office's decision on a comune's project: public,
//! draft, or left to the comune's own flag (`project publish --comune`,
//! the metro's project page). Written in the plan document, which only
//! the metropolitan office writes; see [`accordo_domain::publication`].

use super::project::{locate, Target};
use super::{Author, OpError};
use crate::clock::now_ms;
use crate::replica::{Replica, ReplicaError};
use accordo_domain::publication::{self, Decision};
use accordo_protocol::codes::Istat;
use accordo_protocol::doc::DocId;
use accordo_protocol::identity::Role;

/// Where a project stands: the comune's own flag, the office's decision
/// and what follows from both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publication {
    pub own: bool,
    pub decision: Decision,
    pub public: bool,
}

impl Publication {
    pub fn new(own: bool, decision: Decision) -> Self {
        Publication {
            own,
            decision,
            public: decision.effective(own),
        }
    }
}

/// Records the metropolitan office's `decision` on the project of comune
/// `comune` named by `target`. Returns the project's id and whether
/// anything changed.
pub fn decide(
    replica: &mut Replica,
    comune: &Istat,
    target: &Target,
    decision: Decision,
    author: &Author,
) -> Result<(String, bool), OpError> {
    if replica.settings.role != Role::Metro {
        return Err(OpError::Refused(format!(
            "publication decisions for the comuni are the metropolitan office's; this node is {} \
             (a comune publishes its own projects with `project publish` without --comune)",
            replica.settings.role
        )));
    }
    let id = locate(replica, &DocId::Comune(comune.clone()), target)?;
    let istat = comune.as_str().to_owned();
    let pid = id.clone();
    let (changed, _) = replica.edit_as(&DocId::Plan, now_ms(), author.message(), |d| {
        publication::decide(d, &istat, &pid, decision)
            .map_err(|e| ReplicaError::Edit(e.to_string()))
    })?;
    Ok((id, changed))
}

/// Where project `id` of comune `comune` stands, from the query store.
pub fn read(replica: &mut Replica, comune: &Istat, id: &str) -> Result<Publication, OpError> {
    let target = Target {
        cup: None,
        id: Some(id.to_owned()),
    };
    locate(replica, &DocId::Comune(comune.clone()), &target)?;
    let (own, decision) =
        replica.query(|tx| crate::views::public::publication(tx, comune.as_str(), id))?;
    Ok(Publication::new(own, decision))
}
