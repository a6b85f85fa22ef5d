//! Import fixtures (`domain/tests/fixtures/import/`) with snapshots of the
//! parsed result and of the error messages, and the export→import round
//! trip as a property.

use super::*;
use crate::export;
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
                "format {:?}, encoding {}, {} rows, {} project(s), skipped {:?}, not kept {:?}\n",
                o.format,
                o.encoding,
                o.rows,
                o.projects.len(),
                o.skipped,
                o.not_kept
            );
            for i in &o.projects {
                let mut v = serde_json::to_value(&i.project).unwrap();
                let (state, basis) = i.project.state_and_basis();
                v["procedural_state"] = serde_json::json!(state.code());
                v["procedural_state_basis"] = serde_json::json!(basis.code());
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

/// Regression (issue 11 item 3): `OC_STATO_PROCEDURALE` with empty phase
/// dates was dropped and the project derived as "Non avviato".
#[test]
fn opencoesione_stated_procedural_state_is_kept() {
    let o = import(
        &fixture("opencoesione_stated_state.csv"),
        false,
        Format::Auto,
        None,
        &cagliari(),
    )
    .unwrap();
    let states: Vec<(String, &str)> = o
        .projects
        .iter()
        .map(|i| (i.key.clone(), i.project.procedural_state().code()))
        .collect();
    assert_eq!(
        states,
        vec![
            ("oc:5SAR100".to_owned(), "In esecuzione"),
            ("oc:5SAR101".to_owned(), "In affidamento"),
            // No stated state: derived from the actual execution dates.
            ("oc:5SAR102".to_owned(), "Eseguito"),
        ]
    );
}

/// Every value of the file is mapped, kept as a source field, or named as
/// not kept (snapshot of the whole outcome).
#[test]
fn opencoesione_values_are_mapped_kept_or_named() {
    check(
        "opencoesione_stated_state.csv",
        Format::Auto,
        None,
        expect_file!["snapshots/opencoesione_stated_state.txt"],
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

/// Regression (issue 11 item 7): `import` printed `(Pnrr, utf-8)`.
#[test]
fn formats_are_described_by_the_names_users_know() {
    let describe = |file: &str, loc: Option<&str>| {
        let loc = loc.map(fixture);
        import(
            &fixture(file),
            false,
            Format::Auto,
            loc.as_deref(),
            &cagliari(),
        )
        .unwrap()
        .describe()
    };
    assert_eq!(
        describe("pnrr_progetti.csv", Some("pnrr_localizzazione.csv")),
        "Italia Domani – PNRR, UTF-8"
    );
    assert_eq!(
        describe("opencoesione_windows1252.csv", None),
        "OpenCoesione, Windows-1252"
    );
    let rows = vec![(
        "092009".to_owned(),
        Project {
            id: "a1".into(),
            title: "Scuola".into(),
            ..Project::default()
        },
    )];
    let csv = import(
        &export::csv_bytes(&rows).unwrap(),
        false,
        Format::Auto,
        None,
        &cagliari(),
    );
    assert_eq!(csv.unwrap().describe(), "Accordo CSV, UTF-8");
    let xlsx = import(
        &export::xlsx_bytes(&rows).unwrap(),
        true,
        Format::Auto,
        None,
        &cagliari(),
    );
    assert_eq!(xlsx.unwrap().describe(), "Accordo XLSX");
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
    use crate::model::*;
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

/// [`arb_project`] with the states and the kept source fields.
fn arb_project_with_source() -> impl Strategy<Value = Project> {
    use crate::model::ProceduralState;
    let state = proptest::option::of(proptest::sample::select(ProceduralState::ALL.to_vec()));
    (
        arb_project(),
        state.clone(),
        state,
        proptest::collection::btree_map("[a-z_ ]{1,12}", "[A-Za-z0-9 ;,\"]{1,20}", 0..3),
    )
        .prop_map(|(mut p, stated, forced, fields)| {
            p.stated_state = stated;
            p.state_override = forced;
            p.source_fields = fields
                .into_iter()
                .map(|(k, v)| (k, v.trim().to_owned() + "x"))
                .collect();
            p
        })
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
    fn csv_export_then_import_is_identity(projects in proptest::collection::vec(arb_project_with_source(), 1..6)) {
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
    fn xlsx_export_then_import_is_identity(projects in proptest::collection::vec(arb_project_with_source(), 1..4)) {
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
    let mut inputs = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        inputs += 1;
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
    assert!(
        inputs > 0,
        "no fuzz-found input in {dir}: the test would check nothing"
    );
}

/// An OpenCoesione file whose record starting on line 4 (header on line 1)
/// has a bad CUP; line 3 holds a quoted summary spanning `extra` more lines.
fn bad_cup_on_record_4(extra: usize, eol: &str) -> String {
    let header = "COD_LOCALE_PROGETTO;CUP;OC_TITOLO_PROGETTO;OC_SINTESI_PROGETTO;COD_COMUNE";
    let summary = (0..=extra)
        .map(|i| format!("riga {i} della sintesi"))
        .collect::<Vec<_>>()
        .join(eol);
    [
        header.to_owned(),
        "A1;F21B21000310006;Scuola;Semplice;020092009".to_owned(),
        format!("A2;F27H21001230006;Parco;\"{summary}\";020092009"),
        "A3;F27H2100123;Via Roma;Breve;020092009".to_owned(),
        String::new(),
    ]
    .join(eol)
}

fn error_lines(bytes: &[u8]) -> Vec<(usize, String)> {
    let e = import(bytes, false, Format::Auto, None, &cagliari()).unwrap_err();
    e.0.iter().map(|r| (r.line, r.column.clone())).collect()
}

/// Regression (issue 11 item 2): with CR LF endings the error named line 3
/// for a bad CUP on line 4. The line is the one an editor shows, for LF,
/// CR LF, a BOM, Windows-1252 and quoted cells holding line breaks.
#[test]
fn errors_name_the_line_an_editor_shows_for_every_line_ending() {
    for eol in ["\n", "\r\n", "\r"] {
        let plain = bad_cup_on_record_4(0, eol);
        assert_eq!(
            error_lines(plain.as_bytes()),
            vec![(4, "cup".into())],
            "{eol:?}"
        );
        let with_bom = [b"\xEF\xBB\xBF".as_slice(), plain.as_bytes()].concat();
        assert_eq!(
            error_lines(&with_bom),
            vec![(4, "cup".into())],
            "BOM {eol:?}"
        );
        // Windows-1252: "è" is one byte (0xE8), invalid as UTF-8.
        let accented = plain.replace("Semplice", "Semplice è");
        let (cp1252, _, _) = encoding_rs::WINDOWS_1252.encode(&accented);
        assert!(std::str::from_utf8(&cp1252).is_err());
        assert_eq!(
            error_lines(&cp1252),
            vec![(4, "cup".into())],
            "1252 {eol:?}"
        );
        // A quoted summary on line 3 spanning lines 3..=5: the bad record
        // starts on line 6.
        let multi = bad_cup_on_record_4(2, eol);
        assert_eq!(
            error_lines(multi.as_bytes()),
            vec![(6, "cup".into())],
            "multi-line {eol:?}"
        );
    }
}

/// A record whose own quoted cell spans lines is named by the line it starts on.
#[test]
fn a_multi_line_record_is_named_by_its_first_line() {
    for eol in ["\n", "\r\n", "\r"] {
        let text = [
            "COD_LOCALE_PROGETTO;CUP;OC_TITOLO_PROGETTO;OC_SINTESI_PROGETTO;COD_COMUNE",
            "A1;F21B21000310006;Scuola;Semplice;020092009",
            "",
            &format!("A2;F27H2100123;Parco;\"uno{eol}due{eol}tre\";020092009"),
            "A3;F27H21001230006;Via Roma;Breve;02009200X",
            "",
        ]
        .join(eol);
        assert_eq!(
            error_lines(text.as_bytes()),
            vec![(4, "cup".into()), (7, "cod_comune".into())],
            "{eol:?}"
        );
    }
}

/// The XLSX path names the spreadsheet row, also when the table does not
/// start on the first row.
#[test]
fn xlsx_errors_name_the_spreadsheet_row() {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    let rows: [&[&str]; 3] = [
        &[
            "COD_LOCALE_PROGETTO",
            "CUP",
            "OC_TITOLO_PROGETTO",
            "COD_COMUNE",
        ],
        &["A1", "F21B21000310006", "Scuola", "020092009"],
        &["A2", "F27H2100123", "Parco", "020092009"],
    ];
    // Two empty rows above the header: the header is on row 3.
    for (r, cells) in rows.iter().enumerate() {
        for (c, v) in cells.iter().enumerate() {
            sheet.write_string(r as u32 + 2, c as u16, *v).unwrap();
        }
    }
    let bytes = book.save_to_buffer().unwrap();
    let e = import(&bytes, true, Format::Auto, None, &cagliari()).unwrap_err();
    assert_eq!(
        e.0.iter()
            .map(|r| (r.line, r.column.as_str()))
            .collect::<Vec<_>>(),
        vec![(5, "cup")]
    );
}
