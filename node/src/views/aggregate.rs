//! Aggregate queries over the query store, for the dashboard: the money of
//! the projects a node holds — financed, committed and paid cents, and
//! project counts — summed by (zona omogenea, PNRR mission), and the amounts
//! of their funding lines summed by funding source, each with the same
//! optional filters. Plain SQL `GROUP BY` over the summary tables
//! `view_totals` and `view_source_totals` (kept with the project rows,
//! `totals.rs`), joined with the plan's zones on the day asked; nothing is
//! materialised.
//!
//! A project's zone is the one it states for itself (its `zone` field, set
//! with `project set --zone`), else the zone of the plan its comune belongs
//! to on the filter's `as_of` date (`view_zones`, validity dates inclusive;
//! when a comune is listed in several zones on that day, the first by code,
//! as `accordo_domain::plan::zone_of` picks). A project's mission is the
//! first two characters of its PNRR measure (`M5` for `M5C2I2.2`).

use crate::replica::ReplicaError;
use crate::store::NodeTx;
use accordo_domain::model::{Date, FundingSource};
use accordo_protocol::codes::Istat;
use accordo_store::StoreError;
use rusqlite::types::Value;
use serde::Serialize;

/// Which projects the aggregates count ([`AggregateFilter::as_of`]: every
/// project not archived).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateFilter {
    /// The day whose zone memberships assign comuni to zones.
    pub as_of: Date,
    /// Only projects in this zone (by code).
    pub zone: Option<String>,
    /// Only projects of this PNRR mission (`M1` … `M7`).
    pub mission: Option<Mission>,
    /// Only projects with at least one funding line of this source (in the
    /// by-source totals: only that source's lines).
    pub source: Option<FundingSource>,
    /// Only projects of this comune.
    pub comune: Option<Istat>,
    /// Count archived projects too (by default they are left out).
    pub include_archived: bool,
}

impl AggregateFilter {
    /// Every project not archived, zones as of `as_of`.
    pub fn as_of(as_of: Date) -> AggregateFilter {
        AggregateFilter {
            as_of,
            zone: None,
            mission: None,
            source: None,
            comune: None,
            include_archived: false,
        }
    }
}

/// A PNRR mission code, `M1` … `M7` (the measure codes' first two characters).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Mission(String);

impl Mission {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Mission {
    type Err = AggregateError;
    fn from_str(s: &str) -> Result<Mission, AggregateError> {
        let t = s.trim().to_uppercase();
        let b = t.as_bytes();
        if b.len() == 2 && b[0] == b'M' && (b'1'..=b'7').contains(&b[1]) {
            Ok(Mission(t))
        } else {
            Err(AggregateError::BadMission(s.to_owned()))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AggregateError {
    #[error("mission {0:?} is not a PNRR mission: expected M1 … M7")]
    BadMission(String),
    #[error("zone {0:?} is not a zone of the plan this node holds")]
    UnknownZone(String),
    #[error("reading the query store for the aggregates: {0}")]
    Store(#[from] ReplicaError),
}

/// Sums of the projects in one (zone, mission) group.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ZoneMissionTotals {
    /// `None`: projects in no zone.
    pub zone: Option<String>,
    /// `None`: projects without a PNRR measure.
    pub mission: Option<String>,
    pub projects: u64,
    pub financed_cents: i64,
    pub committed_cents: i64,
    pub paid_cents: i64,
}

/// Sums of the funding lines of one source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FundingSourceTotals {
    /// The source's code (`PNRR`, `FESR`, …).
    pub source: String,
    /// Projects with at least one line of this source.
    pub projects: u64,
    pub lines: u64,
    pub amount_cents: i64,
}

fn sql_err(e: rusqlite::Error) -> AggregateError {
    AggregateError::Store(ReplicaError::Store(StoreError::from(e)))
}

/// The comune → zone assignment on `?1` (the as-of date), as a CTE.
const COMUNE_ZONE: &str = "WITH comune_zone AS (
       SELECT comune, MIN(zone) AS zone FROM view_zones
       WHERE (valid_from IS NULL OR valid_from <= ?1) AND (valid_to IS NULL OR ?1 <= valid_to)
       GROUP BY comune)";

/// A group's zone: the one its projects state, else their comune's.
const ZONE: &str = "COALESCE(NULLIF(t.zone, ''), cz.zone)";

/// The `FROM … WHERE …` of the summary rows (`t`) of the projects `filter`
/// selects — `view_source_totals` when `by_source` or a source is named,
/// else `view_totals` — and the parameters (`?1` is the as-of date). Only
/// the filters given become conditions.
fn totals_where(filter: &AggregateFilter, by_source: bool) -> (String, Vec<Value>) {
    let table = if by_source || filter.source.is_some() {
        "view_source_totals"
    } else {
        "view_totals"
    };
    let mut sql =
        format!(" FROM {table} t LEFT JOIN comune_zone cz ON cz.comune = t.comune WHERE 1");
    let mut params = vec![Value::Text(filter.as_of.to_string())];
    let mut bind = |sql: &mut String, cond: &str, v: String| {
        params.push(Value::Text(v));
        sql.push_str(&cond.replace('?', &format!("?{}", params.len())));
    };
    if !filter.include_archived {
        sql.push_str(" AND t.archived = 0");
    }
    if let Some(c) = &filter.comune {
        bind(&mut sql, " AND t.comune = ?", c.to_string());
    }
    if let Some(m) = &filter.mission {
        bind(&mut sql, " AND t.mission = ?", m.0.clone());
    }
    if let Some(z) = &filter.zone {
        bind(&mut sql, &format!(" AND {ZONE} = ?"), z.clone());
    }
    if let Some(s) = filter.source {
        bind(&mut sql, " AND t.source = ?", s.code().to_owned());
    }
    (sql, params)
}

/// Refuses a zone filter naming no zone of the plan nor any project's: a
/// typo would otherwise read as "no money there".
fn check_zone(tx: &NodeTx<'_>, filter: &AggregateFilter) -> Result<(), AggregateError> {
    let Some(zone) = &filter.zone else {
        return Ok(());
    };
    let known: bool = tx
        .sql()
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM view_zones WHERE zone = ?1)
                 OR EXISTS (SELECT 1 FROM view_totals WHERE zone = ?1)",
            [zone],
            |r| r.get(0),
        )
        .map_err(sql_err)?;
    if known {
        Ok(())
    } else {
        Err(AggregateError::UnknownZone(zone.clone()))
    }
}

