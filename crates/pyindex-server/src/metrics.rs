//! Prometheus metrics: what the server counts, the layer that counts requests, and the
//! `/metrics` page with its guard.
//!
//! Recording costs a few atomic operations and up to three read-locked hash lookups per request:
//! the route label is the matched route template shared with the router (an `Arc` clone, no
//! allocation) or a static string, the other labels are static strings and numbers. The index
//! pages and downloads, by far the most requested, skip the lookups: their handles are kept once
//! resolved ([`DirectHandles`]). The envelope ([`crate::envelope`]) records each request.

use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::{MatchedPath, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use pyindex_registry::{RegistryError, Rejection};

use crate::AppState;
use crate::auth::{ClientAddress, credentials};
use crate::response::{internal_error, not_found, registry_error};

/// Who may read `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetricsAccess {
    /// Anyone who reaches the server.
    #[default]
    Public,
    /// Admins only (a password or token of an admin account).
    Private,
    /// `/metrics` answers 404.
    Off,
}

impl FromStr for MetricsAccess {
    type Err = String;

    fn from_str(s: &str) -> Result<MetricsAccess, String> {
        match s {
            "public" => Ok(MetricsAccess::Public),
            "private" => Ok(MetricsAccess::Private),
            "off" => Ok(MetricsAccess::Off),
            other => Err(format!(
                "unknown metrics setting '{other}': use public, private or off"
            )),
        }
    }
}

impl std::fmt::Display for MetricsAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MetricsAccess::Public => "public",
            MetricsAccess::Private => "private",
            MetricsAccess::Off => "off",
        })
    }
}

/// Upper bounds of the latency buckets, in seconds: from a cached page to a large upload.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    120.0,
];

/// The route template a request matched (`/simple/{project}/`), or `unmatched`.
#[derive(Debug, Clone)]
pub(crate) enum Route {
    /// As the router matched it.
    Matched(MatchedPath),
    /// Known without the router (the envelope's index pages and downloads).
    Direct(DirectRoute),
    /// No route: the fallback answered.
    Unmatched,
}

impl Route {
    fn as_str(&self) -> &str {
        match self {
            Route::Matched(path) => path.as_str(),
            Route::Direct(route) => route.template(),
            Route::Unmatched => "unmatched",
        }
    }
}

/// The routes the envelope answers without the router: index pages and downloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DirectRoute {
    /// `/simple/`
    Root,
    /// `/simple/{project}/`
    Project,
    /// `/files/{sha256}/{filename}`
    File,
    /// `/files/upstream/{project}/{filename}`
    UpstreamFile,
}

