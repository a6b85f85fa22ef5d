//! What the report's figures are computed from, and no more: per comune the
//! money of its projects not archived (summed) and by funding source, and
//! per project its state and open milestones. Two sources produce it: typed
//! projects (`Facts::of` an [`Input`], as documents and the portal give
//! them), and the node's query store, which reads the sums from its summary
//! tables and the rest from a few columns, never decoding a whole project.
//! [`super::build_from`] turns either into the same report.

use super::{DocHeads, Input, Money};
use crate::indicator::{IndicatorData, IndicatorDef};
use crate::model::{Date, ProceduralState, Project, StateBasis};
use std::collections::BTreeMap;

/// The report's input, reduced to what its figures read.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub as_of: Date,
    /// Observations after this period are ignored (`2024` covers `2024-Q3`).
    pub period: Option<String>,
    /// Each comune document, in the order of `documents`.
    pub comuni: Vec<ComuneFacts>,
    pub catalog: Vec<IndicatorDef>,
    /// Indicator data per territory (a comune, or `metro`).
    pub indicator_data: Vec<(String, BTreeMap<String, IndicatorData>)>,
    /// Every document the data comes from, with the heads it was read at.
    pub documents: Vec<DocHeads>,
}

/// One comune's projects that are not archived.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ComuneFacts {
    pub comune: String,
    /// Their count and money summed as [`Money::add`] counts a project.
    pub money: Money,
    /// By funding source code: the amount of their lines of that source, and
    /// how many of them have at least one such line.
    pub sources: BTreeMap<String, (i64, usize)>,
    /// Each of them, in list order (document order: CUP, projects without
    /// one first, then id).
    pub projects: Vec<ProjectFacts>,
}

/// What the report reads of one project.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectFacts {
    pub id: String,
    pub cup: Option<String>,
    pub title: String,
    pub state: ProceduralState,
    pub basis: StateBasis,
    /// Its milestones not achieved, by id — all of them, or only those due
    /// before `as_of` (the only ones the report lists).
    pub open_milestones: Vec<OpenMilestone>,
}

/// A milestone not achieved.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenMilestone {
    pub id: String,
    pub code: String,
    pub description: String,
    pub due: Date,
}

impl Facts {
    /// The facts of typed input (documents as a replica materialises them,
    /// or the portal's published projects).
    pub fn of(input: &Input) -> Facts {
        Facts {
            as_of: input.as_of,
            period: input.period.clone(),
            comuni: input
                .comuni
                .iter()
                .map(|(c, projects)| ComuneFacts::of(c, projects))
                .collect(),
            catalog: input.catalog.clone(),
            indicator_data: input.indicator_data.clone(),
            documents: input.documents.clone(),
        }
    }
}

impl ComuneFacts {
    /// The facts of comune `comune`'s `projects` (in list order).
    pub fn of(comune: &str, projects: &[Project]) -> ComuneFacts {
        let mut out = ComuneFacts {
            comune: comune.to_owned(),
            ..ComuneFacts::default()
        };
        for p in projects.iter().filter(|p| !p.archived) {
            out.money.add(p);
            let mut seen: Vec<&str> = Vec::new();
            for f in p.funding.values() {
                let code = f.source.code();
                let e = out.sources.entry(code.to_owned()).or_default();
                e.0 += f.amount_cents;
                if !seen.contains(&code) {
                    seen.push(code);
                    e.1 += 1;
                }
            }
            out.projects.push(ProjectFacts::of(p));
        }
        out
    }
}

impl ProjectFacts {
    pub fn of(p: &Project) -> ProjectFacts {
        let (state, basis) = p.state_and_basis();
        ProjectFacts {
            id: p.id.clone(),
            cup: p.cup.clone(),
            title: p.title.clone(),
            state,
            basis,
            open_milestones: p
                .milestones
                .iter()
                .filter(|(_, m)| m.achieved_date.is_none())
                .map(|(id, m)| OpenMilestone {
                    id: id.clone(),
                    code: m.code.clone(),
                    description: m.description.clone(),
                    due: m.due,
                })
                .collect(),
        }
    }
}

impl Money {
    /// Adds another sum.
    pub fn add_sum(&mut self, other: &Money) {
        self.projects += other.projects;
        self.financed_cents += other.financed_cents;
        self.committed_cents += other.committed_cents;
        self.paid_cents += other.paid_cents;
    }
}
