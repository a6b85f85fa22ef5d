//! Who may write, as the relay decides it before storing anything.
//!
//! Two modes. With no admin anchors the relay admits keys from its local
//! allowlist (`accordo-relay allow --comune`), the single-relay quick start.
//! Once an admin key is pinned (`allow --role admin`) the network is governed
//! by the signed registry alone: the relay derives it from the registry
//! changes in its own log ([`accordo_protocol::registry::judge`]), judges each
//! pushed change against it, and refuses any change that depends on a change
//! the registry invalidates (a revoked key's writes after its cut).

use accordo_protocol::authority::{AuthorityError, Member, Membership};
use accordo_protocol::doc::DocId;
use accordo_protocol::envelope::{ChangeHash, VerifiedChange};
use accordo_protocol::identity::NodeId;
use accordo_protocol::registry::{judge, ChangeMeta, Registry, RegistryChange, Statement};
use accordo_store::{SqlLog, StoreError};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

/// The registry as derived from the relay's log, with the verdicts on held
/// changes.
#[derive(Debug, Clone)]
pub struct Trust {
    pub anchors: BTreeSet<NodeId>,
    pub registry: Registry,
    /// Registry changes held, in log order.
    statements: Vec<RegistryChange>,
    /// Held changes the registry invalidates, with the reason.
    pub invalid: BTreeMap<ChangeHash, String>,
}

impl Trust {
    /// Derives the trust state from every change in the log.
    pub fn load(anchors: BTreeSet<NodeId>, log: &SqlLog<'_>) -> Result<Trust, StoreError> {
        let metas = all_metas(log)?;
        let verdict = judge(&anchors, &metas);
        let statements = metas
            .iter()
            .filter(|m| m.doc == DocId::Registry)
            .map(RegistryChange::from_meta)
            .collect();
        Ok(Trust {
            anchors,
            registry: verdict.registry,
            statements,
            invalid: verdict.invalid,
        })
    }

    /// Whether the network is governed by a registry (an admin is pinned).
    pub fn governed(&self) -> bool {
        !self.anchors.is_empty()
    }
}

/// Every held change's metadata, in log order.
fn all_metas(log: &SqlLog<'_>) -> Result<Vec<ChangeMeta>, StoreError> {
    let mut metas = Vec::new();
    for (doc, _) in log.docs()? {
        for env in log.doc_changes(&doc)? {
            let meta = ChangeMeta::of_stored(&env)
                .map_err(|e| StoreError::Corrupt(format!("stored change of {doc}: {e}")))?;
            metas.push(meta);
        }
    }
    Ok(metas)
}

/// Membership inside one ingest transaction: the local allowlist, or the
/// registry, updated as registry statements in the same push are admitted.
pub struct TrustView<'a> {
    pub local: &'a dyn Membership,
    pub trust: RefCell<&'a mut Trust>,
    pub log: &'a SqlLog<'a>,
}

impl Membership for TrustView<'_> {
    fn member(&self, node: &NodeId) -> Option<Member> {
        let trust = self.trust.borrow();
        if trust.governed() {
            trust.registry.member(node)
        } else {
            self.local.member(node)
        }
    }

    fn authorize(&self, change: &VerifiedChange) -> Result<(), AuthorityError> {
        if !self.trust.borrow().governed() {
            return self.local.authorize(change);
        }
        if change.envelope.doc == DocId::Registry {
            return self.admit_statement(change);
        }
        let trust = self.trust.borrow();
        trust.registry.authorize(change)?;
        match change.deps.iter().find(|d| trust.invalid.contains_key(d)) {
            Some(dep) => Err(AuthorityError::Statement(format!(
                "depends on the invalid change {dep}"
            ))),
            None => Ok(()),
        }
    }
}

