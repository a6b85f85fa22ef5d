//! Documents kept as a compacted automerge snapshot plus the changes since.
//!
//! Opening a document, a local edit or `status` would otherwise replay the
//! document's whole history from the log. The snapshot is a cache of the log,
//! never a source of truth: it records the log position it covers and which
//! of the document's changes up to there were left out as invalid under the
//! registry; when the registry's verdict on those changes is no longer the
//! same (a revocation, an enrolment that arrived late), the snapshot is
//! ignored and the document is rebuilt from the log. A snapshot is written
//! in the transaction that stored the changes it covers, once enough changes
//! have accumulated since the last one that a save pays for itself.

use crate::replica::{load_valid, ReplicaError};
use crate::store::NodeTx;
use accordo_protocol::doc::DocId;
use accordo_protocol::envelope::{parse_change, ChangeHash, SignedChange};
use accordo_protocol::log::LogStore;
use accordo_store::StoreError;
use automerge::AutoCommit;
use rusqlite::{params, OptionalExtension};
use std::collections::{BTreeSet, HashSet};

/// A new snapshot is saved once this many changes arrived since the last:
/// a save costs about as much as applying a few dozen changes to a
/// document of the same size, and loading the tail stays short.
#[cfg(not(test))]
pub const SNAPSHOT_AFTER_CHANGES: usize = 32;
/// Small in unit tests, so that random edit sequences cross it often.
#[cfg(test)]
pub const SNAPSHOT_AFTER_CHANGES: usize = 5;
/// … or once the changes since weigh this much (large imports).
pub const SNAPSHOT_AFTER_BYTES: usize = 2 * 1024 * 1024;

/// A document as loaded: the automerge document and what its tail was.
pub struct Loaded {
    pub doc: AutoCommit,
    /// Log position of the document's last change (0: none).
    pub head_seq: u64,
    /// Changes of the tail applied on top of the snapshot, or the whole
    /// history when there was no usable snapshot.
    pub tail_changes: usize,
    pub tail_bytes: usize,
    /// Whether a snapshot was used.
    pub from_snapshot: bool,
}

struct Stored {
    bytes: Vec<u8>,
    seq: u64,
    left_out: BTreeSet<ChangeHash>,
}

fn stored(tx: &NodeTx<'_>, doc: &DocId) -> Result<Option<Stored>, StoreError> {
    let row = tx
        .sql()
        .query_row(
            "SELECT snapshot, snapshot_seq, snapshot_left_out FROM doc_state
             WHERE doc = ?1 AND snapshot IS NOT NULL",
            [doc.canonical()],
            |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                ))
            },
        )
        .optional()?;
    row.map(|(bytes, seq, left)| {
        Ok(Stored {
            bytes,
            seq: seq as u64,
            left_out: hashes_from_blob(&left)?,
        })
    })
    .transpose()
}

/// Sorted 32-byte hashes, concatenated.
pub fn hashes_blob(hashes: &BTreeSet<ChangeHash>) -> Vec<u8> {
    hashes.iter().flat_map(|h| h.0).collect()
}

pub fn hashes_from_blob(blob: &[u8]) -> Result<BTreeSet<ChangeHash>, StoreError> {
    if !blob.len().is_multiple_of(32) {
        return Err(StoreError::Corrupt(format!(
            "a hash list of {} bytes",
            blob.len()
        )));
    }
    Ok(blob
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            ChangeHash(h)
        })
        .collect())
}

/// The invalid changes of `doc` at or before log position `seq`.
pub fn invalid_up_to(
    tx: &NodeTx<'_>,
    doc: &DocId,
    invalid: &HashSet<ChangeHash>,
    seq: u64,
) -> Result<BTreeSet<ChangeHash>, StoreError> {
    let log = tx.log();
    let mut out = BTreeSet::new();
    for h in invalid {
        if log.position(doc, h)?.is_some_and(|at| at <= seq) {
            out.insert(*h);
        }
    }
    Ok(out)
}

/// Loads `doc` without the `invalid` changes: its snapshot plus the valid
/// changes since, or the whole log when the snapshot is missing, stale or
/// its tail cannot be applied.
pub fn load(
    tx: &NodeTx<'_>,
    doc: &DocId,
    invalid: &HashSet<ChangeHash>,
) -> Result<Loaded, ReplicaError> {
    let head_seq = tx.log().doc_head_seq(doc)?;
    if let Some(snap) = stored(tx, doc)? {
        if invalid_up_to(tx, doc, invalid, snap.seq)? == snap.left_out {
            let tail = tx.log().doc_changes_after(doc, snap.seq)?;
            if let Some(loaded) = apply_tail(doc, &snap, &tail, invalid, head_seq)? {
                return Ok(loaded);
            }
        }
    }
    let changes = tx.log().doc_changes(doc)?;
    let tail_bytes = changes.iter().map(|c| c.change.len()).sum();
    Ok(Loaded {
        doc: load_valid(doc, &changes, invalid)?,
        head_seq,
        tail_changes: changes.len(),
        tail_bytes,
        from_snapshot: false,
    })
}

