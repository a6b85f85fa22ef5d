//! Accordo's own open-data format: the columns, a project as a row of them,
//! and a row read back into a project. [`crate::export`] writes it as CSV,
//! XLSX and JSON; [`crate::import`] reads it back to the same projects.
//!
//! Columns (Italian names, one row per project):
//!
//! | column | content |
//! | --- | --- |
//! | `id_progetto` | internal id (re-import updates this project) |
//! | `comune` | ISTAT code of the comune whose document holds it |
//! | `cup`, `codice_locale`, `chiave_import` | CUP, local code, import key |
//! | `titolo`, `sintesi`, `soggetto_attuatore` | title, summary, implementing body |
//! | `localizzazioni` | `ISTAT:percent` joined by `\|` (`000` = national) |
//! | `collegamenti_psm`, `sdg`, `dimensioni` | codes joined by `\|` |
//! | `zona`, `misura_pnrr` | zona omogenea, PNRR measure (`M5C2I2.2`) |
//! | `costo_eur`, `finanziato_eur`, `impegnato_eur`, `pagato_eur` | amounts, `1234567.89` |
//! | `fonti_finanziamento`, `fasi`, `milestone` | JSON objects keyed by line, phase and milestone id |
//! | `stato_procedurale` | the state in force (export only) |
//! | `stato_forzato` | state set by hand, if any |
//! | `avanzamento_fisico_pct`, `responsabile`, `note`, `archiviato` (`si`/`no`), `creato_ms` | |
//! | `comune_name` | name of `comune` in the ISTAT list (export only; empty for a code it lacks) |
//! | `stato_dichiarato` | state published by the source (`OC_STATO_PROCEDURALE`), if any |
//! | `origine_stato` | where `stato_procedurale` comes from: `override`, `stated` or `derived` (export only) |
//! | `campi_fonte` | source columns kept as published, a JSON object keyed by normalised header |
//!
//! Columns are only ever appended, so files written by older versions still
//! import and readers that pick columns by position keep working. The JSON
//! export carries the same name as `comune_name`.

use crate::model::{Dimension, Location, PhaseDates, PnrrMeasure, ProceduralState, Project};
use crate::table::RowReader;
use std::collections::BTreeMap;

/// The columns, in file order.
pub const ACCORDO_COLUMNS: &[&str] = &[
    "id_progetto",
    "comune",
    "cup",
    "codice_locale",
    "chiave_import",
    "titolo",
    "sintesi",
    "soggetto_attuatore",
    "localizzazioni",
    "collegamenti_psm",
    "zona",
    "sdg",
    "dimensioni",
    "misura_pnrr",
    "costo_eur",
    "finanziato_eur",
    "impegnato_eur",
    "pagato_eur",
    "fonti_finanziamento",
    "fasi",
    "milestone",
    "stato_procedurale",
    "stato_forzato",
    "avanzamento_fisico_pct",
    "responsabile",
    "note",
    "archiviato",
    "creato_ms",
    // Appended after the columns of the first release: positional readers
    // of earlier exports keep working.
    "comune_name",
    "stato_dichiarato",
    "origine_stato",
    "campi_fonte",
];

pub(crate) fn plain_eur(cents: Option<i64>) -> String {
    cents
        .map(|c| {
            let sign = if c < 0 { "-" } else { "" };
            format!(
                "{sign}{}.{:02}",
                c.unsigned_abs() / 100,
                c.unsigned_abs() % 100
            )
        })
        .unwrap_or_default()
}

fn json_cell<T: serde::Serialize>(v: &BTreeMap<String, T>) -> String {
    if v.is_empty() {
        String::new()
    } else {
        serde_json::to_string(v).unwrap_or_default()
    }
}

/// One project as a row of [`ACCORDO_COLUMNS`].
pub fn project_row(comune: &str, p: &Project) -> Vec<String> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let locations = p
        .locations
        .values()
        .map(|l| {
            format!(
                "{}:{}",
                l.comune.as_deref().unwrap_or("000"),
                plain_eur(Some(l.share_bp))
            )
        })
        .collect::<Vec<_>>()
        .join("|");
    let phases: BTreeMap<String, _> = p
        .phases
        .iter()
        .map(|(k, v)| (k.code().to_owned(), v))
        .collect();
    vec![
        p.id.clone(),
        comune.to_owned(),
        opt(&p.cup),
        opt(&p.local_code),
        opt(&p.import_key),
        p.title.clone(),
        opt(&p.summary),
        opt(&p.implementing_body),
        locations,
        p.psm_links.iter().cloned().collect::<Vec<_>>().join("|"),
        opt(&p.zone),
        p.sdgs
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join("|"),
        p.dimensions
            .iter()
            .map(|d| d.code())
            .collect::<Vec<_>>()
            .join("|"),
        p.pnrr_measure
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
        plain_eur(p.cost_cents),
        plain_eur(p.financed_cents),
        plain_eur(p.committed_cents),
        plain_eur(p.paid_cents),
        json_cell(&p.funding),
        json_cell(&phases),
        json_cell(&p.milestones),
        p.procedural_state().code().to_owned(),
        p.state_override
            .map(|s| s.code().to_owned())
            .unwrap_or_default(),
        p.physical_progress_pct
            .map(|v| v.to_string())
            .unwrap_or_default(),
        opt(&p.officer),
        opt(&p.notes),
        if p.archived { "si" } else { "no" }.to_owned(),
        p.created_ms.to_string(),
        crate::comuni::name(comune).unwrap_or_default().to_owned(),
        p.stated_state
            .map(|s| s.code().to_owned())
            .unwrap_or_default(),
        p.state_and_basis().1.code().to_owned(),
        json_cell(&p.source_fields),
    ]
}

