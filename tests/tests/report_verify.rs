//! End-to-end verifiable report: the metropolitan office's JSON report
//! carries every document with its heads and a digest; `report --verify`
//! recomputes it at those heads from the node's own log — so an old report
//! still verifies after later edits — and fails, naming the figure, on an
//! altered amount (with or without the digest recomputed), an altered
//! project count, a removed comune, heads the node does not hold, and
//! refuses a file that is not a report.

use accordo_domain::report::digest_of_json;
use accordo_tests::{path, Node, Relay, Run};
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const CAGLIARI: &str = "092009";
const QUARTU: &str = "092051";

fn add(node: &Node, cup: &str, title: &str, financed_eur: &str) -> Result<()> {
    node.cmd(&[
        "project",
        "add",
        "--cup",
        cup,
        "--title",
        title,
        "--financed-eur",
        financed_eur,
    ])?
    .ok()?;
    Ok(())
}

/// `report --format FORMAT` written to `dir/name`; the JSON when FORMAT is json.
fn report_file(node: &Node, dir: &Path, name: &str, format: &str) -> Result<PathBuf> {
    let file = dir.join(name);
    node.cmd(&[
        "report",
        "--format",
        format,
        "--as-of",
        "2025-01-01",
        "--out",
        &path(&file),
    ])?
    .ok()?;
    Ok(file)
}

fn read_json(file: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(file)?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))
}

/// Writes `report` (pretty, as the node does) and verifies it on `node`.
fn verify(node: &Node, dir: &Path, name: &str, report: &Value) -> Result<Run> {
    let file = dir.join(name);
    std::fs::write(
        &file,
        format!("{}\n", serde_json::to_string_pretty(report)?),
    )?;
    node.cmd(&["report", "--verify", &path(&file)])
}

/// What an attacker who knows the scheme does after altering a figure.
fn restamp(report: &mut Value) {
    report["computed_from"]["digest"] = json!(digest_of_json(report));
}

