//! What the fault loops share (`tests/tests/crash.rs`, `kill -9`;
//! `tests/tests/power_loss.rs`, power cuts): the seeded schedule, killing a
//! child, and the checks after a fault — `PRAGMA integrity_check`, the
//! changes a node has held as acknowledged against the relay's log, the
//! projects added against a listing.

use crate::{accordo_bin, path, Node};
use anyhow::{bail, Result};
use rusqlite::{Connection, OpenFlags};
use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A small deterministic generator (xorshift64*), seeded and printed.
pub struct Rng(u64);

/// The seed a loop uses unless its variable says otherwise.
const DEFAULT_SEED: u64 = 0x05ee_dacc_04d0;

impl Rng {
    /// Seeded from the environment variable `var` (else a fixed seed),
    /// printing the line that replays the schedule.
    pub fn from_env(test: &str, var: &str) -> Rng {
        let seed = std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_SEED);
        println!("{test}: seed {seed} ({var}={seed} replays the schedule)");
        Rng(seed | 1)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.bits() % n.max(1)
    }

    /// The next 64 random bits.
    pub fn bits(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A read-only connection (it neither checkpoints nor writes the store).
pub fn open_ro(db: &Path) -> Result<Connection> {
    Ok(Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?)
}

/// `PRAGMA integrity_check` says "ok".
pub fn integrity_ok(db: &Path) -> Result<()> {
    let conn = open_ro(db)?;
    let verdict: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if verdict != "ok" {
        bail!("{}: integrity_check says {verdict}", db.display());
    }
    Ok(())
}

fn hashes(conn: &Connection, sql: &str) -> Result<HashSet<Vec<u8>>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every change a node has held as acknowledged at any check: its log
/// minus its outbox — its own changes the relay acknowledged, and changes it
/// pulled.
#[derive(Default)]
pub struct Acknowledged(pub HashSet<Vec<u8>>);

impl Acknowledged {
    /// Adds what the node now holds as acknowledged.
    pub fn observe(&mut self, node_db: &Path) -> Result<()> {
        self.0.extend(hashes(
            &open_ro(node_db)?,
            "SELECT hash FROM log WHERE hash NOT IN (SELECT hash FROM outbox)",
        )?);
        Ok(())
    }

    /// Counts the changes ever acknowledged that the relay's log lacks.
    pub fn missing_at(&self, relay_db: &Path) -> Result<usize> {
        let relay = hashes(&open_ro(relay_db)?, "SELECT hash FROM log")?;
        Ok(self.0.iter().filter(|h| !relay.contains(*h)).count())
    }

    /// Adds what the node now holds as acknowledged, then counts the changes
    /// ever acknowledged that the relay's log lacks — lost writes.
    pub fn lost(&mut self, node_db: &Path, relay_db: &Path) -> Result<usize> {
        self.observe(node_db)?;
        self.missing_at(relay_db)
    }

    /// As `lost`, failing on any loss.
    pub fn check(&mut self, node_db: &Path, relay_db: &Path) -> Result<()> {
        let lost = self.lost(node_db, relay_db)?;
        if lost > 0 {
            bail!("{lost} acknowledged change(s) missing from the relay");
        }
        Ok(())
    }
}

/// Titles in `added` that `held` (a `projects` listing) lacks.
pub fn missing_titles(added: &[String], held: &[(String, String, String)]) -> usize {
    let titles: HashSet<&str> = held.iter().map(|(_, _, t)| t.as_str()).collect();
    added
        .iter()
        .filter(|t| !titles.contains(t.as_str()))
        .count()
}

/// Starts `accordo --dir NODE args...`, quiet.
pub fn spawn(node: &Node, args: &[&str]) -> Result<Child> {
    Ok(Command::new(accordo_bin())
        .args(["--dir", &path(&node.node_dir())])
        .args(args)
        .env("ACCORDO_LOG", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

/// SIGKILL and reap: no shutdown path runs.
pub fn kill9(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}