fn json_field<T: serde::de::DeserializeOwned + Default>(r: &mut RowReader<'_>, column: &str) -> T {
    let Some(v) = r.text(&[column]) else {
        return T::default();
    };
    match serde_json::from_str(&v) {
        Ok(t) => t,
        Err(e) => {
            r.fail(
                column,
                &v,
                format!("expected the JSON written by `accordo export`: {e}"),
            );
            T::default()
        }
    }
}

fn split(v: Option<String>) -> Vec<String> {
    v.map(|s| {
        s.split('|')
            .map(|x| x.trim().to_owned())
            .filter(|x| !x.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

/// Reads one row of Accordo's format back into a project (errors go to `r`).
pub fn project_from_row(r: &mut RowReader<'_>) -> Option<Project> {
    let errors_before = r.errors.len();
    let mut p = Project {
        id: r.text(&["id_progetto"]).unwrap_or_default(),
        cup: r.cup(&["cup"]),
        local_code: r.text(&["codice_locale"]),
        import_key: r.text(&["chiave_import"]),
        title: r.require(&["titolo"]).unwrap_or_default(),
        summary: r.text(&["sintesi"]),
        implementing_body: r.text(&["soggetto_attuatore"]),
        psm_links: split(r.text(&["collegamenti_psm"])).into_iter().collect(),
        zone: r.text(&["zona"]),
        pnrr_measure: r.typed::<PnrrMeasure>(&["misura_pnrr"]),
        cost_cents: r.amount(&["costo_eur"], false),
        financed_cents: r.amount(&["finanziato_eur"], false),
        committed_cents: r.amount(&["impegnato_eur"], false),
        paid_cents: r.amount(&["pagato_eur"], false),
        funding: json_field(r, "fonti_finanziamento"),
        milestones: json_field(r, "milestone"),
        state_override: r.typed::<ProceduralState>(&["stato_forzato"]),
        stated_state: r.typed::<ProceduralState>(&["stato_dichiarato"]),
        source_fields: json_field(r, "campi_fonte"),
        officer: r.text(&["responsabile"]),
        notes: r.text(&["note"]),
        ..Project::default()
    };
    let phases: BTreeMap<String, PhaseDates> = json_field(r, "fasi");
    for (code, dates) in phases {
        match code.parse() {
            Ok(phase) => {
                p.phases.insert(phase, dates);
            }
            Err(e) => r.fail("fasi", &code, crate::model::FieldError::problem(&e)),
        }
    }
    for s in split(r.text(&["sdg"])) {
        match crate::model::parse_sdg(&s) {
            Ok(n) => {
                p.sdgs.insert(n);
            }
            Err(e) => r.fail("sdg", &s, e.problem),
        }
    }
    for s in split(r.text(&["dimensioni"])) {
        match s.parse::<Dimension>() {
            Ok(d) => {
                p.dimensions.insert(d);
            }
            Err(e) => r.fail("dimensioni", &s, e.problem),
        }
    }
    for s in split(r.text(&["localizzazioni"])) {
        let (code, share) = s.split_once(':').unwrap_or((&s, "100.00"));
        let share_bp = crate::money::parse_eur_cents("share", share).ok();
        let comune = (code != "000").then(|| code.to_owned());
        match share_bp {
            Some(share_bp) => {
                p.locations
                    .insert(code.to_owned(), Location { comune, share_bp });
            }
            None => r.fail(
                "localizzazioni",
                &s,
                "expected ISTAT:percent such as 092009:60.00",
            ),
        }
    }
    if let Some(v) = r.text(&["avanzamento_fisico_pct"]) {
        match v.parse::<i64>() {
            Ok(n) => p.physical_progress_pct = Some(n),
            Err(_) => r.fail(
                "avanzamento_fisico_pct",
                &v,
                "expected an integer percentage",
            ),
        }
    }
    p.archived = matches!(
        r.text(&["archiviato"]).as_deref(),
        Some("si" | "sì" | "true" | "1")
    );
    p.created_ms = r
        .text(&["creato_ms"])
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if let Err(e) = p.validate() {
        r.fail(&e.field, &e.value, e.problem);
    }
    (r.errors.len() == errors_before).then_some(p)
}
