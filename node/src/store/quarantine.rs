//! What a node holds apart from its log: pulled changes whose author it
//! cannot place (a key neither its registry nor the relay's allowlist knows
//! for that document, or a change built on one), in a small bounded
//! quarantine; and, in a network without an admin, the relay's allowlist it
//! places authors with.
//!
//! A quarantined change is never shown and never counts for anything. It
//! enters the log only once its author can be placed (an enrollment or an
//! allowlist entry arrives later) and its dependencies are held.

use super::NodeTx;
use accordo_protocol::authority::Member;
use accordo_protocol::envelope::{ChangeHash, VerifiedChange};
use accordo_protocol::identity::NodeId;
use accordo_protocol::wire::ListedMember;
use accordo_store::{decode_envelope, encode_envelope, hash_column, member_from_row, StoreError};
use rusqlite::params;
use std::collections::{BTreeMap, BTreeSet};

/// Most changes a node holds in quarantine. An honest relay never sends a
/// change of an author it did not admit, so anything here is a relay fault
/// or a race with an enrollment; a relay that sends more is refused.
pub const MAX_QUARANTINE_CHANGES: u64 = 1_000;
/// Most change bytes held in quarantine (a few full pull batches).
pub const MAX_QUARANTINE_BYTES: u64 = 8 * 1024 * 1024;

pub const QUARANTINE_SCHEMA: &str = "
    CREATE TABLE quarantine (
        arrived INTEGER PRIMARY KEY AUTOINCREMENT,
        hash BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),
        doc TEXT NOT NULL,
        author BLOB NOT NULL CHECK (length(author) = 32),
        bytes INTEGER NOT NULL,
        envelope BLOB NOT NULL
    ) STRICT;
    CREATE TABLE relay_members (
        node BLOB PRIMARY KEY CHECK (length(node) = 32),
        comune TEXT NOT NULL,
        role TEXT NOT NULL,
        removed INTEGER NOT NULL
    ) STRICT;";

impl NodeTx<'_> {
    /// Holds `change` apart (idempotent).
    pub fn quarantine(&self, change: &VerifiedChange) -> Result<(), StoreError> {
        let envelope = encode_envelope(&change.envelope)?;
        self.tx.execute(
            "INSERT OR IGNORE INTO quarantine (hash, doc, author, bytes, envelope)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                &change.hash.0[..],
                change.envelope.doc.canonical(),
                &change.envelope.author.0[..],
                change.envelope.change.len() as i64,
                envelope
            ],
        )?;
        Ok(())
    }

    /// Every quarantined change, re-verified, in arrival order.
    pub fn quarantined(&self) -> Result<Vec<VerifiedChange>, StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT envelope FROM quarantine ORDER BY arrived")?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        rows.map(|blob| {
            decode_envelope(&blob?)?
                .verify()
                .map_err(|e| StoreError::Corrupt(format!("quarantined envelope: {e}")))
        })
        .collect()
    }

    pub fn quarantined_hashes(&self) -> Result<BTreeSet<ChangeHash>, StoreError> {
        let mut stmt = self.tx.prepare_cached("SELECT hash FROM quarantine")?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        rows.map(|h| hash_column(h?)).collect()
    }

    pub fn release(&self, hash: &ChangeHash) -> Result<(), StoreError> {
        self.tx
            .execute("DELETE FROM quarantine WHERE hash = ?1", [&hash.0[..]])?;
        Ok(())
    }

    /// Number and change bytes of quarantined changes.
    pub fn quarantine_counts(&self) -> Result<(u64, u64), StoreError> {
        Ok(self.tx.query_row(
            "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM quarantine",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )?)
    }

    /// Replaces the relay's allowlist as this node knows it.
    pub fn set_relay_members(&self, members: &[ListedMember]) -> Result<(), StoreError> {
        self.tx.execute("DELETE FROM relay_members", [])?;
        let mut stmt = self.tx.prepare_cached(
            "INSERT OR REPLACE INTO relay_members (node, comune, role, removed) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for m in members {
            stmt.execute(params![
                &m.member.node.0[..],
                m.member.comune.as_str(),
                m.member.role.as_str(),
                m.removed
            ])?;
        }
        Ok(())
    }

    /// The relay's allowlist as last fetched (removed keys included: what
    /// they wrote before their removal stays theirs).
    pub fn relay_members(&self) -> Result<BTreeMap<NodeId, Member>, StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT node, comune, role FROM relay_members")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        rows.map(|row| {
            let (node, comune, role) = row?;
            let member = member_from_row(&node, &comune, &role)?;
            Ok((member.node, member))
        })
        .collect()
    }
}
