//! The project portfolio inside a comune's automerge document.
//!
//! Each project lives at its own root key `project/<id>`, where `<id>` is a
//! random internal id: two offices adding projects concurrently never create
//! the same container, so both additions survive a merge. Fields are scalars
//! in the project's map and merge field by field; when two offices set the
//! same field concurrently, automerge keeps both and picks one winner the same
//! way on every replica ([`field_conflicts`] shows the losers).

use crate::codec::{self, CodecError};
use crate::model::FieldError;
use accordo_protocol::codes::Cup;
use automerge::transaction::Transactable;
use automerge::{AutoCommit, AutomergeError, ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT};

/// Root key prefix of projects.
const PROJECT_PREFIX: &str = "project/";

/// The project id a root key of a comune document names, if it names one.
pub fn project_of_root_key(key: &str) -> Option<&str> {
    key.strip_prefix(PROJECT_PREFIX)
}
/// Bytes of randomness in a project id (printed as hex).
const PROJECT_ID_BYTES: usize = 8;
/// Longest project title accepted (characters).
pub const MAX_TITLE_CHARS: usize = 500;

pub use crate::model::Project;

/// What was wrong with a project operation. The messages are complete
/// sentences without a `source()` chain: the command line prints them as
/// they are.
#[derive(Debug, thiserror::Error)]
pub enum PortfolioError {
    #[error("the operating system gave no randomness: {0}")]
    Random(getrandom::Error),
    #[error("invalid title: must not be empty")]
    EmptyTitle,
    #[error("invalid title: longer than {MAX_TITLE_CHARS} characters")]
    TitleTooLong,
    #[error("a project with CUP {cup} already exists (id {existing}); use `project set {cup}` to edit it")]
    DuplicateCup { cup: Cup, existing: String },
    #[error("invalid {0}")]
    Invalid(FieldError),
    // Boxed, both: automerge's error is several times the size of the others.
    #[error("{0}")]
    Codec(Box<CodecError>),
    #[error("document edit failed: {0}")]
    Automerge(Box<AutomergeError>),
    #[error("no project with CUP {0} in this comune")]
    NoSuchCup(Cup),
    #[error("CUP {cup} matches {} projects ({}); pass --id to choose", ids.len(), ids.join(", "))]
    AmbiguousCup { cup: Cup, ids: Vec<String> },
    #[error("no project with id {0}")]
    NoSuchId(String),
}

/// A new random project id.
pub fn new_project_id() -> Result<String, PortfolioError> {
    let mut bytes = [0u8; PROJECT_ID_BYTES];
    getrandom::fill(&mut bytes).map_err(PortfolioError::Random)?;
    Ok(hex::encode(bytes))
}

/// Checks a title: not blank, not too long.
pub fn validate_title(title: &str) -> Result<String, PortfolioError> {
    let t = title.trim();
    if t.is_empty() {
        return Err(PortfolioError::EmptyTitle);
    }
    if t.chars().count() > MAX_TITLE_CHARS {
        return Err(PortfolioError::TitleTooLong);
    }
    Ok(t.to_owned())
}

fn am_err(e: AutomergeError) -> PortfolioError {
    PortfolioError::Automerge(Box::new(e))
}

/// Adds a project; refuses a CUP already used in this document (imports,
/// which may hold several projects per CUP, use [`save`] directly).
pub fn add_project(
    doc: &mut AutoCommit,
    id: &str,
    cup: &Cup,
    title: &str,
    cost_cents: Option<i64>,
    now_ms: i64,
) -> Result<(), PortfolioError> {
    if let Some(existing) = find_by_cup(doc, cup)?.first() {
        return Err(PortfolioError::DuplicateCup {
            cup: cup.clone(),
            existing: existing.clone(),
        });
    }
    let project = Project {
        id: id.to_owned(),
        cup: Some(cup.as_str().to_owned()),
        title: title.to_owned(),
        cost_cents,
        created_ms: now_ms,
        ..Project::default()
    };
    save(doc, None, &project)
}

/// Writes `new` over `old` (the project as last read, or `None` for a new
/// one): only changed fields become operations, unknown fields survive.
pub fn save(
    doc: &mut AutoCommit,
    old: Option<&Project>,
    new: &Project,
) -> Result<(), PortfolioError> {
    new.validate().map_err(PortfolioError::Invalid)?;
    codec::stamp_schema(doc).map_err(codec_err)?;
    let key = format!("{PROJECT_PREFIX}{}", new.id);
    if old.is_none() && codec::find_root_map(doc, &key).is_none() {
        // A new project: all its keys in one batch (an import adds many).
        codec::create_root_record(doc, &key, &codec::to_object(new)).map_err(codec_err)?;
        return Ok(());
    }
    let obj = codec::root_map(doc, &key).map_err(codec_err)?;
    let before = old.map(codec::to_object).unwrap_or_default();
    codec::reconcile(doc, &obj, &before, &codec::to_object(new)).map_err(codec_err)
}

