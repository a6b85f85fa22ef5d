//! Live-views benchmarks (issue 14); print figures, no thresholds.
//! `ACCORDO_BENCH_QUICK=1` runs a small version for CI.
//!
//! On a metro node holding 312 comuni × 200 projects (Torino's metropolitan
//! area, built fast by writing signed changes into its log):
//!
//! 1. `accordo report` through the real binary, wall time and the child's
//!    peak RSS (`wait4`), beside the path report took before the query
//!    store — every document materialised from its changes, then
//!    `accordo_domain::report::input` and `build` — run in a child process
//!    (this bench binary again) and measured the same way.
//! 2. Aggregate queries (`views::totals_by_zone_and_mission`,
//!    `totals_by_funding_source`) with varied filters: p50/p95/max.
//! 3. One incoming change stored as `client::store_response` stores it
//!    (`admit_pulled`, `views::after_pull`, commit), beside storing it
//!    without updating the views (before the query store): p50/p95.
//!
//! On a comune node holding 20,000 projects: `accordo project add` and
//! `accordo project set CUP --paid-eur …`, whole command, p50/p95, made by
//! the command itself and then served by a running `accordo run` (control
//! socket, document kept loaded), in the same run.
//!
//! Every loop is bounded in count and in time. `ACCORDO_BENCH_DIR=PATH`
//! builds the nodes in `PATH` (which must not hold them yet) and keeps them.

use accordo_domain::model::{Date, FundingLine, FundingSource, Milestone, PnrrMeasure, Project};
use accordo_domain::plan::{self, Kind, Membership, PlanItem};
use accordo_domain::portfolio;
use accordo_domain::report;
use accordo_node::doc_cache::DocCache;
use accordo_node::placement::admit_pulled;
use accordo_node::replica::{load_doc, Replica, ReplicaError, Settings};
use accordo_node::views::{self, AggregateFilter};
use accordo_protocol::authority::Member;
use accordo_protocol::doc::DocId;
use accordo_protocol::envelope::{derive_actor, SignedChange};
use accordo_protocol::identity::{NodeId, Role};
use accordo_protocol::log::{admit, Admitted};
use accordo_protocol::wire::{ListedMember, LogEntry};
use accordo_tests::{accordo_bin, path};
use anyhow::{bail, Context, Result};
use automerge::{ActorId, AutoCommit};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Re-executing this binary with this variable set to a node directory runs
/// the old report path in a child process, so its peak RSS is its own.
const OLD_REPORT_CHILD: &str = "ACCORDO_BENCH_OLD_REPORT_DIR";
/// Zone omogenee of the plan (Torino has 11).
const ZONES: usize = 11;
const MEASURES: [&str; 5] = ["M1C1I1.1", "M2C4I2.2", "M4C1I3.3", "M5C2I2.2", "M6C1I1.1"];
/// No loop of the bench runs longer than this.
const LOOP_BUDGET: Duration = Duration::from_secs(120);
const AS_OF: &str = "2025-01-01";

struct Sizes {
    comuni: usize,
    projects: usize,
    report_runs: usize,
    queries: usize,
    incoming: usize,
    local_projects: usize,
    local_runs: usize,
}

fn sizes() -> Sizes {
    if std::env::var_os("ACCORDO_BENCH_QUICK").is_some() {
        Sizes {
            comuni: 20,
            projects: 50,
            report_runs: 1,
            queries: 50,
            incoming: 20,
            local_projects: 1_000,
            local_runs: 5,
        }
    } else {
        Sizes {
            comuni: 312,
            projects: 200,
            report_runs: 3,
            queries: 200,
            incoming: 200,
            local_projects: 20_000,
            local_runs: 20,
        }
    }
}

/// A finished child: wall time, peak RSS, exit status, stderr.
struct Measured {
    wall: Duration,
    peak_rss_kib: u64,
    stderr: String,
}

/// Runs `cmd` to completion and reaps it with `wait4`, for its peak RSS.
fn run_measured(mut cmd: Command, scratch: &Path) -> Result<Measured> {
    let err_path = scratch.join("child.stderr");
    let err = std::fs::File::create(&err_path)?;
    cmd.stdout(Stdio::null())
        .stderr(err)
        .env("ACCORDO_LOG", "warn");
    let started = Instant::now();
    let child = cmd.spawn().context("spawning the measured command")?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is plain data that wait4 fills; `pid` is our own
    // child, not yet reaped (std's `Child` never waits on its own).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    if got != pid {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("{cmd:?} failed (wait status {status}): {stderr}");
    }
    Ok(Measured {
        wall,
        // Linux reports ru_maxrss in KiB.
        peak_rss_kib: usage.ru_maxrss as u64,
        stderr,
    })
}

