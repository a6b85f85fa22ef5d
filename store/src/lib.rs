//! SQLite storage shared by the node and the relay.
//!
//! Both keep the same causally closed change log (table `log`), so its SQL
//! lives here once: [`open`] applies the durability settings and versioned
//! migrations, and [`SqlLog`] implements the protocol's
//! [`LogStore`](accordo_protocol::log::LogStore) over one transaction.
//!
//! The log position is SQLite's rowid (`AUTOINCREMENT`, never reused). Writers
//! are serialised by SQLite, so commit order equals position order and a
//! reader never sees a gap.

pub mod backup;

use accordo_protocol::doc::DocId;
use accordo_protocol::envelope::{ChangeHash, SignedChange, VerifiedChange, ACTOR_ID_BYTES};
use accordo_protocol::log::LogStore;
use accordo_protocol::wire::{LogEntry, Scope};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

/// Runs store work from async code. On the multi-thread runtime the
/// binaries use, the work goes to the blocking pool so the network keeps being
/// served during an fsync. On a current-thread runtime (single-threaded tests
/// and the deterministic simulation, which needs store operations to happen
/// in task order so that a seed replays exactly) it runs inline.
pub async fn offload<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    if tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::CurrentThread
    {
        return Ok(f());
    }
    tokio::task::spawn_blocking(f).await
}

/// The change log table, part of both the node's and the relay's first migration.
pub const LOG_SCHEMA: &str = "
    CREATE TABLE log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        doc TEXT NOT NULL,
        hash BLOB NOT NULL CHECK (length(hash) = 32),
        actor BLOB NOT NULL,
        actor_seq INTEGER NOT NULL,
        author BLOB NOT NULL CHECK (length(author) = 32),
        envelope BLOB NOT NULL
    ) STRICT;
    CREATE UNIQUE INDEX log_doc_hash ON log (doc, hash);
    CREATE UNIQUE INDEX log_doc_actor_seq ON log (doc, actor, actor_seq);
    CREATE INDEX log_doc_seq ON log (doc, seq);";

/// How long a writer waits for another connection's transaction (the node's
/// `run` and a concurrent edit share one file) before failing.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store schema version {found} is newer than this program understands ({known}); upgrade Accordo")]
    TooNew { found: i64, known: i64 },
    #[error("store holds a corrupt row: {0}")]
    Corrupt(String),
    #[error("store file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Mode of a store created in a directory shared with a group (group-writable,
/// as the packaged `/var/lib/accordo` is, setgid so files take its group):
/// the service user and the office staff in the group both write it. SQLite
/// gives the `-wal` and `-shm` files the mode of the database file, so they
/// are shared too.
#[cfg(unix)]
pub(crate) const SHARED_STORE_MODE: u32 = 0o660;
/// The group-write bit of a directory's mode.
#[cfg(unix)]
pub(crate) const GROUP_WRITE: u32 = 0o020;

/// Creates an empty database file readable and writable by the directory's
/// group when the directory is group-writable and the file does not exist
/// yet; SQLite takes an empty file as an empty database. Elsewhere (a private
/// directory) nothing changes and SQLite creates the file under the umask.
#[cfg(unix)]
fn create_shared_if_group_dir(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let shared = std::fs::metadata(dir)
        .map(|m| m.permissions().mode() & GROUP_WRITE != 0)
        .unwrap_or(false);
    if !shared || path.exists() {
        return Ok(());
    }
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(SHARED_STORE_MODE)
        .open(path);
    match created {
        // The umask may have cleared group bits: set them as meant.
        Ok(file) => file
            .set_permissions(std::fs::Permissions::from_mode(SHARED_STORE_MODE))
            .map_err(io),
        // Another process created it first; its mode is its own choice.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io(e)),
    }
}

