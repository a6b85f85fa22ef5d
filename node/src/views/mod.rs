//! The query store: SQLite tables derived from the valid changes of every
//! document a node holds (projects, funding lines, milestones, locations,
//! indicator data and observations, the plan's catalog and zones), kept
//! current *incrementally* in the same transaction that stores the changes.
//!
//! For each document, `doc_state` records the log position the views cover
//! (`view_seq`), the heads they were derived from and which of its changes
//! were left out as invalid. Bringing a document up to date re-derives only
//! the records (root keys) its new changes touched; when the verdict on
//! changes the views already cover has changed (a revocation, a late
//! enrolment), the document's rows are derived again in full. Because the
//! update commits with the changes, a crash never leaves the views behind the
//! log; [`catch_up`] also runs when a replica opens, so a log written by an
//! older version, or by a tool that appends to it directly, is caught up.
//! `accordo rebuild-views` derives everything again from the log alone and
//! counts the rows that differed (it must be 0).

pub mod aggregate;
pub mod dashboard;
mod figures;
mod lookup;
pub mod public;
mod read;
pub(crate) mod rows;
pub mod search;
mod totals;

pub use aggregate::{
    totals_by_funding_source, totals_by_zone_and_mission, AggregateError, AggregateFilter,
    FundingSourceTotals, Mission, ZoneMissionTotals,
};
pub use figures::report_facts;
pub use lookup::{KeptFields, StoredProjects};

pub use read::{
    catalog_defs, doc_heads, find_by_cup, find_one, indicator_data, projects, projects_with_id,
    report_input, DocIndicators, Listed,
};

use crate::doc_cache::{DerivedFrom, DocCache};
use crate::replica::{held_metas_in, ReplicaError};
use crate::snapshot::{self, hashes_blob, hashes_from_blob, Loaded};
use crate::store::NodeTx;
use accordo_domain::codec::root_keys_touched;
use accordo_protocol::doc::DocId;
use accordo_protocol::envelope::{parse_change, ChangeHash};
use accordo_protocol::identity::NodeId;
use accordo_protocol::registry::judge;
use accordo_store::StoreError;
use automerge::AutoCommit;
use rusqlite::{params, OptionalExtension};
use std::collections::{BTreeSet, HashSet};

/// What the views of one document record about themselves.
struct ViewState {
    view_seq: u64,
    heads: String,
    left_out: BTreeSet<ChangeHash>,
}

fn view_state(tx: &NodeTx<'_>, doc: &DocId) -> Result<Option<ViewState>, StoreError> {
    let row = tx
        .sql()
        .query_row(
            "SELECT view_seq, left_out, heads FROM doc_state WHERE doc = ?1",
            [doc.canonical()],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, String>(2)?,
                ))
            },
        )
        .optional()?;
    row.map(|(seq, left, heads)| {
        Ok(ViewState {
            view_seq: seq as u64,
            heads,
            left_out: hashes_from_blob(&left)?,
        })
    })
    .transpose()
}

/// The changes a node must not show, judged inside `tx` (empty when the
/// node is not governed by a registry).
pub fn invalid_in(
    tx: &NodeTx<'_>,
    anchors: &[NodeId],
) -> Result<HashSet<ChangeHash>, ReplicaError> {
    if anchors.is_empty() {
        return Ok(HashSet::new());
    }
    let anchors: BTreeSet<NodeId> = anchors.iter().copied().collect();
    let metas = held_metas_in(tx)?;
    Ok(judge(&anchors, &metas).invalid.into_keys().collect())
}

/// How much a catch-up did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CaughtUp {
    pub documents: usize,
    /// Documents derived again in full (no views yet, or the verdict on
    /// changes they covered changed).
    pub full: usize,
    /// Records (root keys) re-derived by incremental updates.
    pub records: usize,
    pub snapshots: usize,
}

