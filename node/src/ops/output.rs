//! The files a node hands out: the monitoring report in each format (with
//! its verification stamp) and the open-data export of projects — bytes
//! for `accordo report`/`accordo export` to write and for the web
//! application to download.

use crate::replica::{Replica, ReplicaError};
use accordo_domain::export;
use accordo_domain::model::{Date, Project};
use accordo_domain::report::{self, Report};
use accordo_protocol::doc::DocId;
use clap::ValueEnum;
use std::io::Write;

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ReportFormat {
    Json,
    Md,
    Html,
    Xlsx,
}

impl ReportFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ReportFormat::Json => "json",
            ReportFormat::Md => "md",
            ReportFormat::Html => "html",
            ReportFormat::Xlsx => "xlsx",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ReportFormat::Json => "application/json",
            ReportFormat::Md => "text/markdown; charset=utf-8",
            ReportFormat::Html => "text/html; charset=utf-8",
            ReportFormat::Xlsx => {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
        }
    }

    pub fn parse(ext: &str) -> Option<ReportFormat> {
        ReportFormat::value_variants()
            .iter()
            .copied()
            .find(|f| f.extension() == ext)
    }
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Xlsx,
    Json,
}

impl ExportFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Xlsx => "xlsx",
            ExportFormat::Json => "json",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Xlsx => {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
            ExportFormat::Json => "application/json",
        }
    }

    pub fn parse(ext: &str) -> Option<ExportFormat> {
        ExportFormat::value_variants()
            .iter()
            .copied()
            .find(|f| f.extension() == ext)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    #[error("{0}")]
    Render(String),
}

/// The monitoring report over every document held, from the query store
/// (its facts: sums from the summary tables, each project's state from an
/// index, no project record decoded), stamped with the heads it was
/// computed from.
pub fn report(
    replica: &mut Replica,
    as_of: Date,
    period: Option<String>,
) -> Result<Report, OutputError> {
    let facts = replica.query(|tx| crate::views::report_facts(tx, as_of, period))?;
    Ok(report::build_from(facts))
}

/// A report's bytes in `format`.
pub fn report_bytes(r: &Report, format: ReportFormat) -> Result<Vec<u8>, OutputError> {
    let mut out = Vec::new();
    write_report(r, format, &mut out)?;
    Ok(out)
}

/// Writes a report in `format` to `out` as it is rendered (the JSON of a
/// metro node's report is ~20 MB, never held whole).
pub fn write_report(
    r: &Report,
    format: ReportFormat,
    out: &mut dyn std::io::Write,
) -> Result<(), OutputError> {
    let render = |e: &dyn std::fmt::Display| OutputError::Render(e.to_string());
    match format {
        ReportFormat::Json => {
            let mut w = std::io::BufWriter::new(out);
            serde_json::to_writer_pretty(&mut w, r).map_err(|e| render(&e))?;
            w.write_all(b"\n").map_err(|e| render(&e))?;
            w.flush().map_err(|e| render(&e))?;
        }
        ReportFormat::Md => out
            .write_all(report::markdown(r).as_bytes())
            .map_err(|e| render(&e))?,
        ReportFormat::Html => out
            .write_all(report::html(r).as_bytes())
            .map_err(|e| render(&e))?,
        ReportFormat::Xlsx => out
            .write_all(&export::report_xlsx(r).map_err(|e| render(&e))?)
            .map_err(|e| render(&e))?,
    }
    Ok(())
}

/// Projects for the open-data export: this comune's, or every comune's
/// held with `all` (archived ones included, flagged), as (ISTAT, project).
pub fn export_rows(
    replica: &mut Replica,
    all: bool,
) -> Result<Vec<(String, Project)>, OutputError> {
    let own = replica.own_doc();
    let only = (!all).then_some(&own);
    Ok(replica
        .query(|tx| crate::views::projects(tx, only, true))?
        .into_iter()
        .filter_map(|(doc, p)| match doc {
            DocId::Comune(c) => Some((c.to_string(), p)),
            _ => None,
        })
        .collect())
}

/// The export's bytes in `format`.
pub fn export_bytes(
    rows: &[(String, Project)],
    format: ExportFormat,
) -> Result<Vec<u8>, OutputError> {
    match format {
        ExportFormat::Csv => export::csv_bytes(rows),
        ExportFormat::Xlsx => export::xlsx_bytes(rows),
        ExportFormat::Json => export::json_bytes(rows),
    }
    .map_err(|e| OutputError::Render(e.to_string()))
}