/// Bytes one operation takes in an encoded change besides its key and value
/// (object id, action, value metadata, predecessors, as LEB128 columns):
/// measured at under 16 in the test below; 32 leaves a margin.
const OP_OVERHEAD_BYTES: usize = 32;
/// Bytes a number takes at most (LEB128 of an i64/u64).
const NUMBER_BYTES: usize = 10;

/// An upper bound of the bytes [`save`]`(old, new)` adds to the pending
/// change: one operation per path key written (with its value) or deleted,
/// one per list item, and the project's map when it is new. Used to split
/// an import into changes under `MAX_CHANGE_BYTES`.
pub fn estimated_save_bytes(old: Option<&Project>, new: &Project) -> usize {
    use serde_json::Value as Json;
    fn value_bytes(v: &Json) -> usize {
        match v {
            Json::String(s) => s.len(),
            Json::Number(_) => NUMBER_BYTES,
            Json::Bool(_) | Json::Null => 1,
            Json::Array(items) => items
                .iter()
                .map(|i| value_bytes(i) + OP_OVERHEAD_BYTES)
                .sum(),
            Json::Object(_) => v.to_string().len(),
        }
    }
    let before = codec::flatten(&old.map(codec::to_object).unwrap_or_default());
    let after = codec::flatten(&codec::to_object(new));
    let map = match old {
        None => PROJECT_PREFIX.len() + new.id.len() + OP_OVERHEAD_BYTES,
        Some(_) => 0,
    };
    let deleted: usize = before
        .keys()
        .filter(|k| !after.contains_key(*k))
        .map(|k| k.len() + OP_OVERHEAD_BYTES)
        .sum();
    let written: usize = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, v)| k.len() + value_bytes(v) + OP_OVERHEAD_BYTES)
        .sum();
    map + deleted + written
}

/// One project by id.
pub fn get(doc: &AutoCommit, id: &str) -> Result<Project, PortfolioError> {
    let obj = project_obj(doc, id)?;
    let mut p: Project =
        codec::read_typed(doc, &obj, &format!("project {id}")).map_err(codec_err)?;
    p.id = id.to_owned();
    Ok(p)
}

fn codec_err(e: CodecError) -> PortfolioError {
    PortfolioError::Codec(Box::new(e))
}

/// Import key -> project id, for every project that has one.
pub fn import_keys(doc: &AutoCommit) -> std::collections::HashMap<String, String> {
    project_objects(doc)
        .into_iter()
        .filter_map(|(id, obj)| Some((get_str(doc, &obj, "import_key")?, id)))
        .collect()
}

/// The project with this import key, if any.
pub fn find_by_import_key(doc: &AutoCommit, key: &str) -> Option<String> {
    project_objects(doc)
        .into_iter()
        .find(|(_, obj)| get_str(doc, obj, "import_key").as_deref() == Some(key))
        .map(|(id, _)| id)
}

fn project_objects(doc: &AutoCommit) -> Vec<(String, ObjId)> {
    doc.map_range(ROOT, ..)
        .filter_map(|item| {
            let id = item.key.strip_prefix(PROJECT_PREFIX)?.to_owned();
            match item.value {
                automerge::ValueRef::Object(ObjType::Map) => Some((id, item.id())),
                _ => None,
            }
        })
        .collect()
}

