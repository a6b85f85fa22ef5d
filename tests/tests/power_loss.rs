//! Power cuts with the real binaries: a relay, a comune node and a metro
//! node keep their directories on `accordo-powerfs` (`tests/powerfs/`), a
//! FUSE filesystem that loses every write not yet fsynced — and every
//! directory entry not yet made durable by an fsync of its directory — when
//! the power is cut, sometimes tearing (a random subset of the un-synced
//! sectors reached the disk). Each round edits on the comune node, starts a
//! `sync` or `run` on it (and sometimes a `sync` of the metro node and an
//! edit in flight), and after a random delay cuts the power: every process
//! is killed (SIGKILL), then the un-synced data are dropped at once. The
//! binaries then restart on what survived.
//!
//! Checked after every cut: `PRAGMA integrity_check` on the three stores;
//! every change either node held as acknowledged before the cut (its log
//! minus its outbox, as in `crash.rs`) is in the relay's log; every project
//! whose `project add` had returned 0 is on the comune node. At the end the
//! network converges: both nodes sync and the metro node holds exactly the
//! comune's projects, every acknowledged one among them. Losses are counted,
//! printed, then asserted zero; so is the proof that the cuts dropped
//! something (un-synced sectors lost) and that some landed mid-sync.
//!
//! Two single cuts besides: right after `key rotate` (the node must come
//! back on the new key), and right after `init` and a first edit (the stores
//! must start and the edit sync).
//!
//! `ACCORDO_POWER_ITERATIONS` sets the cuts (default 20 in `cargo test`;
//! 100+ for the full run), `ACCORDO_POWER_SEED` replays a schedule (modes,
//! delays, tears; not the processes' timing, so counts vary a little from
//! run to run). Needs /dev/fuse and root (or `fusermount3`); fails, never
//! skips, without them.

use accordo_powerfs::{Cut, CutReport, Mount};
use accordo_tests::fault::{integrity_ok, kill9, missing_titles, spawn, Acknowledged, Rng};
use accordo_tests::{Node, Relay};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::Child;
use std::time::Duration;

const CAGLIARI: &str = "092009";
/// The schedule's seed variable.
const SEED_VAR: &str = "ACCORDO_POWER_SEED";
/// Cuts per `cargo test` run unless `ACCORDO_POWER_ITERATIONS` says otherwise.
const DEFAULT_CUTS: usize = 20;
/// The longest a round runs before its cut: a `sync` on this filesystem
/// takes a few hundred milliseconds, so cuts land before, during and after it.
const MAX_ROUND_MS: u64 = 700;

/// An early cut comes within this: `project add` takes 20–100 ms here.
const EARLY_CUT_MS: u64 = 60;

