//! Importing a file of projects into this comune's portfolio: parse and
//! check it whole (CSV streamed, so memory stays bounded by the rows kept),
//! then write every project in one store transaction, as signed changes
//! split by size under `MAX_CHANGE_BYTES` (one invalid row: nothing is
//! imported). Re-importing updates projects found by their import key; an
//! unchanged row costs a look-up in the query store. `accordo import` and
//! the web application's upload both call [`parse_file`] and [`apply`].

use crate::clock::now_ms;
use crate::replica::{Replica, ReplicaError};
use crate::store::NodeTx;
use crate::views::{KeptFields, StoredProjects};
use accordo_domain::import::{self, Format, ImportErrors, Imported, Outcome};
use accordo_domain::portfolio::{self, Project};
use accordo_protocol::codes::Istat;
use accordo_protocol::doc::DocId;
use accordo_protocol::envelope::MAX_CHANGE_BYTES;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// Rows above which `import` shows a progress bar.
const PROGRESS_ROWS: usize = 5_000;

fn is_xlsx(path: &Path, first_bytes: &[u8]) -> bool {
    first_bytes.starts_with(b"PK\x03\x04")
        || path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("xlsx"))
}

/// Counts of what an import did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
}

/// Bytes of project edits per signed change, by [`portfolio::estimated_save_bytes`]
/// (an upper bound): half of `MAX_CHANGE_BYTES`, leaving room for the
/// change's header and for any growth of automerge's encoding.
const CHANGE_BUDGET_BYTES: usize = MAX_CHANGE_BYTES / 2;

/// Fields that OpenCoesione and PNRR files do not carry: a re-import of such
/// a file keeps what the office entered (a state set by hand, links to the
/// plan, notes …) instead of clearing it.
fn keep_local_fields(old: &Project, new: &mut Project) {
    new.psm_links.clone_from(&old.psm_links);
    new.zone.clone_from(&old.zone);
    new.sdgs.clone_from(&old.sdgs);
    new.dimensions.clone_from(&old.dimensions);
    new.milestones.clone_from(&old.milestones);
    new.state_override = old.state_override;
    new.physical_progress_pct = old.physical_progress_pct;
    new.cost_cents = old.cost_cents;
    new.officer.clone_from(&old.officer);
    new.notes.clone_from(&old.notes);
    new.archived = old.archived;
}

/// What a parsed row resolves to.
enum Resolved {
    /// Equal to the stored project: nothing to write.
    Unchanged { id: String },
    /// The project as stored before this import (none: a new one) and as
    /// it will be (boxed: most rows of a re-import are `Unchanged`).
    Write(Box<(Option<Project>, Project)>),
}

/// Copies into `new` what an import keeps of the stored project: its
/// identity, creation time and publication always, and for files other
/// than Accordo's own the fields such files do not carry.
fn keep_from_stored(kept: &KeptFields, new: &mut Project, format: Format, had_key: bool) {
    new.created_ms = kept.created_ms;
    new.published = kept.published;
    if !had_key {
        new.import_key.clone_from(&kept.import_key);
    }
    if format != Format::Accordo {
        new.psm_links.clone_from(&kept.psm_links);
        new.zone.clone_from(&kept.zone);
        new.sdgs.clone_from(&kept.sdgs);
        new.dimensions.clone_from(&kept.dimensions);
        new.milestones.clone_from(&kept.milestones);
        new.state_override = kept.state_override;
        new.physical_progress_pct = kept.physical_progress_pct;
        new.cost_cents = kept.cost_cents;
        new.officer.clone_from(&kept.officer);
        new.notes.clone_from(&kept.notes);
        new.archived = kept.archived;
    }
}

