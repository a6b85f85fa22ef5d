//! Phase 0 of the derivation: the anchor set, followed from the pinned
//! keys through add-anchor, retire-anchor and anchors' rotations.

use super::{Graph, Registry, Statement};
use crate::doc::DocId;
use crate::identity::NodeId;
use std::collections::{BTreeMap, BTreeSet};

impl Registry {
    /// Phase 0: the anchor statements (add-anchor, retire-anchor, an
    /// anchor's rotation) judged in canonical order from the pinned keys.
    ///
    /// A retirement's cut must reach back over statements of the retired key
    /// that the canonical order put before it (concurrent with it, outside
    /// its cut): those are *vetoed* and the phase runs again without them,
    /// until no retirement vetoes anything new. Vetoes only accumulate, so
    /// this ends after at most one pass per anchor statement; the result is
    /// a function of the set of statements alone. Two anchors retiring each
    /// other concurrently: whichever retirement comes first in the canonical
    /// order is applied, and the other is then signed by a retired key,
    /// outside its cut, and invalid.
    pub(super) fn settle_anchors(
        pinned: &BTreeSet<NodeId>,
        graph: &Graph<'_>,
        order: &[usize],
    ) -> (Registry, Vec<bool>) {
        let mut vetoed: BTreeMap<usize, String> = BTreeMap::new();
        loop {
            let mut reg = Registry::new(pinned.iter().copied());
            let mut judged = vec![false; graph.changes.len()];
            let mut applied: Vec<usize> = Vec::new();
            let mut vetoed_more = false;
            for &i in order {
                let c = &graph.changes[i];
                let retires = match &c.statement {
                    Ok(Statement::AddAnchor { .. }) => None,
                    Ok(Statement::RetireAnchor { node, .. }) => Some(*node),
                    Ok(Statement::Rotate { .. }) if reg.anchor_keys.contains_key(&c.author) => {
                        Some(c.author)
                    }
                    _ => continue,
                };
                judged[i] = true;
                if let Some(reason) = vetoed.get(&i) {
                    reg.record(c.hash, Err(reason.clone()));
                    continue;
                }
                let outcome = reg.apply(graph, i);
                let valid = outcome.is_ok();
                reg.record(c.hash, outcome);
                if !valid {
                    continue;
                }
                if let Some(retired) = retires {
                    for &j in &applied {
                        let cj = &graph.changes[j];
                        let outside = cj.author == retired
                            && !reg.key_in_time(&retired, &DocId::Registry, &cj.actor, cj.seq);
                        if outside {
                            let kind = cj.statement.as_ref().map_or("statement", Statement::kind);
                            vetoed.insert(
                                j,
                                format!("{kind}: {retired} was retired by statement {} outside whose cut this one lies", c.hash),
                            );
                            vetoed_more = true;
                        }
                    }
                }
                applied.push(i);
            }
            if !vetoed_more {
                return (reg, judged);
            }
        }
    }
}
