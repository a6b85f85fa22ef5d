//! A project in the browser: the add-project form, the project's page with
//! its conflicts, and the forms that edit it (fields, funding lines,
//! milestones, phases). Every edit goes through [`crate::ops::project`], as
//! `accordo project` does.

use super::pages::{node_label, writes_projects};
use super::render::{self, Chrome};
use super::{Failure, Shared, Visitor};
use crate::clock::today;
use crate::ops::project::{self as ops, Conflict, Fields, NewMilestone, PhaseDates, Target};
use crate::ops::publication::{self, Publication};
use crate::ops::OpError;
use accordo_domain::comuni;
use accordo_domain::model::{Phase, Project};
use accordo_domain::publication::Decision;
use accordo_protocol::codes::Istat;
use accordo_protocol::doc::DocId;
use accordo_protocol::identity::Role;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

/// The form's values as typed, to show them again with the errors.
#[derive(Deserialize, Default, Clone)]
pub struct ProjectForm {
    #[serde(default)]
    cup: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    local_code: String,
    #[serde(default)]
    implementing_body: String,
    #[serde(default)]
    cost_eur: String,
    #[serde(default)]
    financed_eur: String,
    #[serde(default)]
    committed_eur: String,
    #[serde(default)]
    paid_eur: String,
    #[serde(default)]
    pnrr_measure: String,
    #[serde(default)]
    sdg: String,
    #[serde(default)]
    dimension: String,
    #[serde(default)]
    psm: String,
    #[serde(default)]
    zone: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    progress: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    officer: String,
    #[serde(default)]
    notes: String,
}

