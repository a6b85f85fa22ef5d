//! Reading the query store: project lists, look-ups by CUP and import key,
//! the report's input and the heads it was computed from.

use crate::replica::ReplicaError;
use crate::store::NodeTx;
use accordo_domain::indicator::{IndicatorData, IndicatorDef};
use accordo_domain::model::{Date, Project};
use accordo_domain::portfolio::PortfolioError;
use accordo_domain::report::{DocHeads, Input};
use accordo_protocol::codes::Cup;
use accordo_protocol::doc::DocId;
use accordo_store::StoreError;
use rusqlite::params;
use std::collections::BTreeMap;

fn sql_err(e: rusqlite::Error) -> ReplicaError {
    ReplicaError::Store(StoreError::from(e))
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> ReplicaError {
    ReplicaError::Store(StoreError::Corrupt(format!("query store {what}: {e}")))
}

/// A project as listed: the comune document it is in, and the project.
pub type Listed = (DocId, Project);

fn project_from(id: String, record: &str) -> Result<Project, ReplicaError> {
    let mut p: Project = serde_json::from_str(record).map_err(|e| corrupt("project", e))?;
    p.id = id;
    Ok(p)
}

/// Projects of `doc` (every comune document when `None`), ordered by
/// document, then CUP (projects without one first), then id — the order
/// documents and `portfolio::list` give.
pub fn projects(
    tx: &NodeTx<'_>,
    doc: Option<&DocId>,
    archived: bool,
) -> Result<Vec<Listed>, ReplicaError> {
    let mut stmt = tx
        .sql()
        .prepare_cached(
            "SELECT doc, id, record FROM view_projects
             WHERE (?1 IS NULL OR doc = ?1) AND (?2 OR archived = 0)
             ORDER BY doc, cup IS NOT NULL, cup, id",
        )
        .map_err(sql_err)?;
    let rows = stmt
        .query_map(params![doc.map(DocId::canonical), archived], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .map_err(sql_err)?;
    rows.map(|row| {
        let (d, id, record) = row.map_err(sql_err)?;
        let d: DocId = d.parse().map_err(|e| corrupt("document id", e))?;
        Ok((d, project_from(id, &record)?))
    })
    .collect()
}

/// Whether `doc` has a project with this id.
pub fn projects_with_id(tx: &NodeTx<'_>, doc: &DocId, id: &str) -> Result<bool, ReplicaError> {
    tx.sql()
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM view_projects WHERE doc = ?1 AND id = ?2)",
            params![doc.canonical(), id],
            |r| r.get::<_, bool>(0),
        )
        .map_err(sql_err)
}

/// Ids of `doc`'s projects with this CUP, in id order.
pub fn find_by_cup(tx: &NodeTx<'_>, doc: &DocId, cup: &str) -> Result<Vec<String>, ReplicaError> {
    let mut stmt = tx
        .sql()
        .prepare_cached("SELECT id FROM view_projects WHERE doc = ?1 AND cup = ?2 ORDER BY id")
        .map_err(sql_err)?;
    let rows = stmt
        .query_map(params![doc.canonical(), cup], |r| r.get::<_, String>(0))
        .map_err(sql_err)?;
    rows.map(|r| r.map_err(sql_err)).collect()
}

/// The one project of `doc` with this CUP, or an error that says why not.
pub fn find_one(tx: &NodeTx<'_>, doc: &DocId, cup: &Cup) -> Result<String, ReplicaError> {
    let mut ids = find_by_cup(tx, doc, cup.as_str())?;
    match ids.len() {
        0 => Err(PortfolioError::NoSuchCup(cup.clone()).into()),
        1 => Ok(ids.remove(0)),
        _ => Err(PortfolioError::AmbiguousCup {
            cup: cup.clone(),
            ids,
        }
        .into()),
    }
}

/// Every document the views cover with its heads (hex), in document order.
pub fn doc_heads(tx: &NodeTx<'_>) -> Result<Vec<(DocId, Vec<String>)>, ReplicaError> {
    let mut stmt = tx
        .sql()
        .prepare_cached("SELECT doc, heads FROM doc_state ORDER BY doc")
        .map_err(sql_err)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(sql_err)?;
    rows.map(|row| {
        let (d, heads) = row.map_err(sql_err)?;
        let d: DocId = d.parse().map_err(|e| corrupt("document id", e))?;
        let heads = heads
            .split(',')
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect();
        Ok((d, heads))
    })
    .collect()
}

/// The report's input from the query store: the same as
/// `accordo_domain::report::input` over every held document, with the
/// heads each document's views were derived at (read in this transaction,
/// so the figures and the heads agree).
pub fn report_input(
    tx: &NodeTx<'_>,
    as_of: Date,
    period: Option<String>,
) -> Result<Input, ReplicaError> {
    let mut by_doc: BTreeMap<String, Vec<Project>> = BTreeMap::new();
    for (doc, p) in projects(tx, None, true)? {
        by_doc.entry(doc.canonical()).or_default().push(p);
    }
    let mut indicators = indicator_data(tx)?;
    let mut comuni = Vec::new();
    let mut indicator_data = Vec::new();
    let mut catalog = Vec::new();
    let mut documents = Vec::new();
    for (doc, heads) in doc_heads(tx)? {
        let key = doc.canonical();
        documents.push(DocHeads {
            doc: key.clone(),
            heads,
        });
        match &doc {
            DocId::Comune(c) => {
                comuni.push((c.to_string(), by_doc.remove(&key).unwrap_or_default()));
                indicator_data.push((c.to_string(), indicators.remove(&key).unwrap_or_default()));
            }
            DocId::Plan => {
                catalog = catalog_defs(tx)?;
                indicator_data.push((
                    "metro".to_owned(),
                    indicators.remove(&key).unwrap_or_default(),
                ));
            }
            DocId::Registry => {}
        }
    }
    Ok(Input {
        as_of,
        period,
        comuni,
        catalog,
        indicator_data,
        documents,
    })
}

pub type DocIndicators = BTreeMap<String, BTreeMap<String, IndicatorData>>;

pub fn indicator_data(tx: &NodeTx<'_>) -> Result<DocIndicators, ReplicaError> {
    let mut stmt = tx
        .sql()
        .prepare_cached("SELECT doc, code, record FROM view_indicators")
        .map_err(sql_err)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })
        .map_err(sql_err)?;
    let mut out: DocIndicators = BTreeMap::new();
    for row in rows {
        let (doc, code, record) = row.map_err(sql_err)?;
        let data: IndicatorData =
            serde_json::from_str(&record).map_err(|e| corrupt("indicator", e))?;
        out.entry(doc).or_default().insert(code, data);
    }
    Ok(out)
}

pub fn catalog_defs(tx: &NodeTx<'_>) -> Result<Vec<IndicatorDef>, ReplicaError> {
    let mut stmt = tx
        .sql()
        .prepare_cached("SELECT code, record FROM view_catalog ORDER BY code")
        .map_err(sql_err)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(sql_err)?;
    rows.map(|row| {
        let (code, record) = row.map_err(sql_err)?;
        let mut def: IndicatorDef =
            serde_json::from_str(&record).map_err(|e| corrupt("indicator definition", e))?;
        def.code = code;
        Ok(def)
    })
    .collect()
}
