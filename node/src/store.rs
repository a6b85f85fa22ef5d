//! The node's durable store (SQLite, WAL, `synchronous=FULL`).
//!
//! It holds the node's settings, its verified, causally closed change log
//! (every change it wrote or received, each after its dependencies; shared
//! schema in `accordo-store`), the outbox of local changes the relay has not
//! acknowledged yet, and the sync cursors. A local edit commits its change and
//! its outbox entry in one transaction before the command returns; pulled
//! changes and the cursors that cover them commit together, so a crash
//! re-pulls, never skips.
//!
//! Several processes may use one directory at once (`run` plus edits): SQLite
//! serialises writers, and every write is one short IMMEDIATE transaction.

mod quarantine;

pub use quarantine::{MAX_QUARANTINE_BYTES, MAX_QUARANTINE_CHANGES};

use accordo_protocol::envelope::{ChangeHash, SignedChange};
use accordo_protocol::wire::Scope;
use accordo_store::{decode_envelope, hash_column, SqlLog, StoreError, LOG_SCHEMA};
use rusqlite::{params, Connection, Transaction, TransactionBehavior};
use std::collections::BTreeMap;
use std::path::Path;

/// Each entry upgrades the schema by one version.
fn migrations() -> [String; 11] {
    [
        format!(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
        {LOG_SCHEMA}
        CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY REFERENCES log (seq),
            hash BLOB NOT NULL,
            rejected TEXT
        ) STRICT;
        CREATE INDEX outbox_hash ON outbox (hash);
        CREATE TABLE cursors (scope TEXT PRIMARY KEY, after_seq INTEGER NOT NULL) STRICT;"
        ),
        // Issue 11.5: changes of authors a node cannot place are held apart.
        quarantine::QUARANTINE_SCHEMA.to_owned(),
        // Issue 14: snapshots and the query store (node/src/views/).
        include_str!("store/views.sql").to_owned(),
        // Issue 14: the project's own zone as a column and the summary tables of the aggregates.
        include_str!("store/views_totals.sql").to_owned(),
        // Issue 12: accounts of the web application (node/src/users.rs).
        include_str!("store/users.sql").to_owned(),
        // Issue 12: invitations an admin signed (node/src/invitations.rs).
        include_str!("store/invitations.sql").to_owned(),
        // Issue 12: read-only API tokens for integrations (node/src/api_tokens.rs).
        include_str!("store/api_tokens.sql").to_owned(),
        // Issue 12: newest change times and covering indexes for the web pages.
        include_str!("store/views_pages.sql").to_owned(),
        // Issue 17: publication state and the plan's structure (node/src/views/).
        include_str!("store/views_public.sql").to_owned(),
        // Issue 17: the metropolitan office's publication decisions.
        include_str!("store/views_publication.sql").to_owned(),
        // Issue 14: the report reads each project's state basis from the list's index.
        include_str!("store/views_report.sql").to_owned(),
    ]
}

pub struct NodeStore {
    conn: Connection,
}

/// The schema version this binary writes: the number of migrations.
pub fn schema_version() -> i64 {
    migrations().len() as i64
}

pub fn open(path: &Path) -> Result<NodeStore, StoreError> {
    let migrations = migrations();
    let steps: Vec<&str> = migrations.iter().map(String::as_str).collect();
    Ok(NodeStore {
        conn: accordo_store::open(path, &steps)?,
    })
}

/// A local change waiting for the relay's acknowledgement.
#[derive(Debug, Clone)]
pub struct OutboxEntry {
    pub hash: ChangeHash,
    pub change: SignedChange,
}

impl NodeStore {
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        accordo_store::meta(&self.conn, key)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        accordo_store::set_meta(&self.conn, key, value)
    }

    /// Runs `f` in one IMMEDIATE transaction (the write lock is taken first, so
    /// a read-modify-write cannot race another process) and commits on success.
    pub fn write<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&NodeTx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let out = f(&NodeTx { tx: &tx })?;
        tx.commit().map_err(StoreError::from)?;
        Ok(out)
    }

    /// Runs `f` over a consistent read snapshot.
    pub fn read<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&NodeTx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let tx = self.conn.transaction().map_err(StoreError::from)?;
        let out = f(&NodeTx { tx: &tx })?;
        tx.commit().map_err(StoreError::from)?;
        Ok(out)
    }

    pub fn integrity_check(&self) -> Result<String, StoreError> {
        accordo_store::integrity_check(&self.conn)
    }
}

/// The store inside one transaction.
pub struct NodeTx<'a> {
    tx: &'a Transaction<'a>,
}

