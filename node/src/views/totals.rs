//! The summary tables `view_totals` and `view_source_totals`: the money of
//! a document's projects summed by (comune, the project's own zone,
//! mission, archived), and by funding source too. Each project's row is
//! added when it is written and subtracted when it is deleted, in the same
//! statements' transaction, so the sums equal those of the rows (and a
//! rebuild, which derives them again, compares them like any other row).

use crate::replica::ReplicaError;
use crate::store::NodeTx;
use accordo_store::StoreError;
use rusqlite::{params, OptionalExtension};
use std::collections::{BTreeMap, HashMap};

fn sql_err(e: rusqlite::Error) -> ReplicaError {
    ReplicaError::Store(StoreError::from(e))
}

/// What one project adds to the sums: its key and money, and per source its
/// lines' count and amount.
pub struct Contribution {
    pub comune: String,
    pub zone: Option<String>,
    pub mission: Option<String>,
    pub archived: bool,
    pub financed_cents: i64,
    pub committed_cents: i64,
    pub paid_cents: i64,
    pub sources: BTreeMap<String, (i64, i64)>,
}

/// Adds (`sign` 1) or subtracts (`sign` -1) one project's contribution,
/// dropping groups left with no project.
pub fn apply(tx: &NodeTx<'_>, doc: &str, c: &Contribution, sign: i64) -> Result<(), ReplicaError> {
    let mut sums = Sums::default();
    sums.add(c, sign);
    sums.write(tx, doc)
}

/// A group of the summary tables: (comune, zone, mission, archived).
type Group = (String, String, String, bool);

/// Contributions summed in memory, written with one statement per group
/// touched rather than per project (an import of 20,000 projects into a
/// handful of groups): the rows end as the same additions one project at
/// a time leave them, since sums commute and a group is dropped only when
/// it is left with no project.
#[derive(Default)]
pub struct Sums {
    /// group -> (projects, financed, committed, paid).
    groups: HashMap<Group, [i64; 4]>,
    /// (group, source) -> (projects, financed, committed, paid, lines, amount).
    sources: HashMap<(Group, String), [i64; 6]>,
}

impl Sums {
    /// Adds (`sign` 1) or subtracts (`sign` -1) one project's contribution.
    pub fn add(&mut self, c: &Contribution, sign: i64) {
        let group = (
            c.comune.clone(),
            c.zone.clone().unwrap_or_default(),
            c.mission.clone().unwrap_or_default(),
            c.archived,
        );
        let money = [
            sign,
            sign * c.financed_cents,
            sign * c.committed_cents,
            sign * c.paid_cents,
        ];
        for (source, (lines, amount)) in &c.sources {
            let s = self
                .sources
                .entry((group.clone(), source.clone()))
                .or_default();
            for (to, by) in s
                .iter_mut()
                .zip(money.iter().chain(&[sign * lines, sign * amount]))
            {
                *to += by;
            }
        }
        let g = self.groups.entry(group).or_default();
        for (to, by) in g.iter_mut().zip(money) {
            *to += by;
        }
    }

    /// Writes the sums into the summary tables of `doc`, dropping the
    /// groups left with no project.
    pub fn write(self, tx: &NodeTx<'_>, doc: &str) -> Result<(), ReplicaError> {
        for ((comune, zone, mission, archived), [n, f, cm, p]) in &self.groups {
            tx.sql()
                .prepare_cached(
                    "INSERT INTO view_totals (doc, comune, zone, mission, archived, projects,
                       financed_cents, committed_cents, paid_cents)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT DO UPDATE SET projects = projects + ?6,
                       financed_cents = financed_cents + ?7, committed_cents = committed_cents + ?8,
                       paid_cents = paid_cents + ?9",
                )
                .and_then(|mut s| {
                    s.execute(params![doc, comune, zone, mission, archived, n, f, cm, p])
                })
                .map_err(sql_err)?;
        }
        for (((comune, zone, mission, archived), source), [n, f, cm, p, lines, amount]) in
            &self.sources
        {
            tx.sql()
                .prepare_cached(
                    "INSERT INTO view_source_totals (doc, comune, zone, mission, archived, source,
                       projects, financed_cents, committed_cents, paid_cents, lines, amount_cents)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                     ON CONFLICT DO UPDATE SET projects = projects + ?7,
                       financed_cents = financed_cents + ?8, committed_cents = committed_cents + ?9,
                       paid_cents = paid_cents + ?10, lines = lines + ?11,
                       amount_cents = amount_cents + ?12",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        doc, comune, zone, mission, archived, source, n, f, cm, p, lines, amount
                    ])
                })
                .map_err(sql_err)?;
        }
        // Only a subtraction can leave a group with no project.
        let shrunk = self
            .groups
            .iter()
            .filter(|(_, [n, ..])| *n < 0)
            .map(|(g, _)| g);
        let shrunk_sources = self
            .sources
            .iter()
            .filter(|(_, [n, ..])| *n < 0)
            .map(|((g, _), _)| g);
        let touched: std::collections::BTreeSet<&Group> = shrunk.chain(shrunk_sources).collect();
        for (comune, zone, mission, archived) in touched {
            for table in ["view_totals", "view_source_totals"] {
                tx.sql()
                    .prepare_cached(&format!(
                        "DELETE FROM {table} WHERE doc = ?1 AND comune = ?2 AND zone = ?3
                           AND mission = ?4 AND archived = ?5 AND projects = 0"
                    ))
                    .and_then(|mut s| s.execute(params![doc, comune, zone, mission, archived]))
                    .map_err(sql_err)?;
            }
        }
        Ok(())
    }
}

/// The contribution of project `id` of `doc` as its rows now hold it
/// (`None`: no such project), read before they are deleted.
pub fn stored(tx: &NodeTx<'_>, doc: &str, id: &str) -> Result<Option<Contribution>, ReplicaError> {
    let row = tx
        .sql()
        .prepare_cached(
            "SELECT comune, zone, mission, archived, financed_cents, committed_cents, paid_cents
             FROM view_projects WHERE doc = ?1 AND id = ?2",
        )
        .and_then(|mut s| {
            s.query_row(params![doc, id], |r| {
                Ok(Contribution {
                    comune: r.get(0)?,
                    zone: r.get(1)?,
                    mission: r.get(2)?,
                    archived: r.get(3)?,
                    financed_cents: r.get(4)?,
                    committed_cents: r.get(5)?,
                    paid_cents: r.get(6)?,
                    sources: BTreeMap::new(),
                })
            })
            .optional()
        })
        .map_err(sql_err)?;
    let Some(mut c) = row else { return Ok(None) };
    let mut stmt = tx
        .sql()
        .prepare_cached(
            "SELECT source, COUNT(*), SUM(amount_cents) FROM view_funding
             WHERE doc = ?1 AND project = ?2 GROUP BY source",
        )
        .map_err(sql_err)?;
    let rows = stmt
        .query_map(params![doc, id], |r| {
            Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?)))
        })
        .map_err(sql_err)?;
    for row in rows {
        let (source, sums) = row.map_err(sql_err)?;
        c.sources.insert(source, sums);
    }
    Ok(Some(c))
}