fn date(s: &str) -> Date {
    Date::parse_any("date", s).expect("a valid date")
}

fn istat(c: usize) -> String {
    format!("{:03}{:03}", 1 + c / 999, 1 + c % 999)
}

fn zone_code(z: usize) -> String {
    format!("ZO{:02}", z + 1)
}

fn comune_key(c: usize) -> ed25519_dalek::SigningKey {
    let mut b = [7u8; 32];
    b[..8].copy_from_slice(&(c as u64).to_le_bytes());
    ed25519_dalek::SigningKey::from_bytes(&b)
}

fn sample_project(c: usize, i: usize) -> Project {
    let mut p = Project {
        id: format!("{c:04x}{i:012x}"),
        cup: Some(format!("F{:02}B{:011}", c % 90 + 10, c * 100_000 + i)),
        title: format!("Intervento {i} del comune {c}"),
        pnrr_measure: (i % 6 != 5).then(|| {
            MEASURES[i % MEASURES.len()]
                .parse::<PnrrMeasure>()
                .expect("a valid measure")
        }),
        zone: i.is_multiple_of(25).then(|| zone_code((c + 1) % ZONES)),
        archived: i % 40 == 39,
        // Half the portfolio is on the public portal (issue 17).
        published: i.is_multiple_of(2),
        financed_cents: Some(100_000_000 + (i as i64 * 7919) % 90_000_000),
        committed_cents: Some(50_000_000 + (c as i64 % 13) * 1_000_000),
        paid_cents: Some((i as i64 % 10) * 1_000_000),
        created_ms: 1,
        ..Project::default()
    };
    let lines = [
        (FundingSource::Pnrr, 80_000_000),
        (FundingSource::Comune, 20_000_000),
        (FundingSource::Fesr, 5_000_000 + i as i64),
    ];
    for (n, (source, amount_cents)) in lines.iter().take(2 + i % 2).enumerate() {
        p.funding.insert(
            format!("f{n}"),
            FundingLine {
                source: *source,
                programme: None,
                amount_cents: *amount_cents,
            },
        );
    }
    p.milestones.insert(
        "m1".into(),
        Milestone {
            code: "T1".into(),
            description: "Collaudo".into(),
            unit: None,
            baseline: None,
            target: None,
            due: date("2024-12-31"),
            achieved_date: i.is_multiple_of(2).then(|| date("2024-06-30")),
            achieved_value: None,
        },
    );
    p
}

/// A comune's first change (its `n` projects) and two built on it (one
/// project's payments, then another's), all signed by the comune's key.
fn comune_changes(c: usize, n: usize) -> Result<(SignedChange, [SignedChange; 2])> {
    let key = comune_key(c);
    let nonce = [c as u8; 16];
    let actor = derive_actor(&NodeId::from_signing_key(&key), &nonce);
    let mut am = AutoCommit::new().with_actor(ActorId::from(&actor[..]));
    for i in 0..n {
        portfolio::save(&mut am, None, &sample_project(c, i))?;
    }
    am.commit();
    let doc = DocId::Comune(istat(c).parse()?);
    let first = SignedChange::sign(
        doc.clone(),
        &key,
        nonce,
        &am.get_last_local_change().context("committed")?,
    );
    let old = sample_project(c, n / 2);
    let mut new = old.clone();
    new.paid_cents = Some(old.paid_cents.unwrap_or(0) + 123_456);
    portfolio::save(&mut am, Some(&old), &new)?;
    am.commit();
    let second = SignedChange::sign(
        doc.clone(),
        &key,
        nonce,
        &am.get_last_local_change().context("committed")?,
    );
    let old = sample_project(c, n / 2 + 1);
    let mut new = old.clone();
    new.committed_cents = Some(old.committed_cents.unwrap_or(0) + 654_321);
    portfolio::save(&mut am, Some(&old), &new)?;
    am.commit();
    let third = SignedChange::sign(
        doc,
        &key,
        nonce,
        &am.get_last_local_change().context("committed")?,
    );
    Ok((first, [second, third]))
}

fn metro_settings(comune: &str, role: Role) -> Result<Settings> {
    let relay_key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    Ok(Settings {
        comune: comune.parse()?,
        role,
        relay: format!("{}@127.0.0.1:1", NodeId::from_signing_key(&relay_key)).parse()?,
        network: "bench".into(),
        anchors: Vec::new(),
    })
}

