//! What an administrator's node does with the registry: found the network,
//! enroll, revoke, add and retire anchors, invite, list members; and what every governed node does
//! with it: redeem an invitation, rotate its key, verify its whole log.
//!
//! Statements are ordinary local edits of the registry document (signed,
//! queued in the outbox) until `sync` or `run` pushes them; the rules that
//! judge them live in `accordo_protocol::registry`.

use crate::clock::now_ms;
use crate::invitations;
use crate::replica::{Replica, ReplicaError, Settings};
use accordo_net::keyfile;
use accordo_protocol::codes::Istat;
use accordo_protocol::doc::DocId;
use accordo_protocol::envelope::{ChangeHash, SignedChange};
use accordo_protocol::identity::{NodeId, RelayAddr, Role};
use accordo_protocol::registry::{
    admin_comune, ChangeMeta, Cut, CutEntry, Invite, KeyStatus, Registry, RegistryRole, Statement,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    #[error("this node is not an admin of a governed network (its role is {0}); run `accordo admin init` for an admin directory")]
    NotAdmin(Role),
    #[error("{0}")]
    Refused(String),
}

/// Creates an admin directory: a key pinned as the network's admin and the
/// registry's genesis statement. Returns the replica (its id is the admin id).
pub fn init(
    dir: &std::path::Path,
    relay: RelayAddr,
    network: String,
    now_ms: i64,
) -> Result<Replica, AdminError> {
    let key = keyfile::generate().map_err(ReplicaError::from)?;
    let id = NodeId::from_signing_key(&key);
    let settings = Settings {
        comune: admin_comune(),
        role: Role::Admin,
        relay,
        network: network.clone(),
        anchors: vec![id],
    };
    let mut replica = Replica::init_with_key(dir, settings, key)?;
    replica.state(
        &Statement::Genesis {
            network,
            admins: vec![id],
        },
        now_ms,
    )?;
    Ok(replica)
}

/// Creates an admin directory for a network that already exists: a fresh
/// key that trusts `anchors` (the network's pinned anchors) and signs
/// nothing until an anchor adds it (`admin add-anchor`) or enrolls it.
pub fn join(
    dir: &std::path::Path,
    relay: RelayAddr,
    network: String,
    anchors: Vec<NodeId>,
) -> Result<Replica, AdminError> {
    if anchors.is_empty() {
        return Err(AdminError::Refused(
            "--anchor: name at least one anchor of the network to trust".into(),
        ));
    }
    let key = keyfile::generate().map_err(ReplicaError::from)?;
    let settings = Settings {
        comune: admin_comune(),
        role: Role::Admin,
        relay,
        network,
        anchors,
    };
    Ok(Replica::init_with_key(dir, settings, key)?)
}

fn require_admin(replica: &mut Replica) -> Result<Registry, AdminError> {
    let registry = replica.verdict()?.registry.clone();
    if replica.settings.role != Role::Admin || !registry.admits(&replica.id) {
        return Err(AdminError::NotAdmin(replica.settings.role));
    }
    if registry.member(&replica.id).map(|m| m.role) != Some(Role::Admin) {
        return Err(AdminError::NotAdmin(replica.settings.role));
    }
    Ok(registry)
}

/// Enrolls `node` for `comune` with `role`, after checking locally what the
/// registry would refuse anyway.
pub fn enroll(
    replica: &mut Replica,
    node: NodeId,
    comune: Istat,
    role: RegistryRole,
    now_ms: i64,
) -> Result<ChangeHash, AdminError> {
    let registry = require_admin(replica)?;
    if let Some(m) = registry.members.get(&node) {
        if m.status != KeyStatus::Active {
            return Err(AdminError::Refused(format!(
                "{node} was retired ({}) and cannot be enrolled again; enroll a new key",
                status_name(&m.status)
            )));
        }
        if m.comune.as_ref() == Some(&comune) && m.role == role {
            return Err(AdminError::Refused(format!(
                "{node} is already enrolled for {comune} as {role}"
            )));
        }
        return Err(AdminError::Refused(format!(
            "{node} is already enrolled as {} for {}; revoke it and enroll a new key",
            m.role,
            m.comune.as_ref().map_or("-", |c| c.as_str())
        )));
    }
    if role == RegistryRole::Admin && !registry.is_anchor(&replica.id) {
        return Err(AdminError::Refused(
            "only an anchor may enroll admins (`accordo admin members` shows which keys are anchors)"
                .into(),
        ));
    }
    Ok(replica.state(&Statement::Enroll { node, comune, role }, now_ms)?)
}

/// The cut for `node` drawn from everything this replica holds: per
/// document and actor, the last change of that key. Returns it with the
/// number of changes it keeps valid.
pub fn cut_for(replica: &mut Replica, node: &NodeId) -> Result<(Cut, usize), AdminError> {
    let metas = replica.held_metas()?;
    let mut last: BTreeMap<(DocId, [u8; 16]), u64> = BTreeMap::new();
    let mut kept = 0;
    for m in metas.iter().filter(|m| m.author == *node) {
        kept += 1;
        let e = last.entry((m.doc.clone(), m.actor)).or_default();
        *e = (*e).max(m.seq);
    }
    let cut = Cut(last
        .into_iter()
        .map(|((doc, actor), max_seq)| CutEntry {
            doc,
            actor,
            max_seq,
        })
        .collect());
    Ok((cut, kept))
}

