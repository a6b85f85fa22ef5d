//! The relay's durable store: settings, admitted members and the causally
//! closed change log (see `accordo-store`), in SQLite with
//! `synchronous=FULL`: the relay acknowledges other people's writes, so a
//! commit must survive power loss before its acknowledgement leaves.

use crate::trust::{Trust, TrustView};
use accordo_protocol::authority::{Member, Membership};
use accordo_protocol::identity::NodeId;
use accordo_protocol::wire::{ListedMember, LogEpoch, LOG_EPOCH_BYTES};
use accordo_store::{member_from_row, SqlLog, StoreError, LOG_SCHEMA};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::Path;

/// Setting: the log's epoch, as hex.
const LOG_EPOCH_META: &str = "log_epoch";

/// Each entry upgrades the schema by one version.
fn migrations() -> [String; 4] {
    [
        format!(
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
        CREATE TABLE members (
            node BLOB PRIMARY KEY CHECK (length(node) = 32),
            comune TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('comune', 'metro')),
            added_ms INTEGER NOT NULL
        ) STRICT;
        {LOG_SCHEMA}"
        ),
        // The admin keys the registry is verified against (issue: trust).
        "CREATE TABLE anchors (
            node BLOB PRIMARY KEY CHECK (length(node) = 32),
            added_ms INTEGER NOT NULL
        ) STRICT;"
            .to_owned(),
        // `accordo-relay remove`: a removed key writes and connects no more;
        // its row stays so what it wrote before stays placeable (issue 11.5).
        "ALTER TABLE members ADD COLUMN removed_ms INTEGER;".to_owned(),
        // Issue 12: when each key last completed a sync (relay/src/presence.rs).
        "CREATE TABLE presence (
            node BLOB PRIMARY KEY CHECK (length(node) = 32),
            last_sync_ms INTEGER NOT NULL
        ) STRICT;"
            .to_owned(),
    ]
}

pub struct RelayStore {
    conn: Connection,
    /// The registry derived from the log; kept current by every ingest.
    trust: Trust,
}

/// The schema version this binary writes: the number of migrations.
pub fn schema_version() -> i64 {
    migrations().len() as i64
}

pub fn open(path: &Path) -> Result<RelayStore, StoreError> {
    let migrations = migrations();
    let steps: Vec<&str> = migrations.iter().map(String::as_str).collect();
    let mut conn = accordo_store::open(path, &steps)?;
    let trust = load_trust(&mut conn)?;
    Ok(RelayStore { conn, trust })
}

fn load_trust(conn: &mut Connection) -> Result<Trust, StoreError> {
    let anchors = {
        let mut stmt = conn.prepare("SELECT node FROM anchors")?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        rows.map(|row| {
            let bytes: [u8; 32] = row?
                .try_into()
                .map_err(|_| StoreError::Corrupt("anchor key is not 32 bytes".into()))?;
            Ok(NodeId(bytes))
        })
        .collect::<Result<BTreeSet<NodeId>, StoreError>>()?
    };
    let tx = conn.transaction()?;
    let trust = Trust::load(anchors, &SqlLog::new(&tx))?;
    tx.commit()?;
    Ok(trust)
}

