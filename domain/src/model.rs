//! The typed domain model: a comune's investment projects, their funding,
//! procedural phases and milestones, and the indicator catalog and data.
//!
//! Money is integer euro cents; dates are ISO `YYYY-MM-DD` strings checked by
//! [`Date`]; code lists are enums with the spellings found in the public
//! files (see `../shared/DOMAIN.md`). Every parser returns a [`FieldError`]
//! naming the field and the expected form.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

/// Version of the document layout written by this code.
pub const SCHEMA_VERSION: i64 = 1;

/// A value refused for a field, with the form expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}, got {value:?}")]
pub struct FieldError {
    pub field: String,
    pub value: String,
    pub problem: String,
}

impl FieldError {
    /// The problem alone, for callers that name the field themselves.
    pub fn problem(e: &FieldError) -> String {
        e.problem.clone()
    }

    pub fn new(field: &str, value: &str, problem: impl Into<String>) -> Self {
        FieldError {
            field: field.to_owned(),
            value: value.to_owned(),
            problem: problem.into(),
        }
    }
}

/// An ISO calendar date, `YYYY-MM-DD`, checked (month lengths, leap years).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl Date {
    pub fn new(year: u16, month: u8, day: u8) -> Option<Date> {
        let leap =
            (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        (1900..=2200)
            .contains(&year)
            .then_some(())
            .filter(|()| (1..=days).contains(&day))
            .map(|()| Date { year, month, day })
    }

    /// Parses ISO `YYYY-MM-DD`, Italian `DD/MM/YYYY` or compact `YYYYMMDD`.
    pub fn parse_any(field: &str, s: &str) -> Result<Date, FieldError> {
        let t = s.trim();
        let bad = || {
            FieldError::new(
                field,
                s,
                "expected a date as YYYY-MM-DD, DD/MM/YYYY or YYYYMMDD",
            )
        };
        // The byte slicing below is only valid on ASCII text (found by fuzzing).
        if !t.is_ascii() {
            return Err(bad());
        }
        let num = |a: &str| a.parse::<u16>().map_err(|_| bad());
        let (y, m, d) = if t.len() == 10 && t.as_bytes()[4] == b'-' && t.as_bytes()[7] == b'-' {
            (num(&t[..4])?, num(&t[5..7])?, num(&t[8..])?)
        } else if t.len() == 10 && t.as_bytes()[2] == b'/' && t.as_bytes()[5] == b'/' {
            (num(&t[6..])?, num(&t[3..5])?, num(&t[..2])?)
        } else if t.len() == 8 && t.bytes().all(|b| b.is_ascii_digit()) {
            (num(&t[..4])?, num(&t[4..6])?, num(&t[6..])?)
        } else {
            return Err(bad());
        };
        let m = u8::try_from(m).map_err(|_| bad())?;
        let d = u8::try_from(d).map_err(|_| bad())?;
        Date::new(y, m, d).ok_or_else(|| FieldError::new(field, s, "not a calendar date"))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl FromStr for Date {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Date, FieldError> {
        Date::parse_any("date", s)
    }
}

impl Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Defines a code-list enum with its canonical code and accepted spellings.
macro_rules! code_list {
    ($(#[$m:meta])* $name:ident, $field:literal, { $($variant:ident => $code:literal $(| $alt:literal)*),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }
            /// The value whose canonical code is exactly `code` (as `code()`
            /// prints it; other spellings are `FromStr`'s).
            pub fn from_code(code: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.code() == code)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.code())
            }
        }

        impl FromStr for $name {
            type Err = FieldError;
            fn from_str(s: &str) -> Result<Self, FieldError> {
                let norm = s.trim().to_lowercase();
                $(
                    if norm == $code.to_lowercase() $(|| norm == $alt.to_lowercase())* {
                        return Ok($name::$variant);
                    }
                )+
                let accepted: Vec<&str> = $name::ALL.iter().map(|v| v.code()).collect();
                Err(FieldError::new($field, s, format!("expected one of {}", accepted.join(", "))))
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.code())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

code_list!(
    /// Where money comes from (PNRR, cohesion funds, EU funds, budgets).
    FundingSource, "source", {
    Pnrr => "PNRR",
    Pnc => "PNC",
    Psc => "PSC",
    Fsc => "FSC" | "Fondo Sviluppo e Coesione",
    Fesr => "FESR" | "ERDF",
    Fse => "FSE+" | "FSE" | "ESF",
    Feasr => "FEASR",
    Feamp => "FEAMP",
    Pac => "PAC",
    FondoRotazione => "Fondo di rotazione" | "FDR",
    UeAltro => "UE" | "UE altro",
    Stato => "Stato",
    Regione => "Regione",
    Provincia => "Provincia" | "Città metropolitana",
    Comune => "Comune",
    AltroPubblico => "Altro pubblico",
    Privato => "Privato",
    DaReperire => "Da reperire",
    Altro => "Altro" | "Altri fondi",
});

code_list!(
    /// OpenCoesione's procedural state (`OC_STATO_PROCEDURALE`).
    ProceduralState, "state", {
    NonAvviato => "Non avviato",
    AvvioProgettazione => "In avvio di progettazione",
    CorsoProgettazione => "In corso di progettazione",
    Affidamento => "In affidamento",
    Esecuzione => "In esecuzione",
    Eseguito => "Eseguito",
    NonDeterminabile => "Non determinabile",
});

code_list!(
    /// Where a project's procedural state comes from, in order of precedence:
    /// set by hand (`project set --state`), stated (published by the source
    /// file, or entered with `project set --stated-state`), or derived from
    /// the actual phase dates by OpenCoesione's rule.
    StateBasis, "basis", {
    Override => "override",
    Stated => "stated",
    Derived => "derived",
});

code_list!(
    /// Procedural phases of a public work, in order.
    Phase, "phase", {
    StudioFattibilita => "STUDIO_FATT",
    ProgettoPreliminare => "PROG_PREL" | "PFTE",
    ProgettoDefinitivo => "PROG_DEF",
    ProgettoEsecutivo => "PROG_ESEC",
    Aggiudicazione => "AGG_BANDO",
    Stipula => "STIP_ATTRIB",
    Esecuzione => "ESECUZIONE",
    Collaudo => "COLLAUDO",
});

code_list!(
    /// The four sustainability dimensions of the PSM.
    Dimension, "dimension", {
    Governance => "governance",
    Environmental => "environmental" | "ambientale",
    Social => "social" | "sociale",
    Economic => "economic" | "economica",
});

/// A PNRR measure code such as `M5C2I2.2`, `M1C3I4.01`, `M1C2I5.01.01` or a
/// reform `M1C1R1.1`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PnrrMeasure(String);

impl PnrrMeasure {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn mission(&self) -> u8 {
        self.0.as_bytes()[1] - b'0'
    }
}

impl FromStr for PnrrMeasure {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, FieldError> {
        let t: String = s.trim().chars().filter(|c| !c.is_whitespace()).collect();
        let t = t.to_uppercase();
        let bad = || {
            FieldError::new(
                "pnrr_measure",
                s,
                "expected a PNRR measure like M5C2I2.2, M1C3I4.01 or M1C1R1.1",
            )
        };
        let b = t.as_bytes();
        if b.len() < 6 || b[0] != b'M' || !(b'1'..=b'7').contains(&b[1]) || b[2] != b'C' {
            return Err(bad());
        }
        let rest = &t[3..];
        let kind = rest.find(['I', 'R']).ok_or_else(bad)?;
        let (component, number) = (&rest[..kind], &rest[kind + 1..]);
        let component_ok = !component.is_empty() && component.bytes().all(|c| c.is_ascii_digit());
        let parts: Vec<&str> = number.split('.').collect();
        let number_ok = (1..=3).contains(&parts.len())
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.len() <= 2 && p.bytes().all(|c| c.is_ascii_digit()));
        if component_ok && number_ok {
            Ok(PnrrMeasure(t))
        } else {
            Err(bad())
        }
    }
}

impl fmt::Display for PnrrMeasure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl Serialize for PnrrMeasure {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PnrrMeasure {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Where a project is: a comune with its share, or national (`comune: None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    pub comune: Option<String>,
    /// Share in hundredths of a percent (10000 = 100 %).
    pub share_bp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundingLine {
    pub source: FundingSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub programme: Option<String>,
    pub amount_cents: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseDates {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_start: Option<Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_end: Option<Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual_start: Option<Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actual_end: Option<Date>,
}

impl PhaseDates {
    fn any_actual(&self) -> bool {
        self.actual_start.is_some() || self.actual_end.is_some()
    }

    fn any(&self) -> bool {
        self.any_actual() || self.planned_start.is_some() || self.planned_end.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Milestone {
    pub code: String,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Due date (a quarter is stored as its last day).
    pub due: Date,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub achieved_date: Option<Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub achieved_value: Option<String>,
}

/// One investment project of a comune.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Project {
    #[serde(skip)]
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cup: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_code: Option<String>,
    /// Key used by imports to find the project again (source-specific).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import_key: Option<String>,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub implementing_body: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub locations: BTreeMap<String, Location>,
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub psm_links: BTreeSet<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub sdgs: BTreeSet<u8>,
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub dimensions: BTreeSet<Dimension>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pnrr_measure: Option<PnrrMeasure>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub funding: BTreeMap<String, FundingLine>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_cents: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub financed_cents: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committed_cents: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_cents: Option<i64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub phases: BTreeMap<Phase, PhaseDates>,
    /// The state set by hand; wins over the stated and the derived state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_override: Option<ProceduralState>,
    /// The state the source publishes (OpenCoesione `OC_STATO_PROCEDURALE`);
    /// used instead of the phase dates, which real extracts often lack.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stated_state: Option<ProceduralState>,
    /// Columns of the source file kept as published, by normalised header
    /// (e.g. `oc_stato_progetto`, `stato avanzamento progetto`), for values
    /// the typed model has no field for. See `import.rs` for the list.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub source_fields: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub milestones: BTreeMap<String, Milestone>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub physical_progress_pct: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub officer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub archived: bool,
    /// Shown on the public portal and in open data (`project publish`);
    /// absent (a draft) unless the office published it, so that nothing
    /// becomes public by accident.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub published: bool,
    pub created_ms: i64,
}

impl Project {
    /// The procedural state: the override if set, else the stated state,
    /// else derived from the phase dates ([`Project::derived_state`]).
    pub fn procedural_state(&self) -> ProceduralState {
        self.state_and_basis().0
    }

    /// The procedural state and where it comes from.
    pub fn state_and_basis(&self) -> (ProceduralState, StateBasis) {
        match (self.state_override, self.stated_state) {
            (Some(s), _) => (s, StateBasis::Override),
            (None, Some(s)) => (s, StateBasis::Stated),
            (None, None) => (self.derived_state(), StateBasis::Derived),
        }
    }

    /// The state derived from the actual phase dates by OpenCoesione's
    /// rule (first match wins).
    pub fn derived_state(&self) -> ProceduralState {
        let phase = |p: Phase| self.phases.get(&p).cloned().unwrap_or_default();
        let execution = phase(Phase::Esecuzione);
        let contract = phase(Phase::Stipula);
        let design = [
            Phase::ProgettoPreliminare,
            Phase::ProgettoDefinitivo,
            Phase::ProgettoEsecutivo,
        ];
        if execution.actual_end.is_some() {
            ProceduralState::Eseguito
        } else if execution.actual_start.is_some() || contract.actual_end.is_some() {
            ProceduralState::Esecuzione
        } else if contract.actual_start.is_some() || phase(Phase::Aggiudicazione).any_actual() {
            ProceduralState::Affidamento
        } else if design.iter().any(|p| phase(*p).any()) {
            ProceduralState::CorsoProgettazione
        } else if phase(Phase::StudioFattibilita).any() {
            ProceduralState::AvvioProgettazione
        } else {
            ProceduralState::NonAvviato
        }
    }

    /// Checks the invariants a project must hold before it is stored.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.title.trim().is_empty() {
            return Err(FieldError::new("title", &self.title, "must not be empty"));
        }
        if let Some(cup) = &self.cup {
            cup.parse::<accordo_protocol::codes::Cup>()
                .map_err(|e| FieldError::new("cup", cup, e.to_string()))?;
        }
        for sdg in &self.sdgs {
            if !(1..=17).contains(sdg) {
                return Err(FieldError::new(
                    "sdg",
                    &sdg.to_string(),
                    "expected an integer 1..=17",
                ));
            }
        }
        if let Some(p) = self.physical_progress_pct {
            if !(0..=100).contains(&p) {
                return Err(FieldError::new(
                    "progress",
                    &p.to_string(),
                    "expected a percentage 0..=100",
                ));
            }
        }
        for (name, v) in [
            ("financed", self.financed_cents),
            ("committed", self.committed_cents),
            ("paid", self.paid_cents),
            ("cost", self.cost_cents),
        ] {
            if let Some(v) = v.filter(|v| *v < 0) {
                return Err(FieldError::new(
                    name,
                    &v.to_string(),
                    "must not be negative",
                ));
            }
        }
        for loc in self.locations.values() {
            if let Some(c) = &loc.comune {
                c.parse::<accordo_protocol::codes::Istat>()
                    .map_err(|e| FieldError::new("location", c, e.to_string()))?;
            }
            if !(0..=10_000).contains(&loc.share_bp) {
                return Err(FieldError::new(
                    "location",
                    &loc.share_bp.to_string(),
                    "share must be 0..=100 %",
                ));
            }
        }
        Ok(())
    }

    /// Sum of the funding lines.
    pub fn funding_total_cents(&self) -> i64 {
        self.funding.values().map(|f| f.amount_cents).sum()
    }
}

/// Parses an SDG number 1..=17.
pub fn parse_sdg(s: &str) -> Result<u8, FieldError> {
    s.trim()
        .parse::<u8>()
        .ok()
        .filter(|n| (1..=17).contains(n))
        .ok_or_else(|| FieldError::new("sdg", s, "expected an integer 1..=17"))
}

/// Parses a due quarter (`2026-Q2`, stored as the quarter's last day) or a date.
pub fn parse_due(field: &str, s: &str) -> Result<Date, FieldError> {
    let t = s.trim().to_uppercase();
    if let Some((y, q)) = t.split_once("-Q") {
        let year: u16 = y
            .parse()
            .map_err(|_| FieldError::new(field, s, "expected YYYY-Qn or a date"))?;
        let (month, day) = match q {
            "1" => (3, 31),
            "2" => (6, 30),
            "3" => (9, 30),
            "4" => (12, 31),
            _ => return Err(FieldError::new(field, s, "quarter must be Q1..Q4")),
        };
        return Date::new(year, month, day)
            .ok_or_else(|| FieldError::new(field, s, "year out of range"));
    }
    Date::parse_any(field, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pnrr_measures_parse_in_their_real_forms() {
        for ok in [
            "M5C2I2.2",
            "m1c3i4.01",
            "M1C2I5.01.01",
            "M1C1R1.1",
            " M5C2 I2.2 ",
        ] {
            let m: PnrrMeasure = ok.parse().unwrap();
            assert_eq!(m.to_string().parse::<PnrrMeasure>().unwrap(), m);
        }
        assert_eq!("M5C2I2.2".parse::<PnrrMeasure>().unwrap().mission(), 5);
        for bad in [
            "",
            "M9C2I2.2",
            "M5X2I2.2",
            "M5C2I",
            "M5C2I2.2.3.4",
            "M5C2Q2.2",
            "5C2I2.2",
        ] {
            let e = bad.parse::<PnrrMeasure>().unwrap_err();
            assert_eq!(e.field, "pnrr_measure", "{bad}");
        }
    }

    #[test]
    fn dates_parse_in_three_forms_and_refuse_impossible_days() {
        let d = Date::new(2024, 2, 29).unwrap();
        for s in ["2024-02-29", "29/02/2024", "20240229"] {
            assert_eq!(Date::parse_any("d", s).unwrap(), d);
        }
        for bad in [
            "2023-02-29",
            "31/04/2024",
            "2024-13-01",
            "20241",
            "ieri",
            "2é24-01-0",
        ] {
            assert!(Date::parse_any("d", bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_due("due", "2026-Q2").unwrap().to_string(),
            "2026-06-30"
        );
        assert!(parse_due("due", "2026-Q5").is_err());
    }

    fn with_phase(p: Phase, dates: PhaseDates) -> Project {
        let mut project = Project::default();
        project.phases.insert(p, dates);
        project
    }

    fn actual(start: bool, end: bool) -> PhaseDates {
        let d = Date::new(2024, 1, 1);
        PhaseDates {
            actual_start: if start { d } else { None },
            actual_end: if end { d } else { None },
            ..PhaseDates::default()
        }
    }

    #[test]
    fn procedural_state_follows_opencoesione_first_match_rule() {
        use ProceduralState::*;
        assert_eq!(Project::default().procedural_state(), NonAvviato);
        let cases = [
            (
                Phase::StudioFattibilita,
                actual(true, false),
                AvvioProgettazione,
            ),
            (
                Phase::ProgettoEsecutivo,
                actual(true, false),
                CorsoProgettazione,
            ),
            (Phase::Stipula, actual(true, false), Affidamento),
            (Phase::Stipula, actual(true, true), Esecuzione),
            (Phase::Esecuzione, actual(true, false), Esecuzione),
            (Phase::Esecuzione, actual(true, true), Eseguito),
        ];
        for (phase, dates, want) in cases {
            assert_eq!(with_phase(phase, dates).procedural_state(), want, "{phase}");
        }
        let mut p = with_phase(Phase::Esecuzione, actual(true, true));
        p.state_override = Some(NonDeterminabile);
        assert_eq!(p.procedural_state(), NonDeterminabile);
    }

    #[test]
    fn override_beats_stated_which_beats_the_phase_dates() {
        use ProceduralState::*;
        let mut p = with_phase(Phase::Esecuzione, actual(true, true));
        assert_eq!(p.state_and_basis(), (Eseguito, StateBasis::Derived));
        p.stated_state = Some(Esecuzione);
        assert_eq!(p.state_and_basis(), (Esecuzione, StateBasis::Stated));
        assert_eq!(p.derived_state(), Eseguito, "the dates still say");
        p.state_override = Some(Affidamento);
        assert_eq!(p.state_and_basis(), (Affidamento, StateBasis::Override));
    }

    #[test]
    fn code_lists_accept_spellings_and_name_the_field_when_refusing() {
        assert_eq!("fse".parse::<FundingSource>().unwrap(), FundingSource::Fse);
        assert_eq!(
            "Fondo Sviluppo e Coesione"
                .parse::<FundingSource>()
                .unwrap(),
            FundingSource::Fsc
        );
        let e = "FOO".parse::<FundingSource>().unwrap_err();
        assert!(
            e.to_string()
                .starts_with("source: expected one of PNRR, PNC"),
            "{e}"
        );
        assert_eq!("sociale".parse::<Dimension>().unwrap(), Dimension::Social);
        assert!(parse_sdg("18").unwrap_err().to_string().contains("1..=17"));
    }
}