impl DirectRoute {
    /// The route template, as the router names the same route.
    fn template(self) -> &'static str {
        match self {
            DirectRoute::Root => "/simple/",
            DirectRoute::Project => "/simple/{project}/",
            DirectRoute::File => "/files/{sha256}/{filename}",
            DirectRoute::UpstreamFile => "/files/upstream/{project}/{filename}",
        }
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Route) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl std::hash::Hash for Route {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RequestLabels {
    route: Route,
    method: &'static str,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct RouteLabels {
    route: Route,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CacheLabels {
    cache: &'static str,
    result: &'static str,
}

/// Hit and miss counters of one cache.
#[derive(Debug, Clone)]
struct CacheCounters {
    hits: Counter,
    misses: Counter,
}

impl CacheCounters {
    fn new(family: &Family<CacheLabels, Counter>, cache: &'static str) -> CacheCounters {
        let get = |result| family.get_or_create_owned(&CacheLabels { cache, result });
        CacheCounters {
            hits: get("hit"),
            misses: get("miss"),
        }
    }

    fn record(&self, hit: bool) {
        if hit { &self.hits } else { &self.misses }.inc();
    }
}

/// The metric handles of one direct route's `GET` requests, each resolved on its first use.
///
/// Why: the index pages and downloads are most of the traffic, and resolving a handle hashes its
/// labels and looks them up under the family's lock (three times per request), which showed in
/// profiles of cached pages. A handle is a clone sharing the family's own series, so counts are the same
/// either way; it is resolved lazily, so that `/metrics` shows no series before its first
/// request, as before.
#[derive(Default)]
struct DirectHandles {
    latency: OnceLock<Histogram>,
    bytes: OnceLock<Counter>,
    /// `GET` answered 200.
    ok: OnceLock<Counter>,
    /// `GET` answered 304.
    not_modified: OnceLock<Counter>,
}

/// Every metric the server exports (names in the README).
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    response_bytes: Family<RouteLabels, Counter>,
    uploads: Family<OutcomeLabels, Counter>,
    pages: CacheCounters,
    files: CacheCounters,
    generation: Gauge,
    /// `GET` of each [`DirectRoute`] (see [`DirectHandles`]).
    root_page: DirectHandles,
    project_page: DirectHandles,
    file: DirectHandles,
    upstream_file: DirectHandles,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("pyindex");
        let requests = Family::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        let latency: Family<RouteLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS));
        registry.register_with_unit(
            "http_request_duration",
            "Time from the request to the response head (uploads include receiving the body), by route template",
            Unit::Seconds,
            latency.clone(),
        );
        let response_bytes = Family::default();
        registry.register_with_unit(
            "http_response",
            "Bytes of response bodies (as declared by Content-Length), by route template",
            Unit::Bytes,
            response_bytes.clone(),
        );
        let uploads = Family::default();
        registry.register(
            "uploads",
            "Upload requests by outcome: published, already_present, or why they were refused",
            uploads.clone(),
        );
        let caches = Family::default();
        registry.register(
            "cache_lookups",
            "Lookups in the in-memory caches of index pages (page) and download answers (file), by result",
            caches.clone(),
        );
        let generation = Gauge::default();
        registry.register(
            "catalog_generation",
            "Position of the catalog's change log (grows with every write)",
            generation.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            response_bytes,
            uploads,
            pages: CacheCounters::new(&caches, "page"),
            files: CacheCounters::new(&caches, "file"),
            generation,
            root_page: DirectHandles::default(),
            project_page: DirectHandles::default(),
            file: DirectHandles::default(),
            upstream_file: DirectHandles::default(),
        }
    }
}

impl Metrics {
    /// Counts a lookup in the page cache.
    pub fn page_cache(&self, hit: bool) {
        self.pages.record(hit);
    }

    /// Counts a lookup in the download cache.
    pub fn file_cache(&self, hit: bool) {
        self.files.record(hit);
    }

    /// Counts an upload that published a file.
    pub fn upload_published(&self) {
        self.upload(UploadOutcome::Published);
    }

    /// Counts an upload of a file that was already there with the same bytes.
    pub fn upload_already_present(&self) {
        self.upload(UploadOutcome::AlreadyPresent);
    }

    /// Counts an upload refused with `status`.
    pub fn upload_refused(&self, status: StatusCode) {
        self.upload(UploadOutcome::Refused(status));
    }

    fn upload(&self, outcome: UploadOutcome) {
        self.uploads
            .get_or_create(&OutcomeLabels {
                outcome: outcome.label(),
            })
            .inc();
    }

    /// Counts a request answered by a route (or the fallback) after `latency`.
    pub(crate) fn record_response(
        &self,
        route: Route,
        method: &Method,
        response: &Response,
        latency: Duration,
    ) {
        let method = method_label(method);
        let bytes = declared_bytes(response, method == "HEAD");
        let seconds = latency.as_secs_f64();
        match route {
            Route::Direct(direct) if method == "GET" => {
                self.record_direct(direct, response.status(), seconds, bytes);
            }
            route => self.record(route, method, response.status(), seconds, bytes),
        }
    }

    /// [`Metrics::record`] for a `GET` of a direct route, through its kept handles.
    fn record_direct(&self, direct: DirectRoute, status: StatusCode, seconds: f64, bytes: u64) {
        let handles = match direct {
            DirectRoute::Root => &self.root_page,
            DirectRoute::Project => &self.project_page,
            DirectRoute::File => &self.file,
            DirectRoute::UpstreamFile => &self.upstream_file,
        };
        let labels = || RouteLabels {
            route: Route::Direct(direct),
        };
        handles
            .latency
            .get_or_init(|| self.latency.get_or_create_owned(&labels()))
            .observe(seconds);
        if bytes > 0 {
            handles
                .bytes
                .get_or_init(|| self.response_bytes.get_or_create_owned(&labels()))
                .inc_by(bytes);
        }
        let requests = |status: StatusCode| {
            self.requests.get_or_create_owned(&RequestLabels {
                route: Route::Direct(direct),
                method: "GET",
                status: status.as_u16(),
            })
        };
        match status {
            StatusCode::OK => handles.ok.get_or_init(|| requests(status)).inc(),
            StatusCode::NOT_MODIFIED => handles.not_modified.get_or_init(|| requests(status)).inc(),
            _ => requests(status).inc(),
        };
    }

