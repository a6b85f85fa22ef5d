//! `accordo project ...`: the portfolio from the command line. Every field of
//! the domain model is reachable; every refused value names its field and the
//! form expected. Edits are local (offline) and reach the relay on `sync`.

use super::codes::comune_any;
use crate::clock::now_ms;
use crate::output_format::Format;
use crate::replica::Replica;
use accordo_domain::comuni;
use accordo_domain::model::{
    parse_due, parse_sdg, Date, Dimension, FieldError, FundingLine, FundingSource, Location,
    Milestone, Phase, PnrrMeasure, ProceduralState, Project, StateBasis,
};
use accordo_domain::money::{format_eur, parse_eur_cents};
use accordo_domain::portfolio;
use accordo_protocol::codes::Cup;
use accordo_protocol::doc::DocId;
use anyhow::{bail, Context, Result};
use automerge::AutoCommit;
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::Path;

#[derive(Subcommand)]
pub enum ProjectCmd {
    /// Add a project to this comune's portfolio (works offline).
    Add {
        /// CUP (15 characters); optional, several projects may share one.
        #[arg(long)]
        cup: Option<String>,
        #[arg(long)]
        title: String,
        #[command(flatten)]
        fields: Fields,
    },
    /// Edit fields of a project (by CUP, or by id with --id).
    Set {
        cup: Option<String>,
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        title: Option<String>,
        #[command(flatten)]
        fields: Fields,
    },
    /// List projects of this comune, or of every comune held with --all.
    List {
        #[arg(long)]
        all: bool,
        /// Include archived projects.
        #[arg(long)]
        archived: bool,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Show one project, with concurrent values of its fields if any.
    Show {
        cup: Option<String>,
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        comune: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Archive a project (kept, hidden from lists and reports).
    Archive {
        cup: Option<String>,
        #[arg(long)]
        id: Option<String>,
        /// Bring an archived project back.
        #[arg(long)]
        undo: bool,
    },
    /// Funding lines of a project.
    #[command(subcommand)]
    Funding(FundingCmd),
    /// Milestones and targets of a project.
    #[command(subcommand)]
    Milestone(MilestoneCmd),
    /// Procedural phases of a project.
    #[command(subcommand)]
    Phase(PhaseCmd),
}

#[derive(Subcommand)]
pub enum FundingCmd {
    /// Add a funding line; prints its id.
    Add {
        cup: Option<String>,
        #[arg(long)]
        id: Option<String>,
        /// PNRR, PNC, PSC, FSC, FESR, FSE+, FEASR, FEAMP, PAC, Stato, Regione, Provincia, Comune, Privato, ...
        #[arg(long)]
        source: String,
        #[arg(long)]
        amount_eur: String,
        #[arg(long)]
        programme: Option<String>,
    },
    /// Remove a funding line by its id.
    Remove {
        cup: Option<String>,
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        line: String,
    },
}

#[derive(Subcommand)]
pub enum MilestoneCmd {
    /// Add a milestone or target; prints its id.
    Add {
        cup: Option<String>,
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        code: String,
        #[arg(long)]
        description: String,
        /// Due quarter (2026-Q2) or date.
        #[arg(long)]
        due: String,
        #[arg(long)]
        unit: Option<String>,
        #[arg(long)]
        baseline: Option<String>,
        #[arg(long)]
        target: Option<String>,
    },
    /// Record a milestone as achieved.
    Done {
        cup: Option<String>,
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        milestone: String,
        #[arg(long)]
        date: String,
        #[arg(long)]
        value: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum PhaseCmd {
    /// Set dates of a procedural phase (STUDIO_FATT, PROG_PREL, PROG_DEF,
    /// PROG_ESEC, AGG_BANDO, STIP_ATTRIB, ESECUZIONE, COLLAUDO).
    Set {
        cup: Option<String>,
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        phase: String,
        #[arg(long)]
        planned_start: Option<String>,
        #[arg(long)]
        planned_end: Option<String>,
        #[arg(long)]
        actual_start: Option<String>,
        #[arg(long)]
        actual_end: Option<String>,
    },
}

/// Optional fields shared by `add` and `set`.
#[derive(Args, Default)]
pub struct Fields {
    #[arg(long)]
    summary: Option<String>,
    #[arg(long)]
    local_code: Option<String>,
    /// Soggetto attuatore.
    #[arg(long)]
    implementing_body: Option<String>,
    #[arg(long)]
    cost_eur: Option<String>,
    #[arg(long)]
    financed_eur: Option<String>,
    #[arg(long)]
    committed_eur: Option<String>,
    #[arg(long)]
    paid_eur: Option<String>,
    /// PNRR measure, e.g. M5C2I2.2.
    #[arg(long)]
    pnrr_measure: Option<String>,
    /// SDGs 1..17, comma-separated (replaces the set).
    #[arg(long, value_delimiter = ',')]
    sdg: Vec<String>,
    /// governance, environmental, social, economic; comma-separated.
    #[arg(long, value_delimiter = ',')]
    dimension: Vec<String>,
    /// PSM axis/objective/action codes, comma-separated.
    #[arg(long, value_delimiter = ',')]
    psm: Vec<String>,
    /// Zona omogenea code.
    #[arg(long)]
    zone: Option<String>,
    /// ISTAT:PERCENT (e.g. 092009:60) or `national`; repeatable (replaces the set).
    #[arg(long)]
    location: Vec<String>,
    /// Physical progress, percent 0..100.
    #[arg(long)]
    progress: Option<String>,
    /// Procedural state override, or `auto` to derive it from the phases.
    #[arg(long)]
    state: Option<String>,
    /// The state the source publishes (e.g. "In esecuzione"), used when no
    /// override is set; `none` clears it so the state is derived.
    #[arg(long)]
    stated_state: Option<String>,
    #[arg(long)]
    officer: Option<String>,
    #[arg(long)]
    notes: Option<String>,
}

fn field<T>(r: Result<T, FieldError>) -> Result<T> {
    r.map_err(|e| anyhow::anyhow!("invalid {e}"))
}

fn money(name: &'static str, v: &Option<String>) -> Result<Option<i64>> {
    v.as_deref()
        .map(|s| parse_eur_cents(name, s))
        .transpose()
        .map_err(Into::into)
}

impl Fields {
    /// Applies the given fields to `p`, validating each.
    fn apply(&self, p: &mut Project) -> Result<()> {
        let text = |v: &Option<String>| {
            v.as_ref()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        if self.summary.is_some() {
            p.summary = text(&self.summary);
        }
        if self.local_code.is_some() {
            p.local_code = text(&self.local_code);
        }
        if self.implementing_body.is_some() {
            p.implementing_body = text(&self.implementing_body);
        }
        for (target, value, name) in [
            (&mut p.cost_cents, &self.cost_eur, "--cost-eur"),
            (&mut p.financed_cents, &self.financed_eur, "--financed-eur"),
            (
                &mut p.committed_cents,
                &self.committed_eur,
                "--committed-eur",
            ),
            (&mut p.paid_cents, &self.paid_eur, "--paid-eur"),
        ] {
            if let Some(c) = money(name, value)? {
                *target = Some(c);
            }
        }
        if let Some(m) = &self.pnrr_measure {
            p.pnrr_measure = Some(field(m.parse::<PnrrMeasure>())?);
        }
        if !self.sdg.is_empty() {
            p.sdgs = self
                .sdg
                .iter()
                .map(|s| field(parse_sdg(s)))
                .collect::<Result<_>>()?;
        }
        if !self.dimension.is_empty() {
            p.dimensions = self
                .dimension
                .iter()
                .map(|s| field(s.parse::<Dimension>()))
                .collect::<Result<_>>()?;
        }
        if !self.psm.is_empty() {
            p.psm_links = self.psm.iter().map(|s| s.trim().to_owned()).collect();
        }
        if self.zone.is_some() {
            p.zone = text(&self.zone);
        }
        if !self.location.is_empty() {
            p.locations = parse_locations(&self.location)?;
        }
        if let Some(s) = &self.progress {
            let pct = s
                .trim()
                .trim_end_matches('%')
                .parse::<i64>()
                .ok()
                .filter(|v| (0..=100).contains(v))
                .with_context(|| {
                    format!("invalid progress: expected a percentage 0..100, got {s:?}")
                })?;
            p.physical_progress_pct = Some(pct);
        }
        if let Some(s) = &self.state {
            p.state_override = match s.trim() {
                "auto" => None,
                other => Some(field(other.parse::<ProceduralState>())?),
            };
        }
        if let Some(s) = &self.stated_state {
            p.stated_state = match s.trim() {
                "none" | "" => None,
                other => Some(field(other.parse::<ProceduralState>())?),
            };
        }
        if self.officer.is_some() {
            p.officer = text(&self.officer);
        }
        if self.notes.is_some() {
            p.notes = text(&self.notes);
        }
        Ok(())
    }
}

fn parse_locations(items: &[String]) -> Result<std::collections::BTreeMap<String, Location>> {
    let mut out = std::collections::BTreeMap::new();
    for item in items {
        let (code, pct) = item.split_once(':').unwrap_or((item.as_str(), "100"));
        let share = parse_eur_cents("--location share", pct)
            .ok()
            .filter(|v| (0..=10_000).contains(v))
            .with_context(|| {
                format!("invalid location {item:?}: share must be a percentage 0..100")
            })?;
        let comune = match code.trim() {
            "national" | "000" | "nazionale" => None,
            c => Some(
                comune_any(
                    c,
                    &format!("invalid location {item:?} (expected ISTAT:PERCENT or `national`)"),
                )?
                .to_string(),
            ),
        };
        let key = comune.clone().unwrap_or_else(|| "000".into());
        out.insert(
            key,
            Location {
                comune,
                share_bp: share,
            },
        );
    }
    Ok(out)
}

/// Finds the project of `doc` named by a CUP (looked up in the query
/// store) or an id (checked when the document is edited or shown).
pub(super) fn locate(
    replica: &mut Replica,
    doc: &DocId,
    cup: &Option<String>,
    id: &Option<String>,
) -> Result<String> {
    if let Some(id) = id {
        let known = replica.query(|tx| crate::views::projects_with_id(tx, doc, id))?;
        if !known {
            return Err(portfolio::PortfolioError::NoSuchId(id.clone()).into());
        }
        return Ok(id.clone());
    }
    let Some(cup) = cup else {
        bail!("name the project: give its CUP or --id");
    };
    let cup: Cup = cup.parse().context("CUP")?;
    Ok(replica.query(|tx| crate::views::find_one(tx, doc, &cup))?)
}

/// Loads, changes and saves one project of this comune in one signed change.
fn update(
    replica: &mut Replica,
    cup: &Option<String>,
    id: &Option<String>,
    change: impl FnOnce(&mut Project) -> Result<()>,
) -> Result<(Project, bool)> {
    let own = replica.own_doc();
    let pid = locate(replica, &own, cup, id)?;
    let mut outcome: Option<Result<Project>> = None;
    let edited = replica.edit(&own, now_ms(), |doc| {
        let result = (|| {
            let old = portfolio::get(doc, &pid)?;
            let mut new = old.clone();
            change(&mut new)?;
            portfolio::save(doc, Some(&old), &new)?;
            Ok(new)
        })();
        let failed = result.is_err();
        outcome = Some(result);
        if failed {
            return Err(crate::replica::ReplicaError::Edit("refused".into()));
        }
        Ok(())
    });
    match (outcome, edited) {
        (Some(Err(e)), _) => Err(e),
        (Some(Ok(p)), Ok((_, h))) => Ok((p, h.is_some())),
        (_, Err(e)) => Err(e.into()),
        (None, _) => bail!("the edit did not run"),
    }
}

pub fn run(dir: &Path, cmd: ProjectCmd) -> Result<()> {
    let mut replica = Replica::open(dir)?;
    let own = replica.own_doc();
    match cmd {
        ProjectCmd::Add { cup, title, fields } => {
            let cup = cup.as_deref().map(super::codes::parse_cup).transpose()?;
            let title = portfolio::validate_title(&title)?;
            let mut p = Project {
                id: portfolio::new_project_id()?,
                cup: cup.as_ref().map(|c| c.as_str().to_owned()),
                title,
                created_ms: now_ms(),
                ..Project::default()
            };
            fields.apply(&mut p)?;
            // The query store answers at once; reading every project of
            // the document for its CUP took ~150 ms at 20,000 projects.
            if let Some(c) = &cup {
                let existing =
                    replica.query(|tx| crate::views::find_by_cup(tx, &own, c.as_str()))?;
                if let Some(existing) = existing.first() {
                    eprintln!(
                        "warning: CUP {c} is already used by project {existing}; adding another"
                    );
                }
            }
            replica.edit(&own, now_ms(), |doc| Ok(portfolio::save(doc, None, &p)?))?;
            let label = p.cup.as_deref().unwrap_or("without CUP");
            println!(
                "added project {label} (id {}) to comune {}",
                p.id,
                comuni::label(replica.settings.comune.as_str())
            );
        }
        ProjectCmd::Set {
            cup,
            id,
            title,
            fields,
        } => {
            let title = title.map(|t| portfolio::validate_title(&t)).transpose()?;
            let (p, changed) = update(&mut replica, &cup, &id, |p| {
                if let Some(t) = title {
                    p.title = t;
                }
                fields.apply(p)
            })?;
            let label = p.cup.as_deref().unwrap_or(&p.id);
            println!(
                "{} project {label}",
                if changed { "updated" } else { "unchanged:" }
            );
        }
        ProjectCmd::Archive { cup, id, undo } => {
            let (p, _) = update(&mut replica, &cup, &id, |p| {
                p.archived = !undo;
                Ok(())
            })?;
            println!(
                "project {} {}",
                p.cup.as_deref().unwrap_or(&p.id),
                if undo { "restored" } else { "archived" }
            );
        }
        ProjectCmd::Funding(cmd) => funding(&mut replica, cmd)?,
        ProjectCmd::Milestone(cmd) => milestone(&mut replica, cmd)?,
        ProjectCmd::Phase(PhaseCmd::Set {
            cup,
            id,
            phase,
            planned_start,
            planned_end,
            actual_start,
            actual_end,
        }) => {
            let phase: Phase = field(phase.parse())?;
            let date = |name: &str, v: &Option<String>| -> Result<Option<Date>> {
                v.as_deref()
                    .map(|s| field(Date::parse_any(name, s)))
                    .transpose()
            };
            let dates = [
                date("--planned-start", &planned_start)?,
                date("--planned-end", &planned_end)?,
                date("--actual-start", &actual_start)?,
                date("--actual-end", &actual_end)?,
            ];
            if dates.iter().all(Option::is_none) {
                bail!("nothing to set: give at least one of --planned-start, --planned-end, --actual-start, --actual-end");
            }
            let (p, _) = update(&mut replica, &cup, &id, |p| {
                let entry = p.phases.entry(phase).or_default();
                for (slot, value) in [
                    (&mut entry.planned_start, dates[0]),
                    (&mut entry.planned_end, dates[1]),
                    (&mut entry.actual_start, dates[2]),
                    (&mut entry.actual_end, dates[3]),
                ] {
                    if value.is_some() {
                        *slot = value;
                    }
                }
                Ok(())
            })?;
            println!(
                "phase {phase} set; procedural state: {}",
                p.procedural_state()
            );
        }
        ProjectCmd::List {
            all,
            archived,
            format,
        } => {
            let only = (!all).then_some(&own);
            let listed = replica.query(|tx| crate::views::projects(tx, only, archived))?;
            super::project_list::print_projects(listed, format)?;
        }
        ProjectCmd::Show {
            cup,
            id,
            comune,
            format,
        } => {
            let doc_id = match comune {
                Some(c) => DocId::Comune(comune_any(&c, "--comune")?),
                None => own,
            };
            let pid = locate(&mut replica, &doc_id, &cup, &id)?;
            let doc = replica.materialise(&doc_id)?;
            show(&doc, &doc_id, &pid, format)?;
        }
    }
    Ok(())
}

fn funding(replica: &mut Replica, cmd: FundingCmd) -> Result<()> {
    match cmd {
        FundingCmd::Add {
            cup,
            id,
            source,
            amount_eur,
            programme,
        } => {
            let source: FundingSource = field(source.parse())?;
            let amount_cents = parse_eur_cents("--amount-eur", &amount_eur)?;
            let line_id = portfolio::new_project_id()?;
            let line = FundingLine {
                source,
                programme,
                amount_cents,
            };
            let lid = line_id.clone();
            update(replica, &cup, &id, move |p| {
                p.funding.insert(lid, line);
                Ok(())
            })?;
            println!(
                "added funding line {line_id}: {source} {}",
                format_eur(amount_cents)
            );
        }
        FundingCmd::Remove { cup, id, line } => {
            update(replica, &cup, &id, |p| {
                p.funding
                    .remove(&line)
                    .map(|_| ())
                    .with_context(|| format!("--line: no funding line {line:?} in this project"))
            })?;
            println!("removed funding line {line}");
        }
    }
    Ok(())
}

fn milestone(replica: &mut Replica, cmd: MilestoneCmd) -> Result<()> {
    match cmd {
        MilestoneCmd::Add {
            cup,
            id,
            code,
            description,
            due,
            unit,
            baseline,
            target,
        } => {
            let due = field(parse_due("--due", &due))?;
            if code.trim().is_empty() {
                bail!("invalid --code: must not be empty");
            }
            let mid = portfolio::new_project_id()?;
            let m = Milestone {
                code: code.trim().to_owned(),
                description,
                unit,
                baseline,
                target,
                due,
                achieved_date: None,
                achieved_value: None,
            };
            let key = mid.clone();
            update(replica, &cup, &id, move |p| {
                p.milestones.insert(key, m);
                Ok(())
            })?;
            println!("added milestone {mid} ({code}, due {due})");
        }
        MilestoneCmd::Done {
            cup,
            id,
            milestone,
            date,
            value,
        } => {
            let date = field(Date::parse_any("--date", &date))?;
            update(replica, &cup, &id, |p| {
                let m = p.milestones.get_mut(&milestone).with_context(|| {
                    format!("--milestone: no milestone {milestone:?} in this project")
                })?;
                m.achieved_date = Some(date);
                if value.is_some() {
                    m.achieved_value = value;
                }
                Ok(())
            })?;
            println!("milestone {milestone} achieved on {date}");
        }
    }
    Ok(())
}

/// A location's share in basis points as a percentage, e.g. `60 %`, `33.33 %`.
fn location_share(share_bp: i64) -> String {
    if share_bp % 100 == 0 {
        format!("{} %", share_bp / 100)
    } else {
        format!("{}.{:02} %", share_bp / 100, share_bp % 100)
    }
}

/// Top-level fields whose concurrent values `show` reports.
const CONFLICT_FIELDS: &[&str] = &[
    "title",
    "cup",
    "summary",
    "local_code",
    "implementing_body",
    "cost_cents",
    "financed_cents",
    "committed_cents",
    "paid_cents",
    "pnrr_measure",
    "zone",
    "physical_progress_pct",
    "state_override",
    "stated_state",
    "officer",
    "notes",
    "archived",
];

fn show(doc: &AutoCommit, doc_id: &DocId, id: &str, format: Format) -> Result<()> {
    let project = portfolio::get(doc, id)?;
    let mut conflicts = serde_json::Map::new();
    for field in CONFLICT_FIELDS {
        let values = portfolio::field_conflicts(doc, id, field)?;
        if values.len() > 1 {
            conflicts.insert(
                (*field).into(),
                json!({"winner": values[0], "others": values[1..]}),
            );
        }
    }
    let comune = super::project_list::comune_of(doc_id);
    let (state, basis) = project.state_and_basis();
    if format == Format::Json {
        let mut out = serde_json::to_value(&project)?;
        out["id"] = json!(project.id);
        out["comune"] = json!(comune);
        out["comune_name"] = json!(comuni::name(&comune));
        out["procedural_state"] = json!(state.code());
        out["procedural_state_basis"] = json!(basis.code());
        out["conflicts"] = json!(conflicts);
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let eur = |c: Option<i64>| c.map(format_eur).unwrap_or_else(|| "-".into());
    println!(
        "project {} (id {})",
        project.cup.as_deref().unwrap_or("-"),
        project.id
    );
    println!("  comune:     {}", comuni::label(&comune));
    for l in project.locations.values() {
        let place = l.comune.as_deref().map_or("national".into(), comuni::label);
        println!("  location:   {place} {}", location_share(l.share_bp));
    }
    println!("  title:      {}", project.title);
    println!(
        "  state:      {state} ({})",
        match basis {
            StateBasis::Override => "set by hand",
            StateBasis::Stated => "stated by the source",
            StateBasis::Derived => "derived from the phase dates",
        }
    );
    println!("  cost:       {}", eur(project.cost_cents));
    println!(
        "  financed:   {}  committed: {}  paid: {}",
        eur(project.financed_cents),
        eur(project.committed_cents),
        eur(project.paid_cents)
    );
    if let Some(m) = &project.pnrr_measure {
        println!("  PNRR:       {m}");
    }
    for (lid, f) in &project.funding {
        println!(
            "  funding {lid}: {} {}",
            f.source,
            format_eur(f.amount_cents)
        );
    }
    for (mid, m) in &project.milestones {
        let done = m
            .achieved_date
            .map(|d| format!("achieved {d}"))
            .unwrap_or_else(|| "open".into());
        println!("  milestone {mid}: {} due {} ({done})", m.code, m.due);
    }
    for (phase, d) in &project.phases {
        println!(
            "  phase {phase}: planned {:?}..{:?} actual {:?}..{:?}",
            d.planned_start.map(|x| x.to_string()),
            d.planned_end.map(|x| x.to_string()),
            d.actual_start.map(|x| x.to_string()),
            d.actual_end.map(|x| x.to_string())
        );
    }
    for (column, value) in &project.source_fields {
        println!("  source {column}: {value}");
    }
    for (field, c) in &conflicts {
        println!(
            "  conflict on {field}: {} won over {}",
            c["winner"], c["others"]
        );
    }
    Ok(())
}
