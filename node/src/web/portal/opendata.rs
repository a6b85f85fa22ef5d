//! The open data under `/opendata/`: each table of
//! [`accordo_domain::dcat::DATASETS`] as CSV, JSON and XLSX at a stable URL,
//! the DCAT-AP_IT catalogue describing them (`catalog.jsonld`,
//! `catalog.rdf`), and an HTML index for people. Built from the same
//! snapshot as the pages: published data only.

use super::pages::{context, PublicChrome};
use super::snapshot::Snapshot;
use super::{cached, SharedPortal};
use crate::web::i18n::Lang;
use crate::web::render;
use crate::web::Failure;
use accordo_domain::comuni;
use accordo_domain::dcat::{self, CatalogInput, Format, Publisher, DATASETS};
use accordo_domain::export;
use accordo_domain::model::Date;
use accordo_domain::open_tables::{self, Table};
use accordo_domain::portal::plan_span;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// One dataset on the index page.
pub struct DatasetView {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    /// (label, URL) of each file.
    pub files: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "public/opendata.html")]
struct IndexPage {
    p: PublicChrome,
    licence_url: String,
    licence_name: String,
    datasets: Vec<DatasetView>,
}

pub async fn index(State(portal): State<SharedPortal>, uri: Uri, headers: HeaderMap) -> Response {
    let ctx = match context(&portal, &uri, &headers, "public.open_data", "opendata").await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let lang = ctx.p.lang;
    let datasets = DATASETS
        .iter()
        .map(|d| DatasetView {
            name: d.name,
            title: if lang == Lang::En {
                d.title_en
            } else {
                d.title_it
            },
            description: if lang == Lang::En {
                d.description_en
            } else {
                d.description_it
            },
            files: Format::ALL
                .iter()
                .map(|f| {
                    let file = format!("{}.{}", d.name, f.extension());
                    (file.clone(), format!("/opendata/{file}"))
                })
                .collect(),
        })
        .collect();
    let page = IndexPage {
        licence_url: portal.licence.iri.clone(),
        licence_name: portal.licence.name.clone(),
        datasets,
        p: ctx.p,
    };
    let etag = format!("{}-{}", ctx.snap.key, lang.code());
    cached(&headers, &etag, "text/html; charset=utf-8", || {
        page.render().map(String::into_bytes).map_err(Failure::from)
    })
}

/// The day of the newest change (the catalogue's and datasets' `modified`).
fn modified(snap: &Snapshot) -> Date {
    snap.last_change_ms
        .and_then(|ms| jiff::Timestamp::from_millisecond(ms as i64).ok())
        .and_then(|ts| {
            let d = ts.to_zoned(jiff::tz::TimeZone::UTC).date();
            Date::new(d.year() as u16, d.month() as u8, d.day() as u8)
        })
        .unwrap_or(snap.as_of)
}

async fn catalog_input(
    portal: &SharedPortal,
    headers: &HeaderMap,
    snap: &Snapshot,
) -> CatalogInput {
    let mut spatial: Vec<(String, String)> = snap
        .projects
        .iter()
        .map(|(c, _)| (c.clone(), comuni::name(c).unwrap_or(c).to_owned()))
        .collect();
    spatial.dedup();
    CatalogInput {
        base_url: portal.base_url(headers),
        publisher: Publisher {
            // Invariant: `PortalArgs::check` refused --public without --ipa.
            ipa: portal.args.ipa.clone().unwrap_or_default(),
            name: portal.publisher().await,
        },
        licence: portal.licence.clone(),
        contact_email: portal.args.contact_email.clone(),
        modified: modified(snap),
        temporal: plan_span(&snap.periods),
        spatial,
    }
}

async fn catalog(portal: SharedPortal, headers: HeaderMap, rdf: bool) -> Response {
    let snap = match portal.snapshot().await {
        Ok(s) => s,
        Err(e) => return render::failure(Lang::It, &e),
    };
    let input = catalog_input(&portal, &headers, &snap).await;
    // The links depend on the address asked for (no --public-url).
    let etag = format!(
        "{}-{}",
        snap.key,
        blake3::hash(input.base_url.as_bytes()).to_hex()
    );
    let graph = dcat::catalog(&input);
    if rdf {
        cached(
            &headers,
            &etag[..etag.len().min(120)],
            "application/rdf+xml",
            || graph.to_rdf_xml().map_err(Failure::from),
        )
    } else {
        cached(
            &headers,
            &etag[..etag.len().min(120)],
            "application/ld+json",
            || serde_json::to_vec_pretty(&graph.to_json_ld()).map_err(Failure::from),
        )
    }
}

pub async fn catalog_jsonld(State(portal): State<SharedPortal>, headers: HeaderMap) -> Response {
    catalog(portal, headers, false).await
}

pub async fn catalog_rdf(State(portal): State<SharedPortal>, headers: HeaderMap) -> Response {
    catalog(portal, headers, true).await
}

/// The table `name` of `snap`, if there is one.
fn table(snap: &Snapshot, name: &str) -> Option<Table> {
    Some(match name {
        "progetti" => open_tables::projects(&snap.projects),
        "finanziamenti" => open_tables::funding(&snap.projects),
        "milestone" => open_tables::milestones(&snap.projects, snap.as_of),
        "osservazioni" => open_tables::observations(&snap.catalog, &snap.indicator_data),
        _ => return None,
    })
}

/// `/opendata/NAME.EXT`: a table in a format.
pub async fn file(
    State(portal): State<SharedPortal>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "no such file\n").into_response();
    let Some((name, ext)) = file.rsplit_once('.') else {
        return not_found();
    };
    let Some(format) = Format::from_extension(ext) else {
        return not_found();
    };
    if !DATASETS.iter().any(|d| d.name == name) {
        return not_found();
    }
    let snap = match portal.snapshot().await {
        Ok(s) => s,
        Err(e) => return render::failure(Lang::It, &e),
    };
    let etag = snap.key.clone();
    let content_type = match format {
        Format::Csv => "text/csv; charset=utf-8",
        Format::Json => "application/json",
        Format::Xlsx => format.media_type(),
    };
    let mut response = cached(&headers, &etag, content_type, || {
        snap.file(&file, || file_bytes(&snap, name, format))
    });
    if let Ok(v) = format!("inline; filename=\"{file}\"").parse() {
        response
            .headers_mut()
            .insert(axum::http::header::CONTENT_DISPOSITION, v);
    }
    response
}

/// Table `name` of `snap` in `format`.
fn file_bytes(snap: &Snapshot, name: &str, format: Format) -> Result<Vec<u8>, Failure> {
    {
        let t = table(snap, name).ok_or_else(|| Failure("no such table".into()))?;
        let bytes = match format {
            // The projects' JSON is the export's (nested funding, phases,
            // milestones), the others' an array of rows.
            Format::Json if name == "progetti" => export::json_bytes(&snap.projects),
            Format::Json => t.json(),
            Format::Csv => t.csv(),
            Format::Xlsx => t.xlsx(),
        };
        bytes.map_err(Failure::from)
    }
}