/// Resolves a parsed row against the stored project (by id, else by
/// import key), read from the query store (the document is not loaded).
///
/// The common case of a re-import, an unchanged row, is decided without
/// making the stored record typed: the row with the kept fields copied
/// from the record (read alone, the rest skipped) is serialised as the
/// views serialise a project, and a string equal to the stored record
/// means a project equal to the stored one (the JSON of a project reads
/// back as that project, so equal strings are equal projects). Any other
/// outcome, a mis-read kept field included, goes the typed way: the row
/// is then compared with the whole stored project, as before.
fn resolve(
    stored: &StoredProjects,
    item: Imported,
    format: Format,
    now: i64,
) -> Result<Resolved, ReplicaError> {
    let found = stored.record(item.id.as_deref(), &item.key);
    let mut new = item.project;
    let Some((id, record)) = found else {
        new.id = match item.id {
            Some(id) => id,
            None => portfolio::new_project_id()?,
        };
        if new.created_ms == 0 {
            new.created_ms = now;
        }
        return Ok(Resolved::Write(Box::new((None, new))));
    };
    let had_key = new.import_key.is_some();
    if let Some(kept) = KeptFields::of(record) {
        keep_from_stored(&kept, &mut new, format, had_key);
        if serde_json::to_string(&new).is_ok_and(|json| json == record) {
            return Ok(Resolved::Unchanged { id: id.to_owned() });
        }
    }
    let id = id.to_owned();
    let Some(old) = stored.by_id(&id)? else {
        return Err(ReplicaError::Edit(format!(
            "project {id} vanished from the query store during an import"
        )));
    };
    new.id.clone_from(&old.id);
    new.created_ms = old.created_ms;
    // Publication is the office's decision, never a file's.
    new.published = old.published;
    if !had_key {
        new.import_key.clone_from(&old.import_key);
    }
    if format != Format::Accordo {
        keep_local_fields(&old, &mut new);
    }
    if old == new {
        return Ok(Resolved::Unchanged { id });
    }
    Ok(Resolved::Write(Box::new((Some(old), new))))
}

/// One project the import writes: as stored (none: a new one) and as it
/// will be.
struct Write {
    /// Boxed: most writes of a large import are new projects, and a
    /// `Project` inline is ~0.5 KB (37,643 of them at a national extract).
    old: Option<Box<Project>>,
    new: Project,
    /// [`portfolio::estimated_save_bytes`] of writing `new` over `old`.
    bytes: usize,
}

/// What an import will do, decided from the query store alone.
#[derive(Default)]
struct Plan {
    /// In file order (kept until the views of all are written).
    writes: Vec<Write>,
    unchanged: usize,
}

/// Compares every parsed row with the stored project (a hash look-up each
/// in the document's stored records): unchanged rows are counted, the
/// others planned with their size checked, so that a project no change can
/// hold is refused, naming its line, before the document is loaded; so is
/// a row resolving to a project an earlier row already writes (by id in
/// one, by import key in the other), which could not be written from one
/// stored state. `None`: nothing to write.
fn plan(
    tx: &NodeTx<'_>,
    doc: &DocId,
    projects: Vec<Imported>,
    format: Format,
    now: i64,
) -> Result<Option<Plan>, ReplicaError> {
    let stored = StoredProjects::load(tx, doc)?;
    let mut plan = Plan::default();
    let mut lines: HashMap<String, usize> = HashMap::new();
    for item in projects {
        let line = item.line;
        let (old, new) = match resolve(&stored, item, format, now)? {
            Resolved::Unchanged { id } => {
                same_project_twice(&mut lines, id, line)?;
                plan.unchanged += 1;
                continue;
            }
            Resolved::Write(w) => *w,
        };
        same_project_twice(&mut lines, new.id.clone(), line)?;
        let bytes = portfolio::estimated_save_bytes(old.as_ref(), &new);
        if bytes > MAX_CHANGE_BYTES {
            return Err(ReplicaError::Edit(format!(
                "line {}: the project needs about {bytes} bytes, more than one change may hold ({MAX_CHANGE_BYTES}); nothing imported",
                line
            )));
        }
        plan.writes.push(Write {
            old: old.map(Box::new),
            new,
            bytes,
        });
    }
    if plan.writes.is_empty() {
        return Ok(None);
    }
    // Held until the views are written, beside the loaded document: no
    // spare capacity (at 37,643 projects the doubling left tens of MB).
    plan.writes.shrink_to_fit();
    Ok(Some(plan))
}

