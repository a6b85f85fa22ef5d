//! The signed member registry: who may write what, decided the same way by
//! every relay and node, whatever order they learn things in.
//!
//! The registry is one more document ([`DocId::Registry`]) whose changes
//! travel in ordinary signed envelopes; each change carries exactly one
//! [`Statement`] as its automerge message. The registry's state is a pure
//! function of the set of statements held and of the anchor keys the
//! verifier pinned at init ([`Registry::derive`]):
//!
//! 1. Statements are visited in a canonical topological order of their
//!    change graph (dependencies first, ties broken by change hash), so two
//!    verifiers holding the same set derive the same state.
//! 2. Anchors manage admin keys and the anchor set. A verifier pins anchor
//!    keys at init and follows the chain from them: an anchor (pinned, or
//!    made one by a valid add-anchor or anchor rotation in the statement's
//!    causal past, and not retired before it) may add an anchor and retire
//!    one with a cut, never the last active one. The anchor set is settled
//!    first (phase 0, [`Registry::derive`]), then admin keys, then every
//!    revocation, then everything else, so that every *cut* is known before
//!    any statement that a cut could invalidate is judged: a key revoked
//!    concurrently with a rotation cannot escape the revocation by the
//!    rotation. Two anchors retiring each other concurrently: the retirement
//!    first in the canonical order stands, the other is by a retired key.
//! 3. Revocation is causal: a revoke, retire-anchor or rotate statement lists, per
//!    document and actor, the last sequence number of the key's changes the
//!    issuer held. Those changes stay valid; every later one is invalid, on
//!    every verifier, including changes made offline concurrently with the
//!    revocation.
//! 4. A key is enrolled once: a different enrollment of an enrolled key, a
//!    re-enrollment of a retired key and a second redemption of an invitation
//!    are invalid, with the reason recorded.

mod anchors;
mod graph;
mod invite;
mod statement;
mod verdict;

pub use invite::{Invite, InviteError, INVITE_TOKEN_PREFIX, INVITE_TOKEN_V2_PREFIX};
pub use statement::{
    admin_comune, ChangeMeta, Cut, CutEntry, RegistryChange, RegistryRole, Statement, ADMIN_COMUNE,
};
pub use verdict::{judge, Verdict};

use crate::authority::{AuthorityError, Member, Membership};
use crate::codes::Istat;
use crate::doc::DocId;
use crate::envelope::{ChangeHash, VerifiedChange, ACTOR_ID_BYTES};
use crate::identity::{NodeId, Role};
use graph::{canonical_order, Graph};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Whether a member key may still write, and if retired, what stays valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum KeyStatus {
    Active,
    Revoked { cut: Cut, by: Vec<NodeId> },
    Rotated { cut: Cut, to: NodeId },
}

/// One key known to the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistryMember {
    pub node: NodeId,
    pub comune: Option<Istat>,
    pub role: RegistryRole,
    pub status: KeyStatus,
    /// The change that enrolled the key (none for pinned admins).
    pub enrolled_by: Option<ChangeHash>,
}

/// The derived state of the registry.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// The anchor keys the verifier pinned at init: where its trust starts.
    pub pinned: BTreeSet<NodeId>,
    pub network: Option<String>,
    pub members: BTreeMap<NodeId, RegistryMember>,
    pub relays: BTreeMap<NodeId, String>,
    /// Invitation nonce → the key that redeemed it.
    pub redeemed: BTreeMap<[u8; 16], NodeId>,
    /// Statements judged invalid, with the reason.
    pub invalid: BTreeMap<ChangeHash, String>,
    /// Every valid statement's change hash.
    pub valid: BTreeSet<ChangeHash>,
    /// Every key that is or was an anchor: pinned, or made one by a valid
    /// statement (add-anchor, or an anchor's rotation to it).
    anchor_keys: BTreeMap<NodeId, AnchorEntry>,
    /// Revoked keys: the union of their revocation cuts and who revoked them.
    revoked: BTreeMap<NodeId, (Cut, Vec<NodeId>)>,
    /// Rotated keys: the rotation's cut and the new key.
    rotated: BTreeMap<NodeId, (Cut, NodeId)>,
}