/// A metro node holding `s.comuni` × `s.projects` projects, the plan's
/// zones, and the relay's allowlist naming every comune's key; returns the
/// later changes of each comune, not yet stored (the incoming changes).
fn seed_metro(dir: &Path, s: &Sizes) -> Result<Vec<[SignedChange; 2]>> {
    let mut metro = Replica::init(dir, metro_settings("001272", Role::Metro)?)?;
    // The plan first: an edit catches the views up before it writes.
    metro.edit(&DocId::Plan, 1_000, |am| {
        for z in 0..ZONES {
            let item = PlanItem {
                code: zone_code(z),
                name: format!("Zona omogenea {}", z + 1),
                comuni: (0..s.comuni)
                    .filter(|c| c % ZONES == z)
                    .map(|c| (istat(c), Membership::default()))
                    .collect(),
                ..PlanItem::default()
            };
            plan::save(am, Kind::Zone, &item).map_err(|e| ReplicaError::Edit(e.to_string()))?;
        }
        Ok(())
    })?;
    let started = Instant::now();
    let (mut change_bytes, mut incoming, mut members) = (0, Vec::new(), Vec::new());
    for c in 0..s.comuni {
        let (first, later) = comune_changes(c, s.projects)?;
        change_bytes += first.change.len();
        let v = first.verify().context("verifies")?;
        metro.store.write(|tx| match admit(&mut tx.log(), &v)? {
            Ok(Admitted::Stored(_)) => Ok(()),
            other => bail!("refused: {other:?}"),
        })?;
        incoming.push(later);
        members.push(ListedMember {
            member: Member {
                node: NodeId::from_signing_key(&comune_key(c)),
                comune: istat(c).parse()?,
                role: Role::Comune,
            },
            removed: false,
        });
    }
    metro.store.write(|tx| tx.set_relay_members(&members))?;
    println!(
        "setup: {} comuni x {} projects stored in {:.1} s ({:.1} MB of changes)",
        s.comuni,
        s.projects,
        started.elapsed().as_secs_f64(),
        change_bytes as f64 / 1e6
    );
    let started = Instant::now();
    let caught = metro.catch_up_views()?;
    println!(
        "setup: query store derived for {} documents ({} in full) in {:.1} s",
        caught.documents,
        caught.full,
        started.elapsed().as_secs_f64()
    );
    Ok(incoming)
}

