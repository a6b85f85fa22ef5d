//! `accordo audit CUP`: every change that touched a project, who signed it
//! (key, and the comune and role the registry gives that key), when, which
//! fields it touched, whether its signature still verifies and whether the
//! registry holds it valid.

use crate::output_format::Format;
use crate::replica::Replica;
use accordo_domain::portfolio;
use accordo_protocol::codes::{Cup, Istat};
use accordo_protocol::doc::DocId;
use accordo_protocol::envelope::ChangeHash;
use accordo_protocol::registry::ChangeMeta;
use anyhow::{Context, Result};
use automerge::legacy::{Key, ObjectId};
use automerge::Change;
use serde::Serialize;
use std::collections::BTreeSet;
use std::time::{Duration, UNIX_EPOCH};

#[derive(Debug, Serialize)]
pub struct AuditRow {
    pub hash: String,
    pub author: String,
    pub comune: Option<String>,
    pub role: Option<String>,
    pub time: String,
    /// The person named in the signed change (an edit made through the
    /// web application by a signed-in user).
    pub person: Option<String>,
    pub fields: Vec<String>,
    pub signature_valid: bool,
    pub valid: bool,
    pub problem: Option<String>,
}

pub fn audit(dir: &std::path::Path, cup: &Cup, comune: Option<&str>, format: Format) -> Result<()> {
    let mut replica = Replica::open(dir)?;
    let doc_id = match comune {
        Some(c) => DocId::Comune(c.parse::<Istat>().context("--comune")?),
        None => replica.own_doc(),
    };
    let id = replica.query(|tx| crate::views::find_one(tx, &doc_id, cup))?;
    let rows = trail(&mut replica, &doc_id, &id)?;
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for r in &rows {
            let person = r
                .person
                .as_deref()
                .map(|p| format!(" ({p})"))
                .unwrap_or_default();
            println!(
                "{}  {}{person}  {} {}  {}  [{}]  {}",
                r.time,
                &r.author[..16],
                r.comune.as_deref().unwrap_or("?"),
                r.role.as_deref().unwrap_or("?"),
                &r.hash[..12],
                r.fields.join(", "),
                if r.valid { "valid" } else { "INVALID" }
            );
        }
    }
    Ok(())
}

/// Every change of `doc_id` that touched project `id`, oldest first.
pub fn trail(replica: &mut Replica, doc_id: &DocId, id: &str) -> Result<Vec<AuditRow>> {
    let doc = replica.materialise(doc_id)?;
    let obj = portfolio::project_obj(&doc, id)?.to_string();
    let root_key = format!("project/{id}");
    let verdict = replica.governed().then(|| replica.verdict()).transpose()?;
    let envelopes = replica.store.read(|tx| tx.log().doc_changes(doc_id))?;
    let mut rows = Vec::new();
    for env in envelopes {
        let change = Change::try_from(env.change.as_slice()).context("stored change")?;
        let fields = touched(&change, &obj, &root_key);
        if fields.is_empty() {
            continue;
        }
        let meta = ChangeMeta::of_stored(&env).context("stored change")?;
        let member = verdict
            .as_ref()
            .and_then(|v| v.registry.member(&env.author));
        let problem = verdict
            .as_ref()
            .and_then(|v| v.invalid.get(&meta.hash).cloned());
        let signature_valid = env.clone().verify().is_ok();
        rows.push(AuditRow {
            hash: ChangeHash::from(change.hash()).to_string(),
            author: env.author.to_string(),
            comune: member.as_ref().map(|m| m.comune.to_string()),
            role: member.as_ref().map(|m| m.role.to_string()),
            time: iso_time(meta.time_s),
            person: crate::ops::Author::from_message(change.message()).map(str::to_owned),
            fields: fields.into_iter().collect(),
            signature_valid,
            valid: signature_valid && problem.is_none(),
            problem,
        });
    }
    Ok(rows)
}

/// The fields of the project (object `obj`, at root key `root_key`) that a
/// change touched; `(created)` when it created the project.
fn touched(change: &Change, obj: &str, root_key: &str) -> BTreeSet<String> {
    let mut fields = BTreeSet::new();
    for op in change.decode().operations {
        match (&op.obj, &op.key) {
            (ObjectId::Root, Key::Map(k)) if k.as_str() == root_key => {
                fields.insert("(created)".to_owned());
            }
            (ObjectId::Id(o), Key::Map(k)) if o.to_string() == obj => {
                fields.insert(k.to_string());
            }
            _ => {}
        }
    }
    fields
}

fn iso_time(secs: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}
