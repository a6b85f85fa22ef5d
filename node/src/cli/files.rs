//! `accordo import` and `accordo export`: project files in and out, as the
//! command line reports them; the import itself is [`crate::ops::import`]
//! and the export's bytes [`crate::ops::output`].

use crate::ops::import::{apply, parse_file};
use crate::replica::Replica;
use accordo_domain::import::{Format, ImportErrors, Outcome};
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Errors printed in full before the rest are counted.
const PRINTED_ERRORS: usize = 50;

pub use crate::ops::output::ExportFormat;

fn print_errors(e: &ImportErrors) {
    for err in e.0.iter().take(PRINTED_ERRORS) {
        eprintln!("  {err}");
    }
    if e.total() > PRINTED_ERRORS {
        eprintln!("  ... and {} more", e.total() - PRINTED_ERRORS);
    }
}

pub fn run_import(
    dir: &Path,
    file: &Path,
    format: Format,
    localizzazione: Option<PathBuf>,
    dry_run: bool,
) -> Result<std::process::ExitCode> {
    let opened = File::open(file).with_context(|| format!("reading {}", file.display()))?;
    let loc = localizzazione
        .as_ref()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .transpose()?;
    let mut replica = Replica::open(dir)?;
    let own = replica.settings.comune.clone();
    let parsed = parse_file(file, opened, format, loc.as_deref(), &own)
        .with_context(|| format!("reading {}", file.display()))?;
    let mut outcome = match parsed {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "error: {} in {}: {} error(s), nothing imported",
                file.display(),
                e.total(),
                e.total()
            );
            print_errors(&e);
            return Ok(std::process::ExitCode::FAILURE);
        }
    };
    for w in &outcome.warnings {
        eprintln!("warning: {w}");
    }
    let skipped = outcome.skipped_rows;
    let first_skip = outcome
        .skipped
        .first()
        .map(|(l, why)| format!(" (first: line {l}, {why})"))
        .unwrap_or_default();
    let not_kept = not_kept_note(&outcome);
    if dry_run {
        println!(
            "dry run: {} rows read ({}), {} project(s) of comune {own} would be imported, {skipped} row(s) of other comuni skipped{first_skip}; nothing written{not_kept}",
            outcome.rows,
            outcome.describe(),
            outcome.projects.len()
        );
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let projects = std::mem::take(&mut outcome.projects);
    let imported = projects.len();
    let applied = apply(&mut replica, projects, outcome.format, true)?;
    println!(
        "imported {imported} project(s) of comune {own} from {} rows ({}): {} added, {} updated, {} unchanged; {skipped} row(s) of other comuni skipped{first_skip}{not_kept}",
        outcome.rows,
        outcome.describe(),
        applied.added,
        applied.updated,
        applied.unchanged
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// Columns shown by name before the rest are counted.
const NAMED_COLUMNS: usize = 20;

/// `; N column(s) not kept: a, b, …` when the file had columns that were
/// neither mapped nor kept, so that no value is dropped silently.
fn not_kept_note(outcome: &Outcome) -> String {
    let cols = &outcome.not_kept;
    if cols.is_empty() {
        return String::new();
    }
    let named = cols
        .iter()
        .take(NAMED_COLUMNS)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    let more = cols.len().saturating_sub(NAMED_COLUMNS);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!("; {} column(s) not kept: {named}{more}", cols.len())
}

pub fn run_export(dir: &Path, format: ExportFormat, all: bool, out: &Path) -> Result<()> {
    let mut replica = Replica::open(dir)?;
    let rows = crate::ops::output::export_rows(&mut replica, all)?;
    let bytes = crate::ops::output::export_bytes(&rows, format)?;
    if out.as_os_str().is_empty() {
        bail!("--out: a file path is required");
    }
    crate::output_file::write_atomically(out, &bytes)?;
    println!("exported {} project(s) to {}", rows.len(), out.display());
    Ok(())
}