/// Revokes `node`: the changes of it this admin holds stay valid, any other
/// is refused by every relay and node.
pub fn revoke(
    replica: &mut Replica,
    node: NodeId,
    now_ms: i64,
) -> Result<(ChangeHash, usize), AdminError> {
    let registry = require_admin(replica)?;
    if registry.was_anchor(&node) {
        return Err(AdminError::Refused(format!(
            "{node} is an anchor: an anchor key is retired with `accordo admin retire-anchor --key {node}`, not revoked"
        )));
    }
    let (cut, kept) = cut_for(replica, &node)?;
    let hash = replica.state(&Statement::Revoke { node, cut }, now_ms)?;
    Ok((hash, kept))
}

fn require_anchor(replica: &mut Replica) -> Result<Registry, AdminError> {
    let registry = require_admin(replica)?;
    if !registry.is_anchor(&replica.id) {
        return Err(AdminError::Refused(format!(
            "this node's key {} is an admin but not an anchor: only an anchor adds and retires anchors",
            replica.id
        )));
    }
    Ok(registry)
}

/// Makes `node` an anchor: a fresh key, or an admin already enrolled.
pub fn add_anchor(
    replica: &mut Replica,
    node: NodeId,
    now_ms: i64,
) -> Result<ChangeHash, AdminError> {
    let registry = require_anchor(replica)?;
    if registry.is_anchor(&node) {
        return Err(AdminError::Refused(format!("{node} is already an anchor")));
    }
    if let Some(m) = registry.members.get(&node) {
        if m.status != KeyStatus::Active {
            return Err(AdminError::Refused(format!(
                "{node} was retired ({}) and cannot become an anchor; add a new key",
                status_name(&m.status)
            )));
        }
        if m.role != RegistryRole::Admin {
            return Err(AdminError::Refused(format!(
                "{node} is enrolled as {}: an anchor is an admin key; add a new key",
                m.role
            )));
        }
    }
    if node.verifying_key().is_none() {
        return Err(AdminError::Refused(format!(
            "{node} is not a valid ed25519 key"
        )));
    }
    Ok(replica.state(&Statement::AddAnchor { node }, now_ms)?)
}

/// Retires the anchor `node` with the cut of everything of it this node
/// holds; refuses the last active anchor. Returns the statement and how many
/// of its changes stay valid.
pub fn retire_anchor(
    replica: &mut Replica,
    node: NodeId,
    now_ms: i64,
) -> Result<(ChangeHash, usize), AdminError> {
    let registry = require_anchor(replica)?;
    if !registry.was_anchor(&node) {
        return Err(AdminError::Refused(format!(
            "{node} is not an anchor; a key that is not an anchor is revoked with `accordo admin revoke`"
        )));
    }
    if !registry.is_anchor(&node) {
        return Err(AdminError::Refused(format!("{node} is already retired")));
    }
    if registry.anchors().len() < 2 {
        return Err(AdminError::Refused(format!(
            "{node} is the last active anchor: add another anchor (`accordo admin add-anchor`) before retiring it, so the network is never left without one"
        )));
    }
    let (cut, kept) = cut_for(replica, &node)?;
    let hash = replica.state(&Statement::RetireAnchor { node, cut }, now_ms)?;
    Ok((hash, kept))
}

/// Announces a relay of the network.
pub fn add_relay(
    replica: &mut Replica,
    relay: &RelayAddr,
    now_ms: i64,
) -> Result<ChangeHash, AdminError> {
    require_admin(replica)?;
    let statement = Statement::AddRelay {
        relay: relay.id,
        addr: relay.host_port.clone(),
    };
    Ok(replica.state(&statement, now_ms)?)
}

/// Signs an invitation for `comune` and `role`, valid until `expires_ms`,
/// and records it (with `issued_by`: `cli` or `user:NAME`) so it can be
/// listed with its state ([`crate::invitations`]).
pub fn invite(
    replica: &mut Replica,
    comune: Istat,
    role: Role,
    expires_ms: i64,
    issued_by: &str,
) -> Result<String, AdminError> {
    require_admin(replica)?;
    if role == Role::Admin {
        return Err(AdminError::Refused(
            "--role: an invitation enrolls a comune or metro key, not an admin".into(),
        ));
    }
    let mut nonce = [0u8; 16];
    getrandom::fill(&mut nonce).map_err(|e| ReplicaError::Random(e.to_string()))?;
    // The invitee pins what this node pins, so an invitation signed by an
    // anchor added later (or an enrolled admin) trusts the same anchors.
    let invite = Invite::sign_pinning(
        &replica.key,
        &replica.settings.network,
        &replica.settings.relay,
        comune,
        role,
        expires_ms,
        nonce,
        replica.settings.anchors.clone(),
    );
    let token = invite.to_token();
    invitations::record(&mut replica.store, &invite, &token, issued_by, now_ms())
        .map_err(ReplicaError::from)?;
    Ok(token)
}

