//! End-to-end domain: comuni import real-format files, sync, and the
//! metropolitan office's report adds them up; indicators and the plan flow
//! from the metro office to the comuni and back into the report; export
//! then import on a fresh node gives the same projects; a broken file
//! imports nothing.

use accordo_tests::{Node, Relay};
use anyhow::{Context, Result};
use serde_json::Value;
use std::path::PathBuf;

const CAGLIARI: &str = "092009";
const QUARTU: &str = "092051";
const SELARGIUS: &str = "092068";

fn fixture(name: &str) -> String {
    let p: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "domain",
        "tests",
        "fixtures",
        "import",
        name,
    ]
    .iter()
    .collect();
    p.display().to_string()
}

fn report(node: &Node, extra: &[&str]) -> Result<Value> {
    let mut args = vec!["report", "--format", "json", "--as-of", "2025-01-01"];
    args.extend_from_slice(extra);
    node.cmd(&args)?.ok()?.json()
}

fn totals(r: &Value) -> (i64, i64, i64, i64) {
    let t = &r["totals"];
    (
        t["projects"].as_i64().unwrap_or(-1),
        t["financed_cents"].as_i64().unwrap_or(-1),
        t["committed_cents"].as_i64().unwrap_or(-1),
        t["paid_cents"].as_i64().unwrap_or(-1),
    )
}

