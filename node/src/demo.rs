//! `accordo demo`: a whole network on loopback with no configuration.
//!
//! It starts a real `accordo-relay` process (found next to this binary), an
//! admin that governs the network by a signed registry (as the README's
//! quick start does), a metropolitan node and three comuni of the Città
//! Metropolitana di Cagliari (one with two offices), all enrolled by the
//! admin; syncs once, stops the relay, lets the offices keep editing offline
//! (two of them on the same project), restarts the relay,
//! reconnects everyone and prints the converged, aggregated portfolio as the
//! metropolitan office sees it, with the time convergence took.

use crate::admin;
use crate::client::{self, SharedReplica, SyncFailure};
use crate::clock::now_ms;
use crate::replica::{default_network, Replica, Settings};
use accordo_domain::comuni;
use accordo_domain::money::format_eur;
use accordo_domain::portfolio;
use accordo_protocol::codes::Cup;
use accordo_protocol::doc::DocId;
use accordo_protocol::identity::{NodeId, RelayAddr, Role};
use accordo_protocol::registry::RegistryRole;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Per-sync timeout in the demo: loopback answers in milliseconds.
const DEMO_SYNC_TIMEOUT: Duration = Duration::from_secs(20);

/// Offices of the demo: (directory name, ISTAT code, comune, role).
const OFFICES: &[(&str, &str, &str, Role)] = &[
    (
        "metro",
        "092009",
        "Città Metropolitana di Cagliari",
        Role::Metro,
    ),
    (
        "cagliari-lavori",
        "092009",
        "Cagliari (lavori pubblici)",
        Role::Comune,
    ),
    (
        "cagliari-ragioneria",
        "092009",
        "Cagliari (ragioneria)",
        Role::Comune,
    ),
    ("quartu", "092051", "Quartu Sant'Elena", Role::Comune),
    ("selargius", "092068", "Selargius", Role::Comune),
];

/// A relay child process, killed if the demo ends early.
struct RelayProcess {
    child: Child,
    addr: String,
}