/// Which changes a step of the derivation judges, asked at each change's turn.
type Selects<'a> = dyn Fn(&Registry, usize) -> bool + 'a;

/// How a key became an anchor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct AnchorEntry {
    pinned: bool,
    /// The valid statements that made it one (an anchor's statement counts
    /// only if one of them is in its causal past).
    added_by: Vec<ChangeHash>,
}

impl Registry {
    /// An empty registry trusting `anchors` (the admin keys pinned at init).
    pub fn new(anchors: impl IntoIterator<Item = NodeId>) -> Registry {
        let pinned: BTreeSet<NodeId> = anchors.into_iter().collect();
        let members = pinned
            .iter()
            .map(|a| {
                let m = RegistryMember {
                    node: *a,
                    comune: None,
                    role: RegistryRole::Admin,
                    status: KeyStatus::Active,
                    enrolled_by: None,
                };
                (*a, m)
            })
            .collect();
        let anchor_keys = pinned
            .iter()
            .map(|a| {
                let entry = AnchorEntry {
                    pinned: true,
                    added_by: Vec::new(),
                };
                (*a, entry)
            })
            .collect();
        Registry {
            pinned,
            members,
            anchor_keys,
            ..Registry::default()
        }
    }

    /// Whether `node` is an anchor now: pinned or added, and not retired.
    pub fn is_anchor(&self, node: &NodeId) -> bool {
        self.anchor_keys.contains_key(node)
            && !self.revoked.contains_key(node)
            && !self.rotated.contains_key(node)
    }

    /// Whether `node` is or ever was an anchor (a retired anchor stays one
    /// for the rules: it is retired with retire-anchor, never revoked).
    pub fn was_anchor(&self, node: &NodeId) -> bool {
        self.anchor_keys.contains_key(node)
    }

    /// The anchors now: every anchor key not retired.
    pub fn anchors(&self) -> BTreeSet<NodeId> {
        self.anchor_keys
            .keys()
            .filter(|a| self.is_anchor(a))
            .copied()
            .collect()
    }

    /// Derives the registry from every registry change held.
    pub fn derive(anchors: impl IntoIterator<Item = NodeId>, changes: &[RegistryChange]) -> Self {
        let pinned: BTreeSet<NodeId> = anchors.into_iter().collect();
        let order = canonical_order(changes);
        let graph = Graph::new(changes);
        // Phase 0: the anchor set, followed from the pinned keys.
        let (mut reg, mut judged) = Registry::settle_anchors(&pinned, &graph, &order);
        // Phase 1: admin keys. Enrollments of admins (anchors only), every
        // anchor's revocation, then admins' own rotations, so a rotation is
        // judged against every cut an anchor stated for its key.
        let phase_1: [&Selects<'_>; 3] = [
            &|_, i| matches!(&changes[i].statement, Ok(Statement::Enroll { role, .. }) if *role == RegistryRole::Admin),
            &|reg, i| {
                matches!(changes[i].statement, Ok(Statement::Revoke { .. }))
                    && reg.anchor_authority(&graph, i).is_ok()
            },
            &|reg, i| {
                matches!(changes[i].statement, Ok(Statement::Rotate { .. }))
                    && reg.is_admin_key(&changes[i].author)
            },
        ];
        for selects in phase_1 {
            reg.judge_where(&graph, &order, &mut judged, selects);
        }
        // Phase 2: every other revocation, now that admin authority is
        // settled. A revocation needs no enrollment to refer to: it retires
        // the key whenever and however the key is enrolled.
        reg.judge_where(&graph, &order, &mut judged, &|_, i| {
            matches!(changes[i].statement, Ok(Statement::Revoke { .. }))
        });
        // Phase 3: everything else, judged against every revocation cut.
        reg.judge_where(&graph, &order, &mut judged, &|_, _| true);
        for c in changes {
            if !reg.valid.contains(&c.hash) && !reg.invalid.contains_key(&c.hash) {
                reg.invalid
                    .insert(c.hash, "its dependencies are not all held".into());
            }
        }
        reg.settle_statuses();
        reg
    }

