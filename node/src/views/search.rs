//! Searching the query store for the project list of the web application:
//! a text search over CUP and title, filters by comune, zona omogenea,
//! procedural state, PNRR mission, funding source and late milestones, a
//! page of rows with the figures a list shows — all in SQL over indexed
//! columns, without decoding any project record.

use crate::replica::ReplicaError;
use crate::store::NodeTx;
use accordo_domain::model::Date;
use accordo_protocol::doc::DocId;
use accordo_store::StoreError;
use rusqlite::types::Value;
use serde::Serialize;

/// Rows of one page of the list, at most.
pub const MAX_PAGE_ROWS: usize = 200;

/// What to look for; every field is optional.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Words in the CUP or the title (case-insensitive, all of them).
    pub text: Option<String>,
    /// Only this comune's document.
    pub doc: Option<DocId>,
    /// Only comuni of this zona omogenea (per the plan).
    pub zone: Option<String>,
    /// A procedural state code (`ESECUZIONE`...).
    pub state: Option<String>,
    /// A PNRR mission (`M5`).
    pub mission: Option<String>,
    /// A funding source named by one of the project's funding lines.
    pub source: Option<String>,
    /// Only projects with a milestone due before this date and not achieved.
    pub late_as_of: Option<Date>,
    pub archived: bool,
}

/// A project as a list shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub doc: String,
    pub id: String,
    pub comune: String,
    pub cup: Option<String>,
    pub title: String,
    pub state: String,
    pub pnrr_measure: Option<String>,
    pub financed_cents: i64,
    pub committed_cents: i64,
    pub paid_cents: i64,
    /// Milestones due before the filter's date (or today) and not achieved.
    pub late_milestones: u32,
}

/// One page of results and how many match in all.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    pub total: u64,
    pub rows: Vec<Row>,
}

fn sql_err(e: rusqlite::Error) -> ReplicaError {
    ReplicaError::Store(StoreError::from(e))
}