impl RelayProcess {
    fn start(bin: &Path, dir: &Path, listen: &str) -> Result<RelayProcess> {
        let mut child = Command::new(bin)
            .args(["serve", "--dir"])
            .arg(dir)
            .args(["--listen", listen])
            .env("ACCORDO_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("relay stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(addr) = line.strip_prefix("listening on ") {
                        break addr.to_owned();
                    }
                }
                _ => {
                    let _ = child.kill();
                    bail!("relay exited before listening");
                }
            }
        };
        Ok(RelayProcess { child, addr })
    }

    /// SIGTERM and wait: the relay's clean shutdown path.
    fn stop(mut self) -> Result<()> {
        terminate(&self.child);
        let status = self.child.wait()?;
        if !status.success() {
            bail!("relay exited with {status}");
        }
        Ok(())
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(unix)]
fn terminate(child: &Child) {
    // The std library has no SIGTERM; `kill` is in every Unix base system.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

#[cfg(not(unix))]
fn terminate(_child: &Child) {}

fn relay_cli(bin: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(bin).args(args).output()?;
    if !out.status.success() {
        bail!(
            "accordo-relay {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let stdout = String::from_utf8(out.stdout)?;
    Ok(stdout.lines().last().unwrap_or_default().to_owned())
}

fn relay_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe.with_file_name(format!("accordo-relay{}", std::env::consts::EXE_SUFFIX));
    if !bin.exists() {
        bail!(
            "{} not found next to {}: build both binaries with `cargo build --release`",
            bin.display(),
            exe.display()
        );
    }
    Ok(bin)
}

/// A network governed by a signed registry, as the README's quick start
/// builds it: an admin key pinned on the relay founds the registry and
/// enrolls every office's key; nodes pin the admin key and judge every change
/// against the registry themselves. Returns the admin and the offices (the
/// metro first).
fn governed_network(
    rt: &tokio::runtime::Runtime,
    base: &Path,
    relay_bin: &Path,
    relay_dir: &str,
    addr: &RelayAddr,
) -> Result<(Office, Vec<Office>)> {
    let network = default_network(&addr.id);
    let mut admin = admin::init(&base.join("admin"), addr.clone(), network.clone(), now_ms())?;
    let admin_id = admin.id;
    relay_cli(
        relay_bin,
        &[
            "allow",
            "--dir",
            relay_dir,
            "--node",
            &admin_id.to_string(),
            "--role",
            "admin",
        ],
    )?;
    println!(
        "  admin {} pinned on the relay; it signs the registry",
        admin_id.short()
    );
    let mut offices = Vec::new();
    for (name, istat, label, role) in OFFICES {
        let settings = Settings {
            comune: istat.parse()?,
            role: *role,
            relay: addr.clone(),
            network: network.clone(),
            anchors: vec![admin_id],
        };
        let replica = Replica::init(&base.join(name), settings)?;
        let as_role = match role {
            Role::Metro => RegistryRole::Metro,
            _ => RegistryRole::Comune,
        };
        admin::enroll(&mut admin, replica.id, istat.parse()?, as_role, now_ms())?;
        println!(
            "  node {} for {label} ({istat}, {role}) enrolled by the admin",
            replica.id.short()
        );
        offices.push(Office {
            label,
            replica: Arc::new(Mutex::new(replica)),
        });
    }
    let admin = Office {
        label: "admin",
        replica: Arc::new(Mutex::new(admin)),
    };
    // The enrollments reach the relay before any office connects.
    rt.block_on(client::sync_once(
        Arc::clone(&admin.replica),
        DEMO_SYNC_TIMEOUT,
    ))
    .context("sync of the admin")?;
    Ok((admin, offices))
}

struct Office {
    label: &'static str,
    replica: SharedReplica,
}

fn edit(office: &Office, f: impl FnOnce(&mut Replica, i64) -> Result<()>) -> Result<()> {
    let mut r = office.replica.lock().expect("replica mutex poisoned");
    f(&mut r, now_ms())
}

fn add(office: &Office, cup: &str, title: &str, cost_eur: i64) -> Result<()> {
    edit(office, |r, now| {
        let cup: Cup = cup.parse()?;
        let id = portfolio::new_project_id()?;
        let own = r.own_doc();
        r.edit(&own, now, |doc| {
            Ok(portfolio::add_project(
                doc,
                &id,
                &cup,
                title,
                Some(cost_eur * 100),
                now,
            )?)
        })?;
        Ok(())
    })
}

fn retitle(office: &Office, cup: &str, title: &str) -> Result<()> {
    edit(office, |r, now| {
        let cup: Cup = cup.parse()?;
        let own = r.own_doc();
        r.edit(&own, now, |doc| {
            let id = portfolio::find_one(doc, &cup)?;
            Ok(portfolio::set_title(doc, &id, title)?)
        })?;
        Ok(())
    })
}

async fn sync_all(offices: &[Office]) -> Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for o in offices {
        let replica = Arc::clone(&o.replica);
        let label = o.label;
        tasks.spawn(async move { (label, client::sync_once(replica, DEMO_SYNC_TIMEOUT).await) });
    }
    while let Some(res) = tasks.join_next().await {
        let (label, res) = res?;
        res.with_context(|| format!("sync of {label}"))?;
    }
    Ok(())
}

/// Syncs every office, concurrently, until all hold the same heads: an office
/// that synced before another pushed needs a second round. Returns the rounds.
async fn sync_until_converged(offices: &[Office]) -> Result<usize> {
    const MAX_ROUNDS: usize = 5;
    for round in 1..=MAX_ROUNDS {
        sync_all(offices).await?;
        if converged(offices)? {
            return Ok(round);
        }
    }
    bail!("no convergence after {MAX_ROUNDS} sync rounds")
}

/// Heads of every document each office holds, for the convergence check.
fn heads(office: &Office) -> Result<BTreeMap<DocId, Vec<String>>> {
    let mut r = office.replica.lock().expect("replica mutex poisoned");
    let mut out = BTreeMap::new();
    for (doc, mut am) in r.materialise_all()? {
        let mut h: Vec<String> = am.get_heads().iter().map(|h| h.to_string()).collect();
        h.sort();
        out.insert(doc, h);
    }
    Ok(out)
}

/// Whether every office holds, for each document it follows, what the metro
/// holds (a document an office lacks counts as empty heads).
fn converged(offices: &[Office]) -> Result<bool> {
    let metro = heads(&offices[0])?;
    let empty = Vec::new();
    for o in &offices[1..] {
        let own = heads(o)?;
        let followed = {
            let r = o.replica.lock().expect("replica mutex poisoned");
            [r.own_doc(), DocId::Plan]
        };
        let extra = own.keys().filter(|d| !followed.contains(d)).cloned();
        for doc in followed.iter().cloned().chain(extra) {
            let theirs = own.get(&doc).unwrap_or(&empty);
            if metro.get(&doc).unwrap_or(&empty) != theirs {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

pub fn run(keep: Option<PathBuf>) -> Result<()> {
    match keep {
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            demo(&dir)
        }
        None => {
            let dir = tempfile_dir()?;
            let result = demo(&dir);
            // Best effort: a leftover temporary directory is harmless.
            let _ = std::fs::remove_dir_all(&dir);
            result
        }
    }
}

fn tempfile_dir() -> Result<PathBuf> {
    let mut suffix = [0u8; 6];
    getrandom::fill(&mut suffix).map_err(|e| anyhow::anyhow!("randomness: {e}"))?;
    let dir = std::env::temp_dir().join(format!("accordo-demo-{}", hex::encode(suffix)));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn demo(base: &Path) -> Result<()> {
    let relay_bin = relay_binary()?;
    let relay_dir = base.join("relay");
    let relay_dir_s = relay_dir.display().to_string();
    println!("== Accordo demo in {}", base.display());
    let relay_id: NodeId = relay_cli(&relay_bin, &["init", "--dir", &relay_dir_s])?.parse()?;
    let relay = RelayProcess::start(&relay_bin, &relay_dir, "127.0.0.1:0")?;
    println!("relay {} listening on {}", relay_id.short(), relay.addr);
    let addr: RelayAddr = format!("{relay_id}@{}", relay.addr).parse()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (admin, offices) = governed_network(&rt, base, &relay_bin, &relay_dir_s, &addr)?;

    println!("\n== 1. Online: each comune records its first projects and syncs");
    add(
        &offices[1],
        "F21B21000310006",
        "Riqualificazione Mercato di San Benedetto",
        4_500_000,
    )?;
    add(
        &offices[3],
        "H81B22000120001",
        "Pista ciclabile Poetto-Quartu",
        1_250_000,
    )?;
    add(
        &offices[4],
        "B61C22000450005",
        "Efficientamento energetico scuola via Roma",
        780_000,
    )?;
    let rounds = rt.block_on(sync_until_converged(&offices))?;
    println!("   synced ({rounds} round(s))");

    println!("\n== 2. The relay goes down; offices keep working offline");
    let listen = relay.addr.clone();
    relay.stop()?;
    let offline = rt.block_on(client::sync_once(
        Arc::clone(&offices[3].replica),
        Duration::from_secs(2),
    ));
    match offline {
        Err(e @ SyncFailure::Unreachable { .. }) => println!("   quartu tries to sync: {e}"),
        other => bail!("sync with the relay down should fail as unreachable, got {other:?}"),
    }
    add(
        &offices[1],
        "F27H21001230006",
        "Parco urbano di Monte Claro, lotto 2",
        2_100_000,
    )?;
    add(
        &offices[3],
        "H88I22000050006",
        "Rigenerazione urbana piazza Azuni",
        3_400_000,
    )?;
    add(
        &offices[4],
        "B68H22000770001",
        "Nuovo asilo nido comunale",
        1_900_000,
    )?;
    add(
        &offices[4],
        "B63D23000010006",
        "Digitalizzazione servizi demografici",
        140_000,
    )?;
    // Two offices of Cagliari retitle the same project concurrently.
    retitle(
        &offices[1],
        "F21B21000310006",
        "Mercato di San Benedetto: restauro e impianti",
    )?;
    retitle(
        &offices[2],
        "F21B21000310006",
        "Mercato San Benedetto - riqualificazione (ragioneria)",
    )?;
    println!("   4 projects added and 2 concurrent edits made offline");

    println!("\n== 3. The relay is back; everyone reconnects");
    let relay = RelayProcess::start(&relay_bin, &relay_dir, &listen)?;
    let started = Instant::now();
    let rounds = rt.block_on(sync_until_converged(&offices))?;
    let took = started.elapsed();
    println!(
        "   converged in {} ms ({rounds} sync round(s) of {} nodes)",
        took.as_millis(),
        offices.len()
    );

    print_aggregate(&offices[0])?;
    let cagliari_a = first_title(&offices[1], "F21B21000310006")?;
    let cagliari_b = first_title(&offices[2], "F21B21000310006")?;
    if cagliari_a != cagliari_b {
        bail!("the two Cagliari offices disagree: {cagliari_a:?} vs {cagliari_b:?}");
    }
    println!("\nConcurrent retitle resolved identically on both Cagliari offices: {cagliari_a:?}");
    let (checked, findings) = {
        let mut r = offices[0].replica.lock().expect("replica mutex poisoned");
        admin::verify(&mut r)?
    };
    println!(
        "The metropolitan office verified {checked} change(s) (signatures and authority under the registry): {} problem(s)",
        findings.len()
    );
    if !findings.is_empty() {
        bail!("verification found problems: {findings:?}");
    }
    drop(admin);
    relay.stop()?;
    println!("Converged in {} ms. Demo finished.", took.as_millis());
    Ok(())
}

fn first_title(office: &Office, cup: &str) -> Result<String> {
    let mut r = office.replica.lock().expect("replica mutex poisoned");
    let own = r.own_doc();
    let doc = r.materialise(&own)?;
    let cup: Cup = cup.parse()?;
    Ok(portfolio::list(&doc)
        .into_iter()
        .find(|p| p.cup.as_deref() == Some(cup.as_str()))
        .map(|p| p.title)
        .unwrap_or_default())
}

fn print_aggregate(metro: &Office) -> Result<()> {
    let docs = {
        let mut r = metro.replica.lock().expect("replica mutex poisoned");
        r.materialise_all()?
    };
    println!("\n== Portfolio of the metropolitan area, as the metropolitan office holds it");
    println!("{:<27} {:<16} {:>16}  TITLE", "COMUNE", "CUP", "COST EUR");
    let mut grand = 0;
    let mut total_projects = 0;
    for (doc, am) in &docs {
        let DocId::Comune(istat) = doc else { continue };
        let projects = portfolio::list(am);
        let mut sum = 0;
        for p in &projects {
            let cost = p.cost_cents.unwrap_or(0);
            sum += cost;
            println!(
                "{:<27} {:<16} {:>16}  {}",
                comuni::label(istat.as_str()),
                p.cup.as_deref().unwrap_or("-"),
                format_eur(cost),
                p.title
            );
        }
        println!(
            "{:<27} {:<16} {:>16}  ({} projects)",
            "",
            "subtotal",
            format_eur(sum),
            projects.len()
        );
        grand += sum;
        total_projects += projects.len();
    }
    println!(
        "{:<27} {:<16} {:>16}  ({total_projects} projects)",
        "ALL",
        "total",
        format_eur(grand)
    );
    Ok(())
}
