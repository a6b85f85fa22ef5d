//! The causally closed change log and the rules for adding to it.
//!
//! Both the relay and every node keep one: an append-only sequence of verified
//! envelopes in which every change comes after all of its dependencies. The
//! rules are the same on both sides and live here, over the [`LogStore`]
//! trait, so the relay (SQLite, `synchronous=FULL`), the node (SQLite, WAL) and
//! the in-memory test log ([`MemLog`]) cannot drift apart:
//!
//! * a change already held (same document and hash) is a duplicate, not an error;
//! * a second, different change for an (document, actor, seq) already held is
//!   equivocation and is refused;
//! * a change whose dependencies are not all held is refused;
//! * on the relay, the author must be allowed to write the document.

use crate::authority::{AuthorityError, Membership};
use crate::doc::DocId;
use crate::envelope::{ChangeHash, EnvelopeError, VerifiedChange, ACTOR_ID_BYTES};
use crate::wire::{
    CursorProgress, LogEntry, Rejected, Scope, SyncRequest, SyncResponse, MAX_BATCH_BYTES,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Why a change was not stored. Sent to the author in the push response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum RejectReason {
    #[error("invalid envelope: {0}")]
    Envelope(String),
    #[error("not authorised: {0}")]
    Unauthorized(AuthorityError),
    #[error("{} dependencies are not held (first: {})", .0.len(), .0.first().map(|h| h.to_string()).unwrap_or_default())]
    MissingDeps(Vec<ChangeHash>),
    #[error(
        "equivocation: a different change for actor {actor} seq {seq} is already held ({held})"
    )]
    Equivocation {
        actor: String,
        seq: u64,
        held: ChangeHash,
    },
}

impl From<EnvelopeError> for RejectReason {
    fn from(e: EnvelopeError) -> Self {
        RejectReason::Envelope(e.to_string())
    }
}

/// Storage behind a change log. Implementations run inside one transaction
/// per batch; a caller acknowledges only after that transaction commits.
pub trait LogStore {
    type Error: std::error::Error + Send + Sync + 'static;

    /// Log position of a held change, if held.
    fn position(&self, doc: &DocId, hash: &ChangeHash) -> Result<Option<u64>, Self::Error>;
    /// Hash of the change held for (doc, actor, seq), if any.
    fn hash_for_actor_seq(
        &self,
        doc: &DocId,
        actor: &[u8; ACTOR_ID_BYTES],
        seq: u64,
    ) -> Result<Option<ChangeHash>, Self::Error>;
    /// Appends a change whose rules were checked; returns its new position.
    fn append(&mut self, change: &VerifiedChange) -> Result<u64, Self::Error>;
    /// The last position in the log (0 when empty).
    fn head_seq(&self) -> Result<u64, Self::Error>;
    /// Entries in `scope` with `after < seq <= up_to`, in order, stopping once
    /// their change bytes exceed `max_bytes` (at least one entry if any exists).
    fn entries(
        &self,
        scope: &Scope,
        after: u64,
        up_to: u64,
        max_bytes: usize,
    ) -> Result<Vec<LogEntry>, Self::Error>;
}

/// The outcome of offering one verified change to a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admitted {
    /// Newly appended at this position.
    Stored(u64),
    /// Already held at this position.
    Duplicate(u64),
}

/// Applies the log rules to `change` and appends it if they hold.
pub fn admit<S: LogStore>(
    store: &mut S,
    change: &VerifiedChange,
) -> Result<Result<Admitted, RejectReason>, S::Error> {
    let doc = &change.envelope.doc;
    if let Some(pos) = store.position(doc, &change.hash)? {
        return Ok(Ok(Admitted::Duplicate(pos)));
    }
    if let Some(held) = store.hash_for_actor_seq(doc, &change.actor, change.seq)? {
        return Ok(Err(RejectReason::Equivocation {
            actor: hex::encode(change.actor),
            seq: change.seq,
            held,
        }));
    }
    let mut missing = Vec::new();
    for dep in &change.deps {
        if store.position(doc, dep)?.is_none() {
            missing.push(*dep);
        }
    }
    if !missing.is_empty() {
        return Ok(Err(RejectReason::MissingDeps(missing)));
    }
    Ok(Ok(Admitted::Stored(store.append(change)?)))
}

/// The relay's handling of one push: verify, check authority, admit each
/// envelope in order. Returns acks (stored or already held) and rejects.
/// The caller must commit the store before sending the acks.
pub fn ingest_push<S: LogStore>(
    store: &mut S,
    membership: &dyn Membership,
    verified: Vec<Result<VerifiedChange, EnvelopeError>>,
) -> Result<(Vec<ChangeHash>, Vec<Rejected>), S::Error> {
    let mut acks = Vec::new();
    let mut rejects = Vec::new();
    for (index, item) in verified.into_iter().enumerate() {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        let change = match item {
            Ok(change) => change,
            Err(e) => {
                rejects.push(Rejected {
                    index,
                    hash: None,
                    reason: e.into(),
                });
                continue;
            }
        };
        let authority = membership.authorize(&change);
        let outcome = match authority {
            Ok(()) => admit(store, &change)?,
            Err(e) => Err(RejectReason::Unauthorized(e)),
        };
        match outcome {
            Ok(_) => acks.push(change.hash),
            Err(reason) => rejects.push(Rejected {
                index,
                hash: Some(change.hash),
                reason,
            }),
        }
    }
    Ok((acks, rejects))
}

