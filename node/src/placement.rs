//! Whom a node believes wrote a pulled change: it admits to its log only
//! changes whose author it can place.
//!
//! In a network governed by a registry, an author is placed when the
//! registry the node holds knows the key (active or retired: the registry's
//! verdict then judges each change against the cuts). Without an admin, the
//! relay decides who may write (its allowlist, which the node fetches from
//! it): an author is placed when that list admits (or admitted) it for the
//! document. Either way a change the node cannot place goes to the bounded
//! quarantine (`store/quarantine.rs`), never to the log.

use crate::store::NodeTx;
use accordo_protocol::authority::Member;
use accordo_protocol::doc::DocId;
use accordo_protocol::envelope::VerifiedChange;
use accordo_protocol::identity::NodeId;
use accordo_protocol::registry::{ChangeMeta, Registry, RegistryChange};
use accordo_protocol::sync::Placement;
use accordo_store::StoreError;
use std::collections::BTreeMap;

pub enum Placer {
    /// Keys the registry held in the log knows.
    Registry(Box<Registry>),
    /// The relay's allowlist, removed keys included.
    Allowlist(BTreeMap<NodeId, Member>),
}

impl Placer {
    /// The placer for a node with these pinned admin keys (none: allowlist).
    pub fn load(tx: &NodeTx<'_>, anchors: &[NodeId]) -> Result<Placer, StoreError> {
        if anchors.is_empty() {
            return Ok(Placer::Allowlist(tx.relay_members()?));
        }
        let statements = tx
            .log()
            .doc_changes(&DocId::Registry)?
            .iter()
            .map(|env| {
                ChangeMeta::of_stored(env)
                    .map(|m| RegistryChange::from_meta(&m))
                    .map_err(|e| StoreError::Corrupt(format!("stored registry change: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Placer::Registry(Box::new(Registry::derive(
            anchors.iter().copied(),
            &statements,
        ))))
    }

    /// Whether `author` may have written `doc` (before verification: used to
    /// decide whether the allowlist must be fetched again).
    pub fn places_author(&self, author: &NodeId, doc: &DocId) -> bool {
        match self {
            // Registry statements are judged by the registry itself (an
            // invitation is redeemed by a key not yet enrolled).
            Placer::Registry(_) if *doc == DocId::Registry => true,
            Placer::Registry(registry) => registry.members.contains_key(author),
            Placer::Allowlist(members) => members
                .get(author)
                .is_some_and(|m| m.check_write(doc).is_ok()),
        }
    }
}

impl Placement for Placer {
    fn places(&self, change: &VerifiedChange) -> bool {
        self.places_author(&change.envelope.author, &change.envelope.doc)
    }
}

/// What [`admit_pulled`] did with one response's entries.
#[derive(Debug, Default)]
pub struct Admission {
    /// Changes that entered the log (from the response or the quarantine).
    pub stored: usize,
    /// Changes of this response held in quarantine.
    pub quarantined: usize,
    /// Documents that may have new changes (the query store catches them up).
    pub docs: std::collections::BTreeSet<DocId>,
}

/// Why a response's entries cannot be stored; nothing of it is committed.
#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("relay sent {count} change(s) that fail verification; first at seq {seq}: {reason}")]
    Invalid {
        count: usize,
        seq: u64,
        reason: String,
    },
    #[error("relay sent changes of authors this node cannot place beyond its quarantine ({held} changes, {bytes} bytes held; at most {MAX_QUARANTINE_CHANGES} changes and {MAX_QUARANTINE_BYTES} bytes)")]
    QuarantineFull { held: u64, bytes: u64 },
}

use crate::store::{MAX_QUARANTINE_BYTES, MAX_QUARANTINE_CHANGES};
use accordo_protocol::sync::{accept_placed, promote};
use accordo_protocol::wire::LogEntry;

