//! The envelope: everything a request passes through around the handlers, as one service.
//!
//! Every request gets a request id (the client's `x-request-id`, else a generated one, echoed
//! in the response), has its `Authorization` and `Cookie` values marked sensitive (never shown
//! by a log line), is refused when its `Host` is not allowed (421, see [`crate::host_check`]),
//! is counted in the metrics by route template, gets its span and log line when the request
//! log is on, and is answered 500 (and logged) if its handler panics. Redirects get the public
//! URL when one is configured.
//!
//! Why one service instead of a stack of tower-http layers and `from_fn` middleware: each
//! layer adds its own future per request, `from_fn` boxes one and clones the rest of the stack,
//! the trace layer reads the clock even when its span and events are off, and the router the
//! stack was served from added a boxed future and a service clone of its own. On a cached index
//! page that machinery cost more than the handler (a third of pyindex's own time in profiles).
//! Here a request costs one boxed future, one clock read at its start (and one at its end), and
//! the request log's span and line only when that log is on.
//!
//! The index pages (`GET /simple/` and `GET /simple/<project>/`) and the downloads
//! (`GET /files/...`), most of what installers ask for, are routed here without the router when
//! nothing else guards them (not in the `all` access mode, whose read guard is a route layer):
//! their handlers are called directly, with the same answer the router gives (it only adds
//! `Content-Length`). The router's matching, its path parameters and its per-route layer were
//! about a tenth of a small download's CPU. Other requests go through the router, whose routes
//! carry one small layer that hands the matched route template back for the metrics; they get
//! the listener's [`RequestOrigin`] in their extensions, which the direct routes never read
//! (inserting it, the first extension, cost 4 to 5% of a cached page's CPU).

use std::any::Any;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::HttpBody;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use pyindex_registry::AccessMode;
use tower::Service;
use tracing::Instrument;

use crate::forwarded::RequestOrigin;
use crate::metrics::{DirectRoute, Route};
use crate::request_id::{MakeCountedRequestId, REQUEST_ID};
use crate::{AppState, REQUEST_LOG_TARGET, files, host_check, simple};

/// Request headers whose values are marked sensitive, so that no log line can show them.
const SENSITIVE: [header::HeaderName; 2] = [header::AUTHORIZATION, header::COOKIE];

/// The application as one `tower::Service`: the envelope around the router (see the module
/// documentation). Cloning it is two reference counts.
#[derive(Clone)]
pub struct Envelope {
    router: Router,
    shared: Arc<Shared>,
}

struct Shared {
    app: AppState,
    ids: MakeCountedRequestId,
    /// Whether index pages and downloads may skip the router (no route layer guards them).
    direct_routes: bool,
}

impl Envelope {
    /// The envelope around `router`, whose routes must carry [`crate::metrics::StampRouteLayer`].
    pub(crate) fn new(router: Router, app: AppState) -> Envelope {
        let direct_routes = app.registry.access_mode() != AccessMode::All;
        Envelope {
            router,
            shared: Arc::new(Shared {
                app,
                ids: MakeCountedRequestId::new(),
                direct_routes,
            }),
        }
    }
}

/// How a request was answered, before the envelope's last touches.
enum Answer {
    /// By a route (or the fallback): counted in the metrics under `Route`.
    Routed(Response, Route),
    /// By the host check, before any route.
    Refused(Response),
}

impl Service<Request> for Envelope {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let answer = self.respond(request, None);
        Box::pin(async move { Ok(answer.await) })
    }
}

impl crate::listener::App for Envelope {
    type Answer = Pin<Box<dyn Future<Output = Response> + Send>>;

    fn answer(&self, request: Request, origin: RequestOrigin) -> Self::Answer {
        self.respond(request, Some(origin))
    }
}

impl Envelope {
    /// The answer to `request`, from `origin` when it came through the listener (handlers
    /// behind the router find the origin in the request's extensions).
    fn respond(
        &self,
        mut request: Request,
        origin: Option<RequestOrigin>,
    ) -> Pin<Box<dyn Future<Output = Response> + Send>> {
        let id = self.shared.ids.id_of(&request);
        mark_sensitive(request.headers_mut());
        let span = request_span(&request, &id);
        let method = request.method().clone();
        let (router, shared) = (self.router.clone(), self.shared.clone());
        Box::pin(async move {
            let start = Instant::now();
            let answer = AssertUnwindSafe(shared.answer(router, request, origin))
                .catch_unwind()
                .instrument(span.clone())
                .await;
            let latency = start.elapsed();
            let _in_span = span.enter();
            let mut response = match answer {
                Ok(Answer::Routed(response, route)) => {
                    let metrics = &shared.app.metrics;
                    metrics.record_response(route, &method, &response, latency);
                    response
                }
                Ok(Answer::Refused(response)) => response,
                Err(panic) => panicked(panic),
            };
            log_response(response.status(), latency);
            let headers = response.headers_mut();
            if !headers.contains_key(&REQUEST_ID) {
                headers.insert(REQUEST_ID, id);
            }
            response
        })
    }
}

