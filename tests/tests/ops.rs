//! Operations end to end (issue 13): the metrics, health and readiness
//! endpoints of `accordo-relay serve --metrics` and `accordo run --metrics`,
//! scraped and parsed strictly as OpenMetrics text; online backups taken
//! during continuous writes, restored into a new directory, rejoining the
//! network with nothing acknowledged lost; refused restores.

use accordo_tests::http::{self, scrape, spawn_run_with, spawn_run_with_metrics};
use accordo_tests::openmetrics::Family;
use accordo_tests::{path, relay_bin, run, wait_until, Node, Relay};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CAGLIARI: &str = "092009";
const QUARTU: &str = "092051";

fn family<'a>(m: &'a BTreeMap<String, Family>, name: &str, kind: &str) -> Result<&'a Family> {
    let f = m.get(name).with_context(|| format!("no family {name}"))?;
    anyhow::ensure!(f.kind == kind, "{name} is a {}, not a {kind}", f.kind);
    anyhow::ensure!(f.help.is_some(), "{name} has no HELP");
    Ok(f)
}

/// The single sample of `name` with these labels.
fn value(
    m: &BTreeMap<String, Family>,
    family_name: &str,
    sample: &str,
    labels: &[(&str, &str)],
) -> Result<f64> {
    m.get(family_name)
        .and_then(|f| f.value(sample, labels))
        .with_context(|| format!("no sample {sample}{labels:?}"))
}

fn unix_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

const RELAY_FAMILIES: [(&str, &str); 10] = [
    ("accordo_relay_connected_nodes", "gauge"),
    ("accordo_relay_changes_ingested", "counter"),
    ("accordo_relay_changes_rejected", "counter"),
    ("accordo_relay_received_bytes", "counter"),
    ("accordo_relay_sent_bytes", "counter"),
    ("accordo_relay_sync_requests", "counter"),
    ("accordo_relay_sync_duration_seconds", "histogram"),
    ("accordo_relay_last_sync_timestamp_seconds", "gauge"),
    ("accordo_relay_store_size_bytes", "gauge"),
    ("accordo_relay_log_head_seq", "gauge"),
];

const NODE_FAMILIES: [(&str, &str); 10] = [
    ("accordo_node_outbox_changes", "gauge"),
    ("accordo_node_changes_pulled", "counter"),
    ("accordo_node_changes_pushed", "counter"),
    ("accordo_node_changes_rejected", "counter"),
    ("accordo_node_sync_round_trips", "counter"),
    ("accordo_node_sync_duration_seconds", "histogram"),
    ("accordo_node_relay_connected", "gauge"),
    ("accordo_node_last_sync_timestamp_seconds", "gauge"),
    ("accordo_node_store_size_bytes", "gauge"),
    ("accordo_node_view_lag_changes", "gauge"),
];

#[test]
fn relay_metrics_parse_and_move_after_a_sync() -> Result<()> {
    let mut relay = Relay::init()?;
    let metrics = relay.start_with_metrics()?;
    assert_eq!(http::get(&metrics, "/healthz")?.status, 200);
    let ready = http::get(&metrics, "/readyz")?;
    assert_eq!(ready.status, 200, "{}", ready.body);

    let before = scrape(&metrics)?;
    for reason in ["envelope", "unauthorized", "missing_deps", "equivocation"] {
        let n = value(
            &before,
            "accordo_relay_changes_rejected",
            "accordo_relay_changes_rejected_total",
            &[("reason", reason)],
        )?;
        assert_eq!(n, 0.0, "every reason is exported from zero");
    }
    let ingested = |m: &BTreeMap<String, Family>| {
        value(
            m,
            "accordo_relay_changes_ingested",
            "accordo_relay_changes_ingested_total",
            &[],
        )
    };
    let requests = |m: &BTreeMap<String, Family>| {
        value(
            m,
            "accordo_relay_sync_requests",
            "accordo_relay_sync_requests_total",
            &[],
        )
    };
    assert_eq!(ingested(&before)?, 0.0);

    let node = Node::admitted(&relay, QUARTU, "comune")?;
    node.add("H81B22000120001", "Pista ciclabile")?;
    node.add("H81B22000120002", "Scuola")?;
    let synced_at = unix_s();
    node.sync()?.ok()?;

    let after = scrape(&metrics)?;
    for (name, kind) in RELAY_FAMILIES {
        family(&after, name, kind)?;
    }
    assert_eq!(ingested(&after)?, 2.0, "the two pushed changes were stored");
    assert!(requests(&after)? >= 1.0);
    assert!(
        value(
            &after,
            "accordo_relay_received_bytes",
            "accordo_relay_received_bytes_total",
            &[]
        )? > 0.0
    );
    assert!(
        value(
            &after,
            "accordo_relay_sent_bytes",
            "accordo_relay_sent_bytes_total",
            &[]
        )? > 0.0
    );
    let count = value(
        &after,
        "accordo_relay_sync_duration_seconds",
        "accordo_relay_sync_duration_seconds_count",
        &[],
    )?;
    assert_eq!(count, requests(&after)?, "one duration per sync request");
    let last = value(
        &after,
        "accordo_relay_last_sync_timestamp_seconds",
        "accordo_relay_last_sync_timestamp_seconds",
        &[("comune", QUARTU), ("role", "comune")],
    )?;
    assert!(
        (last - synced_at).abs() < 60.0,
        "last sync {last} vs {synced_at}"
    );
    assert_eq!(
        value(
            &after,
            "accordo_relay_log_head_seq",
            "accordo_relay_log_head_seq",
            &[]
        )?,
        2.0
    );
    assert!(
        value(
            &after,
            "accordo_relay_store_size_bytes",
            "accordo_relay_store_size_bytes",
            &[]
        )? > 0.0
    );
    assert!(relay.stop()?);

    // After a restart the comune's last sync comes back from the relay's
    // stored presence, so a comune that stays silent is still there to
    // alert on.
    let metrics = relay.start_with_metrics()?;
    let seen = value(
        &scrape(&metrics)?,
        "accordo_relay_last_sync_timestamp_seconds",
        "accordo_relay_last_sync_timestamp_seconds",
        &[("comune", QUARTU), ("role", "comune")],
    )?;
    assert!(
        (seen - last).abs() <= 1.0,
        "after the restart {seen}, before {last}"
    );
    assert!(relay.stop()?);
    Ok(())
}

