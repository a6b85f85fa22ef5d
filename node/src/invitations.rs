//! The invitations an admin node signed, kept so they can be listed with
//! their state: pending (still redeemable), redeemed (by which key — read
//! from the registry, where the redemption is a signed statement) or
//! expired. The record is local to the admin node and never synced: a
//! token is a bearer secret until it is redeemed.

use crate::replica::{Replica, ReplicaError};
use crate::store::NodeStore;
use accordo_protocol::identity::NodeId;
use accordo_protocol::registry::Invite;
use accordo_store::StoreError;
use rusqlite::params;
use serde::Serialize;

/// Where an invitation stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum InvitationState {
    /// Not redeemed and not expired: the token still enrolls whoever uses it first.
    Pending,
    /// Redeemed: the key it enrolled.
    Redeemed {
        #[serde(serialize_with = "as_text")]
        by: NodeId,
    },
    /// Not redeemed before it expired.
    Expired,
}

impl InvitationState {
    pub fn name(&self) -> &'static str {
        match self {
            InvitationState::Pending => "pending",
            InvitationState::Redeemed { .. } => "redeemed",
            InvitationState::Expired => "expired",
        }
    }
}

fn as_text<S: serde::Serializer>(id: &NodeId, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
}

/// One signed invitation, as listed.
#[derive(Debug, Clone, Serialize)]
pub struct Invitation {
    /// The invitation's nonce in hex: what names it in the registry.
    pub id: String,
    pub comune: String,
    pub role: String,
    pub created_ms: i64,
    pub expires_ms: i64,
    /// Who signed it here: `cli`, or `user:NAME` from the web application.
    pub issued_by: String,
    #[serde(flatten)]
    pub state: InvitationState,
    /// The token, while it can still be used (pending); `None` otherwise.
    pub token: Option<String>,
}

/// Keeps the record of an invitation just signed.
pub fn record(
    store: &mut NodeStore,
    invite: &Invite,
    token: &str,
    issued_by: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    store.write(|tx| {
        tx.sql().execute(
            "INSERT OR REPLACE INTO admin_invitations
               (nonce, comune, role, expires_ms, created_ms, issued_by, token)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                invite.nonce.as_slice(),
                invite.comune.as_str(),
                invite.role.to_string(),
                invite.expires_ms,
                now_ms,
                issued_by,
                token
            ],
        )?;
        Ok(())
    })
}

/// Every invitation this node signed, newest first, with its state judged
/// against the registry this node holds and the time `now_ms`.
pub fn list(replica: &mut Replica, now_ms: i64) -> Result<Vec<Invitation>, ReplicaError> {
    type Row = (Vec<u8>, String, String, i64, i64, String, String);
    let rows: Vec<Row> = replica.store.read(|tx| {
        let mut stmt = tx.sql().prepare(
            "SELECT nonce, comune, role, expires_ms, created_ms, issued_by, token
             FROM admin_invitations ORDER BY created_ms DESC, nonce",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, StoreError>(rows)
    })?;
    let registry = replica.verdict()?.registry.clone();
    Ok(rows
        .into_iter()
        .map(
            |(nonce, comune, role, expires_ms, created_ms, issued_by, token)| {
                let redeemed = <[u8; 16]>::try_from(nonce.as_slice())
                    .ok()
                    .and_then(|n| registry.redeemed.get(&n).copied());
                let state = match redeemed {
                    Some(by) => InvitationState::Redeemed { by },
                    None if expires_ms < now_ms => InvitationState::Expired,
                    None => InvitationState::Pending,
                };
                let token = (state == InvitationState::Pending).then_some(token);
                Invitation {
                    id: hex::encode(&nonce),
                    comune,
                    role,
                    created_ms,
                    expires_ms,
                    issued_by,
                    state,
                    token,
                }
            },
        )
        .collect())
}
