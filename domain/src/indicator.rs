//! Indicators: the catalog (in the plan document, written by the
//! metropolitan office) and each territory's baseline, target and periodic
//! observations (in the comune's document; metro-level ones in the plan).
//!
//! Each observation is its own root entry `observation/<code>/<period>`
//! (periods `2024`, `2024-Q3`, `2024-06`), and baseline and target are
//! `baseline/<code>` and `target/<code>`: two offices recording different
//! periods concurrently both survive a merge, and no container is ever
//! created concurrently.

use super::codec::{self, CodecError};
use super::model::{Dimension, FieldError};
use automerge::AutoCommit;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const DEF_PREFIX: &str = "indicator/";
const OBSERVATION_PREFIX: &str = "observation/";
const BASELINE_PREFIX: &str = "baseline/";
const TARGET_PREFIX: &str = "target/";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IndicatorDef {
    #[serde(skip)]
    pub code: String,
    pub name_it: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name_en: Option<String>,
    /// BES domain 1..=12.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bes_domain: Option<u8>,
    pub unit: String,
    /// +1 higher is better, -1 lower is better, 0 neutral.
    pub polarity: i8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimension: Option<Dimension>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdg: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency: Option<String>,
    /// Shown on the public portal and in open data (`indicator publish`);
    /// a draft unless the metropolitan office published it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub published: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub value: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    pub period: String,
    pub value: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IndicatorData {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Reference>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub observations: BTreeMap<String, Observation>,
}

impl IndicatorData {
    /// The observation of the latest period (periods sort as text: `2024` <
    /// `2024-Q3` < `2025`).
    pub fn latest(&self) -> Option<(&String, &Observation)> {
        self.observations.iter().next_back()
    }
}

/// Checks a period: a year, a quarter `YYYY-Qn` or a month `YYYY-MM`.
pub fn parse_period(s: &str) -> Result<String, FieldError> {
    let t = s.trim().to_uppercase();
    let bad = || FieldError::new("period", s, "expected YYYY, YYYY-Qn or YYYY-MM");
    let year_ok = |y: &str| y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit());
    match t.split_once('-') {
        None if year_ok(&t) => Ok(t),
        Some((y, q)) if year_ok(y) && matches!(q, "Q1" | "Q2" | "Q3" | "Q4") => Ok(t),
        Some((y, m))
            if year_ok(y)
                && m.parse::<u8>().is_ok_and(|m| (1..=12).contains(&m))
                && m.len() == 2 =>
        {
            Ok(t)
        }
        _ => Err(bad()),
    }
}

/// Parses an indicator value: decimal point or Italian decimal comma.
pub fn parse_value(field: &str, s: &str) -> Result<f64, FieldError> {
    let t = s.trim();
    let normal = if t.contains(',') {
        t.replace('.', "").replace(',', ".")
    } else {
        t.to_owned()
    };
    normal
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| FieldError::new(field, s, "expected a number such as 12.5 or 12,5"))
}

/// Progress from baseline towards target, as a fraction (1.0 = target met),
/// taking polarity into account: moving in the wrong direction is negative.
/// `None` for neutral indicators or when target equals baseline.
pub fn progress(baseline: f64, target: f64, latest: f64, polarity: i8) -> Option<f64> {
    if polarity == 0 || (target - baseline).abs() < f64::EPSILON {
        return None;
    }
    // A target set against the indicator's polarity still measures the
    // distance covered towards it; the sign says whether it was towards.
    Some((latest - baseline) / (target - baseline))
}

pub fn definitions(doc: &AutoCommit) -> Vec<IndicatorDef> {
    codec::root_maps_with_prefix(doc, DEF_PREFIX)
        .into_iter()
        .filter_map(|(code, obj)| {
            let mut d: IndicatorDef = codec::read_typed(doc, &obj, &code).ok()?;
            d.code = code;
            Some(d)
        })
        .collect()
}

pub fn save_definition(doc: &mut AutoCommit, def: &IndicatorDef) -> Result<(), CodecError> {
    let old = definitions(doc).into_iter().find(|d| d.code == def.code);
    codec::stamp_schema(doc)?;
    let obj = codec::root_map(doc, &format!("{DEF_PREFIX}{}", def.code))?;
    let before = old.as_ref().map(codec::to_object).unwrap_or_default();
    codec::reconcile(doc, &obj, &before, &codec::to_object(def))
}