#[test]
fn node_metrics_parse_readiness_follows_the_sync_loop_and_counters_move() -> Result<()> {
    let mut relay = Relay::init()?;
    let relay_metrics = relay.start_with_metrics()?;
    let node = Node::admitted(&relay, CAGLIARI, "comune")?;
    let (mut child, metrics) = spawn_run_with_metrics(&node)?;
    assert_eq!(http::get(&metrics, "/healthz")?.status, 200);
    wait_until(Duration::from_secs(20), || {
        Ok(http::get(&metrics, "/readyz")?.status == 200)
    })?;
    let connected = |m: &str, fam: &str| -> Result<f64> { value(&scrape(m)?, fam, fam, &[]) };
    wait_until(Duration::from_secs(20), || {
        Ok(connected(&metrics, "accordo_node_relay_connected")? == 1.0
            && connected(&relay_metrics, "accordo_relay_connected_nodes")? == 1.0)
    })?;
    let pushed = |m: &BTreeMap<String, Family>| {
        value(
            m,
            "accordo_node_changes_pushed",
            "accordo_node_changes_pushed_total",
            &[],
        )
    };
    let first = scrape(&metrics)?;
    for (name, kind) in NODE_FAMILIES {
        family(&first, name, kind)?;
    }
    assert_eq!(pushed(&first)?, 0.0);

    // An edit by another process on the same directory: `run` pushes it.
    node.add("F21B21000310006", "Mercato San Benedetto")?;
    wait_until(Duration::from_secs(20), || {
        let m = scrape(&metrics)?;
        Ok(pushed(&m)? == 1.0
            && value(
                &m,
                "accordo_node_outbox_changes",
                "accordo_node_outbox_changes",
                &[("state", "pending")],
            )? == 0.0)
    })?;
    let m = scrape(&metrics)?;
    let trips = value(
        &m,
        "accordo_node_sync_round_trips",
        "accordo_node_sync_round_trips_total",
        &[("kind", "immediate")],
    )?;
    assert!(trips >= 1.0, "the push was an immediate exchange");
    let last = value(
        &m,
        "accordo_node_last_sync_timestamp_seconds",
        "accordo_node_last_sync_timestamp_seconds",
        &[],
    )?;
    assert!((last - unix_s()).abs() < 60.0, "last sync {last}");
    assert_eq!(
        value(
            &m,
            "accordo_node_view_lag_changes",
            "accordo_node_view_lag_changes",
            &[]
        )?,
        0.0
    );
    assert!(
        value(
            &m,
            "accordo_node_store_size_bytes",
            "accordo_node_store_size_bytes",
            &[]
        )? > 0.0
    );

    // SIGTERM: `run` closes its connection, and the relay counts it gone.
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    assert!(child.wait()?.success(), "run stops cleanly on SIGTERM");
    wait_until(Duration::from_secs(20), || {
        Ok(connected(&relay_metrics, "accordo_relay_connected_nodes")? == 0.0)
    })?;
    Ok(())
}