fn get_str(doc: &AutoCommit, obj: &ObjId, key: &str) -> Option<String> {
    match doc.get(obj, key).ok()??.0 {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// Ids of the projects with this CUP.
pub fn find_by_cup(doc: &AutoCommit, cup: &Cup) -> Result<Vec<String>, PortfolioError> {
    Ok(project_objects(doc)
        .into_iter()
        .filter(|(_, obj)| get_str(doc, obj, "cup").as_deref() == Some(cup.as_str()))
        .map(|(id, _)| id)
        .collect())
}

/// The one project with this CUP, or an error that says why not.
pub fn find_one(doc: &AutoCommit, cup: &Cup) -> Result<String, PortfolioError> {
    let mut ids = find_by_cup(doc, cup)?;
    match ids.len() {
        0 => Err(PortfolioError::NoSuchCup(cup.clone())),
        1 => Ok(ids.remove(0)),
        _ => Err(PortfolioError::AmbiguousCup {
            cup: cup.clone(),
            ids,
        }),
    }
}

/// The automerge map of the project with this id.
pub fn project_obj(doc: &AutoCommit, id: &str) -> Result<ObjId, PortfolioError> {
    match doc
        .get(ROOT, format!("{PROJECT_PREFIX}{id}"))
        .map_err(am_err)?
    {
        Some((Value::Object(ObjType::Map), obj)) => Ok(obj),
        _ => Err(PortfolioError::NoSuchId(id.to_owned())),
    }
}

/// Sets a project's title.
pub fn set_title(doc: &mut AutoCommit, id: &str, title: &str) -> Result<(), PortfolioError> {
    let obj = project_obj(doc, id)?;
    doc.put(&obj, "title", title).map_err(am_err)
}

/// Sets a project's cost.
pub fn set_cost(doc: &mut AutoCommit, id: &str, cost_cents: i64) -> Result<(), PortfolioError> {
    let obj = project_obj(doc, id)?;
    doc.put(&obj, "cost_cents", cost_cents).map_err(am_err)
}

/// Every project of the document, sorted by CUP then id. A project whose
/// stored form this version cannot read is skipped with a warning.
pub fn list(doc: &AutoCommit) -> Vec<Project> {
    let mut out: Vec<Project> = project_objects(doc)
        .into_iter()
        .filter_map(|(id, obj)| {
            match codec::read_typed::<Project>(doc, &obj, &format!("project {id}")) {
                Ok(mut p) => {
                    p.id = id;
                    Some(p)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "project skipped");
                    None
                }
            }
        })
        .collect();
    out.sort_by(|a, b| (&a.cup, &a.id).cmp(&(&b.cup, &b.id)));
    out
}

/// All concurrent values of a project's field, the winner first.
pub fn field_conflicts(
    doc: &AutoCommit,
    id: &str,
    field: &str,
) -> Result<Vec<String>, PortfolioError> {
    let obj = project_obj(doc, id)?;
    let text = |v: Value<'_>| match v {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(s) => s.to_string(),
            other => other.to_string(),
        },
        Value::Object(t) => format!("<{t}>"),
    };
    let mut values: Vec<String> = doc
        .get_all(&obj, field)
        .map_err(am_err)?
        .into_iter()
        .map(|(v, _)| text(v))
        .collect();
    if let Some((winner, _)) = doc.get(&obj, field).map_err(am_err)? {
        let winner = text(winner);
        if let Some(pos) = values.iter().position(|v| *v == winner) {
            let w = values.remove(pos);
            values.insert(0, w);
        }
    }
    Ok(values)
}

