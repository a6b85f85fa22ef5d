//! Reading project files as they really are: Accordo's own CSV/XLSX,
//! OpenCoesione `progetti_esteso` and Italia Domani `PNRR_Progetti` (with
//! `PNRR_Localizzazione`).
//!
//! Parsing is pure and atomic: every error names its line (the line an
//! editor shows, where the record starts; the spreadsheet row for XLSX),
//! column and value, and the caller gets either all projects of its comune
//! (plus the rows skipped and why) or the errors — never a part. Text
//! encoding (UTF-8 with or without BOM, or Windows-1252), line endings (LF,
//! CR LF, CR), separator (`;` or `,`), decimal commas, `N/D`/`N/A` and both
//! date forms are handled here; header names are matched loosely (trim,
//! case, spaces). A project located in several comuni belongs to the first
//! one listed, so that the metropolitan aggregate counts it once.
//!
//! # Streaming
//!
//! A CSV file is read as a stream ([`import_csv`], any `Read + Seek`): the
//! header is judged first — an unknown layout or a missing column fails
//! before the body is read — then records are read one at a time and only
//! the rows of the node's comune are kept, so memory is bounded by the rows
//! kept, not by the file (a national extract of over 1 GB for one comune).
//! The encoding is decided without reading ahead: the file is read as UTF-8
//! and, at the first byte that is not UTF-8 (anywhere, as before), read
//! again from the top as Windows-1252. XLSX workbooks and the PNRR
//! localizzazione file are small and read whole.
//!
//! Rows of other comuni: a row whose comune cell (`COD_COMUNE`'s first code,
//! Accordo's `comune`) reads as another comune is counted as skipped on that
//! one cell and not checked further — in a national extract they are
//! millions of rows the office cannot fix and does not import. Every row
//! that may be the office's (its comune, or a comune cell that does not
//! read) is checked whole, and the header always is. At most
//! [`MAX_LISTED_ERRORS`] errors and [`MAX_LISTED_SKIPS`] skipped rows are
//! listed; the rest are counted ([`ImportErrors::1`], [`Outcome::skipped_rows`]).

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

mod accordo;
mod csv_stream;
mod csv_text;
mod opencoesione;
mod pnrr;
mod xlsx;

pub use crate::table::{missing, normalise_header, parse_it_amount, RowError, RowReader, Table};
pub use csv_stream::{Encoding, MAX_RECORD_BYTES};
pub use csv_text::{decode_text, parse_csv};
pub use xlsx::parse_xlsx;

use crate::model::Project;
use crate::open_data::ACCORDO_COLUMNS;
use accordo_protocol::codes::Istat;
use csv_stream::{CsvStream, StreamError};
use serde::Serialize;
use std::collections::HashMap;
use std::io::{Read, Seek};

/// Errors listed in full; more are counted. An office fixes a file from
/// the first errors, and a broken national extract could hold millions.
pub const MAX_LISTED_ERRORS: usize = 1_000;
/// Skipped rows listed with their reason; more are counted (a national
/// extract skips millions of rows of other comuni).
pub const MAX_LISTED_SKIPS: usize = 1_000;

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

/// Every error found (the first [`MAX_LISTED_ERRORS`], then how many more);
/// nothing was imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportErrors(
    /// The errors listed, in file order.
    pub Vec<RowError>,
    /// Errors found beyond those listed.
    pub usize,
);

impl ImportErrors {
    /// How many errors were found, listed or not.
    pub fn total(&self) -> usize {
        self.0.len() + self.1
    }
}

