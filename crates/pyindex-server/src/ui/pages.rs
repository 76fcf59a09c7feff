//! The reading pages: home, search, project, version, and "Using this index".

use std::sync::Arc;

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::StatusCode;
use http::request::Parts;
use pyindex_catalog::{FileRecord, ProjectStatus, ReleaseDetails, Yank};
use pyindex_packaging::{normalize, parse_filename, parse_version};
use pyindex_registry::browse::{MAX_SEARCH_PAGE, SEARCH_PAGE_SIZE};
use pyindex_registry::{ProjectView, ReleaseFiles};
use serde::Deserialize;
use time::OffsetDateTime;
use time::macros::format_description;

use super::html;
use super::links::{Link, mail_link, safe_url};
use super::session::{Reader, Viewer};
use crate::AppState;
use crate::landing::base_url_from;
use crate::response::registry_error;

/// What is percent-encoded in a path segment: everything but RFC 3986's unreserved characters.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Releases listed on the home page.
const RECENT_RELEASES: u32 = 12;

/// What every page shows around its content.
pub struct Chrome {
    /// The search box's text.
    pub query: String,
    /// The signed-in account, if any.
    pub user: Option<String>,
    /// The session's anti-forgery token (for the sign-out form).
    pub csrf: String,
    /// Whether to offer signing in (accounts exist: not the open mode).
    pub sign_in: bool,
    /// The server's URL, without a trailing slash.
    pub base_url: String,
}

impl Chrome {
    pub fn new(app: &AppState, parts: &Parts, viewer: &Viewer) -> Chrome {
        Chrome {
            query: String::new(),
            user: viewer.user().map(str::to_owned),
            csrf: viewer.csrf().to_owned(),
            sign_in: app.registry.access_mode() != pyindex_registry::AccessMode::Open,
            base_url: base_url_from(app, &parts.extensions, &parts.headers, &parts.uri),
        }
    }
}