impl Shared {
    /// The answer of the host check, a direct route or the router.
    async fn answer(
        &self,
        mut router: Router,
        mut request: Request,
        origin: Option<RequestOrigin>,
    ) -> Answer {
        if let Some(refused) = host_check::refusal(&self.app.host_policy, &request) {
            return Answer::Refused(refused);
        }
        let (mut response, route) = match self.direct_route(&request) {
            Some(direct) => {
                let route = Route::Direct(direct.route());
                let response = self.answer_directly(direct, request).await;
                (with_content_length(response), route)
            }
            None => {
                if let Some(origin) = origin {
                    request.extensions_mut().insert(origin);
                }
                let Ok(mut response) = router.call(request).await;
                let route = crate::metrics::take_route(&mut response);
                (response, route)
            }
        };
        if let Some(public) = &self.app.public_url {
            public.absolute_location(&mut response);
        }
        Answer::Routed(response, route)
    }

    /// Which route a request takes, when it can be answered without the router: a GET of
    /// `/simple/`, `/simple/<project>/`, `/files/<sha256>/<filename>` or
    /// `/files/upstream/<project>/<filename>` whose parts need no percent-decoding (the
    /// router's `Path` would decode them; those few go through the router).
    fn direct_route(&self, request: &Request) -> Option<Direct> {
        if !self.direct_routes || request.method() != Method::GET {
            return None;
        }
        let path = request.uri().path();
        if let Some(rest) = path.strip_prefix("/simple/") {
            if rest.is_empty() {
                return Some(Direct::Root);
            }
            let name = rest.strip_suffix('/')?;
            return plain(name).then_some(Direct::Project);
        }
        let rest = path.strip_prefix("/files/")?;
        if let Some(parts) = rest.strip_prefix("upstream/").and_then(two_plain_segments) {
            return Some(Direct::UpstreamFile(parts));
        }
        two_plain_segments(rest).map(Direct::File)
    }

    /// The answer of the handler of `direct`.
    async fn answer_directly(&self, direct: Direct, request: Request) -> Response {
        let app = self.app.clone();
        match direct {
            Direct::Root => simple::root(State(app), request).await,
            Direct::Project => simple::project_of_path(app, request).await,
            Direct::File(parts) => files::download(State(app), Path(parts), request).await,
            Direct::UpstreamFile(parts) => {
                files::upstream_download(State(app), Path(parts), request).await
            }
        }
    }
}

/// A request answered without the router, with what the router's `Path` would extract for its
/// handler (a project page's handler reads its name from the path itself, to look its cached
/// page up without a copy).
enum Direct {
    Root,
    Project,
    File((String, String)),
    UpstreamFile((String, String)),
}

impl Direct {
    /// The route, as the metrics count it.
    fn route(&self) -> DirectRoute {
        match self {
            Direct::Root => DirectRoute::Root,
            Direct::Project => DirectRoute::Project,
            Direct::File(_) => DirectRoute::File,
            Direct::UpstreamFile(_) => DirectRoute::UpstreamFile,
        }
    }
}

/// `rest` as exactly two [`plain`] segments.
fn two_plain_segments(rest: &str) -> Option<(String, String)> {
    let (first, second) = rest.split_once('/')?;
    (plain(first) && plain(second)).then(|| (first.to_owned(), second.to_owned()))
}

/// Whether one segment of a path is what the router's `Path` would extract: not empty, no `/`,
/// nothing to percent-decode.
fn plain(segment: &str) -> bool {
    !segment.is_empty() && !segment.contains(['/', '%'])
}

/// Marks the values of [`SENSITIVE`] headers, as tower-http's sensitive-header layer did.
fn mark_sensitive(headers: &mut HeaderMap) {
    for name in SENSITIVE {
        if let header::Entry::Occupied(mut entry) = headers.entry(name) {
            for value in entry.iter_mut() {
                value.set_sensitive(true);
            }
        }
    }
}

/// What the router adds to the answer of a GET route: `Content-Length` from a body of known
/// size, when none is set.
fn with_content_length(mut response: Response) -> Response {
    if !response.headers().contains_key(header::CONTENT_LENGTH)
        && let Some(size) = response.body().size_hint().exact()
    {
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    }
    response
}

/// The answer to a request whose handler panicked: 500, with the panic's message logged.
fn panicked(panic: Box<dyn Any + Send>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied());
    match message {
        Some(message) => tracing::error!("Service panicked: {message}"),
        None => tracing::error!(
            "Service panicked but `CatchPanic` was unable to downcast the panic info"
        ),
    }
    (StatusCode::INTERNAL_SERVER_ERROR, "Service panicked").into_response()
}

