//! The verdict on a whole log: registry statements by the derivation,
//! document changes by the registry it yields.

use super::{ChangeMeta, Registry, RegistryChange};
use crate::doc::DocId;
use crate::envelope::ChangeHash;
use crate::identity::NodeId;
use std::collections::{BTreeMap, BTreeSet};

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