/// A date as the pages show it.
pub fn date(t: OffsetDateTime) -> String {
    t.format(format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

/// A size in bytes, readably.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[derive(Template)]
#[template(path = "ui/error.html")]
pub struct ErrorPage {
    pub chrome: Chrome,
    pub title: String,
    pub message: String,
}

fn error_page(chrome: Chrome, status: StatusCode, title: &str, message: String) -> Response {
    let page = ErrorPage {
        chrome,
        title: title.to_owned(),
        message,
    };
    html(status, page.render())
}

/// A recent release on the home page.
pub struct RecentRow {
    pub name: String,
    pub display_name: String,
    pub version: String,
    pub summary: String,
    pub date: String,
}

#[derive(Template)]
#[template(path = "ui/home.html")]
pub struct HomePage {
    pub chrome: Chrome,
    pub projects: u64,
    pub releases: u64,
    pub files: u64,
    pub recent: Vec<RecentRow>,
}

/// `GET /`: search, counts, recent releases and the commands to use this index.
pub async fn home(State(app): State<AppState>, Reader { viewer, parts }: Reader) -> Response {
    let overview = match app.registry.overview(RECENT_RELEASES).await {
        Ok(overview) => overview,
        Err(e) => return registry_error(&e),
    };
    let page = HomePage {
        chrome: Chrome::new(&app, &parts, &viewer),
        projects: overview.counts.projects,
        releases: overview.counts.releases,
        files: overview.counts.files,
        recent: overview
            .recent
            .into_iter()
            .map(|r| RecentRow {
                name: r.project,
                display_name: r.display_name,
                version: r.version,
                summary: r.summary.unwrap_or_default(),
                date: date(r.created),
            })
            .collect(),
    };
    html(StatusCode::OK, page.render())
}

/// The query string of `/search`.
#[derive(Debug, Deserialize)]
pub struct SearchParams {
    #[serde(default)]
    q: String,
    page: Option<u32>,
}

/// A search result.
pub struct HitRow {
    pub name: String,
    pub display_name: String,
    pub summary: String,
    pub status: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "ui/search.html")]
pub struct SearchPage {
    pub chrome: Chrome,
    pub total: u64,
    pub hits: Vec<HitRow>,
    pub page: u32,
    pub pages: u64,
    pub previous: Option<String>,
    pub next: Option<String>,
}

fn search_href(query: &str, page: u32) -> String {
    let q = percent_encoding::utf8_percent_encode(query, percent_encoding::NON_ALPHANUMERIC);
    format!("/search?q={q}&page={page}")
}

/// `GET /search?q=&page=`: projects by name and summary, the exact name first.
pub async fn search(
    State(app): State<AppState>,
    params: Result<Query<SearchParams>, QueryRejection>,
    Reader { viewer, parts }: Reader,
) -> Response {
    let mut chrome = Chrome::new(&app, &parts, &viewer);
    let Ok(Query(params)) = params else {
        return error_page(
            chrome,
            StatusCode::BAD_REQUEST,
            "Bad search",
            format!("Use /search?q=WORDS&page=N with a page from 1 to {MAX_SEARCH_PAGE}."),
        );
    };
    chrome.query = params.q.trim().to_owned();
    let page = params.page.unwrap_or(1);
    let results = match app.registry.search(&params.q, page).await {
        Ok(results) => results,
        Err(e) => {
            return error_page(chrome, StatusCode::BAD_REQUEST, "Bad search", e.to_string());
        }
    };
    let pages = results.total.div_ceil(u64::from(SEARCH_PAGE_SIZE));
    let query = chrome.query.clone();
    let page = SearchPage {
        total: results.total,
        hits: results
            .hits
            .into_iter()
            .map(|h| HitRow {
                name: h.name,
                display_name: h.display_name,
                summary: h.summary.unwrap_or_default(),
                status: status_label(h.status),
            })
            .collect(),
        page,
        pages,
        previous: (page > 1).then(|| search_href(&query, page - 1)),
        next: (u64::from(page) < pages && page < MAX_SEARCH_PAGE)
            .then(|| search_href(&query, page + 1)),
        chrome,
    };
    html(StatusCode::OK, page.render())
}

fn status_label(status: ProjectStatus) -> Option<&'static str> {
    (status != ProjectStatus::Active).then(|| status.as_str())
}

/// A version in the release history.
pub struct VersionRow {
    pub version: String,
    pub href: String,
    pub date: String,
    pub yanked: bool,
    pub yank_reason: String,
    pub prerelease: bool,
    pub current: bool,
}

/// A file of the shown release.
pub struct FileRow {
    pub filename: String,
    pub href: String,
    pub kind: &'static str,
    pub size: String,
    pub sha256: String,
    pub requires_python: String,
    pub tags: String,
}

/// A copyable command.
pub struct Command {
    pub label: &'static str,
    pub text: String,
}

#[derive(Template)]
#[template(path = "ui/project.html")]
pub struct ProjectPage {
    pub chrome: Chrome,
    pub name: String,
    pub display_name: String,
    pub version: String,
    pub is_latest: bool,
    pub latest_version: String,
    pub date: String,
    pub summary: String,
    pub status: Option<&'static str>,
    pub status_reason: String,
    pub yanked: bool,
    pub yank_reason: String,
    pub readme_html: String,
    pub commands: Vec<Command>,
    pub links: Vec<Link>,
    pub license: String,
    pub author: String,
    pub author_link: Option<Link>,
    pub maintainer: String,
    pub keywords: String,
    pub classifiers: Vec<String>,
    pub requires_python: String,
    pub requires_dist: Vec<String>,
    pub versions: Vec<VersionRow>,
    pub files: Vec<FileRow>,
}

/// `GET /project/<name>`: to the page with the slash.
pub async fn project_redirect(Path(name): Path<String>) -> Response {
    Redirect::permanent(&format!("/project/{}/", normalize(&name))).into_response()
}

/// `GET /project/<name>/`: the project at its latest release.
pub async fn project(
    State(app): State<AppState>,
    Path(name): Path<String>,
    reader: Reader,
) -> Response {
    project_or_version(app, name, None, reader).await
}