/// Opens `path` in WAL mode with `synchronous=FULL` (a committed write survives
/// power loss, not only a crash) and runs pending `migrations`: entry `i`
/// upgrades `PRAGMA user_version` from `i` to `i + 1`. In a group-writable
/// directory a new store is created group-read-write (see
/// [`SHARED_STORE_MODE`]).
pub fn open(path: &Path, migrations: &[&str]) -> Result<Connection, StoreError> {
    #[cfg(unix)]
    create_shared_if_group_dir(path)?;
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // A store of a newer release is refused before anything is set on it
    // (switching its journal mode would already write to the file).
    let known = migrations.len() as i64;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > known {
        return Err(StoreError::TooNew {
            found: version,
            known,
        });
    }
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    for (i, sql) in migrations.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have migrated while we waited for the lock.
        let now: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if now <= i as i64 {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
        }
        tx.commit()?;
    }
    Ok(conn)
}

/// Reads a value of the `meta (key, value)` table both stores have.
pub fn meta(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

/// Sets a value of the `meta` table.
pub fn set_meta(conn: &Connection, key: &str, value: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

/// Size of a database file with its write-ahead log (`-wal`), as a store's
/// size for metrics; a missing file counts 0.
pub fn file_size_bytes(db_path: &Path) -> u64 {
    let mut wal = db_path.as_os_str().to_owned();
    wal.push("-wal");
    [db_path.as_os_str().to_owned(), wal]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// `PRAGMA integrity_check`: "ok" when the file is sound.
pub fn integrity_check(conn: &Connection) -> Result<String, StoreError> {
    Ok(conn.pragma_query_value(None, "integrity_check", |r| r.get(0))?)
}

/// A member key as stored in a row (the relay's allowlist, a node's copy of
/// it): 32-byte key, ISTAT code and role as text.
pub fn member_from_row(
    node: &[u8],
    comune: &str,
    role: &str,
) -> Result<accordo_protocol::authority::Member, StoreError> {
    let node: [u8; 32] = node
        .try_into()
        .map_err(|_| StoreError::Corrupt("member key is not 32 bytes".into()))?;
    let comune = comune
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("member comune: {e}")))?;
    let role = role.parse().map_err(StoreError::Corrupt)?;
    Ok(accordo_protocol::authority::Member {
        node: accordo_protocol::identity::NodeId(node),
        comune,
        role,
    })
}

/// Encodes an envelope as stored in `log.envelope`.
pub fn encode_envelope(envelope: &SignedChange) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(envelope).map_err(|e| StoreError::Corrupt(format!("envelope encode: {e}")))
}

/// Decodes an envelope as stored in `log.envelope`.
pub fn decode_envelope(blob: &[u8]) -> Result<SignedChange, StoreError> {
    postcard::from_bytes(blob).map_err(|e| StoreError::Corrupt(format!("stored envelope: {e}")))
}

fn hash_from_blob(blob: Vec<u8>) -> Result<ChangeHash, StoreError> {
    blob.try_into()
        .map(ChangeHash)
        .map_err(|_| StoreError::Corrupt("change hash is not 32 bytes".into()))
}

/// Decodes a 32-byte hash column.
pub fn hash_column(blob: Vec<u8>) -> Result<ChangeHash, StoreError> {
    hash_from_blob(blob)
}

/// The change log inside one transaction.
pub struct SqlLog<'a> {
    tx: &'a Transaction<'a>,
}

impl<'a> SqlLog<'a> {
    pub fn new(tx: &'a Transaction<'a>) -> Self {
        SqlLog { tx }
    }

