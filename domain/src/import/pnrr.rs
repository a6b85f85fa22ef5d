//! Italia Domani `PNRR_Progetti` (with `PNRR_Localizzazione`, read whole:
//! it is small and every row of the projects file is placed through it):
//! the columns read, kept or named, and one row read into a project.

use super::{file_error, require_columns, ImportErrors, Imported, Row};
use crate::model::{FundingLine, FundingSource, Location, Phase, PhaseDates, PnrrMeasure, Project};
use crate::table::{RowError, RowReader, Table};
use accordo_protocol::codes::Istat;
use std::collections::HashMap;

/// (CUP, codice locale progetto) -> ISTAT comuni.
pub(super) type Places = HashMap<(String, String), Vec<String>>;

pub(super) const PNRR_FUNDING: &[(&str, FundingSource)] = &[
    ("finanziamento pnrr", FundingSource::Pnrr),
    ("finanziamento pnc", FundingSource::Pnc),
    ("finanziamento stato", FundingSource::Stato),
    ("finanziamento ue (non pnrr)", FundingSource::UeAltro),
    ("finanziamento regione", FundingSource::Regione),
    ("finanziamento provincia", FundingSource::Provincia),
    ("finanziamento comune", FundingSource::Comune),
    ("finanziamento altro pubblico", FundingSource::AltroPubblico),
    ("finanziamento privato", FundingSource::Privato),
    ("finanziamento da reperire", FundingSource::DaReperire),
    ("finanziamento altri fondi", FundingSource::Altro),
];

/// PNRR_Progetti columns read into typed fields (besides funding).
pub(super) const PNRR_MAPPED: &[&str] = &[
    "cup",
    "codice locale progetto",
    "codice univoco submisura",
    "titolo progetto",
    "sintesi progetto",
    "soggetto attuatore",
    "id misura",
    "misura",
    "finanziamento totale pubblico",
    "finanziamento totale",
    "data inizio progetto prevista",
    "data fine progetto prevista",
    "data inizio progetto effettiva",
    "data fine progetto effettiva",
];

/// PNRR_Progetti columns kept as published in `source_fields`.
pub(super) const PNRR_KEPT: &[&str] = &[
    "missione",
    "componente",
    "codice univoco submisura",
    "finanziamento totale",
    "descrizione fase iter di progetto",
    "stato avanzamento progetto",
];

/// Every PNRR_Progetti column this importer reads or keeps.
pub(super) fn pnrr_known_columns() -> Vec<&'static str> {
    PNRR_MAPPED
        .iter()
        .chain(PNRR_KEPT)
        .chain(PNRR_FUNDING.iter().map(|(c, _)| c))
        .copied()
        .collect()
}

/// (CUP, codice locale progetto) -> ISTAT comuni, from PNRR_Localizzazione.
fn pnrr_locations(loc: &Table, errors: &mut Vec<RowError>) -> Result<Places, ImportErrors> {
    require_columns(
        loc,
        "PNRR_Localizzazione",
        &["cup", "codice provincia", "codice comune"],
    )?;
    let mut out = Places::new();
    for (line, cells) in &loc.rows {
        let mut r = RowReader::new(loc, *line, cells, errors);
        let cup = r.text(&["cup"]).unwrap_or_default();
        let clp = r.text(&["codice locale progetto"]).unwrap_or_default();
        let (Some(prov), Some(com)) = (r.text(&["codice provincia"]), r.text(&["codice comune"]))
        else {
            continue;
        };
        let code = format!("{:0>3}{:0>3}", prov.trim(), com.trim());
        match code.parse::<Istat>() {
            Ok(c) => out.entry((cup, clp)).or_default().push(c.to_string()),
            Err(_) => r.fail(
                "codice comune",
                &format!("{prov}/{com}"),
                "expected a province code and a comune code of up to 3 digits each",
            ),
        }
    }
    Ok(out)
}

/// The places of the projects, or why a PNRR file cannot be placed.
pub(super) fn places(
    header: &Table,
    localizzazione: Option<&Table>,
    errors: &mut Vec<RowError>,
) -> Result<Places, ImportErrors> {
    require_columns(header, "PNRR_Progetti", &["cup", "titolo progetto"])?;
    let Some(loc) = localizzazione else {
        return Err(file_error("PNRR_Progetti has no comune column: pass the matching PNRR_Localizzazione file with --localizzazione FILE"));
    };
    pnrr_locations(loc, errors)
}

/// One row: a project of `own`, a row of another comune, or errors only.
pub(super) fn row(r: &mut RowReader<'_>, places: &Places, own: &Istat) -> Row {
    let cup_text = r.text(&["cup"]).unwrap_or_default();
    let clp = r.text(&["codice locale progetto"]).unwrap_or_default();
    let comuni = places
        .get(&(cup_text.clone(), clp.clone()))
        .or_else(|| places.get(&(cup_text.clone(), String::new())))
        .cloned()
        .unwrap_or_default();
    // As for OpenCoesione: the first location owns the project.
    if comuni.first().map(String::as_str) != Some(own.as_str()) {
        let first = comuni.first().map_or("no location", |c| c.as_str());
        return Row::Skipped(format!("belongs to comune {first}, not {own}"));
    }
    let sub = r.text(&["codice univoco submisura"]).unwrap_or_default();
    let key = format!("pnrr:{sub}|{cup_text}|{clp}");
    let mut p = Project {
        cup: r.cup(&["cup"]),
        local_code: (!clp.is_empty()).then(|| clp.clone()),
        import_key: Some(key.clone()),
        title: r.require(&["titolo progetto"]).unwrap_or_default(),
        summary: r.text(&["sintesi progetto"]),
        implementing_body: r.text(&["soggetto attuatore"]),
        pnrr_measure: r.typed::<PnrrMeasure>(&["id misura", "misura"]),
        financed_cents: r
            .amount(&["finanziamento totale pubblico"], true)
            .or_else(|| r.amount(&["finanziamento totale"], true)),
        ..Project::default()
    };
    r.keep(PNRR_KEPT, &mut p.source_fields);
    let dates = PhaseDates {
        planned_start: r.date(&["data inizio progetto prevista"]),
        planned_end: r.date(&["data fine progetto prevista"]),
        actual_start: r.date(&["data inizio progetto effettiva"]),
        actual_end: r.date(&["data fine progetto effettiva"]),
    };
    if dates != PhaseDates::default() {
        // PNRR files give the project's own dates: recorded as execution.
        p.phases.insert(Phase::Esecuzione, dates);
    }
    let share = 10_000 / comuni.len().max(1) as i64;
    for c in &comuni {
        p.locations.insert(
            c.clone(),
            Location {
                comune: Some(c.clone()),
                share_bp: share,
            },
        );
    }
    for (col, source) in PNRR_FUNDING {
        if let Some(amount) = r.amount(&[col], true).filter(|a| *a != 0) {
            let id = source.code().to_lowercase().replace(['+', ' '], "_");
            p.funding.insert(
                id,
                FundingLine {
                    source: *source,
                    programme: None,
                    amount_cents: amount,
                },
            );
        }
    }
    Row::Kept(Box::new(Imported {
        line: r.line,
        key,
        id: None,
        project: p,
    }))
}