/// Verifies and admits pulled entries inside the caller's transaction:
/// registry statements first (an enrollment places its key's changes in the
/// same response), then the rest; changes of unplaced authors go to the
/// quarantine, and quarantined changes that can now be placed come out.
pub fn admit_pulled(
    tx: &NodeTx<'_>,
    anchors: &[NodeId],
    entries: Vec<LogEntry>,
) -> Result<Admission, AdmitError> {
    let mut docs: std::collections::BTreeSet<DocId> =
        entries.iter().map(|e| e.change.doc.clone()).collect();
    let (statements, data): (Vec<_>, Vec<_>) = entries
        .into_iter()
        .partition(|e| e.change.doc == DocId::Registry);
    let aside = tx.quarantined_hashes()?;
    let mut log = tx.log();
    let before = Placer::load(tx, anchors)?;
    let first = accept_placed(&mut log, statements, &before, &aside)?;
    let placer = if first.stored.is_empty() {
        before
    } else {
        Placer::load(tx, anchors)?
    };
    let second = accept_placed(&mut log, data, &placer, &aside)?;
    let refused: Vec<_> = first.refused.iter().chain(&second.refused).collect();
    if let Some((seq, reason)) = refused.first() {
        return Err(AdmitError::Invalid {
            count: refused.len(),
            seq: *seq,
            reason: reason.to_string(),
        });
    }
    let mut out = Admission {
        stored: first.stored.len() + second.stored.len(),
        quarantined: first.set_aside.len() + second.set_aside.len(),
        docs: std::collections::BTreeSet::new(),
    };
    for change in first.set_aside.iter().chain(&second.set_aside) {
        tx.quarantine(change)?;
    }
    let held = tx.quarantined()?;
    if !held.is_empty() {
        let promoted = promote(&mut log, &held, &placer)?;
        out.stored += promoted.admitted.len();
        if !promoted.admitted.is_empty() {
            docs.extend(held.iter().map(|c| c.envelope.doc.clone()));
        }
        for hash in promoted
            .admitted
            .iter()
            .chain(promoted.dropped.iter().map(|(h, _)| h))
        {
            tx.release(hash)?;
        }
    }
    let (held, bytes) = tx.quarantine_counts()?;
    if held > MAX_QUARANTINE_CHANGES || bytes > MAX_QUARANTINE_BYTES {
        return Err(AdmitError::QuarantineFull { held, bytes });
    }
    out.docs = docs;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store;
    use accordo_protocol::identity::Role;
    use accordo_protocol::testkit::{comune_doc, TestAuthor};
    use accordo_protocol::wire::ListedMember;

    fn listed(author: &TestAuthor) -> ListedMember {
        ListedMember {
            member: Member {
                node: author.id(),
                comune: "092009".parse().unwrap(),
                role: Role::Comune,
            },
            removed: false,
        }
    }

    fn entries(changes: Vec<accordo_protocol::envelope::SignedChange>) -> Vec<LogEntry> {
        changes
            .into_iter()
            .enumerate()
            .map(|(i, change)| LogEntry {
                seq: i as u64 + 1,
                change,
            })
            .collect()
    }

    /// Changes of the comune document in the log, and changes held apart.
    fn log_and_held(st: &mut store::NodeStore) -> (usize, u64) {
        st.read(|tx| {
            Ok::<_, StoreError>((
                tx.log().doc_changes(&comune_doc())?.len(),
                tx.quarantine_counts()?.0,
            ))
        })
        .unwrap()
    }

    #[test]
    fn unplaced_authors_wait_in_quarantine_and_enter_once_admitted() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = store::open(&dir.path().join("node.db")).unwrap();
        let mut member = TestAuthor::new(1, 1);
        let mut stranger = TestAuthor::new(2, 1);
        let pulled = entries(vec![
            member.edit(comune_doc(), "a", "1"),
            stranger.edit(comune_doc(), "b", "2"),
        ]);
        let got = st
            .write(|tx| {
                tx.set_relay_members(&[listed(&member)])?;
                admit_pulled(tx, &[], pulled)
            })
            .unwrap();
        assert_eq!((got.stored, got.quarantined), (1, 1));
        let (log, held) = log_and_held(&mut st);
        assert_eq!(log, 1, "the stranger's change is not in the log");
        assert_eq!(held, 1);

        // The relay admits the stranger: the next response lets it in.
        let got = st
            .write(|tx| {
                tx.set_relay_members(&[listed(&member), listed(&stranger)])?;
                admit_pulled(tx, &[], Vec::new())
            })
            .unwrap();
        assert_eq!(got.stored, 1);
        let (log, held) = log_and_held(&mut st);
        assert_eq!(log, 2);
        assert_eq!(held, 0);
    }

    #[test]
    fn a_relay_flooding_the_quarantine_is_refused_and_nothing_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let mut st = store::open(&dir.path().join("node.db")).unwrap();
        let mut stranger = TestAuthor::new(2, 1);
        let flood: Vec<_> = (0..=MAX_QUARANTINE_CHANGES)
            .map(|i| stranger.edit(comune_doc(), "f", &i.to_string()))
            .collect();
        let err = st
            .write(|tx| admit_pulled(tx, &[], entries(flood)))
            .unwrap_err();
        assert!(matches!(err, AdmitError::QuarantineFull { .. }), "{err}");
        let held = st.read(|tx| tx.quarantine_counts()).unwrap();
        assert_eq!(held, (0, 0), "the refused response left nothing behind");
    }
}