/// Brings the views of every held document up to date with the log.
pub fn catch_up(tx: &NodeTx<'_>, anchors: &[NodeId]) -> Result<CaughtUp, ReplicaError> {
    let invalid = invalid_in(tx, anchors)?;
    let mut out = CaughtUp::default();
    for (doc, _) in tx.log().doc_heads_seq()? {
        refresh(tx, &doc, &invalid, None, &mut out)?;
    }
    Ok(out)
}

/// Whether any document's views are behind the log (a read-only check, so
/// that commands that only read take the write lock only when needed). The
/// verdict is not judged here: every write path that can change it catches
/// up in its own transaction.
pub fn behind(tx: &NodeTx<'_>) -> Result<bool, StoreError> {
    Ok(tx.sql().query_row(
        "SELECT EXISTS (SELECT 1 FROM (SELECT doc, MAX(seq) AS head FROM log GROUP BY doc) l
           LEFT JOIN doc_state s ON s.doc = l.doc
           WHERE s.doc IS NULL OR s.view_seq < l.head)",
        [],
        |r| r.get::<_, bool>(0),
    )?)
}

/// What a document's views were just derived from, with the document
/// itself (loaded without the changes left out), for a process that keeps
/// it loaded (`doc_cache`).
pub type Derived = Option<(Loaded, DerivedFrom)>;

/// Brings `doc`'s views up to date after a local edit: `loaded` is the
/// document as edited (loaded without `invalid`), so it is not loaded again
/// unless the verdict changed. Other documents are caught up too when the
/// edit was a registry statement. Returns, beside what it did, the edited
/// document (loaded again inside when the verdict changed) and what
/// `doc_state` now records of it.
pub fn after_edit(
    tx: &NodeTx<'_>,
    anchors: &[NodeId],
    doc: &DocId,
    loaded: Loaded,
    loaded_without: &HashSet<ChangeHash>,
) -> Result<(CaughtUp, Derived), ReplicaError> {
    let mut out = CaughtUp::default();
    if *doc == DocId::Registry || !anchors.is_empty() {
        // A statement may change the verdict on any document; a governed
        // node's own change is judged like any other.
        let invalid = invalid_in(tx, anchors)?;
        let reuse = (invalid == *loaded_without).then_some(loaded);
        let derived = refresh_with(tx, doc, &invalid, reuse, None, &mut out)?;
        if *doc == DocId::Registry {
            for (other, _) in tx.log().doc_heads_seq()? {
                refresh(tx, &other, &invalid, None, &mut out)?;
            }
        }
        return Ok((out, derived));
    }
    let derived = refresh_with(tx, doc, loaded_without, Some(loaded), None, &mut out)?;
    Ok((out, derived))
}

/// What `doc_state` records the views of `doc` were last derived from.
pub fn derived_from(tx: &NodeTx<'_>, doc: &DocId) -> Result<Option<DerivedFrom>, StoreError> {
    Ok(view_state(tx, doc)?.map(|s| DerivedFrom {
        view_seq: s.view_seq,
        heads: s.heads,
        left_out: s.left_out,
    }))
}

/// The document `cache` holds for `doc`, brought up to the log's head, if
/// it is exactly the document the views of `doc` were last derived from as
/// `doc_state` records it in `tx` (log position, changes left out, heads)
/// and the changes left out up to there are still those of `invalid`;
/// otherwise `None`, and the entry is dropped (see `doc_cache`). A local
/// edit then applies to the document in memory instead of loading it.
pub fn take_resident(
    tx: &NodeTx<'_>,
    doc: &DocId,
    invalid: &HashSet<ChangeHash>,
    cache: &mut DocCache,
) -> Result<Option<Loaded>, ReplicaError> {
    let Some(s) = view_state(tx, doc)? else {
        cache.forget(doc);
        return Ok(None);
    };
    if snapshot::invalid_up_to(tx, doc, invalid, s.view_seq)? != s.left_out {
        cache.forget(doc);
        return Ok(None);
    }
    let from = DerivedFrom {
        view_seq: s.view_seq,
        heads: s.heads,
        left_out: s.left_out,
    };
    match cache.take(doc, &from) {
        Some(l) => snapshot::apply_after(tx, doc, l, from.view_seq, invalid),
        None => Ok(None),
    }
}

