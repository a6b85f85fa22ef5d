//! XLSX workbooks, read whole (calamine needs the whole zip; office
//! workbooks are small): the first sheet as a table, rows numbered as the
//! spreadsheet shows them.

use super::{file_error, ImportErrors};
use crate::table::{normalise_header, Table};

/// Reads the first sheet of an XLSX workbook as a table.
pub fn parse_xlsx(bytes: &[u8]) -> Result<Table, ImportErrors> {
    use calamine::{Reader, Xlsx};
    let mut book: Xlsx<_> = Xlsx::new(std::io::Cursor::new(bytes))
        .map_err(|e| file_error(format!("not a readable XLSX workbook: {e}")))?;
    let range = book
        .worksheet_range_at(0)
        .ok_or_else(|| file_error("the workbook has no sheet"))?
        .map_err(|e| file_error(format!("the first sheet does not read: {e}")))?;
    // The range starts at the first used cell, not at A1: rows are
    // numbered from its start so errors name the row the spreadsheet shows.
    let first_row = range.start().map_or(0, |(row, _)| row as usize);
    let mut rows = range.rows();
    let headers = rows
        .next()
        .ok_or_else(|| file_error("the first sheet is empty"))?
        .iter()
        .map(|c| normalise_header(&c.to_string()))
        .collect();
    let rows = rows
        .enumerate()
        .map(|(i, r)| {
            let sheet_row = first_row + i + 2;
            (sheet_row, r.iter().map(cell_text).collect::<Vec<_>>())
        })
        .filter(|(_, r)| r.iter().any(|c| !c.trim().is_empty()))
        .collect();
    Ok(Table::new(headers, rows))
}

fn cell_text(c: &calamine::Data) -> String {
    match c {
        calamine::Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        other => other.to_string(),
    }
}
