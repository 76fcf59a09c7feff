//! Rendering tests of every page through the real router: content, hostile metadata, the `all`
//! mode's privacy, sign-in and tokens.

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode, header};
use pyindex_catalog::{
    AuditEntry, Catalog, NewFile, ReleaseDetails, ReleaseMetadata, SqliteCatalog, Yank,
};
use pyindex_packaging::archive::ArchiveLimits;
use pyindex_registry::{AccessMode, Actor, Registry};
use pyindex_storage::{LocalBlobStore, Spool};
use time::OffsetDateTime;
use tower::ServiceExt;

use crate::{AppState, router};

struct Fixture {
    _dir: tempfile::TempDir,
    catalog: Arc<SqliteCatalog>,
    app: AppState,
}

async fn fixture(mode: AccessMode) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let catalog = Arc::new(
        SqliteCatalog::open(&dir.path().join("catalog.sqlite3"))
            .await
            .unwrap(),
    );
    let blobs = Arc::new(LocalBlobStore::open(dir.path().join("files")).unwrap());
    let spool = Spool::open(dir.path().join("tmp")).unwrap();
    let registry = Registry::new(catalog.clone(), blobs, spool, ArchiveLimits::default())
        .with_access_mode(mode);
    Fixture {
        _dir: dir,
        catalog,
        app: AppState::new(registry, 1 << 20),
    }
}

fn audit() -> AuditEntry {
    AuditEntry {
        at: OffsetDateTime::now_utc(),
        actor: "cli".into(),
        action: "publish".into(),
        subject: "x".into(),
        address: None,
        detail: None,
    }
}

/// Records a wheel of `name` `version` with `release` metadata straight into the catalog.
async fn publish(catalog: &SqliteCatalog, name: &str, version: &str, release: ReleaseMetadata) {
    publish_tagged(catalog, name, version, "py3-none-any", release).await;
}

/// Records a wheel of `name` `version` with the wheel tags `tags`.
async fn publish_tagged(
    catalog: &SqliteCatalog,
    name: &str,
    version: &str,
    tags: &str,
    release: ReleaseMetadata,
) {
    let filename = format!("{}-{version}-{tags}.whl", name.replace('-', "_"));
    let parsed = pyindex_packaging::parse_filename(&filename).unwrap();
    let sha = format!("{:064x}", {
        use std::hash::{BuildHasher, RandomState};
        RandomState::new().hash_one(&filename)
    });
    let file = NewFile {
        project: parsed.project(),
        display_name: name.to_owned(),
        version: parsed.version.to_string(),
        canonical_version: pyindex_packaging::canonical_version(&parsed.version),
        dist_key: parsed.identity(),
        kind: parsed.kind(),
        filename,
        size: 1234,
        sha256: sha,
        md5: "m".into(),
        blake2_256: "b".into(),
        requires_python: Some(">=3.9".into()),
        metadata_sha256: None,
        release,
        uploaded: OffsetDateTime::now_utc(),
        uploader: None,
    };
    catalog.add_file(&file, &audit()).await.unwrap();
}

const HOSTILE_MARKDOWN: &str = "# Evil\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n\
    [a](javascript:alert(3)) [b](vbscript:msgbox(4)) [c](data:text/html,<script>alert(5)</script>)\n\n\
    <a href=\"JaVaScRiPt:alert(6)\" onclick=\"alert(7)\">x</a> <iframe src=\"/\"></iframe>\n\n\
    <svg onload=alert(8)></svg> <form action=\"https://evil.example/\"><input name=x></form>";

fn hostile_release() -> ReleaseMetadata {
    ReleaseMetadata {
        summary: Some("<script>alert('summary')</script> \"><img src=x onerror=alert(9)>".into()),
        description: Some(HOSTILE_MARKDOWN.into()),
        description_content_type: Some("text/markdown".into()),
        requires_python: Some(">=3.9".into()),
        requires_dist: vec!["<script>x</script>".into()],
        details: ReleaseDetails {
            license: Some("</dd><script>alert(10)</script>".into()),
            author: Some("<img src=x onerror=alert(11)>".into()),
            author_email: Some("\"><script>alert(12)</script>@x".into()),
            home_page: Some("JaVaScRiPt:alert(13)".into()),
            download_url: Some("data:text/html;base64,PHNjcmlwdD5hbGVydCgxNCk8L3NjcmlwdD4=".into()),
            project_urls: vec![
                ("Docs".into(), "javascript:alert(15)".into()),
                (
                    "Bad\"><script>alert(16)</script>".into(),
                    "vbscript:msgbox(17)".into(),
                ),
                ("Source".into(), "https://example.invalid/src".into()),
                ("Tab".into(), "java\tscript:alert(18)".into()),
            ],
            keywords: Some("\"><svg onload=alert(19)>".into()),
            classifiers: vec!["<b onmouseover=alert(20)>x</b>".into()],
            ..ReleaseDetails::default()
        },
        // Not rendered at publication (as a release from before schema version 7): the page
        // renders it.
        readme_html: None,
    }
}

