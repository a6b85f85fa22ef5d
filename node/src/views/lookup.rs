//! Look-ups of one project in the query store, for imports: a row of a
//! re-imported file is compared with the project as the views hold it, so
//! an unchanged row costs one indexed read and never loads the document.
//!
//! The views equal the document's valid changes (see the module above), so
//! a project read here is the one `portfolio::get` would read from the
//! materialised document.

use crate::replica::ReplicaError;
use crate::store::NodeTx;
use accordo_domain::model::Project;
use accordo_protocol::doc::DocId;
use accordo_store::StoreError;
use rusqlite::{params, OptionalExtension};

fn sql_err(e: rusqlite::Error) -> ReplicaError {
    ReplicaError::Store(StoreError::from(e))
}

/// A project's stored record (JSON) made typed again, with its id.
fn typed(id: String, record: &str) -> Result<Project, ReplicaError> {
    let mut p: Project = serde_json::from_str(record).map_err(|e| {
        ReplicaError::Store(StoreError::Corrupt(format!(
            "query store project {id}: {e}"
        )))
    })?;
    p.id = id;
    Ok(p)
}

/// The project of `doc` with this id, if the views hold one.
pub fn project_by_id(
    tx: &NodeTx<'_>,
    doc: &DocId,
    id: &str,
) -> Result<Option<Project>, ReplicaError> {
    let record = tx
        .sql()
        .prepare_cached("SELECT record FROM view_projects WHERE doc = ?1 AND id = ?2")
        .map_err(sql_err)?
        .query_row(params![doc.canonical(), id], |r| r.get::<_, String>(0))
        .optional()
        .map_err(sql_err)?;
    record.map(|r| typed(id.to_owned(), &r)).transpose()
}

/// The project of `doc` with this import key, if any. Should several hold
/// it (two offices importing concurrently), the one with the greatest id,
/// as `portfolio::import_keys` (which keeps the last in id order) chooses.
pub fn project_by_import_key(
    tx: &NodeTx<'_>,
    doc: &DocId,
    key: &str,
) -> Result<Option<Project>, ReplicaError> {
    let row = tx
        .sql()
        .prepare_cached(
            "SELECT id, record FROM view_projects WHERE doc = ?1 AND import_key = ?2
             ORDER BY id DESC LIMIT 1",
        )
        .map_err(sql_err)?
        .query_row(params![doc.canonical(), key], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })
        .optional()
        .map_err(sql_err)?;
    row.map(|(id, r)| typed(id, &r)).transpose()
}
