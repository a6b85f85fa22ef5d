//! The monitoring report of procedural and financial progress: totals, per
//! comune, per funding source, per procedural state, late milestones and
//! indicator progress — built from typed data only, rendered as JSON,
//! Markdown or a self-contained HTML page in Italian with SVG charts.
//!
//! `build` computes the figures, `render_md` and `render_html` print them,
//! and `stamp` says what they were computed from (every document with its
//! heads, and a digest of the content) so a report can be verified later.

mod build;
pub mod canonical;
mod facts;
mod render_html;
mod render_md;
mod stamp;

pub use build::{build, build_from, input};
pub use facts::{ComuneFacts, Facts, OpenMilestone, ProjectFacts};
pub use render_html::html;
pub use render_md::markdown;
pub use stamp::{
    differences, digest_of_json, parse_claim, Claim, Difference, DocHeads, Stamp, StampError,
};

use super::indicator::{IndicatorData, IndicatorDef};
use super::model::{Date, Project, StateBasis};
use serde::Serialize;
use std::collections::BTreeMap;

/// What the report is built from.
pub struct Input {
    pub as_of: Date,
    /// Observations after this period are ignored (`2024` covers `2024-Q3`).
    pub period: Option<String>,
    /// Each comune's projects.
    pub comuni: Vec<(String, Vec<Project>)>,
    pub catalog: Vec<IndicatorDef>,
    /// Indicator data per territory (a comune, or `metro`).
    pub indicator_data: Vec<(String, BTreeMap<String, IndicatorData>)>,
    /// Every document the data comes from, with the heads it was read at.
    pub documents: Vec<DocHeads>,
}

impl Input {
    /// Appends the input of further documents (same `as_of` and period):
    /// `input` over documents in turn, merged, equals `input` over all of
    /// them, so a caller may load one document at a time.
    pub fn merge(&mut self, part: Input) {
        debug_assert!(part.as_of == self.as_of && part.period == self.period);
        self.comuni.extend(part.comuni);
        self.indicator_data.extend(part.indicator_data);
        self.documents.extend(part.documents);
        if !part.catalog.is_empty() {
            self.catalog = part.catalog;
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Money {
    pub projects: usize,
    pub financed_cents: i64,
    pub committed_cents: i64,
    pub paid_cents: i64,
}

impl Money {
    /// Counts `p` and adds its money (financed: the stated amount, else its funding lines).
    pub fn add(&mut self, p: &Project) {
        self.projects += 1;
        self.financed_cents += p.financed_cents.unwrap_or_else(|| p.funding_total_cents());
        self.committed_cents += p.committed_cents.unwrap_or(0);
        self.paid_cents += p.paid_cents.unwrap_or(0);
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComuneRow {
    pub comune: String,
    /// From the ISTAT list; `None` for a code it does not hold.
    pub comune_name: Option<String>,
    #[serde(flatten)]
    pub money: Money,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceRow {
    pub source: String,
    pub amount_cents: i64,
    pub projects: usize,
}

/// Projects in one procedural state, and how many of them have it stated by
/// the source, derived from the phase dates, or set by hand.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StateRow {
    pub state: String,
    pub projects: usize,
    pub stated: usize,
    pub derived: usize,
    #[serde(rename = "override")]
    pub set_by_hand: usize,
}

impl StateRow {
    fn add(&mut self, basis: StateBasis) {
        self.projects += 1;
        match basis {
            StateBasis::Stated => self.stated += 1,
            StateBasis::Derived => self.derived += 1,
            StateBasis::Override => self.set_by_hand += 1,
        }
    }
}

/// One project's procedural state and where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectState {
    pub comune: String,
    pub project_id: String,
    pub cup: Option<String>,
    pub title: String,
    pub state: String,
    /// `stated`, `derived` or `override`.
    pub basis: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LateMilestone {
    pub comune: String,
    pub comune_name: Option<String>,
    pub project_id: String,
    pub cup: Option<String>,
    pub title: String,
    pub milestone_id: String,
    pub code: String,
    pub description: String,
    pub due: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Latest {
    pub period: String,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndicatorRow {
    pub code: String,
    pub name: String,
    pub unit: String,
    pub polarity: i8,
    pub territory: String,
    /// The comune's name when the territory is a comune.
    pub territory_name: Option<String>,
    pub baseline: Option<f64>,
    pub target: Option<f64>,
    pub latest: Option<Latest>,
    /// Fraction of the way from baseline to target (1 = met; negative =
    /// moved away), polarity considered.
    pub progress: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub as_of: String,
    pub period: Option<String>,
    pub totals: Money,
    pub by_comune: Vec<ComuneRow>,
    pub by_source: Vec<SourceRow>,
    pub by_state: Vec<StateRow>,
    /// Every counted project's state and its basis.
    pub project_states: Vec<ProjectState>,
    pub late_milestones: Vec<LateMilestone>,
    pub indicators: Vec<IndicatorRow>,
    /// What the figures were computed from, and their digest.
    pub computed_from: Stamp,
}

#[cfg(test)]
mod tests;
