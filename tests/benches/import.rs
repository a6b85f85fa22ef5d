//! Import benchmarks (issue 14); print figures, no thresholds.
//! `ACCORDO_BENCH_QUICK=1` runs a small version for CI.
//!
//! Each case runs the real `accordo import` as a child process and reports
//! its wall time, rows per second and the child's peak RSS (`wait4`'s
//! rusage, so the figure is the child's own, not this process's):
//!
//! 1. 20,000 OpenCoesione `progetti_esteso` rows into an empty comune;
//! 2. the same file again (every row unchanged: nothing may be written);
//! 3. the file with 1% of the rows changed (a monthly extract that barely
//!    changed);
//! 4. a 1 GB synthetic national extract (rows of many comuni, ~1% of the
//!    importing comune's), streamed from a temporary file: rows scanned per
//!    second and peak RSS.
//!
//! After the imports, `accordo rebuild-views` must find 0 differing rows,
//! so the figures are of imports that kept the query store right.
//!
//! With `ACCORDO_BENCH_BEFORE=/path/to/accordo` (a binary built from the
//! code before a change), every case runs with that binary too and each
//! figure is printed beside the current one, in the same run.

use accordo_domain::import::{self, Format};
use accordo_tests::{accordo_bin, path, Node, Relay};
use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::io::{BufWriter, Write as _};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

struct Sizes {
    rows: usize,
    national_bytes: u64,
}

fn sizes() -> Sizes {
    if std::env::var_os("ACCORDO_BENCH_QUICK").is_some() {
        Sizes {
            rows: 2_000,
            national_bytes: 4 << 20,
        }
    } else {
        Sizes {
            rows: 20_000,
            national_bytes: 1 << 30,
        }
    }
}

/// The importing comune (Torino) as ISTAT code and as OpenCoesione's
/// 9-digit `COD_COMUNE` (region + ISTAT).
const OWN_ISTAT: &str = "001272";
const OWN_OC: &str = "001001272";
/// Other comuni of the national extract (`COD_COMUNE`, `DEN_COMUNE`).
const OTHERS: [(&str, &str); 9] = [
    ("003015146", "MILANO"),
    ("012058091", "ROMA"),
    ("015063049", "NAPOLI"),
    ("019082053", "PALERMO"),
    ("008037006", "BOLOGNA"),
    ("009048017", "FIRENZE"),
    ("007010025", "GENOVA"),
    ("020092009", "CAGLIARI"),
    ("005027042", "VENEZIA"),
];
/// One row in this many of the national extract is the importing comune's.
const OWN_EVERY: usize = 100;

const OC_HEADER: &str = "COD_LOCALE_PROGETTO;CUP;OC_TITOLO_PROGETTO;OC_SINTESI_PROGETTO;OC_CODICE_PROGRAMMA;COD_COMUNE;DEN_COMUNE;FINANZ_UE_FESR;FINANZ_STATO_FSC;FINANZ_COMUNE;FINANZ_TOTALE_PUBBLICO;IMPEGNI;TOT_PAGAMENTI;DATA_INIZIO_EFF_PROG_ESEC;DATA_FINE_EFF_PROG_ESEC;DATA_INIZIO_EFF_ESECUZIONE;DATA_FINE_EFF_ESECUZIONE;OC_STATO_PROCEDURALE;OC_DENOM_ATTUATORE";

/// One OpenCoesione row numbered `i` of comune `cod`/`name`; `revision`
/// changes its title (0: as first published).
fn oc_row(out: &mut String, i: usize, cod: &str, name: &str, revision: usize) {
    let fesr = 100_000 + (i * 7919) % 900_000;
    let fsc = (i * 104_729) % 500_000;
    let total = fesr + fsc + 25_000;
    let exec_end = if i.is_multiple_of(3) { "20231130" } else { "" };
    let rev = if revision == 0 {
        String::new()
    } else {
        format!(" (rev. {revision})")
    };
    let _ = writeln!(
        out,
        "{i:07}{};F{:02}B{:011};INTERVENTO DI RIQUALIFICAZIONE N. {i} - LOTTO {}{rev};\"Lavori di manutenzione straordinaria; impianti\";2014IT16RFOP014;{cod};{name};{fesr},50;{fsc},00;25000,00;{total},50;{},00;{},25;20210315;20211130;20220110;{exec_end};In esecuzione;COMUNE DI {name}",
        &cod[3..],
        i % 90 + 10,
        i,
        i % 7,
        total / 2,
        total / 4
    );
}