/// Refuses a row resolving to the project (`id`) an earlier row does.
fn same_project_twice(
    lines: &mut HashMap<String, usize>,
    id: String,
    line: usize,
) -> Result<(), ReplicaError> {
    match lines.entry(id) {
        std::collections::hash_map::Entry::Occupied(first) => Err(ReplicaError::Edit(format!(
            "line {line}: the same project (id {}) as line {}; nothing imported",
            first.key(),
            first.get()
        ))),
        std::collections::hash_map::Entry::Vacant(v) => {
            v.insert(line);
            Ok(())
        }
    }
}

/// Writes the parsed projects into this comune's document, all in one store
/// transaction, as signed changes of at most [`CHANGE_BUDGET_BYTES`] of
/// estimated edits each (a project larger than `MAX_CHANGE_BYTES` alone is
/// refused, naming its line, and nothing is written). Rows equal to the
/// stored project cost a look-up in the query store; when every row is,
/// the document is not even loaded.
pub fn apply(
    replica: &mut Replica,
    projects: Vec<Imported>,
    format: Format,
    progress: bool,
) -> Result<Applied, ReplicaError> {
    let own = replica.own_doc();
    let now = now_ms();
    let rows = projects.len();
    let mut applied = Applied::default();
    let mut bar = None;
    let mut next = 0;
    let done = replica.edit_chunks(
        &own,
        now,
        |tx| plan(tx, &own, projects, format, now),
        |doc, plan| {
            applied.unchanged = plan.unchanged;
            let bar = bar
                .get_or_insert_with(|| progress.then(|| progress_bar(plan.writes.len())).flatten());
            let mut used_bytes = 0;
            while let Some(w) = plan.writes.get(next) {
                if used_bytes > 0 && used_bytes + w.bytes > CHANGE_BUDGET_BYTES {
                    break;
                }
                used_bytes += w.bytes;
                portfolio::save(doc, w.old.as_deref(), &w.new)?;
                match w.old {
                    Some(_) => applied.updated += 1,
                    None => applied.added += 1,
                }
                next += 1;
                if let Some(b) = bar {
                    b.inc(1);
                }
            }
            debug_assert!(next <= plan.writes.len());
            Ok(next < plan.writes.len())
        },
        |plan| Some(plan.writes.iter().map(|w| &w.new).collect()),
    );
    if let Some(Some(b)) = bar {
        b.finish_and_clear();
    }
    if done?.is_none() {
        applied.unchanged = rows;
    }
    Ok(applied)
}

/// A progress bar for imports of more than [`PROGRESS_ROWS`] projects.
fn progress_bar(projects: usize) -> Option<indicatif::ProgressBar> {
    (projects > PROGRESS_ROWS).then(|| {
        let bar = indicatif::ProgressBar::new(projects as u64);
        bar.set_message("importing");
        bar
    })
}

/// Parses `file` for comune `own`: a workbook read whole (they are small),
/// CSV streamed so that memory stays bounded by the rows kept.
pub fn parse_file(
    path: &Path,
    file: File,
    format: Format,
    localizzazione: Option<&[u8]>,
    own: &Istat,
) -> std::io::Result<Result<Outcome, ImportErrors>> {
    let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, file);
    let mut magic = Vec::with_capacity(4);
    (&mut reader).take(4).read_to_end(&mut magic)?;
    if is_xlsx(path, &magic) {
        reader.seek(SeekFrom::Start(0))?;
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes)?;
        return Ok(import::import(&bytes, true, format, localizzazione, own));
    }
    reader.seek(SeekFrom::Start(0))?;
    Ok(import::import_csv(reader, format, localizzazione, own))
}

/// Bytes read from an imported file at a time.
const READ_BUFFER_BYTES: usize = 256 << 10;

