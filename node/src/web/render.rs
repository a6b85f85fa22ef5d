//! Rendering: the frame every page shares ([`Chrome`]: language, who is
//! signed in, the CSRF token, the navigation), error pages, and the
//! stylesheet and script, compiled into the binary.

use super::i18n::Lang;
use super::{Failure, Visitor};
use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};

/// How the header names the node, and whether it is an admin's.
pub struct NodeLabel {
    pub text: String,
    pub admin: bool,
}

impl From<String> for NodeLabel {
    fn from(text: String) -> Self {
        NodeLabel { text, admin: false }
    }
}

/// What the frame of every page needs.
pub struct Chrome {
    pub lang: Lang,
    pub title: String,
    pub csrf: String,
    /// The signed-in person, if any.
    pub user: Option<String>,
    pub can_edit: bool,
    /// The node, as the header names it ("Comune di Quartu Sant'Elena").
    pub node_label: String,
    /// The node is a network admin's (the administration page is there).
    pub admin_node: bool,
    /// The section of the navigation this page belongs to.
    pub nav: &'static str,
    /// The current path and query, percent-encoded, for links that come
    /// back here (the language switch).
    pub here_encoded: String,
    /// The page refreshes itself when the node receives changes.
    pub live: bool,
}

impl Chrome {
    pub fn new(
        v: &Visitor,
        node: impl Into<NodeLabel>,
        title: impl Into<String>,
        nav: &'static str,
    ) -> Self {
        let node = node.into();
        Chrome {
            lang: v.lang,
            title: title.into(),
            csrf: v.session.csrf.clone(),
            user: v.access.person().map(str::to_owned),
            can_edit: v.access.can_edit(),
            node_label: node.text,
            admin_node: node.admin,
            nav,
            here_encoded: form_urlencoded::byte_serialize(v.here.as_bytes()).collect(),
            live: false,
        }
    }

    pub fn t(&self, key: &str) -> &'static str {
        self.lang.t(key)
    }

    /// `aria-current` for the navigation link of `section`.
    pub fn current(&self, section: &str) -> &'static str {
        if self.nav == section {
            "page"
        } else {
            "false"
        }
    }
}

/// A rendered page, or the error page if rendering failed.
pub fn page(lang: Lang, t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => failure(lang, &Failure(e.to_string())),
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    lang: Lang,
    status: u16,
    message: &'a str,
}

/// A minimal page saying what went wrong (no chrome: it may be shown when
/// the store cannot be read).
pub fn error_page(lang: Lang, status: StatusCode, message: &str) -> Response {
    let body = ErrorPage {
        lang,
        status: status.as_u16(),
        message,
    }
    .render()
    .unwrap_or_else(|_| message.to_owned());
    (status, Html(body)).into_response()
}

/// A failure of the node: logged in full, shown as a generic error.
pub fn failure(lang: Lang, e: &Failure) -> Response {
    tracing::error!(error = %e.0, "web request failed");
    error_page(
        lang,
        StatusCode::INTERNAL_SERVER_ERROR,
        lang.t("error.server"),
    )
}

pub async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../static/app.css"),
    )
        .into_response()
}

pub async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../static/app.js"),
    )
        .into_response()
}
