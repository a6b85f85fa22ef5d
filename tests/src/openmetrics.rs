//! A strict reader of the OpenMetrics text format (what `/metrics` serves),
//! for tests: every line must follow the grammar, every sample must belong
//! to the family declared above it with a suffix its type allows, and
//! histograms must be cumulative with a `+Inf` bucket equal to their count.
//! (`prometheus-parse` resolves here but skips lines it cannot read and
//! types OpenMetrics counters' `_total` samples as untyped, so it would let
//! a broken exposition pass.)

use anyhow::{bail, ensure, Context, Result};
use std::collections::{BTreeMap, BTreeSet};

/// One metric family: its declared type and help, and its samples.
#[derive(Debug, Clone, Default)]
pub struct Family {
    pub kind: String,
    pub help: Option<String>,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's full name, e.g. `x_total` or `x_bucket`.
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Family {
    /// The value of the sample named `name` whose labels include `labels`.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    }
}

const TYPES: [&str; 8] = [
    "counter",
    "gauge",
    "histogram",
    "gaugehistogram",
    "stateset",
    "info",
    "summary",
    "unknown",
];

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Suffixes a sample name may add to its family's name, by type.
fn suffixes(kind: &str) -> &'static [&'static str] {
    match kind {
        "counter" => &["_total", "_created"],
        "histogram" | "gaugehistogram" => {
            &["_bucket", "_count", "_sum", "_created", "_gcount", "_gsum"]
        }
        "summary" => &["", "_count", "_sum", "_created"],
        "info" => &["_info"],
        _ => &[""],
    }
}

fn parse_value(s: &str) -> Result<f64> {
    match s {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse::<f64>().with_context(|| format!("bad value {s:?}")),
    }
}

/// Parses `{a="x",b="y"}` (the braces included); returns the labels and the rest.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    let mut rest = s.strip_prefix('{').context("labels start with {")?;
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest.find('=').context("label without =")?;
        let name = &rest[..eq];
        ensure!(is_label_name(name), "bad label name {name:?}");
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .context("label value not quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    other => bail!("bad escape {other:?}"),
                },
                Some((_, '\n')) | None => bail!("unterminated label value"),
                Some((_, c)) => value.push(c),
            }
        };
        ensure!(
            labels.insert(name.to_owned(), value).is_none(),
            "label {name} twice"
        );
        rest = &rest[end + 1..];
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else {
            ensure!(rest.starts_with('}'), "labels not separated by commas");
        }
    }
}

