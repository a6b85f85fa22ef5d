//! The project list (`project list`, `list`): a table for people or JSON,
//! across the comune documents a node holds.

use crate::output_format::Format;
use crate::views::Listed;
use accordo_domain::comuni;
use accordo_domain::money::format_eur;
use anyhow::Result;

pub(super) use crate::ops::listing::comune_of;

/// Width of the COMUNE column of project lists: `Name (ISTAT)` for most
/// comuni (longer names push the row, they are not cut).
pub(super) const COMUNE_WIDTH: usize = 28;

/// Prints projects as the query store lists them (document, then CUP).
pub(super) fn print_projects(listed: Vec<Listed>, format: Format) -> Result<()> {
    if format == Format::Json {
        let items = crate::ops::listing::project_items(&listed);
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(());
    }
    let rows: Vec<_> = listed
        .into_iter()
        .map(|(d, p)| (comune_of(&d), p))
        .collect();
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
