//! Building the report: its input from documents, and the figures from the
//! input (totals, per comune, per source, per state, late milestones,
//! indicator progress).

use super::canonical;
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
    build_from(Facts::of(input))
}

/// The report of `facts` (from typed input, or read from a query store):
/// the same facts give the same report, byte for byte.
pub fn build_from(facts: Facts) -> Report {
    let Facts {
        as_of,
        period,
        comuni,
        catalog,
        indicator_data,
        documents,
    } = facts;
    let mut totals = Money::default();
    let mut by_comune = Vec::with_capacity(comuni.len());
    let mut by_source: BTreeMap<String, (i64, usize)> = BTreeMap::new();
    let mut by_state: BTreeMap<ProceduralState, StateRow> = BTreeMap::new();
    let mut project_states = Vec::new();
    let mut late = Vec::new();
    for c in comuni {
        totals.add_sum(&c.money);
        for (source, (amount, projects)) in c.sources {
            let e = by_source.entry(source).or_default();
            e.0 += amount;
            e.1 += projects;
        }
        let name = comune_name(&c.comune);
        for p in c.projects {
            by_state.entry(p.state).or_default().add(p.basis);
            for m in p.open_milestones.into_iter().filter(|m| m.due < as_of) {
                late.push(LateMilestone {
                    comune: c.comune.clone(),
                    comune_name: name.clone(),
                    project_id: p.id.clone(),
                    cup: p.cup.clone(),
                    title: p.title.clone(),
                    milestone_id: m.id,
                    code: m.code,
                    description: m.description,
                    due: m.due.to_string(),
                });
            }
            project_states.push(ProjectState {
                comune: c.comune.clone(),
                project_id: p.id,
                cup: p.cup,
                title: p.title,
                state: p.state.code().to_owned(),
                basis: p.basis.code().to_owned(),
            });
        }
        by_comune.push(ComuneRow {
            comune: c.comune,
            comune_name: name,
            money: c.money,
        });
    }
    let indicators = indicator_rows(&catalog, &indicator_data, &period);
    let mut report = Report {
        as_of: as_of.to_string(),
        period,
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
        indicators,
        computed_from: Stamp {
            documents,
            digest: String::new(),
        },
    };
    // Invariant: a report is plain data with string keys, which always
    // serialises to JSON. The digest field is blank here, as the digest
    // of a report file blanks it.
    report.computed_from.digest = canonical::digest(&report).expect("a report serialises to JSON");
    report
}

fn comune_name(code: &str) -> Option<String> {
    comuni::name(code).map(str::to_owned)
}

fn within(period: &str, limit: &Option<String>) -> bool {
    limit
        .as_deref()
        .is_none_or(|l| period <= l || period.starts_with(l))
}

fn indicator_rows(
    catalog: &[IndicatorDef],
    indicator_data: &[(String, BTreeMap<String, IndicatorData>)],
    limit: &Option<String>,
) -> Vec<IndicatorRow> {
    let mut rows = Vec::new();
    for def in catalog {
        for (territory, data) in indicator_data {
            let Some(d) = data.get(&def.code) else {
                continue;
            };
            let latest = d
                .observations
                .iter()
                .rev()
                .find(|(period, _)| within(period, limit))
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