fn digest(report: &Value) -> String {
    report["computed_from"]["digest"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The stamped heads of `doc`.
fn stamped_heads(report: &Value, doc: &str) -> Vec<String> {
    report["computed_from"]["documents"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["doc"] == doc)
        .and_then(|d| d["heads"].as_array())
        .map(|h| {
            h.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A relay, the metro office and two comuni: Cagliari with two projects
/// (1,000.00 € and 2,500.50 €) and an indicator, Quartu with one (700 €),
/// all synced.
fn network(relay: &mut Relay) -> Result<(Node, Node, Node)> {
    relay.start()?;
    let metro = Node::admitted(relay, CAGLIARI, "metro")?;
    let cagliari = Node::admitted(relay, CAGLIARI, "comune")?;
    let quartu = Node::admitted(relay, QUARTU, "comune")?;
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
        ])?
        .ok()?;
    metro.sync()?.ok()?;
    cagliari.sync()?.ok()?;
    for (what, period, value) in [
        ("baseline", "2020", "40"),
        ("target", "2026", "70,3"),
        ("observe", "2024", "52,1"),
    ] {
        cagliari
            .cmd(&[
                "indicator",
                what,
                "10AMB016",
                "--period",
                period,
                "--value",
                value,
            ])?
            .ok()?;
    }
    add(&cagliari, "B21D00000000001", "Scuola", "1000")?;
    add(&cagliari, "B21D00000000002", "Strada", "2500,50")?;
    add(&quartu, "B51D00000000003", "Parco", "700")?;
    for n in [&cagliari, &quartu, &metro] {
        n.sync()?.ok()?;
    }
    Ok((metro, cagliari, quartu))
}

#[test]
fn a_report_verifies_at_its_heads_and_every_alteration_fails_naming_it() -> Result<()> {
    let mut relay = Relay::init()?;
    let (metro, cagliari, quartu) = network(&mut relay)?;
    let files = tempfile::tempdir()?;
    let original = read_json(&report_file(&metro, files.path(), "r.json", "json")?)?;
    assert_eq!(original["totals"]["projects"], 3);
    assert_eq!(original["totals"]["financed_cents"], 420_050);
    assert!(
        original["indicators"][0]["progress"].is_f64(),
        "a float figure is covered: {}",
        original["indicators"]
    );
    for doc in ["comune/092009", "comune/092051", "plan"] {
        assert_eq!(
            stamped_heads(&original, doc),
            metro.heads(doc)?,
            "{doc} is stamped at the heads the node holds"
        );
    }
    let documents = original["computed_from"]["documents"]
        .as_array()
        .context("computed_from.documents")?
        .len();
    let d = digest(&original);
    assert_eq!(d.len(), 64, "{original}");

    let ok = verify(&metro, files.path(), "untouched.json", &original)?;
    assert_eq!(ok.code, Some(0), "{}{}", ok.stdout, ok.stderr);
    assert_eq!(
        ok.stdout.trim(),
        format!("report verified: {documents} documents, digest {d}")
    );
    // Markdown and HTML print the same stamp.
    for format in ["md", "html"] {
        let text = std::fs::read_to_string(report_file(
            &metro,
            files.path(),
            &format!("r.{format}"),
            format,
        )?)?;
        assert!(text.contains(&d), "{format} footer has the digest");
        let head = &stamped_heads(&original, "comune/092051")[0];
        assert!(
            text.contains(head.as_str()),
            "{format} footer has the heads"
        );
    }

    // Later edits, synced: today's report differs, the old one still
    // verifies (it is recomputed at its heads, not today's).
    cagliari
        .cmd(&["project", "set", "B21D00000000001", "--paid-eur", "10"])?
        .ok()?;
    add(&quartu, "B51D00000000004", "Piazza", "300")?;
    for n in [&cagliari, &quartu, &metro] {
        n.sync()?.ok()?;
    }
    let today = read_json(&report_file(&metro, files.path(), "today.json", "json")?)?;
    assert_eq!(today["totals"]["projects"], 4);
    assert_ne!(digest(&today), d);
    let old = verify(&metro, files.path(), "old.json", &original)?;
    assert_eq!(old.code, Some(0), "{}{}", old.stdout, old.stderr);
    assert!(old.stdout.contains(&d), "{}", old.stdout);

    // An altered amount, digest left as it was.
    let mut amount = original.clone();
    amount["by_comune"][0]["financed_cents"] = json!(350_051);
    let out = verify(&metro, files.path(), "amount.json", &amount)?;
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.starts_with(
            "report does not match: by_comune[0].financed_cents: file 350051, recomputed 350050"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("not that of its content"),
        "{}",
        out.stdout
    );
    // The same with the digest recomputed over the altered content.
    restamp(&mut amount);
    let out = verify(&metro, files.path(), "amount-restamped.json", &amount)?;
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.starts_with(
            "report does not match: by_comune[0].financed_cents: file 350051, recomputed 350050"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("computed_from.digest: file "),
        "{}",
        out.stdout
    );

    // An altered project count (and its total), restamped.
    let mut count = original.clone();
    count["by_comune"][1]["projects"] = json!(2);
    count["totals"]["projects"] = json!(4);
    restamp(&mut count);
    let out = verify(&metro, files.path(), "count.json", &count)?;
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("by_comune[1].projects: file 2, recomputed 1"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("totals.projects: file 4, recomputed 3"),
        "{}",
        out.stdout
    );

    // A removed comune: its row only, or its row and its document.
    let mut removed = original.clone();
    removed["by_comune"]
        .as_array_mut()
        .context("by_comune")?
        .remove(1);
    restamp(&mut removed);
    let out = verify(&metro, files.path(), "removed-row.json", &removed)?;
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .starts_with("report does not match: by_comune: file 1 entries, recomputed 2 entries"),
        "{}",
        out.stdout
    );
    removed["computed_from"]["documents"]
        .as_array_mut()
        .context("documents")?
        .retain(|d| d["doc"] != "comune/092051");
    restamp(&mut removed);
    let out = verify(&metro, files.path(), "removed-doc.json", &removed)?;
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("totals.projects: file 3, recomputed 2"),
        "{}",
        out.stdout
    );

    // Heads no node holds.
    let mut unknown = original.clone();
    let fake = "ab".repeat(32);
    for d in unknown["computed_from"]["documents"]
        .as_array_mut()
        .context("documents")?
    {
        if d["doc"] == "comune/092051" {
            d["heads"] = json!([fake]);
        }
    }
    let out = verify(&metro, files.path(), "unknown.json", &unknown)?;
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert_eq!(
        out.stdout.trim(),
        format!("heads not held: comune/092051 {fake}")
    );
    Ok(())
}

#[test]
fn a_report_made_elsewhere_needs_its_heads_and_a_non_report_is_refused() -> Result<()> {
    let mut relay = Relay::init()?;
    let (metro, cagliari, _quartu) = network(&mut relay)?;
    let files = tempfile::tempdir()?;
    // Cagliari edits without syncing and reports: the metro lacks that head.
    add(&cagliari, "B21D00000000009", "Biblioteca", "90")?;
    let file = report_file(&cagliari, files.path(), "cagliari.json", "json")?;
    let mine = cagliari.cmd(&["report", "--verify", &path(&file)])?;
    assert_eq!(mine.code, Some(0), "{}{}", mine.stdout, mine.stderr);
    let head = cagliari.heads("comune/092009")?;
    assert_eq!(head.len(), 1);
    let out = metro.cmd(&["report", "--verify", &path(&file)])?;
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert_eq!(
        out.stdout.trim(),
        format!("heads not held: comune/092009 {}", head[0])
    );
    // Once synced, the metro holds them and the report verifies there too.
    cagliari.sync()?.ok()?;
    metro.sync()?.ok()?;
    let out = metro.cmd(&["report", "--verify", &path(&file)])?;
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);

    let out = verify(&metro, files.path(), "other.json", &json!({"hello": 1}))?;
    assert_eq!(out.code, Some(2), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("not a report: no `as_of` field"),
        "{}",
        out.stderr
    );
    let text = files.path().join("text.json");
    std::fs::write(&text, "# Rapporto\n")?;
    let out = metro.cmd(&["report", "--verify", &path(&text)])?;
    assert_eq!(out.code, Some(2), "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("is not JSON"), "{}", out.stderr);
    Ok(())
}
