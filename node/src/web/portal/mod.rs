//! The public portal of a metropolitan node (`run --http ADDR --public`):
//! the citizens' pages under `/pubblico/` and the open data under
//! `/opendata/` with their DCAT-AP_IT catalogue. Without `--public` these
//! paths do not exist (the office router answers 404).
//!
//! The portal has its own router, merged beside the office's and outside
//! its [`super::gate`]: no session, no cookie, no sign-in, even off
//! loopback — office pages keep theirs. Every route is GET (HEAD) only;
//! [`limit`] rate-limits each client address; every answer carries an
//! ETag made of the heads of the data it was computed from and the day,
//! so a client or proxy asking again gets `304 Not Modified` until the data
//! change. Only published projects and indicators are ever read
//! ([`crate::views::public`]); the data are read once per change into a
//! [`snapshot::Snapshot`] held in memory.

mod limit;
mod opendata;
mod pages;
mod snapshot;
mod sustainability_page;

use super::i18n::Lang;
use super::{render, Failure, Shared};
use accordo_domain::dcat::Licence;
use accordo_protocol::identity::Role;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use limit::RequestLimiter;
use snapshot::Snapshot;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

/// The flags of `run` for the public portal (also `[run]` keys of the
/// configuration file: `public`, `ipa`, `publisher`, `licence`, ...).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct PortalArgs {
    /// With --http: also serve the public portal (/pubblico/) and open data
    /// (/opendata/), read-only and without sign-in, even off loopback.
    #[arg(long, requires = "http")]
    pub public: bool,
    /// The publisher's code in the IPA index (for the DCAT-AP_IT catalogue);
    /// required with --public.
    #[arg(long)]
    pub ipa: Option<String>,
    /// The publisher's name in the catalogue and on the pages (default: the
    /// node's name, e.g. "Città metropolitana di Cagliari").
    #[arg(long)]
    pub publisher: Option<String>,
    /// Licence of the open data, as a URL (default CC BY 4.0).
    #[arg(long)]
    pub licence: Option<String>,
    /// The portal's public address (https://...), for the catalogue's
    /// links; default: http:// and the Host the request was sent to.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Contact e-mail of the open data, in the catalogue.
    #[arg(long)]
    pub contact_email: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    #[error("--public needs --ipa CODE: the publisher's code in the IPA index (indicepa.gov.it), which the DCAT-AP_IT catalogue must name")]
    NoIpa,
    #[error("--public-url {0:?} must start with http:// or https://")]
    BadUrl(String),
}

impl PortalArgs {
    /// Checks the flags before the node starts.
    pub fn check(&self) -> Result<(), PortalError> {
        if !self.public {
            return Ok(());
        }
        if self.ipa.as_deref().is_none_or(|i| i.trim().is_empty()) {
            return Err(PortalError::NoIpa);
        }
        if let Some(u) = &self.public_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                return Err(PortalError::BadUrl(u.clone()));
            }
        }
        Ok(())
    }
}

/// What the portal's handlers share.
pub struct Portal {
    app: Shared,
    args: PortalArgs,
    licence: Licence,
    limiter: Mutex<RequestLimiter>,
    held: Mutex<Option<Arc<Snapshot>>>,
    /// The node's name as publisher, read once (settings do not change).
    node_name: OnceLock<String>,
}

type SharedPortal = Arc<Portal>;

impl Portal {
    /// The public data as the store holds them now: the held snapshot if
    /// the heads and the day are unchanged, else read again.
    async fn snapshot(self: &Arc<Self>) -> Result<Arc<Snapshot>, Failure> {
        let as_of = crate::clock::today();
        let portal = Arc::clone(self);
        self.app
            .with_replica(move |r| {
                let key = snapshot::current_key(r, as_of)?;
                // Invariant: poisoned only after a panic while held, a bug.
                let held = portal.held.lock().expect("portal mutex poisoned").clone();
                if let Some(s) = held.filter(|s| s.key == key) {
                    return Ok(s);
                }
                let fresh = snapshot::load(r, as_of)?;
                *portal.held.lock().expect("portal mutex poisoned") = Some(Arc::clone(&fresh));
                Ok(fresh)
            })
            .await
    }