/// The report as it was built before the query store: every document
/// materialised from its changes, `report::input`, `build`, JSON written.
fn old_report(dir: &Path) -> Result<()> {
    let mut r = Replica::open(dir)?;
    let mut docs = r.store.read(|tx| {
        let log = tx.log();
        log.docs()?
            .into_iter()
            .map(|(doc, _)| {
                let changes = log.doc_changes(&doc)?;
                Ok((doc.clone(), load_doc(&doc, &changes)?))
            })
            .collect::<Result<Vec<_>, ReplicaError>>()
    })?;
    let built = report::build(&report::input(date(AS_OF), None, &mut docs));
    let out = dir.join("old-report.json");
    std::fs::write(&out, serde_json::to_vec(&built)?)?;
    eprintln!("projects {}", built.totals.projects);
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The `q` quantile (nearest rank) of `v`, sorted in place.
fn quantile(v: &mut [Duration], q: f64) -> Duration {
    v.sort();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn bench_report(dir: &Path, s: &Sizes, expected_projects: usize) -> Result<()> {
    let scratch = tempfile::tempdir()?;
    let (mut new_s, mut new_mb, mut old_s, mut old_mb) = (vec![], vec![], vec![], vec![]);
    let out = scratch.path().join("report.json");
    for _ in 0..s.report_runs {
        let mut cmd = Command::new(accordo_bin());
        cmd.args(["--dir", &path(dir), "report", "--as-of", AS_OF])
            .args(["--out", &path(&out)]);
        let m = run_measured(cmd, scratch.path())?;
        new_s.push(m.wall.as_secs_f64());
        new_mb.push(m.peak_rss_kib as f64 / 1024.0);
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.env(OLD_REPORT_CHILD, dir);
        let m = run_measured(cmd, scratch.path())?;
        if !m.stderr.contains(&format!("projects {expected_projects}")) {
            bail!("the old report path counted otherwise: {}", m.stderr);
        }
        old_s.push(m.wall.as_secs_f64());
        old_mb.push(m.peak_rss_kib as f64 / 1024.0);
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&out)?)?;
    if json["totals"]["projects"] != expected_projects {
        bail!("accordo report counted {}", json["totals"]["projects"]);
    }
    println!(
        "report, `accordo report` (query store): {:.2} s, peak RSS {:.0} MiB (median of {} runs)",
        median(&mut new_s),
        median(&mut new_mb),
        s.report_runs
    );
    println!(
        "report, before the query store (materialise every document, report::input, build; a child process): {:.2} s, peak RSS {:.0} MiB (median of {} runs)",
        median(&mut old_s),
        median(&mut old_mb),
        s.report_runs
    );
    report_breakdown(dir)
}

/// Where `accordo report`'s time goes, in process: reading what the report
/// is built from out of the query store, building it (with its digest),
/// printing its JSON — now (the report's facts: sums from the summary
/// tables, states from an index) and before (every project's JSON record
/// decoded into a typed project), on the same node in the same run.
fn report_breakdown(dir: &Path) -> Result<()> {
    let mut r = Replica::open(dir)?;
    let t = Instant::now();
    let input = r.query(|tx| views::report_input(tx, date(AS_OF), None))?;
    let read_before = t.elapsed();
    let t = Instant::now();
    let built_before = report::build(&input);
    let build_before = t.elapsed();
    drop(input);
    let t = Instant::now();
    let json_before = serde_json::to_vec_pretty(&built_before)?;
    let write_before = t.elapsed();
    drop(built_before);
    let t = Instant::now();
    let facts = r.query(|tx| views::report_facts(tx, date(AS_OF), None))?;
    let read = t.elapsed();
    let t = Instant::now();
    let built = report::build_from(facts);
    let build = t.elapsed();
    let t = Instant::now();
    let mut sink = std::io::sink();
    accordo_node::ops::output::write_report(
        &built,
        accordo_node::ops::output::ReportFormat::Json,
        &mut sink,
    )?;
    let write = t.elapsed();
    let json = serde_json::to_vec_pretty(&built)?;
    if json != json_before {
        bail!("the report from the facts differs from the report from the records");
    }
    println!(
        "report, in process, now: read the facts {:.0} ms, build (with the digest) {:.0} ms, JSON {:.0} ms ({} KB)",
        ms(read),
        ms(build),
        ms(write),
        json.len() / 1024
    );
    println!(
        "report, in process, before (same run): read every project's record {:.0} ms, build {:.0} ms, JSON {:.0} ms (the same bytes)",
        ms(read_before),
        ms(build_before),
        ms(write_before),
    );
    Ok(())
}

/// The `k`-th of a varied set of filters.
fn filter_k(k: usize, s: &Sizes) -> AggregateFilter {
    let missions = [
        None,
        Some("M1"),
        Some("M2"),
        Some("M4"),
        Some("M5"),
        Some("M6"),
    ];
    let sources = [None, Some(FundingSource::Pnrr), Some(FundingSource::Fesr)];
    AggregateFilter {
        as_of: date(AS_OF),
        zone: (k % 2 == 1).then(|| zone_code(k / 2 % ZONES)),
        mission: missions[k % missions.len()].map(|m| m.parse().expect("a mission")),
        source: sources[k / 3 % sources.len()],
        comune: (k % 7 == 6).then(|| istat(k % s.comuni).parse().expect("an ISTAT code")),
        include_archived: k.is_multiple_of(5),
    }
}

fn bench_aggregates(dir: &Path, s: &Sizes, expected_projects: usize) -> Result<()> {
    let mut metro = Replica::open(dir)?;
    let all = AggregateFilter {
        include_archived: true,
        ..AggregateFilter::as_of(date(AS_OF))
    };
    let totals = metro.query(|tx| {
        views::totals_by_zone_and_mission(tx, &all).map_err(|e| ReplicaError::Edit(e.to_string()))
    })?;
    let counted: u64 = totals.iter().map(|g| g.projects).sum();
    if counted != expected_projects as u64 {
        bail!("the aggregates counted {counted} projects");
    }
    let (mut zm, mut src) = (Vec::new(), Vec::new());
    let started = Instant::now();
    for k in 0..s.queries {
        if started.elapsed() > LOOP_BUDGET {
            break;
        }
        let f = filter_k(k, s);
        let by_source = k % 4 == 3;
        let t = Instant::now();
        let groups = metro.query(|tx| {
            let n = if by_source {
                views::totals_by_funding_source(tx, &f).map(|g| g.len())
            } else {
                views::totals_by_zone_and_mission(tx, &f).map(|g| g.len())
            };
            n.map_err(|e| ReplicaError::Edit(e.to_string()))
        })?;
        let took = t.elapsed();
        if f == AggregateFilter::as_of(date(AS_OF)) && groups == 0 {
            bail!("no groups for every project");
        }
        if by_source {
            src.push(took);
        } else {
            zm.push(took);
        }
    }
    for (what, v) in [
        ("by zone and mission", &mut zm),
        ("by funding source", &mut src),
    ] {
        let n = v.len();
        println!(
            "aggregate query {what}, varied filters ({n} queries on {expected_projects} projects): p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
            ms(quantile(v, 0.5)),
            ms(quantile(v, 0.95)),
            ms(quantile(v, 1.0))
        );
    }
    Ok(())
}

/// Stores one pulled change as `client::store_response` does, the views
/// updated (with `cache`, as `accordo run` keeps documents) or not.
fn store_one(
    metro: &mut Replica,
    seq: u64,
    change: SignedChange,
    views_too: bool,
    cache: &mut DocCache,
) -> Result<Duration> {
    let anchors = metro.settings.anchors.clone();
    let entries = vec![LogEntry { seq, change }];
    let t = Instant::now();
    let stored = metro.store.write(|tx| {
        let admitted =
            admit_pulled(tx, &anchors, entries).map_err(|e| ReplicaError::Edit(e.to_string()))?;
        if views_too {
            views::after_pull_cached(tx, &anchors, &admitted.docs, cache)?;
        }
        Ok::<_, ReplicaError>(admitted.stored)
    })?;
    let took = t.elapsed();
    if stored != 1 {
        bail!("incoming change at {seq} was not stored ({stored})");
    }
    Ok(took)
}

/// Bytes the allocator has handed out and not got back (glibc).
fn allocated_bytes() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's counters.
    unsafe { libc::mallinfo2() }.uordblks
}

