//! Pages that are not about one project: the dashboard of the node's role
//! (a comune's portfolio at a glance, or every comune for the metropolitan
//! office), signing in and out, the language switch, "not found".

use super::i18n::{Lang, LANG_COOKIE};
use super::render::{self, Chrome};
use super::{session_cookie, Failure, Shared, Visitor};
use crate::clock::today;
use crate::ops::status::Status;
use crate::users;
use crate::views::dashboard::{Dashboard, Group};
use accordo_protocol::identity::Role;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;
use std::time::Instant;

/// A label for the node in the header, from its settings (no store read):
/// its comune, or the metro office.
pub fn node_label(r: &crate::replica::Replica) -> super::render::NodeLabel {
    let code = r.settings.comune.as_str();
    let name = accordo_domain::comuni::name(code).unwrap_or(code);
    let text = match r.settings.role {
        Role::Metro => format!("Città metropolitana · {name}"),
        Role::Admin => format!("Amministrazione · {name}"),
        Role::Comune => format!("Comune di {name}"),
    };
    super::render::NodeLabel {
        text,
        admin: r.settings.role == Role::Admin,
    }
}

/// A redirect target from a form or link: only a local path, never
/// another site (an open redirect would let a link send people anywhere).
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_owned(),
        _ => "/".to_owned(),
    }
}

/// The sync state as the dashboard shows it.
pub struct SyncView {
    pub in_sync: bool,
    pub last_contact: String,
    pub pending: u64,
    pub rejected: Vec<(String, String)>,
}

impl SyncView {
    fn of(lang: Lang, s: &Status) -> Self {
        SyncView {
            in_sync: s.outbox_pending == 0 && s.outbox_rejected == 0 && s.last_contact_ms.is_some(),
            last_contact: s
                .last_contact_ms
                .map(|ms| lang.moment_ms(ms))
                .unwrap_or_else(|| lang.t("sync.never").to_owned()),
            pending: s.outbox_pending,
            rejected: s
                .rejected
                .iter()
                .map(|r| (r.hash.chars().take(12).collect(), r.reason.clone()))
                .collect(),
        }
    }
}

/// One row of a dashboard table, formatted.
pub struct GroupRow {
    pub key: String,
    pub name: String,
    pub projects: String,
    pub financed: String,
    pub committed: String,
    pub paid: String,
    pub late: u64,
    /// Share paid of financed, 0..100, for the bar.
    pub paid_pct: u32,
    pub last_change: String,
    pub last_sync: String,
    /// No sync (or, where the relay has not said, no change) for more
    /// than [`SILENT_DAYS`] days.
    pub silent: bool,
}

/// A comune whose last sync (else newest change) is older than this is flagged.
pub const SILENT_DAYS: u64 = 3;

fn rows(lang: Lang, groups: &[Group], now_ms: u64, unnamed: &str) -> Vec<GroupRow> {
    groups
        .iter()
        .map(|g| {
            let t = &g.totals;
            let paid_pct = if t.financed_cents > 0 {
                ((t.paid_cents.max(0) as f64 / t.financed_cents as f64) * 100.0).min(100.0) as u32
            } else {
                0
            };
            GroupRow {
                key: g.key.clone(),
                name: g.name.clone().unwrap_or_else(|| {
                    if g.key.is_empty() {
                        unnamed.to_owned()
                    } else {
                        g.key.clone()
                    }
                }),
                projects: lang.count(t.projects as usize),
                financed: lang.eur(t.financed_cents),
                committed: lang.eur(t.committed_cents),
                paid: lang.eur(t.paid_cents),
                late: t.late_milestones,
                paid_pct,
                last_change: g
                    .last_change_ms
                    .map(|ms| lang.moment_ms(ms))
                    .unwrap_or_else(|| "–".into()),
                last_sync: g
                    .last_sync_ms
                    .map(|ms| lang.moment_ms(ms))
                    .unwrap_or_else(|| "–".into()),
                silent: g
                    .last_sync_ms
                    .or(g.last_change_ms)
                    .is_some_and(|ms| now_ms.saturating_sub(ms) > SILENT_DAYS * 86_400_000),
            }
        })
        .collect()
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    c: Chrome,
    metro: bool,
    total: GroupRow,
    sync: SyncView,
    comuni: Vec<GroupRow>,
    zones: Vec<GroupRow>,
    states: Vec<GroupRow>,
    missions: Vec<GroupRow>,
    sources: Vec<GroupRow>,
}