/// The comune whose project rows an edit of `doc` on top of the log
/// position `before_seq` may write itself, before or while it edits the
/// document (`rows::rewrite_projects`, then [`after_rows_written`]): when
/// `doc` is a comune's, the views covered `before_seq` exactly and no
/// registry judges the node. `None`: the edit's views are derived from the
/// document afterwards ([`after_edit`]).
pub fn rows_first(
    tx: &NodeTx<'_>,
    anchors: &[NodeId],
    doc: &DocId,
    loaded_without: &HashSet<ChangeHash>,
    before_seq: u64,
) -> Result<Option<String>, ReplicaError> {
    let DocId::Comune(comune) = doc else {
        return Ok(None);
    };
    if !anchors.is_empty() {
        return Ok(None);
    }
    let covered = match view_state(tx, doc)? {
        Some(s) => {
            s.view_seq == before_seq
                && snapshot::invalid_up_to(tx, doc, loaded_without, before_seq)? == s.left_out
        }
        None => before_seq == 0,
    };
    Ok(covered.then(|| comune.as_str().to_owned()))
}

/// [`after_edit`] for an edit that [`rows_first`] allowed to write its
/// projects' rows itself and that did (`records` of them), and wrote
/// nothing else the views show: records what the views now cover (and a
/// snapshot if due) without reading the projects back out of the document
/// (an import's cost otherwise).
pub fn after_rows_written(
    tx: &NodeTx<'_>,
    doc: &DocId,
    loaded: Loaded,
    loaded_without: &HashSet<ChangeHash>,
    records: usize,
) -> Result<(CaughtUp, Derived), ReplicaError> {
    let mut out = CaughtUp {
        documents: 1,
        records,
        ..CaughtUp::default()
    };
    let head_seq = tx.log().doc_head_seq(doc)?;
    let left_out_now = snapshot::invalid_up_to(tx, doc, loaded_without, head_seq)?;
    let mut loaded = loaded;
    let heads = record_state(
        tx,
        doc,
        head_seq,
        &left_out_now,
        &mut loaded,
        loaded_without,
        &mut out,
    )?;
    let from = DerivedFrom {
        view_seq: head_seq,
        heads,
        left_out: left_out_now,
    };
    Ok((out, Some((loaded, from))))
}

/// Brings the views of `docs` (the documents a sync response stored
/// changes in) up to date; every document when the registry was among them.
pub fn after_pull(
    tx: &NodeTx<'_>,
    anchors: &[NodeId],
    docs: &BTreeSet<DocId>,
) -> Result<CaughtUp, ReplicaError> {
    after_pull_cached(tx, anchors, docs, &mut DocCache::new())
}

/// [`after_pull`] in a process that keeps documents loaded: a document
/// `cache` holds exactly as its views were derived (see `doc_cache`) has
/// the new changes applied in memory instead of being loaded again, and
/// every document derived is kept there.
pub fn after_pull_cached(
    tx: &NodeTx<'_>,
    anchors: &[NodeId],
    docs: &BTreeSet<DocId>,
    cache: &mut DocCache,
) -> Result<CaughtUp, ReplicaError> {
    if docs.is_empty() {
        return Ok(CaughtUp::default());
    }
    if docs.contains(&DocId::Registry) {
        return catch_up(tx, anchors);
    }
    let invalid = invalid_in(tx, anchors)?;
    let mut out = CaughtUp::default();
    for doc in docs {
        let derived = refresh_with(tx, doc, &invalid, None, Some(&mut *cache), &mut out)?;
        if let Some((loaded, from)) = derived {
            cache.put(doc.clone(), loaded, from);
        }
    }
    Ok(out)
}

/// Re-derives what changed in `doc` since its views were last updated.
fn refresh(
    tx: &NodeTx<'_>,
    doc: &DocId,
    invalid: &HashSet<ChangeHash>,
    preloaded: Option<Loaded>,
    out: &mut CaughtUp,
) -> Result<(), ReplicaError> {
    refresh_with(tx, doc, invalid, preloaded, None, out).map(|_| ())
}

