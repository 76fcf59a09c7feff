//! The HTTP layer of pyindex: axum routers for the simple API, file downloads and the legacy
//! upload API, plus health. Handlers translate HTTP to calls on
//! [`pyindex_registry::Registry`] and back; the rules live there.

mod cache;
mod files;
mod negotiate;
mod pages;
mod response;
mod simple;
mod upload;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use http::{StatusCode, header};
use pyindex_registry::Registry;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;

pub use cache::PageCache;

/// How often the server checks the catalog for changes made by other processes.
pub const CATALOG_POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The registry.
    pub registry: Registry,
    /// Cached pages and file records.
    pub pages: Arc<PageCache>,
    /// Largest accepted file, in bytes.
    pub max_upload_size: u64,
}

impl AppState {
    /// State for a registry with a fresh cache.
    pub fn new(registry: Registry, max_upload_size: u64) -> AppState {
        AppState {
            registry,
            pages: Arc::new(PageCache::default()),
            max_upload_size,
        }
    }

    /// Starts the task that refreshes caches when another process changes the catalog.
    pub fn spawn_catalog_watcher(&self) -> tokio::task::JoinHandle<()> {
        let pages = self.pages.clone();
        let catalog = self.registry.catalog().clone();
        tokio::spawn(pages.watch(catalog, CATALOG_POLL_INTERVAL))
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

/// The complete application router.
pub fn router(state: AppState) -> Router {
    let upload = post(upload::upload).layer(DefaultBodyLimit::disable());
    Router::new()
        .route("/", get(landing).merge(upload.clone()))
        .route("/legacy/", upload.clone())
        .route("/legacy", upload)
        .route("/simple/", get(simple::root))
        .route("/simple", get(simple::root_redirect))
        .route("/simple/{project}/", get(simple::project))
        .route("/simple/{project}", get(simple::project_redirect))
        .route("/files/{sha256}/{filename}", get(files::download))
        .route("/health", get(health))
        .with_state(state)
        .layer(CatchPanicLayer::new())
        .layer(TraceLayer::new_for_http())
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}
