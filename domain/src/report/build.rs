//! Building the report: its input from documents, and the figures from the
//! input (totals, per comune, per source, per state, late milestones,
//! indicator progress).

use super::*;
use crate::comuni;
use crate::indicator::progress;
use crate::model::ProceduralState;
use accordo_protocol::doc::DocId;
use automerge::AutoCommit;

/// The report's input from documents (as a replica materialises them):
/// each comune's projects and indicator data, the plan's catalog and
/// metropolitan data; the registry holds neither. Every document is
/// recorded with its heads.
pub fn input(as_of: Date, period: Option<String>, docs: &mut [(DocId, AutoCommit)]) -> Input {
    let mut comuni = Vec::new();
    let mut indicator_data = Vec::new();
    let mut catalog = Vec::new();
    let mut documents = Vec::new();
    for (doc_id, doc) in docs {
        let mut heads: Vec<String> = doc.get_heads().iter().map(|h| h.to_string()).collect();
        heads.sort();
        documents.push(DocHeads {
            doc: doc_id.canonical(),
            heads,
        });
        match doc_id {
            DocId::Comune(c) => {
                comuni.push((c.to_string(), crate::portfolio::list(doc)));
                indicator_data.push((c.to_string(), crate::indicator::data(doc)));
            }
            DocId::Plan => {
                catalog = crate::indicator::definitions(doc);
                indicator_data.push(("metro".to_owned(), crate::indicator::data(doc)));
            }
            DocId::Registry => {}
        }
    }
    Input {
        as_of,
        period,
        comuni,
        catalog,
        indicator_data,
        documents,
    }
}

/// The report of `input`, stamped with the documents it came from and the
/// digest of its content.
pub fn build(input: &Input) -> Report {
    let mut totals = Money::default();
    let mut by_comune = Vec::new();
    let mut by_source: BTreeMap<String, (i64, usize)> = BTreeMap::new();
    let mut by_state: BTreeMap<ProceduralState, StateRow> = BTreeMap::new();
    let mut project_states = Vec::new();
    let mut late = Vec::new();
    for (comune, projects) in &input.comuni {
        let mut money = Money::default();
        for p in projects.iter().filter(|p| !p.archived) {
            money.add(p);
            totals.add(p);
            let (state, basis) = p.state_and_basis();
            by_state.entry(state).or_default().add(basis);
            project_states.push(ProjectState {
                comune: comune.clone(),
                project_id: p.id.clone(),
                cup: p.cup.clone(),
                title: p.title.clone(),
                state: state.code().to_owned(),
                basis: basis.code().to_owned(),
            });
            let mut sources: Vec<String> = Vec::new();
            for f in p.funding.values() {
                let e = by_source.entry(f.source.code().to_owned()).or_default();
                e.0 += f.amount_cents;
                if !sources.contains(&f.source.code().to_owned()) {
                    sources.push(f.source.code().to_owned());
                    e.1 += 1;
                }
            }
            late.extend(late_milestones(comune, p, input.as_of));
        }
        by_comune.push(ComuneRow {
            comune: comune.clone(),
            comune_name: comune_name(comune),
            money,
        });
    }
    let mut report = Report {
        as_of: input.as_of.to_string(),
        period: input.period.clone(),
        totals,
        by_comune,
        by_source: by_source
            .into_iter()
            .map(|(source, (amount_cents, projects))| SourceRow {
                source,
                amount_cents,
                projects,
            })
            .collect(),
        by_state: by_state
            .into_iter()
            .map(|(s, row)| StateRow {
                state: s.code().to_owned(),
                ..row
            })
            .collect(),
        project_states,
        late_milestones: late,
        indicators: indicator_rows(input),
        computed_from: Stamp {
            documents: input.documents.clone(),
            digest: String::new(),
        },
    };
    // Invariant: a report is plain data with string keys, which always
    // serialises to a JSON value.
    let json = serde_json::to_value(&report).expect("a report serialises to JSON");
    report.computed_from.digest = digest_of_json(&json);
    report
}

fn late_milestones(comune: &str, p: &Project, as_of: Date) -> Vec<LateMilestone> {
    p.milestones
        .iter()
        .filter(|(_, m)| m.due < as_of && m.achieved_date.is_none())
        .map(|(mid, m)| LateMilestone {
            comune: comune.to_owned(),
            comune_name: comune_name(comune),
            project_id: p.id.clone(),
            cup: p.cup.clone(),
            title: p.title.clone(),
            milestone_id: mid.clone(),
            code: m.code.clone(),
            description: m.description.clone(),
            due: m.due.to_string(),
        })
        .collect()
}

fn comune_name(code: &str) -> Option<String> {
    comuni::name(code).map(str::to_owned)
}

fn within(period: &str, limit: &Option<String>) -> bool {
    limit
        .as_deref()
        .is_none_or(|l| period <= l || period.starts_with(l))
}

fn indicator_rows(input: &Input) -> Vec<IndicatorRow> {
    let mut rows = Vec::new();
    for def in &input.catalog {
        for (territory, data) in &input.indicator_data {
            let Some(d) = data.get(&def.code) else {
                continue;
            };
            let latest = d
                .observations
                .iter()
                .rev()
                .find(|(period, _)| within(period, &input.period))
                .map(|(period, o)| Latest {
                    period: period.clone(),
                    value: o.value,
                });
            let baseline = d.baseline.as_ref().map(|r| r.value);
            let target = d.target.as_ref().map(|r| r.value);
            let prog = match (baseline, target, &latest) {
                (Some(b), Some(t), Some(l)) => progress(b, t, l.value, def.polarity),
                _ => None,
            };
            rows.push(IndicatorRow {
                code: def.code.clone(),
                name: def.name_it.clone(),
                unit: def.unit.clone(),
                polarity: def.polarity,
                territory: territory.clone(),
                territory_name: comune_name(territory),
                baseline,
                target,
                latest,
                progress: prog,
            });
        }
    }
    rows
}
