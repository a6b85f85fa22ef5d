//! The read-only JSON API (`/api/v1/`) for integrations such as the metro's
//! open-data portal: the same data as the command line's JSON output.
//!
//! - `/api/v1/projects`: the items of `project list --format json` (every
//!   comune held on a metro node; `?archived=1` includes archived ones);
//! - `/api/v1/report`: `report --format json` (`?as_of=YYYY-MM-DD`,
//!   `?period=`);
//! - `/api/v1/status`: `status --format json`;
//! - `/api/v1/changes`: `{"seq": N}`, the newest change held — pages poll
//!   it to refresh when the node receives changes.

use super::{Failure, Shared, Visitor};
use accordo_domain::indicator;
use accordo_domain::model::Date;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::Extension;
use serde::Deserialize;
use serde_json::{json, Value};

fn answer(r: Result<Result<Value, String>, Failure>) -> Response {
    match r {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(bad)) => (StatusCode::BAD_REQUEST, Json(json!({ "error": bad }))).into_response(),
        Err(e) => {
            tracing::error!(error = %e.0, "api request failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": "node error"})),
            )
                .into_response()
        }
    }
}

#[derive(Deserialize, Default)]
pub struct ProjectsQuery {
    archived: Option<String>,
}

pub async fn projects(
    State(app): State<Shared>,
    Extension(_v): Extension<Visitor>,
    Query(q): Query<ProjectsQuery>,
) -> Response {
    let archived = q.archived.is_some_and(|a| a == "1" || a == "true");
    answer(
        app.with_replica(move |r| {
            let metro = crate::client::follows_all(r.settings.role);
            let own = r.own_doc();
            let listed =
                r.query(|tx| crate::views::projects(tx, (!metro).then_some(&own), archived))?;
            Ok(Ok(Value::Array(crate::ops::listing::project_items(
                &listed,
            ))))
        })
        .await,
    )
}

#[derive(Deserialize, Default)]
pub struct ReportQuery {
    as_of: Option<String>,
    period: Option<String>,
}

pub async fn report(
    State(app): State<Shared>,
    Extension(_v): Extension<Visitor>,
    Query(q): Query<ReportQuery>,
) -> Response {
    let as_of = match q
        .as_of
        .as_deref()
        .map(|s| Date::parse_any("as_of", s))
        .transpose()
    {
        Ok(d) => d.unwrap_or_else(crate::clock::today),
        Err(e) => return answer(Ok(Err(e.to_string()))),
    };
    let period = match q.period.as_deref().map(indicator::parse_period).transpose() {
        Ok(p) => p,
        Err(e) => return answer(Ok(Err(e.to_string()))),
    };
    answer(
        app.with_replica(move |r| {
            let report = crate::ops::output::report(r, as_of, period)?;
            Ok(Ok(serde_json::to_value(report)?))
        })
        .await,
    )
}

pub async fn status(State(app): State<Shared>, Extension(_v): Extension<Visitor>) -> Response {
    answer(
        app.with_replica(|r| Ok(Ok(serde_json::to_value(crate::ops::status::read(r)?)?)))
            .await,
    )
}

pub async fn changes(State(app): State<Shared>, Extension(_v): Extension<Visitor>) -> Response {
    answer(
        app.with_replica(|r| {
            let seq = r.query(crate::views::search::newest_seq)?;
            Ok(Ok(json!({ "seq": seq })))
        })
        .await,
    )
}