    /// Every change of `doc` in log order (dependencies first).
    pub fn doc_changes(&self, doc: &DocId) -> Result<Vec<SignedChange>, StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT envelope FROM log WHERE doc = ?1 ORDER BY seq")?;
        let rows = stmt.query_map([doc.canonical()], |r| r.get::<_, Vec<u8>>(0))?;
        rows.map(|blob| decode_envelope(&blob?)).collect()
    }

    /// Changes of `doc` after log position `after_seq`, in log order, with
    /// their positions.
    pub fn doc_changes_after(
        &self,
        doc: &DocId,
        after_seq: u64,
    ) -> Result<Vec<(u64, SignedChange)>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT seq, envelope FROM log WHERE doc = ?1 AND seq > ?2 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![doc.canonical(), after_seq as i64], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        rows.map(|row| {
            let (seq, blob) = row?;
            Ok((seq as u64, decode_envelope(&blob)?))
        })
        .collect()
    }

    /// The log position of `doc`'s last change (0 when none is held).
    pub fn doc_head_seq(&self, doc: &DocId) -> Result<u64, StoreError> {
        Ok(self.tx.query_row(
            "SELECT COALESCE(MAX(seq), 0) FROM log WHERE doc = ?1",
            [doc.canonical()],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Every document held with the log position of its last change.
    pub fn doc_heads_seq(&self) -> Result<Vec<(DocId, u64)>, StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT doc, MAX(seq) FROM log GROUP BY doc ORDER BY doc")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        rows.map(|row| {
            let (doc, seq) = row?;
            let doc = doc
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("document id: {e}")))?;
            Ok((doc, seq as u64))
        })
        .collect()
    }

    /// Documents held and their change counts.
    pub fn docs(&self) -> Result<Vec<(DocId, u64)>, StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT doc, COUNT(*) FROM log GROUP BY doc ORDER BY doc")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        rows.map(|row| {
            let (doc, n) = row?;
            let doc = doc
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("document id: {e}")))?;
            Ok((doc, n as u64))
        })
        .collect()
    }
}

impl LogStore for SqlLog<'_> {
    type Error = StoreError;

    fn position(&self, doc: &DocId, hash: &ChangeHash) -> Result<Option<u64>, StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT seq FROM log WHERE doc = ?1 AND hash = ?2")?;
        Ok(stmt
            .query_row(params![doc.canonical(), &hash.0[..]], |r| {
                r.get::<_, i64>(0)
            })
            .optional()?
            .map(|s| s as u64))
    }

    fn hash_for_actor_seq(
        &self,
        doc: &DocId,
        actor: &[u8; ACTOR_ID_BYTES],
        seq: u64,
    ) -> Result<Option<ChangeHash>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT hash FROM log WHERE doc = ?1 AND actor = ?2 AND actor_seq = ?3",
        )?;
        stmt.query_row(params![doc.canonical(), &actor[..], seq as i64], |r| {
            r.get::<_, Vec<u8>>(0)
        })
        .optional()?
        .map(hash_from_blob)
        .transpose()
    }

    fn append(&mut self, change: &VerifiedChange) -> Result<u64, StoreError> {
        let envelope = encode_envelope(&change.envelope)?;
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO log (doc, hash, actor, actor_seq, author, envelope)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        stmt.execute(params![
            change.envelope.doc.canonical(),
            &change.hash.0[..],
            &change.actor[..],
            change.seq as i64,
            &change.envelope.author.0[..],
            envelope,
        ])?;
        Ok(self.tx.last_insert_rowid() as u64)
    }

    fn head_seq(&self) -> Result<u64, StoreError> {
        Ok(self
            .tx
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM log", [], |r| {
                r.get::<_, i64>(0)
            })? as u64)
    }

    fn entries(
        &self,
        scope: &Scope,
        after: u64,
        up_to: u64,
        max_bytes: usize,
    ) -> Result<Vec<LogEntry>, StoreError> {
        // Two statements rather than `(?3 IS NULL OR doc = ?3)`, so each uses its index.
        let mut stmt;
        let mut rows = match scope {
            Scope::All => {
                stmt = self.tx.prepare_cached(
                    "SELECT seq, envelope FROM log WHERE seq > ?1 AND seq <= ?2 ORDER BY seq",
                )?;
                stmt.query(params![after as i64, up_to as i64])?
            }
            Scope::Doc(doc) => {
                stmt = self.tx.prepare_cached(
                    "SELECT seq, envelope FROM log
                     WHERE doc = ?3 AND seq > ?1 AND seq <= ?2 ORDER BY seq",
                )?;
                stmt.query(params![after as i64, up_to as i64, doc.canonical()])?
            }
        };
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while let Some(row) = rows.next()? {
            if bytes >= max_bytes && !out.is_empty() {
                break;
            }
            let seq = row.get::<_, i64>(0)? as u64;
            let change = decode_envelope(&row.get::<_, Vec<u8>>(1)?)?;
            bytes += change.change.len();
            out.push(LogEntry { seq, change });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
