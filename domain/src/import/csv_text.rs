//! CSV text held whole: how a small file (the PNRR localizzazione file)
//! is read, and the reference the streaming reader ([`super::csv_stream`])
//! is tested against — decoding, separator and line numbering are the same.

use super::{file_error, ImportErrors};
use crate::table::{normalise_header, Table};

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

/// `;` or `,`, whichever the header line holds more of (`;` on a tie).
pub(super) fn delimiter_of(first_line: &[u8]) -> u8 {
    let count = |c: u8| first_line.iter().filter(|b| **b == c).count();
    if count(b';') >= count(b',') {
        b';'
    } else {
        b','
    }
}

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
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter_of(first.as_bytes()))
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
