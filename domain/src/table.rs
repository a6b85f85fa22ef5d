//! A file's table of cells (normalised headers, rows with the line an editor
//! shows) and the reader of one row that records located errors: shared by
//! the import parsers and by Accordo's own open-data format
//! ([`crate::open_data`]), so neither imports the other.

use crate::model::{Date, FieldError};
use accordo_protocol::codes::Cup;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// One problem in one cell (or the file), located for a person to fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    /// 1-based line in the file (the header is line 1); 0 for the file.
    pub line: usize,
    pub column: String,
    pub value: String,
    pub problem: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.problem)
        } else {
            write!(
                f,
                "line {}, column {}: {} (value {:?})",
                self.line, self.column, self.problem, self.value
            )
        }
    }
}

/// A table: normalised headers and rows of cells, with their file lines.
pub struct Table {
    pub headers: Vec<String>,
    pub rows: Vec<(usize, Vec<String>)>,
    /// Normalised header -> column (first occurrence).
    index: HashMap<String, usize>,
}

impl Table {
    pub fn new(headers: Vec<String>, rows: Vec<(usize, Vec<String>)>) -> Table {
        let mut index = HashMap::new();
        for (i, h) in headers.iter().enumerate() {
            index.entry(h.clone()).or_insert(i);
        }
        Table {
            headers,
            rows,
            index,
        }
    }

    /// The column of the first of `names` present. Names are given in
    /// normalised form (lower case, single spaces).
    pub fn column(&self, names: &[&str]) -> Option<usize> {
        names.iter().find_map(|n| match self.index.get(*n) {
            Some(i) => Some(*i),
            // Called for every field of every row, most names absent: the
            // name is normalised again (allocating) only if it is not so
            // already, which was a third of the time of a whole import.
            None if is_normalised(n) => None,
            None => self.index.get(&normalise_header(n)).copied(),
        })
    }
}

/// Whether `normalise_header(h) == h`, decided without allocating: no BOM,
/// no upper case, whitespace only as single inner spaces.
fn is_normalised(h: &str) -> bool {
    // The names the parsers ask for are lower-case ASCII words joined by
    // `_` or single spaces: decided by bytes, without `char::to_lowercase`
    // (which was most of the time of a re-import's header look-ups).
    let b = h.as_bytes();
    if b.iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b' ')
    {
        return !b.starts_with(b" ") && !b.ends_with(b" ") && !h.contains("  ");
    }
    let mut previous_space = true;
    for c in h.chars() {
        let space = c.is_whitespace();
        if c == '\u{feff}' || (space && (c != ' ' || previous_space)) || c.to_lowercase().ne([c]) {
            return false;
        }
        previous_space = space;
    }
    !previous_space || h.is_empty()
}

pub fn normalise_header(h: &str) -> String {
    h.trim_start_matches('\u{feff}')
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Whether a cell means "no value".
pub fn missing(v: &str) -> bool {
    // Compared without upper-casing a copy of every cell: only ASCII
    // letters occur in the markers, and a non-ASCII cell matches none.
    let v = v.trim();
    v.is_empty()
        || ["N/D", "N/A", "ND", "NA", "-"]
            .iter()
            .any(|m| v.eq_ignore_ascii_case(m))
}

/// An amount in an Italian-format file: `.` groups thousands, `,` is the
/// decimal separator; more than two decimals are rounded to the cent.
pub fn parse_it_amount(v: &str) -> Option<i64> {
    let t = v.trim().trim_start_matches('€').trim().replace('.', "");
    let (int, frac) = t.split_once(',').unwrap_or((&t, ""));
    let negative = int.starts_with('-');
    let int = int.trim_start_matches('-');
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let euros: i64 = int.parse().ok()?;
    let mut digits = frac.bytes().map(|b| i64::from(b - b'0'));
    let cents = digits.next().unwrap_or(0) * 10 + digits.next().unwrap_or(0);
    let round = i64::from(digits.next().unwrap_or(0) >= 5);
    let total = euros.checked_mul(100)?.checked_add(cents + round)?;
    Some(if negative { -total } else { total })
}

/// Collects errors while reading one row.
pub struct RowReader<'a> {
    pub table: &'a Table,
    pub line: usize,
    pub cells: &'a [String],
    pub errors: &'a mut Vec<RowError>,
}