/// Builds the pull half of a sync response from a consistent view of the log:
/// for each cursor, entries after it up to the current head, within budget.
/// Entries whose hash is in `exclude` (just pushed by the requester) are left
/// out but still counted as reached.
pub fn serve_pull<S: LogStore>(
    store: &S,
    request: &SyncRequest,
    exclude: &HashSet<ChangeHash>,
) -> Result<(u64, Vec<CursorProgress>, Vec<LogEntry>), S::Error> {
    let head = store.head_seq()?;
    let mut budget = (request.max_response_bytes as usize).min(MAX_BATCH_BYTES);
    let mut progress = Vec::with_capacity(request.cursors.len());
    let mut out: Vec<LogEntry> = Vec::new();
    let mut seen = HashSet::new();
    for cursor in &request.cursors {
        if cursor.after_seq >= head || (budget == 0 && !out.is_empty()) {
            progress.push(CursorProgress {
                scope: cursor.scope.clone(),
                reached: cursor.after_seq,
            });
            continue;
        }
        let entries = store.entries(&cursor.scope, cursor.after_seq, head, budget.max(1))?;
        let truncated = entries.iter().map(|e| e.change.change.len()).sum::<usize>() >= budget;
        let reached = match entries.last() {
            Some(last) if truncated => last.seq,
            _ => head,
        };
        for entry in entries {
            budget = budget.saturating_sub(entry.change.change.len());
            // A doc cursor and an All cursor may overlap; send each entry once.
            if seen.insert(entry.seq) && !exclude_entry(exclude, &entry) {
                out.push(entry);
            }
        }
        progress.push(CursorProgress {
            scope: cursor.scope.clone(),
            reached,
        });
    }
    out.sort_by_key(|e| e.seq);
    Ok((head, progress, out))
}

fn exclude_entry(exclude: &HashSet<ChangeHash>, entry: &LogEntry) -> bool {
    if exclude.is_empty() {
        return false;
    }
    // Parsing is the only way to learn the hash; only done when the requester pushed.
    crate::envelope::parse_change(&entry.change.change)
        .map(|c| exclude.contains(&ChangeHash::from(c.hash())))
        .unwrap_or(false)
}

/// A complete sync exchange on the relay side, over one store transaction.
pub fn serve_sync<S: LogStore>(
    store: &mut S,
    membership: &dyn Membership,
    request: &SyncRequest,
    verified: Vec<Result<VerifiedChange, EnvelopeError>>,
) -> Result<SyncResponse, S::Error> {
    let (acks, rejects) = ingest_push(store, membership, verified)?;
    let exclude: HashSet<ChangeHash> = acks.iter().copied().collect();
    let (head_seq, progress, entries) = serve_pull(store, request, &exclude)?;
    Ok(SyncResponse {
        acks,
        rejects,
        head_seq,
        progress,
        entries,
    })
}

/// An in-memory [`LogStore`], for tests and simulations.
#[derive(Debug, Default, Clone)]
pub struct MemLog {
    entries: Vec<(LogEntry, ChangeHash)>,
    by_hash: HashMap<(DocId, ChangeHash), u64>,
    by_actor_seq: HashMap<(DocId, [u8; ACTOR_ID_BYTES], u64), ChangeHash>,
}

impl MemLog {
    /// Every held entry in log order.
    pub fn all(&self) -> impl Iterator<Item = &LogEntry> {
        self.entries.iter().map(|(e, _)| e)
    }

    /// Hashes held per document.
    pub fn hashes(&self) -> BTreeMap<DocId, Vec<ChangeHash>> {
        let mut out: BTreeMap<DocId, Vec<ChangeHash>> = BTreeMap::new();
        for (entry, hash) in &self.entries {
            out.entry(entry.change.doc.clone()).or_default().push(*hash);
        }
        out
    }
}

impl LogStore for MemLog {
    type Error = std::convert::Infallible;

    fn position(&self, doc: &DocId, hash: &ChangeHash) -> Result<Option<u64>, Self::Error> {
        Ok(self.by_hash.get(&(doc.clone(), *hash)).copied())
    }

    fn hash_for_actor_seq(
        &self,
        doc: &DocId,
        actor: &[u8; ACTOR_ID_BYTES],
        seq: u64,
    ) -> Result<Option<ChangeHash>, Self::Error> {
        Ok(self.by_actor_seq.get(&(doc.clone(), *actor, seq)).copied())
    }

    fn append(&mut self, change: &VerifiedChange) -> Result<u64, Self::Error> {
        let seq = self.entries.len() as u64 + 1;
        let doc = change.envelope.doc.clone();
        self.by_hash.insert((doc.clone(), change.hash), seq);
        self.by_actor_seq
            .insert((doc, change.actor, change.seq), change.hash);
        let entry = LogEntry {
            seq,
            change: change.envelope.clone(),
        };
        self.entries.push((entry, change.hash));
        Ok(seq)
    }

    fn head_seq(&self) -> Result<u64, Self::Error> {
        Ok(self.entries.len() as u64)
    }

    fn entries(
        &self,
        scope: &Scope,
        after: u64,
        up_to: u64,
        max_bytes: usize,
    ) -> Result<Vec<LogEntry>, Self::Error> {
        let mut out = Vec::new();
        let mut bytes = 0;
        let up_to = up_to.min(self.entries.len() as u64);
        for (entry, _) in &self.entries[after.min(up_to) as usize..up_to as usize] {
            if let Scope::Doc(doc) = scope {
                if entry.change.doc != *doc {
                    continue;
                }
            }
            if bytes >= max_bytes && !out.is_empty() {
                break;
            }
            bytes += entry.change.change.len();
            out.push(entry.clone());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
