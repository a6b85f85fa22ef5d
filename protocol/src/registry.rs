//! The signed member registry: who may write what, decided the same way by
//! every relay and node, whatever order they learn things in.
//!
//! The registry is one more document ([`DocId::Registry`]) whose changes
//! travel in ordinary signed envelopes; each change carries exactly one
//! [`Statement`] as its automerge message. The registry's state is a pure
//! function of the set of statements held and of the admin keys the verifier
//! pinned at init ([`Registry::derive`]):
//!
//! 1. Statements are visited in a canonical topological order of their
//!    change graph (dependencies first, ties broken by change hash), so two
//!    verifiers holding the same set derive the same state.
//! 2. Only pinned admins ("anchors") manage admin keys. Admin authority is
//!    settled first, then revocations, then everything else, so that every
//!    *cut* is known before any statement that a cut could invalidate is
//!    judged: a key revoked concurrently with a rotation cannot escape the
//!    revocation by the rotation.
//! 3. Revocation is causal: a revoke (or rotate) statement lists, per
//!    document and actor, the last sequence number of the key's changes the
//!    issuer held. Those changes stay valid; every later one is invalid, on
//!    every verifier, including changes made offline concurrently with the
//!    revocation.
//! 4. A key is enrolled once: a different enrollment of an enrolled key, a
//!    re-enrollment of a retired key and a second redemption of an invitation
//!    are invalid, with the reason recorded.

use crate::authority::{AuthorityError, Member, Membership};
use crate::codes::Istat;
use crate::doc::DocId;
use crate::envelope::{
    derive_actor, parse_change, ChangeHash, EnvelopeError, SignedChange, VerifiedChange,
    ACTOR_ID_BYTES,
};
use crate::identity::{NodeId, RelayAddr, Role};
use ed25519_dalek::{Signature, Signer, SigningKey};
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};
use std::fmt;

/// Domain separation for invitation signatures.
const INVITE_SIGNING_DOMAIN: &[u8] = b"accordo/invite/v1";
/// Prefix of an invitation token's text form, so a pasted token is recognisable.
pub const INVITE_TOKEN_PREFIX: &str = "accordo-invite-v1-";
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
    fn union(&mut self, other: &Cut) {
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

/// An invitation: an admin's signed promise to enroll whichever key redeems
/// it first, for one comune and role, until it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    pub network: String,
    pub relay: String,
    pub comune: Istat,
    pub role: Role,
    pub expires_ms: i64,
    #[serde(with = "hex::serde")]
    pub nonce: [u8; 16],
    pub admin: NodeId,
    pub signature: Signature,
}

/// Why an invitation token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    #[error("not an invitation token (expected text starting with {INVITE_TOKEN_PREFIX})")]
    NotAToken,
    #[error("the invitation token is damaged: {0}")]
    Damaged(String),
    #[error("the invitation's signature does not verify: the token was forged or altered")]
    BadSignature,
    #[error("the invitation expired at {expires_ms} ms (now {now_ms} ms)")]
    Expired { expires_ms: i64, now_ms: i64 },
    #[error("the invitation was already redeemed by {0}")]
    Used(NodeId),
    #[error("the invitation is signed by {0}, which is not an admin of this network")]
    NotAdmin(NodeId),
    #[error("the invitation is for network {got:?}, not {want:?}")]
    WrongNetwork { got: String, want: String },
}

