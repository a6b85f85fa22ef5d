//! Crash loops with the real binaries: `kill -9` a node during `sync` and
//! `run`, and the relay during ingest, at random moments. After every kill
//! and restart both stores pass `PRAGMA integrity_check` and every change the
//! relay acknowledged to the node is in the relay's log.
//!
//! `ACCORDO_CRASH_ITERATIONS` sets the kills per test (default 12 in
//! `cargo test`; run with 100+ for the full loop); `ACCORDO_CRASH_SEED`
//! replays a run (the seed is printed).

use accordo_tests::{accordo_bin, path, Node, Relay};
use anyhow::{bail, Context, Result};
use rusqlite::{Connection, OpenFlags};
use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CAGLIARI: &str = "092009";

fn iterations() -> usize {
    std::env::var("ACCORDO_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

/// A small deterministic generator (xorshift64*), seeded and printed.
struct Rng(u64);

impl Rng {
    fn from_env(test: &str) -> Rng {
        let seed = std::env::var("ACCORDO_CRASH_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0x05ee_dacc_04d0_u64);
        println!("{test}: seed {seed} (ACCORDO_CRASH_SEED={seed} replays the kill schedule)");
        Rng(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

fn open_ro(db: &Path) -> Result<Connection> {
    Ok(Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?)
}

fn integrity_ok(db: &Path) -> Result<()> {
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

/// Every change in the node's log that is not waiting in its outbox — its
/// own changes the relay acknowledged, and changes it pulled — is in the
/// relay's log.
fn acknowledged_are_held(node_db: &Path, relay_db: &Path) -> Result<usize> {
    let node = open_ro(node_db)?;
    let acked = hashes(
        &node,
        "SELECT hash FROM log WHERE hash NOT IN (SELECT hash FROM outbox)",
    )?;
    let relay = hashes(&open_ro(relay_db)?, "SELECT hash FROM log")?;
    let missing = acked.iter().filter(|h| !relay.contains(*h)).count();
    if missing > 0 {
        bail!("{missing} acknowledged change(s) missing from the relay");
    }
    Ok(acked.len())
}

fn spawn(node: &Node, args: &[&str]) -> Result<Child> {
    Ok(Command::new(accordo_bin())
        .args(["--dir", &path(&node.node_dir())])
        .args(args)
        .env("ACCORDO_LOG", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

fn kill9(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_node_killed_during_sync_or_run_loses_nothing_acknowledged() -> Result<()> {
    let mut rng = Rng::from_env("node kill loop");
    let mut relay = Relay::init()?;
    relay.start()?;
    let node = Node::admitted(&relay, CAGLIARI, "comune")?;
    let node_db = node.node_dir().join("node.db");
    let relay_db = relay.dir.path().join("relay.db");
    let n = iterations();
    for i in 0..n {
        for k in 0..=rng.below(3) {
            node.add(
                &format!("F21B{:011}", i * 10 + k as usize),
                &format!("Progetto {i}.{k}"),
            )?;
        }
        let mode = if i % 2 == 0 {
            vec!["sync", "--timeout-s", "5"]
        } else {
            vec!["run"]
        };
        let mut child = spawn(&node, &mode)?;
        std::thread::sleep(Duration::from_millis(rng.below(250)));
        kill9(&mut child);
        integrity_ok(&node_db).with_context(|| format!("iteration {i}"))?;
        integrity_ok(&relay_db)?;
        acknowledged_are_held(&node_db, &relay_db).with_context(|| format!("iteration {i}"))?;
    }
    // Afterwards a plain sync completes and the relay holds everything.
    node.sync()?.ok()?;
    let held = acknowledged_are_held(&node_db, &relay_db)?;
    assert!(held >= n, "{held} changes for {n} iterations");
    assert_eq!(node.status()?["outbox_pending"], 0);
    println!("node kill loop: {n} kills survived, {held} changes acknowledged, 0 lost");
    Ok(())
}

#[test]
fn a_relay_killed_during_ingest_loses_nothing_acknowledged() -> Result<()> {
    let mut rng = Rng::from_env("relay kill loop");
    let mut relay = Relay::init()?;
    relay.start()?;
    let node = Node::admitted(&relay, CAGLIARI, "comune")?;
    let metro = Node::admitted(&relay, CAGLIARI, "metro")?;
    let node_db = node.node_dir().join("node.db");
    let relay_db = relay.dir.path().join("relay.db");
    let n = iterations();
    for i in 0..n {
        for k in 0..=rng.below(4) {
            node.add(
                &format!("F27B{:011}", i * 10 + k as usize),
                &format!("Opera {i}.{k}"),
            )?;
        }
        let mut sync = spawn(&node, &["sync", "--timeout-s", "3"])?;
        std::thread::sleep(Duration::from_millis(rng.below(120)));
        relay.kill9();
        let _ = sync.wait();
        integrity_ok(&relay_db).with_context(|| format!("iteration {i}"))?;
        integrity_ok(&node_db)?;
        acknowledged_are_held(&node_db, &relay_db).with_context(|| format!("iteration {i}"))?;
        relay.start()?;
    }
    node.sync()?.ok()?;
    metro.sync()?.ok()?;
    let held = acknowledged_are_held(&node_db, &relay_db)?;
    let projects = node.projects(false)?;
    assert_eq!(
        metro.projects(true)?,
        projects,
        "the metro node holds every project"
    );
    println!(
        "relay kill loop: {n} kills survived, {held} changes acknowledged, {} projects, 0 lost",
        projects.len()
    );
    Ok(())
}
