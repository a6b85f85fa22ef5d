//! The monitoring report's facts read from the query store without decoding
//! any project's record: each comune's money and money by funding source
//! from the summary tables (`totals.rs`), each project's state from a
//! covering index of `view_projects`, the open milestones due before the
//! day asked from `view_milestones`, and the heads — all in one
//! transaction, so the figures and the heads agree. `report::build_from`
//! turns them into the same report as the documents give
//! (`report_verify` recomputes it from them).

use super::read::{catalog_defs, doc_heads, indicator_data};
use crate::replica::ReplicaError;
use crate::store::NodeTx;
use accordo_domain::model::{Date, ProceduralState, StateBasis};
use accordo_domain::report::{ComuneFacts, DocHeads, Facts, Money, OpenMilestone, ProjectFacts};
use accordo_protocol::doc::DocId;
use accordo_store::StoreError;
use rusqlite::params;
use std::collections::{BTreeMap, HashMap};

fn sql_err(e: rusqlite::Error) -> ReplicaError {
    ReplicaError::Store(StoreError::from(e))
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> ReplicaError {
    ReplicaError::Store(StoreError::Corrupt(format!("query store {what}: {e}")))
}

/// Column `i` of `r` as text, borrowed.
fn text<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> Result<&'r str, ReplicaError> {
    r.get_ref(i)
        .map_err(sql_err)?
        .as_str()
        .map_err(|e| corrupt("text column", e))
}

/// The report's facts over every document held, as of `as_of`.
pub fn report_facts(
    tx: &NodeTx<'_>,
    as_of: Date,
    period: Option<String>,
) -> Result<Facts, ReplicaError> {
    let mut money = comune_money(tx)?;
    let mut sources = comune_sources(tx)?;
    let mut late = late_milestones(tx, as_of)?;
    let mut projects = project_facts(tx, &mut late)?;
    let mut indicators = indicator_data(tx)?;
    let mut facts = Facts {
        as_of,
        period,
        comuni: Vec::new(),
        catalog: Vec::new(),
        indicator_data: Vec::new(),
        documents: Vec::new(),
    };
    for (doc, heads) in doc_heads(tx)? {
        let key = doc.canonical();
        match &doc {
            DocId::Comune(c) => {
                facts.comuni.push(ComuneFacts {
                    comune: c.to_string(),
                    money: money.remove(&key).unwrap_or_default(),
                    sources: sources.remove(&key).unwrap_or_default(),
                    projects: projects.remove(&key).unwrap_or_default(),
                });
                let data = indicators.remove(&key).unwrap_or_default();
                facts.indicator_data.push((c.to_string(), data));
            }
            DocId::Plan => {
                facts.catalog = catalog_defs(tx)?;
                let data = indicators.remove(&key).unwrap_or_default();
                facts.indicator_data.push(("metro".to_owned(), data));
            }
            DocId::Registry => {}
        }
        facts.documents.push(DocHeads { doc: key, heads });
    }
    Ok(facts)
}

/// Each comune document's projects not archived, counted and summed.
fn comune_money(tx: &NodeTx<'_>) -> Result<BTreeMap<String, Money>, ReplicaError> {
    let mut stmt = tx
        .sql()
        .prepare_cached(
            "SELECT doc, SUM(projects), SUM(financed_cents), SUM(committed_cents),
               SUM(paid_cents)
             FROM view_totals WHERE archived = 0 GROUP BY doc",
        )
        .map_err(sql_err)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Money {
                    projects: r.get::<_, i64>(1)? as usize,
                    financed_cents: r.get(2)?,
                    committed_cents: r.get(3)?,
                    paid_cents: r.get(4)?,
                },
            ))
        })
        .map_err(sql_err)?;
    rows.map(|r| r.map_err(sql_err)).collect()
}

type Sources = BTreeMap<String, (i64, usize)>;

