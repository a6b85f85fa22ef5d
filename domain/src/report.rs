//! The monitoring report of procedural and financial progress: totals, per
//! comune, per funding source, per procedural state, late milestones and
//! indicator progress — built from typed data only, rendered as JSON,
//! Markdown or a self-contained HTML page in Italian with SVG charts.

use super::comuni;
use super::indicator::{progress, IndicatorData, IndicatorDef};
use super::model::{Date, ProceduralState, Project, StateBasis};
use crate::money::format_eur;
use accordo_protocol::doc::DocId;
use automerge::AutoCommit;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

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
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Money {
    pub projects: usize,
    pub financed_cents: i64,
    pub committed_cents: i64,
    pub paid_cents: i64,
}

impl Money {
    fn add(&mut self, p: &Project) {
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

/// Italian label of a state's basis, for Markdown and HTML.
fn basis_it(basis: &str) -> &'static str {
    match basis {
        "stated" => "dichiarato dalla fonte",
        "override" => "impostato a mano",
        _ => "derivato dalle date",
    }
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
}

/// The report's input from documents (as a replica materialises them):
/// each comune's projects and indicator data, the plan's catalog and
/// metropolitan data; the registry holds neither.
pub fn input(as_of: Date, period: Option<String>, docs: &[(DocId, AutoCommit)]) -> Input {
    let mut comuni = Vec::new();
    let mut indicator_data = Vec::new();
    let mut catalog = Vec::new();
    for (doc_id, doc) in docs {
        match doc_id {
            DocId::Comune(c) => {
                comuni.push((c.to_string(), crate::portfolio::list(doc)));
                indicator_data.push((c.to_string(), super::indicator::data(doc)));
            }
            DocId::Plan => {
                catalog = super::indicator::definitions(doc);
                indicator_data.push(("metro".to_owned(), super::indicator::data(doc)));
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
    }
}

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
    Report {
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
    }
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

/// `Cagliari (092009)` when the ISTAT list names the code, else the code.
fn shown(code: &str) -> String {
    comuni::label(code)
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

fn pct(part: i64, whole: i64) -> String {
    if whole == 0 {
        "-".into()
    } else {
        format!("{:.1} %", part as f64 * 100.0 / whole as f64)
    }
}

/// The one-line financial summary, in Italian.
fn summary(t: &Money) -> String {
    format!(
        "{} progetti · finanziato {} € · impegnato {} € ({}) · pagato {} € ({})",
        t.projects,
        format_eur(t.financed_cents),
        format_eur(t.committed_cents),
        pct(t.committed_cents, t.financed_cents),
        format_eur(t.paid_cents),
        pct(t.paid_cents, t.financed_cents)
    )
}

/// The report as Markdown (Italian headings).
pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Rapporto di monitoraggio al {}\n", r.as_of);
    let _ = writeln!(s, "{}\n", summary(&r.totals));
    s.push_str("## Avanzamento finanziario per comune\n\n| Comune | Progetti | Finanziato € | Impegnato € | Pagato € |\n|---|---:|---:|---:|---:|\n");
    for c in &r.by_comune {
        let m = &c.money;
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            shown(&c.comune),
            m.projects,
            format_eur(m.financed_cents),
            format_eur(m.committed_cents),
            format_eur(m.paid_cents)
        );
    }
    s.push_str(
        "\n## Fonti di finanziamento\n\n| Fonte | Importo € | Progetti |\n|---|---:|---:|\n",
    );
    for f in &r.by_source {
        let _ = writeln!(
            s,
            "| {} | {} | {} |",
            f.source,
            format_eur(f.amount_cents),
            f.projects
        );
    }
    s.push_str(&markdown_states(r));
    let _ = writeln!(
        s,
        "\n## Milestone in ritardo ({})\n",
        r.late_milestones.len()
    );
    for m in &r.late_milestones {
        let _ = writeln!(
            s,
            "- {} · {} {} — {} (scadenza {})",
            shown(&m.comune),
            m.cup.as_deref().unwrap_or("-"),
            m.code,
            m.description,
            m.due
        );
    }
    s.push_str("\n## Indicatori\n\n| Indicatore | Territorio | Baseline | Target | Ultimo valore | Avanzamento |\n|---|---|---:|---:|---:|---:|\n");
    for i in &r.indicators {
        let latest = i
            .latest
            .as_ref()
            .map(|l| format!("{} ({})", l.value, l.period))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            s,
            "| {} {} | {} | {} | {} | {} | {} |",
            i.code,
            i.name,
            shown(&i.territory),
            opt(i.baseline),
            opt(i.target),
            latest,
            i.progress
                .map(|p| format!("{:.0} %", p * 100.0))
                .unwrap_or_else(|| "-".into())
        );
    }
    s
}

/// The procedural-state breakdown (stated vs derived) and the per-project
/// list, as Markdown.
fn markdown_states(r: &Report) -> String {
    let mut s = String::from("\n## Stato procedurale\n\n| Stato | Progetti | Dichiarato dalla fonte | Derivato dalle date | Impostato a mano |\n|---|---:|---:|---:|---:|\n");
    for st in &r.by_state {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            st.state, st.projects, st.stated, st.derived, st.set_by_hand
        );
    }
    s.push_str("\n### Stato procedurale per progetto\n\n| Comune | CUP | Progetto | Stato | Origine |\n|---|---|---|---|---|\n");
    for p in &r.project_states {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            p.comune,
            p.cup.as_deref().unwrap_or("-"),
            p.title.replace('|', "\\|"),
            p.state,
            basis_it(&p.basis)
        );
    }
    s
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "-".into())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A horizontal bar chart: one row per label, one bar per series.
fn bars(title: &str, labels: &[String], series: &[(&str, &str, Vec<f64>)]) -> String {
    let max = series
        .iter()
        .flat_map(|(_, _, v)| v.iter().copied())
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let row_h = 8.0 + 14.0 * series.len() as f64;
    let height = 40.0 + row_h * labels.len() as f64 + 20.0;
    let mut svg = format!(
        "<figure><figcaption>{}</figcaption><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"720\" height=\"{height}\" role=\"img\" aria-label=\"{}\">",
        esc(title),
        esc(title)
    );
    for (i, label) in labels.iter().enumerate() {
        let y = 30.0 + row_h * i as f64;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{}\" font-size=\"12\">{}</text>",
            y + 12.0,
            esc(label)
        );
        for (k, (_, color, values)) in series.iter().enumerate() {
            let w = 480.0 * values.get(i).copied().unwrap_or(0.0) / max;
            let by = y + 14.0 * k as f64;
            let _ = write!(
                svg,
                "<rect x=\"200\" y=\"{by}\" width=\"{w:.1}\" height=\"12\" fill=\"{color}\"/>"
            );
        }
    }
    for (k, (name, color, _)) in series.iter().enumerate() {
        let x = 200.0 + 160.0 * k as f64;
        let _ = write!(svg, "<rect x=\"{x}\" y=\"4\" width=\"12\" height=\"12\" fill=\"{color}\"/><text x=\"{}\" y=\"14\" font-size=\"12\">{}</text>", x + 16.0, esc(name));
    }
    svg.push_str("</svg></figure>");
    svg
}

