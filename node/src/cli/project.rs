//! `accordo project ...`: the portfolio from the command line. Every field of
//! the domain model is reachable; every refused value names its field and the
//! form expected. Edits are local (offline) and reach the relay on `sync`.

use super::codes::comune_any;
use crate::control::Printer;
use crate::ops::project::{self, Fields, Target};
use crate::ops::publication::{self, Publication};
use crate::ops::Author;
use crate::output_format::Format;
use crate::replica::Replica;
use accordo_domain::comuni;
use accordo_domain::model::StateBasis;
use accordo_domain::money::format_eur;
use accordo_domain::publication::Decision;
use accordo_protocol::codes::Istat;
use accordo_protocol::doc::DocId;
use anyhow::Result;
use automerge::AutoCommit;
use clap::Subcommand;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;

#[derive(Subcommand, Clone, Debug, Serialize, Deserialize)]
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
    /// Publish a project on the public portal and in open data (`run --public`).
    /// On a metro node, `--comune ISTAT` publishes a comune's project by the
    /// metropolitan office's decision, whatever the comune's own flag.
    Publish {
        cup: Option<String>,
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        comune: Option<String>,
    },
    /// Take a project back to a draft: no longer public. On a metro node,
    /// `--comune ISTAT` keeps a comune's project off the portal by the
    /// metropolitan office's decision.
    Unpublish {
        cup: Option<String>,
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        comune: Option<String>,
    },
    /// Where a project stands for the portal: the comune's own flag, the
    /// metropolitan office's decision and whether it is public. On a metro
    /// node `--decision published|draft|comune` records the office's
    /// decision (`comune`: the comune's own flag decides again).
    Publication {
        cup: Option<String>,
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        comune: Option<String>,
        #[arg(long)]
        decision: Option<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Settle a concurrent edit: keep one of the values `show` lists.
    Choose {
        cup: Option<String>,
        #[arg(long)]
        id: Option<String>,
        /// The field, e.g. title, paid_cents.
        #[arg(long)]
        field: String,
        /// The value to keep, as `show` prints it.
        #[arg(long)]
        value: String,
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

#[derive(Subcommand, Clone, Debug, Serialize, Deserialize)]
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

#[derive(Subcommand, Clone, Debug, Serialize, Deserialize)]
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

#[derive(Subcommand, Clone, Debug, Serialize, Deserialize)]
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

fn warn_all(out: &mut Printer, warnings: &[String]) {
    for w in warnings {
        out.err(format!("warning: {w}"));
    }
}

/// `project publish` / `project unpublish`.
fn publication(
    out: &mut Printer,
    replica: &mut Replica,
    target: &Target,
    publish: bool,
    me: &Author,
) -> Result<()> {
    let (p, changed) = project::publish(replica, target, publish, me)?;
    let label = p.cup.as_deref().unwrap_or(&p.id);
    let state = if publish { "published" } else { "a draft" };
    if changed {
        out.out(format!("project {label} is now {state}"));
    } else {
        out.out(format!("unchanged: project {label} was already {state}"));
    }
    Ok(())
}

/// The comune named by `--comune` when it is another comune's project (a
/// metro decision); `None` for this comune's own project.
fn metro_target(replica: &Replica, comune: Option<String>) -> Result<Option<Istat>> {
    let Some(c) = comune else { return Ok(None) };
    let c = comune_any(&c, "--comune")?;
    if replica.own_doc() == DocId::Comune(c.clone()) {
        return Ok(None);
    }
    Ok(Some(c))
}

/// `project publish|unpublish --comune` and `project publication --decision`.
fn decide(
    out: &mut Printer,
    replica: &mut Replica,
    comune: &Istat,
    target: &Target,
    decision: Decision,
    me: &Author,
) -> Result<()> {
    let (id, changed) = publication::decide(replica, comune, target, decision, me)?;
    let label = target.cup.as_deref().unwrap_or(&id);
    let what = match decision {
        Decision::Published => "published by the metropolitan office".to_owned(),
        Decision::Draft => "kept a draft by the metropolitan office".to_owned(),
        Decision::Comune => format!("left to comune {}'s own choice", comune.as_str()),
    };
    if changed {
        out.out(format!(
            "project {label} of comune {} is now {what}",
            comune.as_str()
        ));
    } else {
        out.out(format!(
            "unchanged: project {label} of comune {} was already {what}",
            comune.as_str()
        ));
    }
    Ok(())
}

fn print_publication(comune: &Istat, id: &str, p: &Publication, format: Format) -> Result<()> {
    if format == Format::Json {
        let out = json!({
            "comune": comune.as_str(),
            "id": id,
            "comune_published": p.own,
            "metro_decision": p.decision.code(),
            "public": p.public,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let yes = |b: bool| if b { "yes" } else { "no" };
    println!("project {id} of comune {}", comuni::label(comune.as_str()));
    println!("  published by the comune:        {}", yes(p.own));
    println!("  metropolitan office's decision: {}", p.decision);
    println!("  public:                         {}", yes(p.public));
    Ok(())
}

impl ProjectCmd {
    /// Whether this is an edit `accordo run` can carry out for the command
    /// line (`cli/served`); reads stay here.
    pub fn is_edit(&self) -> bool {
        !matches!(
            self,
            ProjectCmd::List { .. } | ProjectCmd::Show { .. } | ProjectCmd::Publication { .. }
        )
    }
}

/// `accordo project ...`: an edit is handed to the `accordo run` serving
/// `dir` when one does (unless `direct`), else done here.
pub fn run(dir: &Path, cmd: ProjectCmd, direct: bool) -> Result<ExitCode> {
    if !direct && cmd.is_edit() {
        if let Some(code) = super::served::forward(dir, super::served::Served::Project(cmd.clone()))
        {
            return Ok(code);
        }
    }
    let mut replica = Replica::open(dir)?;
    execute(&mut replica, cmd, &mut Printer::direct())?;
    Ok(ExitCode::SUCCESS)
}

/// Carries out `cmd` on `replica`, printing to `out`: the command line's
/// own path and `accordo run`'s (`cli/served`) are this one function.
pub fn execute(replica: &mut Replica, cmd: ProjectCmd, out: &mut Printer) -> Result<()> {
    let own = replica.own_doc();
    let me = Author::default();
    let target = |cup: Option<String>, id: Option<String>| Target { cup, id };
    match cmd {
        ProjectCmd::Add { cup, title, fields } => {
            let added = project::add(replica, cup.as_deref(), &title, &fields, &me)?;
            warn_all(out, &added.warnings);
            let p = added.project;
            let label = p.cup.as_deref().unwrap_or("without CUP");
            out.out(format!(
                "added project {label} (id {}) to comune {}",
                p.id,
                comuni::label(replica.settings.comune.as_str())
            ));
        }
        ProjectCmd::Set {
            cup,
            id,
            title,
            fields,
        } => {
            let (p, changed, warnings) =
                project::set(replica, &target(cup, id), title.as_deref(), &fields, &me)?;
            warn_all(out, &warnings);
            let label = p.cup.as_deref().unwrap_or(&p.id);
            out.out(format!(
                "{} project {label}",
                if changed { "updated" } else { "unchanged:" }
            ));
        }
        ProjectCmd::Archive { cup, id, undo } => {
            let p = project::archive(replica, &target(cup, id), undo, &me)?;
            out.out(format!(
                "project {} {}",
                p.cup.as_deref().unwrap_or(&p.id),
                if undo { "restored" } else { "archived" }
            ));
        }
        ProjectCmd::Publish { cup, id, comune } => match metro_target(replica, comune)? {
            Some(c) => decide(out, replica, &c, &target(cup, id), Decision::Published, &me)?,
            None => publication(out, replica, &target(cup, id), true, &me)?,
        },
        ProjectCmd::Unpublish { cup, id, comune } => match metro_target(replica, comune)? {
            Some(c) => decide(out, replica, &c, &target(cup, id), Decision::Draft, &me)?,
            None => publication(out, replica, &target(cup, id), false, &me)?,
        },
        ProjectCmd::Publication {
            cup,
            id,
            comune,
            decision,
            format,
        } => {
            let c = match comune {
                Some(c) => comune_any(&c, "--comune")?,
                None => match own {
                    DocId::Comune(ref c) => c.clone(),
                    _ => anyhow::bail!("name the comune whose project this is: --comune ISTAT"),
                },
            };
            let t = target(cup, id);
            if let Some(d) = decision {
                let d: Decision = d
                    .parse()
                    .map_err(|e: String| anyhow::anyhow!("--decision: {e}"))?;
                decide(out, replica, &c, &t, d, &me)?;
            }
            let pid = project::locate(replica, &DocId::Comune(c.clone()), &t)?;
            let state = publication::read(replica, &c, &pid)?;
            print_publication(&c, &pid, &state, format)?;
        }
        ProjectCmd::Choose {
            cup,
            id,
            field,
            value,
        } => {
            project::choose(replica, &target(cup, id), &field, &value, &me)?;
            out.out(format!(
                "{field} set to {value:?}; the concurrent values are settled"
            ));
        }
        ProjectCmd::Funding(FundingCmd::Add {
            cup,
            id,
            source,
            amount_eur,
            programme,
        }) => {
            let (line_id, line) = project::funding_add(
                replica,
                &target(cup, id),
                &source,
                &amount_eur,
                programme,
                &me,
            )?;
            out.out(format!(
                "added funding line {line_id}: {} {}",
                line.source,
                format_eur(line.amount_cents)
            ));
        }
        ProjectCmd::Funding(FundingCmd::Remove { cup, id, line }) => {
            project::funding_remove(replica, &target(cup, id), &line, &me)?;
            out.out(format!("removed funding line {line}"));
        }
        ProjectCmd::Milestone(MilestoneCmd::Add {
            cup,
            id,
            code,
            description,
            due,
            unit,
            baseline,
            target: goal,
        }) => {
            let new = project::NewMilestone {
                code,
                description,
                due,
                unit,
                baseline,
                target: goal,
            };
            let (mid, m) = project::milestone_add(replica, &target(cup, id), new, &me)?;
            out.out(format!("added milestone {mid} ({}, due {})", m.code, m.due));
        }
        ProjectCmd::Milestone(MilestoneCmd::Done {
            cup,
            id,
            milestone,
            date,
            value,
        }) => {
            let date =
                project::milestone_done(replica, &target(cup, id), &milestone, &date, value, &me)?;
            out.out(format!("milestone {milestone} achieved on {date}"));
        }
        ProjectCmd::Phase(PhaseCmd::Set {
            cup,
            id,
            phase,
            planned_start,
            planned_end,
            actual_start,
            actual_end,
        }) => {
            let dates = project::PhaseDates {
                planned_start,
                planned_end,
                actual_start,
                actual_end,
            };
            let (phase, p) = project::phase_set(replica, &target(cup, id), &phase, &dates, &me)?;
            out.out(format!(
                "phase {phase} set; procedural state: {}",
                p.procedural_state()
            ));
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
            let pid = project::locate(replica, &doc_id, &target(cup, id))?;
            let public = match &doc_id {
                DocId::Comune(c) => Some(publication::read(replica, c, &pid)?),
                _ => None,
            };
            let doc = replica.materialise(&doc_id)?;
            show(&doc, &doc_id, &pid, public, format)?;
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

fn show(
    doc: &AutoCommit,
    doc_id: &DocId,
    id: &str,
    public: Option<Publication>,
    format: Format,
) -> Result<()> {
    let (project, found) = project::read(doc, id)?;
    let mut conflicts = serde_json::Map::new();
    for c in found {
        conflicts.insert(
            c.field.into(),
            json!({"winner": c.winner, "others": c.others}),
        );
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
        if let Some(p) = public {
            out["metro_decision"] = json!(p.decision.code());
            out["public"] = json!(p.public);
        }
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
    if let Some(p) = public {
        let by = match p.decision {
            Decision::Comune => "the comune's choice",
            _ => "the metropolitan office's decision",
        };
        let public = if p.public { "public" } else { "draft" };
        println!("  portal:     {public} ({by})");
    }
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
