//! Editing the portfolio: add a project, set its fields, archive it, its
//! funding lines, milestones and phase dates, and read one project with the
//! concurrent values of its fields. `accordo project ...` and the web forms
//! both call these.

use super::{Author, OpError};
use crate::clock::now_ms;
use crate::replica::{Replica, ReplicaError};
use accordo_domain::comuni;
use accordo_domain::model::{
    parse_due, parse_sdg, Date, Dimension, FieldError, FundingLine, FundingSource, Location,
    Milestone, Phase, PnrrMeasure, ProceduralState, Project,
};
use accordo_domain::money::parse_eur_cents;
use accordo_domain::portfolio;
use accordo_protocol::codes::{Cup, Istat};
use accordo_protocol::doc::DocId;
use automerge::AutoCommit;
use clap::Args;
use std::collections::BTreeMap;

/// Optional fields shared by `add` and `set` (flags on the command line,
/// inputs of the project form). `None` / empty: leave the field as it is.
#[derive(Args, Default, Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Fields {
    #[arg(long)]
    pub summary: Option<String>,
    #[arg(long)]
    pub local_code: Option<String>,
    /// Soggetto attuatore.
    #[arg(long)]
    pub implementing_body: Option<String>,
    #[arg(long)]
    pub cost_eur: Option<String>,
    #[arg(long)]
    pub financed_eur: Option<String>,
    #[arg(long)]
    pub committed_eur: Option<String>,
    #[arg(long)]
    pub paid_eur: Option<String>,
    /// PNRR measure, e.g. M5C2I2.2.
    #[arg(long)]
    pub pnrr_measure: Option<String>,
    /// SDGs 1..17, comma-separated (replaces the set).
    #[arg(long, value_delimiter = ',')]
    pub sdg: Vec<String>,
    /// governance, environmental, social, economic; comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub dimension: Vec<String>,
    /// PSM axis/objective/action codes, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub psm: Vec<String>,
    /// Zona omogenea code.
    #[arg(long)]
    pub zone: Option<String>,
    /// ISTAT:PERCENT (e.g. 092009:60) or `national`; repeatable (replaces the set).
    #[arg(long)]
    pub location: Vec<String>,
    /// Physical progress, percent 0..100.
    #[arg(long)]
    pub progress: Option<String>,
    /// Procedural state override, or `auto` to derive it from the phases.
    #[arg(long)]
    pub state: Option<String>,
    /// The state the source publishes (e.g. "In esecuzione"), used when no
    /// override is set; `none` clears it so the state is derived.
    #[arg(long)]
    pub stated_state: Option<String>,
    #[arg(long)]
    pub officer: Option<String>,
    #[arg(long)]
    pub notes: Option<String>,
}

fn field<T>(key: &'static str, r: Result<T, FieldError>) -> Result<T, OpError> {
    r.map_err(|e| OpError::field(key, format!("invalid {e}")))
}

fn money(
    key: &'static str,
    flag: &'static str,
    v: &Option<String>,
) -> Result<Option<i64>, OpError> {
    v.as_deref()
        .map(|s| parse_eur_cents(flag, s))
        .transpose()
        .map_err(|e| OpError::field(key, e.to_string()))
}