/// Parses a file given as bytes (an upload) for comune `own`, as
/// [`parse_file`] parses one on disk: XLSX by its signature or name, else CSV.
pub fn parse_bytes(
    name: &str,
    bytes: &[u8],
    format: Format,
    own: &Istat,
) -> Result<Outcome, ImportErrors> {
    if is_xlsx(Path::new(name), bytes) {
        return import::import(bytes, true, format, None, own);
    }
    import::import_csv(std::io::Cursor::new(bytes), format, None, own)
}

#[cfg(test)]
mod tests {
    use super::*;
    use accordo_domain::model::ProceduralState;

    fn replica(dir: &Path) -> Replica {
        crate::replica::test_replica(dir)
    }

    /// A distinct, hardly compressible description of about `bytes` bytes.
    fn description(seed: usize, bytes: usize) -> String {
        let mut text = String::new();
        let mut x = seed as u64 + 1;
        while text.len() < bytes {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            text.push_str(&format!("{:x} ", x >> 20));
        }
        text
    }

    /// An OpenCoesione file of `n` projects of Cagliari with long summaries.
    fn opencoesione(n: usize, summary_bytes: usize, state: &str) -> Vec<u8> {
        let mut text = String::from(
            "COD_LOCALE_PROGETTO;CUP;OC_TITOLO_PROGETTO;OC_SINTESI_PROGETTO;COD_COMUNE;OC_STATO_PROCEDURALE\n",
        );
        for i in 0..n {
            text.push_str(&format!(
                "L{summary_bytes}-{i:05};;Progetto {i};{};020092009;{state}\n",
                description(i, summary_bytes)
            ));
        }
        text.into_bytes()
    }

    fn apply_outcome(r: &mut Replica, outcome: &Outcome) -> Result<Applied, ReplicaError> {
        apply(r, outcome.projects.clone(), outcome.format, false)
    }

    fn parse(bytes: &[u8]) -> Outcome {
        import::import(bytes, false, Format::Auto, None, &"092009".parse().unwrap()).unwrap()
    }

