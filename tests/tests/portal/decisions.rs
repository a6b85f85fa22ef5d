//! The metropolitan office decides what is public: a comune's draft
//! published by the office's decision, a comune-published project kept off
//! the portal, the choice given back to the comune — on the pages, in the
//! open-data files and in the catalogue; the comune sees the decision after
//! sync and cannot decide for another comune.

use super::*;

/// The titles in `/opendata/progetti.csv`.
fn csv_titles(base: &str) -> Result<Vec<String>> {
    let (status, _, body) = request(base, "GET", "/opendata/progetti.csv", &[])?;
    anyhow::ensure!(status == 200, "progetti.csv answered {status}");
    let mut rows = csv::Reader::from_reader(&body[..]);
    let col = rows
        .headers()?
        .iter()
        .position(|h| h == "titolo")
        .context("titolo")?;
    let mut titles = Vec::new();
    for r in rows.records() {
        titles.push(r?[col].to_owned());
    }
    Ok(titles)
}

/// What `project publication --format json` says on `node`.
fn publication(node: &Node, cup: &str) -> Result<Value> {
    node.cmd(&[
        "project",
        "publication",
        cup,
        "--comune",
        QUARTU,
        "--format",
        "json",
    ])?
    .ok()?
    .json()
}

#[test]
fn the_metro_office_decides_what_is_public() -> Result<()> {
    let n = network()?;
    let base = n.web.base.clone();
    synced_home(&n.web)?;
    const PUBLISHED_CUP: &str = "J21B22000010006";
    const DRAFT_CUP: &str = "J21B22000020006";
    assert_eq!(csv_titles(&base)?, vec![PUBLISHED_TITLE.to_owned()]);
    let p = publication(&n.metro, DRAFT_CUP)?;
    assert_eq!(
        (&p["comune_published"], &p["metro_decision"], &p["public"]),
        (
            &Value::Bool(false),
            &Value::from("comune"),
            &Value::Bool(false)
        )
    );

    // The office publishes the comune's draft and keeps the comune's
    // published project off the portal.
    let out = n
        .metro
        .cmd(&["project", "publish", DRAFT_CUP, "--comune", QUARTU])?
        .ok()?;
    assert!(
        out.last_line()
            .contains("published by the metropolitan office"),
        "{}",
        out.last_line()
    );
    let again = n
        .metro
        .cmd(&["project", "publish", DRAFT_CUP, "--comune", QUARTU])?
        .ok()?;
    assert!(
        again.last_line().starts_with("unchanged"),
        "{}",
        again.last_line()
    );
    n.metro
        .cmd(&["project", "unpublish", PUBLISHED_CUP, "--comune", QUARTU])?
        .ok()?;
    assert_eq!(csv_titles(&base)?, vec![DRAFT_TITLE.to_owned()]);
    let (status, page) = get_text(&base, &format!("/pubblico/comuni/{QUARTU}"))?;
    assert_eq!(status, 200);
    assert!(page.contains(DRAFT_TITLE) && !page.contains(PUBLISHED_TITLE));
    let (status, _) = get_text(
        &base,
        &format!("/pubblico/progetti/{QUARTU}/{}", n.published_id),
    )?;
    assert_eq!(status, 404, "a project the office keeps off is not public");
    for file in [
        "progetti.json",
        "finanziamenti.csv",
        "milestone.csv",
        "catalog.jsonld",
    ] {
        let (status, body) = get_text(&base, &format!("/opendata/{file}"))?;
        assert_eq!(status, 200, "{file}");
        assert!(
            !body.contains(PUBLISHED_TITLE) && !body.contains(&n.published_id),
            "{file} shows the project the office keeps off"
        );
    }
    let (_, lines) = get_text(&base, "/opendata/finanziamenti.csv")?;
    assert!(
        lines.contains("FSC"),
        "the office-published project's line: {lines}"
    );
    let p = publication(&n.metro, PUBLISHED_CUP)?;
    assert_eq!(
        (&p["comune_published"], &p["metro_decision"], &p["public"]),
        (
            &Value::Bool(true),
            &Value::from("draft"),
            &Value::Bool(false)
        )
    );

    // The comune sees the decision after sync; its own flag no longer
    // decides; it cannot decide for another comune.
    n.metro.sync()?.ok()?;
    n.quartu.sync()?.ok()?;
    let seen = n
        .quartu
        .cmd(&["project", "show", PUBLISHED_CUP, "--format", "json"])?
        .ok()?
        .json()?;
    assert_eq!(seen["metro_decision"], "draft");
    assert_eq!(seen["public"], false);
    assert_eq!(seen["published"], true, "the comune's own flag is kept");
    let refused = n
        .quartu
        .cmd(&["project", "publish", PUBLISHED_CUP, "--comune", CAGLIARI])?;
    assert_ne!(refused.code, Some(0), "a comune decided for another");
    assert!(
        refused.stderr.contains("metropolitan office"),
        "{}",
        refused.stderr
    );

    // Given back to the comune, its own flags decide again.
    n.metro
        .cmd(&[
            "project",
            "publication",
            PUBLISHED_CUP,
            "--comune",
            QUARTU,
            "--decision",
            "comune",
        ])?
        .ok()?;
    n.metro
        .cmd(&[
            "project",
            "publication",
            DRAFT_CUP,
            "--comune",
            QUARTU,
            "--decision",
            "comune",
        ])?
        .ok()?;
    assert_eq!(csv_titles(&base)?, vec![PUBLISHED_TITLE.to_owned()]);
    let bad = n.metro.cmd(&[
        "project",
        "publication",
        DRAFT_CUP,
        "--comune",
        QUARTU,
        "--decision",
        "maybe",
    ])?;
    assert_ne!(bad.code, Some(0));
    assert!(bad.stderr.contains("--decision"), "{}", bad.stderr);
    // The views kept incrementally equal those rebuilt from the log.
    let rebuilt = n.metro.cmd(&["rebuild-views"])?.ok()?;
    assert!(
        rebuilt
            .last_line()
            .ends_with(" 0 differed from the incremental views"),
        "{}",
        rebuilt.last_line()
    );
    Ok(())
}
