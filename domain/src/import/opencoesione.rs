//! OpenCoesione `progetti_esteso`: the columns read, kept or named, the
//! cheap test of a row's comune (so that rows of other comuni of a national
//! extract cost a look at one cell), and one row read into a project.

use super::{Imported, Row};
use crate::model::{
    FundingLine, FundingSource, Location, Phase, PhaseDates, ProceduralState, Project,
};
use crate::table::{RowReader, Table};
use accordo_protocol::codes::Istat;
use std::collections::BTreeMap;

pub(super) const OC_FUNDING: &[(&str, FundingSource)] = &[
    ("finanz_ue_fesr", FundingSource::Fesr),
    ("finanz_ue_fse", FundingSource::Fse),
    ("finanz_ue_feasr", FundingSource::Feasr),
    ("finanz_ue_feamp", FundingSource::Feamp),
    ("finanz_ue_iog", FundingSource::UeAltro),
    (
        "finanz_stato_fondo_di_rotazione",
        FundingSource::FondoRotazione,
    ),
    ("finanz_stato_fsc", FundingSource::Fsc),
    ("finanz_stato_pac", FundingSource::Pac),
    ("finanz_stato_altri_provvedimenti", FundingSource::Stato),
    ("finanz_regione", FundingSource::Regione),
    ("finanz_provincia", FundingSource::Provincia),
    ("finanz_comune", FundingSource::Comune),
    ("finanz_altro_pubblico", FundingSource::AltroPubblico),
    ("finanz_privato", FundingSource::Privato),
    ("finanz_da_reperire", FundingSource::DaReperire),
];

/// OpenCoesione columns read into typed fields (besides funding and phases).
pub(super) const OC_MAPPED: &[&str] = &[
    "cod_locale_progetto",
    "cup",
    "oc_titolo_progetto",
    "oc_sintesi_progetto",
    "oc_denom_attuatore",
    "oc_denominazione_attuatore",
    "cod_comune",
    "finanz_totale_pubblico",
    "impegni",
    "tot_pagamenti",
    "oc_codice_programma",
    "oc_stato_procedurale",
];

/// OpenCoesione columns kept as published in `source_fields`.
pub(super) const OC_KEPT: &[&str] = &[
    "oc_stato_progetto",
    "oc_cod_fonte",
    "fondo_comunitario",
    "oc_descrizione_programma",
    "oc_data_inizio_progetto",
    "oc_data_fine_progetto_prevista",
    "oc_data_fine_progetto_effettiva",
    "costo_realizzato",
    "oc_finanz_tot_pub_netto",
    "oc_tema_sintetico",
    "cup_descr_natura",
    "cup_descr_tipologia",
    "data_aggiornamento",
];

/// OpenCoesione columns that repeat a mapped one (`DEN_COMUNE` names `COD_COMUNE`).
pub(super) const OC_REDUNDANT: &[&str] = &["den_comune"];

/// The phase-date columns `DATA_{INIZIO,FINE}_{PREV,EFF}_<PHASE>` of a phase.
fn oc_phase_columns(phase: Phase) -> [String; 4] {
    let c = phase.code().to_lowercase();
    ["inizio_prev", "fine_prev", "inizio_eff", "fine_eff"].map(|k| format!("data_{k}_{c}"))
}

/// Every OpenCoesione column this importer reads or keeps.
pub(super) fn oc_known_columns() -> Vec<String> {
    let phases = Phase::ALL.iter().flat_map(|p| oc_phase_columns(*p));
    OC_MAPPED
        .iter()
        .chain(OC_KEPT)
        .chain(OC_REDUNDANT)
        .chain(OC_FUNDING.iter().map(|(c, _)| c))
        .map(|c| (*c).to_owned())
        .chain(phases)
        .collect()
}

/// Phase dates in OpenCoesione columns `DATA_{INIZIO,FINE}_{PREV,EFF}_{PHASE}`.
fn oc_phases(
    r: &mut RowReader<'_>,
    columns: &[(Phase, [String; 4])],
) -> BTreeMap<Phase, PhaseDates> {
    let mut out = BTreeMap::new();
    for (phase, [ps, pe, as_, ae]) in columns {
        let d = PhaseDates {
            planned_start: r.date(&[ps]),
            planned_end: r.date(&[pe]),
            actual_start: r.date(&[as_]),
            actual_end: r.date(&[ae]),
        };
        if d != PhaseDates::default() {
            out.insert(*phase, d);
        }
    }
    out
}

