//! The node's state at a glance: identity, role, relay, outbox (pending and
//! rejected changes, with why), last contact with the relay, and each
//! document held with its change count and heads. `accordo status` prints
//! it; the web application shows it and serves it at `/api/v1/status`.

use crate::client;
use crate::replica::{Replica, ReplicaError};
use accordo_domain::comuni;
use accordo_protocol::doc::DocId;
use accordo_protocol::wire::Scope;
use accordo_store::StoreError;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct Rejected {
    pub hash: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DocRow {
    pub doc: String,
    pub comune_name: Option<&'static str>,
    pub changes: u64,
    pub heads: Vec<String>,
}

/// What `accordo status --format json` prints (field names are part of the
/// command-line contract).
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub node_id: String,
    pub comune: String,
    pub comune_name: Option<&'static str>,
    pub role: String,
    pub relay: String,
    pub network: String,
    pub outbox_pending: u64,
    pub outbox_rejected: u64,
    pub rejected: Vec<Rejected>,
    pub cursors: BTreeMap<String, u64>,
    pub docs: Vec<DocRow>,
    pub quarantined: u64,
    pub last_contact_ms: Option<u64>,
}

/// Reads the status; documents' heads come from the query store (kept
/// current with the log), so no document is loaded.
pub fn read(replica: &mut Replica) -> Result<Status, ReplicaError> {
    let (pending, rejected_n, rejected, cursors, docs, quarantined) = replica.store.read(|tx| {
        let (p, r) = tx.outbox_counts()?;
        Ok::<_, StoreError>((
            p,
            r,
            tx.rejected()?,
            tx.cursors()?,
            tx.log().docs()?,
            tx.quarantine_counts()?.0,
        ))
    })?;
    let mut heads: BTreeMap<DocId, Vec<String>> = replica
        .query(crate::views::doc_heads)?
        .into_iter()
        .collect();
    let mut doc_rows = Vec::new();
    for (doc, changes) in docs {
        let heads = match heads.remove(&doc) {
            Some(h) => h,
            // A document whose changes are all invalid has no view row.
            None => {
                let mut am = replica.materialise(&doc)?;
                let mut h: Vec<String> = am.get_heads().iter().map(|h| h.to_string()).collect();
                h.sort();
                h
            }
        };
        let comune_name = match &doc {
            DocId::Comune(c) => comuni::name(c.as_str()),
            _ => None,
        };
        doc_rows.push(DocRow {
            doc: doc.to_string(),
            comune_name,
            changes,
            heads,
        });
    }
    let cursors = cursors
        .iter()
        .map(|(scope, seq)| {
            let key = match scope {
                Scope::All => "*".to_owned(),
                Scope::Doc(d) => d.to_string(),
            };
            (key, *seq)
        })
        .collect();
    let s = &replica.settings;
    Ok(Status {
        node_id: replica.id.to_string(),
        comune: s.comune.as_str().to_owned(),
        comune_name: comuni::name(s.comune.as_str()),
        role: s.role.as_str().to_owned(),
        relay: s.relay.to_string(),
        network: s.network.clone(),
        outbox_pending: pending,
        outbox_rejected: rejected_n,
        rejected: rejected
            .iter()
            .map(|(h, why)| Rejected {
                hash: h.to_string(),
                reason: why.clone(),
            })
            .collect(),
        cursors,
        docs: doc_rows,
        quarantined,
        last_contact_ms: replica
            .store
            .meta(client::LAST_CONTACT_META)?
            .and_then(|v| v.parse::<u64>().ok()),
    })
}
