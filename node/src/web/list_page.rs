//! The project list in the browser: search over CUP and title, filters
//! (comune, zona omogenea, procedural state, PNRR mission, funding source,
//! late milestones), pages of rows — all answered by the query store.

use super::pages::node_label;
use super::render::{self, Chrome};
use super::{Failure, Shared, Visitor};
use crate::clock::today;
use crate::views::search::{self, Choices, Filter, Row};
use accordo_domain::comuni;
use accordo_protocol::codes::Istat;
use accordo_protocol::doc::DocId;
use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;

/// Rows per page of the list.
const PAGE_ROWS: usize = 50;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    q: Option<String>,
    comune: Option<String>,
    zona: Option<String>,
    stato: Option<String>,
    missione: Option<String>,
    fonte: Option<String>,
    ritardo: Option<String>,
    pagina: Option<usize>,
}

fn some(s: &Option<String>) -> Option<String> {
    s.as_ref()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

pub struct ListRow {
    pub href: String,
    pub cup: String,
    pub title: String,
    pub comune: String,
    pub state: String,
    pub financed: String,
    pub paid: String,
    pub late: u32,
}

#[derive(Template)]
#[template(path = "projects.html")]
struct ListPage {
    c: Chrome,
    metro: bool,
    can_add: bool,
    q: String,
    comune: String,
    zona: String,
    stato: String,
    missione: String,
    fonte: String,
    late_only: bool,
    choices: Choices,
    rows: Vec<ListRow>,
    total: String,
    prev: Option<String>,
    next: Option<String>,
}

fn list_row(c: &Chrome, r: &Row) -> ListRow {
    ListRow {
        href: format!("/progetti/{}/{}", r.comune, r.id),
        cup: r.cup.clone().unwrap_or_default(),
        title: r.title.clone(),
        comune: comuni::name(&r.comune).unwrap_or(&r.comune).to_owned(),
        state: r.state.clone(),
        financed: c.lang.eur(r.financed_cents),
        paid: c.lang.eur(r.paid_cents),
        late: r.late_milestones,
    }
}

/// The list's address with another page number.
fn page_link(q: &ListQuery, page: usize) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in [
        ("q", &q.q),
        ("comune", &q.comune),
        ("zona", &q.zona),
        ("stato", &q.stato),
        ("missione", &q.missione),
        ("fonte", &q.fonte),
        ("ritardo", &q.ritardo),
    ] {
        if let Some(v) = some(v) {
            s.append_pair(k, &v);
        }
    }
    s.append_pair("pagina", &page.to_string());
    format!("/progetti?{}", s.finish())
}

pub async fn list(
    State(app): State<Shared>,
    Extension(v): Extension<Visitor>,
    Query(q): Query<ListQuery>,
) -> Response {
    let page = q.pagina.unwrap_or(1).max(1);
    let comune = some(&q.comune);
    let filter_comune = comune.clone();
    let mut filter = Filter {
        text: some(&q.q),
        zone: some(&q.zona),
        state: some(&q.stato),
        mission: some(&q.missione),
        source: some(&q.fonte),
        late_as_of: q
            .ritardo
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|_| today()),
        ..Filter::default()
    };
    let loaded = app
        .with_replica(move |r| {
            let label = node_label(r);
            let metro = crate::client::follows_all(r.settings.role);
            filter.doc = if metro {
                filter_comune
                    .and_then(|c| c.parse::<Istat>().ok())
                    .map(DocId::Comune)
            } else {
                Some(r.own_doc())
            };
            let today = today();
            let (found, choices) = r.query(|tx| {
                Ok((
                    search::search(tx, &filter, &today, (page - 1) * PAGE_ROWS, PAGE_ROWS)?,
                    search::choices(tx)?,
                ))
            })?;
            Ok::<_, Failure>((label, metro, found, choices))
        })
        .await;
    let (label, metro, found, choices) = match loaded {
        Ok(x) => x,
        Err(e) => return render::failure(v.lang, &e),
    };
    let mut c = Chrome::new(&v, label, v.lang.t("page.projects"), "projects");
    c.live = true;
    let rows = found.rows.iter().map(|r| list_row(&c, r)).collect();
    let pages = (found.total as usize).div_ceil(PAGE_ROWS).max(1);
    let page_view = ListPage {
        metro,
        can_add: c.can_edit && !metro,
        q: q.q.clone().unwrap_or_default(),
        comune: comune.unwrap_or_default(),
        zona: q.zona.clone().unwrap_or_default(),
        stato: q.stato.clone().unwrap_or_default(),
        missione: q.missione.clone().unwrap_or_default(),
        fonte: q.fonte.clone().unwrap_or_default(),
        late_only: q.ritardo.as_deref().is_some_and(|s| !s.is_empty()),
        choices,
        rows,
        total: v.lang.count(found.total as usize),
        prev: (page > 1).then(|| page_link(&q, page - 1)),
        next: (page < pages).then(|| page_link(&q, page + 1)),
        c,
    };
    render::page(v.lang, &page_view)
}
