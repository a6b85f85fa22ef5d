//! The figures of the dashboards, from the query store in SQL: per comune
//! (projects, financed / committed / paid, late milestones, when its newest
//! change was made), per zona omogenea, per procedural state, per PNRR
//! mission and per funding source.

use super::aggregate::{self, AggregateError, AggregateFilter, ZoneMissionTotals};
use crate::replica::ReplicaError;
use crate::store::NodeTx;
use accordo_domain::comuni;
use accordo_domain::model::Date;
use accordo_protocol::doc::DocId;
use accordo_store::StoreError;
use serde::Serialize;
use std::collections::HashMap;

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
    /// When a node of the comune last completed a sync with the relay, as
    /// the relay reported it (`crate::presence`); filled by the caller.
    pub last_sync_ms: Option<u64>,
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

fn group(key: String, projects: u64, financed: i64, committed: i64, paid: i64) -> Group {
    Group {
        key,
        name: None,
        totals: Totals {
            projects,
            financed_cents: financed,
            committed_cents: committed,
            paid_cents: paid,
            late_milestones: 0,
        },
        last_change_ms: None,
        last_sync_ms: None,
    }
}

/// Groups of `sql`'s rows: (key, projects, financed, committed, paid),
/// with `?1` the document (or NULL for all).
fn money_groups(tx: &NodeTx<'_>, sql: &str, doc: Option<&str>) -> Result<Vec<Group>, ReplicaError> {
    let mut stmt = tx.sql().prepare_cached(sql).map_err(sql_err)?;
    let rows = stmt
        .query_map(rusqlite::params![doc], |r| {
            Ok(group(
                r.get(0)?,
                r.get::<_, i64>(1)? as u64,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
            ))
        })
        .map_err(sql_err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
}

/// Money per comune, from the summary table kept with the project rows.
fn by_comune(tx: &NodeTx<'_>, doc: Option<&str>) -> Result<Vec<Group>, ReplicaError> {
    money_groups(
        tx,
        "SELECT comune, SUM(projects), SUM(financed_cents), SUM(committed_cents), SUM(paid_cents)
         FROM view_totals WHERE archived = 0 AND (?1 IS NULL OR doc = ?1)
         GROUP BY comune ORDER BY comune",
        doc,
    )
}

/// Money per procedural state (a column of the project rows).
fn by_state(tx: &NodeTx<'_>, doc: Option<&str>) -> Result<Vec<Group>, ReplicaError> {
    money_groups(
        tx,
        "SELECT state, COUNT(*), SUM(financed_cents), SUM(committed_cents), SUM(paid_cents)
         FROM view_projects WHERE archived = 0 AND (?1 IS NULL OR doc = ?1)
         GROUP BY state ORDER BY state",
        doc,
    )
}

/// Counts by a key.
type Counts = HashMap<String, u64>;

/// Late milestones (due before `as_of`, not achieved) per comune and per
/// procedural state of their project.
fn late(
    tx: &NodeTx<'_>,
    doc: Option<&str>,
    as_of: &Date,
) -> Result<(Counts, Counts), ReplicaError> {
    let mut stmt = tx
        .sql()
        .prepare_cached(
            "SELECT p.comune, p.state, COUNT(*) FROM view_milestones m
             JOIN view_projects p ON p.doc = m.doc AND p.id = m.project
             WHERE m.due < ?1 AND m.achieved_date IS NULL AND p.archived = 0
               AND (?2 IS NULL OR p.doc = ?2)
             GROUP BY p.comune, p.state",
        )
        .map_err(sql_err)?;
    let rows = stmt
        .query_map(rusqlite::params![as_of.to_string(), doc], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)? as u64,
            ))
        })
        .map_err(sql_err)?;
    let (mut comuni, mut states) = (HashMap::new(), HashMap::new());
    for row in rows {
        let (c, s, n) = row.map_err(sql_err)?;
        *comuni.entry(c).or_insert(0) += n;
        *states.entry(s).or_insert(0) += n;
    }
    Ok((comuni, states))
}

