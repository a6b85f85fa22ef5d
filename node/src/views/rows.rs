//! Writing the query store's rows from a document: one record (a root key
//! of the document) at a time, or the whole document.

use super::totals;
use crate::replica::ReplicaError;
use crate::store::NodeTx;
use accordo_domain::indicator::{self, IndicatorData};
use accordo_domain::model::Project;
use accordo_domain::plan::{self, Kind};
use accordo_domain::portfolio::{self, project_of_root_key};
use accordo_domain::publication;
use accordo_protocol::doc::DocId;
use accordo_store::StoreError;
use automerge::AutoCommit;
use rusqlite::params;
use std::collections::{BTreeMap, BTreeSet};

/// Tables with a `doc` column, derived per document: its projects' rows
/// (and their sums, `totals.rs`), then its indicator data.
const DOC_TABLES: [&str; 8] = [
    "view_projects",
    "view_funding",
    "view_milestones",
    "view_locations",
    "view_totals",
    "view_source_totals",
    "view_indicators",
    "view_observations",
];
/// Where the indicator tables start in [`DOC_TABLES`].
const INDICATOR_TABLES_AT: usize = 6;
/// Tables derived from the plan document alone.
const PLAN_TABLES: [&str; 4] = [
    "view_catalog",
    "view_zones",
    "view_plan",
    "view_publication",
];

fn sql_err(e: rusqlite::Error) -> ReplicaError {
    ReplicaError::Store(StoreError::from(e))
}

/// Deletes the rows of `tables` derived from `doc`.
fn delete_doc_rows(tx: &NodeTx<'_>, doc: &DocId, tables: &[&str]) -> Result<(), ReplicaError> {
    for table in tables {
        tx.sql()
            .execute(
                &format!("DELETE FROM {table} WHERE doc = ?1"),
                [doc.canonical()],
            )
            .map_err(sql_err)?;
    }
    Ok(())
}

/// Deletes every row of `tables`.
fn delete_rows(tx: &NodeTx<'_>, tables: &[&str]) -> Result<(), ReplicaError> {
    for table in tables {
        tx.sql()
            .execute(&format!("DELETE FROM {table}"), [])
            .map_err(sql_err)?;
    }
    Ok(())
}

/// Deletes every row derived from `doc`.
pub fn clear(tx: &NodeTx<'_>, doc: &DocId) -> Result<(), ReplicaError> {
    delete_doc_rows(tx, doc, &DOC_TABLES)?;
    if *doc == DocId::Plan {
        delete_rows(tx, &PLAN_TABLES)?;
    }
    Ok(())
}

/// Deletes every derived row.
pub fn clear_all(tx: &NodeTx<'_>) -> Result<(), ReplicaError> {
    delete_rows(tx, &DOC_TABLES)?;
    delete_rows(tx, &PLAN_TABLES)
}

/// Writes every record of `doc`.
pub fn write_all(tx: &NodeTx<'_>, doc_id: &DocId, doc: &AutoCommit) -> Result<(), ReplicaError> {
    if let DocId::Comune(c) = doc_id {
        for p in portfolio::list(doc) {
            write_project(tx, doc_id, c.as_str(), &p)?;
        }
    }
    write_doc_records(tx, doc_id, doc)
}

/// Re-derives the records of `doc` named by `keys` (root keys).
pub fn write_keys(
    tx: &NodeTx<'_>,
    doc_id: &DocId,
    doc: &AutoCommit,
    keys: &BTreeSet<String>,
) -> Result<(), ReplicaError> {
    let mut other = false;
    for key in keys {
        match (doc_id, project_of_root_key(key)) {
            (DocId::Comune(c), Some(id)) => {
                delete_project(tx, doc_id, id)?;
                // Gone (deleted, or not readable by this version): no rows.
                if let Ok(mut p) = portfolio::get(doc, id) {
                    p.id = id.to_owned();
                    write_project(tx, doc_id, c.as_str(), &p)?;
                }
            }
            _ => other = true,
        }
    }
    if other {
        delete_doc_rows(tx, doc_id, &DOC_TABLES[INDICATOR_TABLES_AT..])?;
        if *doc_id == DocId::Plan {
            delete_rows(tx, &PLAN_TABLES)?;
        }
        write_doc_records(tx, doc_id, doc)?;
    }
    Ok(())
}

