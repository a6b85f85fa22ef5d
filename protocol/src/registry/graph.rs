//! The registry's change graph: the canonical order statements are judged
//! in, and ancestor queries ("is this change in that one's causal past").

use super::statement::RegistryChange;
use crate::envelope::ChangeHash;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

/// The canonical order: a topological order of the change graph in which,
/// among changes whose dependencies are all placed, the smallest hash goes
/// first. Changes whose dependencies are not all in `changes` come last.
pub(super) fn canonical_order(changes: &[RegistryChange]) -> Vec<usize> {
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
pub(super) struct Graph<'a> {
    pub(super) changes: &'a [RegistryChange],
    index: HashMap<ChangeHash, usize>,
}

impl<'a> Graph<'a> {
    pub(super) fn new(changes: &'a [RegistryChange]) -> Self {
        let index = changes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.hash, i))
            .collect();
        Graph { changes, index }
    }

    /// Whether `ancestor` is in the causal past of change `of` (or is it).
    pub(super) fn precedes(&self, ancestor: &ChangeHash, of: usize) -> bool {
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
