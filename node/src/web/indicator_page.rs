//! Indicators in the browser: each indicator of the plan's catalog with
//! this node's baseline, target and observations as a chart and a table
//! (for the metropolitan office also every comune's latest value), and the
//! form recording an observation through [`crate::ops::indicator`].

use super::chart;
use super::i18n::Lang;
use super::pages::node_label;
use super::render::{self, Chrome};
use super::{Failure, Shared, Visitor};
use crate::ops::OpError;
use accordo_domain::comuni;
use accordo_domain::indicator::{IndicatorData, IndicatorDef};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

pub struct Series {
    pub code: String,
    pub name: String,
    pub unit: String,
    pub chart: String,
    pub baseline: String,
    pub target: String,
    pub rows: Vec<(String, String)>,
    /// Latest value per comune (metro node).
    pub comuni: Vec<(String, String, String)>,
    /// On the public portal (`indicator publish`).
    pub published: bool,
}

#[derive(Template)]
#[template(path = "indicators.html")]
struct IndicatorsPage {
    c: Chrome,
    series: Vec<Series>,
    codes: Vec<(String, String)>,
    error: Option<String>,
    saved: bool,
    /// This node writes the catalog (the metropolitan office): it may
    /// publish indicators.
    catalog_writer: bool,
}

fn series(
    lang: Lang,
    def: &IndicatorDef,
    own: Option<&IndicatorData>,
    all: &crate::views::DocIndicators,
    metro: bool,
) -> Series {
    let name = match lang {
        Lang::En => def.name_en.clone().unwrap_or_else(|| def.name_it.clone()),
        Lang::It => def.name_it.clone(),
    };
    let points: Vec<(String, f64)> = own
        .map(|d| {
            d.observations
                .iter()
                .map(|(p, o)| (p.clone(), o.value))
                .collect()
        })
        .unwrap_or_default();
    let baseline = own.and_then(|d| d.baseline.as_ref());
    let target = own.and_then(|d| d.target.as_ref());
    let svg = chart::trend(
        &format!("{name} ({})", def.unit),
        &points,
        baseline.map(|r| r.value),
        target.map(|r| r.value),
        |v| lang.number(v),
    );
    let reference = |r: Option<&accordo_domain::indicator::Reference>| {
        r.map(|r| format!("{} ({})", lang.number(r.value), r.period))
            .unwrap_or_else(|| "–".into())
    };
    let comuni_rows = if metro {
        all.iter()
            .filter_map(|(doc, data)| {
                let istat = doc.strip_prefix("comune/")?;
                let (period, o) = data.get(&def.code)?.latest()?;
                Some((
                    comuni::name(istat).unwrap_or(istat).to_owned(),
                    period.clone(),
                    lang.number(o.value),
                ))
            })
            .collect()
    } else {
        Vec::new()
    };
    Series {
        code: def.code.clone(),
        name,
        unit: def.unit.clone(),
        chart: svg,
        baseline: reference(baseline),
        target: reference(target),
        rows: points
            .iter()
            .map(|(p, v)| (p.clone(), lang.number(*v)))
            .collect(),
        comuni: comuni_rows,
        published: def.published,
    }
}

async fn show(app: &Shared, v: &Visitor, error: Option<String>, saved: bool) -> Response {
    let loaded = app
        .with_replica(|r| {
            let label = node_label(r);
            let metro = crate::client::follows_all(r.settings.role);
            let writer = r.settings.role == accordo_protocol::identity::Role::Metro;
            let own = crate::ops::indicator::data_doc(r).canonical();
            let (defs, data) = r.query(|tx| {
                Ok((
                    crate::views::catalog_defs(tx)?,
                    crate::views::indicator_data(tx)?,
                ))
            })?;
            Ok::<_, Failure>((label, (metro, writer), own, defs, data))
        })
        .await;
    let (label, (metro, catalog_writer), own, defs, data) = match loaded {
        Ok(x) => x,
        Err(e) => return render::failure(v.lang, &e),
    };
    let mine = data.get(&own);
    let series = defs
        .iter()
        .map(|d| series(v.lang, d, mine.and_then(|m| m.get(&d.code)), &data, metro))
        .collect();
    let codes = defs
        .iter()
        .map(|d| (d.code.clone(), d.name_it.clone()))
        .collect();
    let c = Chrome::new(v, label, v.lang.t("nav.indicators"), "indicators");
    let status_code = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let mut r = render::page(
        v.lang,
        &IndicatorsPage {
            c,
            series,
            codes,
            error,
            saved,
            catalog_writer,
        },
    );
    *r.status_mut() = status_code;
    r
}

#[derive(Deserialize, Default)]
pub struct PageQuery {
    salvato: Option<String>,
}

pub async fn page(
    State(app): State<Shared>,
    Extension(v): Extension<Visitor>,
    axum::extract::Query(q): axum::extract::Query<PageQuery>,
) -> Response {
    show(&app, &v, None, q.salvato.is_some()).await
}

#[derive(Deserialize)]
pub struct ObserveForm {
    code: String,
    period: String,
    value: String,
}

pub async fn observe(
    State(app): State<Shared>,
    Extension(v): Extension<Visitor>,
    Form(f): Form<ObserveForm>,
) -> Response {
    if !v.access.can_edit() {
        return render::error_page(v.lang, StatusCode::FORBIDDEN, v.lang.t("error.forbidden"));
    }
    let author = v.author();
    let done = app
        .with_replica(move |r| {
            Ok::<_, Failure>(crate::ops::indicator::observe(
                r, &f.code, &f.period, &f.value, None, &author,
            ))
        })
        .await;
    match done {
        Ok(Ok(_)) => Redirect::to("/indicatori?salvato=1").into_response(),
        Ok(Err(e))
            if e.is_input()
                || matches!(e, OpError::Replica(crate::replica::ReplicaError::Edit(_))) =>
        {
            show(&app, &v, Some(e.to_string()), false).await
        }
        Ok(Err(e)) => render::failure(v.lang, &Failure(e.to_string())),
        Err(e) => render::failure(v.lang, &e),
    }
}

#[derive(Deserialize)]
pub struct PublishForm {
    code: String,
    /// `1` to publish, `0` to take back to a draft.
    published: String,
}

/// Publishes an indicator on the public portal (or takes it back), through
/// [`crate::ops::indicator::publish`] as `indicator publish` does.
pub async fn publish(
    State(app): State<Shared>,
    Extension(v): Extension<Visitor>,
    Form(f): Form<PublishForm>,
) -> Response {
    if !v.access.can_edit() {
        return render::error_page(v.lang, StatusCode::FORBIDDEN, v.lang.t("error.forbidden"));
    }
    let author = v.author();
    let published = f.published.trim() == "1";
    let done = app
        .with_replica(move |r| {
            Ok::<_, Failure>(crate::ops::indicator::publish(
                r, &f.code, published, &author,
            ))
        })
        .await;
    match done {
        Ok(Ok(_)) => Redirect::to("/indicatori?salvato=1").into_response(),
        Ok(Err(e)) if e.is_input() => show(&app, &v, Some(e.to_string()), false).await,
        Ok(Err(e)) => render::failure(v.lang, &Failure(e.to_string())),
        Err(e) => render::failure(v.lang, &e),
    }
}
