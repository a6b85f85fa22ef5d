//! Reading project files as they really are: Accordo's own CSV/XLSX,
//! OpenCoesione `progetti_esteso` and Italia Domani `PNRR_Progetti` (with
//! `PNRR_Localizzazione`).
//!
//! Parsing is pure and atomic: every row is checked, every error names its
//! line (the line an editor shows, where the record starts; the spreadsheet
//! row for XLSX), column and value, and the caller gets either all projects
//! of its comune (plus the rows skipped and why) or every error — never a
//! part. Text encoding (UTF-8 with or without BOM, or Windows-1252), line
//! endings (LF, CR LF, CR), separator (`;` or `,`), decimal commas,
//! `N/D`/`N/A` and both date forms are handled here; header names are matched
//! loosely (trim, case, spaces). A project located in several comuni belongs
//! to the first one listed, so that the metropolitan aggregate counts it once.
//!
//! # What maps where
//!
//! A value in the file is either read into a typed field, kept as published
//! in [`Project::source_fields`] (keyed by the normalised header), or — for
//! columns of neither kind — left out and *named* in [`Outcome::not_kept`],
//! which `import` prints. Nothing is dropped silently.
//!
//! OpenCoesione `progetti_esteso`:
//!
//! | column | field |
//! | --- | --- |
//! | `COD_LOCALE_PROGETTO` | `local_code`, import key `oc:<code>` |
//! | `CUP` | `cup` |
//! | `OC_TITOLO_PROGETTO`, `OC_SINTESI_PROGETTO` | `title`, `summary` |
//! | `OC_DENOM_ATTUATORE` | `implementing_body` |
//! | `COD_COMUNE` (9 digits, `:::`-joined) | `locations` (equal shares) |
//! | `FINANZ_TOTALE_PUBBLICO`, `IMPEGNI`, `TOT_PAGAMENTI` | `financed_cents`, `committed_cents`, `paid_cents` |
//! | `FINANZ_UE_FESR` … `FINANZ_DA_REPERIRE` | `funding` lines, with `OC_CODICE_PROGRAMMA` as programme |
//! | `DATA_{INIZIO,FINE}_{PREV,EFF}_<PHASE>` | `phases` |
//! | `OC_STATO_PROCEDURALE` | `stated_state` (the phases only derive a state when this is empty) |
//! | `OC_STATO_PROGETTO`, `OC_COD_FONTE`, `FONDO_COMUNITARIO`, `OC_DESCRIZIONE_PROGRAMMA`, `OC_DATA_INIZIO_PROGETTO`, `OC_DATA_FINE_PROGETTO_PREVISTA`, `OC_DATA_FINE_PROGETTO_EFFETTIVA`, `COSTO_REALIZZATO`, `OC_FINANZ_TOT_PUB_NETTO`, `OC_TEMA_SINTETICO`, `CUP_DESCR_NATURA`, `CUP_DESCR_TIPOLOGIA`, `DATA_AGGIORNAMENTO` | `source_fields` |
//! | `DEN_COMUNE` | not kept: the name of `COD_COMUNE` |
//!
//! Italia Domani `PNRR_Progetti`:
//!
//! | column | field |
//! | --- | --- |
//! | `Codice Univoco Submisura`, `CUP`, `Codice Locale Progetto` | import key `pnrr:<sub>\|<cup>\|<clp>`; `cup`, `local_code` |
//! | `Titolo Progetto`, `Sintesi Progetto`, `Soggetto Attuatore` | `title`, `summary`, `implementing_body` |
//! | `ID Misura` (or `Misura`) | `pnrr_measure` |
//! | `Finanziamento Totale Pubblico` (else `Finanziamento Totale`) | `financed_cents` |
//! | `Finanziamento PNRR` … `Finanziamento Altri Fondi` | `funding` lines |
//! | `Data {Inizio,Fine} Progetto {Prevista,Effettiva}` | the `ESECUZIONE` phase (the file has no per-phase dates) |
//! | `Missione`, `Componente`, `Codice Univoco Submisura`, `Finanziamento Totale`, `Descrizione Fase Iter di Progetto`, `Stato Avanzamento Progetto` | `source_fields` |
//!
//! PNRR publishes no `OC_STATO_PROCEDURALE`: its `Stato Avanzamento Progetto`
//! (In Corso, Concluso, Da Attivare) is the project's status, not its
//! procedural state, and the values of `Descrizione Fase Iter di Progetto`
//! are not a published code list, so both are kept as source fields and the
//! procedural state is derived. `PNRR_Localizzazione` gives `locations`.
//! Accordo's own files map column by column (see `open_data.rs`).

