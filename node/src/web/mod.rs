//! The node's web application (`accordo run --http ADDR`): server-rendered
//! pages in Italian (English on request) for the comune's office and the
//! metropolitan office, and a read-only JSON API under `/api/v1/`.
//!
//! One seam to the node: pages read the query store ([`crate::views`]) and
//! edit through [`crate::ops`], the operations the command line calls —
//! there is no second implementation of an edit. Store work runs on the
//! blocking pool, on the web application's own [`Replica`] (its own SQLite
//! connection and actor, like any other process on the directory).
//!
//! Requests pass [`gate`] first: it finds or makes the session, picks the
//! language, refuses a state-changing request without the session's CSRF
//! token, and sends a visitor who must sign in to `/accesso`.

mod admin_page;
mod api;
mod audit_page;
pub mod auth;
mod chart;
pub mod i18n;
mod import_page;
mod indicator_page;
mod list_page;
mod pages;
pub mod portal;
mod project_pages;
mod render;
mod report_page;

use crate::replica::{Replica, ReplicaError};
use crate::users::{self, UserError};
use auth::{Access, LoginLimiter, Session, Sessions, SESSION_COOKIE};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use i18n::{Lang, LANG_COOKIE};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Largest request body accepted: an uploaded import file (a comune's
/// portfolio as CSV/XLSX is well under this; a national extract is not for
/// the browser — `accordo import` streams it).
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("refusing to serve the web application on {0} without accounts: anyone reaching it could edit. Add one with `accordo --dir DIR user add --name NAME --password-stdin`, or listen on 127.0.0.1")]
    NoAccounts(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("web server: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    #[error(transparent)]
    Users(#[from] UserError),
}

/// What every handler shares.
pub struct App {
    /// Under `accordo run`, shared with the control socket's edits
    /// (`cli/served`), its documents kept loaded (`doc_cache`).
    replica: Arc<Mutex<Replica>>,
    sessions: Mutex<Sessions>,
    limiter: Mutex<LoginLimiter>,
    uploads: Mutex<import_page::Uploads>,
    /// Listening off loopback: the office pages are open without accounts
    /// only on loopback; off it, with no account yet (a public-only
    /// portal), they answer 403 until one is added.
    exposed: bool,
}

pub type Shared = Arc<App>;

/// Store work failed; the page says so without details a visitor should
/// not see (they go to the log).
#[derive(Debug)]
pub struct Failure(String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

impl App {
    /// Runs `f` on the web application's replica, off the async threads.
    pub async fn with_replica<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Replica) -> Result<T, Failure> + Send + 'static,
    ) -> Result<T, Failure> {
        let app = Arc::clone(self);
        accordo_store::offload(move || {
            // Invariant: poisoned only if a store call panicked, a bug.
            let mut r = app.replica.lock().expect("web replica mutex poisoned");
            f(&mut r)
        })
        .await
        .map_err(Failure::from)?
    }
}

/// Who asks, in which language, with which session: put in the request's
/// extensions by [`gate`].
#[derive(Debug, Clone)]
pub struct Visitor {
    pub lang: Lang,
    pub session_id: String,
    pub session: Session,
    pub access: Access,
    pub client: IpAddr,
    /// The path and query asked for (to come back after signing in or
    /// switching language).
    pub here: String,
}

impl Visitor {
    pub fn author(&self) -> crate::ops::Author {
        crate::ops::Author(self.access.person().map(str::to_owned))
    }
}

fn cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The CSRF token of a POST: `csrf` in the query string (multipart forms
/// put it in their action) or in the url-encoded body.
fn query_param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Paths a visitor reaches without signing in.
fn is_public(path: &str) -> bool {
    path == "/accesso" || path.starts_with("/static/") || path.starts_with("/lingua/")
}

pub fn session_cookie(id: &str) -> HeaderValue {
    // Invariant: a hex id is a valid header value.
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict"
    ))
    .expect("a hex session id is a valid cookie")
}

