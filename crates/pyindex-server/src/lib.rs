//! The HTTP layer of pyindex: axum routers for the simple API, file downloads and the legacy
//! upload API, plus health. Handlers translate HTTP to calls on
//! [`pyindex_registry::Registry`] and back; the rules live there.

// Helpers return `Result<T, Response>` so that a handler can `?` straight to its answer, the
// axum idiom; boxing the response would only add an allocation to every error path.
#![allow(clippy::result_large_err)]

mod api;
mod auth;
mod cache;
mod cross_site;
mod envelope;
mod files;
mod forwarded;
mod host_check;
mod landing;
pub mod listener;
mod metrics;
mod negotiate;
mod pages;
mod probes;
mod public_url;
mod request_id;
mod response;
mod simple;
pub mod tls;
mod ui;
mod upload;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use http::{StatusCode, header};
use pyindex_registry::{AccessMode, Registry};

/// The log target of the request span and of the line logged per request, so that both can be
/// turned off together (`--request-log off`, or `RUST_LOG=info,pyindex_server::requests=off`).
pub const REQUEST_LOG_TARGET: &str = "pyindex_server::requests";

pub use cache::ResponseCache;
pub use envelope::Envelope;
pub use forwarded::{RequestOrigin, TrustedProxies};
pub use host_check::HostPolicy;
pub use metrics::{Metrics, MetricsAccess};
pub use public_url::PublicUrl;

/// Shared state of every handler. axum clones a route's state for every request (twice), so it
/// is one `Arc`: one atomic count per clone instead of one per field of the registry.
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

/// What [`AppState`] shares; its fields are reached through `Deref` (`app.registry`).
#[derive(Clone)]
pub struct SharedState {
    /// The registry.
    pub registry: Registry,
    /// Rendered index pages and download answers.
    pub cache: Arc<ResponseCache>,
    /// Largest accepted file, in bytes.
    pub max_upload_size: u64,
    /// The address the server listens on, shown in commands when a request names none.
    pub listen: Option<SocketAddr>,
    /// Which `Host` values are answered (see [`AppState::with_host_policy`]).
    pub host_policy: Arc<HostPolicy>,
    /// The URL clients reach the index at (`--public-url`), for redirects and shown commands.
    pub public_url: Option<Arc<PublicUrl>>,
    /// What the server counts for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Who may read `/metrics` (see [`AppState::with_metrics_access`]).
    pub metrics_access: MetricsAccess,
    /// When set, distribution downloads are redirected to a URL of the blob store valid this
    /// long (see [`AppState::with_storage_redirect`]).
    pub storage_redirect: Option<std::time::Duration>,
}

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

impl AppState {
    /// State for a registry with a fresh cache, which the registry keeps up to date.
    pub fn new(registry: Registry, max_upload_size: u64) -> AppState {
        let cache = Arc::new(ResponseCache::default());
        AppState(Arc::new(SharedState {
            registry: registry.with_observer(cache.clone()),
            cache,
            max_upload_size,
            listen: None,
            host_policy: Arc::new(HostPolicy::default()),
            public_url: None,
            metrics: Arc::new(Metrics::default()),
            metrics_access: MetricsAccess::default(),
            storage_redirect: None,
        }))
    }

    /// The shared state, to configure before the state is shared (a copy if it already is).
    fn configure(&mut self) -> &mut SharedState {
        Arc::make_mut(&mut self.0)
    }

    /// The same state, answering a distribution download, once authorized, with a `302` to a
    /// URL of the blob store (an S3 presigned URL) valid for `expires_in`, instead of streaming
    /// the bytes. Metadata files and stores without such URLs are still served directly.
    pub fn with_storage_redirect(mut self, expires_in: std::time::Duration) -> AppState {
        self.configure().storage_redirect = Some(expires_in);
        self
    }

    /// The same state, knowing the address the server listens on.
    pub fn with_listen_address(mut self, listen: SocketAddr) -> AppState {
        self.configure().listen = Some(listen);
        self
    }

    /// The same state answering only the hosts `policy` allows (default: any host).
    pub fn with_host_policy(mut self, policy: HostPolicy) -> AppState {
        self.configure().host_policy = Arc::new(policy);
        self
    }

