//! The public portal's open-data tables (one table per file, as AgID's
//! guidelines ask: UTF-8, a header row, comma-separated, RFC 4180 quoting),
//! each as CSV, JSON (an array of objects keyed by column) and XLSX (one
//! sheet): the published projects in Accordo's own columns
//! ([`crate::open_data::ACCORDO_COLUMNS`], so another Accordo imports them),
//! their funding lines, their milestones, and the published indicators'
//! baselines, targets and observations. Bytes out; serving them is the
//! node's.

use crate::comuni;
use crate::export::ExportError;
use crate::indicator::{IndicatorData, IndicatorDef};
use crate::model::{Date, Project};
use crate::open_data::{plain_eur, project_row, ACCORDO_COLUMNS};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A table: its name (the file's, without extension), columns and rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub name: &'static str,
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// RFC 4180 CSV in UTF-8 with a header row.
    pub fn csv(&self) -> Result<Vec<u8>, ExportError> {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        w.write_record(&self.columns)?;
        for row in &self.rows {
            w.write_record(row)?;
        }
        w.into_inner()
            .map_err(|e| ExportError::CsvFinish(e.into_error()))
    }

    /// An array of objects keyed by column; empty cells are `null`.
    pub fn json(&self) -> Result<Vec<u8>, ExportError> {
        let items: Vec<Value> = self
            .rows
            .iter()
            .map(|row| {
                let obj: Map<String, Value> = self
                    .columns
                    .iter()
                    .zip(row)
                    .map(|(c, v)| {
                        let v = if v.is_empty() {
                            Value::Null
                        } else {
                            Value::String(v.clone())
                        };
                        ((*c).to_owned(), v)
                    })
                    .collect();
                Value::Object(obj)
            })
            .collect();
        Ok(serde_json::to_vec_pretty(&items)?)
    }

    /// One sheet named as the table, the header in the first row.
    pub fn xlsx(&self) -> Result<Vec<u8>, ExportError> {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        sheet.set_name(self.name)?;
        for (c, name) in self.columns.iter().enumerate() {
            sheet.write_string(0, c as u16, *name)?;
        }
        for (r, row) in self.rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                if !cell.is_empty() {
                    sheet.write_string(r as u32 + 1, c as u16, cell)?;
                }
            }
        }
        Ok(book.save_to_buffer()?)
    }
}

fn name_of(comune: &str) -> String {
    comuni::name(comune).unwrap_or_default().to_owned()
}

/// The published projects, one row each in Accordo's columns.
pub fn projects(rows: &[(String, Project)]) -> Table {
    Table {
        name: "progetti",
        columns: ACCORDO_COLUMNS.to_vec(),
        rows: rows.iter().map(|(c, p)| project_row(c, p)).collect(),
    }
}

/// The funding lines of `rows`' projects.
pub fn funding(rows: &[(String, Project)]) -> Table {
    let mut out = Vec::new();
    for (comune, p) in rows {
        for (line, f) in &p.funding {
            out.push(vec![
                p.id.clone(),
                comune.clone(),
                name_of(comune),
                p.cup.clone().unwrap_or_default(),
                line.clone(),
                f.source.code().to_owned(),
                f.programme.clone().unwrap_or_default(),
                plain_eur(Some(f.amount_cents)),
            ]);
        }
    }
    Table {
        name: "finanziamenti",
        columns: vec![
            "id_progetto",
            "comune",
            "comune_name",
            "cup",
            "linea",
            "fonte",
            "programma",
            "importo_eur",
        ],
        rows: out,
    }
}

