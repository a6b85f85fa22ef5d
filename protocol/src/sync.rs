//! The node's side of sync, as a sans-IO state machine.
//!
//! A node keeps one cursor per [`Scope`] it follows (its comune's document and
//! the plan, or `All` for the metropolitan office). Each exchange pushes part
//! of the outbox and pulls what is new after the cursors. The first response
//! fixes the *target*: the relay's head when the sync began. A one-shot sync is
//! complete when every cursor has reached the target and the outbox is empty.
//!
//! Cursors advance only through [`SyncSession::commit_progress`], which the
//! node calls after the pulled entries are durably stored: a crash between
//! receiving and storing re-pulls, never skips.

use crate::envelope::{ChangeHash, SignedChange, VerifiedChange};
use crate::log::{admit, Admitted, LogStore, RejectReason};
use crate::wire::{Cursor, CursorProgress, LogEntry, Scope, SyncRequest, SyncResponse};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("relay answered for scope {0:?}, which was not asked for")]
    UnexpectedScope(Scope),
    #[error(
        "relay head {head} is behind this node's cursor {cursor}: the relay lost data it had sent"
    )]
    RelayRegressed { head: u64, cursor: u64 },
}

/// Cursors and the completion target of one sync session.
#[derive(Debug, Clone)]
pub struct SyncSession {
    cursors: BTreeMap<Scope, u64>,
    target: Option<u64>,
}

impl SyncSession {
    pub fn new(cursors: impl IntoIterator<Item = (Scope, u64)>) -> Self {
        SyncSession {
            cursors: cursors.into_iter().collect(),
            target: None,
        }
    }

    pub fn cursors(&self) -> &BTreeMap<Scope, u64> {
        &self.cursors
    }

    /// The relay's head when this session's first response was built.
    pub fn target(&self) -> Option<u64> {
        self.target
    }

    /// The next request: `push` (from the outbox, in causal order) plus every cursor.
    pub fn request(
        &self,
        push: Vec<SignedChange>,
        max_response_bytes: u32,
        wait_ms: u32,
    ) -> SyncRequest {
        SyncRequest {
            push,
            cursors: self
                .cursors
                .iter()
                .map(|(scope, after)| Cursor {
                    scope: scope.clone(),
                    after_seq: *after,
                })
                .collect(),
            max_response_bytes,
            wait_ms,
        }
    }

    /// Checks a response against the session before anything is stored.
    pub fn check_response(&mut self, resp: &SyncResponse) -> Result<(), SyncError> {
        for p in &resp.progress {
            if !self.cursors.contains_key(&p.scope) {
                return Err(SyncError::UnexpectedScope(p.scope.clone()));
            }
        }
        if let Some(cursor) = self.cursors.values().copied().find(|c| *c > resp.head_seq) {
            return Err(SyncError::RelayRegressed {
                head: resp.head_seq,
                cursor,
            });
        }
        self.target.get_or_insert(resp.head_seq);
        Ok(())
    }

    /// Advances cursors once the response's entries are durably stored.
    pub fn commit_progress(&mut self, progress: &[CursorProgress]) {
        for p in progress {
            if let Some(cursor) = self.cursors.get_mut(&p.scope) {
                *cursor = (*cursor).max(p.reached);
            }
        }
    }

    /// Whether every cursor has reached the target.
    pub fn caught_up(&self) -> bool {
        self.target
            .is_some_and(|t| self.cursors.values().all(|c| *c >= t))
    }

    /// Starts a new target on the next response (for continuous sync).
    pub fn retarget(&mut self) {
        self.target = None;
    }

    /// Forgets every cursor (after [`SyncError::RelayRegressed`]): pull all again.
    pub fn reset_cursors(&mut self) {
        for c in self.cursors.values_mut() {
            *c = 0;
        }
        self.target = None;
    }
}