/// Sessions, language, CSRF and sign-in, before any handler.
async fn gate(State(app): State<Shared>, mut req: Request, next: Next) -> Response {
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let lang = Lang::choose(
        cookie(&req, LANG_COOKIE),
        req.headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    if req.uri().path().starts_with("/api/") {
        if let Some(token) = bearer(&req) {
            return api_with_token(app, req, next, token, lang, client).await;
        }
    }
    let given_id = cookie(&req, SESSION_COOKIE).map(str::to_owned);
    let (session_id, session) = {
        // Invariant: poisoned only after a panic while held, a bug.
        let mut sessions = app.sessions.lock().expect("sessions mutex poisoned");
        sessions.get_or_create(given_id.as_deref(), Instant::now())
    };
    let new_session = given_id.as_deref() != Some(session_id.as_str());
    let name = session.user.as_ref().map(|u| u.name.clone());
    let counted = app
        .with_replica(move |r| {
            users::count_and_role(&mut r.store, name.as_deref()).map_err(Failure::from)
        })
        .await;
    let (accounts, role_now) = match counted {
        Ok(x) => x,
        Err(e) => return render::failure(lang, &e),
    };
    let path = req.uri().path().to_owned();
    if accounts == 0 && app.exposed && !is_public(&path) {
        return office_closed(lang, &path);
    }
    let access = match (&session.user, accounts, role_now) {
        (_, 0, _) => Access::Open,
        (Some(u), _, Some(role)) => Access::SignedIn(users::User {
            name: u.name.clone(),
            role,
        }),
        _ => Access::Anonymous,
    };
    let here = path_and_query(&req);
    let visitor = Visitor {
        lang,
        session_id: session_id.clone(),
        session,
        access,
        client,
        here,
    };
    let mut response = if !visitor.access.can_read() && !is_public(&path) {
        if path.starts_with("/api/") {
            (StatusCode::UNAUTHORIZED, "sign in first\n").into_response()
        } else {
            let to = format!(
                "/accesso?next={}",
                form_urlencoded::byte_serialize(visitor.here.as_bytes()).collect::<String>()
            );
            Redirect::to(&to).into_response()
        }
    } else if req.method() == Method::POST {
        match csrf_checked(req, &visitor).await {
            Ok(mut checked) => {
                checked.extensions_mut().insert(visitor.clone());
                next.run(checked).await
            }
            Err(refused) => refused,
        }
    } else {
        req.extensions_mut().insert(visitor.clone());
        next.run(req).await
    };
    if new_session {
        response
            .headers_mut()
            .append(header::SET_COOKIE, session_cookie(&session_id));
    }
    response
}

/// The path and query asked for.
fn path_and_query(req: &Request) -> String {
    req.uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into())
}

/// The token of an `Authorization: Bearer TOKEN` header.
fn bearer(req: &Request) -> Option<String> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// An API request carrying a token ([`crate::api_tokens`]): read-only
/// access if the token is this node's, else 401. No session is made.
async fn api_with_token(
    app: Shared,
    mut req: Request,
    next: Next,
    token: String,
    lang: Lang,
    client: IpAddr,
) -> Response {
    let checked = app
        .with_replica(move |r| {
            crate::api_tokens::check(&mut r.store, &token).map_err(Failure::from)
        })
        .await;
    let name = match checked {
        Ok(Some(name)) => name,
        Ok(None) => {
            return (StatusCode::UNAUTHORIZED, "invalid API token\n").into_response();
        }
        Err(e) => return render::failure(lang, &e),
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return (StatusCode::METHOD_NOT_ALLOWED, "API tokens only read\n").into_response();
    }
    let visitor = Visitor {
        lang,
        here: path_and_query(&req),
        session_id: String::new(),
        session: Session::detached(Instant::now()),
        access: Access::Token(name),
        client,
    };
    req.extensions_mut().insert(visitor);
    next.run(req).await
}

/// The request again if its CSRF token is the session's, else the refusal.
async fn csrf_checked(req: Request, visitor: &Visitor) -> Result<Request, Response> {
    let expected = visitor.session.csrf.clone();
    let refuse = || {
        render::error_page(
            visitor.lang,
            StatusCode::FORBIDDEN,
            visitor.lang.t("error.csrf"),
        )
    };
    if let Some(q) = req.uri().query() {
        if let Some(token) = query_param(q, "csrf") {
            return if auth::csrf_matches(&expected, Some(&token)) {
                Ok(req)
            } else {
                Err(refuse())
            };
        }
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(refuse());
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return Err((StatusCode::PAYLOAD_TOO_LARGE, "request too large\n").into_response())
        }
    };
    let token = form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned());
    if !auth::csrf_matches(&expected, token.as_deref()) {
        return Err(refuse());
    }
    Ok(Request::from_parts(parts, axum::body::Body::from(bytes)))
}

/// The office's routes behind [`gate`], and with `--public` the portal's
/// beside them (outside the gate: no session, no sign-in).
fn router(app: Shared, public: Option<&portal::PortalArgs>) -> Router {
    let office = office_router(Arc::clone(&app));
    match public {
        Some(args) if args.public => portal::router(app, args.clone()).merge(office),
        _ => office,
    }
}