    /// The same state with redirects and shown addresses on `url`.
    pub fn with_public_url(mut self, url: PublicUrl) -> AppState {
        self.configure().public_url = Some(Arc::new(url));
        self
    }

    /// The same state with `/metrics` readable as `access` says (default: by anyone).
    pub fn with_metrics_access(mut self, access: MetricsAccess) -> AppState {
        self.configure().metrics_access = access;
        self
    }
}

/// `GET /live`: `200 ok` whenever the process serves requests, whatever the database and the
/// storage say. For an orchestrator's liveness and readiness probes when replicas share one
/// database: an outage of that database fails `/ready` and `/health` on every replica at once,
/// and taking them all out of service (or restarting them) would also stop the reads they can
/// still answer from memory.
async fn live() -> Response {
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        "ok\n",
    )
        .into_response()
}

async fn health(State(app): State<AppState>) -> Response {
    match app.registry.catalog_generation().await {
        Ok(_) => (
            StatusCode::OK,
            [(header::CACHE_CONTROL, "no-store")],
            "ok\n",
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "catalog unavailable\n").into_response()
        }
    }
}

/// Anything that is no route: `/<project>/` of an existing project redirects to
/// `/simple/<project>/` (an index URL given without `/simple/`); everything else is 404. The
/// redirect is a 301, like the index's other redirects: only GET and HEAD are redirected, so
/// 308's keeping of the method adds nothing, and every installer and proxy follows 301.
async fn unknown_route(State(app): State<AppState>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    if let Some(response) = simple::redirect_to_simple(&app, &parts).await {
        return response;
    }
    response::not_found(
        "Not found. This server is a Python package index: the index is at /simple/, uploads go to /legacy/.",
    )
}

/// The complete application: the routes inside the per-request envelope (request ids, host
/// check, metrics, request log, panics; see [`envelope`]).
pub fn router(state: AppState) -> Envelope {
    let upload = post(upload::upload)
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(cross_site::refuse_cross_site));
    let mut reads = Router::new()
        .route(
            "/simple/",
            get(simple::root).fallback(simple::not_an_upload_url),
        )
        .route(
            "/simple",
            get(simple::root_redirect).fallback(simple::not_an_upload_url),
        )
        .route("/simple/{project}/", get(simple::project))
        .route("/simple/{project}", get(simple::project_redirect))
        .route("/simple/{project}/{filename}", get(simple::old_file_url))
        .route("/files/{sha256}/{filename}", get(files::download))
        .route(
            "/files/upstream/{project}/{filename}",
            get(files::upstream_download),
        );
    // Only the `all` mode guards reads; the others pay nothing for it.
    if state.registry.access_mode() == AccessMode::All {
        reads = reads.route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_read,
        ));
    }
    let api = Router::new()
        .route(
            "/api/v1/projects/{project}/releases/{version}/yank",
            post(api::yank),
        )
        .route(
            "/api/v1/projects/{project}/releases/{version}/unyank",
            post(api::unyank),
        )
        .route("/api/v1/projects/{project}/status", post(api::set_status))
        .route("/api/v1/projects/{project}/reserve", post(api::reserve))
        .route(
            "/api/v1/upstream/blocks",
            post(api::block).get(api::list_blocks),
        )
        .route(
            "/api/v1/upstream/blocks/{project}",
            delete(api::unblock_project),
        )
        .route(
            "/api/v1/upstream/blocks/{project}/{version}",
            delete(api::unblock_release),
        )
        .route(
            "/api/v1/tokens",
            post(api::create_token).get(api::list_tokens),
        )
        .route("/api/v1/tokens/{id}", delete(api::revoke_token))
        .route_layer(axum::middleware::from_fn(cross_site::refuse_cross_site));
    let app = Router::new()
        .merge(reads)
        .merge(ui::routes())
        .merge(api)
        .route("/", upload.clone())
        .route("/legacy/", upload.clone())
        .route("/legacy", upload)
        .route("/live", get(live))
        .route("/health", get(health))
        .route("/ready", get(probes::ready))
        .route("/metrics", get(metrics::page))
        .fallback(unknown_route)
        .with_state(state.clone())
        // Per route, because it hands the envelope the route template the request matched.
        .layer(metrics::StampRouteLayer);
    Envelope::new(app, state)
}