#[test]
fn the_metrics_flag_is_also_a_config_key_of_serve_and_run() -> Result<()> {
    let mut relay = Relay::init()?;
    let conf = tempfile::tempdir()?;
    let relay_toml = conf.path().join("relay.toml");
    std::fs::write(&relay_toml, "[serve]\nmetrics = \"127.0.0.1:0\"\n")?;
    let lines = relay.start_with(&["--config", &path(&relay_toml)])?;
    let addr = lines
        .iter()
        .find_map(|l| l.strip_prefix("metrics on http://"))
        .context("relay serves metrics from its config file")?
        .trim_end_matches("/metrics")
        .to_owned();
    family(&scrape(&addr)?, "accordo_relay_log_head_seq", "gauge")?;

    let node = Node::admitted(&relay, CAGLIARI, "comune")?;
    let node_toml = conf.path().join("node.toml");
    std::fs::write(&node_toml, "[run]\nmetrics = \"127.0.0.1:0\"\n")?;
    let (mut child, addr) = spawn_run_with(&node, &["--config", &path(&node_toml)])?;
    family(&scrape(&addr)?, "accordo_node_view_lag_changes", "gauge")?;
    let _ = child.kill();
    child.wait()?;
    Ok(())
}

/// How many projects the writer adds at most, and for how long.
const WRITES: usize = 30;
const WRITE_BUDGET: Duration = Duration::from_secs(120);
/// Backups taken while the writer writes, at most.
const MAX_BACKUPS: usize = 20;

fn cup(i: usize) -> String {
    format!("F21B2100{i:07}")
}

fn flip_a_byte_in_the_middle(from: &std::path::Path, to: &std::path::Path) -> Result<()> {
    let mut bytes = std::fs::read(from)?;
    let at = bytes.len() / 2;
    bytes[at] ^= 0x5a;
    std::fs::write(to, bytes)?;
    Ok(())
}

