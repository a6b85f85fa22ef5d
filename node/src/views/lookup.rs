//! Look-ups of projects in the query store, for imports: a row of a
//! re-imported file is compared with the project as the views hold it, so
//! an unchanged row costs a hash look-up and never loads the document.
//!
//! The views equal the document's valid changes (see the module above), so
//! a project read here is the one `portfolio::get` would read from the
//! materialised document.

use crate::replica::ReplicaError;
use crate::store::NodeTx;
use accordo_domain::model::Project;
use accordo_protocol::doc::DocId;
use accordo_store::StoreError;
use rusqlite::params;
use std::collections::HashMap;

fn sql_err(e: rusqlite::Error) -> ReplicaError {
    ReplicaError::Store(StoreError::from(e))
}

/// The fields of a stored record that an import keeps from the stored
/// project (see `ops::import`), read without making the rest typed (the
/// other fields are skipped, not built).
#[derive(Default, serde::Deserialize)]
#[serde(default)]
pub struct KeptFields {
    pub import_key: Option<String>,
    pub psm_links: std::collections::BTreeSet<String>,
    pub zone: Option<String>,
    pub sdgs: std::collections::BTreeSet<u8>,
    pub dimensions: std::collections::BTreeSet<accordo_domain::model::Dimension>,
    pub milestones: std::collections::BTreeMap<String, accordo_domain::model::Milestone>,
    pub state_override: Option<accordo_domain::model::ProceduralState>,
    pub physical_progress_pct: Option<i64>,
    pub cost_cents: Option<i64>,
    pub officer: Option<String>,
    pub notes: Option<String>,
    pub archived: bool,
    pub published: bool,
    pub created_ms: i64,
}

impl KeptFields {
    /// The kept fields of a stored record; `None` if it does not read as
    /// one (the caller then makes the whole record typed).
    pub fn of(record: &str) -> Option<KeptFields> {
        serde_json::from_str(record).ok()
    }
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

/// The stored records of one document's projects, by id and by import
/// key, read in one scan of the query store: a look-up per row is then a
/// hash look-up (one indexed query per row cost ~100,000 instructions,
/// SQLite re-preparing the statement for each new binding under STAT4),
/// and a record is made typed only when a row asks for it. Memory is the
/// document's records, bounded by its projects, not by the file.
pub struct StoredProjects {
    /// id -> record (JSON).
    records: HashMap<String, String>,
    /// import key -> id; the greatest id should several hold the key (two
    /// offices importing concurrently), as `portfolio::import_keys`, which
    /// keeps the last in id order, chooses.
    by_key: HashMap<String, String>,
}

impl StoredProjects {
    /// Every project of `doc` as the views hold it.
    pub fn load(tx: &NodeTx<'_>, doc: &DocId) -> Result<StoredProjects, ReplicaError> {
        let mut stmt = tx
            .sql()
            .prepare_cached(
                "SELECT id, import_key, record FROM view_projects WHERE doc = ?1 ORDER BY id",
            )
            .map_err(sql_err)?;
        let rows = stmt
            .query_map(params![doc.canonical()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .map_err(sql_err)?;
        let mut stored = StoredProjects {
            records: HashMap::new(),
            by_key: HashMap::new(),
        };
        for row in rows {
            let (id, key, record) = row.map_err(sql_err)?;
            if let Some(key) = key {
                stored.by_key.insert(key, id.clone());
            }
            stored.records.insert(id, record);
        }
        Ok(stored)
    }

    /// The project with this id, if any.
    pub fn by_id(&self, id: &str) -> Result<Option<Project>, ReplicaError> {
        self.records
            .get(id)
            .map(|r| typed(id.to_owned(), r))
            .transpose()
    }

    /// The id and stored record (JSON, as `serde_json::to_string` of the
    /// project wrote it) of the project with this id, else of the one with
    /// this import key.
    pub fn record(&self, id: Option<&str>, key: &str) -> Option<(&str, &str)> {
        let by_id = id.and_then(|id| self.records.get_key_value(id));
        let found = by_id.or_else(|| {
            self.by_key
                .get(key)
                .and_then(|id| self.records.get_key_value(id))
        });
        found.map(|(id, r)| (id.as_str(), r.as_str()))
    }

    /// The project with this import key, if any.
    pub fn by_import_key(&self, key: &str) -> Result<Option<Project>, ReplicaError> {
        match self.by_key.get(key) {
            Some(id) => self.by_id(id),
            None => Ok(None),
        }
    }
}