impl Invite {
    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        key: &SigningKey,
        network: &str,
        relay: &RelayAddr,
        comune: Istat,
        role: Role,
        expires_ms: i64,
        nonce: [u8; 16],
    ) -> Invite {
        let mut invite = Invite {
            network: network.to_owned(),
            relay: relay.to_string(),
            comune,
            role,
            expires_ms,
            nonce,
            admin: NodeId::from_signing_key(key),
            signature: Signature::from_bytes(&[0; 64]),
        };
        invite.signature = key.sign(&invite.signing_payload());
        invite
    }

    fn signing_payload(&self) -> Vec<u8> {
        let fields = (
            &self.network,
            &self.relay,
            &self.comune,
            self.role,
            self.expires_ms,
            self.nonce,
            self.admin,
        );
        let mut out = INVITE_SIGNING_DOMAIN.to_vec();
        // Invariant: postcard encodes these plain fields infallibly.
        out.extend(postcard::to_allocvec(&fields).expect("invite fields encode"));
        out
    }

    /// Checks the admin's signature (not who the admin is, nor expiry).
    pub fn verify_signature(&self) -> Result<(), InviteError> {
        let key = self
            .admin
            .verifying_key()
            .ok_or(InviteError::BadSignature)?;
        key.verify_strict(&self.signing_payload(), &self.signature)
            .map_err(|_| InviteError::BadSignature)
    }

    /// The relay the token points at.
    pub fn relay_addr(&self) -> Result<RelayAddr, InviteError> {
        self.relay
            .parse()
            .map_err(|e| InviteError::Damaged(format!("relay address: {e}")))
    }

    pub fn to_token(&self) -> String {
        // Invariant: postcard encodes an invite infallibly.
        let bytes = postcard::to_allocvec(self).expect("invite encodes");
        format!("{INVITE_TOKEN_PREFIX}{}", hex::encode(bytes))
    }

    /// Parses a token and checks its signature.
    pub fn from_token(token: &str) -> Result<Invite, InviteError> {
        let body = token
            .trim()
            .strip_prefix(INVITE_TOKEN_PREFIX)
            .ok_or(InviteError::NotAToken)?;
        let bytes = hex::decode(body).map_err(|e| InviteError::Damaged(e.to_string()))?;
        let invite: Invite =
            postcard::from_bytes(&bytes).map_err(|e| InviteError::Damaged(e.to_string()))?;
        invite.verify_signature()?;
        Ok(invite)
    }
}

/// One registry statement, carried as the message of one registry change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Statement {
    /// Founds the network; signed by a pinned admin.
    Genesis {
        network: String,
        admins: Vec<NodeId>,
    },
    /// Enrolls a key for a comune and role; signed by an admin (by a pinned
    /// admin for the admin role).
    Enroll {
        node: NodeId,
        comune: Istat,
        role: RegistryRole,
    },
    /// Retires a key: its changes outside `cut` are invalid.
    Revoke { node: NodeId, cut: Cut },
    /// Signed by the old key: enrolls `new` with the same comune and role and
    /// retires the signer with `cut`.
    Rotate { new: NodeId, cut: Cut },
    /// Signed by the invited key: enrolls it as the invitation says.
    Redeem { invite: Invite },
    /// Announces a relay of the network; a relay key writes nothing.
    AddRelay { relay: NodeId, addr: String },
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

    fn kind(&self) -> &'static str {
        match self {
            Statement::Genesis { .. } => "genesis",
            Statement::Enroll { .. } => "enroll",
            Statement::Revoke { .. } => "revoke",
            Statement::Rotate { .. } => "rotate",
            Statement::Redeem { .. } => "redeem",
            Statement::AddRelay { .. } => "add_relay",
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

/// The verdict on a whole log: the registry it holds and every change that
/// is not valid under it, with the reason.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub registry: Registry,
    pub invalid: BTreeMap<ChangeHash, String>,
}