#[test]
fn a_backup_during_writes_restores_rejoins_and_loses_nothing_acknowledged() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let node = Node::admitted(&relay, CAGLIARI, "comune")?;
    let (mut child, metrics) = spawn_run_with_metrics(&node)?;
    let node_dir = path(&node.node_dir());
    let out_dir = tempfile::tempdir()?;

    // A writer adds projects one command at a time while `run` pushes them;
    // the backup is taken once some are written and more are coming.
    let written = std::sync::atomic::AtomicUsize::new(0);
    let (taken, writes) = std::thread::scope(|s| -> Result<_> {
        let writer = s.spawn(|| -> Result<usize> {
            let deadline = Instant::now() + WRITE_BUDGET;
            let mut n = 0;
            while n < WRITES && Instant::now() < deadline {
                node.add(&cup(n), &format!("Progetto {n}"))?;
                n += 1;
                written.store(n, std::sync::atomic::Ordering::SeqCst);
            }
            Ok(n)
        });
        wait_until(Duration::from_secs(60), || {
            Ok(written.load(std::sync::atomic::Ordering::SeqCst) >= 8)
        })?;
        // Backups one after another for as long as the writer writes
        // (bounded): each is taken while edits and `run`'s pulls commit.
        let mut taken = Vec::new();
        while !writer.is_finished() && taken.len() < MAX_BACKUPS {
            let out = out_dir.path().join(format!("during-{}.tar", taken.len()));
            // Counted before the backup begins: edits served by `run` take
            // milliseconds, so several may commit while it is taken.
            let during = written.load(std::sync::atomic::Ordering::SeqCst);
            let started = Instant::now();
            let printed = run(
                &accordo_tests::accordo_bin(),
                &[
                    "--dir",
                    &node_dir,
                    "backup",
                    "--out",
                    &path(&out),
                    "--with-keys",
                ],
            )?
            .ok()?;
            eprintln!(
                "backup {} at {during} of {WRITES} written, {:?}: {}",
                taken.len(),
                started.elapsed(),
                printed.stdout.trim()
            );
            taken.push((out, printed, during));
        }
        let writes = writer
            .join()
            .map_err(|_| anyhow::anyhow!("writer panicked"))??;
        Ok((taken, writes))
    })?;
    assert!(taken.len() >= 2, "several backups overlapped the writes");
    // Every one restores (integrity and schema checked), each holding at
    // least what was written before it began.
    let check_dir = tempfile::tempdir()?;
    let mut held = Vec::new();
    for (i, (archive, _, during)) in taken.iter().enumerate() {
        let dir = check_dir.path().join(format!("r{i}"));
        run(
            &accordo_tests::accordo_bin(),
            &["--dir", &path(&dir), "restore", "--from", &path(archive)],
        )?
        .ok()?;
        let n = run(
            &accordo_tests::accordo_bin(),
            &["--dir", &path(&dir), "project", "list", "--format", "json"],
        )?
        .ok()?
        .json()?
        .as_array()
        .map_or(0, Vec::len);
        assert!(
            n >= *during && n <= WRITES,
            "backup {i}: {n} projects, {during} written when it began"
        );
        held.push(n);
    }
    assert!(
        held.windows(2).all(|w| w[0] <= w[1]),
        "later backups hold no less: {held:?}"
    );
    let middle = &taken[taken.len() / 2];
    let (archive, backup_printed) = (middle.0.clone(), middle.1.stdout.clone());
    assert!(
        backup_printed.contains("with the node's keys"),
        "{backup_printed}"
    );
    assert_eq!(writes, WRITES, "the writer finished within its budget");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&archive)?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "an archive with keys is private");
    }

    // Everything written is acknowledged by the relay (the outbox is empty).
    wait_until(Duration::from_secs(60), || {
        let m = scrape(&metrics)?;
        Ok(value(
            &m,
            "accordo_node_outbox_changes",
            "accordo_node_outbox_changes",
            &[("state", "pending")],
        )? == 0.0)
    })?;
    let acknowledged = node.projects(false)?;
    assert_eq!(acknowledged.len(), WRITES);
    let _ = child.kill();
    child.wait()?;

    // A restore into a directory that is not empty is refused and changes nothing.
    let listing = |d: &std::path::Path| -> Result<Vec<String>> {
        let mut v: Vec<String> = std::fs::read_dir(d)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<std::io::Result<_>>()?;
        v.sort();
        Ok(v)
    };
    let before = listing(&node.node_dir())?;
    let db_before = std::fs::read(node.node_dir().join("node.db"))?;
    let refused = run(
        &accordo_tests::accordo_bin(),
        &["--dir", &node_dir, "restore", "--from", &path(&archive)],
    )?;
    assert_ne!(refused.code, Some(0));
    assert!(refused.stderr.contains("not empty"), "{}", refused.stderr);
    assert_eq!(listing(&node.node_dir())?, before);
    assert_eq!(std::fs::read(node.node_dir().join("node.db"))?, db_before);

    // A damaged archive is refused, and no directory is left behind.
    let damaged = out_dir.path().join("damaged.tar");
    flip_a_byte_in_the_middle(&archive, &damaged)?;
    let target = tempfile::tempdir()?;
    let bad_dir = target.path().join("from-damaged");
    let refused = restore_node(&bad_dir, &damaged)?;
    assert_ne!(refused.code, Some(0));
    assert!(
        refused.stderr.contains("damaged") || refused.stderr.contains("integrity"),
        "{}",
        refused.stderr
    );
    assert!(!bad_dir.exists());

    // The restored node holds what the backup caught, rejoins, and after one
    // sync holds everything that was acknowledged.
    let new_dir = target.path().join("restored");
    let restored_run = restore_node(&new_dir, &archive)?.ok()?;
    assert!(
        restored_run.stdout.contains("integrity ok"),
        "{}",
        restored_run.stdout
    );
    let cmd = |args: &[&str]| -> Result<accordo_tests::Run> {
        let mut all = vec!["--dir", new_dir.to_str().context("utf-8 path")?];
        all.extend_from_slice(args);
        run(&accordo_tests::accordo_bin(), &all)
    };
    let caught: usize = cmd(&["project", "list", "--format", "json"])?
        .ok()?
        .json()?
        .as_array()
        .map_or(0, Vec::len);
    assert!(
        (8..=WRITES).contains(&caught),
        "the backup holds {caught} projects"
    );
    cmd(&["sync", "--timeout-s", "30"])?.ok()?;
    let list = cmd(&["project", "list", "--format", "json"])?
        .ok()?
        .json()?;
    let mut got: Vec<(String, String)> = list
        .as_array()
        .context("list")?
        .iter()
        .map(|p| {
            (
                p["cup"].as_str().unwrap_or_default().to_owned(),
                p["title"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    got.sort();
    let want: Vec<(String, String)> = acknowledged
        .iter()
        .map(|(_, c, t)| (c.clone(), t.clone()))
        .collect();
    assert_eq!(
        got, want,
        "every acknowledged project is back after one sync"
    );

    // It edits under a fresh actor: the relay takes its new change (no equivocation).
    cmd(&[
        "project",
        "add",
        "--cup",
        &cup(WRITES),
        "--title",
        "Dopo il ripristino",
    ])?
    .ok()?;
    cmd(&["sync", "--timeout-s", "30"])?.ok()?;
    let status = cmd(&["status", "--format", "json"])?.ok()?.json()?;
    assert_eq!(status["outbox_pending"], 0);
    assert_eq!(status["outbox_rejected"], 0);
    node.sync()?.ok()?;
    assert_eq!(
        node.projects(false)?.len(),
        WRITES + 1,
        "the original node sees the restored node's edit"
    );
    Ok(())
}

#[test]
fn a_backup_without_keys_restores_a_store_that_waits_for_its_key() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let node = Node::admitted(&relay, QUARTU, "comune")?;
    node.add("H81B22000120001", "Pista ciclabile")?;
    node.sync()?.ok()?;
    let out_dir = tempfile::tempdir()?;
    let archive = out_dir.path().join("b.tar");
    node.cmd(&["backup", "--out", &path(&archive)])?.ok()?;
    let new_dir = out_dir.path().join("restored");
    let out = restore_node(&new_dir, &archive)?.ok()?;
    assert!(out.stdout.contains("holds no key"), "{}", out.stdout);
    assert!(!new_dir.join("node.key").exists());
    let status = run(
        &accordo_tests::accordo_bin(),
        &["--dir", &path(&new_dir), "status"],
    )?;
    assert_ne!(status.code, Some(0), "no key: not usable yet");
    std::fs::copy(node.node_dir().join("node.key"), new_dir.join("node.key"))?;
    let status = run(
        &accordo_tests::accordo_bin(),
        &["--dir", &path(&new_dir), "status", "--format", "json"],
    )?
    .ok()?
    .json()?;
    assert_eq!(status["node_id"].as_str(), Some(node.id.as_str()));
    Ok(())
}

#[test]
fn a_relay_backup_taken_while_serving_restores_its_log() -> Result<()> {
    let mut relay = Relay::init()?;
    let metrics = relay.start_with_metrics()?;
    let node = Node::admitted(&relay, CAGLIARI, "comune")?;
    for i in 0..5 {
        node.add(&cup(i), "Progetto")?;
    }
    node.sync()?.ok()?;
    let out_dir = tempfile::tempdir()?;
    let archive = out_dir.path().join("relay.tar");
    run(
        &relay_bin(),
        &[
            "--dir",
            &path(relay.dir.path()),
            "backup",
            "--out",
            &path(&archive),
            "--with-keys",
        ],
    )?
    .ok()?;
    let head = value(
        &scrape(&metrics)?,
        "accordo_relay_log_head_seq",
        "accordo_relay_log_head_seq",
        &[],
    )?;
    assert!(relay.stop()?);

    let damaged = out_dir.path().join("damaged.tar");
    flip_a_byte_in_the_middle(&archive, &damaged)?;
    let bad = out_dir.path().join("bad");
    assert_ne!(
        run(
            &relay_bin(),
            &["--dir", &path(&bad), "restore", "--from", &path(&damaged)]
        )?
        .code,
        Some(0)
    );
    assert!(!bad.exists());
    // A node's backup is not a relay's.
    let node_archive = out_dir.path().join("node.tar");
    node.cmd(&["backup", "--out", &path(&node_archive)])?.ok()?;
    let wrong = run(
        &relay_bin(),
        &[
            "--dir",
            &path(&bad),
            "restore",
            "--from",
            &path(&node_archive),
        ],
    )?;
    assert!(wrong.stderr.contains("not of a relay"), "{}", wrong.stderr);

    // The restored relay has the same id and log, and serves it.
    let restored_dir = tempfile::tempdir()?;
    run(
        &relay_bin(),
        &[
            "--dir",
            &path(restored_dir.path()),
            "restore",
            "--from",
            &path(&archive),
        ],
    )?
    .ok()?;
    let mut restored = Relay::from_dir(restored_dir)?;
    assert_eq!(restored.id, relay.id);
    let metrics = restored.start_with_metrics()?;
    let restored_head = value(
        &scrape(&metrics)?,
        "accordo_relay_log_head_seq",
        "accordo_relay_log_head_seq",
        &[],
    )?;
    assert_eq!(restored_head, head);
    assert!(head >= 5.0);
    assert!(restored.stop()?);
    Ok(())
}

/// `accordo --dir DIR restore --from ARCHIVE`.
fn restore_node(dir: &std::path::Path, archive: &std::path::Path) -> Result<accordo_tests::Run> {
    run(
        &accordo_tests::accordo_bin(),
        &["--dir", &path(dir), "restore", "--from", &path(archive)],
    )
}