/// Every indicator's data held in this document.
pub fn data(doc: &AutoCommit) -> BTreeMap<String, IndicatorData> {
    let mut out: BTreeMap<String, IndicatorData> = BTreeMap::new();
    for (code, obj) in codec::root_maps_with_prefix(doc, BASELINE_PREFIX) {
        if let Ok(r) = codec::read_typed::<Reference>(doc, &obj, &code) {
            out.entry(code).or_default().baseline = Some(r);
        }
    }
    for (code, obj) in codec::root_maps_with_prefix(doc, TARGET_PREFIX) {
        if let Ok(r) = codec::read_typed::<Reference>(doc, &obj, &code) {
            out.entry(code).or_default().target = Some(r);
        }
    }
    for (key, obj) in codec::root_maps_with_prefix(doc, OBSERVATION_PREFIX) {
        let Some((code, period)) = key.rsplit_once('/') else {
            continue;
        };
        if let Ok(o) = codec::read_typed::<Observation>(doc, &obj, &key) {
            out.entry(code.to_owned())
                .or_default()
                .observations
                .insert(period.to_owned(), o);
        }
    }
    out
}

fn put_record<T: Serialize>(doc: &mut AutoCommit, key: &str, value: &T) -> Result<(), CodecError> {
    codec::stamp_schema(doc)?;
    let existing = codec::find_root_map(doc, key);
    let obj = codec::root_map(doc, key)?;
    let before = match existing {
        Some(o) => codec::unflatten(&codec::read_flat(doc, &o)),
        None => serde_json::Map::new(),
    };
    codec::reconcile(doc, &obj, &before, &codec::to_object(value))
}

pub fn set_baseline(doc: &mut AutoCommit, code: &str, r: &Reference) -> Result<(), CodecError> {
    put_record(doc, &format!("{BASELINE_PREFIX}{code}"), r)
}

pub fn set_target(doc: &mut AutoCommit, code: &str, r: &Reference) -> Result<(), CodecError> {
    put_record(doc, &format!("{TARGET_PREFIX}{code}"), r)
}

pub fn observe(
    doc: &mut AutoCommit,
    code: &str,
    period: &str,
    o: &Observation,
) -> Result<(), CodecError> {
    put_record(doc, &format!("{OBSERVATION_PREFIX}{code}/{period}"), o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_respects_polarity() {
        // Higher is better: from 40 towards 60, now 50 -> half way.
        assert_eq!(progress(40.0, 60.0, 50.0, 1), Some(0.5));
        // Lower is better: from 30 down to 20, now 25 -> half way.
        assert_eq!(progress(30.0, 20.0, 25.0, -1), Some(0.5));
        // Lower is better and it rose: negative progress.
        assert_eq!(progress(30.0, 20.0, 35.0, -1), Some(-0.5));
        assert_eq!(progress(1.0, 2.0, 3.0, 0), None);
        assert_eq!(progress(5.0, 5.0, 3.0, 1), None);
    }

    #[test]
    fn periods_and_values_are_checked() {
        assert_eq!(parse_period("2024-q3").unwrap(), "2024-Q3");
        assert_eq!(parse_period("2024-06").unwrap(), "2024-06");
        for bad in ["24", "2024-Q5", "2024-13", "2024-6"] {
            assert!(parse_period(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_value("v", "1.234,5").unwrap(), 1234.5);
        assert_eq!(parse_value("v", "12.5").unwrap(), 12.5);
        assert!(parse_value("v", "N/D").is_err());
    }

    #[test]
    fn concurrent_observations_of_different_periods_both_survive() {
        let mut a = AutoCommit::new();
        let mut b = a.fork();
        let obs = |v| Observation {
            value: v,
            flag: None,
        };
        set_baseline(
            &mut a,
            "07SIC001P",
            &Reference {
                period: "2020".into(),
                value: 1.0,
            },
        )
        .unwrap();
        observe(&mut a, "07SIC001P", "2023", &obs(2.0)).unwrap();
        observe(&mut b, "07SIC001P", "2024", &obs(3.0)).unwrap();
        a.merge(&mut b).unwrap();
        let d = &data(&a)["07SIC001P"];
        assert_eq!(d.observations.len(), 2);
        assert_eq!(d.latest().unwrap().0, "2024");
    }
}
