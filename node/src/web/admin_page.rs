//! The administrators' page (on an admin directory's `run --http`): the
//! keys the registry knows (comune, role, status) and the network's relays,
//! and the forms to enroll a key, sign an invitation (its token shown to
//! copy) and announce a relay — through [`crate::admin`], the functions
//! `accordo admin enroll|invite|add-relay` call.

use super::pages::node_label;
use super::render::{self, Chrome};
use super::{Failure, Shared, Visitor};
use crate::admin;
use accordo_domain::comuni;
use accordo_protocol::identity::{NodeId, RelayAddr, Role};
use accordo_protocol::registry::RegistryRole;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use serde::Deserialize;

/// Longest validity an invitation may be given from the page.
const MAX_INVITE_DAYS: i64 = 90;

pub struct MemberRow {
    pub node: String,
    pub comune: String,
    pub role: String,
    pub status: String,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    c: Chrome,
    members: Vec<MemberRow>,
    error: Option<String>,
    done: Option<String>,
    token: Option<String>,
}

async fn show(
    app: &Shared,
    v: &Visitor,
    error: Option<String>,
    done: Option<String>,
    token: Option<String>,
) -> Response {
    let loaded = app
        .with_replica(|r| {
            let label = node_label(r);
            let is_admin = r.settings.role == Role::Admin;
            let registry = r.verdict()?.registry.clone();
            Ok::<_, Failure>((label, is_admin, admin::members_json(&registry)))
        })
        .await;
    let (label, is_admin, rows) = match loaded {
        Ok(x) => x,
        Err(e) => return render::failure(v.lang, &e),
    };
    if !is_admin {
        return render::error_page(v.lang, StatusCode::NOT_FOUND, v.lang.t("admin.not_admin"));
    }
    let text = |r: &serde_json::Value, k: &str| r[k].as_str().unwrap_or("").to_owned();
    let members = rows
        .iter()
        .map(|r| MemberRow {
            node: text(r, "node"),
            comune: r["comune"]
                .as_str()
                .map_or_else(|| text(r, "addr"), comuni::label),
            role: text(r, "role"),
            status: text(r, "status"),
        })
        .collect();
    let status_code = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let c = Chrome::new(v, label, v.lang.t("nav.admin"), "admin");
    let mut r = render::page(
        v.lang,
        &AdminPage {
            c,
            members,
            error,
            done,
            token,
        },
    );
    *r.status_mut() = status_code;
    r
}

pub async fn page(State(app): State<Shared>, Extension(v): Extension<Visitor>) -> Response {
    show(&app, &v, None, None, None).await
}

/// What a form asked for, done: a message, or an invitation token.
enum Done {
    Message(String),
    Token(String),
}

async fn act(
    app: Shared,
    v: Visitor,
    f: impl FnOnce(&mut crate::replica::Replica) -> Result<Done, String> + Send + 'static,
) -> Response {
    if !v.access.can_edit() {
        return render::error_page(v.lang, StatusCode::FORBIDDEN, v.lang.t("error.forbidden"));
    }
    let done = app.with_replica(move |r| Ok::<_, Failure>(f(r))).await;
    match done {
        Ok(Ok(Done::Message(m))) => show(&app, &v, None, Some(m), None).await,
        Ok(Ok(Done::Token(t))) => show(&app, &v, None, None, Some(t)).await,
        Ok(Err(e)) => show(&app, &v, Some(e), None, None).await,
        Err(e) => render::failure(v.lang, &e),
    }
}

fn comune_in_force(typed: &str) -> Result<accordo_protocol::codes::Istat, String> {
    comuni::parse_current(typed)
        .map(|c| c.istat())
        .map_err(|e| format!("comune: {e}"))
}

#[derive(Deserialize)]
pub struct EnrollForm {
    node: String,
    comune: String,
    role: String,
}

pub async fn enroll(
    State(app): State<Shared>,
    Extension(v): Extension<Visitor>,
    Form(f): Form<EnrollForm>,
) -> Response {
    act(app, v, move |r| {
        let node: NodeId = f.node.trim().parse().map_err(|e| format!("node: {e}"))?;
        let comune = comune_in_force(&f.comune)?;
        let role: RegistryRole = f.role.parse().map_err(|e| format!("role: {e}"))?;
        admin::enroll(r, node, comune.clone(), role, crate::clock::now_ms())
            .map_err(|e| e.to_string())?;
        Ok(Done::Message(format!(
            "{node} → {} ({role})",
            comuni::label(comune.as_str())
        )))
    })
    .await
}

#[derive(Deserialize)]
pub struct InviteForm {
    comune: String,
    role: String,
    days: String,
}

pub async fn invite(
    State(app): State<Shared>,
    Extension(v): Extension<Visitor>,
    Form(f): Form<InviteForm>,
) -> Response {
    act(app, v, move |r| {
        let comune = comune_in_force(&f.comune)?;
        let role: Role = match f.role.as_str() {
            "comune" => Role::Comune,
            "metro" => Role::Metro,
            other => return Err(format!("role: {other:?} is not comune or metro")),
        };
        let days: i64 = f
            .days
            .trim()
            .parse()
            .ok()
            .filter(|d| (1..=MAX_INVITE_DAYS).contains(d))
            .ok_or_else(|| format!("days: expected 1 to {MAX_INVITE_DAYS}, got {:?}", f.days))?;
        let expires = crate::clock::now_ms().saturating_add(days * 86_400_000);
        let token = admin::invite(r, comune, role, expires).map_err(|e| e.to_string())?;
        Ok(Done::Token(token))
    })
    .await
}

#[derive(Deserialize)]
pub struct RelayForm {
    relay: String,
}

pub async fn add_relay(
    State(app): State<Shared>,
    Extension(v): Extension<Visitor>,
    Form(f): Form<RelayForm>,
) -> Response {
    act(app, v, move |r| {
        let relay: RelayAddr = f.relay.trim().parse().map_err(|e| format!("relay: {e}"))?;
        admin::add_relay(r, &relay, crate::clock::now_ms()).map_err(|e| e.to_string())?;
        Ok(Done::Message(format!("{relay}")))
    })
    .await
}
