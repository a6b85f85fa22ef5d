//! Documents kept loaded by a long-running node process (`accordo run`), so
//! that a pulled change to a document the views already derived is applied
//! to the document in memory instead of loading its snapshot again (the
//! snapshot's automerge `load` was 2.3–3.7 ms of each incoming change on a
//! metro node; applying one change takes ~30 µs), and so that a local edit
//! served by `run` (the web application's, or the command line's through
//! `control`) edits the document in memory: at 20,000 projects the `load`
//! is 510–570 ms, the edit 1–6 ms.
//!
//! A cached document is never trusted on its own: it is handed out only
//! when it is exactly the document the views of its id were last derived
//! from, as `doc_state` records it in the reading transaction — the same
//! log position, the same changes left out, and the same heads. The heads
//! name every change of the document (each hash covers its dependencies),
//! so equal heads mean an equal document; a transaction that rolled back
//! after the cache was updated, an edit by another process, a rebuild or a
//! revocation all leave `doc_state` disagreeing with the entry, which is
//! then dropped and the document loaded from the store as before.

use crate::snapshot::Loaded;
use accordo_protocol::doc::DocId;
use accordo_protocol::envelope::ChangeHash;
use automerge::ReadDoc;
use std::collections::{BTreeSet, HashMap};

/// Documents held at most: a metro node's comuni (Torino has 312) with the
/// plan and the registry, so that a steady stream of edits from every
/// comune stays in memory.
pub const MAX_CACHED_DOCS: usize = 400;

/// automerge operations held at most over all cached documents: the memory
/// bound. A loaded operation takes 52 bytes of heap in documents of 200
/// projects and ~160 in documents of 50 (measured by
/// `tests/benches/views.rs`), so this is 75–230 MiB; a metro node of 312
/// comuni × 200 projects holds ~1.06 million operations, all of them kept.
/// The least recently used documents go first.
pub const MAX_CACHED_OPS: u64 = 1_500_000;

/// What the views of a document were last derived from, as `doc_state`
/// records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedFrom {
    pub view_seq: u64,
    /// Hex, sorted, comma-separated (as stored).
    pub heads: String,
    pub left_out: BTreeSet<ChangeHash>,
}

struct Entry {
    loaded: Loaded,
    from: DerivedFrom,
    ops: u64,
    last_used: u64,
}

/// A bounded cache of loaded documents (see the module comment); keeps
/// nothing until [`DocCache::keep_documents`] (a short command would only
/// pay for it in memory).
#[derive(Default)]
pub struct DocCache {
    keeping: bool,
    entries: HashMap<DocId, Entry>,
    ops: u64,
    clock: u64,
    hits: u64,
    misses: u64,
}

impl DocCache {
    /// A cache that keeps nothing yet.
    pub fn new() -> DocCache {
        DocCache::default()
    }

    /// From now on, documents put are kept (within the bounds).
    pub fn keep_documents(&mut self) {
        self.keeping = true;
    }

    /// Whether documents put are kept.
    pub fn keeping(&self) -> bool {
        self.keeping
    }

    /// Takes `doc` out of the cache if it is the document its views were
    /// derived from as `now` says; any other entry for `doc` is dropped.
    pub fn take(&mut self, doc: &DocId, now: &DerivedFrom) -> Option<Loaded> {
        let Some(e) = self.entries.remove(doc) else {
            self.misses += 1;
            return None;
        };
        self.ops -= e.ops;
        if e.from != *now {
            self.misses += 1;
            return None;
        }
        self.hits += 1;
        Some(e.loaded)
    }

    /// Keeps `loaded`, the document the views of `doc` were just derived
    /// from as `from` records it, evicting the least recently used
    /// documents beyond the bounds.
    pub fn put(&mut self, doc: DocId, loaded: Loaded, from: DerivedFrom) {
        self.forget(&doc);
        let ops = loaded.doc.stats().num_ops;
        if !self.keeping || ops > MAX_CACHED_OPS {
            return;
        }
        self.clock += 1;
        self.ops += ops;
        self.entries.insert(
            doc,
            Entry {
                loaded,
                from,
                ops,
                last_used: self.clock,
            },
        );
        while self.entries.len() > MAX_CACHED_DOCS || self.ops > MAX_CACHED_OPS {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(d, _)| d.clone())
            else {
                break;
            };
            self.forget(&oldest);
        }
    }

    /// Drops `doc`'s entry, if any.
    pub fn forget(&mut self, doc: &DocId) {
        if let Some(e) = self.entries.remove(doc) {
            self.ops -= e.ops;
        }
    }

    /// The document held for `doc` and what it was recorded with, without
    /// taking it (tests compare it with the store's).
    #[cfg(test)]
    pub fn get(&self, doc: &DocId) -> Option<(&Loaded, &DerivedFrom)> {
        self.entries.get(doc).map(|e| (&e.loaded, &e.from))
    }

    /// The documents held and what each was recorded with.
    pub fn held(&self) -> Vec<(DocId, DerivedFrom)> {
        self.entries
            .iter()
            .map(|(d, e)| (d.clone(), e.from.clone()))
            .collect()
    }

    /// Documents held, operations held, hits and misses so far.
    pub fn stats(&self) -> (usize, u64, u64, u64) {
        (self.entries.len(), self.ops, self.hits, self.misses)
    }
}
