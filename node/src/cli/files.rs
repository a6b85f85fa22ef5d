//! `accordo import` and `accordo export`: project files in and out.
//!
//! An import is parsed and checked whole before anything is written; the
//! projects then go in as one signed change (one invalid row: nothing is
//! imported). Re-importing updates projects found by their import key.

use super::now_ms;
use crate::domain::export;
use crate::domain::import::{self, Format, ImportErrors, Outcome};
use crate::portfolio;
use crate::replica::{Replica, ReplicaError};
use accordo_protocol::doc::DocId;
use anyhow::{bail, Context, Result};
use clap::ValueEnum;
use std::path::{Path, PathBuf};

/// Rows above which `import` shows a progress bar.
const PROGRESS_ROWS: usize = 5_000;
/// Errors printed in full before the rest are counted.
const PRINTED_ERRORS: usize = 50;

#[derive(Clone, Copy, ValueEnum, PartialEq)]
pub enum ExportFormat {
    Csv,
    Xlsx,
    Json,
}

fn is_xlsx(path: &Path, bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
        || path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("xlsx"))
}

fn print_errors(e: &ImportErrors) {
    for err in e.0.iter().take(PRINTED_ERRORS) {
        eprintln!("  {err}");
    }
    if e.0.len() > PRINTED_ERRORS {
        eprintln!("  ... and {} more", e.0.len() - PRINTED_ERRORS);
    }
}

/// Counts of what an import did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
}

/// Projects per signed change: keeps each change well under the envelope
/// size limit (`MAX_CHANGE_BYTES`, 1 MiB) while an import stays one
/// transaction.
const PROJECTS_PER_CHANGE: usize = 400;

/// Writes the parsed projects into this comune's document: one signed change
/// per [`PROJECTS_PER_CHANGE`] projects, all in one store transaction.
pub fn apply(replica: &mut Replica, outcome: &Outcome) -> Result<Applied> {
    let own = replica.own_doc();
    let now = now_ms();
    let bar = (outcome.projects.len() > PROGRESS_ROWS).then(|| {
        let bar = indicatif::ProgressBar::new(outcome.projects.len() as u64);
        bar.set_message("importing");
        bar
    });
    let mut applied = Applied::default();
    let chunks: Vec<&[crate::domain::import::Imported]> =
        outcome.projects.chunks(PROJECTS_PER_CHANGE).collect();
    // Ids of projects added by earlier chunks, found again by import key.
    let mut by_key: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    replica.edit_chunks(&own, now, chunks.len(), |doc, i| {
        if i == 0 {
            by_key = portfolio::import_keys(doc);
        }
        for item in chunks[i] {
            let existing = match &item.id {
                Some(id) if portfolio::get(doc, id).is_ok() => Some(id.clone()),
                _ => by_key.get(&item.key).cloned(),
            };
            let mut new = item.project.clone();
            match existing {
                Some(id) => {
                    let old = portfolio::get(doc, &id)?;
                    new.id = id;
                    new.created_ms = old.created_ms;
                    if new.import_key.is_none() {
                        new.import_key = old.import_key.clone();
                    }
                    if new == old {
                        applied.unchanged += 1;
                    } else {
                        portfolio::save(doc, Some(&old), &new)?;
                        applied.updated += 1;
                    }
                }
                None => {
                    new.id = match &item.id {
                        Some(id) => id.clone(),
                        None => portfolio::new_project_id()?,
                    };
                    if new.created_ms == 0 {
                        new.created_ms = now;
                    }
                    portfolio::save(doc, None, &new)?;
                    by_key.insert(item.key.clone(), new.id.clone());
                    applied.added += 1;
                }
            }
            if let Some(b) = &bar {
                b.inc(1);
            }
        }
        Ok::<(), ReplicaError>(())
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(applied)
}

pub fn run_import(
    dir: &Path,
    file: &Path,
    format: Format,
    localizzazione: Option<PathBuf>,
    dry_run: bool,
) -> Result<std::process::ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let loc = localizzazione
        .as_ref()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .transpose()?;
    let mut replica = Replica::open(dir)?;
    let own = replica.settings.comune.clone();
    let outcome = match import::import(&bytes, is_xlsx(file, &bytes), format, loc.as_deref(), &own)
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "error: {} in {}: {} error(s), nothing imported",
                file.display(),
                e.0.len(),
                e.0.len()
            );
            print_errors(&e);
            return Ok(std::process::ExitCode::FAILURE);
        }
    };
    for w in &outcome.warnings {
        eprintln!("warning: {w}");
    }
    let skipped = outcome.skipped.len();
    let first_skip = outcome
        .skipped
        .first()
        .map(|(l, why)| format!(" (first: line {l}, {why})"))
        .unwrap_or_default();
    if dry_run {
        println!(
            "dry run: {} rows read ({:?}, {}), {} project(s) of comune {own} would be imported, {skipped} row(s) of other comuni skipped{first_skip}; nothing written",
            outcome.rows, outcome.format, outcome.encoding, outcome.projects.len()
        );
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let applied = apply(&mut replica, &outcome)?;
    println!(
        "imported {} project(s) of comune {own} from {} rows ({:?}, {}): {} added, {} updated, {} unchanged; {skipped} row(s) of other comuni skipped{first_skip}",
        outcome.projects.len(),
        outcome.rows,
        outcome.format,
        outcome.encoding,
        applied.added,
        applied.updated,
        applied.unchanged
    );
    Ok(std::process::ExitCode::SUCCESS)
}

pub fn run_export(dir: &Path, format: ExportFormat, all: bool, out: &Path) -> Result<()> {
    let mut replica = Replica::open(dir)?;
    let docs = if all {
        replica.materialise_all()?
    } else {
        let own = replica.own_doc();
        vec![(own.clone(), replica.materialise(&own)?)]
    };
    let mut rows = Vec::new();
    for (doc_id, doc) in &docs {
        if let DocId::Comune(c) = doc_id {
            rows.extend(portfolio::list(doc).into_iter().map(|p| (c.to_string(), p)));
        }
    }
    let bytes = match format {
        ExportFormat::Csv => export::csv_bytes(&rows)?,
        ExportFormat::Xlsx => export::xlsx_bytes(&rows)?,
        ExportFormat::Json => export::json_bytes(&rows)?,
    };
    if out.as_os_str().is_empty() {
        bail!("--out: a file path is required");
    }
    export::write_atomically(out, &bytes)?;
    println!("exported {} project(s) to {}", rows.len(), out.display());
    Ok(())
}
