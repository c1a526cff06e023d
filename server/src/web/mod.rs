//! The coordinator's web views: HTML pages for people, a JSON twin of each page for scripts,
//! Prometheus metrics, and the aggregated `Buildinfo.xz` per suite and architecture.
//!
//! Served by axum on a second listener (`debcover serve --http-listen`, default
//! [`crate::config::DEFAULT_HTTP_LISTEN`]), sharing the gRPC server's cancellation token: both
//! stop together, letting requests in flight finish.
//!
//! Every page `/X` has its JSON twin at `/api/X` (same path parameters and query string).
//! Pages are rendered server-side with maud, which escapes every interpolated value; no page
//! needs JavaScript. Lists that grow with a suite are paginated (`?page=N&per_page=M`) and read
//! with indexed queries ([`debcover_core::store::ViewStore`]).
//!
//! *Must not* write to the store or decide campaign or scheduling rules; it only reads and
//! renders (the one rule here is how a build's attempts sum up to a suite status,
//! [`suites::BuildStatus`]).

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use maud::{DOCTYPE, Markup, html};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use debcover_core::store::{CampaignStore, Store, StoreError, ViewStore};

mod buildinfo_index;
mod campaigns;
pub mod metrics;
mod nodes;
mod sources;
mod suites;

pub use buildinfo_index::{IndexError, buildinfo_index};
pub use suites::BuildStatus;

/// Default items per page.
pub const DEFAULT_PER_PAGE: u64 = 100;
/// Most items per page a request may ask for.
pub const MAX_PER_PAGE: u64 = 1000;

/// What every handler shares.
pub struct Web<S> {
    store: Arc<S>,
    /// The data directory (the content-addressed store lives under it).
    data_dir: PathBuf,
    /// Suite pages' counts and history, reused while the suite's data is unchanged.
    summaries: suites::SummaryCache,
}

type St<S> = axum::extract::State<Arc<Web<S>>>;

/// The router of every page, its JSON twin, `/metrics`, `/cas/...` and `/dists/...`.
pub fn router<S: Store>(store: Arc<S>, data_dir: PathBuf) -> Router {
    let state = Arc::new(Web { store, data_dir, summaries: suites::SummaryCache::default() });
    Router::new()
        .route("/", get(index))
        .route("/api", get(api_index))
        .route("/campaigns", get(campaigns::list::<S, false>))
        .route("/api/campaigns", get(campaigns::list::<S, true>))
        .route("/campaigns/{id}", get(campaigns::page::<S, false>))
        .route("/api/campaigns/{id}", get(campaigns::page::<S, true>))
        .route("/campaigns/{id}/export", get(campaigns::export::<S>))
        .route("/suites/{suite}", get(suites::page::<S, false>))
        .route("/api/suites/{suite}", get(suites::page::<S, true>))
        .route("/api/suites/{suite}/status", get(suites::status::<S>))
        .route("/source/{name}", get(sources::page::<S, false>))
        .route("/api/source/{name}", get(sources::page::<S, true>))
        .route("/source/{name}/{sha256}/built-against", get(sources::built_against::<S, false>))
        .route("/api/source/{name}/{sha256}/built-against", get(sources::built_against::<S, true>))
        .route("/cas/attestations/{sha256}", get(sources::attestation::<S>))
        .route("/nodes", get(nodes::page::<S, false>))
        .route("/api/nodes", get(nodes::page::<S, true>))
        .route("/dists/{suite}/{arch}/Buildinfo.xz", get(buildinfo_index::handler::<S>))
        .route("/metrics", get(metrics::handler::<S>))
        .fallback(|| async { WebError::not_found("no such page") })
        .with_state(state)
}

/// Serve the web views on `listener` until `shutdown` is cancelled; requests in flight finish.
/// With closed reads (`Settings::closed_reads`) every request needs a valid credential
/// (`Authorization: Bearer TOKEN`), else 401.
pub async fn serve<S: Store>(
    listener: TcpListener,
    c: Arc<crate::Coordinator<S>>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut app = router(c.store.clone(), c.settings.data_dir.clone());
    if c.settings.closed_reads {
        app = app.layer(axum::middleware::from_fn_with_state(c, gate::<S>));
    }
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_WEB_REQUESTS));
    app = app.layer(axum::middleware::from_fn(move |request: axum::extract::Request, next: axum::middleware::Next| {
        let slots = slots.clone();
        async move { bounded(slots, request, next).await }
    }));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

/// Requests the web views serve at once; more are answered 503 at once rather than queued.
const MAX_WEB_REQUESTS: usize = 64;

/// The longest one web request may take (a large Buildinfo.xz included).
const WEB_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// Every request: a slot among [`MAX_WEB_REQUESTS`] and at most [`WEB_DEADLINE`], so scrapers
/// and slow clients cannot take the coordinator's memory or its database connections.
async fn bounded(slots: Arc<tokio::sync::Semaphore>, request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let Ok(_slot) = slots.try_acquire_owned() else {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "too many requests at once; retry shortly\n").into_response();
    };
    match tokio::time::timeout(WEB_DEADLINE, next.run(request)).await {
        Ok(r) => r,
        Err(_) => (axum::http::StatusCode::GATEWAY_TIMEOUT, "the request took too long and was stopped\n").into_response(),
    }
}

/// Closed reads: the request must carry a credential the coordinator knows (any role).
async fn gate<S: Store>(
    axum::extract::State(c): axum::extract::State<Arc<crate::Coordinator<S>>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let token = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned());
    let allowed = match token {
        Some(t) => crate::ops::access::identify(&c, &t).await.is_ok(),
        None => false,
    };
    if allowed {
        next.run(request).await
    } else {
        WebError {
            status: StatusCode::UNAUTHORIZED,
            message: "this coordinator's reads are closed: send `Authorization: Bearer TOKEN`"
                .to_owned(),
        }
        .into_response()
    }
}