#[test]
fn three_comuni_import_sync_and_the_metro_report_adds_them_up() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let metro = Node::admitted(&relay, CAGLIARI, "metro")?;
    let cagliari = Node::admitted(&relay, CAGLIARI, "comune")?;
    let quartu = Node::admitted(&relay, QUARTU, "comune")?;
    let selargius = Node::admitted(&relay, SELARGIUS, "comune")?;

    let oc = fixture("opencoesione_progetti_esteso.csv");
    let out = cagliari.cmd(&["import", &oc])?.ok()?;
    assert!(out.stdout.contains("2 added"), "{}", out.stdout);
    // The format by the name users know, not a debug value (issue 11).
    assert!(
        out.stdout.contains("(OpenCoesione, UTF-8)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("2 row(s) of other comuni skipped"),
        "{}",
        out.stdout
    );
    quartu.cmd(&["import", &oc])?.ok()?;
    selargius
        .cmd(&[
            "import",
            &fixture("pnrr_progetti.csv"),
            "--localizzazione",
            &fixture("pnrr_localizzazione.csv"),
        ])?
        .ok()?;
    // The same file again: updated in place, never duplicated.
    let again = cagliari.cmd(&["import", &oc])?.ok()?;
    assert!(
        again.stdout.contains("0 added, 0 updated, 2 unchanged"),
        "{}",
        again.stdout
    );

    // A broken file imports nothing and names line, column and value.
    let before = cagliari.projects(false)?;
    let bad = cagliari.cmd(&["import", &fixture("opencoesione_bad_amount_and_date.csv")])?;
    assert_eq!(bad.code, Some(1));
    assert!(
        bad.stderr.contains("line 2, column finanz_totale_pubblico"),
        "{}",
        bad.stderr
    );
    assert!(bad.stderr.contains("20200631"), "{}", bad.stderr);
    assert_eq!(cagliari.projects(false)?, before);

    for n in [&cagliari, &quartu, &selargius, &metro] {
        n.sync()?.ok()?;
    }
    let r = report(&metro, &[])?;
    // Inputs: Cagliari 1,750,000.50 + 2,100,000 financed (900,000 + 2,100,000
    // committed, 450,000.25 + 2,100,000 paid); Quartu 1,250,000 financed;
    // Selargius (PNRR) 155,234.00 financed.
    assert_eq!(totals(&r), (4, 525_523_450, 300_000_000, 255_000_025));
    let per: Vec<(String, i64)> = r["by_comune"]
        .as_array()
        .context("by_comune")?
        .iter()
        .map(|c| {
            (
                c["comune"].as_str().unwrap_or("").to_owned(),
                c["projects"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        per,
        vec![
            (CAGLIARI.into(), 2),
            (QUARTU.into(), 1),
            (SELARGIUS.into(), 1)
        ]
    );
    // Each comune's own report agrees with the metro's row for it.
    for (node, comune) in [
        (&cagliari, CAGLIARI),
        (&quartu, QUARTU),
        (&selargius, SELARGIUS),
    ] {
        let own = report(node, &[])?;
        let row = r["by_comune"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["comune"] == comune)
            .unwrap()
            .clone();
        assert_eq!(
            own["totals"]["financed_cents"], row["financed_cents"],
            "{comune}"
        );
    }
    let sources: Vec<&str> = r["by_source"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["source"].as_str())
        .collect();
    assert_eq!(sources, vec!["Comune", "FESR", "FSC", "PNRR"]);

    // The HTML report is one self-contained page with charts.
    let html = metro.dir.path().join("rapporto.html");
    metro
        .cmd(&[
            "report",
            "--format",
            "html",
            "--out",
            &html.display().to_string(),
        ])?
        .ok()?;
    let page = std::fs::read_to_string(&html)?;
    assert!(page.contains("<svg") && page.contains("Rapporto di monitoraggio"));
    assert!(!page.contains("<script") && !page.contains("src=\""));

    // The query store the sync kept incrementally is what the log gives.
    let rebuilt = metro.cmd(&["rebuild-views"])?.ok()?;
    assert!(
        rebuilt
            .stdout
            .contains(", 0 differed from the incremental views"),
        "{}",
        rebuilt.stdout
    );
    assert_eq!(
        report(&metro, &[])?,
        r,
        "the report is the same after a rebuild"
    );
    Ok(())
}

#[test]
fn indicators_and_the_plan_flow_into_the_report() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let metro = Node::admitted(&relay, CAGLIARI, "metro")?;
    let quartu = Node::admitted(&relay, QUARTU, "comune")?;
    metro
        .cmd(&[
            "indicator",
            "define",
            "--code",
            "10AMB016",
            "--name",
            "Raccolta differenziata",
            "--unit",
            "%",
            "--polarity",
            "1",
            "--bes-domain",
            "10",
            "--dimension",
            "environmental",
            "--sdg",
            "11",
        ])?
        .ok()?;
    metro
        .cmd(&[
            "plan",
            "axis",
            "add",
            "--code",
            "A1",
            "--name",
            "Città sostenibile",
        ])?
        .ok()?;
    metro
        .cmd(&[
            "plan",
            "objective",
            "add",
            "--code",
            "O1.1",
            "--name",
            "Meno rifiuti",
            "--parent",
            "A1",
        ])?
        .ok()?;
    let orphan = metro.cmd(&[
        "plan", "action", "add", "--code", "X", "--name", "x", "--parent", "NOPE",
    ])?;
    assert_ne!(orphan.code, Some(0));
    assert!(orphan.stderr.contains("--parent"), "{}", orphan.stderr);
    let refused = quartu.cmd(&[
        "indicator",
        "define",
        "--code",
        "X",
        "--name",
        "x",
        "--unit",
        "u",
    ])?;
    assert!(
        refused.stderr.contains("metropolitan office"),
        "{}",
        refused.stderr
    );
    metro.sync()?.ok()?;
    quartu.sync()?.ok()?;
    quartu
        .cmd(&[
            "indicator",
            "baseline",
            "10AMB016",
            "--period",
            "2020",
            "--value",
            "40",
        ])?
        .ok()?;
    quartu
        .cmd(&[
            "indicator",
            "target",
            "10AMB016",
            "--period",
            "2026",
            "--value",
            "65",
        ])?
        .ok()?;
    quartu
        .cmd(&[
            "indicator",
            "observe",
            "10AMB016",
            "--period",
            "2024",
            "--value",
            "52,5",
        ])?
        .ok()?;
    let bad = quartu.cmd(&[
        "indicator",
        "observe",
        "10AMB016",
        "--period",
        "2024-Q5",
        "--value",
        "1",
    ])?;
    assert!(bad.stderr.contains("period"), "{}", bad.stderr);
    let list = quartu
        .cmd(&["indicator", "list", "--format", "json"])?
        .ok()?
        .json()?;
    assert_eq!(list[0]["code"], "10AMB016");
    quartu.sync()?.ok()?;
    metro.sync()?.ok()?;
    let r = report(&metro, &["--period", "2024"])?;
    let row = r["indicators"]
        .as_array()
        .context("indicators")?
        .iter()
        .find(|i| i["territory"] == QUARTU)
        .context("Quartu's indicator")?
        .clone();
    assert_eq!(row["latest"]["value"], 52.5);
    assert_eq!(row["progress"], 0.5);
    let axes = quartu
        .cmd(&["plan", "objective", "list", "--format", "json"])?
        .ok()?
        .json()?;
    assert_eq!(axes[0]["parent"], "A1");
    Ok(())
}

#[test]
fn export_then_import_on_a_fresh_node_gives_the_same_projects() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let office = Node::admitted(&relay, CAGLIARI, "comune")?;
    office
        .cmd(&["import", &fixture("opencoesione_progetti_esteso.csv")])?
        .ok()?;
    office
        .cmd(&[
            "project",
            "add",
            "--cup",
            "J51B21000120006",
            "--title",
            "Scuola; \"nuova\"",
            "--financed-eur",
            "1.234.567,89",
            "--sdg",
            "4,11",
            "--pnrr-measure",
            "M4C1I3.3",
            "--location",
            "092009:60",
            "--location",
            "national:40",
        ])?
        .ok()?;
    office
        .cmd(&[
            "project",
            "funding",
            "add",
            "J51B21000120006",
            "--source",
            "PNRR",
            "--amount-eur",
            "1000000",
        ])?
        .ok()?;
    office
        .cmd(&[
            "project",
            "milestone",
            "add",
            "J51B21000120006",
            "--code",
            "M4C1-9",
            "--description",
            "Aggiudicazione",
            "--due",
            "2024-Q4",
        ])?
        .ok()?;
    office
        .cmd(&[
            "project",
            "phase",
            "set",
            "J51B21000120006",
            "--phase",
            "PROG_ESEC",
            "--actual-start",
            "15/01/2024",
        ])?
        .ok()?;
    let shown = office
        .cmd(&["project", "show", "J51B21000120006", "--format", "json"])?
        .ok()?
        .json()?;
    assert_eq!(shown["procedural_state"], "In corso di progettazione");
    let late = report(&office, &[])?;
    assert_eq!(late["late_milestones"].as_array().map(Vec::len), Some(1));

    for (format, name) in [("csv", "out.csv"), ("xlsx", "out.xlsx")] {
        let file = office.dir.path().join(name).display().to_string();
        office
            .cmd(&["export", "--format", format, "--out", &file])?
            .ok()?;
        let fresh = Node::init(&relay, CAGLIARI, "comune")?;
        fresh.cmd(&["import", &file])?.ok()?;
        let a = office.cmd(&[
            "export",
            "--format",
            "json",
            "--out",
            &format!("{file}.a.json"),
        ])?;
        a.ok()?;
        fresh
            .cmd(&[
                "export",
                "--format",
                "json",
                "--out",
                &format!("{file}.b.json"),
            ])?
            .ok()?;
        let (ja, jb) = (
            std::fs::read_to_string(format!("{file}.a.json"))?,
            std::fs::read_to_string(format!("{file}.b.json"))?,
        );
        assert_eq!(ja, jb, "{format}: export then import is identical");
    }
    Ok(())
}

/// The state OpenCoesione publishes is kept (no phase dates needed), synced,
/// editable, exported and read back, and the metro report says per state
/// and per project whether it was stated or derived.
#[test]
fn the_stated_procedural_state_is_kept_synced_and_reported() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let metro = Node::admitted(&relay, CAGLIARI, "metro")?;
    let office = Node::admitted(&relay, CAGLIARI, "comune")?;
    let out = office
        .cmd(&["import", &fixture("opencoesione_stated_state.csv")])?
        .ok()?;
    assert!(
        out.stdout.contains("1 column(s) not kept: oc_cod_ciclo"),
        "{}",
        out.stdout
    );
    office.sync()?.ok()?;
    metro.sync()?.ok()?;
    let r = report(&metro, &[])?;
    let states: Vec<(String, i64, i64)> = r["by_state"]
        .as_array()
        .context("by_state")?
        .iter()
        .map(|s| {
            (
                s["state"].as_str().unwrap_or("").to_owned(),
                s["stated"].as_i64().unwrap_or(-1),
                s["derived"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![
            ("In affidamento".into(), 1, 0),
            ("In esecuzione".into(), 1, 0),
            ("Eseguito".into(), 0, 1),
        ]
    );
    let bases = r["project_states"].as_array().context("project_states")?;
    assert_eq!(bases.len(), 3);

    let show = |node: &Node| -> Result<Value> {
        node.cmd(&["project", "show", "F21B21000310006", "--format", "json"])?
            .ok()?
            .json()
    };
    let shown = show(&office)?;
    assert_eq!(shown["procedural_state_basis"], "stated");
    assert_eq!(shown["source_fields"]["oc_stato_progetto"], "In corso");
    office
        .cmd(&[
            "project",
            "set",
            "F21B21000310006",
            "--stated-state",
            "In corso di progettazione",
        ])?
        .ok()?;
    assert_eq!(
        show(&office)?["procedural_state"],
        "In corso di progettazione"
    );

    let file = office.dir.path().join("out.csv").display().to_string();
    office
        .cmd(&["export", "--format", "csv", "--out", &file])?
        .ok()?;
    let fresh = Node::init(&relay, CAGLIARI, "comune")?;
    fresh.cmd(&["import", &file])?.ok()?;
    let back = show(&fresh)?;
    assert_eq!(back["stated_state"], "In corso di progettazione");
    assert_eq!(back["source_fields"], shown["source_fields"]);

    office
        .cmd(&[
            "project",
            "set",
            "F21B21000310006",
            "--stated-state",
            "none",
        ])?
        .ok()?;
    let cleared = show(&office)?;
    assert_eq!(cleared["procedural_state"], "Non avviato");
    assert_eq!(cleared["procedural_state_basis"], "derived");
    Ok(())
}
