//! The project list (`project list`, `list`): a table for people or JSON,
//! across the comune documents a node holds.

use crate::output_format::Format;
use crate::views::Listed;
use accordo_domain::comuni;
use accordo_domain::money::format_eur;
use accordo_protocol::doc::DocId;
use anyhow::Result;
use serde_json::json;

/// How a document is named in lists: its comune's code, or `plan`/`registry`.
pub(super) fn comune_of(doc: &DocId) -> String {
    match doc {
        DocId::Comune(c) => c.to_string(),
        DocId::Plan => "plan".into(),
        DocId::Registry => "registry".into(),
    }
}

/// Width of the COMUNE column of project lists: `Name (ISTAT)` for most
/// comuni (longer names push the row, they are not cut).
pub(super) const COMUNE_WIDTH: usize = 28;

/// Prints projects as the query store lists them (document, then CUP).
pub(super) fn print_projects(listed: Vec<Listed>, format: Format) -> Result<()> {
    let rows: Vec<_> = listed
        .into_iter()
        .map(|(d, p)| (comune_of(&d), p))
        .collect();
    if format == Format::Json {
        let items: Vec<_> = rows
            .iter()
            .map(|(comune, p)| {
                json!({"id": p.id, "cup": p.cup, "title": p.title, "comune": comune,
                    "comune_name": comuni::name(comune),
                    "cost_cents": p.cost_cents, "financed_cents": p.financed_cents,
                    "committed_cents": p.committed_cents, "paid_cents": p.paid_cents,
                    "procedural_state": p.procedural_state().code(), "archived": p.archived})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(());
    }
    println!(
        "{:<COMUNE_WIDTH$} {:<16} {:>16}  TITLE",
        "COMUNE", "CUP", "COST EUR"
    );
    for (comune, p) in &rows {
        let cost = p.cost_cents.map(format_eur).unwrap_or_else(|| "-".into());
        println!(
            "{:<COMUNE_WIDTH$} {:<16} {cost:>16}  {}",
            comuni::label(comune),
            p.cup.as_deref().unwrap_or("-"),
            p.title
        );
    }
    println!("{} project(s)", rows.len());
    Ok(())
}