/// When the newest change of each document was made (its author's clock):
/// as `doc_state` keeps it, else (views derived before it was kept) parsed
/// from the document's newest change in the log.
pub fn last_changes(tx: &NodeTx<'_>) -> Result<Vec<(String, u64)>, ReplicaError> {
    let mut stmt = tx
        .sql()
        .prepare_cached(
            "SELECT s.doc, s.last_change_ms, (SELECT MAX(seq) FROM log l WHERE l.doc = s.doc)
             FROM doc_state s",
        )
        .map_err(sql_err)?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, Option<i64>>(2)?,
            ))
        })
        .map_err(sql_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_err)?;
    let mut out = Vec::new();
    for (doc, kept, head) in rows {
        let ms = match (kept, head) {
            (Some(ms), _) => Some(ms),
            (None, Some(seq)) => match doc.parse::<DocId>() {
                Ok(id) => super::newest_change_ms(tx, &id, seq.max(0) as u64)?,
                Err(_) => None,
            },
            (None, None) => None,
        };
        if let Some(ms) = ms {
            out.push((doc, ms.max(0) as u64));
        }
    }
    Ok(out)
}

/// Sums `rows` by a key of theirs, keeping the keys' order of first sight.
fn fold_by(
    rows: &[ZoneMissionTotals],
    key: impl Fn(&ZoneMissionTotals) -> Option<String>,
) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    for r in rows {
        let k = key(r).unwrap_or_default();
        let g = match out.iter_mut().find(|g| g.key == k) {
            Some(g) => g,
            None => {
                out.push(group(k, 0, 0, 0, 0));
                out.last_mut().expect("just pushed")
            }
        };
        g.totals.projects += r.projects;
        g.totals.financed_cents += r.financed_cents;
        g.totals.committed_cents += r.committed_cents;
        g.totals.paid_cents += r.paid_cents;
    }
    out.sort_by(|a, b| (a.key.is_empty(), &a.key).cmp(&(b.key.is_empty(), &b.key)));
    out
}

/// The dashboard of every comune held (`doc: None`, a metro node) or of one.
pub fn dashboard(
    tx: &NodeTx<'_>,
    doc: Option<&DocId>,
    as_of: &Date,
) -> Result<Dashboard, ReplicaError> {
    let comune = match doc {
        Some(DocId::Comune(c)) => Some(c.clone()),
        _ => None,
    };
    let doc = doc.map(DocId::canonical);
    let doc = doc.as_deref();
    let (late_comuni, late_states) = late(tx, doc, as_of)?;
    let mut comuni_rows = by_comune(tx, doc)?;
    let last: HashMap<String, u64> = last_changes(tx)?.into_iter().collect();
    for g in &mut comuni_rows {
        g.name = comuni::name(&g.key).map(str::to_owned);
        g.totals.late_milestones = late_comuni.get(&g.key).copied().unwrap_or(0);
        if let Ok(c) = g.key.parse() {
            g.last_change_ms = last.get(&DocId::Comune(c).canonical()).copied();
        }
    }
    let filter = AggregateFilter {
        comune,
        ..AggregateFilter::as_of(*as_of)
    };
    let aggregate_err = |e: AggregateError| match e {
        AggregateError::Store(e) => e,
        other => ReplicaError::Edit(other.to_string()),
    };
    let zone_mission = aggregate::totals_by_zone_and_mission(tx, &filter).map_err(aggregate_err)?;
    let mut zones = fold_by(&zone_mission, |r| r.zone.clone());
    let names: HashMap<String, String> = {
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
    let mut states = by_state(tx, doc)?;
    for g in &mut states {
        g.totals.late_milestones = late_states.get(&g.key).copied().unwrap_or(0);
    }
    let sources = aggregate::totals_by_funding_source(tx, &filter)
        .map_err(aggregate_err)?
        .into_iter()
        .map(|s| group(s.source, s.projects, s.amount_cents, 0, 0))
        .collect();
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
        states,
        missions: fold_by(&zone_mission, |r| r.mission.clone()),
        sources,
    })
}