/// A realistic OpenCoesione file of `rows` rows for Torino; every
/// `changed_every`-th row (none if 0) has a revised title.
fn opencoesione_file(rows: usize, changed_every: usize) -> String {
    let mut s = String::with_capacity(rows * 300);
    s.push_str(OC_HEADER);
    s.push('\n');
    for i in 0..rows {
        let revised = changed_every > 0 && i.is_multiple_of(changed_every);
        oc_row(&mut s, i, OWN_OC, "TORINO", usize::from(revised));
    }
    s
}

/// Writes a national extract of at least `bytes` bytes to `file`, one row
/// in [`OWN_EVERY`] of Torino; returns (rows, Torino's rows, bytes).
fn national_extract(file: &Path, bytes: u64) -> Result<(usize, usize, u64)> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(file)?);
    writeln!(out, "{OC_HEADER}")?;
    let mut written = OC_HEADER.len() as u64 + 1;
    let (mut rows, mut own) = (0, 0);
    let mut line = String::with_capacity(512);
    while written < bytes {
        line.clear();
        let (cod, name) = if rows % OWN_EVERY == 0 {
            own += 1;
            (OWN_OC, "TORINO")
        } else {
            OTHERS[rows % OTHERS.len()]
        };
        oc_row(&mut line, rows, cod, name, 0);
        out.write_all(line.as_bytes())?;
        written += line.len() as u64;
        rows += 1;
    }
    out.flush()?;
    Ok((rows, own, written))
}

/// A finished child: wall time, its own peak RSS, its output.
struct Measured {
    took: Duration,
    peak_rss_kib: u64,
    stdout: String,
}

/// Runs `bin args` to completion and reaps it with `wait4`, which returns
/// the child's resource usage (`ru_maxrss`: peak RSS in KiB on Linux).
fn run_measured(bin: &Path, args: &[&str], out_dir: &Path) -> Result<Measured> {
    let stdout_path = out_dir.join("bench.stdout");
    let stderr_path = out_dir.join("bench.stderr");
    let started = Instant::now();
    let child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path)?)
        .stderr(std::fs::File::create(&stderr_path)?)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let pid = libc::pid_t::try_from(child.id()).context("child pid")?;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; zeroed is a valid value for it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child, not yet reaped (the `Child` handle is
    // dropped without `wait`, which would otherwise reap it); both
    // pointers are to live locals.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let took = started.elapsed();
    if reaped != pid {
        bail!("wait4 on {pid}: {}", std::io::Error::last_os_error());
    }
    drop(child);
    let stdout = std::fs::read_to_string(&stdout_path)?;
    if !ExitStatus::from_raw(status).success() {
        bail!(
            "{} {args:?} failed: {stdout}{}",
            bin.display(),
            std::fs::read_to_string(&stderr_path)?
        );
    }
    Ok(Measured {
        took,
        peak_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        stdout,
    })
}

/// The number before `word` in an import report ("... 3 unchanged ...").
fn count_before(report: &str, word: &str) -> Result<usize> {
    let words: Vec<&str> = report.split_whitespace().collect();
    words
        .iter()
        .position(|w| w.starts_with(word))
        .filter(|i| *i > 0)
        .and_then(|i| words[i - 1].parse().ok())
        .with_context(|| format!("no {word} count in {report:?}"))
}

/// Figures of one binary over every case.
#[derive(Default)]
struct Figures {
    /// (case, rows, seconds, peak RSS KiB), in case order.
    cases: Vec<(String, usize, f64, u64)>,
}

impl Figures {
    fn add(&mut self, case: &str, rows: usize, m: &Measured) {
        self.cases
            .push((case.to_owned(), rows, m.took.as_secs_f64(), m.peak_rss_kib));
    }
}

/// The files every binary imports.
struct Inputs {
    dir: tempfile::TempDir,
    rows: usize,
    first: PathBuf,
    changed: PathBuf,
    national: PathBuf,
    national_rows: usize,
    national_own: usize,
}