fn iterations() -> usize {
    std::env::var("ACCORDO_POWER_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CUTS)
}

/// The three directories on one power-loss filesystem. Fields drop in
/// order: the processes and directories before the mount.
struct Network {
    relay: Relay,
    node: Node,
    metro: Node,
    fs: Mount,
    _mountpoint: tempfile::TempDir,
}

/// The power-loss filesystem on a new mount point.
fn mount() -> Result<(tempfile::TempDir, Mount)> {
    let mountpoint = tempfile::tempdir()?;
    let fs = Mount::new(mountpoint.path()).context(
        "the power-loss test needs its FUSE filesystem (/dev/fuse, and root or fusermount3)",
    )?;
    Ok((mountpoint, fs))
}

impl Network {
    fn new() -> Result<Network> {
        let (mountpoint, fs) = mount()?;
        let mut relay = Relay::init_in(fs.path())?;
        relay.start()?;
        let node = Node::admitted_in(&relay, CAGLIARI, "comune", fs.path())?;
        let metro = Node::admitted_in(&relay, CAGLIARI, "metro", fs.path())?;
        // Set up long before the first cut: the kernel had written it all.
        fs.sync_all();
        Ok(Network {
            relay,
            node,
            metro,
            fs,
            _mountpoint: mountpoint,
        })
    }

    fn dbs(&self) -> [PathBuf; 3] {
        [
            self.relay.dir.path().join("relay.db"),
            self.node.node_dir().join("node.db"),
            self.metro.node_dir().join("node.db"),
        ]
    }
}

/// What the loop saw, printed; the losses are asserted zero.
#[derive(Debug, Default)]
struct Tally {
    cuts: usize,
    torn: usize,
    /// The comune node's `sync` (or `run`, which never ends) was still
    /// running at the cut.
    mid_sync: usize,
    /// Edits in flight at the cut that had already returned 0.
    edits_acknowledged_in_flight: usize,
    /// Edits in flight that had not returned (killed, or failed) at the cut.
    edits_cut: usize,
    integrity_failures: usize,
    /// Acknowledged changes missing at the relay, summed over the checks.
    missing_at_relay: usize,
    /// Acknowledged projects missing on the comune node, summed over the checks.
    missing_on_node: usize,
    dropped: CutReport,
}

/// The processes a round started; killed (SIGKILL, then reaped) when the
/// round cuts the power — or when it fails, so that no `run` outlives the
/// test and holds the mount.
struct Busy(Vec<Child>);

impl Drop for Busy {
    fn drop(&mut self) {
        for child in &mut self.0 {
            kill9(child);
        }
    }
}

fn one_round(
    net: &mut Network,
    rng: &mut Rng,
    i: usize,
    acked: &mut Acknowledged,
    added: &mut Vec<String>,
    tally: &mut Tally,
) -> Result<()> {
    for k in 0..=rng.below(2) {
        let title = format!("Cantiere {i}.{k}");
        net.node
            .add(&format!("F21B{:011}", i * 10 + k as usize), &title)?;
        added.push(title);
    }
    let mode: &[&str] = if i.is_multiple_of(2) {
        &["sync", "--timeout-s", "5"]
    } else {
        &["run"]
    };
    let mut busy = Busy(vec![spawn(&net.node, mode)?]);
    let (cup, title) = (format!("F23B{i:011}"), format!("In volo {i}"));
    busy.0.push(spawn(
        &net.node,
        &["project", "add", "--cup", &cup, "--title", &title],
    )?);
    if rng.below(2) == 0 {
        busy.0
            .push(spawn(&net.metro, &["sync", "--timeout-s", "5"])?);
    }
    // A third of the cuts come early, while processes start and the edit
    // in flight commits; the rest anywhere in the round.
    let delay_ms = if rng.below(3) == 0 {
        rng.below(EARLY_CUT_MS)
    } else {
        rng.below(MAX_ROUND_MS)
    };
    std::thread::sleep(Duration::from_millis(delay_ms));
    if busy.0[0].try_wait()?.is_none() {
        tally.mid_sync += 1;
    }
    if matches!(busy.0[1].try_wait()?, Some(s) if s.success()) {
        added.push(title);
        tally.edits_acknowledged_in_flight += 1;
    } else {
        tally.edits_cut += 1;
    }
    // Everything on the machine dies at once.
    drop(busy);
    net.relay.kill9();
    let [_, node_db, metro_db] = net.dbs();
    // What the nodes held as acknowledged the moment the power went.
    acked.observe(&node_db)?;
    acked.observe(&metro_db)?;
    let how = if rng.below(2) == 0 {
        Cut::DropUnsynced
    } else {
        tally.torn += 1;
        Cut::Torn { seed: rng.bits() }
    };
    tally.dropped.add(&net.fs.cut(how));
    tally.cuts += 1;
    check_after_cut(net, i, acked, added, tally)?;
    net.relay
        .start()
        .with_context(|| format!("cut {i}: relay restart"))
}

fn check_after_cut(
    net: &Network,
    i: usize,
    acked: &Acknowledged,
    added: &[String],
    tally: &mut Tally,
) -> Result<()> {
    let [relay_db, ..] = net.dbs();
    for db in net.dbs() {
        if let Err(e) = integrity_ok(&db) {
            eprintln!("cut {i}: {e:#}");
            tally.integrity_failures += 1;
        }
    }
    let missing = acked.missing_at(&relay_db)?;
    if missing > 0 {
        eprintln!("cut {i}: {missing} acknowledged change(s) missing at the relay");
    }
    tally.missing_at_relay += missing;
    let on_node = missing_titles(added, &net.node.projects(false)?);
    if on_node > 0 {
        eprintln!("cut {i}: {on_node} acknowledged project(s) missing on the node");
    }
    tally.missing_on_node += on_node;
    Ok(())
}

#[test]
fn power_cuts_during_sync_lose_nothing_acknowledged_and_the_network_converges() -> Result<()> {
    let mut rng = Rng::from_env("power loop", SEED_VAR);
    let mut net = Network::new()?;
    let n = iterations();
    let (mut acked, mut added, mut tally) = (Acknowledged::default(), Vec::new(), Tally::default());
    for i in 0..n {
        one_round(&mut net, &mut rng, i, &mut acked, &mut added, &mut tally)
            .with_context(|| format!("cut {i} of {n}"))?;
    }
    // Afterwards the network converges on what survived.
    net.node.sync()?.ok()?;
    net.metro.sync()?.ok()?;
    assert_eq!(net.node.status()?["outbox_pending"], 0);
    let [relay_db, node_db, _] = net.dbs();
    let lost = acked.lost(&node_db, &relay_db)?;
    let on_metro = net.metro.projects(true)?;
    let missing_on_metro = missing_titles(&added, &on_metro);
    let d = tally.dropped;
    println!(
        "power loop: {} cuts ({} torn, {} with the node's sync or run running), {} changes acknowledged, {} missing at the relay at the checks and {lost} at the end; {} projects acknowledged ({} of them edits in flight at a cut; {} more edits cut before they returned), {} missing on the node at the checks, {missing_on_metro} missing on the metro node at the end; {} integrity failures; dropped by the cuts: {} un-synced sectors lost, {} kept by tearing, {} sizes and {} directories reverted",
        tally.cuts, tally.torn, tally.mid_sync, acked.0.len(), tally.missing_at_relay,
        added.len(), tally.edits_acknowledged_in_flight, tally.edits_cut, tally.missing_on_node,
        tally.integrity_failures, d.sectors_lost, d.sectors_kept, d.sizes_lost, d.dirs_reverted,
    );
    assert_eq!(tally.integrity_failures, 0, "stores failed integrity_check");
    assert_eq!(
        tally.missing_at_relay + lost,
        0,
        "acknowledged changes lost"
    );
    assert_eq!(tally.missing_on_node, 0, "acknowledged edits lost");
    assert_eq!(missing_on_metro, 0, "the metro node lacks projects");
    assert_eq!(
        on_metro,
        net.node.projects(false)?,
        "the metro node holds exactly the comune's projects"
    );
    assert!(
        acked.0.len() >= added.len(),
        "{} changes acknowledged for {} projects",
        acked.0.len(),
        added.len()
    );
    assert!(d.sectors_lost > 0, "no cut dropped anything: {d:?}");
    assert!(tally.mid_sync > 0, "no cut landed mid-sync: {tally:?}");
    Ok(())
}

/// `accordo key rotate` says the new key is installed: after a power cut
/// the node still signs with it (the retired key's file was copied and the
/// new one renamed into place — both must be durable before it says so).
#[test]
fn a_key_rotation_survives_a_power_cut() -> Result<()> {
    let (_mountpoint, fs) = mount()?;
    let mut relay = Relay::init_in(fs.path())?;
    relay.start()?;
    let admin = Node::admin_in(&relay, fs.path())?;
    let token = admin.invite(CAGLIARI, "comune", "1h")?;
    let (run, office) = Node::from_invite_in(&token, fs.path())?;
    let office = office.with_context(|| format!("init --invite failed: {}", run.stderr))?;
    fs.sync_all();
    let old_id = office.id.clone();
    let new_id = office.cmd(&["key", "rotate"])?.ok()?.last_line();
    assert_ne!(new_id, old_id);
    relay.kill9();
    let dropped = fs.cut(Cut::DropUnsynced);
    println!("key rotation cut: {dropped:?}");
    assert_eq!(
        office.cmd(&["id"])?.ok()?.last_line(),
        new_id,
        "the node signs with the rotated key after the cut"
    );
    let retired = std::fs::read_dir(office.node_dir())?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".retired-"))
        .count();
    assert_eq!(retired, 1, "the retired key is kept");
    relay.start()?;
    office.add("F21B26000000001", "Dopo il taglio")?;
    office.sync()?.ok()?;
    Ok(())
}