impl<'a> NodeTx<'a> {
    /// The change log in this transaction.
    pub fn log(&self) -> SqlLog<'a> {
        SqlLog::new(self.tx)
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        accordo_store::meta(self.tx, key)
    }

    /// The transaction itself, for the tables kept by other modules
    /// (snapshots and the query store).
    pub fn sql(&self) -> &'a Transaction<'a> {
        self.tx
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        accordo_store::set_meta(self.tx, key, value)
    }

    /// Queues a stored local change for push.
    pub fn enqueue(&self, seq: u64, hash: &ChangeHash) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT OR IGNORE INTO outbox (seq, hash) VALUES (?1, ?2)",
            params![seq as i64, &hash.0[..]],
        )?;
        Ok(())
    }

    /// Pending (not rejected) outbox entries in log order, up to `max_bytes` of
    /// change bytes and `max_count` entries (at least one if any is pending).
    pub fn outbox(
        &self,
        max_bytes: usize,
        max_count: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT o.hash, l.envelope FROM outbox o JOIN log l ON l.seq = o.seq
             WHERE o.rejected IS NULL ORDER BY o.seq",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        let mut bytes = 0;
        while let Some(row) = rows.next()? {
            if out.len() >= max_count || (bytes >= max_bytes && !out.is_empty()) {
                break;
            }
            let hash = hash_column(row.get(0)?)?;
            let change = decode_envelope(&row.get::<_, Vec<u8>>(1)?)?;
            bytes += change.change.len();
            out.push(OutboxEntry { hash, change });
        }
        Ok(out)
    }

    /// Numbers of pending and of rejected outbox entries.
    pub fn outbox_counts(&self) -> Result<(u64, u64), StoreError> {
        Ok(self.tx.query_row(
            "SELECT COUNT(*) FILTER (WHERE rejected IS NULL),
                    COUNT(*) FILTER (WHERE rejected IS NOT NULL) FROM outbox",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )?)
    }

    /// Outbox entries the relay refused, with its reason. Kept, never dropped.
    pub fn rejected(&self) -> Result<Vec<(ChangeHash, String)>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT hash, rejected FROM outbox WHERE rejected IS NOT NULL ORDER BY seq",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, String>(1)?))
        })?;
        rows.map(|row| {
            let (hash, why) = row?;
            Ok((hash_column(hash)?, why))
        })
        .collect()
    }

    /// Removes acknowledged entries from the outbox.
    pub fn acknowledge(&self, hashes: &[ChangeHash]) -> Result<usize, StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("DELETE FROM outbox WHERE hash = ?1")?;
        let mut n = 0;
        for h in hashes {
            n += stmt.execute([&h.0[..]])?;
        }
        Ok(n)
    }

    /// Marks an outbox entry as refused by the relay; the change stays stored.
    pub fn mark_rejected(&self, hash: &ChangeHash, reason: &str) -> Result<(), StoreError> {
        self.tx.execute(
            "UPDATE outbox SET rejected = ?2 WHERE hash = ?1",
            params![&hash.0[..], reason],
        )?;
        Ok(())
    }

    /// Puts refused entries back in the queue (`sync --retry-rejected`).
    pub fn requeue_rejected(&self) -> Result<usize, StoreError> {
        Ok(self.tx.execute(
            "UPDATE outbox SET rejected = NULL WHERE rejected IS NOT NULL",
            [],
        )?)
    }

    pub fn cursors(&self) -> Result<BTreeMap<Scope, u64>, StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT scope, after_seq FROM cursors")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        rows.map(|row| {
            let (scope, after) = row?;
            Ok((scope_from_key(&scope)?, after as u64))
        })
        .collect()
    }

    /// Starts following `scope` from the beginning, if not followed yet.
    pub fn follow(&self, scope: &Scope) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT OR IGNORE INTO cursors (scope, after_seq) VALUES (?1, 0)",
            [scope_key(scope)],
        )?;
        Ok(())
    }

    /// Moves a cursor forward, never back (two sync loops may race).
    pub fn advance_cursor(&self, scope: &Scope, reached: u64) -> Result<(), StoreError> {
        self.tx.execute(
            "UPDATE cursors SET after_seq = MAX(after_seq, ?2) WHERE scope = ?1",
            params![scope_key(scope), reached as i64],
        )?;
        Ok(())
    }

    /// Sets every cursor back to 0: the relay lost data, pull (and push) again.
    pub fn reset_cursors(&self) -> Result<(), StoreError> {
        self.tx.execute("UPDATE cursors SET after_seq = 0", [])?;
        Ok(())
    }
}

/// Text key of a cursor scope in the `cursors` table.
fn scope_key(scope: &Scope) -> String {
    match scope {
        Scope::All => "*".to_owned(),
        Scope::Doc(doc) => doc.canonical(),
    }
}

fn scope_from_key(key: &str) -> Result<Scope, StoreError> {
    if key == "*" {
        return Ok(Scope::All);
    }
    key.parse()
        .map(Scope::Doc)
        .map_err(|e| StoreError::Corrupt(format!("cursor scope: {e}")))
}