/// `GET /project/<name>/<version>/`: the project at one release.
pub async fn version(
    State(app): State<AppState>,
    Path((name, version)): Path<(String, String)>,
    reader: Reader,
) -> Response {
    project_or_version(app, name, Some(version), reader).await
}

async fn project_or_version(
    app: AppState,
    name: String,
    version: Option<String>,
    Reader { viewer, parts }: Reader,
) -> Response {
    let chrome = Chrome::new(&app, &parts, &viewer);
    let normalized = normalize(&name);
    if normalized != name {
        let rest = version.map_or_else(String::new, |v| format!("{v}/"));
        return Redirect::permanent(&format!("/project/{normalized}/{rest}")).into_response();
    }
    let view = match project_view(&app, &name).await {
        Ok(Some(view)) => view,
        Ok(None) => {
            return error_page(
                chrome,
                StatusCode::NOT_FOUND,
                "No such project",
                format!("There is no project called {name} on this index. Try searching for it."),
            );
        }
        Err(e) => return registry_error(&e),
    };
    let shown = match &version {
        None => view.latest(),
        Some(v) => view.release(v),
    };
    let Some(shown) = shown else {
        let message = match &version {
            Some(v) => format!("{name} has no version {v}: see its release history."),
            None => format!("{name} has no releases."),
        };
        return error_page(chrome, StatusCode::NOT_FOUND, "No such version", message);
    };
    let readme_html = match app.registry.readme(&view, &shown.release).await {
        Ok(html) => html,
        Err(e) => return registry_error(&e),
    };
    let page = project_page(chrome, &view, shown, version.is_some(), readme_html);
    html(StatusCode::OK, page.render())
}

/// The UI data of the project `name` (normalized), from the cache or read and cached: a page
/// view then reads no files from the catalog until the project changes.
async fn project_view(
    app: &AppState,
    name: &str,
) -> Result<Option<Arc<ProjectView>>, pyindex_registry::RegistryError> {
    if let Some(view) = app.cache.view(name) {
        return Ok(Some(view));
    }
    let epoch = app.cache.epoch();
    let Some(view) = app.registry.project_view(name).await? else {
        return Ok(None);
    };
    let view = Arc::new(view);
    app.cache.insert_view(name, view.clone(), epoch);
    Ok(Some(view))
}

/// The page of `view` showing the release `shown` (`pinned`: reached by its version's URL) with
/// its README as stored (sanitized HTML).
pub fn project_page(
    chrome: Chrome,
    view: &ProjectView,
    shown: &ReleaseFiles,
    pinned: bool,
    readme_html: String,
) -> ProjectPage {
    let project = &view.project;
    let release = &shown.release;
    let latest_version = view
        .latest()
        .map_or_else(String::new, |r| r.release.version.clone());
    let details = release.details.clone().unwrap_or_default();
    let spec = if pinned {
        format!("{}=={}", project.name, release.version)
    } else {
        project.name.clone()
    };
    let index = format!("{}/simple/", chrome.base_url);
    let (yanked, yank_reason) = yank_of(&release.yank);
    ProjectPage {
        name: project.name.clone(),
        display_name: project.display_name.clone(),
        version: release.version.clone(),
        is_latest: release.version == latest_version,
        latest_version,
        date: date(release.created),
        summary: release.summary.clone().unwrap_or_default(),
        status: status_label(project.status),
        status_reason: project.status_reason.clone().unwrap_or_default(),
        yanked,
        yank_reason,
        readme_html,
        commands: vec![
            Command {
                label: "pip",
                text: format!("pip install --index-url '{index}' {spec}"),
            },
            Command {
                label: "uv pip",
                text: format!("uv pip install --index-url '{index}' {spec}"),
            },
            Command {
                label: "uv add",
                text: format!("uv add --index '{index}' {spec}"),
            },
        ],
        links: links_of(&details),
        license: details
            .license_expression
            .clone()
            .or(details.license.clone())
            .unwrap_or_default(),
        author: details.author.clone().unwrap_or_default(),
        author_link: details.author_email.as_deref().and_then(mail_link),
        maintainer: details.maintainer.clone().unwrap_or_default(),
        keywords: details.keywords.clone().unwrap_or_default(),
        classifiers: details.classifiers.clone(),
        requires_python: release.requires_python.clone().unwrap_or_default(),
        requires_dist: release.requires_dist.clone(),
        versions: view
            .releases
            .iter()
            .map(|r| version_row(&project.name, r, &release.version))
            .collect(),
        files: shown.files.iter().map(file_row).collect(),
        chrome,
    }
}