impl RelayStore {
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        accordo_store::meta(&self.conn, key)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        accordo_store::set_meta(&self.conn, key, value)
    }

    /// Admits (or re-admits with new attributes) a member key.
    /// When each key last completed a sync, as last written.
    pub fn presence(&self) -> Result<Vec<(NodeId, i64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT node, last_sync_ms FROM presence")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (node, ms) = row?;
            if let Ok(bytes) = <[u8; 32]>::try_from(node.as_slice()) {
                out.push((NodeId(bytes), ms));
            }
        }
        Ok(out)
    }

    /// Records that `node` completed a sync at `ms`.
    pub fn set_presence(&self, node: &NodeId, ms: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO presence (node, last_sync_ms) VALUES (?1, ?2)
             ON CONFLICT (node) DO UPDATE SET last_sync_ms = max(last_sync_ms, excluded.last_sync_ms)",
            params![node.0.as_slice(), ms],
        )?;
        Ok(())
    }

    pub fn allow(&self, member: &Member, now_ms: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO members (node, comune, role, added_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (node) DO UPDATE SET comune = excluded.comune, role = excluded.role,
                 removed_ms = NULL",
            params![
                &member.node.0[..],
                member.comune.as_str(),
                member.role.as_str(),
                now_ms
            ],
        )?;
        Ok(())
    }

    /// Removes a member key from the allowlist: it may no longer connect or
    /// write. What the relay stored from it stays, and stays its. Returns
    /// the member removed, or `None` if the key was not an active member.
    pub fn remove(&self, node: &NodeId, now_ms: i64) -> Result<Option<Member>, StoreError> {
        let Some(member) = self.member(node)? else {
            return Ok(None);
        };
        self.conn.execute(
            "UPDATE members SET removed_ms = ?2 WHERE node = ?1",
            params![&node.0[..], now_ms],
        )?;
        Ok(Some(member))
    }

    /// The allowlist with removed keys, for nodes to place authors.
    pub fn listed(&self) -> Result<Vec<ListedMember>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT node, comune, role, removed_ms IS NOT NULL FROM members ORDER BY comune, node",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
            ))
        })?;
        rows.map(|row| {
            let (node, comune, role, removed) = row?;
            Ok(ListedMember {
                member: member_from_row(&node, &comune, &role)?,
                removed,
            })
        })
        .collect()
    }

    /// Pins an admin key: from now on the registry alone governs the network.
    pub fn allow_admin(&mut self, node: &NodeId, now_ms: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO anchors (node, added_ms) VALUES (?1, ?2) ON CONFLICT (node) DO NOTHING",
            params![&node.0[..], now_ms],
        )?;
        self.trust = load_trust(&mut self.conn)?;
        Ok(())
    }

    /// Reloads the trust state if `allow --role admin` (another process)
    /// pinned an admin since it was loaded.
    fn refresh_anchors(&mut self) -> Result<(), StoreError> {
        let pinned: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM anchors", [], |r| r.get(0))?;
        if usize::try_from(pinned).ok() != Some(self.trust.anchors.len()) {
            self.trust = load_trust(&mut self.conn)?;
        }
        Ok(())
    }

    /// The trust state (anchors, registry, verdicts) as of the last commit.
    pub fn trust(&self) -> &Trust {
        &self.trust
    }

    /// Who `node` is, and whether it may connect: from the registry when an
    /// admin is pinned, else from the local allowlist.
    pub fn admitted(&mut self, node: &NodeId) -> Result<Option<Member>, StoreError> {
        self.refresh_anchors()?;
        if self.trust.governed() {
            return Ok(self
                .trust
                .registry
                .admits(node)
                .then(|| self.trust.registry.member(node))
                .flatten());
        }
        self.member(node)
    }

    /// Whether the relay knows `node` at all: an admitted member (allowlisted,
    /// or enrolled in the registry) or a pinned admin. Unknown keys may only
    /// say hello or redeem an invitation, briefly (`server::ServeLimits`).
    pub fn knows(&mut self, node: &NodeId) -> Result<bool, StoreError> {
        Ok(self.admitted(node)?.is_some() || self.trust.anchors.contains(node))
    }

    /// Active members (the allowlist without removed keys).
    pub fn members(&self) -> Result<Vec<Member>, StoreError> {
        Ok(self
            .listed()?
            .into_iter()
            .filter(|m| !m.removed)
            .map(|m| m.member)
            .collect())
    }

    pub fn member(&self, node: &NodeId) -> Result<Option<Member>, StoreError> {
        lookup_member(&self.conn, node)
    }

    /// The identity of this store's log (see [`LogEpoch`]), if one was
    /// drawn (`init`, `serve` and `restore` draw one; a store without one
    /// serves the all-zero epoch, which nothing else draws).
    pub fn log_epoch(&self) -> Result<Option<LogEpoch>, StoreError> {
        let Some(hex) = self.meta(LOG_EPOCH_META)? else {
            return Ok(None);
        };
        let bytes = hex::decode(&hex)
            .ok()
            .and_then(|b| <[u8; LOG_EPOCH_BYTES]>::try_from(b).ok())
            .ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "{LOG_EPOCH_META} is not {LOG_EPOCH_BYTES} hex bytes"
                ))
            })?;
        Ok(Some(LogEpoch { epoch: bytes }))
    }

    /// The log's epoch, drawn now if it has none.
    pub fn ensure_log_epoch(&self) -> Result<LogEpoch, StoreError> {
        match self.log_epoch()? {
            Some(epoch) => Ok(epoch),
            None => self.new_log_epoch(),
        }
    }

    /// Draws a new log epoch: after a restore, the log may lack changes
    /// acknowledged under the old one, and nodes must learn that.
    pub fn new_log_epoch(&self) -> Result<LogEpoch, StoreError> {
        let mut epoch = [0u8; LOG_EPOCH_BYTES];
        getrandom::fill(&mut epoch)
            .map_err(|e| StoreError::Corrupt(format!("no randomness for a log epoch: {e}")))?;
        self.set_meta(LOG_EPOCH_META, &hex::encode(epoch))?;
        Ok(LogEpoch { epoch })
    }

    pub fn head_seq(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT COALESCE(MAX(seq), 0) FROM log", [], |r| {
                r.get::<_, i64>(0)
            })? as u64)
    }

    /// Runs `f` over the log in one write transaction, committing on success.
    /// Acknowledgements `f` computes are only true once this returns `Ok`.
    pub fn with_log<T>(
        &mut self,
        f: impl FnOnce(&mut SqlLog<'_>, &dyn Membership) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.refresh_anchors()?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Judged on a copy: a rolled-back batch must not leave its statements
        // in the registry.
        let mut trust = self.trust.clone();
        let out = {
            let members = MembersView(&tx);
            let reader = SqlLog::new(&tx);
            let view = TrustView {
                local: &members,
                trust: RefCell::new(&mut trust),
                log: &reader,
            };
            let mut log = SqlLog::new(&tx);
            f(&mut log, &view)?
        };
        tx.commit()?;
        self.trust = trust;
        Ok(out)
    }

    /// Runs `f` over a consistent read snapshot of the log.
    pub fn read_log<T>(
        &mut self,
        f: impl FnOnce(&SqlLog<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let tx = self.conn.transaction()?;
        let out = f(&SqlLog::new(&tx))?;
        tx.commit()?;
        Ok(out)
    }

    pub fn integrity_check(&self) -> Result<String, StoreError> {
        accordo_store::integrity_check(&self.conn)
    }
}

fn lookup_member(conn: &Connection, node: &NodeId) -> Result<Option<Member>, StoreError> {
    let row = conn
        .query_row(
            "SELECT comune, role FROM members WHERE node = ?1 AND removed_ms IS NULL",
            [&node.0[..]],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )
        .optional()?;
    row.map(|(comune, role)| member_from_row(&node.0, &comune, &role))
        .transpose()
}

/// Membership as seen inside the ingest transaction.
struct MembersView<'a>(&'a Connection);

