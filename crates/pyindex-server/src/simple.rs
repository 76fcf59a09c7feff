//! The simple repository API: `/simple/` and `/simple/<project>/` (standards A, B, E7, E8).

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use percent_encoding::percent_decode_str;
use pyindex_packaging::ProjectName;
use pyindex_registry::{FilePart, IndexPage, RegistryError};

use crate::AppState;
use crate::cache::{Page, PageKey, Proxied};
use crate::negotiate::{self, Format};
use crate::pages;
use crate::response::{if_none_match, moved_permanently, not_found, plain_error, registry_error};

/// Says that a page or file came from an upstream: `fresh`, or `stale` when the upstream
/// could not be asked and the last good page is served; for files `cached` or `fetched`.
pub const UPSTREAM_HEADER: &str = "x-pyindex-upstream";

/// Index pages may be cached but must be revalidated, so a new release is visible at once.
const PAGE_CACHE_CONTROL: &str = "max-age=0, must-revalidate";

/// The `format` query parameter, percent-decoded (`+` stays as typed; see `negotiate::choose`).
fn format_param(uri: &Uri) -> Option<String> {
    uri.query()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "format")
        .map(|(_, value)| percent_decode_str(value).decode_utf8_lossy().into_owned())
}

fn chosen_format(request: &Request) -> Result<Format, Response> {
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    negotiate::choose(accept, format_param(request.uri()).as_deref()).ok_or_else(|| {
        let mut response = (
            StatusCode::NOT_ACCEPTABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            negotiate::NOT_ACCEPTABLE,
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Accept"));
        response
    })
}

fn with_query(path: String, uri: &Uri) -> String {
    match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    }
}

/// Sends a cached page, honouring `Accept-Encoding` and `If-None-Match`.
fn send_page(page: &Page, headers: &HeaderMap) -> Response {
    let gzip = negotiate::accepts_gzip(
        headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok()),
    );
    let encoded = if gzip { &page.gzip } else { &page.identity };
    let mut response = if if_none_match(headers, &encoded.etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = encoded.body.clone().into_response();
        // Room for every header of the answer (these, the envelope's `Content-Length` and
        // `x-request-id`) at once, instead of growing the map on the way.
        response.headers_mut().reserve(8);
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(page.format.content_type()),
        );
        if gzip {
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        response
    };
    let h = response.headers_mut();
    if let Some(upstream) = page.upstream {
        h.insert(
            UPSTREAM_HEADER,
            HeaderValue::from_static(if upstream.stale { "stale" } else { "fresh" }),
        );
    }
    h.insert(header::ETAG, encoded.etag.clone());
    h.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(PAGE_CACHE_CONTROL),
    );
    response
}

/// `GET /simple`: redirect to the slash form.
pub async fn root_redirect(uri: Uri) -> Response {
    moved_permanently(&with_query("/simple/".to_owned(), &uri))
}