fn parse_sample(line: &str) -> Result<Sample> {
    let name_end = line.find(['{', ' ']).context("sample without value")?;
    let name = &line[..name_end];
    ensure!(is_metric_name(name), "bad metric name {name:?}");
    let (labels, rest) = if line[name_end..].starts_with('{') {
        parse_labels(&line[name_end..])?
    } else {
        (BTreeMap::new(), &line[name_end..])
    };
    let rest = rest
        .strip_prefix(' ')
        .context("no space before the value")?;
    let mut parts = rest.split(' ');
    let value = parse_value(parts.next().context("no value")?)?;
    if let Some(ts) = parts.next() {
        parse_value(ts).context("bad timestamp")?;
    }
    ensure!(parts.next().is_none(), "trailing text");
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Parses a whole exposition into families by name.
pub fn parse(text: &str) -> Result<BTreeMap<String, Family>> {
    ensure!(
        text.ends_with("# EOF\n"),
        "the exposition does not end with # EOF"
    );
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut seen = BTreeSet::new();
    let body = &text[..text.len() - "# EOF\n".len()];
    for (n, line) in body.lines().enumerate() {
        let at = || format!("line {}: {line:?}", n + 1);
        if let Some(meta) = line.strip_prefix("# ") {
            let mut parts = meta.splitn(3, ' ');
            let (what, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let arg = parts.next().unwrap_or("");
            ensure!(is_metric_name(name), "{}: bad family name", at());
            let family = families.entry(name.to_owned()).or_default();
            match what {
                "TYPE" => {
                    ensure!(TYPES.contains(&arg), "{}: unknown type", at());
                    ensure!(family.kind.is_empty(), "{}: type declared twice", at());
                    family.kind = arg.to_owned();
                }
                "HELP" => family.help = Some(arg.to_owned()),
                "UNIT" => {}
                _ => bail!("{}: unknown metadata", at()),
            }
            current = Some(name.to_owned());
            continue;
        }
        let sample = parse_sample(line).with_context(at)?;
        let family_name = current
            .clone()
            .with_context(|| format!("{}: sample before any TYPE", at()))?;
        let family = families.get_mut(&family_name).context("current family")?;
        ensure!(!family.kind.is_empty(), "{}: family without TYPE", at());
        let suffix = sample.name.strip_prefix(&family_name).unwrap_or("\u{0}");
        ensure!(
            suffixes(&family.kind).contains(&suffix),
            "{}: sample does not belong to {} family {family_name}",
            at(),
            family.kind
        );
        if family.kind == "counter" && suffix == "_total" {
            ensure!(sample.value >= 0.0, "{}: negative counter", at());
        }
        ensure!(
            seen.insert(format!("{}{:?}", sample.name, sample.labels)),
            "{}: duplicate sample",
            at()
        );
        family.samples.push(sample);
    }
    for (name, family) in &families {
        if family.kind == "histogram" {
            check_histogram(name, family)?;
        }
    }
    Ok(families)
}

/// Buckets are cumulative and the `+Inf` bucket equals `_count`, per label set.
fn check_histogram(name: &str, family: &Family) -> Result<()> {
    let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut counts: BTreeMap<String, f64> = BTreeMap::new();
    for s in &family.samples {
        let mut rest = s.labels.clone();
        let le = rest.remove("le");
        let key = format!("{rest:?}");
        match (s.name.strip_prefix(name), le) {
            (Some("_bucket"), Some(le)) => series
                .entry(key)
                .or_default()
                .push((parse_value(&le)?, s.value)),
            (Some("_bucket"), None) => bail!("{name}: bucket without le"),
            (Some("_count"), _) => {
                counts.insert(key, s.value);
            }
            _ => {}
        }
    }
    ensure!(!counts.is_empty(), "{name}: histogram without _count");
    for (key, count) in counts {
        let buckets = series
            .get(&key)
            .with_context(|| format!("{name}{key}: no buckets"))?;
        ensure!(
            buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{name}{key}: buckets not cumulative in increasing le"
        );
        let last = buckets.last().context("buckets")?;
        ensure!(
            last.0.is_infinite() && last.1 == count,
            "{name}{key}: +Inf bucket is not the count"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_well_formed_exposition_parses_and_broken_ones_do_not() {
        let good = "# HELP x_events Events.\n# TYPE x_events counter\nx_events_total{a=\"1\"} 2\n\
                    # TYPE x_d histogram\nx_d_sum 0.5\nx_d_count 2\nx_d_bucket{le=\"0.1\"} 1\nx_d_bucket{le=\"+Inf\"} 2\n# EOF\n";
        let f = parse(good).unwrap();
        assert_eq!(f["x_events"].kind, "counter");
        assert_eq!(
            f["x_events"].value("x_events_total", &[("a", "1")]),
            Some(2.0)
        );
        for bad in [
            good.replace("# EOF\n", ""),
            good.replace("x_events_total{a", "x_event_total{a"),
            good.replace("{a=\"1\"}", "{a=1}"),
            good.replace("} 2\n#", "} two\n#"),
            good.replace("le=\"+Inf\"} 2", "le=\"+Inf\"} 3"),
            good.replace("counter", "countr"),
            good.replace("# TYPE x_events counter\n", ""),
        ] {
            assert!(parse(&bad).is_err(), "accepted: {bad}");
        }
    }
}