/// The report as one self-contained HTML page (Italian, inline SVG, no
/// external resources), readable offline.
pub fn html(r: &Report) -> String {
    let eur = |c: i64| c as f64 / 100.0;
    let labels: Vec<String> = r.by_comune.iter().map(|c| shown(&c.comune)).collect();
    let financial = bars(
        "Avanzamento finanziario per comune (€)",
        &labels,
        &[
            (
                "Finanziato",
                "#2b6cb0",
                r.by_comune
                    .iter()
                    .map(|c| eur(c.money.financed_cents))
                    .collect(),
            ),
            (
                "Impegnato",
                "#dd6b20",
                r.by_comune
                    .iter()
                    .map(|c| eur(c.money.committed_cents))
                    .collect(),
            ),
            (
                "Pagato",
                "#38a169",
                r.by_comune
                    .iter()
                    .map(|c| eur(c.money.paid_cents))
                    .collect(),
            ),
        ],
    );
    let sources = bars(
        "Importi per fonte di finanziamento (€)",
        &r.by_source
            .iter()
            .map(|s| s.source.clone())
            .collect::<Vec<_>>(),
        &[(
            "Importo",
            "#2b6cb0",
            r.by_source.iter().map(|s| eur(s.amount_cents)).collect(),
        )],
    );
    let states = bars(
        "Progetti per stato procedurale",
        &r.by_state
            .iter()
            .map(|s| s.state.clone())
            .collect::<Vec<_>>(),
        &[(
            "Progetti",
            "#805ad5",
            r.by_state.iter().map(|s| s.projects as f64).collect(),
        )],
    );
    let indicators = bars(
        "Avanzamento degli indicatori verso il target (%)",
        &r.indicators
            .iter()
            .map(|i| format!("{} · {}", i.code, shown(&i.territory)))
            .collect::<Vec<_>>(),
        &[(
            "Avanzamento",
            "#38a169",
            r.indicators
                .iter()
                .map(|i| i.progress.unwrap_or(0.0).max(0.0) * 100.0)
                .collect(),
        )],
    );
    let body = markdown_tables_html(r);
    format!(
        "<!doctype html><html lang=\"it\"><head><meta charset=\"utf-8\"><title>Rapporto di monitoraggio al {}</title><style>body{{font-family:sans-serif;max-width:960px;margin:2em auto;color:#1a202c}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #cbd5e0;padding:4px 8px}}td.n{{text-align:right}}figcaption{{font-weight:bold;margin:1em 0 .5em}}</style></head><body><h1>Rapporto di monitoraggio al {}</h1>{}{}{}{}{}</body></html>\n",
        r.as_of, r.as_of, body, financial, sources, states, indicators
    )
}