/// Re-derives the rows of `projects` of comune document `doc` from the
/// typed projects themselves, which must be what the document now holds
/// for them (an import's projects, just written over the stored ones).
pub fn rewrite_projects(
    tx: &NodeTx<'_>,
    doc: &DocId,
    comune: &str,
    projects: &[&Project],
) -> Result<(), ReplicaError> {
    let d = doc.canonical();
    // The rows are written in key order (the tables lead with (doc, id)),
    // so that each page of them is touched once rather than at random, a
    // project not in the views (most of a first import) is not looked for
    // row by row, and the sums are written once per group.
    let held = held_ids(tx, &d)?;
    let mut sorted: Vec<&Project> = projects.to_vec();
    sorted.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    let mut sums = totals::Sums::default();
    for p in sorted {
        if held.contains(p.id.as_str()) {
            if let Some(old) = delete_project_rows(tx, &d, &p.id)? {
                sums.add(&old, -1);
            }
        }
        sums.add(&write_project_rows(tx, &d, comune, p)?, 1);
    }
    sums.write(tx, &d)
}

/// The ids of the projects the views hold for `doc` (read from an index,
/// not the records).
fn held_ids(tx: &NodeTx<'_>, doc: &str) -> Result<std::collections::HashSet<String>, ReplicaError> {
    let mut stmt = tx
        .sql()
        .prepare_cached("SELECT id FROM view_projects INDEXED BY view_projects_key WHERE doc = ?1")
        .map_err(sql_err)?;
    let ids = stmt
        .query_map(params![doc], |r| r.get::<_, String>(0))
        .map_err(sql_err)?;
    ids.collect::<Result<_, _>>().map_err(sql_err)
}

fn delete_project(tx: &NodeTx<'_>, doc: &DocId, id: &str) -> Result<(), ReplicaError> {
    let d = doc.canonical();
    if let Some(old) = delete_project_rows(tx, &d, id)? {
        totals::apply(tx, &d, &old, -1)?;
    }
    Ok(())
}

/// Deletes the rows of project `id`, returning what it contributed to the
/// sums (`None`: the views held no such project), which the caller
/// subtracts.
fn delete_project_rows(
    tx: &NodeTx<'_>,
    d: &str,
    id: &str,
) -> Result<Option<totals::Contribution>, ReplicaError> {
    let old = totals::stored(tx, d, id)?;
    for table in ["view_funding", "view_milestones", "view_locations"] {
        tx.sql()
            .prepare_cached(&format!(
                "DELETE FROM {table} WHERE doc = ?1 AND project = ?2"
            ))
            .and_then(|mut s| s.execute(params![d, id]))
            .map_err(sql_err)?;
    }
    tx.sql()
        .prepare_cached("DELETE FROM view_projects WHERE doc = ?1 AND id = ?2")
        .and_then(|mut s| s.execute(params![d, id]))
        .map_err(sql_err)?;
    Ok(old)
}

fn write_project(
    tx: &NodeTx<'_>,
    doc: &DocId,
    comune: &str,
    p: &Project,
) -> Result<(), ReplicaError> {
    let d = doc.canonical();
    let contribution = write_project_rows(tx, &d, comune, p)?;
    totals::apply(tx, &d, &contribution, 1)
}