/// Judges every change of a causally closed log (given in log order) against
/// the registry it contains: registry statements by the derivation rules,
/// document changes by [`Registry::authorize_meta`], and any change that
/// depends on an invalid change is invalid too.
pub fn judge(anchors: &BTreeSet<NodeId>, log: &[ChangeMeta]) -> Verdict {
    let statements: Vec<RegistryChange> = log
        .iter()
        .filter(|m| m.doc == DocId::Registry)
        .map(RegistryChange::from_meta)
        .collect();
    let registry = Registry::derive(anchors.iter().copied(), &statements);
    let mut invalid = registry.invalid.clone();
    for meta in log.iter().filter(|m| m.doc != DocId::Registry) {
        let reason = match registry.authorize_meta(meta) {
            Err(e) => Some(e.to_string()),
            Ok(()) => meta
                .deps
                .iter()
                .find(|d| invalid.contains_key(d))
                .map(|d| format!("depends on the invalid change {d}")),
        };
        if let Some(reason) = reason {
            invalid.insert(meta.hash, reason);
        }
    }
    Verdict { registry, invalid }
}

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
    pub anchors: BTreeSet<NodeId>,
    pub network: Option<String>,
    pub members: BTreeMap<NodeId, RegistryMember>,
    pub relays: BTreeMap<NodeId, String>,
    /// Invitation nonce → the key that redeemed it.
    pub redeemed: BTreeMap<[u8; 16], NodeId>,
    /// Statements judged invalid, with the reason.
    pub invalid: BTreeMap<ChangeHash, String>,
    /// Every valid statement's change hash.
    pub valid: BTreeSet<ChangeHash>,
    /// Revoked keys: the union of their revocation cuts and who revoked them.
    revoked: BTreeMap<NodeId, (Cut, Vec<NodeId>)>,
    /// Rotated keys: the rotation's cut and the new key.
    rotated: BTreeMap<NodeId, (Cut, NodeId)>,
}

/// The canonical order: a topological order of the change graph in which,
/// among changes whose dependencies are all placed, the smallest hash goes
/// first. Changes whose dependencies are not all in `changes` come last.
fn canonical_order(changes: &[RegistryChange]) -> Vec<usize> {
    let index: HashMap<ChangeHash, usize> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.hash, i))
        .collect();
    let mut waiting = vec![0usize; changes.len()];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); changes.len()];
    for (i, c) in changes.iter().enumerate() {
        for dep in &c.deps {
            if let Some(&d) = index.get(dep) {
                waiting[i] += 1;
                dependents[d].push(i);
            }
        }
    }
    let mut ready: BinaryHeap<Reverse<(ChangeHash, usize)>> = (0..changes.len())
        .filter(|&i| waiting[i] == 0)
        .map(|i| Reverse((changes[i].hash, i)))
        .collect();
    let mut order = Vec::with_capacity(changes.len());
    while let Some(Reverse((_, i))) = ready.pop() {
        order.push(i);
        for &j in &dependents[i] {
            waiting[j] -= 1;
            if waiting[j] == 0 {
                ready.push(Reverse((changes[j].hash, j)));
            }
        }
    }
    order
}

/// Ancestor queries over the registry's change graph.
struct Graph<'a> {
    changes: &'a [RegistryChange],
    index: HashMap<ChangeHash, usize>,
}

impl<'a> Graph<'a> {
    fn new(changes: &'a [RegistryChange]) -> Self {
        let index = changes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.hash, i))
            .collect();
        Graph { changes, index }
    }

    /// Whether `ancestor` is in the causal past of change `of` (or is it).
    fn precedes(&self, ancestor: &ChangeHash, of: usize) -> bool {
        let mut stack = vec![of];
        let mut seen = HashSet::new();
        while let Some(i) = stack.pop() {
            let c = &self.changes[i];
            if c.hash == *ancestor {
                return true;
            }
            for dep in &c.deps {
                if let Some(&d) = self.index.get(dep) {
                    if seen.insert(d) {
                        stack.push(d);
                    }
                }
            }
        }
        false
    }
}

impl Registry {
    /// An empty registry trusting `anchors` (the admin keys pinned at init).
    pub fn new(anchors: impl IntoIterator<Item = NodeId>) -> Registry {
        let anchors: BTreeSet<NodeId> = anchors.into_iter().collect();
        let members = anchors
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
        Registry {
            anchors,
            members,
            ..Registry::default()
        }
    }