/// Three series measured interleaved in one pass, so that the store's
/// state (WAL size, checkpoints) and the machine's load fall on all alike:
/// a change to a document the process keeps loaded (its comune's first
/// change was pulled earlier, warming the cache), a change whose document
/// is loaded from its snapshot (as before the cache), and a change stored
/// without updating the views (before the query store).
fn bench_incoming(dir: &Path, s: &Sizes, incoming: Vec<[SignedChange; 2]>) -> Result<()> {
    let mut metro = Replica::open(dir)?;
    let mut cache = DocCache::new();
    cache.keep_documents();
    let mut not_kept_cache = DocCache::new();
    let (mut not_kept, mut log_only, mut kept) = (Vec::new(), Vec::new(), Vec::new());
    let heap_before = allocated_bytes();
    // The relay's log positions (only reported in errors here).
    let mut seq = 1_000_000;
    let incoming: Vec<_> = incoming.into_iter().take(s.incoming).collect();
    // Warm: the first incoming change of every other comune, kept.
    for [second, _] in incoming.iter().step_by(2) {
        seq += 1;
        store_one(&mut metro, seq, second.clone(), true, &mut cache)?;
    }
    let (docs, ops, ..) = cache.stats();
    let heap_kept = allocated_bytes().saturating_sub(heap_before);
    let started = Instant::now();
    for (k, [second, third]) in incoming.into_iter().enumerate() {
        if started.elapsed() > LOOP_BUDGET {
            break;
        }
        seq += 1;
        match k % 4 {
            0 | 2 => kept.push(store_one(&mut metro, seq, third, true, &mut cache)?),
            1 => not_kept.push(store_one(
                &mut metro,
                seq,
                second,
                true,
                &mut not_kept_cache,
            )?),
            _ => log_only.push(store_one(
                &mut metro,
                seq,
                second,
                false,
                &mut not_kept_cache,
            )?),
        }
    }
    let (.., hits, _) = cache.stats();
    anyhow::ensure!(
        hits as usize == kept.len(),
        "every kept change used the kept document"
    );
    for (what, v) in [
        ("admit + update the views + commit, document loaded from its snapshot (before)", &mut not_kept),
        ("admit + update the views + commit, document kept loaded by the process (now, `accordo run`)", &mut kept),
        ("admit + commit, no views (before the query store)", &mut log_only),
    ] {
        println!(
            "one incoming change, {what}: p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms ({} changes, each to another comune)",
            ms(quantile(v, 0.5)),
            ms(quantile(v, 0.95)),
            ms(quantile(v, 1.0)),
            v.len()
        );
    }
    println!(
        "documents kept loaded: {docs} holding {ops} automerge operations in {:.1} MiB of heap ({:.0} bytes an operation)",
        heap_kept as f64 / (1024.0 * 1024.0),
        heap_kept as f64 / ops.max(1) as f64
    );
    Ok(())
}

