//! Projects as lists give them to programs: the items of
//! `accordo project list --format json`, also served at `/api/v1/projects`.

use crate::views::Listed;
use accordo_domain::comuni;
use accordo_protocol::doc::DocId;
use serde_json::{json, Value};

/// How a document is named in lists: its comune's code, or `plan`/`registry`.
pub fn comune_of(doc: &DocId) -> String {
    match doc {
        DocId::Comune(c) => c.to_string(),
        DocId::Plan => "plan".into(),
        DocId::Registry => "registry".into(),
    }
}

/// The JSON items of a project list (field names are part of the
/// command-line and HTTP contracts).
pub fn project_items(listed: &[Listed]) -> Vec<Value> {
    listed
        .iter()
        .map(|(d, p)| {
            let comune = comune_of(d);
            json!({"id": p.id, "cup": p.cup, "title": p.title, "comune": comune,
                "comune_name": comuni::name(&comune),
                "cost_cents": p.cost_cents, "financed_cents": p.financed_cents,
                "committed_cents": p.committed_cents, "paid_cents": p.paid_cents,
                "procedural_state": p.procedural_state().code(), "archived": p.archived})
        })
        .collect()
}