/// Writes the rows of project `p`, returning what it contributes to the
/// sums, which the caller adds.
fn write_project_rows(
    tx: &NodeTx<'_>,
    d: &str,
    comune: &str,
    p: &Project,
) -> Result<totals::Contribution, ReplicaError> {
    let (state, basis) = p.state_and_basis();
    let measure = p.pnrr_measure.as_ref().map(|m| m.as_str().to_owned());
    let mission = measure
        .as_deref()
        .and_then(|m| m.get(..2))
        .map(str::to_owned);
    let component = measure
        .as_deref()
        .and_then(|m| m.get(..4))
        .map(str::to_owned);
    let record = serde_json::to_string(p)
        .map_err(|e| ReplicaError::Edit(format!("project {} does not serialise: {e}", p.id)))?;
    let mut sources: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for f in p.funding.values() {
        let sums = sources.entry(f.source.code().to_owned()).or_default();
        sums.0 += 1;
        sums.1 += f.amount_cents;
    }
    let contribution = totals::Contribution {
        comune: comune.to_owned(),
        zone: p.zone.clone(),
        mission: mission.clone(),
        archived: p.archived,
        financed_cents: p.financed_cents.unwrap_or_else(|| p.funding_total_cents()),
        committed_cents: p.committed_cents.unwrap_or(0),
        paid_cents: p.paid_cents.unwrap_or(0),
        sources,
    };
    tx.sql()
        .prepare_cached(
            "INSERT INTO view_projects (doc, id, comune, cup, import_key, title, archived, state,
               basis, pnrr_measure, mission, component, cost_cents, financed_cents,
               committed_cents, paid_cents, record, zone, published)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
               ?18, ?19)",
        )
        .and_then(|mut s| {
            s.execute(params![
                d,
                p.id,
                comune,
                p.cup,
                p.import_key,
                p.title,
                p.archived,
                state.code(),
                basis_code(basis),
                measure,
                mission,
                component,
                p.cost_cents,
                contribution.financed_cents,
                contribution.committed_cents,
                contribution.paid_cents,
                record,
                p.zone,
                p.published,
            ])
        })
        .map_err(sql_err)?;
    for (line, f) in &p.funding {
        tx.sql()
            .prepare_cached(
                "INSERT INTO view_funding (doc, project, line, source, programme, amount_cents)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    d,
                    p.id,
                    line,
                    f.source.code(),
                    f.programme,
                    f.amount_cents
                ])
            })
            .map_err(sql_err)?;
    }
    for (mid, m) in &p.milestones {
        tx.sql()
            .prepare_cached(
                "INSERT INTO view_milestones (doc, project, milestone, code, description, due,
                   achieved_date) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    d,
                    p.id,
                    mid,
                    m.code,
                    m.description,
                    m.due.to_string(),
                    m.achieved_date.map(|a| a.to_string())
                ])
            })
            .map_err(sql_err)?;
    }
    for (lid, l) in &p.locations {
        tx.sql()
            .prepare_cached(
                "INSERT INTO view_locations (doc, project, location, comune, share_bp)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| s.execute(params![d, p.id, lid, l.comune, l.share_bp]))
            .map_err(sql_err)?;
    }
    Ok(contribution)
}

fn basis_code(b: accordo_domain::model::StateBasis) -> &'static str {
    use accordo_domain::model::StateBasis;
    match b {
        StateBasis::Stated => "stated",
        StateBasis::Derived => "derived",
        StateBasis::Override => "override",
    }
}

/// The territory whose indicator data a document holds.
pub fn territory(doc: &DocId) -> Option<String> {
    match doc {
        DocId::Comune(c) => Some(c.to_string()),
        DocId::Plan => Some("metro".to_owned()),
        DocId::Registry => None,
    }
}