/// A comune node whose own document holds `n` projects, written by the
/// node itself in one transaction of changes under the size limit.
fn seed_comune(dir: &Path, n: usize) -> Result<Vec<String>> {
    let mut r = Replica::init(dir, metro_settings("001272", Role::Comune)?)?;
    let own = r.own_doc();
    let per_change = 400;
    let started = Instant::now();
    let mut chunk = 0;
    r.edit_chunks(
        &own,
        1_000,
        |_| Ok(Some(())),
        |am, _| {
            for i in chunk * per_change..((chunk + 1) * per_change).min(n) {
                portfolio::save(am, None, &sample_project(0, i))?;
            }
            chunk += 1;
            Ok(chunk * per_change < n)
        },
        |_| None,
    )?;
    println!(
        "setup: comune node with {n} projects written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok((0..n)
        .map(|i| {
            sample_project(0, i)
                .cup
                .expect("sample projects have a CUP")
        })
        .collect())
}

fn bench_local_edits(root: &Path, s: &Sizes) -> Result<()> {
    let node = root.join("comune");
    let cups = seed_comune(&node, s.local_projects)?;
    // Before snapshots, every command loaded the document from its changes.
    let own = DocId::Comune("001272".parse()?);
    let t = Instant::now();
    let changes = Replica::open(&node)?
        .store
        .read(|tx| tx.log().doc_changes(&own))?;
    let doc = load_doc(&own, &changes)?;
    let loaded = t.elapsed();
    let held = portfolio::list(&doc).len();
    if held != s.local_projects {
        bail!("the comune's document holds {held} projects");
    }
    println!(
        "local edit, before snapshots every command first loaded the document from its {} changes: {:.0} ms",
        changes.len(),
        ms(loaded)
    );
    let scratch = tempfile::tempdir()?;
    let (mut adds, mut sets, mut rss) = (Vec::new(), Vec::new(), Vec::new());
    let started = Instant::now();
    for k in 0..s.local_runs {
        if started.elapsed() > LOOP_BUDGET {
            break;
        }
        let mut add = Command::new(accordo_bin());
        add.args(["--dir", &path(&node), "project", "add"]).args([
            "--cup",
            &format!("J{:02}B{:011}", 10 + k % 80, k),
            "--title",
            &format!("Nuovo intervento {k}"),
        ]);
        let m = run_measured(add, scratch.path())?;
        adds.push(m.wall);
        rss.push(m.peak_rss_kib as f64 / 1024.0);
        let mut set = Command::new(accordo_bin());
        set.args(["--dir", &path(&node), "project", "set"])
            .arg(&cups[k * 997 % cups.len()])
            .args(["--paid-eur", &format!("{}", 1_000 + k)]);
        let m = run_measured(set, scratch.path())?;
        sets.push(m.wall);
    }
    let (mut served_adds, mut served_sets) = served_edits(&node, &cups, s)?;
    let listed = Command::new(accordo_bin())
        .args(["--dir", &path(&node), "project", "list", "--format", "json"])
        .output()?;
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout)?;
    let n = listed.as_array().map_or(0, Vec::len);
    let archived = (0..s.local_projects)
        .filter(|&i| sample_project(0, i).archived)
        .count();
    let added = adds.len() + served_adds.len();
    if n != s.local_projects - archived + added {
        bail!("the node lists {n} projects after {added} adds");
    }
    for (what, v) in [
        ("`accordo project add`", &mut adds),
        ("`accordo project set CUP --paid-eur`", &mut sets),
        ("`accordo project add`, served by `run`", &mut served_adds),
        (
            "`accordo project set CUP --paid-eur`, served by `run`",
            &mut served_sets,
        ),
    ] {
        println!(
            "local edit on a comune holding {} projects, {what}, whole command: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms ({} runs)",
            s.local_projects,
            ms(quantile(v, 0.5)),
            ms(quantile(v, 0.95)),
            ms(quantile(v, 1.0)),
            v.len()
        );
    }
    println!(
        "local edit, peak RSS of `project add`: {:.0} MiB (median)",
        median(&mut rss)
    );
    Ok(())
}