use crate::model::{
    FundingLine, FundingSource, Location, Phase, PhaseDates, PnrrMeasure, ProceduralState, Project,
};
use crate::open_data::{project_from_row, ACCORDO_COLUMNS};
pub use crate::table::{missing, normalise_header, parse_it_amount, RowError, RowReader, Table};
use accordo_protocol::codes::Istat;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Which kind of file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Auto,
    Accordo,
    Opencoesione,
    Pnrr,
}

impl Format {
    /// The name users know, for human output.
    pub fn name(self, xlsx: bool) -> &'static str {
        match (self, xlsx) {
            (Format::Opencoesione, _) => "OpenCoesione",
            (Format::Pnrr, _) => "Italia Domani – PNRR",
            (Format::Accordo, true) => "Accordo XLSX",
            (Format::Accordo, false) => "Accordo CSV",
            (Format::Auto, _) => "detected from the headers",
        }
    }
}

/// Every error found; nothing was imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("{} error(s), nothing imported; first: {}", .0.len(), .0[0])]
pub struct ImportErrors(pub Vec<RowError>);

fn file_error(problem: impl Into<String>) -> ImportErrors {
    ImportErrors(vec![RowError {
        line: 0,
        column: String::new(),
        value: String::new(),
        problem: problem.into(),
    }])
}

/// A parsed project and the key that finds it again on re-import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Imported {
    pub line: usize,
    pub key: String,
    /// For Accordo's own files: the project id to update.
    pub id: Option<String>,
    pub project: Project,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub format: Format,
    /// `windows-1252` when the file was not UTF-8 and was converted.
    pub encoding: &'static str,
    pub rows: usize,
    pub projects: Vec<Imported>,
    /// (line, why) of rows left out: other comuni.
    pub skipped: Vec<(usize, String)>,
    /// Imported all the same: locations in comuni suppressed since.
    pub warnings: Vec<RowError>,
    /// Headers of the file whose values were neither mapped nor kept.
    pub not_kept: Vec<String>,
}

/// Decodes file bytes: UTF-8 (BOM stripped) or, failing that, Windows-1252.
pub fn decode_text(bytes: &[u8]) -> (String, &'static str) {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_owned(), "utf-8"),
        Err(_) => {
            let (text, _, _) = encoding_rs::WINDOWS_1252.decode(bytes);
            (text.into_owned(), "windows-1252")
        }
    }
}

impl Outcome {
    /// Format and encoding as users name them, e.g. `OpenCoesione, UTF-8`
    /// or `Accordo XLSX`.
    pub fn describe(&self) -> String {
        let xlsx = self.encoding == XLSX_ENCODING;
        let name = self.format.name(xlsx);
        match (self.encoding, xlsx) {
            (_, true) if self.format == Format::Accordo => name.to_owned(),
            (_, true) => format!("{name}, XLSX"),
            ("utf-8", _) => format!("{name}, UTF-8"),
            ("windows-1252", _) => format!("{name}, Windows-1252"),
            (other, _) => format!("{name}, {other}"),
        }
    }
}

/// `Outcome::encoding` of a workbook.
const XLSX_ENCODING: &str = "xlsx";

/// Turns byte offsets into the line numbers an editor shows: a line break is
/// `\n`, `\r\n` or a lone `\r`. Records are read in order, so offsets
/// increase and the text is scanned once.
struct LineCounter<'a> {
    text: &'a [u8],
    offset: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        LineCounter {
            text: text.as_bytes(),
            offset: 0,
            line: 1,
        }
    }

    /// The 1-based line of the first byte at or after `offset` that is not
    /// a line break. The csv crate places a record just after the previous
    /// record's `\r` (before its `\n`) and before any blank lines skipped.
    fn record_line(&mut self, offset: usize) -> usize {
        let mut offset = offset.min(self.text.len());
        while matches!(self.text.get(offset), Some(b'\r' | b'\n')) {
            offset += 1;
        }
        // Records come in order; an offset before the scanned one (which the
        // csv crate does not give) keeps the current line.
        for i in self.offset..offset {
            let lone_cr = self.text[i] == b'\r' && self.text.get(i + 1) != Some(&b'\n');
            if self.text[i] == b'\n' || lone_cr {
                self.line += 1;
            }
        }
        self.offset = self.offset.max(offset);
        self.line
    }
}