    fn record(
        &self,
        route: Route,
        method: &'static str,
        status: StatusCode,
        seconds: f64,
        bytes: u64,
    ) {
        let labels = RouteLabels { route };
        self.latency.get_or_create(&labels).observe(seconds);
        if bytes > 0 {
            self.response_bytes.get_or_create(&labels).inc_by(bytes);
        }
        self.requests
            .get_or_create(&RequestLabels {
                route: labels.route,
                method,
                status: status.as_u16(),
            })
            .inc();
    }

    /// The metrics in the Prometheus text format, with the catalog generation as given.
    pub fn render(&self, generation: i64) -> Result<String, std::fmt::Error> {
        self.generation.set(generation);
        let mut text = String::with_capacity(8 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// How an upload ended, as counted in `pyindex_uploads_total`.
enum UploadOutcome {
    Published,
    AlreadyPresent,
    Refused(StatusCode),
}

impl UploadOutcome {
    fn label(&self) -> &'static str {
        match self {
            UploadOutcome::Published => "published",
            UploadOutcome::AlreadyPresent => "already_present",
            UploadOutcome::Refused(status) => match *status {
                StatusCode::BAD_REQUEST => "bad_request",
                StatusCode::UNAUTHORIZED => "unauthorized",
                StatusCode::FORBIDDEN => "forbidden",
                StatusCode::NOT_FOUND => "not_found",
                StatusCode::REQUEST_TIMEOUT => "stalled",
                StatusCode::CONFLICT => "conflict",
                StatusCode::GONE => "gone",
                StatusCode::PAYLOAD_TOO_LARGE => "too_large",
                StatusCode::TOO_MANY_REQUESTS => "throttled",
                s if s.is_server_error() => "server_error",
                _ => "other",
            },
        }
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The body size a response declares: its `Content-Length`, else the exact size its body
/// knows; 0 for a HEAD answer (no body is sent) or a streamed body of unknown length.
fn declared_bytes(response: &Response, head: bool) -> u64 {
    if head {
        return 0;
    }
    response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .or_else(|| response.body().size_hint().exact())
        .unwrap_or(0)
}

/// Hands the route template a request matched to the envelope (which counts the request, see
/// [`crate::envelope`]) in the response's extensions. Add it with `Router::layer`, which runs it
/// after routing, so that the template is known.
#[derive(Clone)]
pub struct StampRouteLayer;

impl<S> tower::Layer<S> for StampRouteLayer {
    type Service = StampRoute<S>;

    fn layer(&self, inner: S) -> StampRoute<S> {
        StampRoute { inner }
    }
}

/// The service of [`StampRouteLayer`].
#[derive(Clone)]
pub struct StampRoute<S> {
    inner: S,
}

impl<S> tower::Service<Request> for StampRoute<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Stamped<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        Stamped {
            route: request.extensions().get::<MatchedPath>().cloned(),
            inner: self.inner.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`StampRoute`].
    pub struct Stamped<F> {
        #[pin]
        inner: F,
        route: Option<MatchedPath>,
    }
}

impl<F, E> Future for Stamped<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut result = std::task::ready!(this.inner.poll(cx));
        if let (Ok(response), Some(route)) = (&mut result, this.route.take()) {
            response.extensions_mut().insert(route);
        }
        Poll::Ready(result)
    }
}

/// The route template [`StampRoute`] left in a response (and removes it).
pub(crate) fn take_route(response: &mut Response) -> Route {
    response
        .extensions_mut()
        .remove::<MatchedPath>()
        .map_or(Route::Unmatched, Route::Matched)
}

/// `GET /metrics`: the metrics in the `public` and `private` settings, 404 in `off`.
pub async fn page(
    State(app): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
) -> Response {
    if app.metrics_access == MetricsAccess::Off {
        return not_found("Metrics are turned off on this server (--metrics off).");
    }
    if app.metrics_access == MetricsAccess::Private
        && let Err(refused) = require_admin(&app, &headers, &address).await
    {
        return refused;
    }
    let generation = match app.registry.catalog_generation().await {
        Ok(generation) => generation,
        Err(e) => return internal_error(&format!("could not read the catalog generation: {e}")),
    };
    match app.metrics.render(generation) {
        Ok(text) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(
                        prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                    ),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            Body::from(text),
        )
            .into_response(),
        Err(e) => internal_error(&format!("could not render the metrics: {e}")),
    }
}