/// Edits made while `accordo run` keeps the document loaded and serves
/// the command line's edits over its control socket: the whole command
/// (a child process, as above), adds and sets; the first edit after `run`
/// started, which loads the document, is printed apart. Returns the adds'
/// and sets' times.
fn served_edits(node: &Path, cups: &[String], s: &Sizes) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let scratch = tempfile::tempdir()?;
    let log = scratch.path().join("run.log");
    let mut run = Command::new(accordo_bin())
        .args(["--dir", &path(node), "run"])
        .env("ACCORDO_LOG", "warn,accordo_node::control=info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let result = (|| {
        accordo_tests::wait_until(Duration::from_secs(30), || {
            Ok(log_text().contains("serving local edits"))
        })?;
        let set = |k: usize, cup: &str| {
            let mut set = Command::new(accordo_bin());
            set.args(["--dir", &path(node), "project", "set"])
                .arg(cup)
                .args(["--paid-eur", &format!("{}", 5_000 + k)]);
            set
        };
        let first = run_measured(set(0, &cups[1]), scratch.path())?.wall;
        let (mut adds, mut sets) = (Vec::new(), Vec::new());
        let started = Instant::now();
        for k in 0..SERVED_RUNS.max(s.local_runs) {
            if started.elapsed() > LOOP_BUDGET {
                break;
            }
            sets.push(run_measured(set(k + 1, &cups[k * 991 % cups.len()]), scratch.path())?.wall);
            let mut add = Command::new(accordo_bin());
            add.args(["--dir", &path(node), "project", "add"]).args([
                "--cup",
                &format!("K{:02}B{:011}", 10 + k % 80, k),
                "--title",
                &format!("Intervento servito {k}"),
            ]);
            adds.push(run_measured(add, scratch.path())?.wall);
        }
        let served = log_text().matches("served a local edit").count();
        if served != 1 + adds.len() + sets.len() {
            bail!(
                "`run` served {served} of {} edits",
                1 + adds.len() + sets.len()
            );
        }
        let rss = accordo_tests::rss_bytes(run.id()).unwrap_or(0);
        println!(
            "local edit served by `run`: first edit after it started (loads the document) {:.0} ms; `run`'s RSS holding the document {:.0} MiB",
            ms(first),
            rss as f64 / (1024.0 * 1024.0)
        );
        Ok((adds, sets))
    })();
    let _ = run.kill();
    let _ = run.wait();
    result
}

/// Edits of each kind timed while `run` serves them (bounded count; each
/// takes milliseconds).
const SERVED_RUNS: usize = 40;

fn main() -> Result<()> {
    if let Some(dir) = std::env::var_os(OLD_REPORT_CHILD) {
        return old_report(Path::new(&dir));
    }
    let s = sizes();
    let dir = tempfile::tempdir()?;
    // `ACCORDO_BENCH_DIR=PATH` keeps the nodes there, for probing them after.
    let root = std::env::var_os("ACCORDO_BENCH_DIR").map_or(dir.path().to_owned(), Into::into);
    let metro = root.join("metro");
    let expected = s.comuni * s.projects;
    // The report leaves archived projects out.
    let archived = (0..s.projects)
        .filter(|&i| sample_project(0, i).archived)
        .count();
    // `ACCORDO_BENCH_ONLY=report,aggregates,incoming,web,portal,edits` runs a subset.
    let only = std::env::var("ACCORDO_BENCH_ONLY").ok();
    let wanted = |part: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|p| p == part))
    };
    let metro_parts = ["report", "aggregates", "incoming", "web", "portal"];
    let incoming = if metro_parts.iter().any(|p| wanted(p)) {
        seed_metro(&metro, &s)?
    } else {
        Vec::new()
    };
    if wanted("report") {
        bench_report(&metro, &s, expected - s.comuni * archived)?;
    }
    if wanted("aggregates") {
        bench_aggregates(&metro, &s, expected)?;
    }
    if wanted("incoming") {
        bench_incoming(&metro, &s, incoming)?;
    }
    if wanted("web") {
        bench_web(&metro, &s)?;
    }
    if wanted("portal") {
        bench_portal(&metro, &s)?;
    }
    if wanted("edits") {
        bench_local_edits(&root, &s)?;
    }
    Ok(())
}

