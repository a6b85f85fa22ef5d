//! Domain benchmarks; print figures (no thresholds). `ACCORDO_BENCH_QUICK=1`
//! runs a small version for CI. (Import figures: `benches/import.rs`.)
//!
//! `report` for a metro node holding 312 comuni × 200 projects (Torino's
//! metropolitan area): time to materialise every document and build the
//! report, and the process's peak memory; then `report --verify` of that
//! report (recomputed at its stamped heads from the log). The import
//! benchmarks are in `import.rs`.

use accordo_domain::model::{
    Date, FundingLine, FundingSource, Milestone, Phase, PhaseDates, Project,
};
use accordo_domain::portfolio;
use accordo_domain::report;
use accordo_node::replica::Replica;
use accordo_protocol::doc::DocId;
use accordo_protocol::envelope::{derive_actor, SignedChange};
use accordo_protocol::identity::NodeId;
use accordo_protocol::log::{admit, Admitted};
use anyhow::{bail, Context, Result};
use automerge::{ActorId, AutoCommit};
use std::time::Instant;

struct Sizes {
    comuni: usize,
    projects: usize,
}

fn sizes() -> Sizes {
    if std::env::var_os("ACCORDO_BENCH_QUICK").is_some() {
        Sizes {
            comuni: 20,
            projects: 50,
        }
    } else {
        Sizes {
            comuni: 312,
            projects: 200,
        }
    }
}

/// Peak resident memory of this process (`VmHWM`), in KiB; an error where
/// /proc does not say, so that no made-up figure is printed.
fn rss_peak_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .context("no VmHWM in /proc/self/status")
}

fn sample_project(c: usize, i: usize) -> Project {
    let mut p = Project {
        id: format!("{c:04x}{i:012x}"),
        cup: Some(format!("F{:02}B{:011}", c % 90 + 10, c * 1000 + i)),
        title: format!("Intervento {i} del comune {c}"),
        financed_cents: Some(100_000_000 + (i as i64 * 7919) % 90_000_000),
        committed_cents: Some(50_000_000),
        paid_cents: Some((i as i64 % 10) * 1_000_000),
        created_ms: 1,
        ..Project::default()
    };
    p.funding.insert(
        "f1".into(),
        FundingLine {
            source: FundingSource::Pnrr,
            programme: None,
            amount_cents: 80_000_000,
        },
    );
    p.funding.insert(
        "f2".into(),
        FundingLine {
            source: FundingSource::Comune,
            programme: None,
            amount_cents: 20_000_000,
        },
    );
    p.phases.insert(
        Phase::Esecuzione,
        PhaseDates {
            actual_start: Date::new(2023, 1, 1),
            ..PhaseDates::default()
        },
    );
    p.milestones.insert(
        "m1".into(),
        Milestone {
            code: "T1".into(),
            description: "Collaudo".into(),
            unit: None,
            baseline: None,
            target: None,
            due: Date::new(2024, 12, 31).expect("date"),
            achieved_date: i
                .is_multiple_of(2)
                .then(|| Date::new(2024, 6, 30).expect("date")),
            achieved_value: None,
        },
    );
    p
}

/// One signed change holding a comune's `n` projects, by that comune's key.
fn comune_change(c: usize, n: usize) -> Result<SignedChange> {
    let key = ed25519_dalek::SigningKey::from_bytes(&{
        let mut b = [7u8; 32];
        b[..8].copy_from_slice(&(c as u64).to_le_bytes());
        b
    });
    let nonce = [c as u8; 16];
    let actor = derive_actor(&NodeId::from_signing_key(&key), &nonce);
    let mut am = AutoCommit::new().with_actor(ActorId::from(&actor[..]));
    for i in 0..n {
        portfolio::save(&mut am, None, &sample_project(c, i))?;
    }
    am.commit();
    let change = am.get_last_local_change().context("committed")?;
    let doc = DocId::Comune(format!("{:03}{:03}", 1 + c / 999, 1 + c % 999).parse()?);
    Ok(SignedChange::sign(doc, &key, nonce, &change))
}

fn bench_report(comuni: usize, projects: usize) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node_dir = dir.path().join("metro");
    let relay_key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let relay_addr = format!("{}@127.0.0.1:1", NodeId::from_signing_key(&relay_key)).parse()?;
    let mut metro = Replica::init(
        &node_dir,
        accordo_node::replica::Settings {
            comune: "001272".parse()?,
            role: accordo_protocol::identity::Role::Metro,
            relay: relay_addr,
            network: "bench".into(),
            anchors: Vec::new(),
        },
    )?;
    let seeded = Instant::now();
    let mut change_bytes = 0;
    for c in 0..comuni {
        let env = comune_change(c, projects)?;
        change_bytes += env.change.len();
        let v = env.verify().context("verifies")?;
        metro.store.write(|tx| match admit(&mut tx.log(), &v)? {
            Ok(Admitted::Stored(_)) => Ok(()),
            other => bail!("refused: {other:?}"),
        })?;
    }
    drop(metro);
    println!(
        "report setup: {comuni} comuni x {projects} projects stored in {:.1} s ({:.1} MB of changes)",
        seeded.elapsed().as_secs_f64(),
        change_bytes as f64 / 1e6
    );
    let before = rss_peak_kib()?;
    let started = Instant::now();
    let mut metro = Replica::open(&node_dir)?;
    let input =
        accordo_node::report_input::gather(&mut metro, Date::new(2025, 1, 1).expect("date"), None)?;
    let gathered = started.elapsed();
    let r = report::build(&input);
    let json = serde_json::to_vec(&r)?;
    let html = report::html(&r);
    let total = started.elapsed();
    if r.totals.projects != comuni * projects {
        bail!("report counted {} projects", r.totals.projects);
    }
    println!(
        "report for {comuni} comuni x {projects} projects ({} projects): {:.2} s (materialise and read {:.2} s, build and render {:.3} s); JSON {} KB, HTML {} KB; {} late milestones",
        r.totals.projects,
        total.as_secs_f64(),
        gathered.as_secs_f64(),
        (total - gathered).as_secs_f64(),
        json.len() / 1024,
        html.len() / 1024,
        r.late_milestones.len()
    );
    println!(
        "report memory: peak RSS {} MiB (before: {} MiB)",
        rss_peak_kib()? / 1024,
        before / 1024
    );
    // `report --verify`: the same report recomputed at its stamped heads
    // from exactly the changes they cover (no snapshot, no query store).
    let file: serde_json::Value = serde_json::from_slice(&json)?;
    let started = Instant::now();
    let outcome = accordo_node::report_verify::verify_json(
        &mut metro,
        std::path::Path::new("bench.json"),
        &file,
    )?;
    let verified = started.elapsed();
    if !matches!(
        outcome,
        accordo_node::report_verify::Outcome::Verified { .. }
    ) {
        bail!("the bench report does not verify: {outcome:?}");
    }
    println!(
        "report verify for {} documents: {:.2} s; peak RSS {} MiB",
        r.computed_from.documents.len(),
        verified.as_secs_f64(),
        rss_peak_kib()? / 1024
    );
    Ok(())
}

fn main() -> Result<()> {
    let s = sizes();
    bench_report(s.comuni, s.projects)?;
    Ok(())
}
