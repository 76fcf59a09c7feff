//! Importing files from an existing index tree: the upload's rules without a form, the link's
//! hash, the folder's project, the audit action `import`, and nothing changed by a second run.

mod support;

use std::path::PathBuf;

use pyindex_packaging::ProjectName;
use pyindex_registry::{AccessMode, ImportRequest, Published, RegistryError};
use support::{Dist, Index};
use time::OffsetDateTime;

struct Source {
    dir: tempfile::TempDir,
}

impl Source {
    fn new() -> Source {
        Source {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn write(&self, filename: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(filename);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

fn request(path: PathBuf, filename: &str, project: Option<&str>) -> ImportRequest {
    ImportRequest {
        source: path,
        filename: filename.to_owned(),
        project: project.map(|p| ProjectName::new(p).unwrap()),
        expected_sha256: None,
        uploaded: OffsetDateTime::from_unix_timestamp(1_600_000_000).unwrap(),
    }
}

fn refusal(result: Result<Published, RegistryError>) -> String {
    match result {
        Err(RegistryError::Rejected { message, .. }) => message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_file_is_imported_once_with_its_mtime_and_an_import_audit_record() {
    let index = Index::new(AccessMode::Upload).await;
    let source = Source::new();
    let bytes = Dist::new("ladder", "1.0").wheel();
    let path = source.write("ladder-1.0-py3-none-any.whl", &bytes);
    let req = request(path, "ladder-1.0-py3-none-any.whl", Some("ladder"));

    let first = index.registry.import_file(req.clone()).await.unwrap();
    assert!(matches!(first, Published::Added { .. }), "{first:?}");
    let files = index
        .registry
        .catalog()
        .project_files("ladder")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(files.files[0].uploaded.unix_timestamp(), 1_600_000_000);
    assert_eq!(index.audited("import").await.len(), 1);
    let blobs = index.blob_count();

    let again = index.registry.import_file(req).await.unwrap();
    assert!(
        matches!(again, Published::AlreadyPresent { .. }),
        "{again:?}"
    );
    assert_eq!(index.audited("import").await.len(), 1);
    assert_eq!(index.blob_count(), blobs);
    assert_eq!(index.spooled_count(), 0);
}

#[tokio::test]
async fn a_hash_mismatch_another_project_and_a_truncated_file_are_refused() {
    let index = Index::new(AccessMode::Upload).await;
    let source = Source::new();
    let bytes = Dist::new("ladder", "1.0").wheel();
    let path = source.write("ladder-1.0-py3-none-any.whl", &bytes);

    let mut wrong = request(path.clone(), "ladder-1.0-py3-none-any.whl", Some("ladder"));
    wrong.expected_sha256 = Some("00".repeat(32));
    assert!(refusal(index.registry.import_file(wrong).await).starts_with("sha256 mismatch"));

    let other = Dist::new("ladder", "1.0").metadata("other", "1.0").wheel();
    let other_path = source.write("o.whl", &other);
    let message = refusal(
        index
            .registry
            .import_file(request(
                other_path,
                "ladder-1.0-py3-none-any.whl",
                Some("ladder"),
            ))
            .await,
    );
    assert!(
        message.contains("names the project 'other', not 'ladder'"),
        "{message}"
    );
    let elsewhere = source.write("other-1.0-py3-none-any.whl", &other);
    let message = refusal(
        index
            .registry
            .import_file(request(
                elsewhere,
                "other-1.0-py3-none-any.whl",
                Some("ladder"),
            ))
            .await,
    );
    assert!(message.contains("is not the project 'ladder'"), "{message}");

    let truncated = source.write("t.whl", &bytes[..bytes.len() / 2]);
    refusal(
        index
            .registry
            .import_file(request(
                truncated,
                "ladder-1.0-py3-none-any.whl",
                Some("ladder"),
            ))
            .await,
    );
    assert!(index.filenames("ladder").await.is_empty());
    assert!(index.audited("import").await.is_empty());
}

#[tokio::test]
async fn without_a_folder_the_metadata_names_the_project_of_a_legacy_sdist() {
    let index = Index::new(AccessMode::Upload).await;
    let source = Source::new();
    let dist = Dist::new("Foo.Bar", "1.0");
    let path = source.write("Foo.Bar-1.0.tar.gz", &dist.sdist());
    let published = index
        .registry
        .import_file(request(path, "Foo.Bar-1.0.tar.gz", None))
        .await
        .unwrap();
    assert_eq!(
        published,
        Published::Added {
            filename: "Foo.Bar-1.0.tar.gz".into(),
            project: "foo-bar".into()
        }
    );
}