impl std::fmt::Display for ImportErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} error(s), nothing imported", self.total())?;
        match self.0.first() {
            Some(first) => write!(f, "; first: {first}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for ImportErrors {}

fn file_error(problem: impl Into<String>) -> ImportErrors {
    ImportErrors(
        vec![RowError {
            line: 0,
            column: String::new(),
            value: String::new(),
            problem: problem.into(),
        }],
        0,
    )
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
    /// (line, why) of the first [`MAX_LISTED_SKIPS`] rows left out: other comuni.
    pub skipped: Vec<(usize, String)>,
    /// Rows left out, listed in `skipped` or not.
    pub skipped_rows: usize,
    /// Imported all the same: locations in comuni suppressed since.
    pub warnings: Vec<RowError>,
    /// Headers of the file whose values were neither mapped nor kept.
    pub not_kept: Vec<String>,
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

/// What one row gave.
enum Row {
    Kept(Box<Imported>),
    Skipped(String),
    /// Errors only (already recorded).
    Failed,
}

/// How the rows of a judged header are read.
enum Layout {
    Opencoesione(opencoesione::OcColumns),
    Pnrr(pnrr::Places),
    Accordo,
}

/// Parses `bytes` (and, for PNRR, the localizzazione file) for comune `own`:
/// a workbook whole, CSV through [`import_csv`].
pub fn import(
    bytes: &[u8],
    xlsx: bool,
    format: Format,
    localizzazione: Option<&[u8]>,
    own: &Istat,
) -> Result<Outcome, ImportErrors> {
    if xlsx {
        import_table(
            &parse_xlsx(bytes)?,
            XLSX_ENCODING,
            format,
            localizzazione,
            own,
        )
    } else {
        import_csv(std::io::Cursor::new(bytes), format, localizzazione, own)
    }
}

/// Parses a CSV file read as a stream (see the module doc): the header is
/// judged before the body is read, and only the rows of `own` are kept.
pub fn import_csv<R: Read + Seek>(
    mut file: R,
    format: Format,
    localizzazione: Option<&[u8]>,
    own: &Istat,
) -> Result<Outcome, ImportErrors> {
    match stream_csv(&mut file, Encoding::Utf8, format, localizzazione, own) {
        Err(Stop::NotUtf8) => {
            match stream_csv(&mut file, Encoding::Windows1252, format, localizzazione, own) {
                Err(Stop::NotUtf8) => Err(file_error(
                    "the file is neither UTF-8 nor Windows-1252 (a bug: every byte is Windows-1252)",
                )),
                Err(Stop::Errors(e)) => Err(e),
                Ok(o) => Ok(o),
            }
        }
        Err(Stop::Errors(e)) => Err(e),
        Ok(o) => Ok(o),
    }
}

/// Why one reading of a CSV stream stopped short.
enum Stop {
    /// A byte that is not UTF-8: read again as Windows-1252.
    NotUtf8,
    Errors(ImportErrors),
}

impl From<ImportErrors> for Stop {
    fn from(e: ImportErrors) -> Self {
        Stop::Errors(e)
    }
}

impl From<StreamError> for Stop {
    fn from(e: StreamError) -> Self {
        match e {
            StreamError::NotUtf8 => Stop::NotUtf8,
            StreamError::Csv(e) if e.is_io_error() => {
                Stop::Errors(file_error(format!("the file could not be read: {e}")))
            }
            StreamError::Csv(e) => {
                Stop::Errors(file_error(format!("the file does not parse as CSV: {e}")))
            }
            other => Stop::Errors(file_error(other.to_string())),
        }
    }
}

/// One reading of a CSV stream in `encoding`, from its start.
fn stream_csv<R: Read + Seek>(
    file: &mut R,
    encoding: Encoding,
    format: Format,
    localizzazione: Option<&[u8]>,
    own: &Istat,
) -> Result<Outcome, Stop> {
    let mut stream = CsvStream::open(file, encoding)?;
    let headers = stream.headers().map_err(|e| match e {
        StreamError::Csv(e) if !e.is_io_error() => {
            Stop::Errors(file_error(format!("the header line does not parse: {e}")))
        }
        e => Stop::from(e),
    })?;
    let header = Table::new(
        headers.iter().map(|h| normalise_header(h)).collect(),
        Vec::new(),
    );
    let mut rows = Rows::new(&header, format, localizzazione, own)?;
    while let Some((line, record)) = stream.next_record()? {
        if csv_stream::is_blank(record) {
            continue;
        }
        rows.rows += 1;
        let key = rows.key_column.and_then(|i| record.get(i));
        let key = key.and_then(|k| std::str::from_utf8(k).ok());
        if let Some(why) = rows.other_comune(key) {
            rows.skip(line, why);
            continue;
        }
        let cells: Vec<String> = record
            .iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        rows.row(line, &cells);
    }
    Ok(rows.finish(encoding.name())?)
}

/// Parses a table read whole (a workbook, or CSV text by [`parse_csv`]) as
/// [`import_csv`] parses a stream.
pub fn import_table(
    table: &Table,
    encoding: &'static str,
    format: Format,
    localizzazione: Option<&[u8]>,
    own: &Istat,
) -> Result<Outcome, ImportErrors> {
    let mut rows = Rows::new(table, format, localizzazione, own)?;
    for (line, cells) in &table.rows {
        rows.rows += 1;
        let key = rows.key_column.and_then(|i| cells.get(i));
        if let Some(why) = rows.other_comune(key.map(String::as_str)) {
            rows.skip(*line, why);
            continue;
        }
        rows.row(*line, cells);
    }
    rows.finish(encoding)
}

/// The rows of a file as they are read: the projects kept, the rows
/// skipped and the errors, each list bounded.
struct Rows<'a> {
    header: &'a Table,
    format: Format,
    layout: Layout,
    own: &'a Istat,
    /// The cell that tells a row's comune, for the cheap test.
    key_column: Option<usize>,
    rows: usize,
    projects: Vec<Imported>,
    skipped: Vec<(usize, String)>,
    skipped_rows: usize,
    errors: Vec<RowError>,
    unlisted_errors: usize,
}

impl<'a> Rows<'a> {
    /// Judges the header (layout, needed columns; for PNRR, reads the
    /// localizzazione file) before any row is read.
    fn new(
        header: &'a Table,
        format: Format,
        localizzazione: Option<&[u8]>,
        own: &'a Istat,
    ) -> Result<Self, ImportErrors> {
        let format = match format {
            Format::Auto => detect(header).ok_or_else(|| {
                file_error(format!(
                    "unknown file layout: expected Accordo, OpenCoesione progetti_esteso or PNRR_Progetti headers; headers seen: {}",
                    header.headers.join(", ")
                ))
            })?,
            f => f,
        };
        let mut errors = Vec::new();
        let (layout, key_column) = match format {
            Format::Opencoesione => {
                require_columns(
                    header,
                    "OpenCoesione progetti_esteso",
                    &["cod_locale_progetto", "oc_titolo_progetto", "cod_comune"],
                )?;
                let columns = opencoesione::OcColumns::new(header);
                (
                    Layout::Opencoesione(columns),
                    header.column(&["cod_comune"]),
                )
            }
            Format::Pnrr => {
                let loc = localizzazione
                    .map(|b| parse_csv(&decode_text(b).0))
                    .transpose()?;
                (
                    Layout::Pnrr(pnrr::places(header, loc.as_ref(), &mut errors)?),
                    None,
                )
            }
            Format::Accordo | Format::Auto => {
                accordo::require(header)?;
                (Layout::Accordo, header.column(&["comune"]))
            }
        };
        let mut rows = Rows {
            header,
            format,
            layout,
            own,
            key_column,
            rows: 0,
            projects: Vec::new(),
            skipped: Vec::new(),
            skipped_rows: 0,
            errors,
            unlisted_errors: 0,
        };
        rows.bound_errors();
        Ok(rows)
    }

    /// Why a row is of another comune, if its comune cell alone says so.
    fn other_comune(&self, key: Option<&str>) -> Option<String> {
        match self.layout {
            Layout::Opencoesione(_) => opencoesione::other_comune(key, self.own),
            Layout::Accordo => accordo::other_comune(key, self.own),
            Layout::Pnrr(_) => None,
        }
    }

    fn skip(&mut self, line: usize, why: String) {
        self.skipped_rows += 1;
        if self.skipped.len() < MAX_LISTED_SKIPS {
            self.skipped.push((line, why));
        }
    }

    /// Reads one row whole.
    fn row(&mut self, line: usize, cells: &[String]) {
        let mut r = RowReader::new(self.header, line, cells, &mut self.errors);
        let row = match &self.layout {
            Layout::Opencoesione(columns) => opencoesione::row(&mut r, columns, self.own),
            Layout::Pnrr(places) => pnrr::row(&mut r, places, self.own),
            Layout::Accordo => accordo::row(&mut r, self.own),
        };
        match row {
            Row::Kept(item) => self.projects.push(*item),
            Row::Skipped(why) => self.skip(line, why),
            Row::Failed => {}
        }
        self.bound_errors();
    }

    fn bound_errors(&mut self) {
        if self.errors.len() > MAX_LISTED_ERRORS {
            self.unlisted_errors += self.errors.len() - MAX_LISTED_ERRORS;
            self.errors.truncate(MAX_LISTED_ERRORS);
        }
    }

    /// The outcome once every row is read, or every error.
    fn finish(mut self, encoding: &'static str) -> Result<Outcome, ImportErrors> {
        let warnings = check_comuni(&self.projects, self.format, &mut self.errors);
        self.bound_errors();
        let not_kept = match self.format {
            Format::Opencoesione => unknown_headers(self.header, opencoesione::oc_known_columns()),
            Format::Pnrr => unknown_headers(self.header, pnrr::pnrr_known_columns()),
            Format::Accordo | Format::Auto => unknown_headers(self.header, ACCORDO_COLUMNS.iter()),
        };
        if !self.errors.is_empty() {
            return Err(ImportErrors(self.errors, self.unlisted_errors));
        }
        duplicates(&self.projects)?;
        Ok(Outcome {
            format: self.format,
            encoding,
            rows: self.rows,
            projects: self.projects,
            skipped: self.skipped,
            skipped_rows: self.skipped_rows,
            warnings,
            not_kept,
        })
    }
}

/// Refuses a file naming the same project twice (each repeat listed).
fn duplicates(projects: &[Imported]) -> Result<(), ImportErrors> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut dup = Vec::new();
    for p in projects {
        if let Some(first) = seen.insert(&p.key, p.line) {
            dup.push(RowError {
                line: p.line,
                column: "key".into(),
                value: p.key.clone(),
                problem: format!("the same project appears again (first at line {first})"),
            });
        }
    }
    if dup.is_empty() {
        return Ok(());
    }
    let unlisted = dup.len().saturating_sub(MAX_LISTED_ERRORS);
    dup.truncate(MAX_LISTED_ERRORS);
    Err(ImportErrors(dup, unlisted))
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

#[cfg(test)]
mod tests;
