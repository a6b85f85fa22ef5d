//! Open-data export of the portfolio (CSV, XLSX, JSON) in Accordo's own
//! format ([`crate::open_data`], where the columns are documented), which
//! `import` reads back to the same projects, and the XLSX form of the
//! monitoring report. Bytes out; writing them to a file is the caller's.

use crate::model::Project;
use crate::open_data::{project_row, ACCORDO_COLUMNS};
use crate::report::{Report, Stamp};

/// Why a file could not be built in memory (none of these is expected with
/// valid projects: they are the writers' own errors, passed on).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("writing the CSV")]
    Csv(#[from] csv::Error),
    #[error("finishing the CSV")]
    CsvFinish(#[source] std::io::Error),
    #[error("writing the workbook")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    #[error("writing the JSON")]
    Json(#[from] serde_json::Error),
}

type Result<T> = std::result::Result<T, ExportError>;

pub fn csv_bytes(rows: &[(String, Project)]) -> Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .delimiter(b';')
        .from_writer(Vec::new());
    w.write_record(ACCORDO_COLUMNS)?;
    for (comune, p) in rows {
        w.write_record(project_row(comune, p))?;
    }
    w.into_inner()
        .map_err(|e| ExportError::CsvFinish(e.into_error()))
}

pub fn xlsx_bytes(rows: &[(String, Project)]) -> Result<Vec<u8>> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("progetti")?;
    for (c, name) in ACCORDO_COLUMNS.iter().enumerate() {
        sheet.write_string(0, c as u16, *name)?;
    }
    for (r, (comune, p)) in rows.iter().enumerate() {
        for (c, cell) in project_row(comune, p).iter().enumerate() {
            if !cell.is_empty() {
                sheet.write_string(r as u32 + 1, c as u16, cell)?;
            }
        }
    }
    Ok(book.save_to_buffer()?)
}

pub fn json_bytes(rows: &[(String, Project)]) -> Result<Vec<u8>> {
    let items: Vec<serde_json::Value> = rows
        .iter()
        .map(|(comune, p)| {
            let mut v = serde_json::to_value(p).unwrap_or_default();
            v["id"] = serde_json::json!(p.id);
            v["comune"] = serde_json::json!(comune);
            v["comune_name"] = serde_json::json!(crate::comuni::name(comune));
            let (state, basis) = p.state_and_basis();
            v["procedural_state"] = serde_json::json!(state.code());
            v["procedural_state_basis"] = serde_json::json!(basis.code());
            v
        })
        .collect();
    Ok(serde_json::to_vec_pretty(&items)?)
}

/// The monitoring report as a workbook: one sheet per table.
pub fn report_xlsx(r: &Report) -> Result<Vec<u8>> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("per comune")?;
    for (c, h) in [
        "comune",
        "progetti",
        "finanziato_eur",
        "impegnato_eur",
        "pagato_eur",
        "comune_name",
    ]
    .iter()
    .enumerate()
    {
        sheet.write_string(0, c as u16, *h)?;
    }
    for (i, row) in r.by_comune.iter().enumerate() {
        let y = i as u32 + 1;
        sheet.write_string(y, 0, &row.comune)?;
        sheet.write_number(y, 1, row.money.projects as f64)?;
        sheet.write_number(y, 2, row.money.financed_cents as f64 / 100.0)?;
        sheet.write_number(y, 3, row.money.committed_cents as f64 / 100.0)?;
        sheet.write_number(y, 4, row.money.paid_cents as f64 / 100.0)?;
        if let Some(name) = &row.comune_name {
            sheet.write_string(y, 5, name)?;
        }
    }
    let sheet = book.add_worksheet();
    sheet.set_name("per fonte")?;
    sheet.write_string(0, 0, "fonte")?;
    sheet.write_string(0, 1, "importo_eur")?;
    for (i, row) in r.by_source.iter().enumerate() {
        sheet.write_string(i as u32 + 1, 0, &row.source)?;
        sheet.write_number(i as u32 + 1, 1, row.amount_cents as f64 / 100.0)?;
    }
    let sheet = book.add_worksheet();
    sheet.set_name("per stato")?;
    for (c, h) in ["stato", "progetti", "dichiarato", "derivato", "forzato"]
        .iter()
        .enumerate()
    {
        sheet.write_string(0, c as u16, *h)?;
    }
    for (i, row) in r.by_state.iter().enumerate() {
        let y = i as u32 + 1;
        sheet.write_string(y, 0, &row.state)?;
        for (c, n) in [row.projects, row.stated, row.derived, row.set_by_hand]
            .iter()
            .enumerate()
        {
            sheet.write_number(y, c as u16 + 1, *n as f64)?;
        }
    }
    stamp_sheet(&mut book, &r.computed_from)?;
    book.set_properties(
        &rust_xlsxwriter::DocProperties::new()
            .set_title(format!("Rapporto di monitoraggio al {}", r.as_of))
            .set_comment(format!(
                "Calcolato da {} documenti, impronta blake3 {}; accordo report --verify sul rapporto JSON con la stessa impronta",
                r.computed_from.documents.len(),
                r.computed_from.digest
            ))
            .set_custom_property("accordo_digest", &r.computed_from.digest)
            .set_custom_property(
                "accordo_documents",
                i32::try_from(r.computed_from.documents.len()).unwrap_or(i32::MAX),
            ),
    );
    Ok(book.save_to_buffer()?)
}

/// The sheet `Verifica`: the digest, the number of documents, and each
/// document with its heads (one row per head), so a printed or forwarded
/// workbook can be traced to the data it was computed from.
fn stamp_sheet(book: &mut rust_xlsxwriter::Workbook, stamp: &Stamp) -> Result<()> {
    let sheet = book.add_worksheet();
    sheet.set_name("Verifica")?;
    sheet.write_string(0, 0, "impronta_blake3")?;
    sheet.write_string(0, 1, &stamp.digest)?;
    sheet.write_string(1, 0, "documenti")?;
    sheet.write_number(1, 1, stamp.documents.len() as f64)?;
    sheet.write_string(2, 0, "verifica")?;
    sheet.write_string(
        2,
        1,
        "accordo report --verify FILE.json sul rapporto JSON con la stessa impronta",
    )?;
    sheet.write_string(4, 0, "documento")?;
    sheet.write_string(4, 1, "head")?;
    let mut y = 5;
    for d in &stamp.documents {
        if d.heads.is_empty() {
            sheet.write_string(y, 0, &d.doc)?;
            y += 1;
        }
        for h in &d.heads {
            sheet.write_string(y, 0, &d.doc)?;
            sheet.write_string(y, 1, h)?;
            y += 1;
        }
    }
    Ok(())
}
