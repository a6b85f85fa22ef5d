//! Sync benchmarks; prints figures (no thresholds). `ACCORDO_BENCH_QUICK=1`
//! runs a small version for CI.
//!
//! 1. Relay ingest of signed changes per second, with verification, in
//!    process (verify + admit + `synchronous=FULL` commit) and over QUIC
//!    through the real binaries.
//! 2. Bytes on the wire divided by bytes of the changes moved, for a cold
//!    sync (a new metro node pulls everything) and a warm one (nothing new).
//! 3. Time for N comune nodes with M projects each, edited offline, to
//!    converge through one relay on loopback (real `accordo sync` processes).

use accordo_domain::portfolio;
use accordo_node::replica::Replica;
use accordo_protocol::authority::Member;
use accordo_protocol::doc::DocId;
use accordo_protocol::envelope::{derive_actor, SignedChange};
use accordo_protocol::identity::{NodeId, Role};
use accordo_protocol::log::{admit, serve_sync, Admitted};
use accordo_protocol::wire::SyncRequest;
use accordo_tests::{accordo_bin, path, Node, Relay};
use anyhow::{bail, Context, Result};
use automerge::{ActorId, AutoCommit};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

struct Sizes {
    ingest_changes: usize,
    wire_changes: usize,
    nodes: usize,
    projects: usize,
}

fn sizes() -> Sizes {
    if std::env::var_os("ACCORDO_BENCH_QUICK").is_some() {
        Sizes {
            ingest_changes: 2_000,
            wire_changes: 1_000,
            nodes: 10,
            projects: 20,
        }
    } else {
        Sizes {
            ingest_changes: 20_000,
            wire_changes: 5_000,
            nodes: 50,
            projects: 100,
        }
    }
}

fn nonce(salt: u64) -> [u8; 16] {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    (nanos ^ u128::from(salt) << 64).to_le_bytes()
}

fn cup(node: usize, i: usize) -> accordo_protocol::codes::Cup {
    format!("B{:02}C{:011}", node % 100, i)
        .parse()
        .expect("valid CUP")
}

/// `n` project additions as signed changes of one author on `doc`.
fn project_changes(
    key: &ed25519_dalek::SigningKey,
    doc: &DocId,
    salt: usize,
    n: usize,
) -> Vec<SignedChange> {
    let id = NodeId::from_signing_key(key);
    let nonce = nonce(salt as u64);
    let mut am = AutoCommit::new().with_actor(ActorId::from(&derive_actor(&id, &nonce)[..]));
    (0..n)
        .map(|i| {
            let pid = format!("{salt:04x}{i:08x}");
            portfolio::add_project(
                &mut am,
                &pid,
                &cup(salt, i),
                &format!("Progetto {i} del nodo {salt}"),
                Some(100_000 + i as i64),
                0,
            )
            .expect("add project");
            am.commit();
            let change = am.get_last_local_change().expect("committed");
            SignedChange::sign(doc.clone(), key, nonce, &change)
        })
        .collect()
}

/// Puts `n` offline project additions in a node's store, as `project add` would.
fn seed_node(dir: &Path, salt: usize, n: usize) -> Result<usize> {
    let mut replica = Replica::open(dir)?;
    let doc = replica.own_doc();
    let changes = project_changes(&replica.key, &doc, salt, n);
    let bytes = changes.iter().map(|c| c.change.len()).sum();
    replica.store.write(|tx| {
        let mut log = tx.log();
        for env in changes {
            let v = env.verify().context("own change verifies")?;
            match admit(&mut log, &v)? {
                Ok(Admitted::Stored(seq)) => tx.enqueue(seq, &v.hash)?,
                other => bail!("seeding refused: {other:?}"),
            }
        }
        Ok(())
    })?;
    Ok(bytes)
}

fn ingest_in_process(n: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut store = accordo_relay::store::open(&dir.path().join("relay.db"))?;
    const AUTHORS: usize = 10;
    const BATCH: usize = 1_000;
    let mut all = Vec::new();
    for a in 0..AUTHORS {
        let key = ed25519_dalek::SigningKey::from_bytes(&[a as u8 + 1; 32]);
        let comune = format!("092{:03}", a + 1);
        store.allow(
            &Member {
                node: NodeId::from_signing_key(&key),
                comune: comune.parse()?,
                role: Role::Comune,
            },
            0,
        )?;
        all.extend(project_changes(
            &key,
            &DocId::Comune(comune.parse()?),
            a,
            n / AUTHORS,
        ));
    }
    // Interleave authors the way concurrent pushes arrive, keeping each author's order.
    let per = n / AUTHORS;
    let ordered: Vec<SignedChange> = (0..per)
        .flat_map(|i| (0..AUTHORS).map(move |a| (a, i)))
        .map(|(a, i)| all[a * per + i].clone())
        .collect();
    let started = Instant::now();
    let mut acked = 0;
    for batch in ordered.chunks(BATCH) {
        let req = SyncRequest {
            push: batch.to_vec(),
            cursors: vec![],
            max_response_bytes: 0,
            wait_ms: 0,
        };
        let verified = req.push.iter().cloned().map(SignedChange::verify).collect();
        let resp = store.with_log(|log, members| serve_sync(log, members, &req, verified))?;
        acked += resp.acks.len();
    }
    let secs = started.elapsed().as_secs_f64();
    if acked != ordered.len() {
        bail!("only {acked} of {} changes acknowledged", ordered.len());
    }
    println!(
        "relay ingest, in process (verify_strict + causal checks + FULL commit per {BATCH}): {} changes in {:.2} s = {:.0} changes/s",
        acked,
        secs,
        acked as f64 / secs
    );
    Ok(())
}