/// The milestones of `rows`' projects; `in_ritardo` as of `today`.
pub fn milestones(rows: &[(String, Project)], today: Date) -> Table {
    let mut out = Vec::new();
    for (comune, p) in rows {
        for (mid, m) in &p.milestones {
            let opt = |v: &Option<String>| v.clone().unwrap_or_default();
            let late = m.achieved_date.is_none() && m.due < today;
            out.push(vec![
                p.id.clone(),
                comune.clone(),
                name_of(comune),
                opt(&p.cup),
                mid.clone(),
                m.code.clone(),
                m.description.clone(),
                opt(&m.unit),
                opt(&m.baseline),
                opt(&m.target),
                m.due.to_string(),
                m.achieved_date.map(|d| d.to_string()).unwrap_or_default(),
                opt(&m.achieved_value),
                if late { "si" } else { "no" }.to_owned(),
            ]);
        }
    }
    Table {
        name: "milestone",
        columns: vec![
            "id_progetto",
            "comune",
            "comune_name",
            "cup",
            "milestone",
            "codice",
            "descrizione",
            "unita",
            "valore_partenza",
            "obiettivo",
            "scadenza",
            "data_raggiungimento",
            "valore_raggiunto",
            "in_ritardo",
        ],
        rows: out,
    }
}

/// Baselines, targets and observations of the indicators of `catalog`, for
/// each territory (`metro` or an ISTAT code) in `data`.
pub fn observations(
    catalog: &[IndicatorDef],
    data: &[(String, BTreeMap<String, IndicatorData>)],
) -> Table {
    let mut out = Vec::new();
    for def in catalog {
        for (territory, by_code) in data {
            let Some(d) = by_code.get(&def.code) else {
                continue;
            };
            let territory_name = if territory == "metro" {
                String::new()
            } else {
                name_of(territory)
            };
            let mut row = |kind: &str, period: &str, value: f64| {
                out.push(vec![
                    def.code.clone(),
                    def.name_it.clone(),
                    def.unit.clone(),
                    def.polarity.to_string(),
                    territory.clone(),
                    territory_name.clone(),
                    kind.to_owned(),
                    period.to_owned(),
                    value.to_string(),
                ]);
            };
            if let Some(b) = &d.baseline {
                row("valore_partenza", &b.period, b.value);
            }
            if let Some(t) = &d.target {
                row("obiettivo", &t.period, t.value);
            }
            for (period, o) in &d.observations {
                row("osservazione", period, o.value);
            }
        }
    }
    Table {
        name: "osservazioni",
        columns: vec![
            "indicatore",
            "nome",
            "unita",
            "polarita",
            "territorio",
            "territorio_name",
            "tipo",
            "periodo",
            "valore",
        ],
        rows: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FundingLine, FundingSource};

    fn project() -> (String, Project) {
        let mut p = Project {
            id: "p1".into(),
            cup: Some("J21B22000010006".into()),
            title: "Scuola, \"nuova\"".into(),
            published: true,
            ..Project::default()
        };
        p.funding.insert(
            "f1".into(),
            FundingLine {
                source: FundingSource::Pnrr,
                programme: None,
                amount_cents: 123_456,
            },
        );
        ("092009".into(), p)
    }

    #[test]
    fn csv_is_comma_separated_with_a_header_and_quotes_as_rfc_4180() {
        let rows = vec![project()];
        let csv = String::from_utf8(projects(&rows).csv().unwrap()).unwrap();
        let mut lines = csv.split("\r\n");
        assert!(lines.next().unwrap().starts_with("id_progetto,comune,cup,"));
        assert!(lines.next().unwrap().contains(r#""Scuola, ""nuova""""#));
        let f = String::from_utf8(funding(&rows).csv().unwrap()).unwrap();
        assert_eq!(
            f,
            "id_progetto,comune,comune_name,cup,linea,fonte,programma,importo_eur\r\n\
             p1,092009,Cagliari,J21B22000010006,f1,PNRR,,1234.56\r\n"
        );
    }

    #[test]
    fn json_keys_rows_by_column_with_nulls_for_empty_cells() {
        let v: Value = serde_json::from_slice(&funding(&[project()]).json().unwrap()).unwrap();
        assert_eq!(v[0]["fonte"], "PNRR");
        assert_eq!(v[0]["programma"], Value::Null);
    }
}