/// In the `private` setting: the caller must present a password or token of an admin account
/// (a token limited to some projects does not do).
async fn require_admin(app: &AppState, headers: &HeaderMap, address: &str) -> Result<(), Response> {
    let refuse = |rejection, message: &str| {
        Err(registry_error(&RegistryError::rejected(rejection, message)))
    };
    let Some(credentials) = credentials(headers) else {
        return refuse(
            Rejection::Unauthorized,
            "The metrics are private (--metrics private): send the credentials of an admin account, \
             e.g. a token from `pyindex token create --user <admin> --read-only`.",
        );
    };
    let identity = app
        .registry
        .authenticate(&credentials, address)
        .await
        .map_err(|e| registry_error(&e))?;
    let scoped = identity
        .token
        .as_ref()
        .is_some_and(|t| t.projects.is_some());
    if !identity.user.is_admin || scoped {
        return refuse(
            Rejection::Forbidden,
            "The metrics are private (--metrics private): only an admin account, with a password or a token \
             not limited to projects, may read them.",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counted_requests_in_the_text_format() {
        let metrics = Metrics::default();
        metrics.record(Route::Unmatched, "GET", StatusCode::NOT_FOUND, 0.002, 10);
        metrics.record(Route::Unmatched, "GET", StatusCode::NOT_FOUND, 0.004, 5);
        metrics.upload_refused(StatusCode::CONFLICT);
        metrics.page_cache(true);
        let text = metrics.render(42).unwrap();
        assert!(
            text.contains(
                "pyindex_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("pyindex_http_response_bytes_total{route=\"unmatched\"} 15\n"),
            "{text}"
        );
        assert!(
            text.contains("pyindex_http_request_duration_seconds_count{route=\"unmatched\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("pyindex_uploads_total{outcome=\"conflict\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("pyindex_cache_lookups_total{cache=\"page\",result=\"hit\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("pyindex_catalog_generation 42\n"), "{text}");
    }

    #[test]
    fn index_handles_count_in_the_routes_series_and_appear_on_first_use() {
        let metrics = Metrics::default();
        let project = "route=\"/simple/{project}/\"";
        assert!(!metrics.render(1).unwrap().contains(project));
        metrics.record_direct(DirectRoute::Project, StatusCode::OK, 0.001, 10);
        metrics.record_direct(DirectRoute::Project, StatusCode::OK, 0.001, 10);
        metrics.record_direct(DirectRoute::Project, StatusCode::NOT_MODIFIED, 0.001, 0);
        metrics.record_direct(DirectRoute::Project, StatusCode::NOT_ACCEPTABLE, 0.001, 3);
        // The same labels through the families, as a request routed by the router is counted.
        metrics.record(
            Route::Direct(DirectRoute::Project),
            "GET",
            StatusCode::OK,
            0.001,
            5,
        );
        let text = metrics.render(1).unwrap();
        for line in [
            format!("pyindex_http_requests_total{{{project},method=\"GET\",status=\"200\"}} 3\n"),
            format!("pyindex_http_requests_total{{{project},method=\"GET\",status=\"304\"}} 1\n"),
            format!("pyindex_http_requests_total{{{project},method=\"GET\",status=\"406\"}} 1\n"),
            format!("pyindex_http_response_bytes_total{{{project}}} 28\n"),
            format!("pyindex_http_request_duration_seconds_count{{{project}}} 5\n"),
        ] {
            assert!(text.contains(&line), "{line} not in {text}");
        }
        assert!(!text.contains("route=\"/simple/\""), "{text}");
    }

    #[test]
    fn access_settings_parse_and_print() {
        for access in [
            MetricsAccess::Public,
            MetricsAccess::Private,
            MetricsAccess::Off,
        ] {
            assert_eq!(access.to_string().parse::<MetricsAccess>(), Ok(access));
        }
        assert!("secret".parse::<MetricsAccess>().is_err());
    }
}
