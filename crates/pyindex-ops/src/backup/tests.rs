use super::*;

use crate::verify::tests::Index;

#[tokio::test]
async fn backup_then_restore_gives_back_every_file() {
    let index = Index::new().await;
    let one = index.publish("1.0", b"one").await;
    let big = index.publish("2.0", &vec![3u8; 2 << 20]).await;
    let dest = index.dir.path().join("backup");
    let manifest = backup(&index.catalog, index.blobs(), &dest, |p| panic!("{p}"))
        .await
        .unwrap();
    assert_eq!((manifest.files, manifest.blobs), (2, 4));
    assert_eq!(read_manifest(&dest).unwrap(), manifest);
    assert!(!dest.join("tmp").exists());
    // A file published after the backup is not in it.
    index.publish("3.0", b"three").await;

    let target = index.dir.path().join("restored");
    restore(&dest, &target, |p| panic!("{p}")).await.unwrap();
    let restored = LocalBlobStore::open(target.join(FILES_DIR)).unwrap();
    for key in [&one, &big] {
        assert_eq!(
            std::fs::read(restored.path_of(key)).unwrap(),
            std::fs::read(index.store.path_of(key)).unwrap()
        );
    }
    let catalog = SqliteCatalog::open(&target.join(CATALOG_FILE))
        .await
        .unwrap();
    let names: Vec<String> = catalog
        .stored_files()
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.filename)
        .collect();
    assert_eq!(names, ["pkg-1.0.tar.gz", "pkg-2.0.tar.gz"]);
}

#[tokio::test]
async fn non_empty_targets_and_incomplete_backups_are_refused() {
    let index = Index::new().await;
    index.publish("1.0", b"one").await;
    let err = backup(&index.catalog, index.blobs(), index.dir.path(), |_| {})
        .await
        .unwrap_err();
    assert!(matches!(err, BackupError::NotEmpty(_)), "{err}");
    let incomplete = index.dir.path().join("incomplete");
    std::fs::create_dir(&incomplete).unwrap();
    let err = restore(&incomplete, &index.dir.path().join("t"), |_| {})
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("not a complete pyindex backup"),
        "{err}"
    );
}

#[tokio::test]
async fn a_corrupt_blob_fails_the_backup_and_leaves_no_manifest() {
    let index = Index::new().await;
    let one = index.publish("1.0", b"one").await;
    std::fs::write(index.store.path_of(&one), b"eno").unwrap();
    let dest = index.dir.path().join("backup");
    let mut problems = Vec::new();
    let err = backup(&index.catalog, index.blobs(), &dest, |p| {
        problems.push(p.to_string())
    })
    .await
    .unwrap_err();
    assert!(
        matches!(err, BackupError::Damaged { count: 1, .. }),
        "{err}"
    );
    assert!(
        problems[0].starts_with("corrupt: pkg-1.0.tar.gz"),
        "{problems:?}"
    );
    assert!(!dest.join(MANIFEST_FILE).exists());
}