/// Any method but GET and HEAD on `/simple/` (and `/simple`): `405`, naming the upload URL, for
/// a publisher given the index URL instead of the upload URL.
pub async fn not_an_upload_url(State(app): State<AppState>, request: Request) -> Response {
    let base_url = crate::landing::base_url(&app, &request);
    // Read what the client is still sending, so that it sees this answer, not a reset.
    crate::upload::drain(request).await;
    let mut response = plain_error(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!(
            "/simple/ is the index installers read; uploads go to /legacy/: \
             twine upload --repository-url '{base_url}/legacy/' ..., \
             uv publish --publish-url '{base_url}/legacy/' ..."
        ),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

/// Where a request for `/<project>/` or `/<project>` (an index URL given without `/simple/`, as
/// in `pip install --index-url http://host:9001 shared`) would belong: the project's name and
/// `/simple/<normalized>/`. `None` for other methods than GET and HEAD, and for paths that are
/// no project name.
pub fn missing_simple_prefix(method: &Method, uri: &Uri) -> Option<(ProjectName, String)> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let path = uri.path().strip_prefix('/')?;
    let raw = path.strip_suffix('/').unwrap_or(path);
    let name = ProjectName::new(raw).ok()?;
    let location = with_query(format!("/simple/{name}/"), uri);
    Some((name, location))
}

/// The redirect of `/<project>/` to `/simple/<project>/` when the project exists (in the `all`
/// mode, for a caller who may read); `None` when the path names no project, as `/favicon.ico`
/// does: a permanent redirect to a page that does not exist would be cached for nothing.
pub async fn redirect_to_simple(app: &AppState, request: &Parts) -> Option<Response> {
    let (name, location) = missing_simple_prefix(&request.method, &request.uri)?;
    if let Err(refused) = crate::auth::check_read(app, &request.headers, &request.extensions).await
    {
        return Some(refused);
    }
    match project_exists(app, &name).await {
        Ok(true) => Some(moved_permanently(&location)),
        Ok(false) => None,
        Err(e) => Some(registry_error(&e)),
    }
}

/// Whether the project exists, from the cached set of project names (read again after a
/// project is created).
async fn project_exists(app: &AppState, name: &ProjectName) -> Result<bool, RegistryError> {
    if let Some(names) = app.cache.project_names() {
        return Ok(names.contains(name.as_str()));
    }
    let epoch = app.cache.epoch();
    let names: HashSet<String> = app
        .registry
        .projects()
        .await?
        .into_iter()
        .map(|project| project.name)
        .collect();
    let exists = names.contains(name.as_str());
    app.cache.insert_project_names(Arc::new(names), epoch);
    Ok(exists)
}

/// `GET /simple/`: every project.
pub async fn root(State(app): State<AppState>, request: Request) -> Response {
    let headers = request.headers();
    let format = match chosen_format(&request) {
        Ok(format) => format,
        Err(response) => return response,
    };
    let key = PageKey::Root(format);
    let cached = app.cache.page(key);
    app.metrics.page_cache(cached.is_some());
    if let Some(page) = cached {
        return send_page(&page, headers);
    }
    let _turn = app.cache.render_turn(key).await;
    if let Some(page) = app.cache.page(key) {
        return send_page(&page, headers);
    }
    let epoch = app.cache.epoch();
    match app.registry.projects().await {
        Ok(projects) => {
            let proxied = app.registry.upstream().is_some();
            let page = Arc::new(Page::new(format, pages::root(&projects, format, proxied)));
            app.cache.insert_page(key, page.clone(), epoch);
            send_page(&page, headers)
        }
        Err(e) => registry_error(&e),
    }
}

/// The page file of the nginx tree this index replaces, whose URLs bookmarks still hold.
const OLD_PAGE_FILE: &str = "index.html";

/// `GET /simple/<project>`: redirect to the normalized, slash-terminated URL; the old tree's
/// `/simple/index.html` redirects to `/simple/`.
pub async fn project_redirect(Path(raw): Path<String>, uri: Uri) -> Response {
    if raw == OLD_PAGE_FILE {
        return moved_permanently(&with_query("/simple/".to_owned(), &uri));
    }
    match ProjectName::new(&raw) {
        Ok(name) => moved_permanently(&with_query(format!("/simple/{name}/"), &uri)),
        Err(_) => not_found(&format!(
            "No project named '{}' in this index.",
            raw.escape_default()
        )),
    }
}

/// `GET /simple/<project>/<filename>`: the URLs of the nginx tree this index replaces, still
/// held by Dockerfiles, lock files and bookmarks. A file of the project redirects to its
/// download URL, `index.html` to the project's page.
pub async fn old_file_url(
    State(app): State<AppState>,
    Path((raw, filename)): Path<(String, String)>,
    uri: Uri,
) -> Response {
    let Ok(name) = ProjectName::new(&raw) else {
        return not_found(&format!(
            "No project named '{}' in this index.",
            raw.escape_default()
        ));
    };
    if filename == OLD_PAGE_FILE {
        return moved_permanently(&with_query(format!("/simple/{name}/"), &uri));
    }
    match app.registry.download(&filename).await {
        Ok(Some(found))
            if found.part == FilePart::Distribution && found.file.project == name.as_str() =>
        {
            moved_permanently(&pages::file_url(&found.file))
        }
        Ok(_) => not_found(&format!(
            "No file '{}' in the project '{name}' of this index: see /simple/{name}/ for its files.",
            filename.escape_default()
        )),
        Err(e) => registry_error(&e),
    }
}

/// `GET /simple/<project>/` as the envelope routes it, for a path whose name needs no
/// percent-decoding: a cached page is sent straight away, keyed by the name as it is in the path
/// (pages are cached under normalized names only, so a hit means the path's name is one); anything
/// else is [`project`]'s.
pub async fn project_of_path(app: AppState, request: Request) -> Response {
    let raw = request
        .uri()
        .path()
        .strip_prefix("/simple/")
        .and_then(|rest| rest.strip_suffix('/'))
        .unwrap_or_default();
    if let Ok(format) = chosen_format(&request)
        && let Some(page) = app.cache.page(PageKey::Project(raw, format))
    {
        app.metrics.page_cache(true);
        return send_page(&page, request.headers());
    }
    let raw = raw.to_owned();
    project(State(app), Path(raw), request).await
}

/// `GET /simple/<project>/`: a project's files.
pub async fn project(
    State(app): State<AppState>,
    Path(raw): Path<String>,
    request: Request,
) -> Response {
    let (headers, uri) = (request.headers(), request.uri());
    let Ok(name) = ProjectName::new(&raw) else {
        return not_found(&format!(
            "No project named '{}' in this index.",
            raw.escape_default()
        ));
    };
    if name.as_str() != raw {
        return moved_permanently(&with_query(format!("/simple/{name}/"), uri));
    }
    let format = match chosen_format(&request) {
        Ok(format) => format,
        // An unknown project is 404 whatever the client accepts.
        Err(not_acceptable) => {
            return match app.registry.project(name.as_str()).await {
                Ok(Some(_)) => not_acceptable,
                Ok(None) => not_found(&format!("No project named '{name}' in this index.")),
                Err(e) => registry_error(&e),
            };
        }
    };
    let key = PageKey::Project(name.as_str(), format);
    let cached = app.cache.page(key);
    app.metrics.page_cache(cached.is_some());
    if let Some(page) = cached {
        return send_page(&page, headers);
    }
    let _turn = app.cache.render_turn(key).await;
    if let Some(page) = app.cache.page(key) {
        return send_page(&page, headers);
    }
    let epoch = app.cache.epoch();
    match app.registry.index_page(name.as_str()).await {
        Ok(Some(IndexPage::Local(project))) => {
            let page = Arc::new(Page::new(format, pages::project(&project, format)));
            app.cache.insert_page(key, page.clone(), epoch);
            send_page(&page, headers)
        }
        Ok(Some(IndexPage::Proxied(proxied))) => {
            let page = Page::new(format, pages::proxied(&proxied.page, format)).proxied(Proxied {
                expires: std::time::Instant::now() + proxied.fresh_for,
                stale: proxied.stale,
            });
            let page = Arc::new(page);
            app.cache.insert_page(key, page.clone(), epoch);
            send_page(&page, headers)
        }
        Ok(None) => not_found(&format!("No project named '{name}' in this index.")),
        Err(e) => registry_error(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect(method: Method, target: &str) -> Option<String> {
        missing_simple_prefix(&method, &target.parse().unwrap()).map(|(_, location)| location)
    }

    #[test]
    fn project_paths_without_simple_are_redirected() {
        assert_eq!(
            redirect(Method::GET, "/shared/").as_deref(),
            Some("/simple/shared/")
        );
        assert_eq!(
            redirect(Method::HEAD, "/Shared_Pkg").as_deref(),
            Some("/simple/shared-pkg/")
        );
        assert_eq!(
            redirect(Method::GET, "/zope.interface/?format=json").as_deref(),
            Some("/simple/zope-interface/?format=json")
        );
    }

    #[test]
    fn other_paths_and_methods_are_not() {
        for target in [
            "/",
            "/a/b/",
            "//shared/",
            "/-x/",
            "/shared//",
            "/sh%61red/",
            "/a b/",
        ] {
            if let Ok(uri) = target.parse::<Uri>() {
                assert!(
                    missing_simple_prefix(&Method::GET, &uri).is_none(),
                    "{target}"
                );
            }
        }
        assert_eq!(redirect(Method::POST, "/shared/"), None);
        assert_eq!(redirect(Method::DELETE, "/shared"), None);
    }
}