/// A failed request: its status and a message naming what was wrong.
#[derive(Debug)]
pub struct WebError {
    status: StatusCode,
    message: String,
}

impl WebError {
    fn not_found(what: impl Into<String>) -> Self {
        WebError { status: StatusCode::NOT_FOUND, message: what.into() }
    }

    fn bad_request(what: impl Into<String>) -> Self {
        WebError { status: StatusCode::BAD_REQUEST, message: what.into() }
    }
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "web view: storage failed");
        WebError { status: StatusCode::INTERNAL_SERVER_ERROR, message: e.to_string() }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let body = layout("error", html! { h1 { (self.status) } p.error { (self.message) } });
        (self.status, Html(body.into_string())).into_response()
    }
}

type WebResult = Result<Response, WebError>;

/// A page's data rendered as JSON (`JSON`) or as its HTML page.
fn respond<T: Serialize>(json: bool, data: &T, html: impl FnOnce(&T) -> Markup) -> WebResult {
    if json {
        let body = serde_json::to_vec(data)
            .map_err(|e| WebError { status: StatusCode::INTERNAL_SERVER_ERROR, message: e.to_string() })?;
        Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response())
    } else {
        Ok(Html(html(data).into_string()).into_response())
    }
}

/// `?page=N&per_page=M` (pages from 1).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct PageQuery {
    page: Option<u64>,
    per_page: Option<u64>,
}

/// Where a page of a list stands, as rendered in JSON answers.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct PageInfo {
    /// This page, from 1.
    pub page: u64,
    /// Items per page.
    pub per_page: u64,
    /// Items in the whole list.
    pub total: u64,
}

impl PageQuery {
    /// The page asked for, with the limits applied, for a list of `total` items.
    fn resolve(self, total: u64) -> PageInfo {
        let per_page = self.per_page.unwrap_or(DEFAULT_PER_PAGE).clamp(1, MAX_PER_PAGE);
        PageInfo { page: self.page.unwrap_or(1).max(1), per_page, total }
    }
}

impl PageInfo {
    /// Index of the first item of the page.
    fn offset(self) -> u64 {
        (self.page - 1).saturating_mul(self.per_page)
    }

    /// Pages in the list (at least 1).
    fn pages(self) -> u64 {
        self.total.div_ceil(self.per_page).max(1)
    }

    /// Previous/next links for a page at `base`.
    fn nav(self, base: &str) -> Markup {
        let link = |p: u64| format!("{base}?page={p}&per_page={}", self.per_page);
        html! {
            p.pages {
                "Page " (self.page) " of " (self.pages()) " (" (self.total) " in all) "
                @if self.page > 1 { a rel="prev" href=(link(self.page - 1)) { "← previous" } " " }
                @if self.page < self.pages() { a rel="next" href=(link(self.page + 1)) { "next →" } }
            }
        }
    }
}

/// A path segment with everything but RFC 3986's unreserved characters percent-encoded.
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// UTC date and time of unix seconds, for display.
fn when(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0).map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_default()
}

/// Seconds since the epoch, now.
fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222;max-width:80em}\
table{border-collapse:collapse;margin:0.5em 0 1em}th,td{border:1px solid #bbb;padding:0.2em 0.5em;\
text-align:left;vertical-align:top}th{background:#eee}td.n{text-align:right}nav a{margin-right:1em}\
.error{color:#a00}code{font-family:monospace,monospace;font-size:0.95em}.state{font-weight:bold}.muted{color:#666}";

/// The page frame: title, navigation, body.
fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — debcover" }
                style { (STYLE) }
            }
            body {
                nav { a href="/" { "debcover" } a href="/campaigns" { "Campaigns" } a href="/nodes" { "Nodes" }
                      a href="/metrics" { "Metrics" } }
                (body)
            }
        }
    }
}

/// The pages a suite has, for the index.
#[derive(Serialize)]
struct IndexData {
    campaigns: String,
    nodes: String,
    suites: Vec<String>,
    metrics: String,
}

async fn index_data<S: ViewStore + CampaignStore>(web: &Web<S>) -> Result<IndexData, WebError> {
    let suites = web.store.suites().await?;
    Ok(IndexData { campaigns: "/campaigns".into(), nodes: "/nodes".into(), suites, metrics: "/metrics".into() })
}

async fn index<S: ViewStore + CampaignStore>(axum::extract::State(web): St<S>) -> WebResult {
    let data = index_data(&web).await?;
    respond(false, &data, |d| {
        layout(
            "debcover",
            html! {
                h1 { "debcover" }
                p { "Proof that security fixes in statically linked libraries shipped." }
                ul {
                    li { a href="/campaigns" { "Campaigns" } " — one library fix each: waves, items, exports" }
                    li { a href="/nodes" { "Rebuilder nodes" } " — operators, last seen, throughput" }
                    li { a href="/metrics" { "Prometheus metrics" } }
                }
                h2 { "Suites" }
                @if d.suites.is_empty() { p.muted { "No Packages index imported yet." } }
                ul {
                    @for s in &d.suites {
                        li { a href={ "/suites/" (seg(s)) } { (s) } " — "
                             a href={ "/api/suites/" (seg(s)) "/status" } { "status list (JSON)" } }
                    }
                }
                p.muted { "Every page has a JSON twin under /api (e.g. /api/campaigns)." }
            },
        )
    })
}

async fn api_index<S: ViewStore + CampaignStore>(axum::extract::State(web): St<S>) -> WebResult {
    let data = index_data(&web).await?;
    respond(true, &data, |_| html! {})
}