    /// Judges, in canonical order, every change not yet judged that
    /// `selects` picks (asked when the change's turn comes).
    fn judge_where(
        &mut self,
        graph: &Graph<'_>,
        order: &[usize],
        judged: &mut [bool],
        selects: &Selects<'_>,
    ) {
        for &i in order {
            if !judged[i] && selects(self, i) {
                judged[i] = true;
                let outcome = self.apply(graph, i);
                self.record(graph.changes[i].hash, outcome);
            }
        }
    }

    /// Writes each member's final status from the revocations and rotations.
    fn settle_statuses(&mut self) {
        for (node, m) in self.members.iter_mut() {
            m.status = match (self.revoked.get(node), self.rotated.get(node)) {
                (Some((cut, by)), _) => KeyStatus::Revoked {
                    cut: cut.clone(),
                    by: by.clone(),
                },
                (None, Some((cut, to))) => KeyStatus::Rotated {
                    cut: cut.clone(),
                    to: *to,
                },
                (None, None) => KeyStatus::Active,
            };
        }
    }

    /// Whether change `seq` of `actor` in `doc` by `node` is inside every cut
    /// that retired the key (revocations and a rotation), if any.
    pub fn key_in_time(
        &self,
        node: &NodeId,
        doc: &DocId,
        actor: &[u8; ACTOR_ID_BYTES],
        seq: u64,
    ) -> bool {
        let revoked = self
            .revoked
            .get(node)
            .is_none_or(|(cut, _)| cut.holds(doc, actor, seq));
        let rotated = self
            .rotated
            .get(node)
            .is_none_or(|(cut, _)| cut.holds(doc, actor, seq));
        revoked && rotated
    }