/// Parses CSV text, guessing `;` or `,` from the header line. Each row
/// carries the line its record starts on, counted as an editor counts
/// (the csv crate's own line count is off for CR LF files).
pub fn parse_csv(text: &str) -> Result<Table, ImportErrors> {
    let first = text.split(['\r', '\n']).next().unwrap_or("");
    let delimiter = if first.matches(';').count() >= first.matches(',').count() {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| file_error(format!("the header line does not parse: {e}")))?
        .iter()
        .map(normalise_header)
        .collect();
    let mut lines = LineCounter::new(text);
    let mut rows = Vec::new();
    for record in reader.records() {
        let record =
            record.map_err(|e| file_error(format!("the file does not parse as CSV: {e}")))?;
        let line = record
            .position()
            .map_or(0, |p| lines.record_line(p.byte() as usize));
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        rows.push((line, record.iter().map(str::to_owned).collect()));
    }
    Ok(Table::new(headers, rows))
}

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

/// Which format a table is, from its headers.
pub fn detect(table: &Table) -> Option<Format> {
    let has = |n: &str| table.column(&[n]).is_some();
    if has("cod_locale_progetto") && has("oc_titolo_progetto") {
        Some(Format::Opencoesione)
    } else if has("codice univoco submisura") || (has("cup") && has("titolo progetto")) {
        Some(Format::Pnrr)
    } else if has("id_progetto") && has("titolo") {
        Some(Format::Accordo)
    } else {
        None
    }
}

/// Checks that the columns a format needs are there, naming those missing
/// and the headers seen.
fn require_columns(table: &Table, format: &str, needed: &[&str]) -> Result<(), ImportErrors> {
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|n| table.column(&[n]).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(file_error(format!(
        "not a {format} file: missing column(s) {}; headers seen: {}",
        missing.join(", "),
        table.headers.join(", ")
    )))
}

/// Headers of `table` that are not among `known` (normalised names).
fn unknown_headers<S: AsRef<str>>(
    table: &Table,
    known: impl IntoIterator<Item = S>,
) -> Vec<String> {
    let known: std::collections::HashSet<String> = known
        .into_iter()
        .map(|k| normalise_header(k.as_ref()))
        .collect();
    table
        .headers
        .iter()
        .filter(|h| !h.is_empty() && !known.contains(*h))
        .cloned()
        .collect()
}