    /// Regression (issue 11 item 7): 400 projects per change made changes
    /// over `MAX_CHANGE_BYTES` with long descriptions, and the whole import
    /// failed. Changes are now split by size, all in one transaction.
    #[test]
    fn an_import_of_long_descriptions_is_split_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = replica(dir.path());
        let outcome = parse(&opencoesione(1_000, 3_000, "In esecuzione"));
        let applied = apply_outcome(&mut r, &outcome).unwrap();
        assert_eq!(applied.added, 1_000);
        let own = r.own_doc();
        let mut doc = r.materialise(&own).unwrap();
        let sizes: Vec<usize> = doc
            .get_changes(&[])
            .iter()
            .map(|c| c.raw_bytes().len())
            .collect();
        let total: usize = sizes.iter().sum();
        assert!(total > 3 * MAX_CHANGE_BYTES, "the import is {total} bytes");
        assert!(sizes.iter().all(|s| *s <= MAX_CHANGE_BYTES), "{sizes:?}");
        // Split by size, not into one change per project.
        assert!(sizes.len() < 20, "{} changes", sizes.len());
        let projects = portfolio::list(&doc);
        assert_eq!(projects.len(), 1_000);
        assert!(projects
            .iter()
            .all(|p| p.summary.as_ref().is_some_and(|s| s.len() >= 2_990)));
    }

    /// A project that no change can hold is refused by line, and nothing of
    /// the import is written.
    #[test]
    fn a_project_larger_than_a_change_is_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = replica(dir.path());
        let mut bytes = opencoesione(3, 100, "");
        bytes.extend(
            opencoesione(1, MAX_CHANGE_BYTES + 10, "")
                .split(|b| *b == b'\n')
                .nth(1)
                .unwrap(),
        );
        let outcome = parse(&bytes);
        let e = apply_outcome(&mut r, &outcome).unwrap_err().to_string();
        assert!(e.contains("line 5: the project needs about"), "{e}");
        let own = r.own_doc();
        assert!(portfolio::list(&r.materialise(&own).unwrap()).is_empty());
    }

    /// Re-importing the same file changes nothing and writes nothing: no
    /// new change in the log (the comparison is made before any write).
    #[test]
    fn an_unchanged_reimport_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = replica(dir.path());
        let outcome = parse(&opencoesione(30, 50, "In esecuzione"));
        assert_eq!(apply_outcome(&mut r, &outcome).unwrap().added, 30);
        let own = r.own_doc();
        let changes = |r: &mut Replica| r.materialise(&own).unwrap().get_changes(&[]).len();
        let before = changes(&mut r);
        let again = apply_outcome(&mut r, &outcome).unwrap();
        assert_eq!(
            again,
            Applied {
                unchanged: 30,
                ..Applied::default()
            }
        );
        assert_eq!(changes(&mut r), before);
        // One project differing: written, the others counted unchanged.
        let mut changed = outcome.clone();
        changed.projects[7].project.title = "Progetto rinominato".into();
        let applied = apply_outcome(&mut r, &changed).unwrap();
        assert_eq!((applied.updated, applied.unchanged), (1, 29));
        assert_eq!(changes(&mut r), before + 1);
    }

    /// The fast way to an unchanged row (the stored record's JSON) misses
    /// no change: a row differing from the stored project in one amount
    /// only is written; a stored project whose fields the file does not
    /// carry were set by hand still reads as unchanged for an identical
    /// row; a row removed from the file leaves its project as it was.
    #[test]
    fn a_reimport_applies_a_one_field_change_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = replica(dir.path());
        let own = r.own_doc();
        let first = parse(&opencoesione(20, 50, "In esecuzione"));
        assert_eq!(apply_outcome(&mut r, &first).unwrap().added, 20);
        r.edit(&own, 1, |doc| {
            let old = portfolio::list(doc).remove(4);
            let mut new = old.clone();
            new.state_override = Some(ProceduralState::NonDeterminabile);
            new.notes = Some("verificare".into());
            new.zone = Some("Z1".into());
            Ok(portfolio::save(doc, Some(&old), &new)?)
        })
        .unwrap();
        let changes = |r: &mut Replica| r.materialise(&own).unwrap().get_changes(&[]).len();
        let before = changes(&mut r);
        assert_eq!(apply_outcome(&mut r, &first).unwrap().unchanged, 20);
        assert_eq!(changes(&mut r), before);
        // One amount of one row: that project is written, with the amount.
        let mut one = first.clone();
        one.projects[11].project.committed_cents = Some(1);
        let key = one.projects[11].key.clone();
        let applied = apply_outcome(&mut r, &one).unwrap();
        assert_eq!((applied.updated, applied.unchanged), (1, 19));
        let stored = portfolio::list(&r.materialise(&own).unwrap())
            .into_iter()
            .find(|p| p.import_key.as_deref() == Some(key.as_str()))
            .unwrap();
        assert_eq!(stored.committed_cents, Some(1));
        // A row removed: the others unchanged, nothing written, and the
        // project stays with what it had (the hand-set fields included).
        let mut fewer = one.clone();
        fewer.projects.remove(4);
        let before = changes(&mut r);
        let applied = apply_outcome(&mut r, &fewer).unwrap();
        assert_eq!(
            applied,
            Applied {
                unchanged: 19,
                ..Applied::default()
            }
        );
        assert_eq!(changes(&mut r), before);
        let projects = portfolio::list(&r.materialise(&own).unwrap());
        assert_eq!(projects.len(), 20);
        let edited = projects.iter().find(|p| p.notes.is_some()).unwrap();
        assert_eq!(edited.zone.as_deref(), Some("Z1"));
        let rebuilt = r.store.write(|tx| crate::views::rebuild(tx, &[])).unwrap();
        assert_eq!(rebuilt.differing, 0, "{rebuilt:?}");
    }

    /// The views an import keeps (derived from the typed projects it wrote)
    /// are those the document gives, and what a rebuild from the log
    /// derives: after a first import, after a re-import updating projects
    /// one of which has a state set by hand, and after one changing a row.
    #[test]
    fn imported_views_equal_the_document_and_a_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = replica(dir.path());
        let own = r.own_doc();
        let check = |r: &mut Replica| {
            let listed: Vec<Project> = r
                .query(|tx| crate::views::projects(tx, Some(&own), true))
                .unwrap()
                .into_iter()
                .map(|(_, p)| p)
                .collect();
            assert_eq!(listed, portfolio::list(&r.materialise(&own).unwrap()));
            let rebuilt = r.store.write(|tx| crate::views::rebuild(tx, &[])).unwrap();
            assert_eq!(rebuilt.differing, 0, "{rebuilt:?}");
            listed
        };
        let first = parse(&opencoesione(40, 50, "In affidamento"));
        assert_eq!(apply_outcome(&mut r, &first).unwrap().added, 40);
        assert_eq!(check(&mut r).len(), 40);
        r.edit(&own, 1, |doc| {
            let old = portfolio::list(doc).remove(3);
            let mut new = old.clone();
            new.state_override = Some(ProceduralState::NonDeterminabile);
            Ok(portfolio::save(doc, Some(&old), &new)?)
        })
        .unwrap();
        let next = parse(&opencoesione(40, 50, "In esecuzione"));
        assert_eq!(apply_outcome(&mut r, &next).unwrap().updated, 40);
        let listed = check(&mut r);
        assert_eq!(
            listed.iter().filter(|p| p.state_override.is_some()).count(),
            1
        );
        let mut changed = next.clone();
        changed.projects[5].project.title = "Progetto rinominato".into();
        let applied = apply_outcome(&mut r, &changed).unwrap();
        assert_eq!((applied.updated, applied.unchanged), (1, 39));
        assert!(check(&mut r)
            .iter()
            .any(|p| p.title == "Progetto rinominato"));
    }

    /// Two rows resolving to one stored project (one by id, one by import
    /// key) are refused, naming both lines, and nothing is written.
    #[test]
    fn two_rows_for_one_project_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = replica(dir.path());
        let outcome = parse(&opencoesione(3, 50, "In esecuzione"));
        apply_outcome(&mut r, &outcome).unwrap();
        let own = r.own_doc();
        let first = portfolio::list(&r.materialise(&own).unwrap())
            .into_iter()
            .find(|p| p.import_key.as_deref() == Some(outcome.projects[0].key.as_str()))
            .unwrap();
        let mut twice = outcome.clone();
        twice.projects[2].id = Some(first.id.clone());
        twice.projects[2].project.title = "Altro".into();
        let e = apply_outcome(&mut r, &twice).unwrap_err().to_string();
        assert!(
            e.contains("line 4: the same project") && e.contains("as line 2"),
            "{e}"
        );
        assert!(portfolio::list(&r.materialise(&own).unwrap())
            .iter()
            .all(|p| p.title != "Altro"));
    }

    /// A re-import of an OpenCoesione file updates what the file says and
    /// keeps what the office set by hand (a state override, notes).
    #[test]
    fn a_reimport_keeps_the_state_set_by_hand() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = replica(dir.path());
        apply_outcome(&mut r, &parse(&opencoesione(2, 50, "In affidamento"))).unwrap();
        let own = r.own_doc();
        r.edit(&own, 1, |doc| {
            let old = portfolio::list(doc).remove(0);
            let mut new = old.clone();
            new.state_override = Some(ProceduralState::NonDeterminabile);
            new.notes = Some("verificare".into());
            Ok(portfolio::save(doc, Some(&old), &new)?)
        })
        .unwrap();
        let applied = apply_outcome(&mut r, &parse(&opencoesione(2, 50, "In esecuzione"))).unwrap();
        assert_eq!(applied.updated, 2);
        let projects = portfolio::list(&r.materialise(&own).unwrap());
        let edited = projects.iter().find(|p| p.notes.is_some()).unwrap();
        assert_eq!(
            edited.state_override,
            Some(ProceduralState::NonDeterminabile)
        );
        assert_eq!(edited.stated_state, Some(ProceduralState::Esecuzione));
        assert!(projects
            .iter()
            .all(|p| p.stated_state == Some(ProceduralState::Esecuzione)));
    }
}