    fn record(&mut self, hash: ChangeHash, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => {
                self.valid.insert(hash);
            }
            Err(reason) => {
                self.invalid.insert(hash, reason);
            }
        }
    }

    fn is_admin_key(&self, node: &NodeId) -> bool {
        self.members
            .get(node)
            .is_some_and(|m| m.role == RegistryRole::Admin)
    }

    /// Whether `author` acts as an anchor in change `i`: pinned, or made an
    /// anchor by a valid statement in the change's causal past; and in time
    /// (inside its cut, if it was retired).
    fn anchor_authority(&self, graph: &Graph<'_>, i: usize) -> Result<(), String> {
        let c = &graph.changes[i];
        let entry = self
            .anchor_keys
            .get(&c.author)
            .ok_or_else(|| format!("{} is not an anchor", c.author))?;
        let since = entry.pinned
            || entry
                .added_by
                .iter()
                .any(|h| *h != c.hash && graph.precedes(h, i));
        if !since {
            return Err(format!(
                "{} was not an anchor when it signed this statement",
                c.author
            ));
        }
        self.in_time(c)
    }

    /// Whether `author` acts as an admin in change `i`: as an anchor, or
    /// enrolled as admin by a valid statement in the change's causal past,
    /// and in time.
    fn admin_authority(&self, graph: &Graph<'_>, i: usize) -> Result<(), String> {
        let c = &graph.changes[i];
        let as_anchor = self.anchor_authority(graph, i);
        if as_anchor.is_ok() {
            return as_anchor;
        }
        let member = self
            .members
            .get(&c.author)
            .filter(|m| m.role == RegistryRole::Admin && m.enrolled_by.is_some());
        let Some(member) = member else {
            return match self.anchor_keys.get(&c.author) {
                Some(_) => as_anchor,
                None => Err(format!("{} is not an admin", c.author)),
            };
        };
        let enrolled_before = member
            .enrolled_by
            .is_some_and(|h| h != c.hash && graph.precedes(&h, i));
        if !enrolled_before {
            return Err(format!(
                "{} was not an admin when it signed this statement",
                c.author
            ));
        }
        self.in_time(c)
    }

    /// Whether the author's change is within its cut, if it was retired.
    fn in_time(&self, c: &RegistryChange) -> Result<(), String> {
        if self.key_in_time(&c.author, &DocId::Registry, &c.actor, c.seq) {
            Ok(())
        } else {
            Err(format!(
                "{} was retired before this statement (outside its cut)",
                c.author
            ))
        }
    }

    /// Whether `author`'s enrollment is in the causal past of change `i`.
    fn member_authority(&self, graph: &Graph<'_>, i: usize) -> Result<&RegistryMember, String> {
        let c = &graph.changes[i];
        let member = self
            .members
            .get(&c.author)
            .ok_or_else(|| format!("{} is not an enrolled key", c.author))?;
        let known = member
            .enrolled_by
            .is_some_and(|h| h != c.hash && graph.precedes(&h, i));
        if !known {
            return Err(format!(
                "{} was not enrolled when it signed this statement",
                c.author
            ));
        }
        self.in_time(c)?;
        Ok(member)
    }

    /// Judges change `i` and applies it if valid.
    fn apply(&mut self, graph: &Graph<'_>, i: usize) -> Result<(), String> {
        let c = &graph.changes[i];
        let statement = c.statement.clone()?;
        let label = statement.kind();
        self.apply_statement(graph, i, statement)
            .map_err(|e| format!("{label}: {e}"))
    }

    fn apply_statement(
        &mut self,
        graph: &Graph<'_>,
        i: usize,
        statement: Statement,
    ) -> Result<(), String> {
        let c = &graph.changes[i];
        match statement {
            Statement::Genesis { network, .. } => {
                self.anchor_authority(graph, i)?;
                match &self.network {
                    Some(n) if *n != network => {
                        Err(format!("network {network:?} contradicts {n:?}"))
                    }
                    _ => {
                        self.network = Some(network);
                        Ok(())
                    }
                }
            }
            Statement::Enroll { node, comune, role } => {
                if role == RegistryRole::Admin {
                    self.anchor_authority(graph, i)
                        .map_err(|e| format!("only an anchor may enroll admins ({e})"))?;
                }
                self.admin_authority(graph, i)?;
                self.enroll(node, Some(comune), role, c.hash)
            }
            Statement::Revoke { node, cut } => {
                if self.was_anchor(&node) {
                    return Err(format!(
                        "{node} is an anchor: an anchor is retired with retire_anchor, not revoked"
                    ));
                }
                if self.is_admin_key(&node) {
                    self.anchor_authority(graph, i)
                        .map_err(|e| format!("only an anchor may revoke an admin ({e})"))?;
                }
                self.admin_authority(graph, i)?;
                self.retire(&node, cut, Retirement::Revoked(c.author))
            }
            Statement::Rotate { new, cut } => self.rotate(graph, i, new, cut),
            Statement::Redeem { invite } => self.redeem(graph, i, invite),
            Statement::AddRelay { relay, addr } => {
                self.admin_authority(graph, i)?;
                self.relays.insert(relay, addr);
                Ok(())
            }
            Statement::AddAnchor { node } => {
                self.anchor_authority(graph, i)?;
                self.add_anchor(node, c.hash)
            }
            Statement::RetireAnchor { node, cut } => {
                self.anchor_authority(graph, i)?;
                if !self.was_anchor(&node) {
                    return Err(format!(
                        "{node} is not an anchor (a key that is not an anchor is revoked)"
                    ));
                }
                if self.anchors().iter().all(|a| *a == node) {
                    return Err(format!(
                        "{node} is the last active anchor: add another anchor before retiring it, so the network is never left without one"
                    ));
                }
                self.retire(&node, cut, Retirement::Revoked(c.author))
            }
        }
    }

    /// A key's rotation, signed by the old key: the new key takes its
    /// comune, role and (for an anchor) anchor authority; the old one is
    /// retired with `cut` and the rotation itself.
    fn rotate(&mut self, graph: &Graph<'_>, i: usize, new: NodeId, cut: Cut) -> Result<(), String> {
        let c = &graph.changes[i];
        let anchor = self.anchor_keys.contains_key(&c.author);
        let (comune, role) = if anchor {
            self.anchor_authority(graph, i)?;
            let m = self.members.get(&c.author);
            (m.and_then(|m| m.comune.clone()), RegistryRole::Admin)
        } else {
            let member = self.member_authority(graph, i)?;
            (member.comune.clone(), member.role)
        };
        if self.members.contains_key(&new) || self.was_anchor(&new) {
            return Err(format!("the new key {new} is already known"));
        }
        if new.verifying_key().is_none() {
            return Err(format!("{new} is not a valid ed25519 key"));
        }
        let mut cut = cut;
        // The rotate statement itself is the old key's last valid change.
        cut.union(&Cut(vec![CutEntry {
            doc: DocId::Registry,
            actor: c.actor,
            max_seq: c.seq,
        }]));
        self.retire(&c.author, cut, Retirement::Rotated(new))?;
        self.enroll(new, comune, role, c.hash)?;
        if anchor {
            self.anchor_keys.insert(
                new,
                AnchorEntry {
                    pinned: false,
                    added_by: vec![c.hash],
                },
            );
        }
        Ok(())
    }

    /// Makes `node` an anchor: a new key, or an admin already enrolled.
    fn add_anchor(&mut self, node: NodeId, by: ChangeHash) -> Result<(), String> {
        if self.revoked.contains_key(&node) || self.rotated.contains_key(&node) {
            return Err(format!("{node} was retired and cannot become an anchor"));
        }
        match self.members.get(&node) {
            Some(m) if m.role != RegistryRole::Admin => {
                return Err(format!(
                    "{node} is enrolled as {}: an anchor is an admin key",
                    m.role
                ))
            }
            Some(_) => {}
            None => self.enroll(node, None, RegistryRole::Admin, by)?,
        }
        let entry = self.anchor_keys.entry(node).or_default();
        if !entry.added_by.contains(&by) {
            entry.added_by.push(by);
        }
        Ok(())
    }

    fn redeem(&mut self, graph: &Graph<'_>, i: usize, invite: Invite) -> Result<(), String> {
        let c = &graph.changes[i];
        invite.verify_signature().map_err(|e| e.to_string())?;
        if !self.is_admin_key(&invite.admin) {
            return Err(InviteError::NotAdmin(invite.admin).to_string());
        }
        if let Some(n) = &self.network {
            if *n != invite.network {
                return Err(InviteError::WrongNetwork {
                    got: invite.network,
                    want: n.clone(),
                }
                .to_string());
            }
        }
        if let Some(by) = self.redeemed.get(&invite.nonce) {
            return Err(InviteError::Used(*by).to_string());
        }
        let role = match invite.role {
            Role::Comune => RegistryRole::Comune,
            Role::Metro => RegistryRole::Metro,
            Role::Admin => return Err("an invitation cannot make an admin".into()),
        };
        self.enroll(c.author, Some(invite.comune), role, c.hash)?;
        self.redeemed.insert(invite.nonce, c.author);
        Ok(())
    }

    fn enroll(
        &mut self,
        node: NodeId,
        comune: Option<Istat>,
        role: RegistryRole,
        by: ChangeHash,
    ) -> Result<(), String> {
        if node.verifying_key().is_none() {
            return Err(format!("{node} is not a valid ed25519 key"));
        }
        let added_anchor = self.anchor_keys.get(&node).is_some_and(|e| !e.pinned);
        if let Some(m) = self.members.get_mut(&node) {
            if m.comune == comune && m.role == role {
                return Ok(());
            }
            if added_anchor && role == RegistryRole::Admin && m.comune.is_none() {
                // An admin made an anchor (phase 0) before its enrollment as
                // admin was judged: its statements as an enrolled admin count
                // from that enrollment on.
                m.comune = comune;
                m.enrolled_by = Some(by);
                return Ok(());
            }
            return Err(format!(
                "{node} is already enrolled as {} for {}",
                m.role,
                m.comune.as_ref().map_or("-", |c| c.as_str())
            ));
        }
        self.members.insert(
            node,
            RegistryMember {
                node,
                comune,
                role,
                status: KeyStatus::Active,
                enrolled_by: Some(by),
            },
        );
        Ok(())
    }

    fn retire(&mut self, node: &NodeId, cut: Cut, why: Retirement) -> Result<(), String> {
        match why {
            Retirement::Revoked(by) => {
                let entry = self.revoked.entry(*node).or_default();
                entry.0.union(&cut);
                entry.1.push(by);
            }
            Retirement::Rotated(to) => {
                if self.rotated.contains_key(node) {
                    return Err(format!("{node} was already rotated"));
                }
                self.rotated.insert(*node, (cut, to));
            }
        }
        Ok(())
    }

    /// The member view of a key. Admins have no comune: they carry the
    /// placeholder [`ADMIN_COMUNE`], which names no real comune.
    pub fn member(&self, node: &NodeId) -> Option<Member> {
        let m = self.members.get(node)?;
        Some(Member {
            node: m.node,
            comune: match &m.comune {
                Some(c) => c.clone(),
                None => admin_comune(),
            },
            role: match m.role {
                RegistryRole::Comune => Role::Comune,
                RegistryRole::Metro => Role::Metro,
                RegistryRole::Admin => Role::Admin,
            },
        })
    }

    /// Whether `node` may connect and read: an admin or an active member.
    pub fn admits(&self, node: &NodeId) -> bool {
        self.members
            .get(node)
            .is_some_and(|m| m.status == KeyStatus::Active)
    }

    /// Judges a document change against the registry: author enrolled for the
    /// document and, if retired, the change inside its cut. Registry changes
    /// are judged by [`Registry::derive`] instead.
    pub fn authorize(&self, change: &VerifiedChange) -> Result<(), AuthorityError> {
        self.authorize_meta(&ChangeMeta::of_verified(change))
    }

    /// [`Registry::authorize`] over a change's metadata.
    pub fn authorize_meta(&self, change: &ChangeMeta) -> Result<(), AuthorityError> {
        let doc = &change.doc;
        let author = change.author;
        if *doc == DocId::Registry {
            return match self.invalid.get(&change.hash) {
                Some(reason) => Err(AuthorityError::Statement(reason.clone())),
                None => Ok(()),
            };
        }
        let member = self
            .member(&author)
            .ok_or(AuthorityError::NotMember(author))?;
        member.check_write(doc)?;
        // Inside every cut that retired the key (a rotation and a revocation
        // may both have), exactly as statements are judged.
        if !self.key_in_time(&author, doc, &change.actor, change.seq) {
            return Err(AuthorityError::Retired(author));
        }
        Ok(())
    }
}

enum Retirement {
    Revoked(NodeId),
    Rotated(NodeId),
}

impl Membership for Registry {
    fn member(&self, node: &NodeId) -> Option<Member> {
        Registry::member(self, node)
    }

    fn authorize(&self, change: &VerifiedChange) -> Result<(), AuthorityError> {
        Registry::authorize(self, change)
    }
}

#[cfg(test)]
mod tests;