fn markdown_tables_html(r: &Report) -> String {
    let mut s = format!("<p>{}</p>", esc(&summary(&r.totals)));
    s.push_str("<h2>Per comune</h2><table><tr><th>Comune</th><th>Progetti</th><th>Finanziato €</th><th>Impegnato €</th><th>Pagato €</th></tr>");
    for c in &r.by_comune {
        let m = &c.money;
        let _ = write!(s, "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>", esc(&shown(&c.comune)), m.projects, format_eur(m.financed_cents), format_eur(m.committed_cents), format_eur(m.paid_cents));
    }
    s.push_str("</table>");
    s.push_str(&html_states(r));
    let _ = write!(
        s,
        "<h2>Milestone in ritardo ({})</h2><ul>",
        r.late_milestones.len()
    );
    for m in &r.late_milestones {
        let _ = write!(
            s,
            "<li>{} · {} {} — {} (scadenza {})</li>",
            esc(&shown(&m.comune)),
            esc(m.cup.as_deref().unwrap_or("-")),
            esc(&m.code),
            esc(&m.description),
            m.due
        );
    }
    s.push_str("</ul>");
    s
}

/// The procedural-state breakdown and per-project list, as HTML tables.
fn html_states(r: &Report) -> String {
    let mut s = String::from("<h2>Stato procedurale</h2><table><tr><th>Stato</th><th>Progetti</th><th>Dichiarato dalla fonte</th><th>Derivato dalle date</th><th>Impostato a mano</th></tr>");
    for st in &r.by_state {
        let _ = write!(s, "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td></tr>", esc(&st.state), st.projects, st.stated, st.derived, st.set_by_hand);
    }
    s.push_str("</table><h3>Stato procedurale per progetto</h3><table><tr><th>Comune</th><th>CUP</th><th>Progetto</th><th>Stato</th><th>Origine</th></tr>");
    for p in &r.project_states {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&p.comune),
            esc(p.cup.as_deref().unwrap_or("-")),
            esc(&p.title),
            esc(&p.state),
            basis_it(&p.basis)
        );
    }
    s.push_str("</table>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicator::{Observation, Reference};
    use crate::model::{FundingLine, FundingSource, Milestone, Phase, PhaseDates};

    fn project(id: &str, financed: i64, paid: i64, source: FundingSource) -> Project {
        let mut p = Project {
            id: id.into(),
            title: format!("Progetto {id}"),
            financed_cents: Some(financed),
            committed_cents: Some(paid * 2),
            paid_cents: Some(paid),
            ..Project::default()
        };
        p.funding.insert(
            "f".into(),
            FundingLine {
                source,
                programme: None,
                amount_cents: financed,
            },
        );
        p
    }

    #[test]
    fn totals_sources_states_late_milestones_and_indicators() {
        let mut a = project("a", 10000, 1000, FundingSource::Pnrr);
        a.milestones.insert(
            "m1".into(),
            Milestone {
                code: "T1".into(),
                description: "Aggiudicazione".into(),
                unit: None,
                baseline: None,
                target: None,
                due: Date::new(2024, 3, 31).unwrap(),
                achieved_date: None,
                achieved_value: None,
            },
        );
        a.phases.insert(
            Phase::Esecuzione,
            PhaseDates {
                actual_start: Date::new(2024, 1, 1),
                ..PhaseDates::default()
            },
        );
        let b = project("b", 5000, 0, FundingSource::Fsc);
        let mut archived = project("c", 100000, 0, FundingSource::Pnrr);
        archived.archived = true;
        let mut data = BTreeMap::new();
        let mut d = IndicatorData {
            baseline: Some(Reference {
                period: "2020".into(),
                value: 30.0,
            }),
            target: Some(Reference {
                period: "2026".into(),
                value: 20.0,
            }),
            ..IndicatorData::default()
        };
        d.observations.insert(
            "2023".into(),
            Observation {
                value: 25.0,
                flag: None,
            },
        );
        d.observations.insert(
            "2025".into(),
            Observation {
                value: 22.0,
                flag: None,
            },
        );
        data.insert("10AMB016".to_owned(), d);
        let input = Input {
            as_of: Date::new(2024, 6, 30).unwrap(),
            period: Some("2024".into()),
            comuni: vec![
                ("092009".into(), vec![a, archived]),
                ("092051".into(), vec![b]),
            ],
            catalog: vec![IndicatorDef {
                code: "10AMB016".into(),
                name_it: "Rifiuti".into(),
                unit: "%".into(),
                polarity: -1,
                ..IndicatorDef::default()
            }],
            indicator_data: vec![("092009".into(), data)],
        };
        let r = build(&input);
        assert_eq!(
            r.totals,
            Money {
                projects: 2,
                financed_cents: 15000,
                committed_cents: 2000,
                paid_cents: 1000
            }
        );
        assert_eq!(
            r.by_source
                .iter()
                .map(|s| (s.source.as_str(), s.amount_cents))
                .collect::<Vec<_>>(),
            vec![("FSC", 5000), ("PNRR", 10000)]
        );
        assert_eq!(
            r.by_state
                .iter()
                .map(|s| (s.state.as_str(), s.projects))
                .collect::<Vec<_>>(),
            vec![("Non avviato", 1), ("In esecuzione", 1)]
        );
        assert!(r.by_state.iter().all(|s| s.derived == s.projects));
        assert_eq!(r.late_milestones.len(), 1);
        let i = &r.indicators[0];
        assert_eq!(
            i.latest.as_ref().unwrap().period,
            "2023",
            "2025 is after the period"
        );
        assert_eq!(i.progress, Some(0.5));
        let page = html(&r);
        assert!(
            page.contains("<svg") && page.contains("lang=\"it\"") && !page.contains("http://")
                || page.contains("xmlns=\"http://www.w3.org/2000/svg\"")
        );
        assert!(
            !page.contains("<script") && !page.contains("src="),
            "self-contained"
        );
        let md = markdown(&r);
        assert!(md.contains("| Cagliari (092009) | 1 | 100,00 |"), "{md}");
        assert!(md.contains("- Cagliari (092009) · "), "{md}");
        assert!(
            page.contains("<td>Quartu Sant'Elena (092051)</td>"),
            "{page}"
        );
        assert_eq!(
            r.by_comune[1].comune_name.as_deref(),
            Some("Quartu Sant'Elena")
        );
        assert_eq!(r.indicators[0].territory_name.as_deref(), Some("Cagliari"));
    }
}