/// The span every log line of a request is in: its id (`id`, also sent back in
/// `x-request-id`), method and path. The response line adds status and latency. Both have the
/// target [`REQUEST_LOG_TARGET`]: with the request log off, the span is not even built and
/// other lines carry no request id.
fn request_span(request: &Request, id: &HeaderValue) -> tracing::Span {
    tracing::info_span!(
        target: REQUEST_LOG_TARGET,
        "request",
        id = %id.to_str().unwrap_or("-"),
        method = %request.method(),
        path = %request.uri().path(),
    )
}

/// The one line logged per request when its response head is ready (target
/// [`REQUEST_LOG_TARGET`]), and an error line for a server error (5xx), as the trace layer
/// logged them.
fn log_response(status: StatusCode, latency: Duration) {
    tracing::info!(
        target: REQUEST_LOG_TARGET,
        status = status.as_u16(),
        latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
        "request answered"
    );
    if status.is_server_error() {
        tracing::error!(
            classification = %format_args!("Status code: {status}"),
            latency = %format_args!("{} ms", latency.as_millis()),
            "response failed"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::routing::get;
    use pyindex_catalog::SqliteCatalog;
    use pyindex_packaging::archive::ArchiveLimits;
    use pyindex_registry::Registry;
    use pyindex_storage::{LocalBlobStore, Spool};
    use tower::ServiceExt;

    use super::*;

    async fn state(dir: &std::path::Path) -> AppState {
        let catalog = Arc::new(
            SqliteCatalog::open(&dir.join("catalog.sqlite3"))
                .await
                .unwrap(),
        );
        let blobs = Arc::new(LocalBlobStore::open(dir.join("files")).unwrap());
        let spool = Spool::open(dir.join("tmp")).unwrap();
        let registry = Registry::new(catalog, blobs, spool, ArchiveLimits::default());
        AppState::new(registry, 1 << 20)
    }

    fn get_request(path: &str, id: Option<&str>) -> Request {
        let mut builder = Request::builder()
            .uri(path)
            .header(header::HOST, "localhost");
        if let Some(id) = id {
            builder = builder.header(REQUEST_ID, id);
        }
        builder.body(Body::empty()).unwrap()
    }

    async fn boom() -> &'static str {
        panic!("handler failed")
    }

    #[tokio::test]
    async fn a_panicking_handler_is_answered_500_with_the_request_id() {
        let dir = tempfile::tempdir().unwrap();
        let app = state(dir.path()).await;
        let router = Router::new()
            .route("/boom", get(boom))
            .layer(crate::metrics::StampRouteLayer);
        let envelope = Envelope::new(router, app);
        let response = envelope
            .clone()
            .oneshot(get_request("/boom", Some("id-7")))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(response.headers()[REQUEST_ID], "id-7");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], b"Service panicked");
        // The envelope still answers after a panic.
        let after = envelope.oneshot(get_request("/none", None)).await.unwrap();
        assert_eq!(after.status(), StatusCode::NOT_FOUND);
        assert_eq!(after.headers()[REQUEST_ID].len(), 33);
    }

    #[tokio::test]
    async fn pages_and_files_answered_without_the_router_are_the_routers_answers() {
        let dir = tempfile::tempdir().unwrap();
        let app = state(dir.path()).await;
        let envelope = crate::router(app);
        // The second path of each pair spells a letter as `%61`, `%78` (`a`, `x`): decoded by
        // the router's `Path`, so that request takes the router.
        for (path, routed_path) in [
            ("/simple/absent/", "/simple/%61bsent/"),
            ("/simple/a_b/?x=1", "/simple/%61_b/?x=1"),
            ("/files/abcd/x-1.0.tar.gz", "/files/abcd/%78-1.0.tar.gz"),
            (
                "/files/upstream/a/x-1.0.tar.gz",
                "/files/upstream/a/%78-1.0.tar.gz",
            ),
        ] {
            let direct = envelope
                .clone()
                .oneshot(get_request(path, Some("x")))
                .await
                .unwrap();
            let routed = envelope
                .clone()
                .oneshot(get_request(routed_path, Some("x")))
                .await
                .unwrap();
            assert_eq!(direct.status(), routed.status(), "{path}");
            assert_eq!(direct.headers(), routed.headers(), "{path}");
            let direct = axum::body::to_bytes(direct.into_body(), 1 << 20).await;
            let routed = axum::body::to_bytes(routed.into_body(), 1 << 20).await;
            assert_eq!(direct.unwrap(), routed.unwrap(), "{path}");
        }
    }
}