/// Parses `bytes` (and, for PNRR, the localizzazione file) for comune `own`.
pub fn import(
    bytes: &[u8],
    xlsx: bool,
    format: Format,
    localizzazione: Option<&[u8]>,
    own: &Istat,
) -> Result<Outcome, ImportErrors> {
    let (table, encoding) = if xlsx {
        (parse_xlsx(bytes)?, XLSX_ENCODING)
    } else {
        let (text, encoding) = decode_text(bytes);
        (parse_csv(&text)?, encoding)
    };
    let format = match format {
        Format::Auto => detect(&table).ok_or_else(|| {
            file_error(format!(
                "unknown file layout: expected Accordo, OpenCoesione progetti_esteso or PNRR_Progetti headers; headers seen: {}",
                table.headers.join(", ")
            ))
        })?,
        f => f,
    };
    let mut errors = Vec::new();
    let (projects, skipped) = match format {
        Format::Opencoesione => opencoesione(&table, own, &mut errors)?,
        Format::Pnrr => {
            let loc = localizzazione
                .map(|b| parse_csv(&decode_text(b).0))
                .transpose()?;
            pnrr(&table, loc.as_ref(), own, &mut errors)?
        }
        Format::Accordo | Format::Auto => accordo(&table, own, &mut errors)?,
    };
    let warnings = check_comuni(&projects, format, &mut errors);
    let not_kept = match format {
        Format::Opencoesione => unknown_headers(&table, oc_known_columns()),
        Format::Pnrr => unknown_headers(&table, pnrr_known_columns()),
        Format::Accordo | Format::Auto => unknown_headers(&table, ACCORDO_COLUMNS.iter()),
    };
    if !errors.is_empty() {
        return Err(ImportErrors(errors));
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut dup = Vec::new();
    for p in &projects {
        if let Some(first) = seen.insert(&p.key, p.line) {
            dup.push(RowError {
                line: p.line,
                column: "key".into(),
                value: p.key.clone(),
                problem: format!("the same project appears again (first at line {first})"),
            });
        }
    }
    if !dup.is_empty() {
        return Err(ImportErrors(dup));
    }
    Ok(Outcome {
        format,
        encoding,
        rows: table.rows.len(),
        projects,
        skipped,
        warnings,
        not_kept,
    })
}

/// Checks every location against the ISTAT list: a code no comune ever had
/// is an error; a suppressed comune's is imported with a warning (files
/// of past years name comuni merged since).
fn check_comuni(
    projects: &[Imported],
    format: Format,
    errors: &mut Vec<RowError>,
) -> Vec<RowError> {
    let column = match format {
        Format::Opencoesione => "cod_comune",
        Format::Pnrr => "codice comune",
        Format::Accordo | Format::Auto => "localizzazioni",
    };
    let mut warnings = Vec::new();
    for item in projects {
        for code in item
            .project
            .locations
            .values()
            .filter_map(|l| l.comune.as_deref())
        {
            let (to, problem) = match super::comuni::parse(code) {
                Ok(known) => match known.suppressed() {
                    Some(gone) => (&mut warnings, gone.describe()),
                    None => continue,
                },
                Err(e) => (&mut *errors, e.to_string()),
            };
            to.push(RowError {
                line: item.line,
                column: column.to_owned(),
                value: code.to_owned(),
                problem,
            });
        }
    }
    warnings
}

type Parsed = (Vec<Imported>, Vec<(usize, String)>);

const OC_FUNDING: &[(&str, FundingSource)] = &[
    ("finanz_ue_fesr", FundingSource::Fesr),
    ("finanz_ue_fse", FundingSource::Fse),
    ("finanz_ue_feasr", FundingSource::Feasr),
    ("finanz_ue_feamp", FundingSource::Feamp),
    ("finanz_ue_iog", FundingSource::UeAltro),
    (
        "finanz_stato_fondo_di_rotazione",
        FundingSource::FondoRotazione,
    ),
    ("finanz_stato_fsc", FundingSource::Fsc),
    ("finanz_stato_pac", FundingSource::Pac),
    ("finanz_stato_altri_provvedimenti", FundingSource::Stato),
    ("finanz_regione", FundingSource::Regione),
    ("finanz_provincia", FundingSource::Provincia),
    ("finanz_comune", FundingSource::Comune),
    ("finanz_altro_pubblico", FundingSource::AltroPubblico),
    ("finanz_privato", FundingSource::Privato),
    ("finanz_da_reperire", FundingSource::DaReperire),
];

/// OpenCoesione columns read into typed fields (besides funding and phases).
const OC_MAPPED: &[&str] = &[
    "cod_locale_progetto",
    "cup",
    "oc_titolo_progetto",
    "oc_sintesi_progetto",
    "oc_denom_attuatore",
    "oc_denominazione_attuatore",
    "cod_comune",
    "finanz_totale_pubblico",
    "impegni",
    "tot_pagamenti",
    "oc_codice_programma",
    "oc_stato_procedurale",
];

/// OpenCoesione columns kept as published in `source_fields`.
const OC_KEPT: &[&str] = &[
    "oc_stato_progetto",
    "oc_cod_fonte",
    "fondo_comunitario",
    "oc_descrizione_programma",
    "oc_data_inizio_progetto",
    "oc_data_fine_progetto_prevista",
    "oc_data_fine_progetto_effettiva",
    "costo_realizzato",
    "oc_finanz_tot_pub_netto",
    "oc_tema_sintetico",
    "cup_descr_natura",
    "cup_descr_tipologia",
    "data_aggiornamento",
];

/// OpenCoesione columns that repeat a mapped one (`DEN_COMUNE` names `COD_COMUNE`).
const OC_REDUNDANT: &[&str] = &["den_comune"];

/// The phase-date columns `DATA_{INIZIO,FINE}_{PREV,EFF}_<PHASE>` of a phase.
fn oc_phase_columns(phase: Phase) -> [String; 4] {
    let c = phase.code().to_lowercase();
    ["inizio_prev", "fine_prev", "inizio_eff", "fine_eff"].map(|k| format!("data_{k}_{c}"))
}

/// Every OpenCoesione column this importer reads or keeps.
fn oc_known_columns() -> Vec<String> {
    let phases = Phase::ALL.iter().flat_map(|p| oc_phase_columns(*p));
    OC_MAPPED
        .iter()
        .chain(OC_KEPT)
        .chain(OC_REDUNDANT)
        .chain(OC_FUNDING.iter().map(|(c, _)| c))
        .map(|c| (*c).to_owned())
        .chain(phases)
        .collect()
}

/// Phase dates in OpenCoesione columns `DATA_{INIZIO,FINE}_{PREV,EFF}_{PHASE}`.
fn oc_phases(
    r: &mut RowReader<'_>,
    columns: &[(Phase, [String; 4])],
) -> BTreeMap<Phase, PhaseDates> {
    let mut out = BTreeMap::new();
    for (phase, [ps, pe, as_, ae]) in columns {
        let d = PhaseDates {
            planned_start: r.date(&[ps]),
            planned_end: r.date(&[pe]),
            actual_start: r.date(&[as_]),
            actual_end: r.date(&[ae]),
        };
        if d != PhaseDates::default() {
            out.insert(*phase, d);
        }
    }
    out
}

fn opencoesione(
    table: &Table,
    own: &Istat,
    errors: &mut Vec<RowError>,
) -> Result<Parsed, ImportErrors> {
    require_columns(
        table,
        "OpenCoesione progetti_esteso",
        &["cod_locale_progetto", "oc_titolo_progetto", "cod_comune"],
    )?;
    let phase_columns: Vec<(Phase, [String; 4])> = Phase::ALL
        .iter()
        .map(|p| (*p, oc_phase_columns(*p)))
        .filter(|(_, names)| names.iter().any(|n| table.column(&[n]).is_some()))
        .collect();
    let mut projects = Vec::new();
    let mut skipped = Vec::new();
    for (line, cells) in &table.rows {
        let mut r = RowReader::new(table, *line, cells, errors);
        let comuni = oc_comuni(&mut r);
        // A project located in several comuni belongs to the first listed,
        // so that the metropolitan aggregate counts it once.
        if comuni.first().map(String::as_str) != Some(own.as_str()) {
            let first = comuni.first().map_or("?", |c| c.as_str());
            skipped.push((*line, format!("belongs to comune {first}, not {own}")));
            continue;
        }
        let Some(local) = r.require(&["cod_locale_progetto"]) else {
            continue;
        };
        let mut p = Project {
            cup: r.cup(&["cup"]),
            local_code: Some(local.clone()),
            import_key: Some(format!("oc:{local}")),
            title: r.require(&["oc_titolo_progetto"]).unwrap_or_default(),
            summary: r.text(&["oc_sintesi_progetto"]),
            implementing_body: r.text(&["oc_denom_attuatore", "oc_denominazione_attuatore"]),
            financed_cents: r.amount(&["finanz_totale_pubblico"], true),
            committed_cents: r.amount(&["impegni"], true),
            paid_cents: r.amount(&["tot_pagamenti"], true),
            phases: oc_phases(&mut r, &phase_columns),
            stated_state: r.typed::<ProceduralState>(&["oc_stato_procedurale"]),
            ..Project::default()
        };
        r.keep(OC_KEPT, &mut p.source_fields);
        let share = 10_000 / comuni.len().max(1) as i64;
        for c in &comuni {
            p.locations.insert(
                c.clone(),
                Location {
                    comune: Some(c.clone()),
                    share_bp: share,
                },
            );
        }
        let programme = r.text(&["oc_codice_programma"]);
        for (col, source) in OC_FUNDING {
            if let Some(amount) = r.amount(&[col], true).filter(|a| *a != 0) {
                let line_id = col.trim_start_matches("finanz_").to_owned();
                p.funding.insert(
                    line_id,
                    FundingLine {
                        source: *source,
                        programme: programme.clone(),
                        amount_cents: amount,
                    },
                );
            }
        }
        projects.push(Imported {
            line: *line,
            key: format!("oc:{local}"),
            id: None,
            project: p,
        });
    }
    Ok((projects, skipped))
}

/// OpenCoesione's `COD_COMUNE`: 9 digits (region + ISTAT), several joined by `:::`.
fn oc_comuni(r: &mut RowReader<'_>) -> Vec<String> {
    let Some(v) = r.text(&["cod_comune"]) else {
        r.fail("cod_comune", "", "a value is required");
        return Vec::new();
    };
    let mut out = Vec::new();
    for part in v.split(":::") {
        let t = part.trim();
        // Byte slicing below is safe only on ASCII (found by fuzzing).
        let code = if t.len() == 9 && t.is_ascii() {
            &t[3..]
        } else {
            t
        };
        match code.parse::<Istat>() {
            Ok(c) => out.push(c.to_string()),
            Err(_) => r.fail(
                "cod_comune",
                part,
                "expected a 9-digit code (3-digit region + 6-digit ISTAT)",
            ),
        }
    }
    out
}

const PNRR_FUNDING: &[(&str, FundingSource)] = &[
    ("finanziamento pnrr", FundingSource::Pnrr),
    ("finanziamento pnc", FundingSource::Pnc),
    ("finanziamento stato", FundingSource::Stato),
    ("finanziamento ue (non pnrr)", FundingSource::UeAltro),
    ("finanziamento regione", FundingSource::Regione),
    ("finanziamento provincia", FundingSource::Provincia),
    ("finanziamento comune", FundingSource::Comune),
    ("finanziamento altro pubblico", FundingSource::AltroPubblico),
    ("finanziamento privato", FundingSource::Privato),
    ("finanziamento da reperire", FundingSource::DaReperire),
    ("finanziamento altri fondi", FundingSource::Altro),
];

/// PNRR_Progetti columns read into typed fields (besides funding).
const PNRR_MAPPED: &[&str] = &[
    "cup",
    "codice locale progetto",
    "codice univoco submisura",
    "titolo progetto",
    "sintesi progetto",
    "soggetto attuatore",
    "id misura",
    "misura",
    "finanziamento totale pubblico",
    "finanziamento totale",
    "data inizio progetto prevista",
    "data fine progetto prevista",
    "data inizio progetto effettiva",
    "data fine progetto effettiva",
];

/// PNRR_Progetti columns kept as published in `source_fields`.
const PNRR_KEPT: &[&str] = &[
    "missione",
    "componente",
    "codice univoco submisura",
    "finanziamento totale",
    "descrizione fase iter di progetto",
    "stato avanzamento progetto",
];

/// Every PNRR_Progetti column this importer reads or keeps.
fn pnrr_known_columns() -> Vec<&'static str> {
    PNRR_MAPPED
        .iter()
        .chain(PNRR_KEPT)
        .chain(PNRR_FUNDING.iter().map(|(c, _)| c))
        .copied()
        .collect()
}

