//! The triennial sustainability report ("Bilancio di sostenibilità",
//! `report --kind sostenibilita --from YEAR --to YEAR`): per sustainability
//! dimension and SDG, each indicator's baseline, its latest value within the
//! years asked and the deviation, judged by the indicator's polarity; the
//! projects that contribute to each objective of the plan (through their
//! links to it or to its actions); the texts the metropolitan office wrote
//! (plan items of kind `text`, keyed by dimension, objective or `intro`).
//! Pure: typed data in, the report (stamped like the monitoring report) out.

pub mod render;

use crate::indicator::IndicatorData;
use crate::model::Dimension;
use crate::plan::PlanItem;
use crate::report::{digest_of_json, Input, Stamp};
use serde::Serialize;
use std::collections::BTreeMap;

/// How a deviation reads, given the indicator's polarity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Judgement {
    /// Moved the way the indicator's polarity calls better.
    Positive,
    Negative,
    /// No change since the baseline.
    Stable,
    /// A context indicator (polarity 0): no direction is better.
    Neutral,
    /// No baseline or no value in the years asked.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Value {
    pub period: String,
    pub value: f64,
}

/// One indicator in one territory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deviation {
    pub code: String,
    pub name: String,
    pub unit: String,
    pub polarity: i8,
    pub sdg: Option<u8>,
    pub territory: String,
    pub baseline: Option<Value>,
    pub latest: Option<Value>,
    pub target: Option<Value>,
    /// `latest - baseline`, in the indicator's unit.
    pub deviation: Option<f64>,
    pub judgement: Judgement,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DimensionSection {
    /// `governance`, `environmental`, `social`, `economic`, or `none`.
    pub dimension: String,
    pub text: Option<String>,
    pub indicators: Vec<Deviation>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SdgSection {
    pub sdg: u8,
    /// Codes of the indicators of this goal.
    pub indicators: Vec<String>,
    /// Projects stating this goal.
    pub projects: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectRef {
    pub comune: String,
    pub project_id: String,
    pub cup: Option<String>,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectiveSection {
    pub code: String,
    pub name: String,
    pub text: Option<String>,
    pub projects: Vec<ProjectRef>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sustainability {
    pub kind: &'static str,
    pub from: u16,
    pub to: u16,
    pub intro: Option<String>,
    pub dimensions: Vec<DimensionSection>,
    pub sdgs: Vec<SdgSection>,
    pub objectives: Vec<ObjectiveSection>,
    pub computed_from: Stamp,
}

/// The plan's parts the report needs.
pub struct Plan<'a> {
    pub objectives: &'a [PlanItem],
    pub actions: &'a [PlanItem],
    /// Texts of kind `text`, by code.
    pub texts: &'a [PlanItem],
}

fn year_of(period: &str) -> Option<u16> {
    period.get(..4)?.parse().ok()
}

/// The judgement of `deviation` for an indicator of `polarity`.
pub fn judge(deviation: Option<f64>, polarity: i8) -> Judgement {
    match deviation {
        None => Judgement::Unknown,
        Some(_) if polarity == 0 => Judgement::Neutral,
        Some(d) if d.abs() < 1e-12 => Judgement::Stable,
        Some(d) if (d > 0.0) == (polarity > 0) => Judgement::Positive,
        Some(_) => Judgement::Negative,
    }
}

fn deviation(
    def: &crate::indicator::IndicatorDef,
    territory: &str,
    d: &IndicatorData,
    from: u16,
    to: u16,
) -> Deviation {
    let latest = d
        .observations
        .iter()
        .rev()
        .find(|(p, _)| year_of(p).is_some_and(|y| (from..=to).contains(&y)))
        .map(|(p, o)| Value {
            period: p.clone(),
            value: o.value,
        });
    let reference = |r: &Option<crate::indicator::Reference>| {
        r.as_ref().map(|r| Value {
            period: r.period.clone(),
            value: r.value,
        })
    };
    let baseline = reference(&d.baseline);
    let dev = match (&baseline, &latest) {
        (Some(b), Some(l)) => Some(l.value - b.value),
        _ => None,
    };
    Deviation {
        code: def.code.clone(),
        name: def.name_it.clone(),
        unit: def.unit.clone(),
        polarity: def.polarity,
        sdg: def.sdg,
        territory: territory.to_owned(),
        baseline,
        latest,
        target: reference(&d.target),
        deviation: dev,
        judgement: judge(dev, def.polarity),
    }
}

/// The sustainability report of `input` for the years `from..=to`.
pub fn build(input: &Input, plan: &Plan<'_>, from: u16, to: u16) -> Sustainability {
    let text = |code: &str| {
        plan.texts
            .iter()
            .find(|t| t.code == code)
            .map(|t| t.name.clone())
    };
    let mut dimensions: Vec<DimensionSection> = Dimension::ALL
        .iter()
        .map(|d| d.code().to_owned())
        .chain(std::iter::once("none".to_owned()))
        .map(|dimension| DimensionSection {
            text: text(&dimension),
            dimension,
            indicators: Vec::new(),
        })
        .collect();
    let mut sdgs: BTreeMap<u8, SdgSection> = BTreeMap::new();
    for def in &input.catalog {
        let key = def.dimension.map_or("none", |d| d.code());
        for (territory, data) in &input.indicator_data {
            if let Some(d) = data.get(&def.code) {
                let row = deviation(def, territory, d, from, to);
                if let Some(s) = dimensions.iter_mut().find(|s| s.dimension == key) {
                    s.indicators.push(row);
                }
            }
        }
        if let Some(sdg) = def.sdg {
            let s = sdgs.entry(sdg).or_insert_with(|| SdgSection {
                sdg,
                indicators: Vec::new(),
                projects: 0,
            });
            s.indicators.push(def.code.clone());
        }
    }
    dimensions.retain(|s| !s.indicators.is_empty() || s.text.is_some());
    let live = || {
        input
            .comuni
            .iter()
            .flat_map(|(c, ps)| ps.iter().filter(|p| !p.archived).map(move |p| (c, p)))
    };
    for (_, p) in live() {
        for sdg in &p.sdgs {
            sdgs.entry(*sdg)
                .or_insert_with(|| SdgSection {
                    sdg: *sdg,
                    indicators: Vec::new(),
                    projects: 0,
                })
                .projects += 1;
        }
    }
    let objectives = plan
        .objectives
        .iter()
        .map(|o| {
            let mut codes = vec![o.code.as_str()];
            codes.extend(
                plan.actions
                    .iter()
                    .filter(|a| a.parent.as_deref() == Some(o.code.as_str()))
                    .map(|a| a.code.as_str()),
            );
            ObjectiveSection {
                code: o.code.clone(),
                name: o.name.clone(),
                text: text(&o.code),
                projects: live()
                    .filter(|(_, p)| codes.iter().any(|c| p.psm_links.contains(*c)))
                    .map(|(c, p)| ProjectRef {
                        comune: c.clone(),
                        project_id: p.id.clone(),
                        cup: p.cup.clone(),
                        title: p.title.clone(),
                    })
                    .collect(),
            }
        })
        .collect();
    let mut report = Sustainability {
        kind: "sostenibilita",
        from,
        to,
        intro: text("intro"),
        dimensions,
        sdgs: sdgs.into_values().collect(),
        objectives,
        computed_from: Stamp {
            documents: input.documents.clone(),
            digest: String::new(),
        },
    };
    // Invariant: plain data with string keys serialises to a JSON value.
    let json = serde_json::to_value(&report).expect("a report serialises to JSON");
    report.computed_from.digest = digest_of_json(&json);
    report
}

#[cfg(test)]
mod tests;