/// What `accordo sync` reports on its last line.
struct SyncFigures {
    round_trips: f64,
    wire_bytes: f64,
    change_bytes: f64,
    ms: f64,
}

/// Parses "in sync: pushed P, received R, N round trip(s), W bytes on the
/// wire for C bytes of changes, T ms".
fn sync_figures(stdout: &str) -> Result<SyncFigures> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("in sync:"))
        .context("no sync report")?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let num = |before: &str| -> Result<f64> {
        let pos = words
            .iter()
            .position(|w| w.starts_with(before))
            .with_context(|| format!("no `{before}` in {line:?}"))?;
        Ok(words[pos - 1].trim_end_matches(',').parse()?)
    };
    Ok(SyncFigures {
        round_trips: num("round")?,
        wire_bytes: num("bytes")?,
        change_bytes: words[words.iter().position(|w| *w == "for").context("for")? + 1].parse()?,
        ms: num("ms")?,
    })
}

fn wire_and_ratios(n: usize) -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let node = Node::admitted(&relay, "092051", "comune")?;
    let metro = Node::admitted(&relay, "092009", "metro")?;
    let change_bytes = seed_node(node.dir.path(), 1, n)?;
    let push = sync_figures(&node.sync()?.ok()?.stdout)?;
    println!(
        "relay ingest over QUIC (one node pushes {n} changes, `accordo sync`): {:.0} changes/s ({:.0} ms, wire/change bytes {:.2})",
        n as f64 / (push.ms / 1000.0),
        push.ms,
        push.wire_bytes / change_bytes as f64
    );
    let cold = sync_figures(&metro.sync()?.ok()?.stdout)?;
    println!(
        "cold sync (new metro node pulls {n} changes): {:.0} wire bytes / {:.0} change bytes = {:.3} ({:.0} ms, {:.0} round trip(s))",
        cold.wire_bytes,
        cold.change_bytes,
        cold.wire_bytes / cold.change_bytes,
        cold.ms,
        cold.round_trips
    );
    let warm = sync_figures(&metro.sync()?.ok()?.stdout)?;
    println!(
        "warm sync (nothing new): {:.0} wire bytes in {:.0} round trip(s)",
        warm.wire_bytes, warm.round_trips
    );
    node.add("H81B22000120001", "Una modifica in più")?;
    node.sync()?.ok()?;
    let one = sync_figures(&metro.sync()?.ok()?.stdout)?;
    println!(
        "warm sync (one new change): {:.0} wire bytes / {:.0} change bytes = {:.2} ({:.0} round trip(s))",
        one.wire_bytes,
        one.change_bytes,
        one.wire_bytes / one.change_bytes,
        one.round_trips
    );
    Ok(())
}

fn converge(nodes: usize, projects: usize) -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let metro = Node::admitted(&relay, "092009", "metro")?;
    // Real codes (`init` refuses codes no comune has): the Città
    // metropolitana di Torino's 312 comuni.
    let codes = accordo_domain::comuni::of_uts("201");
    let mut comuni = Vec::new();
    for i in 0..nodes {
        let code = codes
            .get(i)
            .context("more nodes than comuni of Torino")?
            .code;
        let node = Node::admitted(&relay, code, "comune")?;
        seed_node(node.dir.path(), i, projects)?;
        comuni.push(node);
    }
    let started = Instant::now();
    // All comuni reconnect at once, as after a network outage.
    let mut children = Vec::new();
    for n in &comuni {
        children.push(
            Command::new(accordo_bin())
                .args(["--dir", &path(n.dir.path()), "sync", "--timeout-s", "120"])
                .env("ACCORDO_LOG", "warn")
                .stdout(std::process::Stdio::null())
                .spawn()?,
        );
    }
    for mut child in children {
        if !child.wait()?.success() {
            bail!("a comune's sync failed");
        }
    }
    let pushed = started.elapsed();
    metro.cmd(&["sync", "--timeout-s", "120"])?.ok()?;
    let total = started.elapsed();
    let held = metro.projects(true)?.len();
    if held != nodes * projects {
        bail!("metro holds {held} projects, expected {}", nodes * projects);
    }
    println!(
        "{nodes} nodes x {projects} projects converge through one relay: {:.2} s (all pushes {:.2} s, metro pull {:.2} s)",
        total.as_secs_f64(),
        pushed.as_secs_f64(),
        (total - pushed).as_secs_f64()
    );
    Ok(())
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let s = sizes();
    ingest_in_process(s.ingest_changes)?;
    wire_and_ratios(s.wire_changes)?;
    converge(s.nodes, s.projects)?;
    Ok(())
}