fn list_of(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl ProjectForm {
    /// The fields as the operations take them. A text field left empty
    /// clears the value; an empty amount leaves it unchanged (an amount
    /// is never cleared by accident).
    fn fields(&self) -> Fields {
        let text = |s: &str| Some(s.trim().to_owned());
        let amount = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        Fields {
            summary: text(&self.summary),
            local_code: text(&self.local_code),
            implementing_body: text(&self.implementing_body),
            cost_eur: amount(&self.cost_eur),
            financed_eur: amount(&self.financed_eur),
            committed_eur: amount(&self.committed_eur),
            paid_eur: amount(&self.paid_eur),
            pnrr_measure: amount(&self.pnrr_measure),
            sdg: list_of(&self.sdg),
            dimension: list_of(&self.dimension),
            psm: list_of(&self.psm),
            zone: text(&self.zone),
            location: list_of(&self.location),
            progress: amount(&self.progress),
            state: Some(match self.state.trim() {
                "" => "auto".to_owned(),
                s => s.to_owned(),
            }),
            stated_state: None,
            officer: text(&self.officer),
            notes: text(&self.notes),
        }
    }

    fn of(p: &Project) -> ProjectForm {
        let eur = |c: Option<i64>| c.map(accordo_domain::money::format_eur).unwrap_or_default();
        ProjectForm {
            cup: p.cup.clone().unwrap_or_default(),
            title: p.title.clone(),
            summary: p.summary.clone().unwrap_or_default(),
            local_code: p.local_code.clone().unwrap_or_default(),
            implementing_body: p.implementing_body.clone().unwrap_or_default(),
            cost_eur: eur(p.cost_cents),
            financed_eur: eur(p.financed_cents),
            committed_eur: eur(p.committed_cents),
            paid_eur: eur(p.paid_cents),
            pnrr_measure: p
                .pnrr_measure
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default(),
            sdg: p
                .sdgs
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            dimension: p
                .dimensions
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            psm: p.psm_links.iter().cloned().collect::<Vec<_>>().join(", "),
            zone: p.zone.clone().unwrap_or_default(),
            location: p
                .locations
                .values()
                .map(|l| {
                    let share = accordo_domain::money::format_eur(l.share_bp).replace(",00", "");
                    format!("{}:{share}", l.comune.as_deref().unwrap_or("national"))
                })
                .collect::<Vec<_>>()
                .join(", "),
            progress: p
                .physical_progress_pct
                .map(|v| v.to_string())
                .unwrap_or_default(),
            state: p
                .state_override
                .map(|s| s.code().to_owned())
                .unwrap_or_default(),
            officer: p.officer.clone().unwrap_or_default(),
            notes: p.notes.clone().unwrap_or_default(),
        }
    }
}

#[derive(Template)]
#[template(path = "project_new.html")]
struct NewPage {
    c: Chrome,
    form: ProjectForm,
    error: Option<(String, String)>,
    states: Vec<(&'static str, String)>,
}

fn states() -> Vec<(&'static str, String)> {
    accordo_domain::model::ProceduralState::ALL
        .iter()
        .map(|s| (s.code(), s.to_string()))
        .collect()
}

async fn new_page(
    app: &Shared,
    v: &Visitor,
    form: ProjectForm,
    error: Option<(String, String)>,
) -> Response {
    let label = match app.with_replica(|r| Ok(node_label(r))).await {
        Ok(s) => s,
        Err(e) => return render::failure(v.lang, &e),
    };
    let c = Chrome::new(v, label, v.lang.t("page.new_project"), "projects");
    let status_code = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let mut r = render::page(
        v.lang,
        &NewPage {
            c,
            form,
            error,
            states: states(),
        },
    );
    *r.status_mut() = status_code;
    r
}

fn forbidden(v: &Visitor) -> Response {
    render::error_page(v.lang, StatusCode::FORBIDDEN, v.lang.t("error.forbidden"))
}

pub async fn new_form(State(app): State<Shared>, Extension(v): Extension<Visitor>) -> Response {
    if !v.access.can_edit() {
        return forbidden(&v);
    }
    new_page(&app, &v, ProjectForm::default(), None).await
}

/// What to do with an operation's error.
enum Refusal {
    /// Show the form again with (field, message).
    Form((String, String)),
    /// Answer with this page (not found, or a failure of the node).
    Page(Response),
}

fn refusal(v: &Visitor, e: OpError) -> Refusal {
    if e.is_not_found() {
        return Refusal::Page(render::error_page(
            v.lang,
            StatusCode::NOT_FOUND,
            &e.to_string(),
        ));
    }
    if !e.is_input() {
        return Refusal::Page(render::failure(v.lang, &Failure(e.to_string())));
    }
    match &e {
        OpError::Field { field, message } => {
            Refusal::Form(((*field).to_owned(), v.lang.field_error(field, message)))
        }
        _ => Refusal::Form((String::new(), e.to_string())),
    }
}

pub async fn create(
    State(app): State<Shared>,
    Extension(v): Extension<Visitor>,
    Form(form): Form<ProjectForm>,
) -> Response {
    if !v.access.can_edit() {
        return forbidden(&v);
    }
    let (f, author) = (form.clone(), v.author());
    let done = app
        .with_replica(move |r| {
            if !writes_projects(r.settings.role) {
                return Ok(Err(OpError::Refused(
                    "this node does not keep a portfolio of its own".into(),
                )));
            }
            let cup = Some(f.cup.as_str()).filter(|c| !c.trim().is_empty());
            Ok(ops::add(r, cup, &f.title, &f.fields(), &author)
                .map(|a| (r.settings.comune.as_str().to_owned(), a.project.id)))
        })
        .await;
    match done {
        Ok(Ok((comune, id))) => {
            Redirect::to(&format!("/progetti/{comune}/{id}?salvato=1")).into_response()
        }
        Ok(Err(e)) => match refusal(&v, e) {
            Refusal::Form(err) => new_page(&app, &v, form, Some(err)).await,
            Refusal::Page(r) => r,
        },
        Err(e) => render::failure(v.lang, &e),
    }
}

pub struct FundingView {
    pub source: String,
    pub programme: String,
    pub amount: String,
}

pub struct MilestoneView {
    pub code: String,
    pub description: String,
    pub due: String,
    pub achieved: String,
    pub late: bool,
}

pub struct PhaseView {
    pub phase: String,
    pub planned: String,
    pub actual: String,
}

#[derive(Template)]
#[template(path = "project.html")]
struct ProjectPage {
    c: Chrome,
    href: String,
    editable: bool,
    /// This is the metro node and the visitor may edit: it decides
    /// whether the comune's project is public.
    decides: bool,
    publication: Publication,
    decisions: Vec<(&'static str, &'static str)>,
    saved: bool,
    comune: String,
    project: Project,
    state: String,
    form: ProjectForm,
    error: Option<(String, String)>,
    conflicts: Vec<Conflict>,
    funding: Vec<FundingView>,
    milestones: Vec<MilestoneView>,
    phases: Vec<PhaseView>,
    phase_codes: Vec<&'static str>,
    states: Vec<(&'static str, String)>,
    financed: String,
    committed: String,
    paid: String,
}

#[derive(Deserialize, Default)]
pub struct ShowQuery {
    salvato: Option<String>,
}

/// Loads what the project page shows.
async fn project_page(
    app: &Shared,
    v: &Visitor,
    comune: String,
    id: String,
    form: Option<ProjectForm>,
    error: Option<(String, String)>,
    saved: bool,
) -> Response {
    let Ok(istat) = comune.parse::<Istat>() else {
        return render::error_page(v.lang, StatusCode::NOT_FOUND, v.lang.t("error.not_found"));
    };
    let doc_id = DocId::Comune(istat.clone());
    let pid = id.clone();
    let loaded = app
        .with_replica(move |r| {
            let label = node_label(r);
            let own = r.own_doc() == doc_id && writes_projects(r.settings.role);
            let target = Target {
                cup: None,
                id: Some(pid.clone()),
            };
            if let Err(e) = ops::locate(r, &doc_id, &target) {
                return Ok(Err(e));
            }
            let decides = r.settings.role == Role::Metro;
            let publication = match publication::read(r, &istat, &pid) {
                Ok(p) => p,
                Err(e) => return Ok(Err(e)),
            };
            let doc = r.materialise(&doc_id)?;
            Ok(ops::read(&doc, &pid).map(|(p, c)| (label, own, decides, publication, p, c)))
        })
        .await;
    let (label, own, decides, publication, project, conflicts) = match loaded {
        Ok(Ok(x)) => x,
        Ok(Err(e)) if e.is_not_found() => {
            return render::error_page(v.lang, StatusCode::NOT_FOUND, v.lang.t("error.not_found"))
        }
        Ok(Err(e)) => return render::failure(v.lang, &Failure(e.to_string())),
        Err(e) => return render::failure(v.lang, &e),
    };
    let lang = v.lang;
    let today = today();
    let title = project.title.clone();
    let c = Chrome::new(v, label, title, "projects");
    let date = |d: &Option<accordo_domain::model::Date>| lang.date_opt(d.as_ref());
    let page = ProjectPage {
        href: format!("/progetti/{comune}/{id}"),
        editable: own && c.can_edit,
        decides: decides && c.can_edit,
        publication,
        decisions: Decision::ALL
            .iter()
            .map(|d| (d.code(), lang.t(&format!("decision.{}", d.code()))))
            .collect(),
        saved,
        comune: comuni::label(&comune),
        state: project.procedural_state().to_string(),
        form: form.unwrap_or_else(|| ProjectForm::of(&project)),
        error,
        conflicts,
        funding: project
            .funding
            .values()
            .map(|f| FundingView {
                source: f.source.to_string(),
                programme: f.programme.clone().unwrap_or_default(),
                amount: lang.eur(f.amount_cents),
            })
            .collect(),
        milestones: project
            .milestones
            .values()
            .map(|m| MilestoneView {
                code: m.code.clone(),
                description: m.description.clone(),
                due: lang.date(&m.due),
                achieved: lang.date_opt(m.achieved_date.as_ref()),
                late: m.due < today && m.achieved_date.is_none(),
            })
            .collect(),
        phases: project
            .phases
            .iter()
            .map(|(ph, d)| PhaseView {
                phase: ph.to_string(),
                planned: format!("{} – {}", date(&d.planned_start), date(&d.planned_end)),
                actual: format!("{} – {}", date(&d.actual_start), date(&d.actual_end)),
            })
            .collect(),
        phase_codes: Phase::ALL.iter().map(|p| p.code()).collect(),
        states: states(),
        financed: lang.eur_opt(project.financed_cents),
        committed: lang.eur_opt(project.committed_cents),
        paid: lang.eur_opt(project.paid_cents),
        project,
        c,
    };
    let status_code = if page.error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let mut r = render::page(lang, &page);
    *r.status_mut() = status_code;
    r
}

pub async fn show(
    State(app): State<Shared>,
    Extension(v): Extension<Visitor>,
    Path((comune, id)): Path<(String, String)>,
    Query(q): Query<ShowQuery>,
) -> Response {
    project_page(&app, &v, comune, id, None, None, q.salvato.is_some()).await
}

/// Runs an edit of the project at `comune/id` (refused unless it is this
/// comune's own and the visitor may edit), then shows the page again: the
/// saved project, or the form with the error.
async fn edit(
    app: Shared,
    v: Visitor,
    comune: String,
    id: String,
    form: Option<ProjectForm>,
    op: impl FnOnce(&mut crate::replica::Replica, &Target) -> Result<(), OpError> + Send + 'static,
) -> Response {
    if !v.access.can_edit() {
        return forbidden(&v);
    }
    let target = Target {
        cup: None,
        id: Some(id.clone()),
    };
    let c2 = comune.clone();
    let done = app
        .with_replica(move |r| {
            let own = writes_projects(r.settings.role) && r.settings.comune.as_str() == c2;
            if !own {
                return Ok(Err(OpError::Refused(
                    "only the comune's own node edits its projects".into(),
                )));
            }
            Ok(op(r, &target))
        })
        .await;
    answer(&app, &v, comune, id, form, done).await
}

/// After an edit of the project at `comune/id`: the saved page, or the
/// page again with the refusal (and the form as sent).
async fn answer(
    app: &Shared,
    v: &Visitor,
    comune: String,
    id: String,
    form: Option<ProjectForm>,
    done: Result<Result<(), OpError>, Failure>,
) -> Response {
    match done {
        Ok(Ok(())) => Redirect::to(&format!("/progetti/{comune}/{id}?salvato=1")).into_response(),
        Ok(Err(e)) => match refusal(v, e) {
            Refusal::Form(err) => project_page(app, v, comune, id, form, Some(err), false).await,
            Refusal::Page(r) => r,
        },
        Err(e) => render::failure(v.lang, &e),
    }
}

pub async fn update(
    State(app): State<Shared>,
    Extension(v): Extension<Visitor>,
    Path((comune, id)): Path<(String, String)>,
    Form(form): Form<ProjectForm>,
) -> Response {
    let (f, author) = (form.clone(), v.author());
    edit(app, v, comune, id, Some(form), move |r, t| {
        let title = Some(f.title.as_str());
        ops::set(r, t, title, &f.fields(), &author).map(|_| ())
    })
    .await
}

#[derive(Deserialize)]
pub struct FundingForm {
    source: String,
    amount_eur: String,
    #[serde(default)]
    programme: String,
}

pub async fn add_funding(
    State(app): State<Shared>,
    Extension(v): Extension<Visitor>,
    Path((comune, id)): Path<(String, String)>,
    Form(f): Form<FundingForm>,
) -> Response {
    let author = v.author();
    edit(app, v, comune, id, None, move |r, t| {
        ops::funding_add(r, t, &f.source, &f.amount_eur, Some(f.programme), &author).map(|_| ())
    })
    .await
}

#[derive(Deserialize)]
pub struct MilestoneForm {
    code: String,
    description: String,
    due: String,
}

pub async fn add_milestone(
    State(app): State<Shared>,
    Extension(v): Extension<Visitor>,
    Path((comune, id)): Path<(String, String)>,
    Form(f): Form<MilestoneForm>,
) -> Response {
    let author = v.author();
    edit(app, v, comune, id, None, move |r, t| {
        let new = NewMilestone {
            code: f.code,
            description: f.description,
            due: f.due,
            unit: None,
            baseline: None,
            target: None,
        };
        ops::milestone_add(r, t, new, &author).map(|_| ())
    })
    .await
}

#[derive(Deserialize)]
pub struct PhaseForm {
    phase: String,
    #[serde(default)]
    planned_start: String,
    #[serde(default)]
    planned_end: String,
    #[serde(default)]
    actual_start: String,
    #[serde(default)]
    actual_end: String,
}

pub async fn set_phase(
    State(app): State<Shared>,
    Extension(v): Extension<Visitor>,
    Path((comune, id)): Path<(String, String)>,
    Form(f): Form<PhaseForm>,
) -> Response {
    let author = v.author();
    edit(app, v, comune, id, None, move |r, t| {
        let dates = PhaseDates {
            planned_start: Some(f.planned_start),
            planned_end: Some(f.planned_end),
            actual_start: Some(f.actual_start),
            actual_end: Some(f.actual_end),
        };
        ops::phase_set(r, t, &f.phase, &dates, &author).map(|_| ())
    })
    .await
}

#[derive(Deserialize)]
pub struct PublishForm {
    /// `1` to publish, `0` to take back to a draft.
    published: String,
}

pub async fn publish(
    State(app): State<Shared>,
    Extension(v): Extension<Visitor>,
    Path((comune, id)): Path<(String, String)>,
    Form(f): Form<PublishForm>,
) -> Response {
    let author = v.author();
    let published = f.published.trim() == "1";
    edit(app, v, comune, id, None, move |r, t| {
        ops::publish(r, t, published, &author).map(|_| ())
    })
    .await
}

#[derive(Deserialize)]
pub struct DecisionForm {
    /// `published`, `draft` or `comune`.
    decision: String,
}

/// The metropolitan office's decision on a comune's project (metro node).
pub async fn decide(
    State(app): State<Shared>,
    Extension(v): Extension<Visitor>,
    Path((comune, id)): Path<(String, String)>,
    Form(f): Form<DecisionForm>,
) -> Response {
    if !v.access.can_edit() {
        return forbidden(&v);
    }
    let Ok(istat) = comune.parse::<Istat>() else {
        return render::error_page(v.lang, StatusCode::NOT_FOUND, v.lang.t("error.not_found"));
    };
    let author = v.author();
    let target = Target {
        cup: None,
        id: Some(id.clone()),
    };
    let done = app
        .with_replica(move |r| {
            let decision = match f.decision.parse::<Decision>() {
                Ok(d) => d,
                Err(e) => return Ok(Err(OpError::field("decision", e))),
            };
            Ok(publication::decide(r, &istat, &target, decision, &author).map(|_| ()))
        })
        .await;
    answer(&app, &v, comune, id, None, done).await
}

#[derive(Deserialize)]
pub struct ChooseForm {
    field: String,
    value: String,
}

pub async fn choose(
    State(app): State<Shared>,
    Extension(v): Extension<Visitor>,
    Path((comune, id)): Path<(String, String)>,
    Form(f): Form<ChooseForm>,
) -> Response {
    let author = v.author();
    edit(app, v, comune, id, None, move |r, t| {
        ops::choose(r, t, &f.field, &f.value, &author)
    })
    .await
}