/// [`refresh`], taking the document from `cache` when it holds it as the
/// views were derived; returns the document derived from and what
/// `doc_state` now records of it (`None`: nothing to do).
fn refresh_with(
    tx: &NodeTx<'_>,
    doc: &DocId,
    invalid: &HashSet<ChangeHash>,
    preloaded: Option<Loaded>,
    cache: Option<&mut DocCache>,
    out: &mut CaughtUp,
) -> Result<Option<(Loaded, DerivedFrom)>, ReplicaError> {
    let head_seq = tx.log().doc_head_seq(doc)?;
    let left_out_now = snapshot::invalid_up_to(tx, doc, invalid, head_seq)?;
    let state = view_state(tx, doc)?;
    if let Some(s) = &state {
        if s.view_seq == head_seq && s.left_out == left_out_now {
            return Ok(None);
        }
    }
    out.documents += 1;
    let incremental = match &state {
        Some(s) if s.view_seq > 0 => {
            snapshot::invalid_up_to(tx, doc, invalid, s.view_seq)? == s.left_out
        }
        _ => false,
    };
    let cached = match (&state, cache) {
        (Some(s), Some(cache)) if incremental && preloaded.is_none() => {
            let from = DerivedFrom {
                view_seq: s.view_seq,
                heads: s.heads.clone(),
                left_out: s.left_out.clone(),
            };
            match cache.take(doc, &from) {
                Some(l) => snapshot::apply_after(tx, doc, l, s.view_seq, invalid)?,
                None => None,
            }
        }
        _ => None,
    };
    let mut loaded = match (preloaded, cached) {
        (Some(l), _) | (None, Some(l)) => l,
        (None, None) => snapshot::load(tx, doc, invalid)?,
    };
    if incremental {
        let after = state.as_ref().map_or(0, |s| s.view_seq);
        let keys = touched_since(tx, doc, &loaded.doc, after, invalid)?;
        out.records += keys.len();
        rows::write_keys(tx, doc, &loaded.doc, &keys)?;
    } else {
        out.full += 1;
        rows::clear(tx, doc)?;
        rows::write_all(tx, doc, &loaded.doc)?;
    }
    let heads = record_state(tx, doc, head_seq, &left_out_now, &mut loaded, invalid, out)?;
    let from = DerivedFrom {
        view_seq: head_seq,
        heads,
        left_out: left_out_now,
    };
    Ok(Some((loaded, from)))
}

/// Records what `doc`'s views now cover, and saves a snapshot if due;
/// returns the heads recorded.
fn record_state(
    tx: &NodeTx<'_>,
    doc: &DocId,
    head_seq: u64,
    left_out_now: &BTreeSet<ChangeHash>,
    loaded: &mut Loaded,
    invalid: &HashSet<ChangeHash>,
    out: &mut CaughtUp,
) -> Result<String, ReplicaError> {
    let heads = heads_text(&mut loaded.doc);
    let newest = newest_change_ms(tx, doc, head_seq)?;
    tx.sql()
        .execute(
            "INSERT INTO doc_state (doc, view_seq, heads, left_out, last_change_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (doc) DO UPDATE SET view_seq = ?2, heads = ?3, left_out = ?4,
               last_change_ms = ?5",
            params![
                doc.canonical(),
                head_seq as i64,
                heads,
                hashes_blob(left_out_now),
                newest
            ],
        )
        .map_err(StoreError::from)?;
    let saved = if !loaded.from_snapshot && loaded.tail_bytes >= FIRST_SNAPSHOT_BYTES {
        snapshot::save(tx, doc, &mut loaded.doc, loaded.head_seq, invalid)?;
        // As `maybe_save` does: the document (kept in a cache) is now its
        // snapshot plus no tail.
        loaded.tail_changes = 0;
        loaded.tail_bytes = 0;
        loaded.from_snapshot = true;
        true
    } else {
        snapshot::maybe_save(tx, doc, loaded, invalid)?
    };
    if saved {
        out.snapshots += 1;
    }
    Ok(heads)
}

