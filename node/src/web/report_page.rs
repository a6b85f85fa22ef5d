//! The monitoring report in the browser (its own HTML, with charts and the
//! verification stamp, shown in the page) and the files to download: the
//! report as JSON, Markdown, HTML or XLSX, and the open-data export of
//! projects as CSV, XLSX or JSON — the same bytes `accordo report` and
//! `accordo export` write.

use super::pages::node_label;
use super::render::{self, Chrome};
use super::{Failure, Shared, Visitor};
use crate::ops::output::{self, ExportFormat, ReportFormat};
use accordo_domain::indicator;
use accordo_domain::model::Date;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde::Deserialize;

#[derive(Deserialize, Default)]
pub struct ReportQuery {
    as_of: Option<String>,
    period: Option<String>,
}

struct Asked {
    as_of: Date,
    period: Option<String>,
}

/// The date and period asked for, or what is wrong with them.
fn asked(q: &ReportQuery) -> Result<Asked, String> {
    let as_of = match q.as_of.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => Date::parse_any("as_of", s).map_err(|e| e.to_string())?,
        None => crate::clock::today(),
    };
    let period = match q.period.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(p) => Some(indicator::parse_period(p).map_err(|e| e.to_string())?),
        None => None,
    };
    Ok(Asked { as_of, period })
}

fn query_string(a: &Asked) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    s.append_pair("as_of", &a.as_of.to_string());
    if let Some(p) = &a.period {
        s.append_pair("period", p);
    }
    s.finish()
}

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage {
    c: Chrome,
    as_of: String,
    period: String,
    query: String,
    documents: usize,
    digest: String,
    projects: String,
    late: usize,
}

pub async fn page(
    State(app): State<Shared>,
    Extension(v): Extension<Visitor>,
    Query(q): Query<ReportQuery>,
) -> Response {
    let a = match asked(&q) {
        Ok(a) => a,
        Err(e) => return render::error_page(v.lang, StatusCode::BAD_REQUEST, &e),
    };
    let (as_of, period) = (a.as_of, a.period.clone());
    let loaded = app
        .with_replica(move |r| {
            let label = node_label(r);
            let report = output::report(r, as_of, period)?;
            Ok::<_, Failure>((label, report))
        })
        .await;
    let (label, r) = match loaded {
        Ok(x) => x,
        Err(e) => return render::failure(v.lang, &e),
    };
    let c = Chrome::new(&v, label, v.lang.t("nav.report"), "report");
    render::page(
        v.lang,
        &ReportPage {
            as_of: a.as_of.to_string(),
            period: a.period.clone().unwrap_or_default(),
            query: query_string(&a),
            documents: r.computed_from.documents.len(),
            digest: r.computed_from.digest.clone(),
            projects: v.lang.count(r.totals.projects),
            late: r.late_milestones.len(),
            c,
        },
    )
}

fn download(bytes: Vec<u8>, content_type: &'static str, name: &str, inline: bool) -> Response {
    let disposition = format!(
        "{}; filename=\"{name}\"",
        if inline { "inline" } else { "attachment" }
    );
    let mut r = (StatusCode::OK, bytes).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(d) = HeaderValue::from_str(&disposition) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, d);
    }
    r
}

/// `/rapporto/rapporto.{json,md,html,xlsx}`.
pub async fn file(
    State(app): State<Shared>,
    Extension(v): Extension<Visitor>,
    Path(name): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Response {
    let Some(format) = name.strip_prefix("rapporto.").and_then(ReportFormat::parse) else {
        return render::error_page(v.lang, StatusCode::NOT_FOUND, v.lang.t("error.not_found"));
    };
    let a = match asked(&q) {
        Ok(a) => a,
        Err(e) => return render::error_page(v.lang, StatusCode::BAD_REQUEST, &e),
    };
    let file_name = format!("rapporto-{}.{}", a.as_of, format.extension());
    let made = app
        .with_replica(move |r| {
            let report = output::report(r, a.as_of, a.period)?;
            Ok::<_, Failure>(output::report_bytes(&report, format)?)
        })
        .await;
    match made {
        Ok(bytes) => download(
            bytes,
            format.content_type(),
            &file_name,
            format == ReportFormat::Html,
        ),
        Err(e) => render::failure(v.lang, &e),
    }
}

/// `/esporta/progetti.{csv,xlsx,json}`: this comune's projects, or every
/// comune's on a metro node.
pub async fn export(
    State(app): State<Shared>,
    Extension(v): Extension<Visitor>,
    Path(name): Path<String>,
) -> Response {
    let Some(format) = name.strip_prefix("progetti.").and_then(ExportFormat::parse) else {
        return render::error_page(v.lang, StatusCode::NOT_FOUND, v.lang.t("error.not_found"));
    };
    let made = app
        .with_replica(move |r| {
            let all = crate::client::follows_all(r.settings.role);
            let rows = output::export_rows(r, all)?;
            Ok::<_, Failure>(output::export_bytes(&rows, format)?)
        })
        .await;
    match made {
        Ok(bytes) => download(
            bytes,
            format.content_type(),
            &format!("progetti.{}", format.extension()),
            false,
        ),
        Err(e) => render::failure(v.lang, &e),
    }
}
