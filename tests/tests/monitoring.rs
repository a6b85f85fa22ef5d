//! The Grafana dashboard and the alert rules in `deploy/monitoring/` name
//! only metrics the binaries export, with label values they use: both
//! binaries are run with `--metrics`, scraped after a sync, and every
//! `accordo_*` name (and `label="value"` matcher on it) in those files is
//! looked up in the scrapes.

use accordo_tests::http::{scrape, spawn_run_with_metrics};
use accordo_tests::openmetrics::Family;
use accordo_tests::{wait_until, Node, Relay};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::time::Duration;

/// Suffixes a sample name adds to its family's name.
const SUFFIXES: [&str; 4] = ["_total", "_bucket", "_sum", "_count"];

/// Every `accordo_…` metric name in `text`, with the `key="value"` matchers
/// of the selector that follows it (if any).
fn references(text: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("accordo_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = tail[..end].to_owned();
        let mut matchers = Vec::new();
        if let Some(sel) = tail[end..].strip_prefix('{') {
            let close = sel.find('}').unwrap_or(0);
            for m in sel[..close].split(',') {
                if let Some((k, v)) = m.split_once('=') {
                    let v = v
                        .trim()
                        .trim_matches('"')
                        .trim_matches('\\')
                        .trim_matches('"');
                    matchers.push((k.trim().to_owned(), v.to_owned()));
                }
            }
        }
        out.push((name, matchers));
        rest = &tail[end..];
    }
    out
}

fn family_of<'a>(all: &'a BTreeMap<String, Family>, sample: &str) -> Option<&'a Family> {
    all.get(sample).or_else(|| {
        SUFFIXES
            .iter()
            .find_map(|s| sample.strip_suffix(s).and_then(|f| all.get(f)))
    })
}

#[test]
fn dashboards_and_alerts_name_only_exported_metrics() -> Result<()> {
    let mut relay = Relay::init()?;
    let relay_metrics = relay.start_with_metrics()?;
    let node = Node::admitted(&relay, "092051", "comune")?;
    let (mut child, node_metrics) = spawn_run_with_metrics(&node)?;
    node.add("H81B22000120001", "Pista ciclabile")?;
    wait_until(Duration::from_secs(20), || {
        let m = scrape(&node_metrics)?;
        Ok(m.get("accordo_node_changes_pushed")
            .and_then(|f| f.value("accordo_node_changes_pushed_total", &[]))
            == Some(1.0))
    })?;
    let mut all = scrape(&relay_metrics)?;
    all.extend(scrape(&node_metrics)?);
    let _ = child.kill();
    child.wait()?;

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/monitoring");
    let mut checked = 0;
    for file in ["alerts.yml", "grafana-dashboard.json"] {
        let text = std::fs::read_to_string(root.join(file)).with_context(|| file.to_owned())?;
        let refs = references(&text);
        anyhow::ensure!(!refs.is_empty(), "{file} names no metric");
        for (name, matchers) in refs {
            let family = family_of(&all, &name)
                .with_context(|| format!("{file}: {name} is not exported"))?;
            for (key, value) in matchers.iter().filter(|(k, _)| k != "job") {
                anyhow::ensure!(
                    family
                        .samples
                        .iter()
                        .any(|s| s.labels.get(key) == Some(value)),
                    "{file}: {name}{{{key}=\"{value}\"}} matches no exported series"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked} references checked");
    Ok(())
}
