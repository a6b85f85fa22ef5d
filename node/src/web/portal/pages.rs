//! The citizens' pages under `/pubblico/`: the plan with its totals, the
//! zones and comuni; each comune's and zone's published projects with their
//! state, amounts and late milestones; a project; the indicators against
//! baseline and target with a chart; and the verification page listing the
//! documents and heads the figures were computed from. Every page ends
//! with the stamp (when the data were last updated, the digest).

use super::snapshot::Snapshot;
use super::{cached, lang_of, SharedPortal};
use crate::web::chart;
use crate::web::i18n::Lang;
use crate::web::render;
use accordo_domain::comuni;
use accordo_domain::model::Project;
use accordo_domain::report::Money;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{Redirect, Response};
use std::sync::Arc;

/// The frame of every public page.
pub struct PublicChrome {
    pub lang: Lang,
    pub title: String,
    pub publisher: String,
    /// This page's path (the language switch links to it).
    pub here: String,
    /// `?lang=en` when the page was asked in English, so links keep it.
    pub lang_query: String,
    pub nav: &'static str,
    pub updated: String,
    pub as_of: String,
    pub digest: String,
    pub documents: usize,
}

impl PublicChrome {
    pub fn t(&self, key: &str) -> &'static str {
        self.lang.t(key)
    }

    pub fn current(&self, section: &str) -> &'static str {
        if self.nav == section {
            "page"
        } else {
            "false"
        }
    }
}

/// What every handler starts from: the language, the snapshot, the frame.
pub struct Ctx {
    pub p: PublicChrome,
    pub snap: Arc<Snapshot>,
}

pub async fn context(
    portal: &SharedPortal,
    uri: &Uri,
    headers: &HeaderMap,
    title_key: &str,
    nav: &'static str,
) -> Result<Ctx, Response> {
    let lang = lang_of(uri.query(), headers);
    let snap = portal
        .snapshot()
        .await
        .map_err(|e| render::failure(lang, &e))?;
    let publisher = portal.publisher().await;
    let stamp = &snap.report.computed_from;
    let p = PublicChrome {
        lang,
        title: lang.t(title_key).to_owned(),
        publisher,
        here: uri.path().to_owned(),
        lang_query: if lang == Lang::It {
            String::new()
        } else {
            format!("?lang={}", lang.code())
        },
        nav,
        updated: snap
            .last_change_ms
            .map(|ms| lang.moment_ms(ms))
            .unwrap_or_else(|| "–".into()),
        as_of: lang.date(&snap.as_of),
        digest: stamp.digest.clone(),
        documents: stamp.documents.len(),
    };
    Ok(Ctx { p, snap })
}

/// A rendered public page, cacheable by the snapshot's key and language.
pub fn page(key: &str, lang: Lang, headers: &HeaderMap, t: &impl Template) -> Response {
    let etag = format!("{key}-{}", lang.code());
    cached(headers, &etag, "text/html; charset=utf-8", || {
        t.render()
            .map(String::into_bytes)
            .map_err(crate::web::Failure::from)
    })
}

fn not_found_page(lang: Lang) -> Response {
    render::error_page(lang, StatusCode::NOT_FOUND, lang.t("error.not_found"))
}

pub async fn not_found(uri: Uri, headers: HeaderMap) -> Response {
    not_found_page(lang_of(uri.query(), &headers))
}

pub async fn to_home() -> Redirect {
    Redirect::permanent("/pubblico/")
}

pub async fn to_opendata() -> Redirect {
    Redirect::permanent("/opendata/")
}

/// The portal's stylesheet: the web application's, and the public pages'
/// few additions.
pub async fn css(headers: HeaderMap) -> Response {
    const CSS: &str = concat!(
        include_str!("../../../static/app.css"),
        include_str!("../../../static/public.css")
    );
    let etag = blake3::hash(CSS.as_bytes()).to_hex()[..16].to_owned();
    cached(&headers, &etag, "text/css; charset=utf-8", || {
        Ok(CSS.as_bytes().to_vec())
    })
}

/// A group's money as the page shows it.
pub struct GroupView {
    pub href: String,
    pub name: String,
    pub projects: String,
    pub financed: String,
    pub committed: String,
    pub paid: String,
}

fn group(lang: Lang, href: String, name: String, m: &Money) -> GroupView {
    GroupView {
        href,
        name,
        projects: lang.count(m.projects),
        financed: lang.eur(m.financed_cents),
        committed: lang.eur(m.committed_cents),
        paid: lang.eur(m.paid_cents),
    }
}

/// An item of the plan with the items under it.
pub struct PlanNode {
    pub code: String,
    pub name: String,
    pub children: Vec<PlanNode>,
}