pub async fn dashboard(State(app): State<Shared>, Extension(v): Extension<Visitor>) -> Response {
    let loaded = app
        .with_replica(|r| {
            let status = crate::ops::status::read(r)?;
            let label = node_label(r);
            let metro = crate::client::follows_all(r.settings.role);
            let own = r.own_doc();
            let today = today();
            let mut d: Dashboard = r.query(|tx| {
                crate::views::dashboard::dashboard(tx, (!metro).then_some(&own), &today)
            })?;
            let synced = crate::presence::by_comune(r)?;
            for g in &mut d.comuni {
                g.last_sync_ms = synced.get(&g.key).map(|ms| (*ms).max(0) as u64);
            }
            Ok::<_, Failure>((status, label, metro, d))
        })
        .await;
    let (status, label, metro, d) = match loaded {
        Ok(x) => x,
        Err(e) => return render::failure(v.lang, &e),
    };
    let lang = v.lang;
    let now = crate::clock::now_ms().max(0) as u64;
    let total = rows(
        lang,
        &[Group {
            key: String::new(),
            name: Some(lang.t("filter.all").to_owned()),
            totals: d.all.clone(),
            last_change_ms: None,
            last_sync_ms: None,
        }],
        now,
        "",
    )
    .remove(0);
    let unnamed = match lang {
        Lang::It => "(non indicato)",
        Lang::En => "(not given)",
    };
    let mut c = Chrome::new(&v, label, lang.t("nav.dashboard"), "dashboard");
    c.live = true;
    let page = DashboardPage {
        metro,
        total,
        sync: SyncView::of(lang, &status),
        comuni: rows(lang, &d.comuni, now, unnamed),
        zones: rows(lang, &d.zones, now, unnamed),
        states: rows(lang, &d.states, now, unnamed),
        missions: rows(lang, &d.missions, now, unnamed),
        sources: rows(lang, &d.sources, now, unnamed),
        c,
    };
    render::page(lang, &page)
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    c: Chrome,
    next: String,
    error: Option<&'static str>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

fn login_page(
    v: &Visitor,
    next: String,
    error: Option<&'static str>,
    status: StatusCode,
) -> Response {
    let c = Chrome::new(v, String::new(), v.lang.t("page.login"), "login");
    let mut r = render::page(v.lang, &LoginPage { c, next, error });
    *r.status_mut() = status;
    r
}

pub async fn login_form(Extension(v): Extension<Visitor>, Query(q): Query<NextQuery>) -> Response {
    login_page(&v, local_path(q.next.as_deref()), None, StatusCode::OK)
}

#[derive(Deserialize)]
pub struct LoginForm {
    name: String,
    password: String,
    next: Option<String>,
}

pub async fn login(
    State(app): State<Shared>,
    Extension(v): Extension<Visitor>,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = local_path(f.next.as_deref());
    let allowed = {
        // Invariant: poisoned only after a panic while held, a bug.
        let mut l = app.limiter.lock().expect("limiter mutex poisoned");
        l.allowed(v.client, Instant::now())
    };
    if !allowed {
        return login_page(
            &v,
            next,
            Some("error.rate_limited"),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let (name, password) = (f.name.clone(), f.password.clone());
    let checked = app
        .with_replica(move |r| users::verify(&mut r.store, &name, &password).map_err(Failure::from))
        .await;
    let user = match checked {
        Ok(u) => u,
        Err(e) => return render::failure(v.lang, &e),
    };
    let Some(user) = user else {
        // Invariant: as above.
        app.limiter
            .lock()
            .expect("limiter mutex poisoned")
            .failed(v.client, Instant::now());
        return login_page(&v, next, Some("error.login"), StatusCode::UNAUTHORIZED);
    };
    app.limiter
        .lock()
        .expect("limiter mutex poisoned")
        .succeeded(v.client);
    let (id, _) = app
        .sessions
        .lock()
        .expect("sessions mutex poisoned")
        .sign_in(Some(&v.session_id), user, Instant::now());
    let mut r = Redirect::to(&next).into_response();
    r.headers_mut()
        .append(header::SET_COOKIE, session_cookie(&id));
    r
}

pub async fn logout(State(app): State<Shared>, Extension(v): Extension<Visitor>) -> Response {
    app.sessions
        .lock()
        .expect("sessions mutex poisoned")
        .sign_out(&v.session_id);
    Redirect::to("/accesso").into_response()
}

pub async fn switch_language(
    Extension(_v): Extension<Visitor>,
    Path(lang): Path<String>,
    Query(q): Query<NextQuery>,
) -> Response {
    let Some(lang) = Lang::parse(&lang) else {
        return (StatusCode::NOT_FOUND, "unknown language\n").into_response();
    };
    let mut r = Redirect::to(&local_path(q.next.as_deref())).into_response();
    // A year: the choice is remembered.
    let cookie = format!(
        "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
        lang.code()
    );
    // Invariant: a language code is a valid header value.
    r.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("a language cookie is a valid header"),
    );
    r
}

pub async fn not_found(Extension(v): Extension<Visitor>) -> Response {
    render::error_page(v.lang, StatusCode::NOT_FOUND, v.lang.t("error.not_found"))
}

/// Whether this node writes projects (a comune's office); a metro node
/// reads every comune's but writes none.
pub fn writes_projects(role: Role) -> bool {
    role == Role::Comune
}