#[cfg(test)]
mod states {
    use super::*;

    fn input(projects: Vec<Project>) -> Input {
        Input {
            as_of: Date::new(2025, 1, 1).unwrap(),
            period: None,
            comuni: vec![("092009".into(), projects)],
            catalog: vec![],
            indicator_data: vec![],
        }
    }

    /// The breakdown counts a stated state as stated even without phase
    /// dates, and says per project whether it was stated, derived or set.
    #[test]
    fn the_breakdown_and_each_project_say_stated_derived_or_override() {
        let p = |id: &str, stated, forced| Project {
            id: id.into(),
            title: format!("P {id}"),
            stated_state: stated,
            state_override: forced,
            ..Project::default()
        };
        let r = build(&input(vec![
            p("a", Some(ProceduralState::Esecuzione), None),
            p("b", None, None),
            p("c", Some(ProceduralState::Esecuzione), None),
            p(
                "d",
                Some(ProceduralState::NonAvviato),
                Some(ProceduralState::Esecuzione),
            ),
        ]));
        let rows: Vec<(&str, usize, usize, usize, usize)> = r
            .by_state
            .iter()
            .map(|s| {
                (
                    s.state.as_str(),
                    s.projects,
                    s.stated,
                    s.derived,
                    s.set_by_hand,
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![("Non avviato", 1, 0, 1, 0), ("In esecuzione", 3, 2, 0, 1)]
        );
        let bases: Vec<(&str, &str)> = r
            .project_states
            .iter()
            .map(|s| (s.project_id.as_str(), s.basis.as_str()))
            .collect();
        assert_eq!(
            bases,
            vec![
                ("a", "stated"),
                ("b", "derived"),
                ("c", "stated"),
                ("d", "override")
            ]
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["by_state"][1]["override"], 1);
        let md = markdown(&r);
        assert!(md.contains("| In esecuzione | 3 | 2 | 0 | 1 |"), "{md}");
        assert!(
            md.contains("| 092009 | - | P a | In esecuzione | dichiarato dalla fonte |"),
            "{md}"
        );
        assert!(html(&r).contains("<td>P b</td><td>Non avviato</td><td>derivato dalle date</td>"));
    }
}

#[cfg(test)]
mod convergence {
    use super::*;
    use crate::model::{FundingLine, FundingSource};
    use crate::portfolio;
    use automerge::AutoCommit;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Edit {
        Add(u8),
        Finance(u8, i64),
        Fund(u8, u8, i64),
        Unfund(u8),
        Archive(u8),
    }

    fn arb_edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            (0u8..4).prop_map(Edit::Add),
            (0u8..4, 0i64..1_000_000).prop_map(|(p, v)| Edit::Finance(p, v)),
            (0u8..4, 0u8..3, 0i64..1_000_000).prop_map(|(p, s, v)| Edit::Fund(p, s, v)),
            (0u8..4).prop_map(Edit::Unfund),
            (0u8..4).prop_map(Edit::Archive),
        ]
    }