/// Settles a conflict on a project's field by writing again the concurrent
/// value whose text (as [`field_conflicts`] shows it) is `chosen`: the new
/// write supersedes every concurrent one, on every replica once synced.
/// Returns false (and writes nothing) when no concurrent value has that
/// text, or the field has no conflict.
pub fn resolve_conflict(
    doc: &mut AutoCommit,
    id: &str,
    field: &str,
    chosen: &str,
) -> Result<bool, PortfolioError> {
    let obj = project_obj(doc, id)?;
    let values = doc.get_all(&obj, field).map_err(am_err)?;
    if values.len() < 2 {
        return Ok(false);
    }
    let pick = values.into_iter().find_map(|(v, _)| match v {
        Value::Scalar(s) => {
            let text = match s.as_ref() {
                ScalarValue::Str(t) => t.to_string(),
                other => other.to_string(),
            };
            (text == chosen).then(|| s.into_owned())
        }
        Value::Object(_) => None,
    });
    let Some(value) = pick else {
        return Ok(false);
    };
    doc.put(&obj, field, value).map_err(am_err)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chosen_concurrent_value_settles_the_conflict_on_both_replicas() {
        let mut a = AutoCommit::new();
        let p = Project {
            id: "p1".into(),
            title: "Scuola".into(),
            ..Project::default()
        };
        save(&mut a, None, &p).unwrap();
        let mut b = a.fork();
        for (doc, title) in [(&mut a, "Scuola A"), (&mut b, "Scuola B")] {
            let old = get(doc, "p1").unwrap();
            let mut new = old.clone();
            new.title = title.into();
            save(doc, Some(&old), &new).unwrap();
        }
        a.merge(&mut b).unwrap();
        let values = field_conflicts(&a, "p1", "title").unwrap();
        assert_eq!(values.len(), 2);
        let loser = values[1].clone();
        assert!(!resolve_conflict(&mut a, "p1", "title", "neither").unwrap());
        assert!(resolve_conflict(&mut a, "p1", "title", &loser).unwrap());
        assert_eq!(
            field_conflicts(&a, "p1", "title").unwrap(),
            vec![loser.clone()]
        );
        b.merge(&mut a).unwrap();
        assert_eq!(get(&b, "p1").unwrap().title, loser);
        assert!(
            !resolve_conflict(&mut a, "p1", "title", &loser).unwrap(),
            "no conflict left"
        );
    }

    fn cup(s: &str) -> Cup {
        s.parse().unwrap()
    }

    #[test]
    fn projects_are_added_listed_and_edited() {
        let mut doc = AutoCommit::new();
        add_project(
            &mut doc,
            "a1",
            &cup("J51B21000120006"),
            "Scuola",
            Some(15_000_000),
            1,
        )
        .unwrap();
        let err = add_project(&mut doc, "a2", &cup("J51B21000120006"), "Dup", None, 2).unwrap_err();
        assert!(err.to_string().contains("already exists"));
        let id = find_one(&doc, &cup("J51B21000120006")).unwrap();
        set_title(&mut doc, &id, "Scuola Media").unwrap();
        let projects = list(&doc);
        assert_eq!(projects.len(), 1);
        assert_eq!(projects[0].title, "Scuola Media");
        assert_eq!(projects[0].cost_cents, Some(15_000_000));
        assert!(find_one(&doc, &cup("J51B21000120007")).is_err());
    }

    /// The bytes of the change `save` makes, committed alone.
    fn change_bytes(doc: &mut AutoCommit, old: Option<&Project>, new: &Project) -> usize {
        save(doc, old, new).unwrap();
        doc.commit();
        doc.get_last_local_change().unwrap().raw_bytes().len()
    }

    fn long_text(seed: usize, bytes: usize) -> String {
        (0..)
            .map(|i: usize| format!("parola{} ", (i * 7919 + seed) % 10007))
            .flat_map(|w| w.chars().collect::<Vec<_>>())
            .take(bytes)
            .collect()
    }

    /// The estimate splitting imports by size is an upper bound of the real
    /// change, for new projects, updates and deletions, and not far above
    /// it when text dominates.
    #[test]
    fn estimated_save_bytes_bounds_the_real_change() {
        use crate::model::{FundingLine, FundingSource, Milestone, ProceduralState};
        let mut doc = AutoCommit::new();
        let mut p = Project {
            id: "0123456789abcdef".into(),
            cup: Some("J51B21000120006".into()),
            title: "Scuola".into(),
            summary: Some(long_text(1, 20_000)),
            stated_state: Some(ProceduralState::Esecuzione),
            sdgs: [3, 4, 11].into(),
            financed_cents: Some(123_456_789),
            ..Project::default()
        };
        p.source_fields
            .insert("oc_stato_progetto".into(), "In corso".into());
        for i in 0..30 {
            p.funding.insert(
                format!("line{i}"),
                FundingLine {
                    source: FundingSource::ALL[i % FundingSource::ALL.len()],
                    programme: Some("2014IT001FSC".into()),
                    amount_cents: i as i64 * 1_000_003,
                },
            );
            p.milestones.insert(
                format!("m{i}"),
                Milestone {
                    code: format!("M5C2-{i}"),
                    description: "Aggiudicazione lavori".into(),
                    unit: None,
                    baseline: None,
                    target: None,
                    due: crate::model::Date::new(2026, 6, 30).unwrap(),
                    achieved_date: None,
                    achieved_value: None,
                },
            );
        }
        let estimate = estimated_save_bytes(None, &p);
        let real = change_bytes(&mut doc, None, &p);
        assert!(real <= estimate, "new: {real} > {estimate}");
        assert!(estimate < real * 2, "new: {estimate} is far above {real}");

        let mut q = p.clone();
        q.summary = Some(long_text(2, 30_000));
        q.funding.retain(|k, _| k.ends_with('1'));
        q.milestones.clear();
        q.sdgs = [5].into();
        let estimate = estimated_save_bytes(Some(&p), &q);
        let real = change_bytes(&mut doc, Some(&p), &q);
        assert!(real <= estimate, "update: {real} > {estimate}");
        assert!(
            estimate < real * 2,
            "update: {estimate} is far above {real}"
        );
        assert_eq!(estimated_save_bytes(Some(&q), &q), 0, "no change, no bytes");
        assert_eq!(
            get(&doc, &q.id).unwrap(),
            q,
            "stated state and source fields stored"
        );
    }

    #[test]
    fn concurrent_additions_both_survive_and_title_conflicts_are_visible() {
        let mut a = AutoCommit::new();
        add_project(&mut a, "p0", &cup("J51B21000120006"), "Base", None, 1).unwrap();
        let mut b = a.fork();
        add_project(&mut a, "pa", &cup("J51B21000120001"), "A", None, 2).unwrap();
        add_project(&mut b, "pb", &cup("J51B21000120002"), "B", None, 2).unwrap();
        set_title(&mut a, "p0", "Title from A").unwrap();
        set_title(&mut b, "p0", "Title from B").unwrap();
        a.merge(&mut b).unwrap();
        b.merge(&mut a).unwrap();
        assert_eq!(list(&a), list(&b));
        assert_eq!(list(&a).len(), 3);
        let values = field_conflicts(&a, "p0", "title").unwrap();
        assert_eq!(values.len(), 2);
        let winner = list(&a).into_iter().find(|p| p.id == "p0").unwrap().title;
        assert_eq!(values[0], winner);
    }
}