/// A relay and a node set up just before the power goes (nothing synced by
/// the kernel since `init`): both start again and sync.
#[test]
fn stores_initialised_just_before_a_cut_still_start() -> Result<()> {
    let (_mountpoint, fs) = mount()?;
    let mut relay = Relay::init_in(fs.path())?;
    relay.start()?;
    let node = Node::admitted_in(&relay, CAGLIARI, "comune", fs.path())?;
    node.add("F21B27000000001", "Appena installato")?;
    // The directories given to `init` existed (the package made them):
    // only what `init` and the edit wrote inside them is at risk.
    std::fs::File::open(fs.path())?.sync_all()?;
    relay.kill9();
    let dropped = fs.cut(Cut::DropUnsynced);
    println!("cut after init: {dropped:?}");
    relay.start()?;
    node.sync()?.ok()?;
    assert_eq!(node.projects(false)?.len(), 1);
    Ok(())
}

/// A file `export` or `report --out` said it wrote is whole after a power
/// cut (written to a temporary file, synced, renamed, directory synced).
#[test]
fn exports_and_reports_said_written_survive_a_power_cut() -> Result<()> {
    let (_mountpoint, fs) = mount()?;
    let mut relay = Relay::init_in(fs.path())?;
    relay.start()?;
    let node = Node::admitted_in(&relay, CAGLIARI, "comune", fs.path())?;
    node.add("F21B28000000001", "Da esportare")?;
    let out = tempfile::tempdir_in(fs.path())?;
    // Only what the commands below write is at risk.
    fs.sync_all();
    let csv = out.path().join("progetti.csv");
    let json = out.path().join("report.json");
    node.cmd(&["export", "--out", &accordo_tests::path(&csv)])?
        .ok()?;
    node.cmd(&[
        "report",
        "--format",
        "json",
        "--out",
        &accordo_tests::path(&json),
    ])?
    .ok()?;
    let before = (std::fs::read(&csv)?, std::fs::read(&json)?);
    assert!(!before.0.is_empty() && !before.1.is_empty());
    relay.kill9();
    let dropped = fs.cut(Cut::DropUnsynced);
    println!("cut after export and report: {dropped:?}");
    let after = (
        std::fs::read(&csv).context("the export is gone after the cut")?,
        std::fs::read(&json).context("the report is gone after the cut")?,
    );
    assert!(after.0 == before.0, "the export is not whole after the cut");
    assert!(after.1 == before.1, "the report is not whole after the cut");
    Ok(())
}