/// (CUP, codice locale progetto) -> ISTAT comuni, from PNRR_Localizzazione.
fn pnrr_locations(
    loc: &Table,
    errors: &mut Vec<RowError>,
) -> Result<HashMap<(String, String), Vec<String>>, ImportErrors> {
    require_columns(
        loc,
        "PNRR_Localizzazione",
        &["cup", "codice provincia", "codice comune"],
    )?;
    let mut out: HashMap<(String, String), Vec<String>> = HashMap::new();
    for (line, cells) in &loc.rows {
        let mut r = RowReader::new(loc, *line, cells, errors);
        let cup = r.text(&["cup"]).unwrap_or_default();
        let clp = r.text(&["codice locale progetto"]).unwrap_or_default();
        let (Some(prov), Some(com)) = (r.text(&["codice provincia"]), r.text(&["codice comune"]))
        else {
            continue;
        };
        let code = format!("{:0>3}{:0>3}", prov.trim(), com.trim());
        match code.parse::<Istat>() {
            Ok(c) => out.entry((cup, clp)).or_default().push(c.to_string()),
            Err(_) => r.fail(
                "codice comune",
                &format!("{prov}/{com}"),
                "expected a province code and a comune code of up to 3 digits each",
            ),
        }
    }
    Ok(out)
}