    fn apply(doc: &mut AutoCommit, edit: &Edit, actor: u8) {
        let pid = |p: u8| format!("p{p}");
        let existing = |doc: &AutoCommit, p: u8| portfolio::get(doc, &pid(p)).ok();
        match edit {
            Edit::Add(p) if existing(doc, *p).is_none() => {
                let new = Project {
                    id: pid(*p),
                    title: format!("P{p}"),
                    ..Project::default()
                };
                portfolio::save(doc, None, &new).unwrap();
            }
            Edit::Finance(p, _) | Edit::Fund(p, _, _) | Edit::Unfund(p) | Edit::Archive(p)
                if existing(doc, *p).is_some() =>
            {
                let old = existing(doc, *p).unwrap();
                let mut new = old.clone();
                match edit {
                    Edit::Finance(_, v) => new.financed_cents = Some(*v),
                    Edit::Fund(_, s, v) => {
                        let source = FundingSource::ALL[*s as usize];
                        new.funding.insert(
                            format!("{actor}-{s}"),
                            FundingLine {
                                source,
                                programme: None,
                                amount_cents: *v,
                            },
                        );
                    }
                    Edit::Unfund(_) => {
                        let first = new.funding.keys().next().cloned();
                        if let Some(k) = first {
                            new.funding.remove(&k);
                        }
                    }
                    _ => new.archived = !new.archived,
                }
                portfolio::save(doc, Some(&old), &new).unwrap();
            }
            _ => {}
        }
        doc.commit();
    }

    fn report_of(doc: &AutoCommit) -> Report {
        build(&Input {
            as_of: Date::new(2025, 1, 1).unwrap(),
            period: None,
            comuni: vec![("092009".into(), portfolio::list(doc))],
            catalog: vec![],
            indicator_data: vec![],
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        /// Two offices editing the same portfolio concurrently, then merging,
        /// produce the same report on both sides.
        #[test]
        fn concurrent_edits_converge_to_the_same_report(
            shared in proptest::collection::vec(arb_edit(), 0..6),
            left in proptest::collection::vec(arb_edit(), 0..8),
            right in proptest::collection::vec(arb_edit(), 0..8),
        ) {
            let mut a = AutoCommit::new();
            for e in &shared { apply(&mut a, e, 0); }
            let mut b = a.fork();
            for e in &left { apply(&mut a, e, 1); }
            for e in &right { apply(&mut b, e, 2); }
            a.merge(&mut b).unwrap();
            b.merge(&mut a).unwrap();
            prop_assert_eq!(portfolio::list(&a), portfolio::list(&b));
            prop_assert_eq!(report_of(&a), report_of(&b));
        }
    }
}