/// Financed, committed and paid cents and project counts of the projects
/// `filter` selects, by (zone, mission); groups without a zone or mission
/// first, then by code.
pub fn totals_by_zone_and_mission(
    tx: &NodeTx<'_>,
    filter: &AggregateFilter,
) -> Result<Vec<ZoneMissionTotals>, AggregateError> {
    check_zone(tx, filter)?;
    let (from_where, params) = totals_where(filter, false);
    let sql = format!(
        "{COMUNE_ZONE}
         SELECT {ZONE} AS z, NULLIF(t.mission, '') AS m, SUM(t.projects),
                SUM(t.financed_cents), SUM(t.committed_cents), SUM(t.paid_cents)
         {from_where}
         GROUP BY z, m
         ORDER BY z IS NOT NULL, z, m IS NOT NULL, m"
    );
    let mut stmt = tx.sql().prepare_cached(&sql).map_err(sql_err)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(params), |r| {
            Ok(ZoneMissionTotals {
                zone: r.get(0)?,
                mission: r.get(1)?,
                projects: r.get::<_, i64>(2)? as u64,
                financed_cents: r.get(3)?,
                committed_cents: r.get(4)?,
                paid_cents: r.get(5)?,
            })
        })
        .map_err(sql_err)?;
    rows.map(|r| r.map_err(sql_err)).collect()
}

/// Amounts of the funding lines of the projects `filter` selects, by
/// source, in source-code order (with a source filter, only that source).
pub fn totals_by_funding_source(
    tx: &NodeTx<'_>,
    filter: &AggregateFilter,
) -> Result<Vec<FundingSourceTotals>, AggregateError> {
    check_zone(tx, filter)?;
    let (from_where, params) = totals_where(filter, true);
    let sql = format!(
        "{COMUNE_ZONE}
         SELECT t.source, SUM(t.projects), SUM(t.lines), SUM(t.amount_cents)
         {from_where}
         GROUP BY t.source ORDER BY t.source"
    );
    let mut stmt = tx.sql().prepare_cached(&sql).map_err(sql_err)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(params), |r| {
            Ok(FundingSourceTotals {
                source: r.get(0)?,
                projects: r.get::<_, i64>(1)? as u64,
                lines: r.get::<_, i64>(2)? as u64,
                amount_cents: r.get(3)?,
            })
        })
        .map_err(sql_err)?;
    rows.map(|r| r.map_err(sql_err)).collect()
}

#[cfg(test)]
mod tests;