/// A document loaded from its changes alone gets a snapshot once they pass
/// this size (~40 projects), below the tail thresholds of
/// `snapshot::maybe_save`: loading a snapshot takes about half the time of
/// applying the changes it holds (1.5 against 3.1 ms at 200 projects, 250
/// against 620 ms at 20,000), and a metro node receives each comune's
/// history in a few large changes that would otherwise be applied again
/// for every incoming edit.
const FIRST_SNAPSHOT_BYTES: usize = 16 * 1024;

/// The root keys of `doc` that its valid changes after `after_seq` touched.
fn touched_since(
    tx: &NodeTx<'_>,
    doc_id: &DocId,
    doc: &AutoCommit,
    after_seq: u64,
    invalid: &HashSet<ChangeHash>,
) -> Result<BTreeSet<String>, ReplicaError> {
    let mut keys = BTreeSet::new();
    for (_, env) in tx.log().doc_changes_after(doc_id, after_seq)? {
        let change = parse_change(&env.change).map_err(|e| ReplicaError::Load {
            doc: doc_id.clone(),
            detail: e.to_string(),
        })?;
        if invalid.contains(&ChangeHash::from(change.hash())) {
            continue;
        }
        keys.extend(root_keys_touched(doc, &change));
    }
    Ok(keys)
}

/// When the newest change of `doc` in the log (at `head_seq`) was made, by
/// its author's clock, in UNIX ms; parsed once here so that readers (the
/// dashboard) take it from `doc_state`.
pub fn newest_change_ms(
    tx: &NodeTx<'_>,
    doc: &DocId,
    head_seq: u64,
) -> Result<Option<i64>, ReplicaError> {
    if head_seq == 0 {
        return Ok(None);
    }
    let blob: Option<Vec<u8>> = tx
        .sql()
        .query_row(
            "SELECT envelope FROM log WHERE seq = ?1",
            params![head_seq as i64],
            |r| r.get(0),
        )
        .optional()
        .map_err(StoreError::from)?;
    let Some(blob) = blob else { return Ok(None) };
    let env = accordo_store::decode_envelope(&blob)?;
    let change = parse_change(&env.change).map_err(|e| ReplicaError::Load {
        doc: doc.clone(),
        detail: e.to_string(),
    })?;
    Ok(Some(change.timestamp().max(0).saturating_mul(1000)))
}

/// A document's heads as stored in `doc_state`: hex, sorted, comma-separated.
pub fn heads_text(doc: &mut AutoCommit) -> String {
    let mut heads: Vec<String> = doc.get_heads().iter().map(|h| h.to_string()).collect();
    heads.sort();
    heads.join(",")
}

/// Derives every view again from the log alone (snapshots dropped) and
/// returns how many rows differed from what the incremental updates had
/// written.
pub fn rebuild(tx: &NodeTx<'_>, anchors: &[NodeId]) -> Result<Rebuilt, ReplicaError> {
    let before = rows::dump(tx)?;
    let invalid = invalid_in(tx, anchors)?;
    rows::clear_all(tx)?;
    snapshot::drop_all(tx)?;
    tx.sql()
        .execute("DELETE FROM doc_state", [])
        .map_err(StoreError::from)?;
    // With no snapshot and no recorded state, every document loads from
    // the whole log and is derived in full.
    let mut out = CaughtUp::default();
    for (doc, _) in tx.log().doc_heads_seq()? {
        refresh(tx, &doc, &invalid, None, &mut out)?;
    }
    let after = rows::dump(tx)?;
    let differing = before.symmetric_difference(&after).count();
    Ok(Rebuilt {
        documents: out.documents,
        rows: after.len(),
        differing,
    })
}

/// What `rebuild-views` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rebuilt {
    pub documents: usize,
    pub rows: usize,
    /// Rows present before and not after, or after and not before.
    pub differing: usize,
}

#[cfg(test)]
mod tests;
