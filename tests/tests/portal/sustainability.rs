//! `report --kind sostenibilita` end to end.

use super::*;

/// `report --kind sostenibilita`: deviations from the baseline to the latest
/// value within the years asked, judged by polarity (figures computed by
/// hand), the objective's projects, the office's texts; JSON, HTML, XLSX.
#[test]
fn the_sustainability_report_judges_deviations_by_polarity() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let metro = Node::admitted(&relay, CAGLIARI, "metro")?;
    axis_and_objective(&metro)?;
    ok(
        &metro,
        &[
            "plan",
            "text",
            "add",
            "--code",
            "environmental",
            "--name",
            "Meno rifiuti in discarica.",
        ],
    )?;
    // Lower is better: 40 → 33.25 in 2025 (2027 is after --to): -6.75, an improvement.
    ok(
        &metro,
        &[
            "indicator",
            "define",
            "--code",
            "10AMB016",
            "--name",
            "Rifiuti in discarica",
            "--unit",
            "%",
            "--polarity",
            "-1",
            "--dimension",
            "environmental",
            "--sdg",
            "11",
        ],
    )?;
    ok(
        &metro,
        &[
            "indicator",
            "baseline",
            "10AMB016",
            "--period",
            "2023",
            "--value",
            "40",
        ],
    )?;
    for (period, value) in [("2024", "36,5"), ("2025", "33.25"), ("2027", "10")] {
        ok(
            &metro,
            &[
                "indicator",
                "observe",
                "10AMB016",
                "--period",
                period,
                "--value",
                value,
            ],
        )?;
    }
    // Higher is better: 12 → 10.5: -1.5, a worsening.
    ok(
        &metro,
        &[
            "indicator",
            "define",
            "--code",
            "04IST001",
            "--name",
            "Diplomati",
            "--unit",
            "%",
            "--polarity",
            "1",
            "--dimension",
            "social",
        ],
    )?;
    ok(
        &metro,
        &[
            "indicator",
            "baseline",
            "04IST001",
            "--period",
            "2022",
            "--value",
            "12",
        ],
    )?;
    ok(
        &metro,
        &[
            "indicator",
            "observe",
            "04IST001",
            "--period",
            "2024-Q3",
            "--value",
            "10.5",
        ],
    )?;
    let json = metro
        .cmd(&[
            "report",
            "--kind",
            "sostenibilita",
            "--from",
            "2024",
            "--to",
            "2026",
        ])?
        .ok()?
        .json()?;
    let rows: Vec<&Value> = json["dimensions"]
        .as_array()
        .context("dimensions")?
        .iter()
        .flat_map(|d| d["indicators"].as_array().into_iter().flatten())
        .collect();
    let row = |code: &str| {
        rows.iter()
            .find(|r| r["code"] == code)
            .copied()
            .context("row")
    };
    let waste = row("10AMB016")?;
    assert_eq!(waste["latest"]["period"], "2025");
    assert_eq!(waste["deviation"].as_f64(), Some(-6.75));
    assert_eq!(waste["judgement"], "positive");
    assert_eq!(row("04IST001")?["deviation"].as_f64(), Some(-1.5));
    assert_eq!(row("04IST001")?["judgement"], "negative");
    let env = json["dimensions"]
        .as_array()
        .context("dimensions")?
        .iter()
        .find(|d| d["dimension"] == "environmental")
        .context("environmental")?;
    assert_eq!(env["text"], "Meno rifiuti in discarica.");
    assert_eq!(
        json["computed_from"]["digest"].as_str().map(str::len),
        Some(64)
    );
    let dir = tempfile::tempdir()?;
    for format in ["html", "xlsx"] {
        let out = dir.path().join(format!("bilancio.{format}"));
        ok(
            &metro,
            &[
                "report",
                "--kind",
                "sostenibilita",
                "--from",
                "2024",
                "--to",
                "2026",
                "--format",
                format,
                "--out",
                &path(&out),
            ],
        )?;
        let bytes = std::fs::read(&out)?;
        match format {
            "html" => {
                let html = String::from_utf8(bytes)?;
                assert!(
                    html.contains("<html lang=\"it\"")
                        && html.contains("-6,75")
                        && html.contains("miglioramento"),
                    "{html}"
                );
            }
            _ => assert_eq!(&bytes[..2], b"PK", "an xlsx is a zip"),
        }
    }
    let refused = metro.cmd(&[
        "report",
        "--kind",
        "sostenibilita",
        "--from",
        "2026",
        "--to",
        "2024",
    ])?;
    assert_ne!(refused.code, Some(0));
    Ok(())
}
