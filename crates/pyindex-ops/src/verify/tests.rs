use super::*;

use pyindex_catalog::{AuditEntry, NewFile, ReleaseMetadata};
use pyindex_storage::{Hasher, LocalBlobStore, Spool};
use time::OffsetDateTime;

/// A catalog and a local store in a temporary directory.
pub(crate) struct Index {
    pub dir: tempfile::TempDir,
    pub catalog: pyindex_catalog::SqliteCatalog,
    pub store: Arc<LocalBlobStore>,
    pub spool: Spool,
}

impl Index {
    pub async fn new() -> Index {
        let dir = tempfile::tempdir().unwrap();
        let catalog = pyindex_catalog::SqliteCatalog::open(&dir.path().join("catalog.sqlite3"))
            .await
            .unwrap();
        let store = Arc::new(LocalBlobStore::open(dir.path().join("files")).unwrap());
        let spool = Spool::open(dir.path().join("tmp")).unwrap();
        Index {
            dir,
            catalog,
            store,
            spool,
        }
    }

    /// Stores `data` as a blob (without recording it) and returns its key.
    pub async fn store(&self, data: &[u8]) -> BlobKey {
        let file = self.spool.spool_bytes(data).await.unwrap();
        let key = BlobKey::parse(&file.digests().sha256).unwrap();
        self.store.put_spooled(&key, file).await.unwrap();
        key
    }

    /// Publishes `pkg-<version>.tar.gz` with `data` and a metadata file.
    pub async fn publish(&self, version: &str, data: &[u8]) -> BlobKey {
        let key = self.store(data).await;
        let metadata = self.store(format!("Name: pkg\n{version}").as_bytes()).await;
        let filename = format!("pkg-{version}.tar.gz");
        let parsed = pyindex_packaging::parse_filename(&filename).unwrap();
        let file = NewFile {
            project: parsed.project(),
            display_name: "pkg".into(),
            version: parsed.version.to_string(),
            canonical_version: pyindex_packaging::canonical_version(&parsed.version),
            filename: filename.clone(),
            dist_key: parsed.identity(),
            kind: parsed.kind(),
            size: data.len() as u64,
            sha256: key.to_string(),
            md5: "m".into(),
            blake2_256: "b".into(),
            requires_python: None,
            metadata_sha256: Some(metadata.to_string()),
            release: ReleaseMetadata::default(),
            uploaded: OffsetDateTime::now_utc(),
            uploader: None,
        };
        let audit = AuditEntry {
            at: OffsetDateTime::now_utc(),
            actor: "cli".into(),
            action: "publish".into(),
            subject: filename,
            address: None,
            detail: None,
        };
        self.catalog.add_file(&file, &audit).await.unwrap();
        key
    }

    pub fn blobs(&self) -> Arc<dyn BlobStore> {
        self.store.clone()
    }
}

async fn problems_of(index: &Index) -> (Summary, Vec<String>) {
    let mut problems = Vec::new();
    let summary = verify(&index.catalog, index.blobs(), 2, |p| {
        problems.push(p.to_string())
    })
    .await
    .unwrap();
    (summary, problems)
}

#[test]
fn metadata_files_are_named_after_their_file() {
    let files = [StoredFile {
        filename: "a-1.tar.gz".into(),
        sha256: "aa".into(),
        size: 1,
        metadata_sha256: Some("bb".into()),
    }];
    let names: Vec<String> = blob_refs(&files).into_iter().map(|b| b.name).collect();
    assert_eq!(names, ["a-1.tar.gz", "a-1.tar.gz.metadata"]);
}

#[test]
fn age_counts_from_the_last_write_and_the_future_is_new() {
    let now = SystemTime::now();
    let hour = Duration::from_secs(3600);
    assert!(is_older_than(now - 2 * hour, now, hour));
    assert!(!is_older_than(now - hour / 2, now, hour));
    assert!(is_older_than(now, now, Duration::ZERO));
    assert!(!is_older_than(now + hour, now, Duration::ZERO));
}

#[tokio::test]
async fn a_sound_index_has_no_problems() {
    let index = Index::new().await;
    index.publish("1.0", b"one").await;
    index.publish("2.0", &vec![7u8; 3 << 20]).await;
    let (summary, problems) = problems_of(&index).await;
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!((summary.files, summary.blobs, summary.problems), (2, 4, 0));
    assert!(summary.bytes > 3 << 20);
}

#[tokio::test]
async fn flipped_and_deleted_blobs_are_reported_by_filename() {
    let index = Index::new().await;
    let one = index.publish("1.0", b"one").await;
    let two = index.publish("2.0", b"two").await;
    let path = index.store.path_of(&one);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    std::fs::remove_file(index.store.path_of(&two)).unwrap();
    let (summary, mut problems) = problems_of(&index).await;
    problems.sort();
    assert_eq!(summary.problems, 2);
    assert_eq!(
        problems,
        [
            format!(
                "corrupt: pkg-1.0.tar.gz (expected sha256 {one}, found {})",
                Hasher::digest(&bytes).sha256
            ),
            format!("missing: pkg-2.0.tar.gz (sha256 {two})"),
        ]
    );
}

#[tokio::test]
async fn repair_removes_old_orphans_only_and_never_a_referenced_blob() {
    let index = Index::new().await;
    let listed = index.publish("1.0", b"one").await;
    let orphan = index.store(b"left by a crash").await;
    // Within the grace period: kept.
    let kept = remove_orphans(
        &index.catalog,
        &index.catalog,
        &*index.store,
        Duration::from_secs(3600),
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(kept, Removed::default());
    let mut reported = Vec::new();
    let removed = remove_orphans(
        &index.catalog,
        &index.catalog,
        &*index.store,
        Duration::ZERO,
        |b| reported.push(b.key.clone()),
    )
    .await
    .unwrap();
    assert_eq!(removed.blobs, 1);
    assert_eq!(reported, std::slice::from_ref(&orphan));
    assert_eq!(index.store.size(&orphan).await.unwrap(), None);
    assert!(index.store.size(&listed).await.unwrap().is_some());
    assert_eq!(problems_of(&index).await.1, Vec::<String>::new());
}

#[tokio::test]
async fn stale_spool_files_are_removed_and_fresh_ones_kept() {
    let index = Index::new().await;
    let spool = index.dir.path().join("tmp");
    std::fs::write(spool.join("upload-old"), b"x").unwrap();
    let old = SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(spool.join("upload-old"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    std::fs::write(spool.join("upload-new"), b"x").unwrap();
    let removed = remove_stale_spool_files(&spool, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(removed, [spool.join("upload-old")]);
    assert!(spool.join("upload-new").exists());
}

#[tokio::test]
async fn repair_keeps_cached_upstream_files() {
    use pyindex_catalog::UpstreamIndex;
    let index = Index::new().await;
    let cached = index.store(b"an upstream wheel").await;
    let orphan = index.store(b"left by a crash").await;
    index
        .catalog
        .add_upstream_blob(&pyindex_catalog::CachedBlob {
            sha256: cached.to_string(),
            size: 17,
            last_used: time::OffsetDateTime::now_utc(),
        })
        .await
        .unwrap();
    let mut reported = Vec::new();
    let removed = remove_orphans(
        &index.catalog,
        &index.catalog,
        &*index.store,
        Duration::ZERO,
        |b| reported.push(b.key.clone()),
    )
    .await
    .unwrap();
    assert_eq!(removed.blobs, 1);
    assert_eq!(reported, [orphan]);
    assert!(index.store.size(&cached).await.unwrap().is_some());
}
