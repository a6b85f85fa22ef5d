//! The public portal and open data of a metropolitan node (`run --http
//! --public`), over real processes: a comune publishes one project and
//! keeps another as a draft; after sync the metro's public pages, CSV, JSON
//! and catalogue show the published one and never the draft; the DCAT-AP_IT
//! catalogue parses as JSON-LD, names licence and publisher, every
//! downloadURL answers 200, and it passes SHACL validation (pyshacl, shapes
//! in `tests/shacl/`) in both serialisations; answers are cacheable (ETag,
//! 304) and read-only; without `--public` the paths do not exist; the
//! public pages have no serious or critical axe-core violations in
//! Chromium, and the office's publish button puts a project on the portal.

use accordo_tests::browser::{Browser, WebNode, PAGE_TIMEOUT};
use accordo_tests::{path, wait_until, Node, Relay};
use anyhow::{Context, Result};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Command;

const CAGLIARI: &str = "092009";
const QUARTU: &str = "092051";
const PUBLISHED_TITLE: &str = "Riqualificazione del lungomare Poetto";
const DRAFT_TITLE: &str = "Bozza riservata piazza segreta";

/// A raw HTTP/1.1 request: status, headers (lower-cased) and body.
fn request(
    base: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> Result<(u16, String, Vec<u8>)> {
    let host = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(host)?;
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if method == "POST" {
        req.push_str("Content-Length: 0\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("no status")?;
    anyhow::ensure!(
        !head.contains("transfer-encoding: chunked"),
        "chunked answer"
    );
    Ok((status, head, raw[split + 4..].to_vec()))
}

fn get_text(base: &str, target: &str) -> Result<(u16, String)> {
    let (status, _, body) = request(base, "GET", target, &[])?;
    Ok((status, String::from_utf8(body)?))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .map(str::trim)
}

/// A relay, Quartu's node with a published and a draft project, Cagliari's
/// metro node holding the plan (axis, period, zone) and a published
/// indicator, both synced; the metro's web application with `--public`.
struct Network {
    _relay: Relay,
    quartu: Node,
    metro: Node,
    draft_id: String,
    published_id: String,
    web: WebNode,
}

fn ok(node: &Node, args: &[&str]) -> Result<()> {
    node.cmd(args)?.ok()?;
    Ok(())
}

fn network() -> Result<Network> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let metro = Node::admitted(&relay, CAGLIARI, "metro")?;
    let quartu = Node::admitted(&relay, QUARTU, "comune")?;
    quartu.add("J21B22000010006", PUBLISHED_TITLE)?;
    quartu.add("J21B22000020006", DRAFT_TITLE)?;
    ok(
        &quartu,
        &[
            "project",
            "set",
            "J21B22000010006",
            "--financed-eur",
            "1.500.000",
            "--paid-eur",
            "250000",
        ],
    )?;
    ok(
        &quartu,
        &[
            "project",
            "funding",
            "add",
            "J21B22000010006",
            "--source",
            "PNRR",
            "--amount-eur",
            "1500000",
        ],
    )?;
    ok(
        &quartu,
        &[
            "project",
            "milestone",
            "add",
            "J21B22000010006",
            "--code",
            "M1",
            "--description",
            "Aggiudicazione lavori",
            "--due",
            "2020-Q1",
        ],
    )?;
    ok(
        &quartu,
        &[
            "project",
            "funding",
            "add",
            "J21B22000020006",
            "--source",
            "FSC",
            "--amount-eur",
            "99",
        ],
    )?;
    let published = quartu
        .cmd(&["project", "publish", "J21B22000010006"])?
        .ok()?;
    assert!(
        published.last_line().contains("now published"),
        "{}",
        published.last_line()
    );
    let listed = quartu
        .cmd(&["project", "list", "--format", "json"])?
        .ok()?
        .json()?;
    let id_of = |cup: &str| -> Result<String> {
        listed
            .as_array()
            .context("a list")?
            .iter()
            .find(|p| p["cup"] == cup)
            .and_then(|p| p["id"].as_str())
            .map(str::to_owned)
            .context("listed project")
    };
    let (published_id, draft_id) = (id_of("J21B22000010006")?, id_of("J21B22000020006")?);
    quartu.sync()?.ok()?;
    ok(
        &metro,
        &[
            "plan",
            "axis",
            "add",
            "--code",
            "A1",
            "--name",
            "Città sostenibile",
        ],
    )?;
    ok(
        &metro,
        &[
            "plan",
            "objective",
            "add",
            "--code",
            "A1.1",
            "--name",
            "Coste accessibili",
            "--parent",
            "A1",
        ],
    )?;
    ok(
        &metro,
        &[
            "plan",
            "period",
            "add",
            "--code",
            "2024-2026",
            "--name",
            "Triennio",
            "--valid-from",
            "2024-01-01",
            "--valid-to",
            "2026-12-31",
        ],
    )?;
    ok(
        &metro,
        &[
            "plan",
            "zone",
            "add",
            "--code",
            "ZO1",
            "--name",
            "Area costiera",
            "--comuni",
            QUARTU,
        ],
    )?;
    for (code, publish) in [("10AMB016", true), ("99DRAFT1", false)] {
        ok(
            &metro,
            &[
                "indicator",
                "define",
                "--code",
                code,
                "--name",
                &format!("Indicatore {code}"),
                "--unit",
                "%",
                "--polarity",
                "-1",
            ],
        )?;
        ok(
            &metro,
            &[
                "indicator",
                "baseline",
                code,
                "--period",
                "2023",
                "--value",
                "40",
            ],
        )?;
        ok(
            &metro,
            &[
                "indicator",
                "target",
                code,
                "--period",
                "2026",
                "--value",
                "20",
            ],
        )?;
        ok(
            &metro,
            &[
                "indicator",
                "observe",
                code,
                "--period",
                "2025",
                "--value",
                "30",
            ],
        )?;
        if publish {
            ok(&metro, &["indicator", "publish", code])?;
        }
    }
    let web = WebNode::start_with(
        &metro.node_dir(),
        &[
            "--public",
            "--ipa",
            "cmca",
            "--contact-email",
            "opendata@example.it",
        ],
    )?;
    Ok(Network {
        _relay: relay,
        quartu,
        metro,
        draft_id,
        published_id,
        web,
    })
}

/// Waits until the metro's public home page shows the published project's comune.
fn synced_home(web: &WebNode) -> Result<String> {
    let mut home = String::new();
    wait_until(PAGE_TIMEOUT, || {
        let (status, body) = get_text(&web.base, "/pubblico/")?;
        home = body;
        Ok(status == 200 && home.contains("Quartu Sant"))
    })
    .context("the metro's portal never showed Quartu's published project")?;
    Ok(home)
}

#[test]
fn published_projects_are_public_drafts_never_and_the_catalogue_validates() -> Result<()> {
    let n = network()?;
    let base = n.web.base.clone();
    let home = synced_home(&n.web)?;
    assert!(home.contains("<html lang=\"it\""), "Italian by default");
    assert!(
        home.contains("Città sostenibile") && home.contains("Coste accessibili"),
        "the plan"
    );
    assert!(home.contains("Area costiera"), "the zone");
    assert!(home.contains("1.500.000,00"), "financed total: {home}");
    assert!(
        home.contains("id=\"stamp-digest\""),
        "the verification stamp"
    );
    assert!(!home.contains(DRAFT_TITLE));
    // The comune's and the zone's lists, the project page; the draft's is 404.
    for page in [
        format!("/pubblico/comuni/{QUARTU}"),
        "/pubblico/zone/ZO1".to_owned(),
    ] {
        let (status, body) = get_text(&base, &page)?;
        assert_eq!(status, 200, "{page}");
        assert!(body.contains(PUBLISHED_TITLE), "{page}");
        assert!(
            body.contains("Aggiudicazione lavori"),
            "late milestone on {page}"
        );
        assert!(!body.contains(DRAFT_TITLE), "{page}");
    }
    let (status, body) = get_text(
        &base,
        &format!("/pubblico/progetti/{QUARTU}/{}", n.published_id),
    )?;
    assert_eq!(status, 200);
    assert!(body.contains("PNRR") && body.contains(PUBLISHED_TITLE));
    let (status, _) = get_text(
        &base,
        &format!("/pubblico/progetti/{QUARTU}/{}", n.draft_id),
    )?;
    assert_eq!(status, 404, "a draft's page does not exist");
    let (_, indicators) = get_text(&base, "/pubblico/indicatori?lang=en")?;
    assert!(indicators.contains("<html lang=\"en\"") && indicators.contains("<svg"));
    assert!(indicators.contains("Indicatore 10AMB016") && !indicators.contains("99DRAFT1"));

    // The sustainability page: published indicators' deviations (40 → 30,
    // lower is better: an improvement), the objective's projects.
    let (status, body) = get_text(&base, "/pubblico/sostenibilita?da=2024&a=2026")?;
    assert_eq!(status, 200);
    assert!(
        body.contains("Indicatore 10AMB016")
            && body.contains("-10")
            && body.contains("miglioramento"),
        "{body}"
    );
    assert!(!body.contains("99DRAFT1") && !body.contains(DRAFT_TITLE));

    // Open data: only the published project, in every table and format.
    let (status, _, csv_body) = request(&base, "GET", "/opendata/progetti.csv", &[])?;
    assert_eq!(status, 200);
    let mut rows = csv::Reader::from_reader(&csv_body[..]);
    let headers = rows.headers()?.clone();
    let records: Vec<csv::StringRecord> = rows.records().collect::<Result<_, _>>()?;
    assert_eq!(records.len(), 1, "one row per published project");
    let title_col = headers
        .iter()
        .position(|h| h == "titolo")
        .context("titolo")?;
    let name_col = headers
        .iter()
        .position(|h| h == "comune_name")
        .context("comune_name")?;
    assert_eq!(&records[0][title_col], PUBLISHED_TITLE);
    assert_eq!(&records[0][name_col], "Quartu Sant'Elena");
    for file in [
        "progetti.json",
        "finanziamenti.csv",
        "milestone.csv",
        "finanziamenti.json",
    ] {
        let (status, body) = get_text(&base, &format!("/opendata/{file}"))?;
        assert_eq!(status, 200, "{file}");
        assert!(
            !body.contains(DRAFT_TITLE) && !body.contains(&n.draft_id),
            "{file} leaks the draft"
        );
    }
    let (_, json) = get_text(&base, "/opendata/progetti.json")?;
    let json: Value = serde_json::from_str(&json)?;
    assert_eq!(json.as_array().map(Vec::len), Some(1));
    let (_, obs) = get_text(&base, "/opendata/osservazioni.csv")?;
    assert!(
        obs.contains("10AMB016") && !obs.contains("99DRAFT1"),
        "{obs}"
    );

    // The catalogue: JSON-LD, each dataset with licence and publisher,
    // every downloadURL answering 200.
    let (status, catalog) = get_text(&base, "/opendata/catalog.jsonld")?;
    assert_eq!(status, 200);
    assert!(!catalog.contains(DRAFT_TITLE));
    let ld: Value = serde_json::from_str(&catalog)?;
    let nodes = ld["@graph"].as_array().context("@graph")?;
    let typed = |t: &str| -> Vec<&Value> {
        nodes
            .iter()
            .filter(|n| {
                n["@type"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == t))
            })
            .collect()
    };
    let datasets = typed("dcat:Dataset");
    assert_eq!(
        datasets.len(),
        4,
        "progetti, finanziamenti, milestone, osservazioni"
    );
    let agent = typed("foaf:Agent");
    assert_eq!(agent.len(), 1);
    assert_eq!(agent[0]["dct:identifier"], "cmca");
    for d in &datasets {
        assert_eq!(d["dct:publisher"]["@id"], agent[0]["@id"], "{d}");
        assert_eq!(d["dct:rightsHolder"]["@id"], agent[0]["@id"]);
    }
    let distributions = typed("dcat:Distribution");
    assert_eq!(distributions.len(), 12);
    for dist in distributions {
        assert_eq!(
            dist["dct:license"]["@id"],
            "https://w3id.org/italia/controlled-vocabulary/licences/A21_CCBY40"
        );
        let url = dist["dcat:downloadURL"]["@id"]
            .as_str()
            .context("downloadURL")?;
        let target = url
            .strip_prefix(&base)
            .with_context(|| format!("{url} not under {base}"))?;
        let (status, _, body) = request(&base, "GET", target, &[])?;
        assert_eq!(status, 200, "{url}");
        assert!(!body.is_empty(), "{url}");
    }

    // SHACL validation of both serialisations (and that they are one graph).
    let dir = tempfile::tempdir()?;
    let (jsonld, rdf) = (
        dir.path().join("catalog.jsonld"),
        dir.path().join("catalog.rdf"),
    );
    std::fs::write(&jsonld, &catalog)?;
    let (status, _, rdf_body) = request(&base, "GET", "/opendata/catalog.rdf", &[])?;
    assert_eq!(status, 200);
    std::fs::write(&rdf, rdf_body)?;
    let out = validate(&[&jsonld, &rdf])?;
    assert!(
        out.0,
        "the catalogue must conform to DCAT-AP_IT:\n{}",
        out.1
    );
    assert!(out.1.contains("isomorphic=True"), "{}", out.1);
    // The shapes can fail: a catalogue without licences does not conform.
    let mut broken = ld.clone();
    for node in broken["@graph"].as_array_mut().context("graph")? {
        node.as_object_mut().context("node")?.remove("dct:license");
    }
    let bad = dir.path().join("broken.jsonld");
    std::fs::write(&bad, serde_json::to_vec(&broken)?)?;
    let out = validate(&[&bad])?;
    assert!(!out.0 && out.1.contains("license"), "{}", out.1);

    // Figures (printed, not asserted: machines are noisy): page weight and
    // the time of a page served from the held snapshot.
    let started = std::time::Instant::now();
    for _ in 0..20 {
        get_text(&base, &format!("/pubblico/comuni/{QUARTU}"))?;
    }
    eprintln!(
        "portal figures: home {} bytes (no script, one stylesheet of {} bytes); comune page {:.1} ms per GET",
        home.len(),
        get_text(&base, "/pubblico/stile.css")?.1.len(),
        started.elapsed().as_secs_f64() * 1000.0 / 20.0
    );

    // Cacheable and read-only.
    let (status, head, _) = request(&base, "GET", "/pubblico/", &[])?;
    assert_eq!(status, 200);
    assert!(
        header(&head, "cache-control").is_some_and(|c| c.contains("max-age")),
        "{head}"
    );
    assert!(
        header(&head, "set-cookie").is_none(),
        "no session on public pages: {head}"
    );
    let etag = header(&head, "etag").context("etag")?.to_owned();
    let (status, _, body) = request(&base, "GET", "/pubblico/", &[("If-None-Match", &etag)])?;
    assert_eq!((status, body.len()), (304, 0));
    let (status, _, _) = request(&base, "POST", "/pubblico/", &[])?;
    assert_eq!(status, 405, "public pages are read-only");

    // Taken back to a draft, the project leaves the portal after sync.
    ok(&n.quartu, &["project", "unpublish", "J21B22000010006"])?;
    n.quartu.sync()?.ok()?;
    wait_until(PAGE_TIMEOUT, || {
        let (_, csv) = get_text(&base, "/opendata/progetti.csv")?;
        Ok(!csv.contains(PUBLISHED_TITLE))
    })
    .context("an unpublished project stayed in the open data")?;
    drop(n.web);

    // --public needs the publisher's IPA code for the catalogue.
    let refused = n.metro.cmd(&["run", "--http", "127.0.0.1:0", "--public"])?;
    assert_ne!(refused.code, Some(0));
    assert!(
        refused.stderr.contains("--public needs --ipa"),
        "{}",
        refused.stderr
    );

    // Without --public the paths do not exist.
    let plain = WebNode::start_dir(&n.metro.node_dir())?;
    for target in [
        "/pubblico/",
        "/opendata/progetti.csv",
        "/opendata/catalog.jsonld",
    ] {
        let (status, _) = get_text(&plain.base, target)?;
        assert_eq!(status, 404, "{target} without --public");
    }
    Ok(())
}

/// `tests/shacl/validate.py FILES...`: whether it passed, and its output.
fn validate(files: &[&PathBuf]) -> Result<(bool, String)> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("shacl/validate.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(files.iter().map(|f| path(f)))
        .output()
        .context("python3 (with pyshacl, installed by .ci/run)")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    anyhow::ensure!(
        !text.contains("ModuleNotFoundError"),
        "pyshacl is missing (.ci/run installs it): {text}"
    );
    Ok((out.status.success(), text))
}

/// Where `.ci/run` installs axe-core (npm), unless `AXE_CORE_JS` names it.
fn axe_js() -> Result<String> {
    let path = std::env::var("AXE_CORE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../target/axe/node_modules/axe-core/axe.min.js")
        });
    std::fs::read_to_string(&path).with_context(|| {
        format!(
            "axe-core not found at {} (.ci/run installs it)",
            path.display()
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_pages_have_no_serious_accessibility_violations() -> Result<()> {
    let axe = axe_js()?;
    let n = tokio::task::spawn_blocking(network).await??;
    let web_base = n.web.base.clone();
    let home = tokio::task::spawn_blocking({
        let base = web_base.clone();
        move || -> Result<String> {
            let mut body = String::new();
            wait_until(PAGE_TIMEOUT, || {
                body = get_text(&base, "/pubblico/")?.1;
                Ok(body.contains(PUBLISHED_TITLE) || body.contains("Quartu Sant"))
            })?;
            Ok(body)
        }
    })
    .await??;
    assert!(home.contains("Quartu"));
    let b = Browser::start().await?;
    let pages = [
        "/pubblico/".to_owned(),
        format!("/pubblico/comuni/{QUARTU}"),
        format!("/pubblico/progetti/{QUARTU}/{}", n.published_id),
        "/pubblico/zone/ZO1".to_owned(),
        "/pubblico/indicatori".to_owned(),
        "/pubblico/indicatori?lang=en".to_owned(),
        "/pubblico/sostenibilita".to_owned(),
        "/pubblico/verifica".to_owned(),
        "/opendata/".to_owned(),
    ];
    for page in &pages {
        b.client.goto(&format!("{web_base}{page}")).await?;
        b.text_until("main h1", |t| !t.is_empty()).await?;
        b.client.execute(&axe, vec![]).await?;
        let result: Value = b
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] })
                   .then(r => done({ ok: true, violations: r.violations.map(v => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help })) }))
                   .catch(e => done({ ok: false, error: String(e) }));",
                vec![],
            )
            .await?;
        assert_eq!(result["ok"], true, "axe ran on {page}: {result}");
        let serious: Vec<&Value> = result["violations"]
            .as_array()
            .context("violations")?
            .iter()
            .filter(|v| v["impact"] == "serious" || v["impact"] == "critical")
            .collect();
        assert!(serious.is_empty(), "{page}: {serious:?}");
    }
    // The office publishes the draft with the button on its project page
    // (the same operation as `project publish`); the portal shows it after sync.
    let office = WebNode::start(&n.quartu)?;
    b.client
        .goto(&office.url(&format!("/progetti/{QUARTU}/{}", n.draft_id)))
        .await?;
    b.text_until("#project-publication", |t| t.starts_with("Bozza"))
        .await?;
    b.click("#publish-button").await?;
    b.text_until("#project-publication", |t| t.starts_with("Pubblicato"))
        .await?;
    // (Asked by plain HTTP: the browser may reuse its copy for max-age.)
    let base = web_base.clone();
    tokio::task::spawn_blocking(move || {
        wait_until(PAGE_TIMEOUT, || {
            Ok(get_text(&base, &format!("/pubblico/comuni/{QUARTU}"))?
                .1
                .contains(DRAFT_TITLE))
        })
    })
    .await?
    .context("the project published with the button never reached the portal")?;
    // The metro office publishes an indicator with the button on its
    // indicators page; the portal shows it at once (same node).
    let before = get_text(&web_base, "/pubblico/indicatori")?.1;
    assert!(
        !before.contains("Indicatore 99DRAFT1"),
        "a draft indicator is not public"
    );
    b.client.goto(&format!("{web_base}/indicatori")).await?;
    b.click("#publish-99DRAFT1").await?;
    b.text_until("#publish-99DRAFT1", |t| t == "Riporta in bozza")
        .await?;
    let base = web_base.clone();
    tokio::task::spawn_blocking(move || {
        wait_until(PAGE_TIMEOUT, || {
            Ok(get_text(&base, "/pubblico/indicatori")?
                .1
                .contains("Indicatore 99DRAFT1"))
        })
    })
    .await?
    .context("the indicator published with the button never reached the portal")?;
    b.client.goto(&format!("{web_base}/pubblico/")).await?;
    b.screenshot("public-home").await?;
    b.client
        .goto(&format!("{web_base}/pubblico/comuni/{QUARTU}"))
        .await?;
    b.screenshot("public-comune").await?;
    b.client
        .goto(&format!("{web_base}/pubblico/indicatori"))
        .await?;
    b.screenshot("public-indicators").await?;
    b.client
        .goto(&format!("{web_base}/pubblico/sostenibilita"))
        .await?;
    b.screenshot("public-sustainability").await?;
    b.close().await?;
    Ok(())
}

/// `report --kind sostenibilita`: deviations from the baseline to the latest
/// value within the years asked, judged by polarity (figures computed by
/// hand), the objective's projects, the office's texts; JSON, HTML, XLSX.
#[test]
fn the_sustainability_report_judges_deviations_by_polarity() -> Result<()> {
    let mut relay = Relay::init()?;
    relay.start()?;
    let metro = Node::admitted(&relay, CAGLIARI, "metro")?;
    ok(
        &metro,
        &[
            "plan",
            "axis",
            "add",
            "--code",
            "A1",
            "--name",
            "Città sostenibile",
        ],
    )?;
    ok(
        &metro,
        &[
            "plan",
            "objective",
            "add",
            "--code",
            "A1.1",
            "--name",
            "Coste accessibili",
            "--parent",
            "A1",
        ],
    )?;
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