    /// Derives the registry from every registry change held.
    pub fn derive(anchors: impl IntoIterator<Item = NodeId>, changes: &[RegistryChange]) -> Self {
        let mut reg = Registry::new(anchors);
        let order = canonical_order(changes);
        let graph = Graph::new(changes);
        let mut judged = vec![false; changes.len()];
        // Phase 1: admin keys, managed by pinned admins only.
        for &i in &order {
            let c = &changes[i];
            let about_admins = match &c.statement {
                Ok(Statement::Enroll { role, .. }) => *role == RegistryRole::Admin,
                Ok(Statement::Revoke { node, .. }) => reg.is_admin_key(node),
                _ => false,
            };
            if about_admins && reg.anchors.contains(&c.author) {
                judged[i] = true;
                let outcome = reg.apply(&graph, i);
                reg.record(c.hash, outcome);
            }
        }
        // Phase 2: every revocation, now that admin authority is settled.
        // A revocation needs no enrollment to refer to: it retires the key
        // whenever and however the key is enrolled.
        for &i in &order {
            if !judged[i] && matches!(changes[i].statement, Ok(Statement::Revoke { .. })) {
                judged[i] = true;
                let outcome = reg.apply(&graph, i);
                reg.record(changes[i].hash, outcome);
            }
        }
        // Phase 3: everything else, judged against every revocation cut.
        for &i in &order {
            if !judged[i] {
                let outcome = reg.apply(&graph, i);
                reg.record(changes[i].hash, outcome);
            }
        }
        for c in changes {
            if !reg.valid.contains(&c.hash) && !reg.invalid.contains_key(&c.hash) {
                reg.invalid
                    .insert(c.hash, "its dependencies are not all held".into());
            }
        }
        reg.settle_statuses();
        reg
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
    fn key_in_time(
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

    /// Whether `author` acts as an admin in change `i`: pinned, or enrolled as
    /// admin by a valid statement in the change's causal past, and in time.
    fn admin_authority(&self, graph: &Graph<'_>, i: usize) -> Result<(), String> {
        let c = &graph.changes[i];
        if self.anchors.contains(&c.author) {
            return Ok(());
        }
        let member = self
            .members
            .get(&c.author)
            .filter(|m| m.role == RegistryRole::Admin)
            .ok_or_else(|| format!("{} is not an admin", c.author))?;
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
                if !self.anchors.contains(&c.author) {
                    return Err(format!("{} is not a pinned admin", c.author));
                }
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
                if role == RegistryRole::Admin && !self.anchors.contains(&c.author) {
                    return Err("only a pinned admin may enroll admins".into());
                }
                self.admin_authority(graph, i)?;
                self.enroll(node, Some(comune), role, c.hash)
            }
            Statement::Revoke { node, cut } => {
                let target_is_admin = self.is_admin_key(&node);
                if target_is_admin && !self.anchors.contains(&c.author) {
                    return Err("only a pinned admin may revoke an admin".into());
                }
                if self.anchors.contains(&node) {
                    return Err("a pinned admin cannot be revoked by the registry".into());
                }
                self.admin_authority(graph, i)?;
                self.retire(&node, cut, Retirement::Revoked(c.author))
            }
            Statement::Rotate { new, cut } => {
                let member = self.member_authority(graph, i)?.clone();
                if member.role == RegistryRole::Admin {
                    return Err("admin keys are not rotated by the registry".into());
                }
                if self.members.contains_key(&new) {
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
                self.enroll(new, member.comune, member.role, c.hash)
            }
            Statement::Redeem { invite } => self.redeem(graph, i, invite),
            Statement::AddRelay { relay, addr } => {
                self.admin_authority(graph, i)?;
                self.relays.insert(relay, addr);
                Ok(())
            }
        }
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
        if let Some(m) = self.members.get(&node) {
            if m.comune == comune && m.role == role {
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