    /// The publisher's name: the flag, else the node's.
    async fn publisher(self: &Arc<Self>) -> String {
        if let Some(p) = &self.args.publisher {
            return p.clone();
        }
        if let Some(name) = self.node_name.get() {
            return name.clone();
        }
        let name = self
            .app
            .with_replica(|r| {
                let code = r.settings.comune.as_str();
                let name = accordo_domain::comuni::name(code).unwrap_or(code);
                Ok(match r.settings.role {
                    Role::Metro => format!("Città metropolitana di {name}"),
                    _ => super::pages::node_label(r).text,
                })
            })
            .await
            .unwrap_or_else(|_| "Accordo".into());
        self.node_name.get_or_init(|| name).clone()
    }

    /// Where the portal is reached, for absolute links.
    fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(u) = &self.args.public_url {
            return u.trim_end_matches('/').to_owned();
        }
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| {
                h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
            })
            .unwrap_or("localhost");
        format!("http://{host}")
    }
}

/// The language of a public page: `?lang=`, else `Accept-Language`, else
/// Italian (no cookie: public answers are the same for everyone).
fn lang_of(query: Option<&str>, headers: &HeaderMap) -> Lang {
    let asked = query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "lang")
            .and_then(|(_, v)| Lang::parse(&v))
    });
    asked.unwrap_or_else(|| {
        Lang::choose(
            None,
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        )
    })
}

/// How long a client or proxy may reuse an answer without asking again
/// (after that it revalidates with the ETag, a 304 when nothing changed):
/// a page may be this much older than the data, which for a citizen's
/// portal is fine, and a burst of visitors costs one render.
const MAX_AGE_S: u32 = 30;

/// A cacheable answer: `304` when the client holds `etag` already, else
/// `body()` with its type, the ETag and Cache-Control.
fn cached<B: Into<axum::body::Bytes>>(
    headers: &HeaderMap,
    etag: &str,
    content_type: &'static str,
    body: impl FnOnce() -> Result<B, Failure>,
) -> Response {
    let tag = format!("\"{etag}\"");
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match body() {
            Ok(bytes) => ([(header::CONTENT_TYPE, content_type)], bytes.into()).into_response(),
            Err(e) => return render::failure(Lang::It, &e),
        }
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&format!("public, max-age={MAX_AGE_S}"))
            .expect("a static header value"),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept-Language"));
    response
}

/// Rate limit per client address, before any handler.
async fn limit(State(portal): State<SharedPortal>, req: Request, next: Next) -> Response {
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    // Invariant: poisoned only after a panic while held, a bug.
    let allowed = portal
        .limiter
        .lock()
        .expect("limiter mutex poisoned")
        .allow(client, Instant::now());
    if !allowed {
        let secs = limit::WINDOW.as_secs().to_string();
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, secs)],
            "too many requests: try again in a minute\n",
        )
            .into_response();
    }
    next.run(req).await
}

/// The portal's routes, all GET, with their own rate limit.
pub fn router(app: Shared, args: PortalArgs) -> Router {
    let licence = args
        .licence
        .as_deref()
        .map(Licence::from_url)
        .unwrap_or_default();
    let portal = Arc::new(Portal {
        app,
        args,
        licence,
        limiter: Mutex::new(RequestLimiter::default()),
        held: Mutex::new(None),
        node_name: OnceLock::new(),
    });
    Router::new()
        .route("/pubblico", get(pages::to_home))
        .route("/pubblico/", get(pages::home))
        .route("/pubblico/stile.css", get(pages::css))
        .route("/pubblico/comuni/{istat}", get(pages::comune))
        .route("/pubblico/zone/{code}", get(pages::zone))
        .route("/pubblico/progetti/{comune}/{id}", get(pages::project))
        .route("/pubblico/indicatori", get(pages::indicators))
        .route(
            "/pubblico/sostenibilita",
            get(sustainability_page::sustainability),
        )
        .route("/pubblico/verifica", get(pages::verification))
        .route("/opendata", get(pages::to_opendata))
        .route("/opendata/", get(opendata::index))
        .route("/opendata/catalog.jsonld", get(opendata::catalog_jsonld))
        .route("/opendata/catalog.rdf", get(opendata::catalog_rdf))
        .route("/opendata/{file}", get(opendata::file))
        .route("/pubblico/{*rest}", get(pages::not_found))
        .layer(middleware::from_fn_with_state(Arc::clone(&portal), limit))
        .with_state(portal)
}