fn plan_tree(s: &Snapshot) -> Vec<PlanNode> {
    let under = |items: &[accordo_domain::plan::PlanItem], parent: &str| -> Vec<(String, String)> {
        items
            .iter()
            .filter(|i| i.parent.as_deref() == Some(parent))
            .map(|i| (i.code.clone(), i.name.clone()))
            .collect()
    };
    s.axes
        .iter()
        .map(|a| PlanNode {
            code: a.code.clone(),
            name: a.name.clone(),
            children: under(&s.objectives, &a.code)
                .into_iter()
                .map(|(code, name)| PlanNode {
                    children: under(&s.actions, &code)
                        .into_iter()
                        .map(|(code, name)| PlanNode {
                            code,
                            name,
                            children: Vec::new(),
                        })
                        .collect(),
                    code,
                    name,
                })
                .collect(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "public/home.html")]
struct HomePage {
    p: PublicChrome,
    projects: String,
    financed: String,
    committed: String,
    paid: String,
    late: String,
    axes: Vec<PlanNode>,
    zones: Vec<GroupView>,
    comuni: Vec<GroupView>,
}

pub async fn home(State(portal): State<SharedPortal>, uri: Uri, headers: HeaderMap) -> Response {
    let ctx = match context(&portal, &uri, &headers, "public.title", "home").await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let (lang, s) = (ctx.p.lang, &ctx.snap);
    let q = ctx.p.lang_query.clone();
    let totals = &s.report.totals;
    let page_data = HomePage {
        projects: lang.count(totals.projects),
        financed: lang.eur(totals.financed_cents),
        committed: lang.eur(totals.committed_cents),
        paid: lang.eur(totals.paid_cents),
        late: lang.count(s.report.late_milestones.len()),
        axes: plan_tree(s),
        zones: s
            .zones
            .iter()
            .filter(|z| z.money.projects > 0)
            .map(|z| {
                group(
                    lang,
                    format!("/pubblico/zone/{}{q}", z.code),
                    z.name.clone(),
                    &z.money,
                )
            })
            .collect(),
        comuni: s
            .report
            .by_comune
            .iter()
            .map(|c| {
                let name = c.comune_name.clone().unwrap_or_else(|| c.comune.clone());
                group(
                    lang,
                    format!("/pubblico/comuni/{}{q}", c.comune),
                    name,
                    &c.money,
                )
            })
            .collect(),
        p: ctx.p,
    };
    page(&ctx.snap.key, lang, &headers, &page_data)
}

/// A project in a list.
pub struct Row {
    pub href: String,
    pub cup: String,
    pub title: String,
    pub comune: String,
    pub state: String,
    pub financed: String,
    pub committed: String,
    pub paid: String,
    pub late: usize,
}

/// A late milestone in a list.
pub struct LateView {
    pub href: String,
    pub title: String,
    pub code: String,
    pub description: String,
    pub due: String,
}

fn project_href(comune: &str, p: &Project, q: &str) -> String {
    format!("/pubblico/progetti/{comune}/{}{q}", p.id)
}

fn row(lang: Lang, today: accordo_domain::model::Date, comune: &str, p: &Project, q: &str) -> Row {
    Row {
        href: project_href(comune, p, q),
        cup: p.cup.clone().unwrap_or_else(|| "–".into()),
        title: p.title.clone(),
        comune: comuni::label(comune),
        state: p.procedural_state().to_string(),
        financed: lang.eur(p.financed_cents.unwrap_or_else(|| p.funding_total_cents())),
        committed: lang.eur_opt(p.committed_cents),
        paid: lang.eur_opt(p.paid_cents),
        late: p
            .milestones
            .values()
            .filter(|m| m.due < today && m.achieved_date.is_none())
            .count(),
    }
}

#[derive(Template)]
#[template(path = "public/projects.html")]
struct ProjectsPage {
    p: PublicChrome,
    rows: Vec<Row>,
    show_comune: bool,
    financed: String,
    committed: String,
    paid: String,
    late: Vec<LateView>,
}

/// The list page of `projects` (with their comune).
fn projects_page<'a>(
    mut p: PublicChrome,
    snap: &Snapshot,
    title: String,
    show_comune: bool,
    projects: impl Iterator<Item = (&'a str, &'a Project)>,
) -> ProjectsPage {
    let (lang, q) = (p.lang, p.lang_query.clone());
    p.title = title;
    let mut money = Money::default();
    let mut rows = Vec::new();
    let mut late = Vec::new();
    for (c, project) in projects {
        money.add(project);
        rows.push(row(lang, snap.as_of, c, project, &q));
        for m in project.milestones.values() {
            if m.due < snap.as_of && m.achieved_date.is_none() {
                late.push(LateView {
                    href: project_href(c, project, &q),
                    title: project.title.clone(),
                    code: m.code.clone(),
                    description: m.description.clone(),
                    due: lang.date(&m.due),
                });
            }
        }
    }
    ProjectsPage {
        p,
        rows,
        show_comune,
        financed: lang.eur(money.financed_cents),
        committed: lang.eur(money.committed_cents),
        paid: lang.eur(money.paid_cents),
        late,
    }
}

pub async fn comune(
    State(portal): State<SharedPortal>,
    Path(istat): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let ctx = match context(&portal, &uri, &headers, "public.title", "home").await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let lang = ctx.p.lang;
    if !ctx.snap.projects.iter().any(|(c, _)| *c == istat) {
        return not_found_page(lang);
    }
    let title = comuni::label(&istat);
    let snap = Arc::clone(&ctx.snap);
    let projects = snap.of_comune(&istat).map(|p| (istat.as_str(), p));
    let data = projects_page(ctx.p, &snap, title, false, projects);
    page(&snap.key, lang, &headers, &data)
}

pub async fn zone(
    State(portal): State<SharedPortal>,
    Path(code): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let ctx = match context(&portal, &uri, &headers, "public.title", "home").await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let lang = ctx.p.lang;
    let snap = Arc::clone(&ctx.snap);
    let Some(z) = snap
        .zones
        .iter()
        .find(|z| z.code == code && z.money.projects > 0)
    else {
        return not_found_page(lang);
    };
    let title = format!("{}: {}", lang.t("field.zone"), z.name);
    let projects = snap.of_zone(&code).map(|(c, p)| (c.as_str(), p));
    let data = projects_page(ctx.p, &snap, title, true, projects);
    page(&snap.key, lang, &headers, &data)
}

#[derive(Template)]
#[template(path = "public/project.html")]
struct ProjectPage {
    p: PublicChrome,
    cup: String,
    comune: String,
    comune_href: String,
    zone: Option<String>,
    body: Option<String>,
    measure: Option<String>,
    summary: Option<String>,
    state: String,
    financed: String,
    committed: String,
    paid: String,
    funding: Vec<crate::web::project_pages::FundingView>,
    milestones: Vec<crate::web::project_pages::MilestoneView>,
    phases: Vec<crate::web::project_pages::PhaseView>,
}

pub async fn project(
    State(portal): State<SharedPortal>,
    Path((comune, id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    use crate::web::project_pages::{FundingView, MilestoneView, PhaseView};
    let ctx = match context(&portal, &uri, &headers, "public.title", "home").await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let lang = ctx.p.lang;
    let snap = Arc::clone(&ctx.snap);
    let found = snap
        .projects
        .iter()
        .zip(&snap.project_zones)
        .find(|((c, p), _)| *c == comune && p.id == id);
    let Some(((_, pr), zone)) = found else {
        return not_found_page(lang);
    };
    let mut p = ctx.p;
    p.title = pr.title.clone();
    let date = |d: &Option<accordo_domain::model::Date>| lang.date_opt(d.as_ref());
    let zone_name = zone.as_ref().map(|z| {
        snap.zones
            .iter()
            .find(|r| &r.code == z)
            .map_or_else(|| z.clone(), |r| r.name.clone())
    });
    let data = ProjectPage {
        cup: pr.cup.clone().unwrap_or_else(|| "–".into()),
        comune: comuni::label(&comune),
        comune_href: format!("/pubblico/comuni/{comune}{}", p.lang_query),
        zone: zone_name,
        body: pr.implementing_body.clone(),
        measure: pr.pnrr_measure.as_ref().map(|m| m.to_string()),
        summary: pr.summary.clone(),
        state: pr.procedural_state().to_string(),
        financed: lang.eur(
            pr.financed_cents
                .unwrap_or_else(|| pr.funding_total_cents()),
        ),
        committed: lang.eur_opt(pr.committed_cents),
        paid: lang.eur_opt(pr.paid_cents),
        funding: pr
            .funding
            .values()
            .map(|f| FundingView {
                source: f.source.to_string(),
                programme: f.programme.clone().unwrap_or_default(),
                amount: lang.eur(f.amount_cents),
            })
            .collect(),
        milestones: pr
            .milestones
            .values()
            .map(|m| MilestoneView {
                code: m.code.clone(),
                description: m.description.clone(),
                due: lang.date(&m.due),
                achieved: lang.date_opt(m.achieved_date.as_ref()),
                late: m.due < snap.as_of && m.achieved_date.is_none(),
            })
            .collect(),
        phases: pr
            .phases
            .iter()
            .map(|(ph, d)| PhaseView {
                phase: ph.to_string(),
                planned: format!("{} – {}", date(&d.planned_start), date(&d.planned_end)),
                actual: format!("{} – {}", date(&d.actual_start), date(&d.actual_end)),
            })
            .collect(),
        p,
    };
    page(&snap.key, lang, &headers, &data)
}

/// One territory's figures of an indicator.
pub struct IndicatorLine {
    pub territory: String,
    pub baseline: String,
    pub target: String,
    pub latest: String,
    pub progress: String,
}

pub struct Series {
    pub code: String,
    pub name: String,
    pub unit: String,
    pub polarity: &'static str,
    pub chart: String,
    pub baseline: String,
    pub target: String,
    pub rows: Vec<IndicatorLine>,
}

#[derive(Template)]
#[template(path = "public/indicators.html")]
struct IndicatorsPage {
    p: PublicChrome,
    series: Vec<Series>,
}

fn series(lang: Lang, snap: &Snapshot, def: &accordo_domain::indicator::IndicatorDef) -> Series {
    let name = match lang {
        Lang::En => def.name_en.clone().unwrap_or_else(|| def.name_it.clone()),
        Lang::It => def.name_it.clone(),
    };
    let opt = |v: Option<f64>| v.map(|v| lang.number(v)).unwrap_or_else(|| "–".into());
    let rows: Vec<IndicatorLine> = snap
        .report
        .indicators
        .iter()
        .filter(|r| r.code == def.code)
        .map(|r| IndicatorLine {
            territory: match &r.territory_name {
                Some(n) => n.clone(),
                None if r.territory == "metro" => lang.t("public.metro").to_owned(),
                None => r.territory.clone(),
            },
            baseline: opt(r.baseline),
            target: opt(r.target),
            latest: r
                .latest
                .as_ref()
                .map(|l| format!("{} ({})", lang.number(l.value), l.period))
                .unwrap_or_else(|| "–".into()),
            progress: r
                .progress
                .map(|x| format!("{} %", lang.number((x * 1000.0).round() / 10.0)))
                .unwrap_or_else(|| "–".into()),
        })
        .collect();
    // The chart: the metropolitan series if there is one, else the first territory's.
    let data = snap
        .indicator_data
        .iter()
        .find(|(t, d)| t == "metro" && d.contains_key(&def.code))
        .or_else(|| {
            snap.indicator_data
                .iter()
                .find(|(_, d)| d.contains_key(&def.code))
        })
        .and_then(|(_, d)| d.get(&def.code));
    let points: Vec<(String, f64)> = data
        .map(|d| {
            d.observations
                .iter()
                .map(|(p, o)| (p.clone(), o.value))
                .collect()
        })
        .unwrap_or_default();
    let baseline = data.and_then(|d| d.baseline.as_ref()).map(|r| r.value);
    let target = data.and_then(|d| d.target.as_ref()).map(|r| r.value);
    Series {
        code: def.code.clone(),
        chart: chart::trend(
            &format!("{name} ({})", def.unit),
            &points,
            baseline,
            target,
            |v| lang.number(v),
        ),
        name,
        unit: def.unit.clone(),
        polarity: match def.polarity {
            1 => lang.t("public.polarity_up"),
            -1 => lang.t("public.polarity_down"),
            _ => lang.t("public.polarity_neutral"),
        },
        baseline: opt(baseline),
        target: opt(target),
        rows,
    }
}

pub async fn indicators(
    State(portal): State<SharedPortal>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let ctx = match context(&portal, &uri, &headers, "nav.indicators", "indicators").await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let lang = ctx.p.lang;
    let snap = Arc::clone(&ctx.snap);
    let data = IndicatorsPage {
        series: snap
            .catalog
            .iter()
            .map(|d| series(lang, &snap, d))
            .collect(),
        p: ctx.p,
    };
    page(&snap.key, lang, &headers, &data)
}

#[derive(Template)]
#[template(path = "public/verification.html")]
struct VerificationPage {
    p: PublicChrome,
    documents: Vec<(String, String)>,
}

pub async fn verification(
    State(portal): State<SharedPortal>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let ctx = match context(&portal, &uri, &headers, "public.stamp", "home").await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let lang = ctx.p.lang;
    let snap = Arc::clone(&ctx.snap);
    let data = VerificationPage {
        documents: snap
            .report
            .computed_from
            .documents
            .iter()
            .map(|d| (d.doc.clone(), d.heads.join(" ")))
            .collect(),
        p: ctx.p,
    };
    page(&snap.key, lang, &headers, &data)
}