/// What a node did with pulled entries.
#[derive(Debug, Default, Clone)]
pub struct Accepted {
    pub stored: Vec<ChangeHash>,
    pub duplicates: usize,
    /// Entries refused: their relay position and why. A correct relay never
    /// causes these; they mean the relay (or the path to it) is faulty.
    pub refused: Vec<(u64, RejectReason)>,
    /// Verified changes whose author the node cannot place (or that build on
    /// such a change): kept out of the log, for the node's quarantine.
    pub set_aside: Vec<VerifiedChange>,
}

/// Whether a node can place the author of a pulled change: a key it knows
/// for that document, from the registry it holds or the relay's allowlist.
/// A change it cannot place never enters its log (so it is never shown).
pub trait Placement {
    fn places(&self, change: &VerifiedChange) -> bool;
}

/// Places every author: for callers that judge authority elsewhere.
pub struct PlaceAll;

impl Placement for PlaceAll {
    fn places(&self, _: &VerifiedChange) -> bool {
        true
    }
}

/// Verifies pulled entries again and admits them to the node's own log.
/// Nodes never trust the relay: signature, actor binding, equivocation and
/// causal order are all re-checked here.
pub fn accept_entries<S: LogStore>(
    store: &mut S,
    entries: Vec<LogEntry>,
) -> Result<Accepted, S::Error> {
    accept_placed(store, entries, &PlaceAll, &BTreeSet::new())
}

/// [`accept_entries`] that sets aside, instead of admitting, a change whose
/// author `placement` cannot place or that depends on a change set aside
/// (in `aside`, already held apart, or earlier in this batch).
pub fn accept_placed<S: LogStore>(
    store: &mut S,
    entries: Vec<LogEntry>,
    placement: &dyn Placement,
    aside: &BTreeSet<ChangeHash>,
) -> Result<Accepted, S::Error> {
    let mut out = Accepted::default();
    let mut new_aside = BTreeSet::new();
    for entry in entries {
        let verified = match entry.change.verify() {
            Ok(v) => v,
            Err(e) => {
                out.refused.push((entry.seq, e.into()));
                continue;
            }
        };
        if store
            .position(&verified.envelope.doc, &verified.hash)?
            .is_some()
        {
            out.duplicates += 1;
            continue;
        }
        let builds_on_aside = verified
            .deps
            .iter()
            .any(|d| aside.contains(d) || new_aside.contains(d));
        if builds_on_aside || !placement.places(&verified) {
            new_aside.insert(verified.hash);
            out.set_aside.push(verified);
            continue;
        }
        match admit(store, &verified)? {
            Ok(Admitted::Stored(_)) => out.stored.push(verified.hash),
            Ok(Admitted::Duplicate(_)) => out.duplicates += 1,
            Err(reason) => out.refused.push((entry.seq, reason)),
        }
    }
    Ok(out)
}

/// What [`promote`] did with changes held apart.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Promoted {
    /// Now placed, with their dependencies held: admitted to the log.
    pub admitted: Vec<ChangeHash>,
    /// Refused by the log rules (an equivocation): to be dropped.
    pub dropped: Vec<(ChangeHash, RejectReason)>,
}

/// Admits changes held apart that `placement` now places and whose
/// dependencies the log holds, repeating until none moves (a change may
/// wait on another held apart). `held` is in arrival order.
pub fn promote<S: LogStore>(
    store: &mut S,
    held: &[VerifiedChange],
    placement: &dyn Placement,
) -> Result<Promoted, S::Error> {
    let mut out = Promoted::default();
    let mut waiting: Vec<&VerifiedChange> = held.iter().collect();
    loop {
        let before = waiting.len();
        let mut still = Vec::new();
        for change in waiting {
            if !placement.places(change) {
                still.push(change);
                continue;
            }
            let doc = &change.envelope.doc;
            let mut deps_held = true;
            for dep in &change.deps {
                deps_held &= store.position(doc, dep)?.is_some();
            }
            if !deps_held {
                still.push(change);
                continue;
            }
            match admit(store, change)? {
                Ok(_) => out.admitted.push(change.hash),
                Err(reason) => out.dropped.push((change.hash, reason)),
            }
        }
        waiting = still;
        if waiting.len() == before || waiting.is_empty() {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests;
