//! Crash loops with the real binaries: `kill -9` a node during `sync` and
//! `run`, and the relay during ingest, at random moments. After every kill
//! and restart both stores pass `PRAGMA integrity_check` and every change the
//! node has ever held as acknowledged is in the relay's log. The summary
//! counts what was lost — acknowledged changes missing at the relay, projects
//! added but missing at the end — and the test asserts both counts are zero.
//!
//! A third loop kills write-heavy commands (`import`, `project set`) while
//! they hold the store's write lock — between appending their changes to the
//! log and updating the query store — and checks that the views never lag
//! the log and that `rebuild-views` finds nothing to correct.
//!
//! `ACCORDO_CRASH_ITERATIONS` sets the kills per test (default 12 in
//! `cargo test`; run with 100+ for the full loop); `ACCORDO_CRASH_SEED`
//! replays a run (the seed is printed).

use accordo_tests::fault::{
    integrity_ok, kill9, missing_titles, open_ro, spawn, Acknowledged, Rng,
};
use accordo_tests::{path, Node, Relay};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Child;
use std::time::Duration;

const CAGLIARI: &str = "092009";

fn iterations() -> usize {
    std::env::var("ACCORDO_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

/// The schedule's seed variable.
const SEED_VAR: &str = "ACCORDO_CRASH_SEED";

#[test]
fn a_node_killed_during_sync_or_run_loses_nothing_acknowledged() -> Result<()> {
    let mut rng = Rng::from_env("node kill loop", SEED_VAR);
    let mut relay = Relay::init()?;
    relay.start()?;
    let node = Node::admitted(&relay, CAGLIARI, "comune")?;
    let node_db = node.node_dir().join("node.db");
    let relay_db = relay.dir.path().join("relay.db");
    let n = iterations();
    let mut acked = Acknowledged::default();
    let mut added = Vec::new();
    for i in 0..n {
        for k in 0..=rng.below(3) {
            let title = format!("Progetto {i}.{k}");
            node.add(&format!("F21B{:011}", i * 10 + k as usize), &title)?;
            added.push(title);
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
        acked
            .check(&node_db, &relay_db)
            .with_context(|| format!("iteration {i}"))?;
    }
    // Afterwards a plain sync completes and the relay holds everything.
    node.sync()?.ok()?;
    assert_eq!(node.status()?["outbox_pending"], 0);
    let lost = acked.lost(&node_db, &relay_db)?;
    let held = acked.0.len();
    assert!(
        held >= added.len(),
        "{held} changes acknowledged for {} projects added",
        added.len()
    );
    let lost_projects = missing_titles(&added, &node.projects(false)?);
    println!(
        "node kill loop: {n} kills survived, {held} changes acknowledged, {lost} of them missing at the relay; {} projects added, {lost_projects} of them missing on the node",
        added.len()
    );
    assert_eq!(lost, 0, "acknowledged changes lost");
    assert_eq!(lost_projects, 0, "committed projects lost");
    Ok(())
}

#[test]
fn a_relay_killed_during_ingest_loses_nothing_acknowledged() -> Result<()> {
    let mut rng = Rng::from_env("relay kill loop", SEED_VAR);
    let mut relay = Relay::init()?;
    relay.start()?;
    let node = Node::admitted(&relay, CAGLIARI, "comune")?;
    let metro = Node::admitted(&relay, CAGLIARI, "metro")?;
    let node_db = node.node_dir().join("node.db");
    let relay_db = relay.dir.path().join("relay.db");
    let n = iterations();
    let mut acked = Acknowledged::default();
    let mut added = Vec::new();
    for i in 0..n {
        for k in 0..=rng.below(4) {
            let title = format!("Opera {i}.{k}");
            node.add(&format!("F27B{:011}", i * 10 + k as usize), &title)?;
            added.push(title);
        }
        let mut sync = spawn(&node, &["sync", "--timeout-s", "3"])?;
        std::thread::sleep(Duration::from_millis(rng.below(120)));
        relay.kill9();
        let _ = sync.wait();
        integrity_ok(&relay_db).with_context(|| format!("iteration {i}"))?;
        integrity_ok(&node_db)?;
        acked
            .check(&node_db, &relay_db)
            .with_context(|| format!("iteration {i}"))?;
        relay.start()?;
    }
    node.sync()?.ok()?;
    metro.sync()?.ok()?;
    let lost = acked.lost(&node_db, &relay_db)?;
    let held = acked.0.len();
    let on_metro = metro.projects(true)?;
    let lost_projects = missing_titles(&added, &on_metro);
    println!(
        "relay kill loop: {n} kills survived, {held} changes acknowledged, {lost} of them missing at the relay; {} projects added, {} on the metro node, {lost_projects} of them missing there",
        added.len(),
        on_metro.len()
    );
    assert_eq!(lost, 0, "acknowledged changes lost");
    assert_eq!(lost_projects, 0, "the metro node lacks projects");
    assert_eq!(
        on_metro,
        node.projects(false)?,
        "the metro node holds exactly the comune's projects"
    );
    Ok(())
}

const TORINO: &str = "001272";
/// Rows of the file each `import` of the view kill loop writes (about a
/// second of work under the write lock, so kills land inside it).
const IMPORT_ROWS: usize = 1_500;
/// Kills of the view loop unless `ACCORDO_CRASH_ITERATIONS` says otherwise.
const VIEW_KILLS: usize = 30;
/// A command that never takes the write lock is given up on after this.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// An OpenCoesione file of `rows` projects of Torino, whose payments depend
/// on `round`, so that each import changes every project.
fn opencoesione_rows(rows: usize, round: usize) -> String {
    let mut s = String::from(
        "COD_LOCALE_PROGETTO;CUP;OC_TITOLO_PROGETTO;COD_COMUNE;FINANZ_TOTALE_PUBBLICO;IMPEGNI;TOT_PAGAMENTI;OC_STATO_PROCEDURALE\n",
    );
    for i in 0..rows {
        s.push_str(&format!(
            "{i:07}TO;F{:02}B{:011};OPERA PUBBLICA N. {i};001001272;{},00;{},00;{},00;In esecuzione\n",
            i % 90 + 10,
            i,
            100_000 + i,
            50_000 + i,
            round * 100 + i % 1_000,
        ));
    }
    s
}

/// Whether some process holds the SQLite write lock of the database whose
/// shared-memory file is `shm`, asked without taking it: in WAL mode a
/// writer holds an exclusive POSIX lock on byte 120 of the `-shm` file
/// (`UNIX_SHM_BASE`, the `WAL_WRITE_LOCK` slot) for its whole transaction.
/// `F_GETLK` only reports a conflicting lock. This process must hold no
/// connection to that database meanwhile: closing the descriptor would drop
/// its own POSIX locks on the file.
fn write_lock_held(shm: &Path) -> Result<bool> {
    use std::os::fd::AsRawFd;
    let file = match std::fs::File::open(shm) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    // SAFETY: `flock` is plain data that F_GETLK fills in; the descriptor
    // is open for the duration of the call.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as _;
    lock.l_whence = libc::SEEK_SET as _;
    lock.l_start = 120;
    lock.l_len = 1;
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut lock) } != 0 {
        bail!(
            "F_GETLK on {}: {}",
            shm.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(i32::from(lock.l_type) != libc::F_UNLCK)
}

/// Documents whose views cover less of the log than it holds (the check
/// `views::behind` makes), read without catching anything up.
fn views_behind(db: &Path) -> Result<i64> {
    Ok(open_ro(db)?.query_row(
        "SELECT COUNT(*) FROM (SELECT doc, MAX(seq) AS head FROM log GROUP BY doc) l
           LEFT JOIN doc_state s ON s.doc = l.doc
           WHERE s.doc IS NULL OR s.view_seq < l.head",
        [],
        |r| r.get(0),
    )?)
}

/// How one kill landed.
#[derive(Debug, Default)]
struct Landings {
    /// The write lock was held the moment before the kill.
    mid_write: usize,
    /// The command finished before the kill could land.
    finished: usize,
    /// Killed while not writing (before the lock, or after its release).
    outside: usize,
}

/// Waits until `child` holds the write lock (or exits), then lets it run
/// up to `extra` longer — the kill schedule, not synchronisation: the wait
/// ends early when the child exits — and kills it, saying where it landed.
fn kill_while_writing(child: &mut Child, shm: &Path, extra: Duration) -> Result<&'static str> {
    let started = std::time::Instant::now();
    while !write_lock_held(shm)? {
        if child.try_wait()?.is_some() {
            return Ok("finished");
        }
        if started.elapsed() > LOCK_WAIT {
            kill9(child);
            bail!("the command took no write lock within {LOCK_WAIT:?}");
        }
        std::thread::yield_now();
    }
    let locked = std::time::Instant::now();
    while locked.elapsed() < extra {
        if child.try_wait()?.is_some() {
            return Ok("finished");
        }
        std::thread::yield_now();
    }
    let held = write_lock_held(shm)?;
    if child.try_wait()?.is_some() {
        return Ok("finished");
    }
    kill9(child);
    Ok(if held { "mid_write" } else { "outside" })
}

#[test]
fn a_write_killed_before_its_view_update_leaves_views_equal_to_a_rebuild() -> Result<()> {
    let mut rng = Rng::from_env("view kill loop", SEED_VAR);
    let mut relay = Relay::init()?;
    relay.start()?;
    let node = Node::init(&relay, TORINO, "comune")?;
    let dir = node.node_dir();
    let (db, shm) = (dir.join("node.db"), dir.join("node.db-shm"));
    let file = dir.join("progetti.csv");
    std::fs::write(&file, opencoesione_rows(IMPORT_ROWS, 0))?;
    node.cmd(&["import", &path(&file)])?.ok()?;
    let cups: Vec<String> = node
        .projects(false)?
        .into_iter()
        .map(|(_, c, _)| c)
        .collect();
    assert_eq!(cups.len(), IMPORT_ROWS);
    let n = std::env::var("ACCORDO_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(VIEW_KILLS);
    let mut landed = Landings::default();
    for i in 0..n {
        // With no command running nobody holds the lock: the probe can say no.
        assert!(
            !write_lock_held(&shm)?,
            "iteration {i}: the write lock is held"
        );
        let mut child = if i % 3 == 2 {
            let cup = &cups[rng.below(cups.len() as u64) as usize];
            spawn(
                &node,
                &["project", "set", cup, "--paid-eur", &format!("{}", 10 + i)],
            )?
        } else {
            std::fs::write(&file, opencoesione_rows(IMPORT_ROWS, i + 1))?;
            spawn(&node, &["import", &path(&file)])?
        };
        // An import holds the lock for about a second, a `project set` for
        // a tenth: some kills land late in the write, some after it.
        let extra = Duration::from_millis(rng.below(if i % 3 == 2 { 200 } else { 1_500 }));
        match kill_while_writing(&mut child, &shm, extra)? {
            "mid_write" => landed.mid_write += 1,
            "finished" => landed.finished += 1,
            _ => landed.outside += 1,
        }
        integrity_ok(&db).with_context(|| format!("iteration {i}"))?;
        assert_eq!(views_behind(&db)?, 0, "iteration {i}: views behind the log");
        let before = node
            .cmd(&["project", "list", "--format", "json"])?
            .ok()?
            .json()?;
        let rebuilt = node.cmd(&["rebuild-views"])?;
        assert_eq!(rebuilt.code, Some(0), "iteration {i}: {rebuilt:?}");
        assert!(
            rebuilt.stdout.contains(", 0 differed"),
            "iteration {i}: {}",
            rebuilt.stdout
        );
        let after = node
            .cmd(&["project", "list", "--format", "json"])?
            .ok()?
            .json()?;
        assert_eq!(
            before, after,
            "iteration {i}: the list changed with the rebuild"
        );
    }
    println!(
        "view kill loop: {n} kills, {} mid-write (write lock held), {} after the command finished, {} outside a write",
        landed.mid_write, landed.finished, landed.outside
    );
    assert!(landed.mid_write > 0, "no kill landed mid-write: {landed:?}");
    Ok(())
}