/// The snapshot with the valid changes of `tail` applied; `None` when
/// automerge refuses (the caller rebuilds from the log, which leaves out
/// and reports the change at fault).
fn apply_tail(
    doc: &DocId,
    snap: &Stored,
    tail: &[(u64, SignedChange)],
    invalid: &HashSet<ChangeHash>,
    head_seq: u64,
) -> Result<Option<Loaded>, ReplicaError> {
    let mut am = AutoCommit::load(&snap.bytes).map_err(|e| ReplicaError::Load {
        doc: doc.clone(),
        detail: format!("snapshot: {e}"),
    })?;
    let (changes, bytes) = valid_changes(doc, tail, invalid)?;
    let n = changes.len();
    let applied =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| am.apply_changes(changes)));
    match applied {
        Ok(Ok(())) => Ok(Some(Loaded {
            doc: am,
            head_seq,
            tail_changes: n,
            tail_bytes: bytes,
            from_snapshot: true,
        })),
        _ => Ok(None),
    }
}

/// `loaded` (the document up to log position `after_seq`, without
/// `invalid`) with the valid changes of `doc` after `after_seq` applied, as
/// [`load`] would give it; `None` when automerge refuses them (the caller
/// loads the document from the store, which leaves out and reports the
/// change at fault).
pub fn apply_after(
    tx: &NodeTx<'_>,
    doc: &DocId,
    mut loaded: Loaded,
    after_seq: u64,
    invalid: &HashSet<ChangeHash>,
) -> Result<Option<Loaded>, ReplicaError> {
    let head_seq = tx.log().doc_head_seq(doc)?;
    let tail = tx.log().doc_changes_after(doc, after_seq)?;
    let (changes, bytes) = valid_changes(doc, &tail, invalid)?;
    let n = changes.len();
    let am = &mut loaded.doc;
    let applied =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| am.apply_changes(changes)));
    match applied {
        Ok(Ok(())) => {
            loaded.head_seq = head_seq;
            loaded.tail_changes += n;
            loaded.tail_bytes += bytes;
            Ok(Some(loaded))
        }
        _ => Ok(None),
    }
}

/// The changes of `tail` not in `invalid`, parsed, and their size in bytes.
fn valid_changes(
    doc: &DocId,
    tail: &[(u64, SignedChange)],
    invalid: &HashSet<ChangeHash>,
) -> Result<(Vec<automerge::Change>, usize), ReplicaError> {
    let mut changes = Vec::with_capacity(tail.len());
    let mut bytes = 0;
    for (_, env) in tail {
        let change = parse_change(&env.change).map_err(|e| ReplicaError::Load {
            doc: doc.clone(),
            detail: e.to_string(),
        })?;
        if !invalid.contains(&ChangeHash::from(change.hash())) {
            bytes += env.change.len();
            changes.push(change);
        }
    }
    Ok((changes, bytes))
}

/// Saves a compacted snapshot of `loaded` when its tail has grown past the
/// thresholds. `invalid` must be the set `loaded` was loaded without.
pub fn maybe_save(
    tx: &NodeTx<'_>,
    doc_id: &DocId,
    loaded: &mut Loaded,
    invalid: &HashSet<ChangeHash>,
) -> Result<bool, ReplicaError> {
    if loaded.tail_changes < SNAPSHOT_AFTER_CHANGES && loaded.tail_bytes < SNAPSHOT_AFTER_BYTES {
        return Ok(false);
    }
    save(tx, doc_id, &mut loaded.doc, loaded.head_seq, invalid)?;
    loaded.tail_changes = 0;
    loaded.tail_bytes = 0;
    loaded.from_snapshot = true;
    Ok(true)
}

/// Saves `doc` as the snapshot covering the log up to `seq`.
pub fn save(
    tx: &NodeTx<'_>,
    doc_id: &DocId,
    doc: &mut AutoCommit,
    seq: u64,
    invalid: &HashSet<ChangeHash>,
) -> Result<(), ReplicaError> {
    let left_out = invalid_up_to(tx, doc_id, invalid, seq)?;
    let bytes = doc.save();
    tx.sql()
        .execute(
            "INSERT INTO doc_state (doc, view_seq, heads, left_out, snapshot, snapshot_seq, snapshot_left_out)
             VALUES (?1, 0, '', x'', ?2, ?3, ?4)
             ON CONFLICT (doc) DO UPDATE SET snapshot = ?2, snapshot_seq = ?3, snapshot_left_out = ?4",
            params![doc_id.canonical(), bytes, seq as i64, hashes_blob(&left_out)],
        )
        .map_err(StoreError::from)?;
    Ok(())
}

/// Forgets every snapshot (`rebuild-views` starts from the log alone).
pub fn drop_all(tx: &NodeTx<'_>) -> Result<(), StoreError> {
    tx.sql().execute(
        "UPDATE doc_state SET snapshot = NULL, snapshot_seq = 0, snapshot_left_out = x''",
        [],
    )?;
    Ok(())
}