/// The public portal (issue 17) on the metro node: the first request after
/// the data changed (reads the published data into the snapshot), then
/// pages and open-data files served from the held snapshot, and the home
/// page's weight.
fn bench_portal(metro: &Path, s: &Sizes) -> Result<()> {
    use accordo_tests::browser::WebNode;
    let web = WebNode::start_with(metro, &["--public", "--ipa", "cmca"])?;
    let t = Instant::now();
    let (status, home) = web.get("/pubblico/")?;
    anyhow::ensure!(status == 200, "/pubblico/: status {status}");
    let cold = t.elapsed();
    println!(
        "public portal on the metro node ({} comuni × {} projects, half published), {WEB_REQUESTS} GETs each:",
        s.comuni, s.projects
    );
    println!("  first page (snapshot read)          {:>7.1} ms", ms(cold));
    let pages = [
        ("home /pubblico/", "/pubblico/".to_owned()),
        (
            "one comune's projects",
            format!("/pubblico/comuni/{}", istat(1)),
        ),
        (
            "open data progetti.csv",
            "/opendata/progetti.csv".to_owned(),
        ),
        ("catalog.jsonld", "/opendata/catalog.jsonld".to_owned()),
    ];
    for (what, path) in &pages {
        let mut times = Vec::with_capacity(WEB_REQUESTS);
        let mut bytes = 0;
        for _ in 0..WEB_REQUESTS {
            let t = Instant::now();
            let (status, body) = web.get(path)?;
            times.push(t.elapsed());
            anyhow::ensure!(status == 200, "{path}: status {status}");
            bytes = body.len();
        }
        println!(
            "  {what:<36} p50 {:>7.1} ms  p95 {:>7.1} ms  ({:.1} KB)",
            ms(quantile(&mut times, 0.5)),
            ms(quantile(&mut times, 0.95)),
            bytes as f64 / 1000.0
        );
    }
    let css = web.get("/pubblico/stile.css")?.1.len();
    println!(
        "  home page weight: {:.1} KB (HTML {:.1} KB + CSS {:.1} KB; no script, images or fonts)",
        (home.len() + css) as f64 / 1000.0,
        home.len() as f64 / 1000.0,
        css as f64 / 1000.0
    );
    Ok(())
}

/// Requests of each web page timed (bounded count).
const WEB_REQUESTS: usize = 40;

/// The web application (issue 12) on the metro node: server time of the
/// dashboard and of the project list with filters (a GET on loopback,
/// whole response read), and the dashboard's page weight.
fn bench_web(metro: &Path, s: &Sizes) -> Result<()> {
    use accordo_tests::browser::WebNode;
    let web = WebNode::start_dir(metro)?;
    let pages = [
        ("dashboard /", "/".to_owned()),
        (
            "list, filter by state",
            "/progetti?stato=ESECUZIONE".to_owned(),
        ),
        (
            "list, text search + mission",
            "/progetti?q=scuola&missione=M5".to_owned(),
        ),
        (
            "list, one comune, late milestones",
            format!("/progetti?comune={}&ritardo=1", istat(1)),
        ),
    ];
    println!(
        "web application on the metro node ({} comuni × {} projects), {WEB_REQUESTS} GETs each:",
        s.comuni, s.projects
    );
    let mut dashboard_bytes = 0;
    for (what, path) in &pages {
        let (status, body) = web.get(path)?;
        anyhow::ensure!(status == 200, "{path}: status {status}");
        if path == "/" {
            dashboard_bytes = body.len();
        }
        let mut times = Vec::with_capacity(WEB_REQUESTS);
        for _ in 0..WEB_REQUESTS {
            let t = Instant::now();
            let (status, _) = web.get(path)?;
            times.push(t.elapsed());
            anyhow::ensure!(status == 200, "{path}: status {status}");
        }
        println!(
            "  {what:<36} p50 {:>7.1} ms  p95 {:>7.1} ms  max {:>7.1} ms",
            ms(quantile(&mut times, 0.5)),
            ms(quantile(&mut times, 0.95)),
            ms(quantile(&mut times, 1.0))
        );
    }
    let css = web.get("/static/app.css")?.1.len();
    let js = web.get("/static/app.js")?.1.len();
    println!(
        "  dashboard page weight: {:.1} KB (HTML {:.1} KB + CSS {:.1} KB + JS {:.1} KB; no images or fonts)",
        (dashboard_bytes + css + js) as f64 / 1000.0,
        dashboard_bytes as f64 / 1000.0,
        css as f64 / 1000.0,
        js as f64 / 1000.0
    );
    Ok(())
}
