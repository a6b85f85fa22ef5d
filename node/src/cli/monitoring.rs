//! `accordo indicator ...`, `accordo plan ...` and `accordo report`: the
//! indicator catalog and data, the plan's structure, and the monitoring
//! report over every document this node holds.

use super::codes::comune_any;
use super::served::Served;
use crate::clock::now_ms;
use crate::control::Printer;
use crate::output_format::Format;
use crate::replica::{Replica, ReplicaError};
use accordo_domain::comuni;
use accordo_domain::indicator::{self, IndicatorDef, Reference};
use accordo_domain::model::{parse_sdg, Date, Dimension, FieldError};
use accordo_domain::plan::{self, Kind, Membership, PlanItem};
use accordo_protocol::doc::DocId;
use accordo_protocol::identity::Role;
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum IndicatorCmd {
    /// Define (or redefine) an indicator in the plan's catalog (metro).
    Define {
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        name_en: Option<String>,
        /// BES domain 1..12.
        #[arg(long)]
        bes_domain: Option<u8>,
        #[arg(long)]
        unit: String,
        /// 1 higher is better, -1 lower is better, 0 neutral.
        #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
        polarity: i8,
        #[arg(long)]
        dimension: Option<String>,
        #[arg(long)]
        sdg: Option<String>,
        #[arg(long)]
        source: Option<String>,
        #[arg(long)]
        frequency: Option<String>,
    },
    /// The catalog, with this node's data for each indicator.
    List {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Publish an indicator of the catalog on the public portal (metro).
    Publish { code: String },
    /// Take an indicator back to a draft: no longer public (metro).
    Unpublish { code: String },
    /// Record an observation for a period (this comune; the plan for metro).
    Observe {
        code: String,
        #[arg(long)]
        period: String,
        #[arg(long, allow_hyphen_values = true)]
        value: String,
        #[arg(long)]
        flag: Option<String>,
    },
    /// Set the baseline.
    Baseline {
        code: String,
        #[arg(long)]
        period: String,
        #[arg(long, allow_hyphen_values = true)]
        value: String,
    },
    /// Set the target.
    Target {
        code: String,
        #[arg(long)]
        period: String,
        #[arg(long, allow_hyphen_values = true)]
        value: String,
    },
}

#[derive(Subcommand)]
pub enum PlanCmd {
    /// Axes (policy areas) of the plan.
    #[command(subcommand)]
    Axis(PlanItemCmd),
    /// Objectives (`--parent` names the axis).
    #[command(subcommand)]
    Objective(PlanItemCmd),
    /// Actions (`--parent` names the objective).
    #[command(subcommand)]
    Action(PlanItemCmd),
    /// Strategic projects (`--parent` names the action).
    #[command(subcommand)]
    Strategic(PlanItemCmd),
    /// Zone omogenee and their comuni.
    #[command(subcommand)]
    Zone(PlanItemCmd),
    /// Reporting periods.
    #[command(subcommand)]
    Period(PlanItemCmd),
    /// Texts of the sustainability report (`--code` a dimension such as
    /// environmental, an objective's code, or intro; `--name` the text).
    #[command(subcommand)]
    Text(PlanItemCmd),
}

#[derive(Subcommand)]
pub enum PlanItemCmd {
    /// Add or update an item (metro).
    Add {
        #[arg(long)]
        code: String,
        #[arg(long)]
        name: String,
        /// The axis of an objective, the objective of an action.
        #[arg(long, alias = "axis", alias = "objective")]
        parent: Option<String>,
        /// Zone: member comuni, comma-separated ISTAT codes.
        #[arg(long, value_delimiter = ',')]
        comuni: Vec<String>,
        /// Zone membership or period start.
        #[arg(long, alias = "start")]
        valid_from: Option<String>,
        /// Zone membership or period end.
        #[arg(long, alias = "end")]
        valid_to: Option<String>,
    },
    List {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

pub use crate::ops::output::ReportFormat;

/// Which report `accordo report` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportKind {
    Monitoraggio,
    Sostenibilita,
}

fn field<T>(r: Result<T, FieldError>) -> Result<T> {
    r.map_err(|e| anyhow::anyhow!("invalid {e}"))
}

/// The document this node writes indicator data into.
use crate::ops::indicator::data_doc;

fn require_metro(replica: &Replica, what: &str) -> Result<()> {
    if replica.settings.role != Role::Metro {
        bail!("{what} is written by the metropolitan office (a node with role metro); this node is {}", replica.settings.role);
    }
    Ok(())
}

fn edit_err(e: accordo_domain::codec::CodecError) -> ReplicaError {
    ReplicaError::Edit(e.to_string())
}

pub fn indicator(dir: &Path, cmd: IndicatorCmd) -> Result<()> {
    let mut replica = Replica::open(dir)?;
    match cmd {
        IndicatorCmd::Define {
            code,
            name,
            name_en,
            bes_domain,
            unit,
            polarity,
            dimension,
            sdg,
            source,
            frequency,
        } => {
            require_metro(&replica, "the indicator catalog")?;
            let code = code.trim().to_owned();
            if code.is_empty() || code.contains('/') {
                bail!("invalid --code {code:?}: expected a code such as 07SIC001P (no `/`)");
            }
            if !(-1..=1).contains(&polarity) {
                bail!("invalid --polarity {polarity}: expected 1, -1 or 0");
            }
            if bes_domain.is_some_and(|d| !(1..=12).contains(&d)) {
                bail!("invalid --bes-domain: expected 1..12");
            }
            let def = IndicatorDef {
                code: code.clone(),
                name_it: name,
                name_en,
                bes_domain,
                unit,
                polarity,
                dimension: dimension
                    .map(|d| field(d.parse::<Dimension>()))
                    .transpose()?,
                sdg: sdg.map(|s| field(parse_sdg(&s))).transpose()?,
                source,
                frequency,
                published: false,
            };
            replica.edit(&DocId::Plan, now_ms(), |doc| {
                // Redefining keeps the publication the office decided.
                let mut def = def.clone();
                def.published = indicator::definitions(doc)
                    .iter()
                    .any(|d| d.code == def.code && d.published);
                indicator::save_definition(doc, &def).map_err(edit_err)
            })?;
            println!("indicator {code} defined");
        }
        IndicatorCmd::Publish { code } => {
            indicator_publication(&mut replica, &code, true, &mut Printer::direct())?
        }
        IndicatorCmd::Unpublish { code } => {
            indicator_publication(&mut replica, &code, false, &mut Printer::direct())?
        }
        IndicatorCmd::List { format } => {
            let plan = replica.materialise(&DocId::Plan)?;
            let data = indicator::data(&replica.materialise(&data_doc(&replica))?);
            let rows: Vec<_> = indicator::definitions(&plan)
                .into_iter()
                .map(|d| {
                    let mut v = serde_json::to_value(&d).unwrap_or_default();
                    v["code"] = serde_json::json!(d.code);
                    v["data"] = serde_json::to_value(data.get(&d.code)).unwrap_or_default();
                    v
                })
                .collect();
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for r in &rows {
                    println!(
                        "{:<12} {:<40} {:<8} polarity {}",
                        r["code"].as_str().unwrap_or(""),
                        r["name_it"].as_str().unwrap_or(""),
                        r["unit"].as_str().unwrap_or(""),
                        r["polarity"]
                    );
                }
                println!("{} indicator(s)", rows.len());
            }
        }
        IndicatorCmd::Observe {
            code,
            period,
            value,
            flag,
        } => observe(
            &mut replica,
            &code,
            &period,
            &value,
            flag,
            &mut Printer::direct(),
        )?,
        IndicatorCmd::Baseline {
            code,
            period,
            value,
        }
        | IndicatorCmd::Target {
            code,
            period,
            value,
        } => {
            unreachable!("{code} {period} {value}: handled by reference()")
        }
    }
    Ok(())
}

/// `indicator publish` / `indicator unpublish` (also served by `run`).
pub fn indicator_publication(
    replica: &mut Replica,
    code: &str,
    publish: bool,
    out: &mut Printer,
) -> Result<()> {
    let changed =
        crate::ops::indicator::publish(replica, code, publish, &crate::ops::Author::default())?;
    let state = if publish { "published" } else { "a draft" };
    if changed {
        out.out(format!("indicator {code} is now {state}"));
    } else {
        out.out(format!("unchanged: indicator {code} was already {state}"));
    }
    Ok(())
}

/// `indicator observe` (also served by `run`).
pub fn observe(
    replica: &mut Replica,
    code: &str,
    period: &str,
    value: &str,
    flag: Option<String>,
    out: &mut Printer,
) -> Result<()> {
    let (period, value) = crate::ops::indicator::observe(
        replica,
        code,
        period,
        value,
        flag,
        &crate::ops::Author::default(),
    )?;
    out.out(format!("observed {code} {period} = {value}"));
    Ok(())
}

/// `accordo indicator ...`: observations and publication are handed to
/// the `accordo run` serving `dir` when one does (unless `direct`).
pub fn indicator_cmd(dir: &Path, cmd: IndicatorCmd, direct: bool) -> Result<ExitCode> {
    let served = match &cmd {
        _ if direct => None,
        IndicatorCmd::Observe {
            code,
            period,
            value,
            flag,
        } => Some(Served::Observe {
            code: code.clone(),
            period: period.clone(),
            value: value.clone(),
            flag: flag.clone(),
        }),
        IndicatorCmd::Publish { code } => Some(Served::IndicatorPublication {
            code: code.clone(),
            publish: true,
        }),
        IndicatorCmd::Unpublish { code } => Some(Served::IndicatorPublication {
            code: code.clone(),
            publish: false,
        }),
        _ => None,
    };
    if let Some(code) = served.and_then(|s| super::served::forward(dir, s)) {
        return Ok(code);
    }
    reference(dir, cmd)?;
    Ok(ExitCode::SUCCESS)
}

/// `indicator baseline|target`.
pub fn reference(dir: &Path, cmd: IndicatorCmd) -> Result<()> {
    let (is_target, code, period, value) = match cmd {
        IndicatorCmd::Baseline {
            code,
            period,
            value,
        } => (false, code, period, value),
        IndicatorCmd::Target {
            code,
            period,
            value,
        } => (true, code, period, value),
        other => return indicator(dir, other),
    };
    let mut replica = Replica::open(dir)?;
    let r = Reference {
        period: field(indicator::parse_period(&period))?,
        value: field(indicator::parse_value("--value", &value))?,
    };
    let doc = data_doc(&replica);
    replica.edit(&doc, now_ms(), |d| {
        if is_target {
            indicator::set_target(d, &code, &r)
        } else {
            indicator::set_baseline(d, &code, &r)
        }
        .map_err(edit_err)
    })?;
    println!(
        "{} of {code} set: {} in {}",
        if is_target { "target" } else { "baseline" },
        r.value,
        r.period
    );
    Ok(())
}

pub fn plan(dir: &Path, cmd: PlanCmd) -> Result<()> {
    let (kind, cmd) = match cmd {
        PlanCmd::Axis(c) => (Kind::Axis, c),
        PlanCmd::Objective(c) => (Kind::Objective, c),
        PlanCmd::Action(c) => (Kind::Action, c),
        PlanCmd::Strategic(c) => (Kind::Strategic, c),
        PlanCmd::Zone(c) => (Kind::Zone, c),
        PlanCmd::Period(c) => (Kind::Period, c),
        PlanCmd::Text(c) => (Kind::Text, c),
    };
    let mut replica = Replica::open(dir)?;
    match cmd {
        PlanItemCmd::Add {
            code,
            name,
            parent,
            comuni,
            valid_from,
            valid_to,
        } => {
            require_metro(&replica, "the plan")?;
            let code = code.trim().to_owned();
            if code.is_empty() || code.contains('/') {
                bail!("invalid --code {code:?}: expected a code such as A1 (no `/`)");
            }
            let date = |name: &str, v: &Option<String>| -> Result<Option<Date>> {
                v.as_deref()
                    .map(|s| field(Date::parse_any(name, s)))
                    .transpose()
            };
            let (from, to) = (
                date("--valid-from", &valid_from)?,
                date("--valid-to", &valid_to)?,
            );
            let plan_doc = replica.materialise(&DocId::Plan)?;
            if let (Some(pk), Some(p)) = (kind.parent(), &parent) {
                if !plan::items(&plan_doc, pk).iter().any(|i| i.code == *p) {
                    bail!(
                        "invalid --parent {p:?}: no such {} in the plan",
                        pk.prefix().trim_end_matches('/')
                    );
                }
            }
            let mut item = PlanItem {
                code: code.clone(),
                name,
                parent,
                ..PlanItem::default()
            };
            match kind {
                Kind::Zone => {
                    for c in &comuni {
                        let c = comune_any(c, &format!("--comuni {c:?}"))?;
                        item.comuni.insert(
                            c.to_string(),
                            Membership {
                                valid_from: from,
                                valid_to: to,
                                ..Membership::default()
                            },
                        );
                    }
                }
                Kind::Period => {
                    item.start = from;
                    item.end = to;
                }
                _ => {}
            }
            replica.edit(&DocId::Plan, now_ms(), |doc| {
                plan::save(doc, kind, &item).map_err(edit_err)
            })?;
            println!("{} {code} saved", kind.prefix().trim_end_matches('/'));
        }
        PlanItemCmd::List { format } => {
            let doc = replica.materialise(&DocId::Plan)?;
            let items = plan::items(&doc, kind);
            if format == Format::Json {
                let rows: Vec<_> = items
                    .iter()
                    .map(|i| {
                        let mut v = serde_json::to_value(i).unwrap_or_default();
                        v["code"] = serde_json::json!(i.code);
                        if !i.comuni.is_empty() {
                            v["comune_names"] = serde_json::json!(zone_names(i));
                        }
                        v
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for i in &items {
                    println!(
                        "{:<10} {} {}",
                        i.code,
                        i.name,
                        i.parent
                            .as_deref()
                            .map(|p| format!("(in {p})"))
                            .unwrap_or_default()
                    );
                    for (code, m) in &i.comuni {
                        println!("           {}{}", comuni::label(code), validity(m));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Zone members' names by ISTAT code (JSON `comune_names`).
fn zone_names(zone: &PlanItem) -> std::collections::BTreeMap<&str, Option<&'static str>> {
    zone.comuni
        .keys()
        .map(|c| (c.as_str(), comuni::name(c)))
        .collect()
}

/// ` from 2020-01-01 to 2025-12-31`, or what of it is known.
fn validity(m: &Membership) -> String {
    let mut s = String::new();
    if let Some(f) = m.valid_from {
        s.push_str(&format!(" from {f}"));
    }
    if let Some(t) = m.valid_to {
        s.push_str(&format!(" to {t}"));
    }
    s
}

pub fn run_report(
    dir: &Path,
    as_of: Option<String>,
    period: Option<String>,
    format: ReportFormat,
    out: Option<PathBuf>,
) -> Result<()> {
    let as_of = match as_of {
        Some(s) => field(Date::parse_any("--as-of", &s))?,
        None => crate::clock::today(),
    };
    let period = period
        .map(|p| field(indicator::parse_period(&p)))
        .transpose()?;
    let mut replica = Replica::open(dir)?;
    let r = crate::ops::output::report(&mut replica, as_of, period)?;
    drop(replica);
    let write = |w: &mut dyn std::io::Write| crate::ops::output::write_report(&r, format, w);
    match out {
        Some(path) => {
            crate::output_file::write_atomically_with(&path, |f| Ok(write(f)?))?;
            eprintln!("report written to {}", path.display());
        }
        None if format == ReportFormat::Xlsx => bail!("--format xlsx needs --out FILE"),
        None => write(&mut std::io::stdout().lock())?,
    }
    Ok(())
}

/// `report --kind sostenibilita --from YEAR --to YEAR`: the sustainability
/// report over the query store (indicators, projects, the plan's
/// objectives, actions and texts), as of the last day of `to`.
pub fn run_sustainability(
    dir: &Path,
    from: Option<u16>,
    to: Option<u16>,
    format: ReportFormat,
    out: Option<PathBuf>,
) -> Result<()> {
    use accordo_domain::sustainability::{self, render};
    let (Some(from), Some(to)) = (from, to) else {
        bail!("--kind sostenibilita needs --from YEAR and --to YEAR (e.g. --from 2024 --to 2026)");
    };
    if from > to || !(1900..=2200).contains(&from) || !(1900..=2200).contains(&to) {
        bail!(
            "invalid --from {from} --to {to}: expected two years, the first not after the second"
        );
    }
    let as_of = Date::new(to, 12, 31).context("--to is a year")?;
    let mut replica = Replica::open(dir)?;
    let (input, objectives, actions, texts) = replica.query(|tx| {
        use crate::views::public::plan_items;
        Ok((
            crate::views::report_input(tx, as_of, None)?,
            plan_items(tx, Kind::Objective)?,
            plan_items(tx, Kind::Action)?,
            plan_items(tx, Kind::Text)?,
        ))
    })?;
    let plan = sustainability::Plan {
        objectives: &objectives,
        actions: &actions,
        texts: &texts,
    };
    let r = sustainability::build(&input, &plan, from, to);
    let bytes = match format {
        ReportFormat::Json => {
            let mut b = serde_json::to_vec_pretty(&r)?;
            b.push(b'\n');
            b
        }
        ReportFormat::Html => render::html(&r).into_bytes(),
        ReportFormat::Xlsx => render::xlsx(&r)?,
        ReportFormat::Md => bail!("--kind sostenibilita is written as json, html or xlsx"),
    };
    match out {
        Some(path) => {
            crate::output_file::write_atomically(&path, &bytes)?;
            eprintln!("report written to {}", path.display());
        }
        None if format == ReportFormat::Xlsx => bail!("--format xlsx needs --out FILE"),
        None => {
            use std::io::Write;
            std::io::stdout().write_all(&bytes)?;
        }
    }
    Ok(())
}

/// How many differing figures `report --verify` prints before "and N
/// more": the first few locate an alteration; the rest are its echoes
/// (totals, shifted rows).
const MAX_DIFFERENCES_SHOWN: usize = 5;

/// Exit code of `report --verify` when the file is not a report at all
/// (as for a bad configuration or command line).
const NOT_A_REPORT_EXIT: u8 = 2;

/// `accordo report --verify FILE`.
pub fn run_report_verify(dir: &Path, file: &Path) -> Result<ExitCode> {
    use crate::report_verify::{verify_file, Outcome, VerifyError};
    let mut replica = Replica::open(dir)?;
    let outcome = match verify_file(&mut replica, file) {
        Ok(o) => o,
        Err(VerifyError::Replica(e)) => return Err(e.into()),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(NOT_A_REPORT_EXIT));
        }
    };
    match outcome {
        Outcome::Verified {
            documents,
            digest,
            now_invalid,
        } => {
            println!("report verified: {documents} documents, digest {digest}");
            if now_invalid > 0 {
                println!(
                    "note: {now_invalid} change(s) it was computed from are invalid under the registry this node holds now (revoked since)"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Outcome::HeadsNotHeld(missing) => {
            for (doc, hash) in &missing {
                println!("heads not held: {doc} {hash}");
            }
            Ok(ExitCode::FAILURE)
        }
        Outcome::Mismatch {
            differences,
            digest_of_content_differs,
        } => {
            let mut lines = differences.iter().map(ToString::to_string);
            match lines.next() {
                Some(first) => println!("report does not match: {first}"),
                None => println!("report does not match its digest"),
            }
            for line in lines.by_ref().take(MAX_DIFFERENCES_SHOWN - 1) {
                println!("  {line}");
            }
            let more = lines.count();
            if more > 0 {
                println!("  … and {more} more");
            }
            if digest_of_content_differs {
                println!("  the digest in the file is not that of its content: altered after it was made");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}