/// Trimmed text; empty means "no value".
fn text(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

impl Fields {
    /// Applies the given fields to `p`, validating each; warnings (a comune
    /// no longer in force) go to `warnings`.
    pub fn apply(&self, p: &mut Project, warnings: &mut Vec<String>) -> Result<(), OpError> {
        if self.summary.is_some() {
            p.summary = text(&self.summary);
        }
        if self.local_code.is_some() {
            p.local_code = text(&self.local_code);
        }
        if self.implementing_body.is_some() {
            p.implementing_body = text(&self.implementing_body);
        }
        for (target, value, key, flag) in [
            (&mut p.cost_cents, &self.cost_eur, "cost_eur", "--cost-eur"),
            (
                &mut p.financed_cents,
                &self.financed_eur,
                "financed_eur",
                "--financed-eur",
            ),
            (
                &mut p.committed_cents,
                &self.committed_eur,
                "committed_eur",
                "--committed-eur",
            ),
            (&mut p.paid_cents, &self.paid_eur, "paid_eur", "--paid-eur"),
        ] {
            if let Some(c) = money(key, flag, value)? {
                *target = Some(c);
            }
        }
        if let Some(m) = &self.pnrr_measure {
            p.pnrr_measure = Some(field("pnrr_measure", m.parse::<PnrrMeasure>())?);
        }
        if !self.sdg.is_empty() {
            p.sdgs = self
                .sdg
                .iter()
                .map(|s| field("sdg", parse_sdg(s)))
                .collect::<Result<_, _>>()?;
        }
        if !self.dimension.is_empty() {
            p.dimensions = self
                .dimension
                .iter()
                .map(|s| field("dimension", s.parse::<Dimension>()))
                .collect::<Result<_, _>>()?;
        }
        if !self.psm.is_empty() {
            p.psm_links = self.psm.iter().map(|s| s.trim().to_owned()).collect();
        }
        if self.zone.is_some() {
            p.zone = text(&self.zone);
        }
        if !self.location.is_empty() {
            p.locations = parse_locations(&self.location, warnings)?;
        }
        if let Some(s) = &self.progress {
            let pct = s
                .trim()
                .trim_end_matches('%')
                .parse::<i64>()
                .ok()
                .filter(|v| (0..=100).contains(v))
                .ok_or_else(|| {
                    OpError::field(
                        "progress",
                        format!("invalid progress: expected a percentage 0..100, got {s:?}"),
                    )
                })?;
            p.physical_progress_pct = Some(pct);
        }
        if let Some(s) = &self.state {
            p.state_override = match s.trim() {
                "auto" => None,
                other => Some(field("state", other.parse::<ProceduralState>())?),
            };
        }
        if let Some(s) = &self.stated_state {
            p.stated_state = match s.trim() {
                "none" | "" => None,
                other => Some(field("stated_state", other.parse::<ProceduralState>())?),
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

/// A comune typed by a person, in force or of past years: a suppressed one
/// is accepted with a warning.
pub fn comune_any(
    typed: &str,
    key: &'static str,
    flag: &str,
    warnings: &mut Vec<String>,
) -> Result<Istat, OpError> {
    let known = comuni::parse(typed).map_err(|e| OpError::field(key, format!("{flag}: {e}")))?;
    if let Some(gone) = known.suppressed() {
        warnings.push(format!("{flag}: {}", gone.describe()));
    }
    Ok(known.istat())
}

/// A CUP typed by a person; one off the usual pattern is accepted with a
/// warning.
pub fn parse_cup(s: &str, warnings: &mut Vec<String>) -> Result<Cup, OpError> {
    let cup: Cup = s
        .parse()
        .map_err(|e| OpError::field("cup", format!("--cup: {e}")))?;
    if !cup.has_usual_pattern() {
        warnings.push(format!(
            "CUP {cup} does not match the usual pattern LNNLNNNNNNNNNNN"
        ));
    }
    Ok(cup)
}

fn parse_locations(
    items: &[String],
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, Location>, OpError> {
    let mut out = BTreeMap::new();
    for item in items {
        let (code, pct) = item.split_once(':').unwrap_or((item.as_str(), "100"));
        let share = parse_eur_cents("--location share", pct)
            .ok()
            .filter(|v| (0..=10_000).contains(v))
            .ok_or_else(|| {
                OpError::field(
                    "location",
                    format!("invalid location {item:?}: share must be a percentage 0..100"),
                )
            })?;
        let comune = match code.trim() {
            "national" | "000" | "nazionale" => None,
            c => Some(
                comune_any(
                    c,
                    "location",
                    &format!("invalid location {item:?} (expected ISTAT:PERCENT or `national`)"),
                    warnings,
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

/// Which project: by CUP, or by id.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub cup: Option<String>,
    pub id: Option<String>,
}

/// Finds the project of `doc` named by a CUP (looked up in the query
/// store) or an id.
pub fn locate(replica: &mut Replica, doc: &DocId, target: &Target) -> Result<String, OpError> {
    if let Some(id) = &target.id {
        let known = replica.query(|tx| crate::views::projects_with_id(tx, doc, id))?;
        if !known {
            return Err(portfolio::PortfolioError::NoSuchId(id.clone()).into());
        }
        return Ok(id.clone());
    }
    let Some(cup) = &target.cup else {
        return Err(OpError::Refused(
            "name the project: give its CUP or --id".into(),
        ));
    };
    let cup: Cup = cup
        .parse()
        .map_err(|e| OpError::field("cup", format!("CUP: {e}")))?;
    Ok(replica.query(|tx| crate::views::find_one(tx, doc, &cup))?)
}

/// Loads, changes and saves one project of this comune in one signed
/// change. Returns the project as saved and whether anything changed.
pub fn update(
    replica: &mut Replica,
    target: &Target,
    author: &Author,
    change: impl FnOnce(&mut Project) -> Result<(), OpError>,
) -> Result<(Project, bool), OpError> {
    let own = replica.own_doc();
    let pid = locate(replica, &own, target)?;
    let mut outcome: Option<Result<Project, OpError>> = None;
    let edited = replica.edit_as(&own, now_ms(), author.message(), |doc| {
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
            return Err(ReplicaError::Edit("refused".into()));
        }
        Ok(())
    });
    match (outcome, edited) {
        (Some(Err(e)), _) => Err(e),
        (Some(Ok(p)), Ok((_, h))) => Ok((p, h.is_some())),
        (_, Err(e)) => Err(e.into()),
        (None, _) => Err(OpError::Refused("the edit did not run".into())),
    }
}

/// What adding a project did.
pub struct Added {
    pub project: Project,
    pub warnings: Vec<String>,
}

/// Adds a project to this comune's portfolio (offline; it reaches the relay
/// on the next sync).
pub fn add(
    replica: &mut Replica,
    cup: Option<&str>,
    title: &str,
    fields: &Fields,
    author: &Author,
) -> Result<Added, OpError> {
    let mut warnings = Vec::new();
    let cup = cup
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| parse_cup(c, &mut warnings))
        .transpose()?;
    let title =
        portfolio::validate_title(title).map_err(|e| OpError::field("title", e.to_string()))?;
    let mut p = Project {
        id: portfolio::new_project_id()?,
        cup: cup.as_ref().map(|c| c.as_str().to_owned()),
        title,
        created_ms: now_ms(),
        ..Project::default()
    };
    fields.apply(&mut p, &mut warnings)?;
    let own = replica.own_doc();
    if let Some(c) = &cup {
        let existing = replica.query(|tx| crate::views::find_by_cup(tx, &own, c.as_str()))?;
        if let Some(existing) = existing.first() {
            warnings.push(format!(
                "CUP {c} is already used by project {existing}; adding another"
            ));
        }
    }
    replica.edit_as(&own, now_ms(), author.message(), |doc| {
        Ok(portfolio::save(doc, None, &p)?)
    })?;
    Ok(Added {
        project: p,
        warnings,
    })
}

/// Sets the title and fields of a project. Returns the project as saved,
/// whether anything changed, and warnings.
pub fn set(
    replica: &mut Replica,
    target: &Target,
    title: Option<&str>,
    fields: &Fields,
    author: &Author,
) -> Result<(Project, bool, Vec<String>), OpError> {
    let title = title
        .map(portfolio::validate_title)
        .transpose()
        .map_err(|e| OpError::field("title", e.to_string()))?;
    let mut warnings = Vec::new();
    let (p, changed) = update(replica, target, author, |p| {
        if let Some(t) = title {
            p.title = t;
        }
        fields.apply(p, &mut warnings)
    })?;
    Ok((p, changed, warnings))
}

/// Archives a project (or brings it back with `undo`).
pub fn archive(
    replica: &mut Replica,
    target: &Target,
    undo: bool,
    author: &Author,
) -> Result<Project, OpError> {
    Ok(update(replica, target, author, |p| {
        p.archived = !undo;
        Ok(())
    })?
    .0)
}

/// Publishes a project on the public portal and in open data (or takes it
/// back to a draft with `published: false`). Returns the project as saved
/// and whether anything changed.
pub fn publish(
    replica: &mut Replica,
    target: &Target,
    published: bool,
    author: &Author,
) -> Result<(Project, bool), OpError> {
    update(replica, target, author, |p| {
        p.published = published;
        Ok(())
    })
}

/// Adds a funding line; returns its id and the line.
pub fn funding_add(
    replica: &mut Replica,
    target: &Target,
    source: &str,
    amount_eur: &str,
    programme: Option<String>,
    author: &Author,
) -> Result<(String, FundingLine), OpError> {
    let source: FundingSource = field("source", source.parse())?;
    let amount_cents = parse_eur_cents("--amount-eur", amount_eur)
        .map_err(|e| OpError::field("amount_eur", e.to_string()))?;
    let line_id = portfolio::new_project_id()?;
    let line = FundingLine {
        source,
        programme: text(&programme),
        amount_cents,
    };
    let (lid, l) = (line_id.clone(), line.clone());
    update(replica, target, author, move |p| {
        p.funding.insert(lid, l);
        Ok(())
    })?;
    Ok((line_id, line))
}

/// Removes a funding line by its id.
pub fn funding_remove(
    replica: &mut Replica,
    target: &Target,
    line: &str,
    author: &Author,
) -> Result<(), OpError> {
    update(replica, target, author, |p| {
        p.funding.remove(line).map(|_| ()).ok_or_else(|| {
            OpError::field(
                "line",
                format!("--line: no funding line {line:?} in this project"),
            )
        })
    })?;
    Ok(())
}

/// A milestone as typed.
pub struct NewMilestone {
    pub code: String,
    pub description: String,
    pub due: String,
    pub unit: Option<String>,
    pub baseline: Option<String>,
    pub target: Option<String>,
}

/// Adds a milestone or target; returns its id and the milestone.
pub fn milestone_add(
    replica: &mut Replica,
    target: &Target,
    new: NewMilestone,
    author: &Author,
) -> Result<(String, Milestone), OpError> {
    let due = field("due", parse_due("--due", &new.due))?;
    if new.code.trim().is_empty() {
        return Err(OpError::field("code", "invalid --code: must not be empty"));
    }
    let mid = portfolio::new_project_id()?;
    let m = Milestone {
        code: new.code.trim().to_owned(),
        description: new.description,
        unit: text(&new.unit),
        baseline: text(&new.baseline),
        target: text(&new.target),
        due,
        achieved_date: None,
        achieved_value: None,
    };
    let (key, saved) = (mid.clone(), m.clone());
    update(replica, target, author, move |p| {
        p.milestones.insert(key, saved);
        Ok(())
    })?;
    Ok((mid, m))
}

/// Records a milestone as achieved on `date`.
pub fn milestone_done(
    replica: &mut Replica,
    target: &Target,
    milestone: &str,
    date: &str,
    value: Option<String>,
    author: &Author,
) -> Result<Date, OpError> {
    let date = field("date", Date::parse_any("--date", date))?;
    update(replica, target, author, |p| {
        let m = p.milestones.get_mut(milestone).ok_or_else(|| {
            OpError::field(
                "milestone",
                format!("--milestone: no milestone {milestone:?} in this project"),
            )
        })?;
        m.achieved_date = Some(date);
        if value.is_some() {
            m.achieved_value = value;
        }
        Ok(())
    })?;
    Ok(date)
}

/// Dates of a phase as typed; `None` leaves a date as it is.
#[derive(Default)]
pub struct PhaseDates {
    pub planned_start: Option<String>,
    pub planned_end: Option<String>,
    pub actual_start: Option<String>,
    pub actual_end: Option<String>,
}

/// Sets dates of a procedural phase; returns the phase and the project.
pub fn phase_set(
    replica: &mut Replica,
    target: &Target,
    phase: &str,
    typed: &PhaseDates,
    author: &Author,
) -> Result<(Phase, Project), OpError> {
    let phase: Phase = field("phase", phase.parse())?;
    let date =
        |key: &'static str, name: &str, v: &Option<String>| -> Result<Option<Date>, OpError> {
            text(v)
                .map(|s| field(key, Date::parse_any(name, &s)))
                .transpose()
        };
    let dates = [
        date("planned_start", "--planned-start", &typed.planned_start)?,
        date("planned_end", "--planned-end", &typed.planned_end)?,
        date("actual_start", "--actual-start", &typed.actual_start)?,
        date("actual_end", "--actual-end", &typed.actual_end)?,
    ];
    if dates.iter().all(Option::is_none) {
        return Err(OpError::Refused(
            "nothing to set: give at least one of --planned-start, --planned-end, --actual-start, --actual-end".into(),
        ));
    }
    let (p, _) = update(replica, target, author, |p| {
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
    Ok((phase, p))
}

/// Settles a concurrent edit of `field` by choosing one of its values (as
/// [`read`] lists them): one signed change that supersedes them all.
pub fn choose(
    replica: &mut Replica,
    target: &Target,
    field: &str,
    value: &str,
    author: &Author,
) -> Result<(), OpError> {
    let Some(field) = CONFLICT_FIELDS.iter().copied().find(|f| *f == field) else {
        return Err(OpError::field(
            "field",
            format!(
                "--field: {field:?} is not a field with concurrent values ({})",
                CONFLICT_FIELDS.join(", ")
            ),
        ));
    };
    let own = replica.own_doc();
    let pid = locate(replica, &own, target)?;
    let (resolved, _) = replica.edit_as(&own, now_ms(), author.message(), |doc| {
        Ok(portfolio::resolve_conflict(doc, &pid, field, value)?)
    })?;
    if !resolved {
        return Err(OpError::field(
            "value",
            format!("--value: {value:?} is not one of the concurrent values of {field}"),
        ));
    }
    Ok(())
}

/// Top-level fields whose concurrent values are reported.
pub const CONFLICT_FIELDS: &[&str] = &[
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

/// A concurrent edit of one field: the value shown and the others.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Conflict {
    pub field: &'static str,
    pub winner: String,
    pub others: Vec<String>,
}

/// One project read from its document, with its fields' conflicts.
pub fn read(doc: &AutoCommit, id: &str) -> Result<(Project, Vec<Conflict>), OpError> {
    let project = portfolio::get(doc, id)?;
    let mut conflicts = Vec::new();
    for field in CONFLICT_FIELDS {
        let values = portfolio::field_conflicts(doc, id, field)?;
        if values.len() > 1 {
            conflicts.push(Conflict {
                field,
                winner: values[0].clone(),
                others: values[1..].to_vec(),
            });
        }
    }
    Ok((project, conflicts))
}
