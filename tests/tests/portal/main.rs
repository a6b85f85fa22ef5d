//! The public portal and open data of a metropolitan node (`run --http
//! --public`), over real processes: a comune publishes one project and
//! keeps another as a draft; after sync the metro's public pages, CSV, JSON
//! and catalogue show the published one and never the draft; the DCAT-AP_IT
//! catalogue parses as JSON-LD, names licence and publisher, every
//! downloadURL answers 200, and it passes SHACL validation (pyshacl, shapes
//! in `tests/shacl/`) in both serialisations; answers are cacheable (ETag,
//! 304) and read-only; without `--public` the paths do not exist; the
//! public pages have no serious or critical axe-core violations in
//! Chromium, and the office's publish button puts a project on the portal
//! (`browser`); the sustainability report's deviations (`sustainability`).
//! `http` holds the tests by plain HTTP.

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
    axis_and_objective(&metro)?;
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

mod browser;
mod decisions;
mod http;
mod sustainability;

/// The plan's axis A1 and its objective A1.1, on the metro node.
fn axis_and_objective(metro: &Node) -> Result<()> {
    ok(
        metro,
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
        metro,
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
    )
}