impl TrustView<'_> {
    /// Judges a registry statement by deriving the registry with it added;
    /// if valid, the derived state (and the verdicts on held changes, which
    /// a revocation may change) become current.
    fn admit_statement(&self, change: &VerifiedChange) -> Result<(), AuthorityError> {
        let mut trust = self.trust.borrow_mut();
        let held: BTreeSet<ChangeHash> = trust.statements.iter().map(|s| s.hash).collect();
        if held.contains(&change.hash) {
            return Ok(());
        }
        if change.deps.iter().any(|d| !held.contains(d)) {
            // The log refuses it for its missing dependencies; judge nothing.
            return Ok(());
        }
        // First come, first served between retirements: a key this relay
        // already holds as retired cannot sign past its cut, even when the
        // canonical order would put its statement first (two anchors
        // retiring each other: the one that reached the relay first stands).
        let registry_doc = DocId::Registry;
        if !trust.registry.key_in_time(
            &change.envelope.author,
            &registry_doc,
            &change.actor,
            change.seq,
        ) {
            return Err(AuthorityError::Statement(format!(
                "{} was retired before this statement reached the relay (outside its cut)",
                change.envelope.author
            )));
        }
        let mut statements = trust.statements.clone();
        statements.push(RegistryChange::from_verified(change));
        let registry = Registry::derive(trust.anchors.iter().copied(), &statements);
        if let Some(reason) = registry.invalid.get(&change.hash) {
            return Err(AuthorityError::Statement(reason.clone()));
        }
        // First come, first served: a statement may not displace one already
        // held (a second redemption of an invitation, or an enrollment
        // contradicting a held one, that wins the canonical order by its
        // hash). Only a retirement may invalidate held statements: the
        // retired key's own, and those that stood on one of them.
        let retired = statements.last().and_then(retired_by);
        let displaced = trust.registry.valid.iter().find(|h| {
            !registry.valid.contains(h)
                && retired.is_none_or(|r| !stands_on_retired(&statements, &registry, **h, r))
        });
        if let Some(h) = displaced {
            return Err(AuthorityError::Statement(format!(
                "it conflicts with statement {h} already held (an invitation already redeemed or a key already enrolled)"
            )));
        }
        let retires = matches!(
            statements.last().map(|s| &s.statement),
            Some(Ok(Statement::Revoke { .. }
                | Statement::Rotate { .. }
                | Statement::RetireAnchor { .. }))
        );
        if !retires {
            // Nothing held can change verdict: changes by unknown keys were
            // never stored, and only a retirement invalidates held ones.
            trust.invalid.extend(registry.invalid.clone());
            trust.statements = statements;
            trust.registry = registry;
            return Ok(());
        }
        // Re-judge held document changes: a retirement may invalidate some.
        let mut metas = all_metas(self.log).map_err(|e| {
            AuthorityError::Statement(format!("relay could not re-judge its log: {e}"))
        })?;
        metas.push(ChangeMeta::of_verified(change));
        let verdict = judge(&trust.anchors, &metas);
        trust.statements = statements;
        trust.registry = verdict.registry;
        trust.invalid = verdict.invalid;
        Ok(())
    }
}

/// The key a statement retires, if it is a retirement.
fn retired_by(s: &RegistryChange) -> Option<NodeId> {
    match &s.statement {
        Ok(Statement::Revoke { node, .. } | Statement::RetireAnchor { node, .. }) => Some(*node),
        Ok(Statement::Rotate { .. }) => Some(s.author),
        _ => None,
    }
}

/// Whether statement `h` is by `retired`, or has in its causal past a
/// statement by `retired` that `registry` holds invalid (an enrollment the
/// retirement's cut left out, on which `h`'s authority stood).
fn stands_on_retired(
    statements: &[RegistryChange],
    registry: &Registry,
    h: ChangeHash,
    retired: NodeId,
) -> bool {
    let index: BTreeMap<ChangeHash, &RegistryChange> =
        statements.iter().map(|s| (s.hash, s)).collect();
    let mut stack = vec![h];
    let mut seen = BTreeSet::new();
    while let Some(x) = stack.pop() {
        let Some(s) = index.get(&x) else { continue };
        if s.author == retired && (x == h || registry.invalid.contains_key(&x)) {
            return true;
        }
        for d in &s.deps {
            if seen.insert(*d) {
                stack.push(*d);
            }
        }
    }
    false
}