fn pnrr(
    table: &Table,
    loc: Option<&Table>,
    own: &Istat,
    errors: &mut Vec<RowError>,
) -> Result<Parsed, ImportErrors> {
    require_columns(table, "PNRR_Progetti", &["cup", "titolo progetto"])?;
    let Some(loc) = loc else {
        return Err(file_error("PNRR_Progetti has no comune column: pass the matching PNRR_Localizzazione file with --localizzazione FILE"));
    };
    let places = pnrr_locations(loc, errors)?;
    let mut projects = Vec::new();
    let mut skipped = Vec::new();
    for (line, cells) in &table.rows {
        let mut r = RowReader::new(table, *line, cells, errors);
        let cup_text = r.text(&["cup"]).unwrap_or_default();
        let clp = r.text(&["codice locale progetto"]).unwrap_or_default();
        let comuni = places
            .get(&(cup_text.clone(), clp.clone()))
            .or_else(|| places.get(&(cup_text.clone(), String::new())))
            .cloned()
            .unwrap_or_default();
        // As for OpenCoesione: the first location owns the project.
        if comuni.first().map(String::as_str) != Some(own.as_str()) {
            let first = comuni.first().map_or("no location", |c| c.as_str());
            skipped.push((*line, format!("belongs to comune {first}, not {own}")));
            continue;
        }
        let sub = r.text(&["codice univoco submisura"]).unwrap_or_default();
        let key = format!("pnrr:{sub}|{cup_text}|{clp}");
        let mut p = Project {
            cup: r.cup(&["cup"]),
            local_code: (!clp.is_empty()).then(|| clp.clone()),
            import_key: Some(key.clone()),
            title: r.require(&["titolo progetto"]).unwrap_or_default(),
            summary: r.text(&["sintesi progetto"]),
            implementing_body: r.text(&["soggetto attuatore"]),
            pnrr_measure: r.typed::<PnrrMeasure>(&["id misura", "misura"]),
            financed_cents: r
                .amount(&["finanziamento totale pubblico"], true)
                .or_else(|| r.amount(&["finanziamento totale"], true)),
            ..Project::default()
        };
        r.keep(PNRR_KEPT, &mut p.source_fields);
        let dates = PhaseDates {
            planned_start: r.date(&["data inizio progetto prevista"]),
            planned_end: r.date(&["data fine progetto prevista"]),
            actual_start: r.date(&["data inizio progetto effettiva"]),
            actual_end: r.date(&["data fine progetto effettiva"]),
        };
        if dates != PhaseDates::default() {
            // PNRR files give the project's own dates: recorded as execution.
            p.phases.insert(Phase::Esecuzione, dates);
        }
        let share = 10_000 / comuni.len().max(1) as i64;
        for c in &comuni {
            p.locations.insert(
                c.clone(),
                Location {
                    comune: Some(c.clone()),
                    share_bp: share,
                },
            );
        }
        for (col, source) in PNRR_FUNDING {
            if let Some(amount) = r.amount(&[col], true).filter(|a| *a != 0) {
                let id = source.code().to_lowercase().replace(['+', ' '], "_");
                p.funding.insert(
                    id,
                    FundingLine {
                        source: *source,
                        programme: None,
                        amount_cents: amount,
                    },
                );
            }
        }
        projects.push(Imported {
            line: *line,
            key,
            id: None,
            project: p,
        });
    }
    Ok((projects, skipped))
}

fn accordo(table: &Table, own: &Istat, errors: &mut Vec<RowError>) -> Result<Parsed, ImportErrors> {
    let needed: Vec<&str> = ACCORDO_COLUMNS
        .iter()
        .filter(|c| matches!(**c, "id_progetto" | "comune" | "titolo"))
        .copied()
        .collect();
    require_columns(table, "Accordo", &needed)?;
    let mut projects = Vec::new();
    let mut skipped = Vec::new();
    for (line, cells) in &table.rows {
        let mut r = RowReader::new(table, *line, cells, errors);
        let comune = r.require(&["comune"]).unwrap_or_default();
        if comune != own.as_str() {
            skipped.push((*line, format!("comune {comune} is not {own}")));
            continue;
        }
        let Some(id) = r.require(&["id_progetto"]) else {
            continue;
        };
        if let Some(p) = project_from_row(&mut r) {
            let key = p.import_key.clone().unwrap_or_else(|| format!("id:{id}"));
            projects.push(Imported {
                line: *line,
                key,
                id: Some(id),
                project: p,
            });
        }
    }
    Ok((projects, skipped))
}

#[cfg(test)]
mod tests;
