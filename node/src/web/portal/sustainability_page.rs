//! `/pubblico/sostenibilita`: the sustainability report over the published
//! data (published indicators' deviations from their baseline, judged by
//! polarity; the objectives' published projects; the office's texts), for
//! the years asked (`?da=2024&a=2026`, default the plan's periods).

use super::pages::{context, page, PublicChrome};
use super::snapshot::Snapshot;
use super::SharedPortal;
use accordo_domain::comuni;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use std::sync::Arc;

/// One indicator's line of the sustainability page.
pub struct DeviationLine {
    pub name: String,
    pub territory: String,
    pub baseline: String,
    pub latest: String,
    pub deviation: String,
    pub judgement: &'static str,
}

pub struct DimensionView {
    pub key: String,
    pub title: &'static str,
    pub text: Option<String>,
    pub rows: Vec<DeviationLine>,
}

pub struct ObjectiveView {
    pub code: String,
    pub name: String,
    pub text: Option<String>,
    /// (link, title) of each project.
    pub projects: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "public/sustainability.html")]
struct SustainabilityPage {
    p: PublicChrome,
    from: u16,
    to: u16,
    intro: Option<String>,
    sections: Vec<DimensionView>,
    objectives: Vec<ObjectiveView>,
}

/// The years of the sustainability page: `?da=&a=`, else the plan's
/// periods, else the last three years.
fn years(query: Option<&str>, snap: &Snapshot) -> (u16, u16) {
    let asked = |name: &str| {
        query.and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.trim().parse::<u16>().ok())
                .filter(|y| (1900..=2200).contains(y))
        })
    };
    let (from, to) = accordo_domain::portal::plan_span(&snap.periods)
        .map(|(a, b)| (a.year, b.year))
        .unwrap_or((snap.as_of.year.saturating_sub(2), snap.as_of.year));
    let (from, to) = (asked("da").unwrap_or(from), asked("a").unwrap_or(to));
    (from.min(to), from.max(to))
}

pub async fn sustainability(
    State(portal): State<SharedPortal>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    use accordo_domain::sustainability::{Judgement, Value};
    let ctx = match context(
        &portal,
        &uri,
        &headers,
        "public.sustainability",
        "sustainability",
    )
    .await
    {
        Ok(c) => c,
        Err(r) => return r,
    };
    let (lang, q) = (ctx.p.lang, ctx.p.lang_query.clone());
    let snap = Arc::clone(&ctx.snap);
    let (from, to) = years(uri.query(), &snap);
    let r = snap.sustainability(from, to);
    let value = |v: &Option<Value>| {
        v.as_ref()
            .map(|v| format!("{} ({})", lang.number(v.value), v.period))
            .unwrap_or_else(|| "–".into())
    };
    let sections = r
        .dimensions
        .iter()
        .map(|d| DimensionView {
            title: lang.t(&format!("public.dim.{}", d.dimension)),
            key: d.dimension.clone(),
            text: d.text.clone(),
            rows: d
                .indicators
                .iter()
                .map(|i| DeviationLine {
                    name: format!("{} ({})", i.name, i.unit),
                    territory: if i.territory == "metro" {
                        lang.t("public.metro").to_owned()
                    } else {
                        comuni::label(&i.territory)
                    },
                    baseline: value(&i.baseline),
                    latest: value(&i.latest),
                    deviation: i
                        .deviation
                        .map(|d| lang.number(d))
                        .unwrap_or_else(|| "–".into()),
                    judgement: lang.t(match i.judgement {
                        Judgement::Positive => "public.judgement.positive",
                        Judgement::Negative => "public.judgement.negative",
                        Judgement::Stable => "public.judgement.stable",
                        Judgement::Neutral => "public.judgement.neutral",
                        Judgement::Unknown => "public.judgement.unknown",
                    }),
                })
                .collect(),
        })
        .collect();
    let objectives = r
        .objectives
        .iter()
        .map(|o| ObjectiveView {
            code: o.code.clone(),
            name: o.name.clone(),
            text: o.text.clone(),
            projects: o
                .projects
                .iter()
                .map(|p| {
                    (
                        format!("/pubblico/progetti/{}/{}{q}", p.comune, p.project_id),
                        p.title.clone(),
                    )
                })
                .collect(),
        })
        .collect();
    let data = SustainabilityPage {
        p: ctx.p,
        from,
        to,
        intro: r.intro.clone(),
        sections,
        objectives,
    };
    page(&format!("{}-{from}-{to}", snap.key), lang, &headers, &data)
}