/// The phase-date columns present in a file's header, found once.
pub(super) struct OcColumns {
    phases: Vec<(Phase, [String; 4])>,
}

impl OcColumns {
    pub(super) fn new(header: &Table) -> Self {
        let phases = Phase::ALL
            .iter()
            .map(|p| (*p, oc_phase_columns(*p)))
            .filter(|(_, names)| names.iter().any(|n| header.column(&[n]).is_some()))
            .collect();
        OcColumns { phases }
    }
}

/// Why a row is not of comune `own`, read from its `COD_COMUNE` cell alone,
/// when that is certain: its first code reads as another comune. Anything
/// else (ours, empty, unreadable) goes to [`row`], which names the problem.
pub(super) fn other_comune(cod_comune: Option<&str>, own: &Istat) -> Option<String> {
    let first = cod_comune?.split(":::").next()?.trim();
    let code = first_code(first).parse::<Istat>().ok()?;
    (code != *own).then(|| format!("belongs to comune {code}, not {own}"))
}

/// The 6-digit ISTAT part of a 9-digit OpenCoesione code (else the text).
fn first_code(t: &str) -> &str {
    // Byte slicing below is safe only on ASCII (found by fuzzing).
    if t.len() == 9 && t.is_ascii() {
        &t[3..]
    } else {
        t
    }
}

/// One row: a project of `own`, a row of another comune, or errors only.
pub(super) fn row(r: &mut RowReader<'_>, columns: &OcColumns, own: &Istat) -> Row {
    let comuni = oc_comuni(r);
    // A project located in several comuni belongs to the first listed,
    // so that the metropolitan aggregate counts it once.
    if comuni.first().map(String::as_str) != Some(own.as_str()) {
        let first = comuni.first().map_or("?", |c| c.as_str());
        return Row::Skipped(format!("belongs to comune {first}, not {own}"));
    }
    let Some(local) = r.require(&["cod_locale_progetto"]) else {
        return Row::Failed;
    };
    let mut p = Project {
        cup: r.cup(&["cup"]),
        local_code: Some(local.clone()),
        import_key: Some(format!("oc:{local}")),
        title: r.require(&["oc_titolo_progetto"]).unwrap_or_default(),
        summary: r.text(&["oc_sintesi_progetto"]),
        implementing_body: r.text(&["oc_denom_attuatore", "oc_denominazione_attuatore"]),
        financed_cents: r.amount(&["finanz_totale_pubblico"], true),
        committed_cents: r.amount(&["impegni"], true),
        paid_cents: r.amount(&["tot_pagamenti"], true),
        phases: oc_phases(r, &columns.phases),
        stated_state: r.typed::<ProceduralState>(&["oc_stato_procedurale"]),
        ..Project::default()
    };
    r.keep(OC_KEPT, &mut p.source_fields);
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
    let programme = r.text(&["oc_codice_programma"]);
    for (col, source) in OC_FUNDING {
        if let Some(amount) = r.amount(&[col], true).filter(|a| *a != 0) {
            let line_id = col.trim_start_matches("finanz_").to_owned();
            p.funding.insert(
                line_id,
                FundingLine {
                    source: *source,
                    programme: programme.clone(),
                    amount_cents: amount,
                },
            );
        }
    }
    Row::Kept(Box::new(Imported {
        line: r.line,
        key: format!("oc:{local}"),
        id: None,
        project: p,
    }))
}

/// OpenCoesione's `COD_COMUNE`: 9 digits (region + ISTAT), several joined by `:::`.
fn oc_comuni(r: &mut RowReader<'_>) -> Vec<String> {
    let Some(v) = r.text(&["cod_comune"]) else {
        r.fail("cod_comune", "", "a value is required");
        return Vec::new();
    };
    let mut out = Vec::new();
    for part in v.split(":::") {
        match first_code(part.trim()).parse::<Istat>() {
            Ok(c) => out.push(c.to_string()),
            Err(_) => r.fail(
                "cod_comune",
                part,
                "expected a 9-digit code (3-digit region + 6-digit ISTAT)",
            ),
        }
    }
    out
}
