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
mod files;
mod negotiate;
mod pages;
mod request_id;
mod response;
mod simple;
mod upload;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use http::{StatusCode, header};
use pyindex_registry::{AccessMode, Registry};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

pub use cache::ResponseCache;

/// How often the server checks the catalog for changes made by other processes.
pub const CATALOG_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Shared state of every handler. axum clones a route's state for every request (twice), so it
/// is one `Arc`: one atomic count per clone instead of one per field of the registry.
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

/// What [`AppState`] shares; its fields are reached through `Deref` (`app.registry`).
pub struct SharedState {
    /// The registry.
    pub registry: Registry,
    /// Rendered index pages and download answers.
    pub cache: Arc<ResponseCache>,
    /// Largest accepted file, in bytes.
    pub max_upload_size: u64,
}

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

impl AppState {
    /// State for a registry with a fresh cache.
    pub fn new(registry: Registry, max_upload_size: u64) -> AppState {
        AppState(Arc::new(SharedState {
            registry,
            cache: Arc::new(ResponseCache::default()),
            max_upload_size,
        }))
    }

    /// Starts the task that refreshes caches when another process changes the catalog: it
    /// polls the catalog's generation every [`CATALOG_POLL_INTERVAL`] and, when it moves, drops
    /// cached pages and remembered password checks.
    pub fn spawn_catalog_watcher(&self) -> tokio::task::JoinHandle<()> {
        let app = self.clone();
        tokio::spawn(async move {
            let mut last = None;
            let mut ticker = tokio::time::interval(CATALOG_POLL_INTERVAL);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match app.registry.catalog().generation().await {
                    Ok(generation) => {
                        // The first successful read also invalidates: pages may have been cached
                        // before it, while the catalog could not be read.
                        if last != Some(generation) {
                            tracing::debug!(generation, "catalog changed; refreshing caches");
                            app.cache.invalidate();
                            app.registry.forget_credentials();
                        }
                        last = Some(generation);
                    }
                    Err(e) => tracing::warn!(error = %e, "could not read the catalog generation"),
                }
            }
        })
    }
}

const LANDING: &str = include_str!("landing.html");

async fn landing() -> Html<&'static str> {
    Html(LANDING)
}

async fn health(State(app): State<AppState>) -> Response {
    match app.registry.catalog().generation().await {
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

async fn unknown_route() -> Response {
    response::not_found(
        "Not found. This server is a Python package index: the index is at /simple/, uploads go to /legacy/.",
    )
}

/// The complete application router.
pub fn router(state: AppState) -> Router {
    let upload = post(upload::upload)
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(cross_site::refuse_cross_site));
    let mut reads = Router::new()
        .route("/", get(landing))
        .route("/simple/", get(simple::root))
        .route("/simple", get(simple::root_redirect))
        .route("/simple/{project}/", get(simple::project))
        .route("/simple/{project}", get(simple::project_redirect))
        .route("/files/{sha256}/{filename}", get(files::download));
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
        .route(
            "/api/v1/tokens",
            post(api::create_token).get(api::list_tokens),
        )
        .route("/api/v1/tokens/{id}", delete(api::revoke_token))
        .route_layer(axum::middleware::from_fn(cross_site::refuse_cross_site));
    let app = Router::new()
        .merge(reads)
        .merge(api)
        .route("/", upload.clone())
        .route("/legacy/", upload.clone())
        .route("/legacy", upload)
        .route("/health", get(health))
        .fallback(unknown_route)
        .with_state(state);
    // The layers wrap the whole router once. `Router::layer` would wrap every route in each
    // layer, and axum then clones and boxes each layer's service and future per request (one
    // allocation and dynamic call per layer), a tenth of a cached page's time. Outermost first:
    // the sensitive-header marking must come before the trace layer sees the request.
    let layered = ServiceBuilder::new()
        .layer(SetRequestIdLayer::x_request_id(
            request_id::MakeCountedRequestId::new(),
        ))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::new())
        .service(app);
    Router::new().fallback_service(layered)
}
