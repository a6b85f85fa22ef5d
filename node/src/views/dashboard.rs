//! The figures of the dashboards, from the query store in SQL: per comune
//! (projects, financed / committed / paid, late milestones, when its newest
//! change was made), per zona omogenea, per procedural state, per PNRR
//! mission and per funding source.

use crate::replica::ReplicaError;
use crate::store::NodeTx;
use accordo_domain::comuni;
use accordo_domain::model::Date;
use accordo_protocol::doc::DocId;
use accordo_store::{decode_envelope, StoreError};
use serde::Serialize;

fn sql_err(e: rusqlite::Error) -> ReplicaError {
    ReplicaError::Store(StoreError::from(e))
}

/// Money and counts of a group of projects.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    pub projects: u64,
    pub financed_cents: i64,
    pub committed_cents: i64,
    pub paid_cents: i64,
    pub late_milestones: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// The group's key (an ISTAT code, a zone code, a state, a mission...).
    pub key: String,
    /// Its name for people, where there is one.
    pub name: Option<String>,
    pub totals: Totals,
    /// When the newest change of the comune's document was made (per its
    /// author's clock), for groups that are comuni.
    pub last_change_ms: Option<u64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Dashboard {
    pub all: Totals,
    pub comuni: Vec<Group>,
    pub zones: Vec<Group>,
    pub states: Vec<Group>,
    pub missions: Vec<Group>,
    /// Funding lines' amounts per source (a project with two sources
    /// counts in both; amounts are the lines').
    pub sources: Vec<Group>,
}

/// The late-milestone count per project, as a subquery on `p`.
const LATE: &str = "(SELECT COUNT(*) FROM view_milestones m WHERE m.doc = p.doc AND m.project = p.id AND m.due < ?1 AND m.achieved_date IS NULL)";

fn groups(
    tx: &NodeTx<'_>,
    key_sql: &str,
    doc: Option<&str>,
    as_of: &Date,
) -> Result<Vec<Group>, ReplicaError> {
    let sql = format!(
        "SELECT {key_sql} AS k, COUNT(*), COALESCE(SUM(p.financed_cents), 0),
                COALESCE(SUM(p.committed_cents), 0), COALESCE(SUM(p.paid_cents), 0),
                COALESCE(SUM({LATE}), 0)
         FROM view_projects p
         WHERE p.archived = 0 AND (?2 IS NULL OR p.doc = ?2)
         GROUP BY k ORDER BY k"
    );
    let mut stmt = tx.sql().prepare_cached(&sql).map_err(sql_err)?;
    let rows = stmt
        .query_map(rusqlite::params![as_of.to_string(), doc], |r| {
            Ok(Group {
                key: r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                name: None,
                totals: Totals {
                    projects: r.get::<_, i64>(1)? as u64,
                    financed_cents: r.get(2)?,
                    committed_cents: r.get(3)?,
                    paid_cents: r.get(4)?,
                    late_milestones: r.get::<_, i64>(5)? as u64,
                },
                last_change_ms: None,
            })
        })
        .map_err(sql_err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
}

fn sources(tx: &NodeTx<'_>, doc: Option<&str>) -> Result<Vec<Group>, ReplicaError> {
    let mut stmt = tx
        .sql()
        .prepare_cached(
            "SELECT f.source, COUNT(DISTINCT f.doc || '/' || f.project), SUM(f.amount_cents)
             FROM view_funding f JOIN view_projects p ON p.doc = f.doc AND p.id = f.project
             WHERE p.archived = 0 AND (?1 IS NULL OR p.doc = ?1)
             GROUP BY f.source ORDER BY SUM(f.amount_cents) DESC, f.source",
        )
        .map_err(sql_err)?;
    let rows = stmt
        .query_map(rusqlite::params![doc], |r| {
            Ok(Group {
                key: r.get(0)?,
                name: None,
                totals: Totals {
                    projects: r.get::<_, i64>(1)? as u64,
                    financed_cents: r.get(2)?,
                    ..Totals::default()
                },
                last_change_ms: None,
            })
        })
        .map_err(sql_err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
}

/// When the newest change of each document was made (its author's clock).
fn last_changes(tx: &NodeTx<'_>) -> Result<Vec<(String, u64)>, ReplicaError> {
    let mut stmt = tx
        .sql()
        .prepare_cached(
            "SELECT l.doc, l.envelope FROM log l
             JOIN (SELECT doc, MAX(seq) AS seq FROM log GROUP BY doc) n ON n.seq = l.seq",
        )
        .map_err(sql_err)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .map_err(sql_err)?;
    let mut out = Vec::new();
    for row in rows {
        let (doc, blob) = row.map_err(sql_err)?;
        let env = decode_envelope(&blob)?;
        if let Ok(change) = automerge::Change::try_from(&env.change[..]) {
            out.push((doc, change.timestamp().max(0) as u64 * 1000));
        }
    }
    Ok(out)
}

/// The dashboard of every comune held (`doc: None`, a metro node) or of one.
pub fn dashboard(
    tx: &NodeTx<'_>,
    doc: Option<&DocId>,
    as_of: &Date,
) -> Result<Dashboard, ReplicaError> {
    let doc = doc.map(DocId::canonical);
    let doc = doc.as_deref();
    let mut comuni_rows = groups(tx, "p.comune", doc, as_of)?;
    let last: std::collections::HashMap<String, u64> = last_changes(tx)?.into_iter().collect();
    for g in &mut comuni_rows {
        g.name = comuni::name(&g.key).map(str::to_owned);
        if let Ok(c) = g.key.parse() {
            g.last_change_ms = last.get(&DocId::Comune(c).canonical()).copied();
        }
    }
    let mut zones = groups(
        tx,
        "(SELECT z.zone FROM view_zones z WHERE z.comune = p.comune ORDER BY z.zone LIMIT 1)",
        doc,
        as_of,
    )?;
    let names: std::collections::HashMap<String, String> = {
        let mut stmt = tx
            .sql()
            .prepare_cached("SELECT zone, MIN(name) FROM view_zones GROUP BY zone")
            .map_err(sql_err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(sql_err)?;
        rows.collect::<Result<_, _>>().map_err(sql_err)?
    };
    for z in &mut zones {
        z.name = names.get(&z.key).cloned();
    }
    let mut all = Totals::default();
    for g in &comuni_rows {
        all.projects += g.totals.projects;
        all.financed_cents += g.totals.financed_cents;
        all.committed_cents += g.totals.committed_cents;
        all.paid_cents += g.totals.paid_cents;
        all.late_milestones += g.totals.late_milestones;
    }
    Ok(Dashboard {
        all,
        comuni: comuni_rows,
        zones,
        states: groups(tx, "p.state", doc, as_of)?,
        missions: groups(tx, "p.mission", doc, as_of)?,
        sources: sources(tx, doc)?,
    })
}
