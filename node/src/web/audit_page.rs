//! A project's audit trail in the browser: every change that touched it,
//! who signed it (person, node key, comune and role per the registry),
//! when, which fields, and whether it verifies — the same rows as
//! `accordo audit`.

use super::pages::node_label;
use super::render::{self, Chrome};
use super::{Failure, Shared, Visitor};
use crate::audit::AuditRow;
use accordo_domain::comuni;
use accordo_protocol::codes::Istat;
use accordo_protocol::doc::DocId;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    c: Chrome,
    back: String,
    rows: Vec<AuditRow>,
}

pub async fn audit(
    State(app): State<Shared>,
    Extension(v): Extension<Visitor>,
    Path((comune, id)): Path<(String, String)>,
) -> Response {
    let Ok(istat) = comune.parse::<Istat>() else {
        return render::error_page(v.lang, StatusCode::NOT_FOUND, v.lang.t("error.not_found"));
    };
    let doc_id = DocId::Comune(istat);
    let pid = id.clone();
    let loaded = app
        .with_replica(move |r| {
            let label = node_label(r);
            if !r.query(|tx| crate::views::projects_with_id(tx, &doc_id, &pid))? {
                return Ok(None);
            }
            let rows = crate::audit::trail(r, &doc_id, &pid)?;
            Ok::<_, Failure>(Some((label, rows)))
        })
        .await;
    let (label, rows) = match loaded {
        Ok(Some(x)) => x,
        Ok(None) => {
            return render::error_page(v.lang, StatusCode::NOT_FOUND, v.lang.t("error.not_found"))
        }
        Err(e) => return render::failure(v.lang, &e),
    };
    let title = format!(
        "{} · {}",
        v.lang.t("project.audit"),
        comuni::name(&comune).unwrap_or(&comune)
    );
    let c = Chrome::new(&v, label, title, "projects");
    render::page(
        v.lang,
        &AuditPage {
            c,
            back: format!("/progetti/{comune}/{id}"),
            rows,
        },
    )
}
