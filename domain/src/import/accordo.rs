//! Accordo's own CSV/XLSX (the open-data export read back): the cheap test
//! of a row's `comune` cell, and one row read into a project through
//! [`crate::open_data`].

use super::{require_columns, ImportErrors, Imported, Row};
use crate::open_data::{project_from_row, ACCORDO_COLUMNS};
use crate::table::{missing, RowReader, Table};
use accordo_protocol::codes::Istat;

/// Checks the columns an Accordo file needs.
pub(super) fn require(header: &Table) -> Result<(), ImportErrors> {
    let needed: Vec<&str> = ACCORDO_COLUMNS
        .iter()
        .filter(|c| matches!(**c, "id_progetto" | "comune" | "titolo"))
        .copied()
        .collect();
    require_columns(header, "Accordo", &needed)
}

/// Why a row is not of comune `own`, from its `comune` cell alone, when it
/// names another comune; an empty cell goes to [`row`], which names it.
pub(super) fn other_comune(comune: Option<&str>, own: &Istat) -> Option<String> {
    let comune = comune?.trim();
    (!missing(comune) && comune != own.as_str()).then(|| format!("comune {comune} is not {own}"))
}

/// One row: a project of `own`, a row of another comune, or errors only.
pub(super) fn row(r: &mut RowReader<'_>, own: &Istat) -> Row {
    let comune = r.require(&["comune"]).unwrap_or_default();
    if comune != own.as_str() {
        return Row::Skipped(format!("comune {comune} is not {own}"));
    }
    let Some(id) = r.require(&["id_progetto"]) else {
        return Row::Failed;
    };
    match project_from_row(r) {
        Some(p) => Row::Kept(Box::new(Imported {
            line: r.line,
            key: p.import_key.clone().unwrap_or_else(|| format!("id:{id}")),
            id: Some(id),
            project: p,
        })),
        None => Row::Failed,
    }
}
