//! READMEs are rendered once, when a release is published (upload or import), stored with the
//! release, and read as stored; releases stored without one get theirs at their first view or
//! from the start-up step; a hostile README is sanitized before it is stored.

mod support;

use pyindex_catalog::{Browse, ProjectStatus, SqliteCatalog};
use pyindex_registry::{AccessMode, Actor, ImportRequest, Published};
use support::{Dist, Index, Upload};
use time::OffsetDateTime;

const HOSTILE: &str = "# Title\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n\
    [a](javascript:alert(3)) [b](data:text/html,x) <a href=\"vbscript:msgbox(4)\">c</a>\n\n\
    | t | u |\n|---|---|\n| 1 | 2 |\n";

/// The catalog under `index`, opened beside the registry's, to read what was stored.
async fn catalog(index: &Index) -> SqliteCatalog {
    SqliteCatalog::open(&index.dir().join("catalog.sqlite3"))
        .await
        .unwrap()
}

async fn stored_html(index: &Index, project: &str, version: &str) -> Option<String> {
    catalog(index)
        .await
        .readme(project, version)
        .await
        .unwrap()
        .unwrap()
        .html
}

/// What the registry gives a page for `project` `version`.
async fn page_readme(index: &Index, project: &str, version: &str) -> String {
    let view = index.registry.project_view(project).await.unwrap().unwrap();
    let release = &view.release(version).unwrap().release;
    index.registry.readme(&view, release).await.unwrap()
}

#[tokio::test]
async fn an_uploaded_readme_is_rendered_sanitized_and_stored() {
    let index = Index::new(AccessMode::Upload).await;
    let alice = index.user("alice").await;
    let wheel = Dist::new("shiny", "1.0")
        .readme("text/markdown", HOSTILE)
        .wheel();
    index
        .publish(Upload::wheel("shiny", "1.0", "shiny-1.0-py3-none-any.whl", wheel).by(&alice))
        .await;
    let html = stored_html(&index, "shiny", "1")
        .await
        .expect("stored at upload");
    assert!(html.contains("<h1>Title</h1>"), "{html}");
    assert!(html.contains("<td>1</td>"), "{html}");
    let lower = html.to_lowercase();
    for bad in ["<script", "onerror", "javascript:", "vbscript:", "data:"] {
        assert!(!lower.contains(bad), "{bad} stored in {html}");
    }
    assert_eq!(page_readme(&index, "shiny", "1.0").await, html);
}

#[tokio::test]
async fn an_imported_readme_is_stored_too_and_other_types_are_preformatted() {
    let index = Index::new(AccessMode::Upload).await;
    let source = tempfile::tempdir().unwrap();
    let path = source.path().join("calm-2.0-py3-none-any.whl");
    let wheel = Dist::new("calm", "2.0")
        .readme("text/x-rst", "Calm\n====\n\n<b>not bold</b>\n")
        .wheel();
    std::fs::write(&path, wheel).unwrap();
    let published = index
        .registry
        .import_file(ImportRequest {
            source: path,
            filename: "calm-2.0-py3-none-any.whl".into(),
            project: None,
            expected_sha256: None,
            uploaded: OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();
    assert!(
        matches!(published, Published::Added { .. }),
        "{published:?}"
    );
    assert_eq!(
        stored_html(&index, "calm", "2").await.as_deref(),
        Some("<pre class=\"readme-text\">Calm\n====\n\n&lt;b&gt;not bold&lt;/b&gt;\n</pre>")
    );
}

#[tokio::test]
async fn the_page_reads_the_stored_html_and_renders_older_releases_once() {
    let index = Index::new(AccessMode::Upload).await;
    let alice = index.user("alice").await;
    for version in ["1.0", "2.0"] {
        let wheel = Dist::new("aged", version)
            .readme("text/markdown", &format!("*version {version}*"))
            .wheel();
        let filename = format!("aged-{version}-py3-none-any.whl");
        index
            .publish(Upload::wheel("aged", version, &filename, wheel).by(&alice))
            .await;
    }
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        index.dir().join("catalog.sqlite3").display()
    ))
    .await
    .unwrap();
    // What is stored is what a page shows: nothing is rendered per view.
    sqlx::query("UPDATE releases SET readme_html = '<p>as stored</p>' WHERE version = '2.0'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(page_readme(&index, "aged", "2.0").await, "<p>as stored</p>");
    // Releases from before READMEs were stored: rendered at the first view, and stored.
    sqlx::query("UPDATE releases SET readme_html = NULL")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        page_readme(&index, "aged", "1.0").await,
        "<p><em>version 1.0</em></p>\n"
    );
    assert_eq!(
        stored_html(&index, "aged", "1").await.as_deref(),
        Some("<p><em>version 1.0</em></p>\n")
    );
    // ... or by the start-up step, once.
    assert_eq!(index.registry.render_missing_readmes().await.unwrap(), 1);
    assert_eq!(index.registry.render_missing_readmes().await.unwrap(), 0);
    assert_eq!(
        stored_html(&index, "aged", "2").await.as_deref(),
        Some("<p><em>version 2.0</em></p>\n")
    );
}

#[tokio::test]
async fn a_quarantined_project_shows_no_readme() {
    let index = Index::new(AccessMode::Upload).await;
    let alice = index.user("alice").await;
    let wheel = Dist::new("hidden", "1.0")
        .readme("text/markdown", "secret words")
        .wheel();
    index
        .publish(Upload::wheel("hidden", "1.0", "hidden-1.0-py3-none-any.whl", wheel).by(&alice))
        .await;
    assert!(
        page_readme(&index, "hidden", "1.0")
            .await
            .contains("secret words")
    );
    index
        .registry
        .set_project_status(Actor::Cli, "hidden", ProjectStatus::Quarantined, None)
        .await
        .unwrap();
    assert_eq!(page_readme(&index, "hidden", "1.0").await, "");
}