impl<'a> RowReader<'a> {
    /// Reads row `cells` (at file `line`) of `table`, recording problems in `errors`.
    pub fn new(
        table: &'a Table,
        line: usize,
        cells: &'a [String],
        errors: &'a mut Vec<RowError>,
    ) -> Self {
        RowReader {
            table,
            line,
            cells,
            errors,
        }
    }

    pub fn text(&self, names: &[&str]) -> Option<String> {
        let i = self.table.column(names)?;
        let v = self.cells.get(i)?.trim();
        (!missing(v)).then(|| v.to_owned())
    }

    pub fn fail(&mut self, column: &str, value: &str, problem: impl Into<String>) {
        self.errors.push(RowError {
            line: self.line,
            column: column.to_owned(),
            value: value.to_owned(),
            problem: problem.into(),
        });
    }

    pub fn amount(&mut self, names: &[&str], italian: bool) -> Option<i64> {
        let v = self.text(names)?;
        let parsed = if italian {
            parse_it_amount(&v)
        } else {
            crate::money::parse_eur_cents("amount", &v).ok()
        };
        if parsed.is_none() {
            self.fail(
                names[0],
                &v,
                "expected an amount in euro such as 1234,56 or 1.234,56",
            );
        }
        parsed
    }

    pub fn date(&mut self, names: &[&str]) -> Option<Date> {
        let v = self.text(names)?;
        match Date::parse_any(names[0], &v) {
            Ok(d) => Some(d),
            Err(e) => {
                self.fail(names[0], &v, e.problem);
                None
            }
        }
    }

    pub fn cup(&mut self, names: &[&str]) -> Option<String> {
        let v = self.text(names)?;
        match v.parse::<Cup>() {
            Ok(c) => Some(c.as_str().to_owned()),
            Err(e) => {
                self.fail(names[0], &v, e.to_string());
                None
            }
        }
    }

    /// Copies each of `names` that has a value into `fields`, as published.
    pub fn keep(&self, names: &[&str], fields: &mut BTreeMap<String, String>) {
        for name in names {
            if let Some(v) = self.text(&[name]) {
                fields.insert((*name).to_owned(), v);
            }
        }
    }

    pub fn require(&mut self, names: &[&str]) -> Option<String> {
        let v = self.text(names);
        if v.is_none() {
            self.fail(names[0], "", "a value is required");
        }
        v
    }

    pub fn typed<T: std::str::FromStr<Err = FieldError>>(&mut self, names: &[&str]) -> Option<T> {
        let v = self.text(names)?;
        match v.parse::<T>() {
            Ok(t) => Some(t),
            Err(e) => {
                self.fail(names[0], &v, e.problem);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The allocation-free test of "no value" agrees with upper-casing.
    #[test]
    fn missing_agrees_with_upper_casing() {
        for v in [
            "", " ", "n/d", " N/D ", "n/a", "Nd", "na", "-", " - ", "--", "nda", "0", "città",
            "ND ",
        ] {
            let upper = matches!(
                v.trim().to_uppercase().as_str(),
                "" | "N/D" | "N/A" | "ND" | "NA" | "-"
            );
            assert_eq!(missing(v), upper, "{v:?}");
        }
    }

    /// The allocation-free check agrees with normalising.
    #[test]
    fn is_normalised_agrees_with_normalise_header() {
        for h in [
            "",
            "cup",
            "cod comune",
            "COD_COMUNE",
            "cod  comune",
            " cup",
            "cup ",
            "cod\tcomune",
            "\u{feff}cup",
            "città",
            "CITTÀ",
            "oc_stato_progetto",
            "data_inizio_eff_esecuzione",
            "a b",
            "a  b",
            "a_",
            "_",
            " ",
        ] {
            assert_eq!(is_normalised(h), normalise_header(h) == h, "{h:?}");
        }
    }
}