/// Indicator data, and for the plan its catalog and zones.
fn write_doc_records(
    tx: &NodeTx<'_>,
    doc_id: &DocId,
    doc: &AutoCommit,
) -> Result<(), ReplicaError> {
    let Some(territory) = territory(doc_id) else {
        return Ok(());
    };
    write_indicators(tx, doc_id, &territory, &indicator::data(doc))?;
    if *doc_id != DocId::Plan {
        return Ok(());
    }
    for def in indicator::definitions(doc) {
        let record = serde_json::to_string(&def)
            .map_err(|e| ReplicaError::Edit(format!("indicator {}: {e}", def.code)))?;
        tx.sql()
            .execute(
                "INSERT INTO view_catalog (code, record, published) VALUES (?1, ?2, ?3)",
                params![def.code, record, def.published],
            )
            .map_err(sql_err)?;
    }
    write_plan_items(tx, doc)?;
    for ((comune, project), decision) in publication::decisions(doc) {
        tx.sql()
            .prepare_cached(
                "INSERT INTO view_publication (comune, project, decision) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut s| s.execute(params![comune, project, decision.code()]))
            .map_err(sql_err)?;
    }
    for zone in plan::items(doc, Kind::Zone) {
        for (comune, m) in &zone.comuni {
            tx.sql()
                .execute(
                    "INSERT INTO view_zones (zone, name, comune, valid_from, valid_to)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        zone.code,
                        zone.name,
                        comune,
                        m.valid_from.map(|d| d.to_string()),
                        m.valid_to.map(|d| d.to_string())
                    ],
                )
                .map_err(sql_err)?;
        }
    }
    Ok(())
}

/// The plan's structure, one row per item (zones also have their
/// memberships in `view_zones`).
fn write_plan_items(tx: &NodeTx<'_>, doc: &AutoCommit) -> Result<(), ReplicaError> {
    for kind in Kind::ALL {
        for item in plan::items(doc, *kind) {
            let record = serde_json::to_string(&item)
                .map_err(|e| ReplicaError::Edit(format!("plan item {}: {e}", item.code)))?;
            tx.sql()
                .prepare_cached(
                    "INSERT INTO view_plan (kind, code, name, parent, record)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        kind.prefix().trim_end_matches('/'),
                        item.code,
                        item.name,
                        item.parent,
                        record
                    ])
                })
                .map_err(sql_err)?;
        }
    }
    Ok(())
}

fn write_indicators(
    tx: &NodeTx<'_>,
    doc_id: &DocId,
    territory: &str,
    data: &BTreeMap<String, IndicatorData>,
) -> Result<(), ReplicaError> {
    let d = doc_id.canonical();
    for (code, data) in data {
        let record = serde_json::to_string(data)
            .map_err(|e| ReplicaError::Edit(format!("indicator {code}: {e}")))?;
        tx.sql()
            .execute(
                "INSERT INTO view_indicators (doc, territory, code, baseline, target, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    d,
                    territory,
                    code,
                    data.baseline.as_ref().map(|r| r.value),
                    data.target.as_ref().map(|r| r.value),
                    record
                ],
            )
            .map_err(sql_err)?;
        for (period, o) in &data.observations {
            tx.sql()
                .execute(
                    "INSERT INTO view_observations (doc, territory, code, period, value)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![d, territory, code, period, o.value],
                )
                .map_err(sql_err)?;
        }
    }
    Ok(())
}

/// Every derived row (and each document's recorded state), as text, for
/// comparing an incrementally kept store with one rebuilt from the log.
pub fn dump(tx: &NodeTx<'_>) -> Result<BTreeSet<String>, ReplicaError> {
    let mut out = BTreeSet::new();
    let tables = DOC_TABLES.iter().chain(PLAN_TABLES.iter());
    for table in tables.chain(std::iter::once(&"doc_state")) {
        let cols = if *table == "doc_state" {
            "doc, view_seq, heads, hex(left_out)"
        } else {
            "*"
        };
        let mut stmt = tx
            .sql()
            .prepare(&format!("SELECT {cols} FROM {table}"))
            .map_err(sql_err)?;
        let n = stmt.column_count();
        let mut rows = stmt.query([]).map_err(sql_err)?;
        while let Some(row) = rows.next().map_err(sql_err)? {
            let mut line = format!("{table}:");
            for i in 0..n {
                let v: rusqlite::types::Value = row.get(i).map_err(sql_err)?;
                line.push_str(&format!("{v:?}|"));
            }
            out.insert(line);
        }
    }
    Ok(out)
}
