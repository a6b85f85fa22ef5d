//! The administrators' page (on an admin directory's `run --http`): the
//! keys the registry knows (comune, role, status) and the network's relays,
//! and the forms to enroll a key, sign an invitation (its token shown to
//! copy) and announce a relay — through [`crate::admin`], the functions
//! `accordo admin enroll|invite|add-relay` call.

use super::pages::node_label;
use super::render::{self, Chrome};
use super::{Failure, Shared, Visitor};
use crate::admin;
use crate::invitations::{self, Invitation, InvitationState};
use crate::replica::Replica;
use crate::revocation::{self, Refusal};
use accordo_domain::comuni;
use accordo_protocol::identity::{NodeId, RelayAddr, Role};
use accordo_protocol::registry::RegistryRole;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use serde::Deserialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest validity an invitation may be given from the page.
const MAX_INVITE_DAYS: i64 = 90;
/// How long a revocation from the page waits for the relay (each sync).
const REVOKE_SYNC_TIMEOUT: Duration = Duration::from_secs(15);

pub struct MemberRow {
    pub node: String,
    pub comune: String,
    pub role: String,
    pub status: String,
    /// An active key that is not an anchor (retired with `admin
    /// retire-anchor`) and not a relay.
    pub revocable: bool,
}

/// An invitation as the page lists it.
pub struct InvitationRow {
    pub comune: String,
    pub role: String,
    pub created: String,
    pub expires: String,
    /// `pending`, `redeemed` or `expired` (the CSS class and the i18n key).
    pub state: &'static str,
    pub redeemed_by: Option<String>,
    pub token: Option<String>,
}

/// What the page shows besides the lists.
#[derive(Default)]
struct Notice {
    error: Option<String>,
    done: Option<String>,
    token: Option<String>,
    /// A key whose revocation waits for confirmation.
    confirm_revoke: Option<String>,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    c: Chrome,
    members: Vec<MemberRow>,
    invitations: Vec<InvitationRow>,
    error: Option<String>,
    done: Option<String>,
    token: Option<String>,
    confirm_revoke: Option<String>,
}

fn invitation_row(v: &Visitor, i: Invitation) -> InvitationRow {
    let moment = |ms: i64| v.lang.moment_ms(u64::try_from(ms).unwrap_or(0));
    InvitationRow {
        comune: comuni::label(&i.comune),
        role: i.role,
        created: moment(i.created_ms),
        expires: moment(i.expires_ms),
        state: i.state.name(),
        redeemed_by: match &i.state {
            InvitationState::Redeemed { by } => Some(by.to_string()),
            _ => None,
        },
        token: i.token,
    }
}

async fn show(app: &Shared, v: &Visitor, notice: Notice) -> Response {
    let loaded = app
        .with_replica(|r| {
            let label = node_label(r);
            let is_admin = r.settings.role == Role::Admin;
            let registry = r.verdict()?.registry.clone();
            let invitations = invitations::list(r, crate::clock::now_ms())?;
            Ok::<_, Failure>((label, is_admin, admin::members_json(&registry), invitations))
        })
        .await;
    let (label, is_admin, rows, invitations) = match loaded {
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
            role: if r["anchor"] == true {
                format!("{} (anchor)", text(r, "role"))
            } else {
                text(r, "role")
            },
            status: text(r, "status"),
            revocable: r["status"] == "active"
                && r["role"] != "relay"
                && r["pinned"] != true
                && r["anchor"] != true,
        })
        .collect();
    let invitations = invitations
        .into_iter()
        .map(|i| invitation_row(v, i))
        .collect();
    let status_code = if notice.error.is_some() {
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
            invitations,
            error: notice.error,
            done: notice.done,
            token: notice.token,
            confirm_revoke: notice.confirm_revoke,
        },
    );
    *r.status_mut() = status_code;
    r
}

pub async fn page(State(app): State<Shared>, Extension(v): Extension<Visitor>) -> Response {
    show(&app, &v, Notice::default()).await
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
    let notice = match done {
        Ok(Ok(Done::Message(m))) => Notice {
            done: Some(m),
            ..Notice::default()
        },
        Ok(Ok(Done::Token(t))) => Notice {
            token: Some(t),
            ..Notice::default()
        },
        Ok(Err(e)) => Notice {
            error: Some(e),
            ..Notice::default()
        },
        Err(e) => return render::failure(v.lang, &e),
    };
    show(&app, &v, notice).await
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
    // Who signed it: the person, or "web" on a node without accounts.
    let by = v.author().message().unwrap_or_else(|| "web".into());
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
        let token = admin::invite(r, comune, role, expires, &by).map_err(|e| e.to_string())?;
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

#[derive(Deserialize)]
pub struct RevokeForm {
    node: String,
    /// Present once the administrator confirmed.
    confirm: Option<String>,
    /// Revoke on local knowledge without reaching the relay.
    offline: Option<String>,
}

/// Asks for confirmation, then revokes the key through
/// [`revocation::revoke`] — pulling first, pushing at once — on a replica
/// of its own (the procedure syncs, which needs the replica shared).
pub async fn revoke(
    State(app): State<Shared>,
    Extension(v): Extension<Visitor>,
    Form(f): Form<RevokeForm>,
) -> Response {
    if !v.access.can_edit() {
        return render::error_page(v.lang, StatusCode::FORBIDDEN, v.lang.t("error.forbidden"));
    }
    let node: NodeId = match f.node.trim().parse() {
        Ok(n) => n,
        Err(e) => {
            let notice = Notice {
                error: Some(format!("node: {e}")),
                ..Notice::default()
            };
            return show(&app, &v, notice).await;
        }
    };
    if f.confirm.is_none() {
        let notice = Notice {
            confirm_revoke: Some(node.to_string()),
            ..Notice::default()
        };
        return show(&app, &v, notice).await;
    }
    let opened = app
        .with_replica(|r| Ok::<_, Failure>(Replica::open(&r.dir)?))
        .await;
    let replica = match opened {
        Ok(r) => r,
        Err(e) => return render::failure(v.lang, &e),
    };
    let req = revocation::Request {
        node,
        offline: f.offline.is_some(),
        timeout: REVOKE_SYNC_TIMEOUT,
        now_ms: crate::clock::now_ms(),
    };
    let notice = match revocation::revoke(Arc::new(Mutex::new(replica)), req).await {
        Ok(r) => Notice {
            done: Some(match r.refused {
                Some(refused) => format!(
                    "{node}: {} {} · {} {}",
                    r.kept,
                    v.lang.t("admin.revoke_kept"),
                    refused,
                    v.lang.t("admin.revoke_refused")
                ),
                None => format!(
                    "{node}: {} {} · {}",
                    r.kept,
                    v.lang.t("admin.revoke_kept"),
                    v.lang.t("admin.revoke_offline_done")
                ),
            }),
            ..Notice::default()
        },
        Err(Refusal::Admin(e)) => Notice {
            error: Some(e.to_string()),
            ..Notice::default()
        },
        Err(e @ Refusal::Undelivered { .. }) => Notice {
            error: Some(format!("{} {e}", v.lang.t("admin.revoke_undelivered"))),
            ..Notice::default()
        },
        Err(e) => Notice {
            error: Some(format!("{} {e}", v.lang.t("admin.revoke_not_done"))),
            ..Notice::default()
        },
    };
    show(&app, &v, notice).await
}