fn inputs(s: &Sizes) -> Result<Inputs> {
    let dir = tempfile::tempdir()?;
    let first = dir.path().join("progetti_esteso.csv");
    let text = opencoesione_file(s.rows, 0);
    std::fs::write(&first, &text)?;
    let changed = dir.path().join("progetti_esteso_next_month.csv");
    std::fs::write(&changed, opencoesione_file(s.rows, 100))?;
    let own = OWN_ISTAT.parse()?;
    let started = Instant::now();
    let outcome = import::import(text.as_bytes(), false, Format::Auto, None, &own)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let parse = started.elapsed();
    if outcome.projects.len() != s.rows {
        bail!("parsed {} of {} rows", outcome.projects.len(), s.rows);
    }
    println!(
        "import, parse and check only (in process): {} OpenCoesione rows in {:.2} s = {:.0} rows/s ({} bytes)",
        s.rows,
        parse.as_secs_f64(),
        s.rows as f64 / parse.as_secs_f64(),
        text.len()
    );
    let national = dir.path().join("progetti_esteso_nazionale.csv");
    let started = Instant::now();
    let (national_rows, national_own, bytes) = national_extract(&national, s.national_bytes)?;
    println!(
        "national extract: {national_rows} rows ({national_own} of comune {OWN_ISTAT}), {:.1} MiB, written in {:.1} s",
        bytes as f64 / (1 << 20) as f64,
        started.elapsed().as_secs_f64()
    );
    Ok(Inputs {
        dir,
        rows: s.rows,
        first,
        changed,
        national,
        national_rows,
        national_own,
    })
}

/// `accordo import FILE` into node `dir` with `bin`.
fn import_with(bin: &Path, dir: &Path, file: &Path, out: &Path) -> Result<Measured> {
    run_measured(bin, &["--dir", &path(dir), "import", &path(file)], out)
}

/// `rebuild-views` must find the incremental views equal to a rebuild.
fn check_views(bin: &Path, dir: &Path, out: &Path) -> Result<()> {
    let m = run_measured(bin, &["--dir", &path(dir), "rebuild-views"], out)?;
    if count_before(&m.stdout, "differed")? != 0 {
        bail!("views differ from a rebuild: {}", m.stdout);
    }
    Ok(())
}

fn bench_binary(bin: &Path, relay: &Relay, i: &Inputs) -> Result<Figures> {
    let mut f = Figures::default();
    let node = Node::init(relay, OWN_ISTAT, "comune")?;
    let (dir, out) = (node.dir.path(), i.dir.path());
    let m = import_with(bin, dir, &i.first, out)?;
    if count_before(&m.stdout, "added")? != i.rows {
        bail!("first import did not add every row: {}", m.stdout);
    }
    f.add("OpenCoesione rows into an empty comune", i.rows, &m);
    let m = import_with(bin, dir, &i.first, out)?;
    if count_before(&m.stdout, "unchanged")? != i.rows {
        bail!("the same file again changed something: {}", m.stdout);
    }
    f.add("the same file again (unchanged)", i.rows, &m);
    let m = import_with(bin, dir, &i.changed, out)?;
    let updated = count_before(&m.stdout, "updated")?;
    if updated != i.rows.div_ceil(100) {
        bail!("1% changed: {updated} updated: {}", m.stdout);
    }
    f.add("the file with 1% of rows changed", i.rows, &m);
    check_views(bin, dir, out)?;
    let national_node = Node::init(relay, OWN_ISTAT, "comune")?;
    let m = import_with(bin, national_node.dir.path(), &i.national, out)?;
    if count_before(&m.stdout, "added")? != i.national_own {
        bail!("national extract: {}", m.stdout);
    }
    f.add(
        "national extract, rows scanned",
        i.national_rows,
        &Measured {
            stdout: String::new(),
            ..m
        },
    );
    check_views(bin, national_node.dir.path(), out)?;
    Ok(f)
}

fn print(now: &Figures, before: Option<&Figures>) {
    for (n, (case, rows, secs, rss)) in now.cases.iter().enumerate() {
        let mut line = format!(
            "import, {case}: {rows} rows in {secs:.2} s = {:.0} rows/s, peak RSS {} MiB",
            *rows as f64 / secs,
            rss / 1024
        );
        if let Some((_, b_rows, b_secs, b_rss)) = before.and_then(|b| b.cases.get(n)) {
            let _ = write!(
                line,
                " (before: {b_secs:.2} s = {:.0} rows/s, {} MiB)",
                *b_rows as f64 / b_secs,
                b_rss / 1024
            );
        }
        println!("{line}");
    }
}

fn main() -> Result<()> {
    let s = sizes();
    let inputs = inputs(&s)?;
    let mut relay = Relay::init()?;
    relay.start()?;
    let before = match std::env::var_os("ACCORDO_BENCH_BEFORE") {
        Some(bin) => Some(bench_binary(Path::new(&bin), &relay, &inputs)?),
        None => None,
    };
    let now = bench_binary(&accordo_bin(), &relay, &inputs)?;
    print(&now, before.as_ref());
    Ok(())
}