fn office_router(app: Shared) -> Router {
    Router::new()
        .route("/", get(pages::dashboard))
        .route("/accesso", get(pages::login_form).post(pages::login))
        .route("/esci", post(pages::logout))
        .route("/lingua/{lang}", get(pages::switch_language))
        .route("/progetti", get(list_page::list))
        .route(
            "/progetti/nuovo",
            get(project_pages::new_form).post(project_pages::create),
        )
        .route(
            "/progetti/{comune}/{id}",
            get(project_pages::show).post(project_pages::update),
        )
        .route(
            "/progetti/{comune}/{id}/finanziamenti",
            post(project_pages::add_funding),
        )
        .route(
            "/progetti/{comune}/{id}/milestone",
            post(project_pages::add_milestone),
        )
        .route(
            "/progetti/{comune}/{id}/pubblica",
            post(project_pages::publish),
        )
        .route(
            "/progetti/{comune}/{id}/pubblicazione",
            post(project_pages::decide),
        )
        .route(
            "/progetti/{comune}/{id}/scegli",
            post(project_pages::choose),
        )
        .route("/progetti/{comune}/{id}/modifiche", get(audit_page::audit))
        .route(
            "/progetti/{comune}/{id}/fasi",
            post(project_pages::set_phase),
        )
        .route("/amministrazione", get(admin_page::page))
        .route("/amministrazione/iscrivi", post(admin_page::enroll))
        .route("/amministrazione/invito", post(admin_page::invite))
        .route("/amministrazione/relay", post(admin_page::add_relay))
        .route("/amministrazione/revoca", post(admin_page::revoke))
        .route("/importa", get(import_page::form).post(import_page::check))
        .route("/importa/conferma", post(import_page::confirm))
        .route("/indicatori", get(indicator_page::page))
        .route("/indicatori/osserva", post(indicator_page::observe))
        .route("/indicatori/pubblica", post(indicator_page::publish))
        .route("/rapporto", get(report_page::page))
        .route("/rapporto/{file}", get(report_page::file))
        .route("/esporta/{file}", get(report_page::export))
        .route("/api/v1/projects", get(api::projects))
        .route("/api/v1/report", get(api::report))
        .route("/api/v1/status", get(api::status))
        .route("/api/v1/changes", get(api::changes))
        .route("/static/app.css", get(render::css))
        .route("/static/app.js", get(render::js))
        .fallback(pages::not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&app), gate))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app)
}

/// Off loopback with no account yet (only with `--public`): the office's
/// pages are closed — `/` leads to the portal, every other office path
/// answers 403 saying how to open them — so a public portal can be served
/// before any office account exists, and nobody can edit through it.
fn office_closed(lang: Lang, path: &str) -> Response {
    if path == "/" {
        return Redirect::to("/pubblico/").into_response();
    }
    if path.starts_with("/api/") {
        return (StatusCode::FORBIDDEN, "no accounts on this node yet\n").into_response();
    }
    render::error_page(lang, StatusCode::FORBIDDEN, lang.t("error.office_closed"))
}

/// Checks that the web application may be served on `addr`: off loopback,
/// only with accounts — or, with `public` (`--public`), as the public
/// portal alone until an account exists (the office pages answer 403).
/// Returns whether the office pages are closed for now.
pub fn check_exposure(dir: &Path, addr: SocketAddr, public: bool) -> Result<bool, WebError> {
    if addr.ip().is_loopback() {
        return Ok(false);
    }
    let mut replica = Replica::open(dir)?;
    if users::count_and_role(&mut replica.store, None)?.0 == 0 {
        if public {
            return Ok(true);
        }
        return Err(WebError::NoAccounts(addr));
    }
    Ok(false)
}

/// Binds the listener for `addr`, after [`check_exposure`].
pub async fn bind(
    dir: &Path,
    addr: SocketAddr,
    public: bool,
) -> Result<tokio::net::TcpListener, WebError> {
    check_exposure(dir, addr, public)?;
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| WebError::Bind { addr, source })
}

/// Serves the web application on `listener` until `shutdown`.
pub async fn serve(
    dir: &Path,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> Result<(), WebError> {
    serve_with(dir, listener, shutdown, None).await
}

/// [`serve`], with the public portal when `public` says so (`--public`).
pub async fn serve_with(
    dir: &Path,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
    public: Option<&portal::PortalArgs>,
) -> Result<(), WebError> {
    let replica = Arc::new(Mutex::new(Replica::open(dir)?));
    serve_shared(replica, listener, shutdown, public).await
}

/// [`serve_with`] on a replica shared with other parts of the process
/// (`accordo run`'s control socket edits through the same one).
pub async fn serve_shared(
    replica: Arc<Mutex<Replica>>,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
    public: Option<&portal::PortalArgs>,
) -> Result<(), WebError> {
    let app = Arc::new(App {
        replica,
        sessions: Mutex::new(Sessions::default()),
        limiter: Mutex::new(LoginLimiter::default()),
        uploads: Mutex::new(import_page::Uploads::default()),
        exposed: listener
            .local_addr()
            .map_or(true, |a| !a.ip().is_loopback()),
    });
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "web application listening");
    }
    axum::serve(
        listener,
        router(app, public).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await
    .map_err(WebError::Serve)
}
