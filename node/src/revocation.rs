//! Revoking a key without erasing what the network accepted from it — the
//! one procedure `accordo admin revoke` (and `admin retire-anchor`, for an
//! anchor key) and the administrators' web page run.
//!
//! A revocation's cut keeps valid exactly the revoked key's changes the admin
//! holds when it signs. An admin that has not pulled the key's latest changes
//! would cut them off — history the relay had accepted and every office had
//! seen would vanish. So the procedure first brings the admin up to date
//! with every document (the admin role follows them all), signs the cut,
//! pushes it at once and pulls again to count what the key wrote
//! concurrently. It refuses when the relay cannot be reached; offline, it
//! revokes on local knowledge and says so.

use crate::admin::{self, AdminError};
use crate::client::{self, SharedReplica, SyncFailure};
use crate::replica::{Replica, ReplicaError};
use accordo_protocol::identity::NodeId;
use std::time::Duration;

/// What a revocation asks.
#[derive(Debug, Clone)]
pub struct Request {
    pub node: NodeId,
    /// Revoke on local knowledge without reaching the relay.
    pub offline: bool,
    pub timeout: Duration,
    pub now_ms: i64,
}

/// A revocation signed (and, unless offline, delivered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// The key's changes held when the cut was signed: they stay valid.
    pub kept: usize,
    /// Online: changes the key made concurrently, now refused everywhere.
    /// Offline: `None` (not known until the next sync).
    pub refused: Option<usize>,
    /// A local change rejected by the relay during the first pull (the
    /// pull itself completed).
    pub warning: Option<String>,
    /// Offline: the last contact with the relay (UNIX ms as stored), if any.
    pub last_contact: Option<String>,
}

/// Why a revocation was not done (or not delivered).
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Nothing signed: the admin could not pull first.
    #[error(
        "cannot revoke {node} now: {failure}. The revocation keeps valid only the changes of it this admin holds, \
         so it must first pull what the network accepted from that key. Retry when the relay is reachable, or \
         revoke offline (--offline) on local knowledge (changes of it this admin has not pulled become invalid)"
    )]
    Unreachable { node: NodeId, failure: SyncFailure },
    /// Nothing signed: the first sync failed for another reason.
    #[error("cannot revoke {node} now: the admin could not sync first: {failure}")]
    NotSynced { node: NodeId, failure: SyncFailure },
    /// Signed here but not delivered: the next sync delivers it.
    #[error("revoked {node} here, but the revocation is not delivered: {failure}; run `accordo sync` to deliver it")]
    Undelivered { node: NodeId, failure: SyncFailure },
    /// The statement itself was refused (not an admin, a pinned admin key…).
    #[error(transparent)]
    Admin(#[from] AdminError),
}

impl Refusal {
    /// The sync failure behind the refusal, for exit codes.
    pub fn sync_failure(&self) -> Option<&SyncFailure> {
        match self {
            Refusal::Unreachable { failure, .. }
            | Refusal::NotSynced { failure, .. }
            | Refusal::Undelivered { failure, .. } => Some(failure),
            Refusal::Admin(_) => None,
        }
    }
}

/// Which retirement the procedure signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retirement {
    /// `admin revoke`: a member or enrolled admin key.
    Revoke,
    /// `admin retire-anchor`: an anchor key (never the last active one).
    RetireAnchor,
}

/// Pulls (unless offline), signs the revocation, pushes it and counts what
/// it refused.
pub async fn revoke(shared: SharedReplica, req: Request) -> Result<Revoked, Refusal> {
    retire(shared, req, Retirement::Revoke).await
}

/// [`revoke`] for either kind of retirement: the same pull, cut, push and
/// count.
pub async fn retire(
    shared: SharedReplica,
    req: Request,
    what: Retirement,
) -> Result<Revoked, Refusal> {
    let node = req.node;
    let mut warning = None;
    if !req.offline {
        match client::sync_once(SharedReplica::clone(&shared), req.timeout).await {
            Ok(_) => {}
            // A rejected local change does not stop the pull: the admin is
            // up to date with the relay.
            Err(failure @ SyncFailure::Rejected(_)) => warning = Some(failure.to_string()),
            Err(failure @ SyncFailure::Unreachable { .. }) => {
                return Err(Refusal::Unreachable { node, failure })
            }
            Err(failure) => return Err(Refusal::NotSynced { node, failure }),
        }
    }
    let kept = {
        let mut r = lock(&shared);
        match what {
            Retirement::Revoke => admin::revoke(&mut r, node, req.now_ms)?.1,
            Retirement::RetireAnchor => admin::retire_anchor(&mut r, node, req.now_ms)?.1,
        }
    };
    if req.offline {
        let last_contact = lock(&shared)
            .store
            .meta(client::LAST_CONTACT_META)
            .map_err(|e| AdminError::Replica(ReplicaError::from(e)))?;
        return Ok(Revoked {
            kept,
            refused: None,
            warning,
            last_contact,
        });
    }
    if let Err(failure) = client::sync_once(SharedReplica::clone(&shared), req.timeout).await {
        return Err(Refusal::Undelivered { node, failure });
    }
    let refused = invalid_of(&mut lock(&shared), &node).map_err(AdminError::Replica)?;
    Ok(Revoked {
        kept,
        refused: Some(refused),
        warning,
        last_contact: None,
    })
}

/// How many held changes of `node` the registry now invalidates.
pub fn invalid_of(replica: &mut Replica, node: &NodeId) -> Result<usize, ReplicaError> {
    let verdict = replica.verdict()?;
    let metas = replica.held_metas()?;
    Ok(metas
        .iter()
        .filter(|m| m.author == *node && verdict.invalid.contains_key(&m.hash))
        .count())
}

fn lock(shared: &SharedReplica) -> std::sync::MutexGuard<'_, Replica> {
    // Invariant: poisoned only if a store call panicked, which is a bug.
    shared.lock().expect("replica mutex poisoned")
}