/// Escapes `%`, `_` and the escape character for a LIKE pattern.
fn like_pattern(word: &str) -> String {
    let mut out = String::from("%");
    for c in word.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The WHERE clause and its parameters (the late-milestone date first).
fn where_clause(f: &Filter, as_of: &Date) -> (String, Vec<Value>) {
    // ?1 is the late-milestone date, ?2 the archived flag.
    let mut clauses = vec!["(?2 OR p.archived = 0)".to_owned()];
    let mut params: Vec<Value> = vec![
        Value::Text(as_of.to_string()),
        Value::Integer(f.archived.into()),
    ];
    let next = |v: Value, params: &mut Vec<Value>| {
        params.push(v);
        format!("?{}", params.len())
    };
    if let Some(text) = &f.text {
        for word in text.split_whitespace().take(8) {
            let n = next(Value::Text(like_pattern(word)), &mut params);
            clauses.push(format!(
                "(p.title LIKE {n} ESCAPE '\\' OR p.cup LIKE {n} ESCAPE '\\')"
            ));
        }
    }
    if let Some(doc) = &f.doc {
        let n = next(Value::Text(doc.canonical()), &mut params);
        clauses.push(format!("p.doc = {n}"));
    }
    if let Some(zone) = &f.zone {
        let n = next(Value::Text(zone.clone()), &mut params);
        clauses.push(format!(
            "p.comune IN (SELECT comune FROM view_zones WHERE zone = {n})"
        ));
    }
    if let Some(state) = &f.state {
        let n = next(Value::Text(state.clone()), &mut params);
        clauses.push(format!("p.state = {n}"));
    }
    if let Some(mission) = &f.mission {
        let n = next(Value::Text(mission.clone()), &mut params);
        clauses.push(format!("p.mission = {n}"));
    }
    if let Some(source) = &f.source {
        let n = next(Value::Text(source.clone()), &mut params);
        clauses.push(format!(
            "EXISTS (SELECT 1 FROM view_funding fl WHERE fl.doc = p.doc AND fl.project = p.id AND fl.source = {n})"
        ));
    }
    if f.late_as_of.is_some() {
        clauses.push(
            // `+` keeps the planner on the primary key (doc, project): with
            // the open-milestones index it would scan every open milestone
            // once per project (measured 0.3 → 1,500 ms on a metro node).
            "EXISTS (SELECT 1 FROM view_milestones m WHERE m.doc = p.doc AND m.project = p.id AND +m.due < ?1 AND +m.achieved_date IS NULL)".to_owned(),
        );
    }
    (clauses.join(" AND "), params)
}

/// The projects matching `f`, ordered by comune, CUP, id; `offset` rows
/// skipped, at most `limit` (capped at [`MAX_PAGE_ROWS`]) returned.
pub fn search(
    tx: &NodeTx<'_>,
    f: &Filter,
    today: &Date,
    offset: usize,
    limit: usize,
) -> Result<Page, ReplicaError> {
    let as_of = f.late_as_of.unwrap_or(*today);
    let (clause, params) = where_clause(f, &as_of);
    let total: i64 = tx
        .sql()
        .query_row(
            &format!("SELECT COUNT(*) FROM view_projects p WHERE {clause}"),
            rusqlite::params_from_iter(params.iter()),
            |r| r.get(0),
        )
        .map_err(sql_err)?;
    let limit = limit.min(MAX_PAGE_ROWS);
    let sql = format!(
        "SELECT p.doc, p.id, p.comune, p.cup, p.title, p.state, p.pnrr_measure,
                p.financed_cents, p.committed_cents, p.paid_cents,
                (SELECT COUNT(*) FROM view_milestones m WHERE m.doc = p.doc AND m.project = p.id
                   AND +m.due < ?1 AND +m.achieved_date IS NULL)
         FROM view_projects p WHERE {clause}
         ORDER BY p.doc, p.cup IS NOT NULL, p.cup, p.id
         LIMIT {limit} OFFSET {offset}"
    );
    let mut stmt = tx.sql().prepare(&sql).map_err(sql_err)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(params.iter()), |r| {
            Ok(Row {
                doc: r.get(0)?,
                id: r.get(1)?,
                comune: r.get(2)?,
                cup: r.get(3)?,
                title: r.get(4)?,
                state: r.get(5)?,
                pnrr_measure: r.get(6)?,
                financed_cents: r.get(7)?,
                committed_cents: r.get(8)?,
                paid_cents: r.get(9)?,
                late_milestones: r.get(10)?,
            })
        })
        .map_err(sql_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_err)?;
    Ok(Page {
        total: total as u64,
        rows,
    })
}

/// The distinct values the list's filters offer: zones, states, missions
/// and funding sources present in the store.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Choices {
    pub zones: Vec<(String, String)>,
    pub states: Vec<String>,
    pub missions: Vec<String>,
    pub sources: Vec<String>,
}

pub fn choices(tx: &NodeTx<'_>) -> Result<Choices, ReplicaError> {
    let column = |sql: &str| -> Result<Vec<String>, ReplicaError> {
        let mut stmt = tx.sql().prepare_cached(sql).map_err(sql_err)?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(sql_err)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(sql_err)
    };
    let mut stmt = tx
        .sql()
        .prepare_cached("SELECT DISTINCT zone, name FROM view_zones ORDER BY zone")
        .map_err(sql_err)?;
    let zones = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(sql_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_err)?;
    Ok(Choices {
        zones,
        states: column("SELECT DISTINCT state FROM view_projects ORDER BY state")?,
        missions: column(
            "SELECT DISTINCT mission FROM view_projects WHERE mission IS NOT NULL ORDER BY mission",
        )?,
        sources: column("SELECT DISTINCT source FROM view_funding ORDER BY source")?,
    })
}

/// The log position of the newest change held: pages compare it to know
/// whether to refresh.
pub fn newest_seq(tx: &NodeTx<'_>) -> Result<u64, ReplicaError> {
    let seq: i64 = tx
        .sql()
        .query_row("SELECT COALESCE(MAX(seq), 0) FROM log", [], |r| r.get(0))
        .map_err(sql_err)?;
    Ok(seq as u64)
}