async fn get(
    app: &AppState,
    path: &str,
    cookie: Option<&str>,
) -> (StatusCode, http::HeaderMap, String) {
    // What a browser asks for.
    let mut request = Request::get(path)
        .header(header::HOST, "127.0.0.1:9001")
        .header(header::ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    send(app, request.body(Body::empty()).unwrap()).await
}

async fn send(app: &AppState, request: Request<Body>) -> (StatusCode, http::HeaderMap, String) {
    let response = router(app.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 24)
        .await
        .unwrap();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

async fn post_form(
    app: &AppState,
    path: &str,
    cookie: Option<&str>,
    form: &str,
) -> (StatusCode, http::HeaderMap, String) {
    let mut request = Request::post(path)
        .header(header::HOST, "127.0.0.1:9001")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    send(app, request.body(Body::from(form.to_owned())).unwrap()).await
}

/// Every tag of `html` (user text is escaped, so a raw `<` starts a real tag) must be free of
/// scripts, event handlers, frames and dangerous URL schemes.
fn assert_nothing_executable(html: &str, page: &str) {
    let lower = html.to_lowercase();
    for tag in lower
        .split('<')
        .skip(1)
        .map(|t| t.split('>').next().unwrap_or_default())
    {
        let name = tag.split([' ', '\n', '/']).next().unwrap_or_default();
        assert!(
            ![
                "script", "iframe", "svg", "object", "embed", "frame", "base"
            ]
            .contains(&name),
            "{page}: tag <{tag}>"
        );
        let attributes = tag.split_once(' ').map_or("", |(_, a)| a);
        for word in attributes.split([' ', '\n', '\t']) {
            assert!(
                !(word.starts_with("on") && word.contains('=')),
                "{page}: event handler in <{tag}>"
            );
        }
        for scheme in ["javascript:", "vbscript:", "data:text", "data:image/svg"] {
            assert!(!tag.contains(scheme), "{page}: {scheme} in <{tag}>");
        }
    }
}

#[tokio::test]
async fn hostile_metadata_runs_nowhere() {
    let f = fixture(AccessMode::Upload).await;
    publish(&f.catalog, "evil-pkg", "1.0", hostile_release()).await;
    f.catalog
        .set_yank(
            "evil-pkg",
            "1",
            Yank::Yanked(Some("<script>alert(21)</script>".into())),
            &audit(),
        )
        .await
        .unwrap();
    for path in [
        "/",
        "/search?q=evil",
        "/search?q=script",
        "/project/evil-pkg/",
        "/project/evil-pkg/1.0/",
        "/using",
    ] {
        let (status, headers, body) = get(&f.app, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            super::CONTENT_SECURITY_POLICY,
            "{path}"
        );
        assert_nothing_executable(&body, path);
    }
    let (_, _, page) = get(&f.app, "/project/evil-pkg/", None).await;
    // The text is there, escaped; the safe link survives; the unsafe ones are gone.
    assert!(
        page.contains("&#60;script&#62;alert(&#39;summary&#39;)"),
        "{page}"
    );
    assert!(
        page.contains("href=\"https://example.invalid/src\""),
        "{page}"
    );
    assert!(!page.contains(">Docs<"), "{page}");
    assert!(page.contains("yanked"), "{page}");
}

#[tokio::test]
async fn project_page_shows_the_readme_stored_at_publication() {
    let f = fixture(AccessMode::Upload).await;
    let release = ReleaseMetadata {
        description: Some("# Rendered now".into()),
        description_content_type: Some("text/markdown".into()),
        readme_html: Some("<p>stored when published</p>".into()),
        ..ReleaseMetadata::default()
    };
    publish(&f.catalog, "kept", "1.0", release).await;
    for path in ["/project/kept/", "/project/kept/1.0/"] {
        let (status, _, page) = get(&f.app, path, None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("<p>stored when published</p>"), "{page}");
        assert!(!page.contains("Rendered now"), "rendered per view: {page}");
    }
}

#[tokio::test]
async fn a_cached_project_page_follows_changes() {
    let f = fixture(AccessMode::Upload).await;
    publish(&f.catalog, "moving", "1.0", ReleaseMetadata::default()).await;
    let (_, _, page) = get(&f.app, "/project/moving/", None).await;
    assert!(!page.contains("deprecated"), "{page}");
    // A change through the registry drops the project's cached data.
    f.app
        .registry
        .set_project_status(
            Actor::Cli,
            "moving",
            pyindex_catalog::ProjectStatus::Deprecated,
            Some("use still"),
        )
        .await
        .unwrap();
    let (_, _, page) = get(&f.app, "/project/moving/", None).await;
    assert!(
        page.contains("deprecated") && page.contains("use still"),
        "{page}"
    );
}

#[tokio::test]
async fn project_page_shows_readme_versions_files_and_commands() {
    let f = fixture(AccessMode::Upload).await;
    for version in ["1.0", "1.1", "2.0rc1"] {
        let release = ReleaseMetadata {
            summary: Some(format!("Ranks things ({version})")),
            description: Some(
                "# Ranker\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```\ncode\n```\n".into(),
            ),
            description_content_type: Some("text/markdown".into()),
            details: ReleaseDetails {
                license: Some("MIT".into()),
                author: Some("Ada".into()),
                project_urls: vec![("Source".into(), "https://example.invalid/ranker".into())],
                ..ReleaseDetails::default()
            },
            ..ReleaseMetadata::default()
        };
        publish(&f.catalog, "ranker", version, release).await;
    }
    f.catalog
        .set_yank(
            "ranker",
            "1.1",
            Yank::Yanked(Some("broken build".into())),
            &audit(),
        )
        .await
        .unwrap();
    let (status, _, page) = get(&f.app, "/project/ranker/", None).await;
    assert_eq!(status, StatusCode::OK);
    // Quotes are escaped in HTML text; a browser shows (and copies) them as quotes.
    let page = page.replace("&#39;", "'").replace("&#x27;", "'");
    // The latest release is the newest neither yanked nor a pre-release.
    assert!(
        page.contains("ranker <span class=\"version\">1.0</span>"),
        "{page}"
    );
    assert!(
        page.contains("pip install --index-url 'http://127.0.0.1:9001/simple/' ranker"),
        "{page}"
    );
    assert!(
        page.contains("uv add --index 'http://127.0.0.1:9001/simple/' ranker"),
        "{page}"
    );
    assert!(
        page.contains("<table>") && page.contains("<td>1</td>"),
        "{page}"
    );
    assert!(
        page.contains("broken build") && page.contains("pre-release"),
        "{page}"
    );
    assert!(
        page.contains("ranker-1.0-py3-none-any.whl") && page.contains("1.2 kB"),
        "{page}"
    );
    assert!(
        page.contains("py3-none-any") && page.contains("&#62;=3.9"),
        "{page}"
    );
    assert!(page.contains(">MIT<") && page.contains(">Ada<"), "{page}");
    for v in [
        "/project/ranker/1.0/",
        "/project/ranker/1.1/",
        "/project/ranker/2.0rc1/",
    ] {
        assert!(page.contains(v), "{v} in {page}");
    }
    let (status, _, page) = get(&f.app, "/project/ranker/1.1/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("ranker==1.1") && page.contains("This version is yanked"),
        "{page}"
    );
    assert_eq!(
        get(&f.app, "/project/ranker/9.9/", None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&f.app, "/project/nope/", None).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, headers, _) = get(&f.app, "/project/Ranker/", None).await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(headers[header::LOCATION], "/project/ranker/");
}

#[tokio::test]
async fn home_search_and_using_pages() {
    let f = fixture(AccessMode::Upload).await;
    for name in ["aardvark-ranker", "ranker", "zebra"] {
        publish(
            &f.catalog,
            name,
            "1.0",
            ReleaseMetadata {
                summary: Some(format!("about {name}")),
                ..ReleaseMetadata::default()
            },
        )
        .await;
    }
    let (_, _, home) = get(&f.app, "/", None).await;
    let home = home.replace("&#39;", "'").replace("&#x27;", "'");
    assert!(
        home.contains("<form") && home.contains("type=\"search\""),
        "{home}"
    );
    assert!(home.contains("<strong>3</strong> projects"), "{home}");
    assert!(home.contains("/project/zebra/1.0/"), "{home}");
    assert!(
        home.contains("twine upload --repository-url 'http://127.0.0.1:9001/legacy/'"),
        "{home}"
    );
    let (_, _, results) = get(&f.app, "/search?q=ranker", None).await;
    let exact = results.find("/project/ranker/").unwrap();
    let other = results.find("/project/aardvark-ranker/").unwrap();
    assert!(exact < other, "{results}");
    assert!(!results.contains("/project/zebra/"), "{results}");
    let (status, _, _) = get(&f.app, "/search?q=x&page=0", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, _, using) = get(&f.app, "/using", None).await;
    for snippet in [
        "index-url = http://127.0.0.1:9001/simple/",
        "[[tool.uv.index]]",
        "UV_INDEX_PYINDEX_PASSWORD",
        "repository = http://127.0.0.1:9001/legacy/",
        "uv publish --publish-url",
        "poetry source add",
        "[[tool.pdm.source]]",
        "--mount=type=secret",
        "@127.0.0.1:9001/simple/",
    ] {
        assert!(using.contains(snippet), "{snippet} in {using}");
    }
    let (status, headers, css) = get(&f.app, "/ui/style.css", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(css.contains("prefers-color-scheme: dark"));
}

#[tokio::test]
async fn all_mode_needs_sign_in_and_names_nothing_before() {
    let f = fixture(AccessMode::All).await;
    publish(
        &f.catalog,
        "secret-thing",
        "1.0",
        ReleaseMetadata::default(),
    )
    .await;
    f.app
        .registry
        .add_user(Actor::Cli, "alice", "correct horse battery", false)
        .await
        .unwrap();
    for path in [
        "/",
        "/search?q=secret",
        "/project/secret-thing/",
        "/project/secret-thing/1.0/",
        "/using",
        "/account/tokens",
    ] {
        let (status, headers, body) = get(&f.app, path, None).await;
        assert!(status.is_redirection(), "{path}: {status}");
        assert!(
            headers[header::LOCATION]
                .to_str()
                .unwrap()
                .starts_with("/signin?next="),
            "{path}"
        );
        assert!(!body.contains("secret-thing"), "{path}");
    }
    // Tools, which do not ask for HTML, get the Basic challenge instead.
    let tool = Request::get("/project/secret-thing/")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = send(&f.app, tool).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.contains_key(header::WWW_AUTHENTICATE));
    assert!(!body.contains("secret-thing"));
    let (status, _, page) = get(&f.app, "/signin", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("secret-thing"), "{page}");

    let (status, _, page) =
        post_form(&f.app, "/signin", None, "user=alice&password=wrong&next=/").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("Invalid user name or password"), "{page}");

    let (status, headers, _) = post_form(
        &f.app,
        "/signin",
        None,
        "user=alice&password=correct+horse+battery&next=%2F%2Fevil.example%2F",
    )
    .await;
    assert!(status.is_redirection());
    assert_eq!(headers[header::LOCATION], "/", "never off-site");
    let set_cookie = headers[header::SET_COOKIE].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let (status, _, home) = get(&f.app, "/", Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        home.contains("secret-thing") && home.contains("Sign out alice"),
        "{home}"
    );

    // Tokens: the form needs the session's anti-forgery token.
    let (_, _, tokens) = get(&f.app, "/account/tokens", Some(&cookie)).await;
    let csrf = tokens
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let (status, _, _) = post_form(
        &f.app,
        "/account/tokens",
        Some(&cookie),
        "csrf=forged&description=ci",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, headers, page) = post_form(
        &f.app,
        "/account/tokens",
        Some(&cookie),
        &format!("csrf={csrf}&description=ci&projects=secret-thing&expires_days=30&read_only=1"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let secret = page
        .split("id=\"new-token\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    assert!(secret.starts_with("pyindex_"), "{secret}");
    let listed = f.app.registry.tokens(Some("alice")).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].read_only && listed[0].expires.is_some());
    assert_eq!(
        listed[0].projects.as_deref(),
        Some(&["secret-thing".to_owned()][..])
    );
    // Shown once: the list does not repeat it.
    let (_, _, again) = get(&f.app, "/account/tokens", Some(&cookie)).await;
    assert!(!again.contains(&secret) && again.contains("ci"));
    let revoke = format!("/account/tokens/{}/revoke", listed[0].id);
    // Every form checks the anti-forgery token: without it nothing is revoked, nor signed out.
    for path in [revoke.as_str(), "/signout"] {
        let (status, _, _) = post_form(&f.app, path, Some(&cookie), "csrf=forged").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    assert!(
        f.app.registry.tokens(Some("alice")).await.unwrap()[0]
            .revoked
            .is_none()
    );
    assert_eq!(
        get(&f.app, "/account/tokens", Some(&cookie)).await.0,
        StatusCode::OK,
        "still signed in"
    );
    let (status, _, _) = post_form(&f.app, &revoke, Some(&cookie), &format!("csrf={csrf}")).await;
    assert!(status.is_redirection());
    assert!(
        f.app.registry.tokens(Some("alice")).await.unwrap()[0]
            .revoked
            .is_some()
    );

    // Signing out revokes the session on the server.
    let (status, headers, _) =
        post_form(&f.app, "/signout", Some(&cookie), &format!("csrf={csrf}")).await;
    assert!(status.is_redirection());
    assert!(
        headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert!(get(&f.app, "/", Some(&cookie)).await.0.is_redirection());
}

#[tokio::test]
async fn cross_site_form_posts_are_refused() {
    let f = fixture(AccessMode::Upload).await;
    let request = Request::post("/signin")
        .header(header::HOST, "127.0.0.1:9001")
        .header("sec-fetch-site", "cross-site")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("user=a&password=b"))
        .unwrap();
    assert_eq!(send(&f.app, request).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_large_project_renders_in_one_request() {
    let f = fixture(AccessMode::Upload).await;
    for minor in 0..60 {
        publish(
            &f.catalog,
            "big",
            &format!("1.{minor}"),
            ReleaseMetadata::default(),
        )
        .await;
    }
    let (status, _, page) = get(&f.app, "/project/big/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("big <span class=\"version\">1.59</span>"),
        "{page}"
    );
    assert_eq!(page.matches("/project/big/1.").count(), 60);
}

/// Figures for the issue's sizes: a project with 500 versions and 2,000 files, and a search
/// over 10,000 projects. Prints timings of this (debug) build; asserts only on content.
#[tokio::test]
#[ignore = "slow set-up; run with --ignored --nocapture to see the figures"]
async fn figures_for_a_large_project_and_a_large_index() {
    let f = fixture(AccessMode::Upload).await;
    let tags = [
        "py3-none-any",
        "cp312-cp312-manylinux_2_17_x86_64",
        "cp312-cp312-win_amd64",
        "cp312-cp312-macosx_11_0_arm64",
    ];
    for version in 0..500 {
        for tag in tags {
            let release = ReleaseMetadata {
                description: Some("# Big\n\nA table:\n\n| a | b |\n|---|---|\n| 1 | 2 |\n".into()),
                description_content_type: Some("text/markdown".into()),
                ..ReleaseMetadata::default()
            };
            publish_tagged(&f.catalog, "big", &format!("1.{version}"), tag, release).await;
        }
    }
    for i in 0..10_000 {
        let release = ReleaseMetadata {
            summary: Some(format!("project number {i}")),
            ..ReleaseMetadata::default()
        };
        publish(&f.catalog, &format!("proj-{i}"), "1.0", release).await;
    }
    for (path, check) in [
        ("/project/big/", "big <span class=\"version\">1.499</span>"),
        ("/search?q=proj-1234", "/project/proj-1234/"),
        ("/search?q=number+99", "/project/proj-99/"),
    ] {
        let mut times = Vec::new();
        for _ in 0..50 {
            let start = std::time::Instant::now();
            let (status, _, page) = get(&f.app, path, None).await;
            times.push(start.elapsed());
            assert_eq!(status, StatusCode::OK);
            assert!(page.contains(check), "{path}");
        }
        times.sort();
        println!(
            "{path}: median {:?}, p99 {:?} (debug build, one request at a time)",
            times[times.len() / 2],
            times[times.len() * 99 / 100]
        );
    }
}
