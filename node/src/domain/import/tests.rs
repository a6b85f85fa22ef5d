//! Import fixtures (`node/tests/fixtures/import/`) with snapshots of the
//! parsed result and of the error messages, and the export→import round
//! trip as a property.

use super::*;
use crate::domain::export;
use expect_test::{expect_file, ExpectFile};
use proptest::prelude::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/import/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn cagliari() -> Istat {
    "092009".parse().unwrap()
}

/// A readable summary of an outcome or of the errors.
fn render(result: Result<Outcome, ImportErrors>) -> String {
    match result {
        Ok(o) => {
            let mut s = format!(
                "format {:?}, encoding {}, {} rows, {} project(s), skipped {:?}\n",
                o.format,
                o.encoding,
                o.rows,
                o.projects.len(),
                o.skipped
            );
            for i in &o.projects {
                let mut v = serde_json::to_value(&i.project).unwrap();
                v["procedural_state"] = serde_json::json!(i.project.procedural_state().code());
                s.push_str(&format!(
                    "line {} key {}\n{}\n",
                    i.line,
                    i.key,
                    serde_json::to_string_pretty(&v).unwrap()
                ));
            }
            s
        }
        Err(e) => {
            let mut s = format!("{e}\n");
            for err in &e.0 {
                s.push_str(&format!("{err}\n"));
            }
            s
        }
    }
}

fn check(file: &str, format: Format, loc: Option<&str>, snapshot: ExpectFile) {
    let loc = loc.map(fixture);
    let result = import(&fixture(file), false, format, loc.as_deref(), &cagliari());
    snapshot.assert_eq(&render(result));
}

#[test]
fn opencoesione_progetti_esteso() {
    check(
        "opencoesione_progetti_esteso.csv",
        Format::Auto,
        None,
        expect_file!["snapshots/opencoesione.txt"],
    );
}

#[test]
fn opencoesione_in_windows_1252_is_converted() {
    check(
        "opencoesione_windows1252.csv",
        Format::Auto,
        None,
        expect_file!["snapshots/windows1252.txt"],
    );
}

#[test]
fn pnrr_progetti_with_localizzazione() {
    check(
        "pnrr_progetti.csv",
        Format::Auto,
        Some("pnrr_localizzazione.csv"),
        expect_file!["snapshots/pnrr.txt"],
    );
}

#[test]
fn pnrr_without_localizzazione_is_refused() {
    check(
        "pnrr_progetti.csv",
        Format::Pnrr,
        None,
        expect_file!["snapshots/pnrr_no_localizzazione.txt"],
    );
}

#[test]
fn broken_files_name_line_column_and_value() {
    check(
        "opencoesione_bad_cup.csv",
        Format::Auto,
        None,
        expect_file!["snapshots/bad_cup.txt"],
    );
    check(
        "opencoesione_bad_istat.csv",
        Format::Auto,
        None,
        expect_file!["snapshots/bad_istat.txt"],
    );
    check(
        "opencoesione_bad_amount_and_date.csv",
        Format::Auto,
        None,
        expect_file!["snapshots/bad_amount_and_date.txt"],
    );
    check(
        "pnrr_bad_date_and_measure.csv",
        Format::Auto,
        Some("pnrr_localizzazione.csv"),
        expect_file!["snapshots/pnrr_bad.txt"],
    );
    check(
        "unknown_layout.csv",
        Format::Auto,
        None,
        expect_file!["snapshots/unknown_layout.txt"],
    );
    check(
        "unknown_layout.csv",
        Format::Opencoesione,
        None,
        expect_file!["snapshots/unknown_layout_forced.txt"],
    );
}

#[test]
fn italian_amounts() {
    assert_eq!(parse_it_amount("1.234.567,89"), Some(123_456_789));
    assert_eq!(parse_it_amount("1234,5"), Some(123_450));
    assert_eq!(parse_it_amount("1.234"), Some(123_400));
    assert_eq!(parse_it_amount("10,005"), Some(1_001));
    assert_eq!(parse_it_amount("-3,10"), Some(-310));
    assert_eq!(parse_it_amount("12a"), None);
    assert_eq!(parse_it_amount(""), None);
}

