//! Reading what the public portal may show from the query store: published
//! projects (not archived) and published indicators only — drafts are
//! filtered in SQL, so they are never even read — the plan's structure, and
//! the heads the data were read at, all in one transaction.

use super::read::{catalog_defs, doc_heads, indicator_data};
use crate::replica::ReplicaError;
use crate::store::NodeTx;
use accordo_domain::model::{Date, Project};
use accordo_domain::plan::{Kind, PlanItem};
use accordo_domain::report::{DocHeads, Input};
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

/// Public projects not archived (published by the metropolitan office's
/// decision, or by the comune's own flag where the office left it to the
/// comune: [`accordo_domain::publication`]), by comune document, in the
/// order of [`super::projects`].
fn published_projects(tx: &NodeTx<'_>) -> Result<BTreeMap<String, Vec<Project>>, ReplicaError> {
    let mut stmt = tx
        .sql()
        .prepare_cached(
            "SELECT p.doc, p.id, p.record FROM view_projects p
             LEFT JOIN view_publication d ON d.comune = p.comune AND d.project = p.id
             WHERE p.archived = 0
               AND (d.decision = 'published'
                    OR (p.published = 1 AND (d.decision IS NULL OR d.decision = 'comune')))
             ORDER BY p.doc, p.cup IS NOT NULL, p.cup, p.id",
        )
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
    let mut out: BTreeMap<String, Vec<Project>> = BTreeMap::new();
    for row in rows {
        let (doc, id, record) = row.map_err(sql_err)?;
        let mut p: Project = serde_json::from_str(&record).map_err(|e| corrupt("project", e))?;
        p.id = id;
        // Public by the metropolitan office's decision or by the comune's own.
        p.published = true;
        out.entry(doc).or_default().push(p);
    }
    Ok(out)
}

/// The plan's items of `kind`, by code.
pub fn plan_items(tx: &NodeTx<'_>, kind: Kind) -> Result<Vec<PlanItem>, ReplicaError> {
    let mut stmt = tx
        .sql()
        .prepare_cached("SELECT code, record FROM view_plan WHERE kind = ?1 ORDER BY code")
        .map_err(sql_err)?;
    let rows = stmt
        .query_map(params![kind.prefix().trim_end_matches('/')], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(sql_err)?;
    rows.map(|row| {
        let (code, record) = row.map_err(sql_err)?;
        let mut item: PlanItem =
            serde_json::from_str(&record).map_err(|e| corrupt("plan item", e))?;
        item.code = code;
        Ok(item)
    })
    .collect()
}

/// What the portal reads in one transaction.
pub struct PublicRead {
    /// The report's input restricted to what is published (the documents
    /// are every document held, with the heads the rows were read at).
    pub input: Input,
    /// Axes, objectives, actions, zones and periods of the plan.
    pub plan: BTreeMap<&'static str, Vec<PlanItem>>,
}

/// The public part of the query store as of `as_of`.
pub fn public_read(tx: &NodeTx<'_>, as_of: Date) -> Result<PublicRead, ReplicaError> {
    let mut projects = published_projects(tx)?;
    let mut indicators = indicator_data(tx)?;
    let catalog: Vec<_> = catalog_defs(tx)?
        .into_iter()
        .filter(|d| d.published)
        .collect();
    let mut comuni = Vec::new();
    let mut data = Vec::new();
    let mut documents = Vec::new();
    for (doc, heads) in doc_heads(tx)? {
        let key = doc.canonical();
        documents.push(DocHeads {
            doc: key.clone(),
            heads,
        });
        let territory = match &doc {
            DocId::Comune(c) => {
                comuni.push((c.to_string(), projects.remove(&key).unwrap_or_default()));
                c.to_string()
            }
            DocId::Plan => "metro".to_owned(),
            DocId::Registry => continue,
        };
        data.push((territory, indicators.remove(&key).unwrap_or_default()));
    }
    let mut plan = BTreeMap::new();
    for kind in Kind::ALL {
        plan.insert(kind.prefix(), plan_items(tx, *kind)?);
    }
    let input = Input {
        as_of,
        period: None,
        comuni,
        catalog,
        indicator_data: data,
        documents,
    };
    Ok(PublicRead {
        input: accordo_domain::portal::public_input(input),
        plan,
    })
}

/// A key that changes whenever the data the portal shows may have: the
/// heads of every document's views.
pub fn heads_key(tx: &NodeTx<'_>) -> Result<String, ReplicaError> {
    let mut hasher = blake3::Hasher::new();
    for (doc, heads) in doc_heads(tx)? {
        hasher.update(doc.canonical().as_bytes());
        for h in heads {
            hasher.update(b",");
            hasher.update(h.as_bytes());
        }
        hasher.update(b";");
    }
    Ok(hasher.finalize().to_hex()[..32].to_owned())
}

/// The comune's own flag and the metropolitan office's decision on project
/// `id` of comune `comune` (`Comune` when the office decided nothing).
pub fn publication(
    tx: &NodeTx<'_>,
    comune: &str,
    id: &str,
) -> Result<(bool, accordo_domain::publication::Decision), ReplicaError> {
    use rusqlite::OptionalExtension;
    let own: bool = tx
        .sql()
        .prepare_cached("SELECT published FROM view_projects WHERE comune = ?1 AND id = ?2")
        .and_then(|mut s| s.query_row(params![comune, id], |r| r.get(0)).optional())
        .map_err(sql_err)?
        .unwrap_or(false);
    let decision: Option<String> = tx
        .sql()
        .prepare_cached("SELECT decision FROM view_publication WHERE comune = ?1 AND project = ?2")
        .and_then(|mut s| s.query_row(params![comune, id], |r| r.get(0)).optional())
        .map_err(sql_err)?;
    let decision = match decision {
        Some(d) => d.parse().map_err(|e: String| corrupt("publication", e))?,
        None => Default::default(),
    };
    Ok((own, decision))
}