/// Each comune document's projects not archived, by funding source: the
/// amount of their lines and how many have one.
fn comune_sources(tx: &NodeTx<'_>) -> Result<BTreeMap<String, Sources>, ReplicaError> {
    let mut stmt = tx
        .sql()
        .prepare_cached(
            "SELECT doc, source, SUM(amount_cents), SUM(projects)
             FROM view_source_totals WHERE archived = 0 GROUP BY doc, source",
        )
        .map_err(sql_err)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .map_err(sql_err)?;
    let mut out: BTreeMap<String, Sources> = BTreeMap::new();
    for row in rows {
        let (doc, source, amount, projects) = row.map_err(sql_err)?;
        out.entry(doc)
            .or_default()
            .insert(source, (amount, projects as usize));
    }
    Ok(out)
}

/// document → project → its milestones not achieved and due before `as_of`.
type Late = HashMap<String, HashMap<String, Vec<OpenMilestone>>>;

fn late_milestones(tx: &NodeTx<'_>, as_of: Date) -> Result<Late, ReplicaError> {
    // Dates are stored as `YYYY-MM-DD`, whose text order is the date order.
    let mut stmt = tx
        .sql()
        .prepare_cached(
            "SELECT doc, project, milestone, code, description, due FROM view_milestones
             WHERE achieved_date IS NULL AND due < ?1 ORDER BY doc, project, milestone",
        )
        .map_err(sql_err)?;
    let mut rows = stmt.query(params![as_of.to_string()]).map_err(sql_err)?;
    let mut out: Late = HashMap::new();
    while let Some(r) = rows.next().map_err(sql_err)? {
        let due: String = r.get(5).map_err(sql_err)?;
        let due: Date = due.parse().map_err(|e| corrupt("milestone due date", e))?;
        out.entry(r.get(0).map_err(sql_err)?)
            .or_default()
            .entry(r.get(1).map_err(sql_err)?)
            .or_default()
            .push(OpenMilestone {
                id: r.get(2).map_err(sql_err)?,
                code: r.get(3).map_err(sql_err)?,
                description: r.get(4).map_err(sql_err)?,
                due,
            });
    }
    Ok(out)
}

/// Projects not archived by comune document, in list order (that of
/// `views::projects`), each with its late milestones taken from `late`.
fn project_facts(
    tx: &NodeTx<'_>,
    late: &mut Late,
) -> Result<BTreeMap<String, Vec<ProjectFacts>>, ReplicaError> {
    // The covering index holds every column read, in this order.
    let mut stmt = tx
        .sql()
        .prepare_cached(
            "SELECT doc, id, cup, title, state, basis FROM view_projects
             INDEXED BY view_projects_listed
             WHERE archived = 0 ORDER BY doc, cup IS NOT NULL, cup, id",
        )
        .map_err(sql_err)?;
    let mut rows = stmt.query([]).map_err(sql_err)?;
    let mut out: BTreeMap<String, Vec<ProjectFacts>> = BTreeMap::new();
    let (mut doc, mut list): (String, Vec<ProjectFacts>) = (String::new(), Vec::new());
    let mut doc_late = HashMap::new();
    while let Some(r) = rows.next().map_err(sql_err)? {
        let row_doc = text(r, 0)?;
        if row_doc != doc {
            if !list.is_empty() {
                out.insert(std::mem::take(&mut doc), std::mem::take(&mut list));
            }
            doc = row_doc.to_owned();
            doc_late = late.remove(&doc).unwrap_or_default();
        }
        let id: String = r.get(1).map_err(sql_err)?;
        let state = text(r, 4)?;
        let state =
            ProceduralState::from_code(state).ok_or_else(|| corrupt("procedural state", state))?;
        let basis = text(r, 5)?;
        let basis = StateBasis::from_code(basis).ok_or_else(|| corrupt("state basis", basis))?;
        list.push(ProjectFacts {
            open_milestones: doc_late.remove(&id).unwrap_or_default(),
            id,
            cup: r.get(2).map_err(sql_err)?,
            title: r.get(3).map_err(sql_err)?,
            state,
            basis,
        });
    }
    if !list.is_empty() {
        out.insert(doc, list);
    }
    Ok(out)
}