fn arb_project() -> impl Strategy<Value = Project> {
    use crate::domain::model::*;
    let source = proptest::sample::select(FundingSource::ALL.to_vec());
    let phase = proptest::sample::select(Phase::ALL.to_vec());
    let date =
        (2000u16..2030, 1u8..=12, 1u8..=28).prop_map(|(y, m, d)| Date::new(y, m, d).unwrap());
    (
        "[0-9a-f]{16}",
        proptest::option::of("[A-Z][0-9]{2}[A-Z][0-9]{11}"),
        "[A-Za-zàèéìòù0-9 ;,\"'|:\\-]{1,40}",
        proptest::option::of("[a-z ;\"]{0,30}"),
        proptest::collection::btree_map(
            "[a-z0-9]{4}",
            (
                source,
                proptest::option::of("[A-Z0-9]{3,8}"),
                0i64..10_000_000_000,
            ),
            0..4,
        ),
        proptest::collection::btree_map(
            phase,
            (
                proptest::option::of(date.clone()),
                proptest::option::of(date.clone()),
            ),
            0..3,
        ),
        proptest::collection::btree_set(1u8..=17, 0..4),
        proptest::option::of(0i64..1_000_000_000_000),
        proptest::option::of(0i64..=100),
        any::<bool>(),
        proptest::collection::btree_map(
            "[0-9a-f]{6}",
            (
                "[A-Z0-9-]{2,8}",
                "[a-z ]{0,20}",
                date.clone(),
                proptest::option::of(date),
            ),
            0..3,
        ),
    )
        .prop_map(
            |(
                id,
                cup,
                title,
                summary,
                funding,
                phases,
                sdgs,
                financed,
                progress,
                archived,
                milestones,
            )| Project {
                id,
                cup,
                title: title.trim().to_owned() + "x",
                summary: summary
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| s.trim().to_owned()),
                funding: funding
                    .into_iter()
                    .map(|(k, (source, programme, amount_cents))| {
                        (
                            k,
                            FundingLine {
                                source,
                                programme,
                                amount_cents,
                            },
                        )
                    })
                    .collect(),
                phases: phases
                    .into_iter()
                    .map(|(p, (s, e))| {
                        (
                            p,
                            PhaseDates {
                                planned_start: s,
                                actual_end: e,
                                ..PhaseDates::default()
                            },
                        )
                    })
                    .collect(),
                sdgs,
                financed_cents: financed,
                physical_progress_pct: progress,
                archived,
                milestones: milestones
                    .into_iter()
                    .map(|(k, (code, description, due, achieved_date))| {
                        (
                            k,
                            Milestone {
                                code,
                                description,
                                unit: None,
                                baseline: None,
                                target: None,
                                due,
                                achieved_date,
                                achieved_value: None,
                            },
                        )
                    })
                    .collect(),
                created_ms: 1_700_000_000_000,
                ..Project::default()
            },
        )
}

fn reimport(bytes: &[u8], xlsx: bool) -> Vec<Project> {
    let o = import(bytes, xlsx, Format::Auto, None, &cagliari())
        .unwrap_or_else(|e| panic!("{e}: {:?}", e.0));
    o.projects.into_iter().map(|i| i.project).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Any portfolio exported to CSV or JSON and imported again is identical.
    #[test]
    fn csv_export_then_import_is_identity(projects in proptest::collection::vec(arb_project(), 1..6)) {
        let mut projects = projects;
        projects.sort_by(|a, b| a.id.cmp(&b.id));
        projects.dedup_by(|a, b| a.id == b.id);
        let rows: Vec<(String, Project)> = projects.iter().map(|p| ("092009".to_owned(), p.clone())).collect();
        let back = reimport(&export::csv_bytes(&rows).unwrap(), false);
        prop_assert_eq!(&back, &projects);
        let json: Vec<serde_json::Value> = serde_json::from_slice(&export::json_bytes(&rows).unwrap()).unwrap();
        for (v, p) in json.iter().zip(&projects) {
            let mut q: Project = serde_json::from_value(v.clone()).unwrap();
            q.id = v["id"].as_str().unwrap().to_owned();
            prop_assert_eq!(&q, p);
        }
    }

    #[test]
    fn xlsx_export_then_import_is_identity(projects in proptest::collection::vec(arb_project(), 1..4)) {
        let mut projects = projects;
        projects.sort_by(|a, b| a.id.cmp(&b.id));
        projects.dedup_by(|a, b| a.id == b.id);
        let rows: Vec<(String, Project)> = projects.iter().map(|p| ("092009".to_owned(), p.clone())).collect();
        let back = reimport(&export::xlsx_bytes(&rows).unwrap(), true);
        prop_assert_eq!(&back, &projects);
    }
}

/// Regressions from the `import_file` fuzz target: inputs that made the
/// importer panic; each must now give projects or located errors.
#[test]
fn fuzz_found_inputs_do_not_panic() {
    let dir = format!("{}/tests/fixtures/import/fuzz", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for format in [
            Format::Auto,
            Format::Opencoesione,
            Format::Pnrr,
            Format::Accordo,
        ] {
            let _ = import(&bytes, false, format, Some(&bytes), &cagliari());
        }
    }
}