impl Membership for MembersView<'_> {
    fn member(&self, node: &NodeId) -> Option<Member> {
        // A failed lookup counts as "not a member": the change is refused, never stored.
        lookup_member(self.0, node).ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use accordo_protocol::identity::Role;

    #[test]
    fn members_are_admitted_and_updated() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir.path().join("relay.db")).unwrap();
        let mut m = Member {
            node: NodeId([1; 32]),
            comune: "092009".parse().unwrap(),
            role: Role::Comune,
        };
        store.allow(&m, 0).unwrap();
        m.role = Role::Metro;
        store.allow(&m, 1).unwrap();
        assert_eq!(store.members().unwrap(), vec![m.clone()]);
        assert_eq!(store.member(&m.node).unwrap(), Some(m));
        assert_eq!(store.member(&NodeId([2; 32])).unwrap(), None);
    }

    #[test]
    fn a_removed_key_is_no_member_but_stays_listed() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir.path().join("relay.db")).unwrap();
        let m = Member {
            node: NodeId([1; 32]),
            comune: "092009".parse().unwrap(),
            role: Role::Comune,
        };
        store.allow(&m, 0).unwrap();
        assert_eq!(store.remove(&m.node, 1).unwrap(), Some(m.clone()));
        assert_eq!(store.member(&m.node).unwrap(), None);
        assert!(store.members().unwrap().is_empty());
        assert_eq!(store.remove(&m.node, 2).unwrap(), None, "already removed");
        assert_eq!(
            store.listed().unwrap(),
            vec![ListedMember {
                member: m.clone(),
                removed: true
            }]
        );
        // Allowed again: a member again.
        store.allow(&m, 3).unwrap();
        assert_eq!(store.member(&m.node).unwrap(), Some(m));
    }
}