fn yank_of(yank: &Yank) -> (bool, String) {
    match yank {
        Yank::Yanked(reason) => (true, reason.clone().unwrap_or_default()),
        Yank::NotYanked => (false, String::new()),
    }
}

fn version_row(project: &str, r: &ReleaseFiles, shown: &str) -> VersionRow {
    let (yanked, yank_reason) = yank_of(&r.release.yank);
    let version = &r.release.version;
    VersionRow {
        href: format!("/project/{project}/{version}/"),
        date: date(r.release.created),
        yanked,
        yank_reason,
        prerelease: parse_version(version).is_ok_and(|v| v.any_prerelease()),
        current: version == shown,
        version: version.clone(),
    }
}

fn file_row(file: &FileRecord) -> FileRow {
    let tags = parse_filename(&file.filename)
        .ok()
        .and_then(|f| {
            f.wheel_tags()
                .map(|t| format!("{}-{}-{}", t.python, t.abi, t.platform))
        })
        .unwrap_or_default();
    let filename = percent_encoding::utf8_percent_encode(&file.filename, PATH_SEGMENT);
    FileRow {
        href: format!("/files/{}/{filename}", file.sha256),
        filename: file.filename.clone(),
        kind: match file.kind {
            pyindex_packaging::DistKind::Wheel => "wheel",
            pyindex_packaging::DistKind::Sdist => "source",
        },
        size: size(file.size),
        sha256: file.sha256.clone(),
        requires_python: file.requires_python.clone().unwrap_or_default(),
        tags,
    }
}

/// The metadata's links that are safe to follow: home page, download URL and project URLs.
fn links_of(details: &ReleaseDetails) -> Vec<Link> {
    let named = [
        ("Home page", details.home_page.as_deref()),
        ("Download", details.download_url.as_deref()),
    ];
    named
        .into_iter()
        .filter_map(|(label, url)| Some((label.to_owned(), url?.to_owned())))
        .chain(details.project_urls.iter().cloned())
        .filter_map(|(label, url)| {
            let href = safe_url(&url)?;
            let label = if label.is_empty() { url } else { label };
            Some(Link { label, href })
        })
        .collect()
}

#[derive(Template)]
#[template(path = "ui/using.html")]
pub struct UsingPage {
    pub chrome: Chrome,
    /// `scheme://`.
    pub scheme: String,
    /// `host[:port]` and any path of the base URL.
    pub host: String,
    /// Whether names without a project here are served from upstream indexes.
    pub proxied: bool,
}

/// `GET /using`: how to install from and publish to this index, with its URL filled in.
pub async fn using(State(app): State<AppState>, Reader { viewer, parts }: Reader) -> Response {
    let chrome = Chrome::new(&app, &parts, &viewer);
    let (scheme, host) = chrome
        .base_url
        .split_once("://")
        .map(|(s, h)| (format!("{s}://"), h.to_owned()))
        .unwrap_or_else(|| ("http://".to_owned(), chrome.base_url.clone()));
    let page = UsingPage {
        chrome,
        scheme,
        host,
        proxied: app.registry.upstream().is_some(),
    };
    html(StatusCode::OK, page.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(size(512), "512 bytes");
        assert_eq!(size(1_500), "1.5 kB");
        assert_eq!(size(2_000_000), "2.0 MB");
    }
}
