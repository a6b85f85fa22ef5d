//! Importing a file in the browser: upload an OpenCoesione / Italia Domani /
//! Accordo CSV or XLSX, see what the import would do (or every row error,
//! with nothing imported), then confirm. The file is parsed once, by the
//! importer `accordo import` uses ([`crate::ops::import`]); what was checked
//! is kept in memory for the confirmation (bounded, per session, expiring)
//! and written by the same [`crate::ops::import::apply`].

use super::pages::node_label;
use super::render::{self, Chrome};
use super::{Failure, Shared, Visitor};
use accordo_domain::import::{Format, Outcome};
use askama::Template;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use serde::Deserialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Checked uploads waiting for confirmation, at most (each holds parsed
/// projects; an office confirms one at a time).
pub const MAX_PENDING: usize = 8;
/// A checked upload not confirmed within this is dropped.
pub const PENDING_TTL: Duration = Duration::from_secs(30 * 60);
/// Row errors shown on the page before the rest are counted.
const SHOWN_ERRORS: usize = 100;

struct Pending {
    session: String,
    name: String,
    outcome: Outcome,
    at: Instant,
}

/// Uploads checked and not yet confirmed, by token.
#[derive(Default)]
pub struct Uploads {
    by_token: HashMap<String, Pending>,
}

impl Uploads {
    fn put(&mut self, session: &str, name: String, outcome: Outcome, now: Instant) -> String {
        self.by_token
            .retain(|_, p| now.duration_since(p.at) < PENDING_TTL && p.session != session);
        while self.by_token.len() >= MAX_PENDING {
            let Some(oldest) = self
                .by_token
                .iter()
                .min_by_key(|(_, p)| p.at)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.by_token.remove(&oldest);
        }
        let mut b = [0u8; 16];
        // Invariant: the OS gives randomness (sessions need it too).
        getrandom::fill(&mut b).expect("the operating system gave no randomness");
        let token = hex::encode(b);
        self.by_token.insert(
            token.clone(),
            Pending {
                session: session.to_owned(),
                name,
                outcome,
                at: now,
            },
        );
        token
    }

    fn take(&mut self, session: &str, token: &str, now: Instant) -> Option<(String, Outcome)> {
        let p = self.by_token.remove(token)?;
        (p.session == session && now.duration_since(p.at) < PENDING_TTL)
            .then_some((p.name, p.outcome))
    }
}

#[derive(Template)]
#[template(path = "import.html")]
struct ImportPage {
    c: Chrome,
    /// After a check: the file's name.
    file: Option<String>,
    errors: Vec<String>,
    more_errors: usize,
    summary: Option<String>,
    warnings: Vec<String>,
    token: Option<String>,
    done: Option<String>,
}

impl ImportPage {
    fn empty(c: Chrome) -> Self {
        ImportPage {
            c,
            file: None,
            errors: Vec::new(),
            more_errors: 0,
            summary: None,
            warnings: Vec::new(),
            token: None,
            done: None,
        }
    }
}

async fn chrome(app: &Shared, v: &Visitor) -> Result<Chrome, Response> {
    match app.with_replica(|r| Ok(node_label(r))).await {
        Ok(s) => Ok(Chrome::new(v, s, v.lang.t("nav.import"), "import")),
        Err(e) => Err(render::failure(v.lang, &e)),
    }
}

fn forbidden(v: &Visitor) -> Response {
    render::error_page(v.lang, StatusCode::FORBIDDEN, v.lang.t("error.forbidden"))
}

pub async fn form(State(app): State<Shared>, Extension(v): Extension<Visitor>) -> Response {
    if !v.access.can_edit() {
        return forbidden(&v);
    }
    match chrome(&app, &v).await {
        Ok(c) => render::page(v.lang, &ImportPage::empty(c)),
        Err(r) => r,
    }
}

/// The uploaded file and the format asked for.
async fn read_upload(mut m: Multipart) -> Result<(String, Vec<u8>, Format), String> {
    let (mut file, mut format) = (None, Format::Auto);
    while let Some(field) = m.next_field().await.map_err(|e| e.to_string())? {
        match field.name() {
            Some("file") => {
                let name = field.file_name().unwrap_or("upload").to_owned();
                let bytes = field.bytes().await.map_err(|e| e.to_string())?;
                file = Some((name, bytes.to_vec()));
            }
            Some("format") => {
                let text = field.text().await.map_err(|e| e.to_string())?;
                format = match text.as_str() {
                    "opencoesione" => Format::Opencoesione,
                    "pnrr" => Format::Pnrr,
                    "accordo" => Format::Accordo,
                    _ => Format::Auto,
                };
            }
            _ => {}
        }
    }
    let (name, bytes) = file.ok_or_else(|| "no file was uploaded".to_owned())?;
    if bytes.is_empty() {
        return Err(format!("{name} is empty"));
    }
    Ok((name, bytes, format))
}

pub async fn check(
    State(app): State<Shared>,
    Extension(v): Extension<Visitor>,
    upload: Multipart,
) -> Response {
    if !v.access.can_edit() {
        return forbidden(&v);
    }
    let c = match chrome(&app, &v).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut page = ImportPage::empty(c);
    let (name, bytes, format) = match read_upload(upload).await {
        Ok(x) => x,
        Err(e) => {
            page.errors = vec![e];
            let mut r = render::page(v.lang, &page);
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            return r;
        }
    };
    let file = name.clone();
    let parsed = app
        .with_replica(move |r| {
            let own = r.settings.comune.clone();
            Ok::<_, Failure>((
                crate::ops::import::parse_bytes(&file, &bytes, format, &own),
                own,
            ))
        })
        .await;
    let (parsed, own) = match parsed {
        Ok(x) => x,
        Err(e) => return render::failure(v.lang, &e),
    };
    page.file = Some(name.clone());
    match parsed {
        Err(errors) => {
            page.errors = errors
                .0
                .iter()
                .take(SHOWN_ERRORS)
                .map(|e| e.to_string())
                .collect();
            page.more_errors = errors.total().saturating_sub(page.errors.len());
            let mut r = render::page(v.lang, &page);
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            r
        }
        Ok(outcome) => {
            page.summary = Some(format!(
                "{} ({}): {} — {} {}; {} {}",
                name,
                outcome.describe(),
                v.lang.count(outcome.rows),
                v.lang.count(outcome.projects.len()),
                v.lang.t("import.would_import"),
                v.lang.count(outcome.skipped_rows),
                v.lang.t("import.other_comuni"),
            ));
            page.warnings = outcome.warnings.iter().map(|w| w.to_string()).collect();
            if !outcome.not_kept.is_empty() {
                page.warnings.push(format!(
                    "{}: {}",
                    v.lang.t("import.not_kept"),
                    outcome.not_kept.join(", ")
                ));
            }
            let _ = own;
            // Invariant: poisoned only after a panic while held, a bug.
            let mut uploads = app.uploads.lock().expect("uploads mutex poisoned");
            page.token = Some(uploads.put(&v.session_id, name, outcome, Instant::now()));
            render::page(v.lang, &page)
        }
    }
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    token: String,
}

pub async fn confirm(
    State(app): State<Shared>,
    Extension(v): Extension<Visitor>,
    Form(f): Form<ConfirmForm>,
) -> Response {
    if !v.access.can_edit() {
        return forbidden(&v);
    }
    let c = match chrome(&app, &v).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut page = ImportPage::empty(c);
    let pending = app.uploads.lock().expect("uploads mutex poisoned").take(
        &v.session_id,
        &f.token,
        Instant::now(),
    );
    let Some((name, mut outcome)) = pending else {
        page.errors = vec![v.lang.t("import.expired").to_owned()];
        let mut r = render::page(v.lang, &page);
        *r.status_mut() = StatusCode::GONE;
        return r;
    };
    let projects = std::mem::take(&mut outcome.projects);
    let format = outcome.format;
    let done = app
        .with_replica(move |r| {
            Ok::<_, Failure>(crate::ops::import::apply(r, projects, format, false)?)
        })
        .await;
    match done {
        Ok(a) => {
            page.done = Some(format!(
                "{name}: {} {}, {} {}, {} {}",
                a.added,
                v.lang.t("import.added"),
                a.updated,
                v.lang.t("import.updated"),
                a.unchanged,
                v.lang.t("import.unchanged")
            ));
            render::page(v.lang, &page)
        }
        Err(e) => render::failure(v.lang, &e),
    }
}
