use pyindex_catalog::{ProjectStatus, Yank};
use time::OffsetDateTime;

use super::*;
use crate::Actor;
use crate::test_support::Harness;

fn file(version: &str) -> FileRecord {
    FileRecord {
        project: "courier".into(),
        filename: format!("courier-{version}-py3-none-any.whl"),
        version: version.into(),
        kind: pyindex_packaging::DistKind::Wheel,
        size: 1,
        sha256: "ab".repeat(32),
        requires_python: None,
        metadata_sha256: None,
        uploaded: OffsetDateTime::UNIX_EPOCH,
        yank: Yank::NotYanked,
        project_status: ProjectStatus::Active,
        project_status_reason: None,
    }
}

#[test]
fn versions_are_distinct_in_pep440_order_unparsable_last() {
    let files: Vec<FileRecord> = ["0.10.0", "0.9.1", "zz-legacy", "0.9.0+cu1", "0.9.1", "aa"]
        .into_iter()
        .map(file)
        .collect();
    assert_eq!(
        release_versions(&files),
        ["0.9.0+cu1", "0.9.1", "0.10.0", "aa", "zz-legacy"]
    );
}

async fn set(h: &Harness, status: ProjectStatus) {
    h.registry
        .set_project_status(Actor::Cli, "courier", status, Some("why"))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_quarantined_page_lists_no_files_but_keeps_its_versions() {
    let h = Harness::new().await;
    let owner = h.user("olga", false).await;
    h.project_owned_by("courier", &owner).await;
    for (status, listed) in [
        (ProjectStatus::Archived, 1),
        (ProjectStatus::Deprecated, 1),
        (ProjectStatus::Quarantined, 0),
        (ProjectStatus::Active, 1),
    ] {
        set(&h, status).await;
        let page = h.registry.project_page("courier").await.unwrap().unwrap();
        assert_eq!(page.project.status, status);
        assert_eq!(page.files.len(), listed, "{status}");
        assert_eq!(page.versions, ["1.0"], "{status}");
    }
    assert!(h.registry.project_page("nope").await.unwrap().is_none());
}

#[tokio::test]
async fn quarantined_files_and_their_metadata_are_withheld() {
    let h = Harness::new().await;
    let owner = h.user("olga", false).await;
    h.project_owned_by("courier", &owner).await;
    let wheel = "courier-1.0-py3-none-any.whl";
    for (status, served) in [
        (ProjectStatus::Archived, true),
        (ProjectStatus::Deprecated, true),
        (ProjectStatus::Quarantined, false),
        (ProjectStatus::Active, true),
    ] {
        set(&h, status).await;
        let found = h.registry.download(wheel).await.unwrap().unwrap();
        assert_eq!(found.part, FilePart::Distribution);
        assert_eq!(found.blob_sha256(), Some("ab".repeat(32).as_str()));
        assert_eq!(found.withheld.is_none(), served, "{status}");
        if let Some(refusal) = found.withheld {
            let message = refusal.to_string();
            assert!(
                message.contains("'courier' is quarantined (reason: why)"),
                "{message}"
            );
        }
    }
    // The harness's wheel has no metadata file: its URL names nothing.
    assert!(
        h.registry
            .download(&format!("{wheel}.metadata"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(h.registry.download("nope.whl").await.unwrap().is_none());
}