/// Signs a rotation to `new` with this replica's (old) key, with the cut
/// drawn from what it holds of its own changes.
pub fn rotation(replica: &mut Replica, new: NodeId, now_ms: i64) -> Result<ChangeHash, AdminError> {
    let me = replica.id;
    let registry = replica.verdict()?.registry.clone();
    match registry.members.get(&me).map(|m| &m.status) {
        Some(KeyStatus::Active) => {}
        Some(other) => {
            return Err(AdminError::Refused(format!(
                "this key was already retired ({})",
                status_name(other)
            )))
        }
        None => {
            return Err(AdminError::Refused(
                "this key is not enrolled in the registry this node holds; sync first".into(),
            ))
        }
    }
    let (cut, _) = cut_for(replica, &me)?;
    Ok(replica.state(&Statement::Rotate { new, cut }, now_ms)?)
}

fn stored_meta(doc: &DocId, env: &SignedChange) -> Result<ChangeMeta, ReplicaError> {
    ChangeMeta::of_stored(env).map_err(|e| ReplicaError::Load {
        doc: doc.clone(),
        detail: e.to_string(),
    })
}

pub fn status_name(status: &KeyStatus) -> &'static str {
    match status {
        KeyStatus::Active => "active",
        KeyStatus::Revoked { .. } => "revoked",
        KeyStatus::Rotated { .. } => "rotated",
    }
}

/// Every key the registry knows, as JSON rows.
pub fn members_json(registry: &Registry) -> Vec<Value> {
    registry
        .members
        .values()
        .map(|m| {
            let mut row = json!({
                "node": m.node.to_string(),
                "comune": m.comune.as_ref().map(|c| c.as_str()),
                "role": m.role.as_str(),
                "status": status_name(&m.status),
                "pinned": registry.pinned.contains(&m.node),
                "anchor": registry.is_anchor(&m.node),
            });
            if let KeyStatus::Rotated { to, .. } = &m.status {
                row["rotated_to"] = json!(to.to_string());
            }
            if let KeyStatus::Revoked { by, .. } = &m.status {
                row["revoked_by"] = json!(by.iter().map(NodeId::to_string).collect::<Vec<_>>());
            }
            row
        })
        .chain(registry.relays.iter().map(|(id, addr)| {
            json!({"node": id.to_string(), "comune": null, "role": "relay", "status": "active", "addr": addr, "pinned": false, "anchor": false})
        }))
        .collect()
}

/// One problem `verify` found.
#[derive(Debug, serde::Serialize)]
pub struct Finding {
    pub doc: String,
    pub hash: String,
    pub author: String,
    pub problem: String,
}

/// Re-verifies every stored envelope (signature, actor binding) and, on a
/// governed node, judges every change against the registry.
pub fn verify(replica: &mut Replica) -> Result<(usize, Vec<Finding>), AdminError> {
    let envelopes: Vec<(DocId, SignedChange)> = replica.store.read(|tx| {
        let log = tx.log();
        let mut all = Vec::new();
        for (doc, _) in log.docs()? {
            all.extend(log.doc_changes(&doc)?.into_iter().map(|e| (doc.clone(), e)));
        }
        Ok::<_, ReplicaError>(all)
    })?;
    let mut findings = Vec::new();
    let mut authors = BTreeMap::new();
    for (doc, env) in &envelopes {
        let meta = stored_meta(doc, env)?;
        authors.insert(meta.hash, (doc.to_string(), env.author.to_string()));
        if let Err(e) = env.clone().verify() {
            findings.push(Finding {
                doc: doc.to_string(),
                hash: meta.hash.to_string(),
                author: env.author.to_string(),
                problem: format!("envelope: {e}"),
            });
        }
    }
    let mut by_doc: BTreeMap<DocId, Vec<SignedChange>> = BTreeMap::new();
    for (doc, env) in &envelopes {
        by_doc.entry(doc.clone()).or_default().push(env.clone());
    }
    for (doc, changes) in &by_doc {
        let (_, refused) = crate::replica::load_doc_reporting(doc, changes)?;
        findings.extend(refused.iter().map(|r| Finding {
            doc: doc.to_string(),
            hash: r.change.to_string(),
            author: r.author.to_string(),
            problem: r.to_string(),
        }));
    }
    if replica.governed() {
        let verdict = replica.verdict()?;
        for (hash, reason) in &verdict.invalid {
            let (doc, author) = authors.get(hash).cloned().unwrap_or_default();
            findings.push(Finding {
                doc,
                hash: hash.to_string(),
                author,
                problem: reason.clone(),
            });
        }
    }
    Ok((envelopes.len(), findings))
}
