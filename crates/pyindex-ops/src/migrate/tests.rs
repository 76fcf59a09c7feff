use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use futures::stream::BoxStream;
use pyindex_catalog::{AuditEntry, Catalog, SqliteCatalog, UpstreamIndex};
use pyindex_storage::{BlobBody, ByteRange, SpooledFile, StoredBlob};

use super::*;
use crate::verify::tests::Index;

fn side(index: &Index) -> Side<'_> {
    Side {
        catalog: &index.catalog,
        blobs: index.blobs(),
    }
}

/// What a move told.
#[derive(Default)]
struct Told {
    problems: Vec<String>,
    progress: Vec<(usize, usize)>,
}

impl Progress for &mut Told {
    fn problem(&mut self, problem: &Problem) {
        self.problems.push(problem.to_string());
    }

    fn blobs(&mut self, done: usize, total: usize) {
        self.progress.push((done, total));
    }
}

async fn run(from: &Index, to: &Index) -> (Result<Report, MigrateError>, Vec<String>) {
    let mut told = Told::default();
    let spool = Spool::open_without_cleaning(from.dir.path().join("tmp")).unwrap();
    let result = migrate(side(from), side(to), spool, &mut told).await;
    assert!(told.progress.is_empty(), "fewer blobs than PROGRESS_EVERY");
    (result, told.problems)
}

fn count(report: &Report, what: &str) -> usize {
    report
        .counts
        .iter()
        .find(|(name, _)| *name == what)
        .unwrap()
        .1
}

#[tokio::test]
async fn moves_every_file_and_record_then_a_rerun_only_checks() {
    let source = Index::new().await;
    let one = source.publish("1.0", b"one").await;
    let big = source.publish("2.0", &vec![5u8; 3 << 20]).await;
    let target = Index::new().await;
    let (report, problems) = run(&source, &target).await;
    let report = report.unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert!(report.catalog_copied);
    assert_eq!(
        (count(&report, "projects"), count(&report, "files")),
        (1, 2)
    );
    assert_eq!(report.copied.0, 4);
    assert!(report.copied.1 > 3 << 20);
    assert_eq!(report.present, (0, 0));
    for key in [&one, &big] {
        assert_eq!(
            std::fs::read(target.store.path_of(key)).unwrap(),
            std::fs::read(source.store.path_of(key)).unwrap()
        );
    }
    assert_eq!(
        target.catalog.export().await.unwrap(),
        source.catalog.export().await.unwrap()
    );
    // Run again: nothing to copy, everything checked.
    let (again, _) = run(&source, &target).await;
    let again = again.unwrap();
    assert!(!again.catalog_copied);
    assert_eq!(again.copied, (0, 0));
    assert_eq!(again.present, report.copied);
}

#[tokio::test]
async fn an_interrupted_move_resumes_without_copying_twice() {
    let source = Index::new().await;
    let one = source.publish("1.0", b"one").await;
    source.publish("2.0", b"two").await;
    let target = Index::new().await;
    // What a run killed halfway leaves: some blobs in the target, no catalog.
    target.store(b"one").await;
    let (report, problems) = run(&source, &target).await;
    let report = report.unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!((report.copied.0, report.present), (3, (1, 3)));
    assert!(target.store.path_of(&one).is_file());
    assert_eq!(target.catalog.stored_files().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_target_holding_another_registry_is_refused_untouched() {
    let source = Index::new().await;
    source.publish("1.0", b"one").await;
    let target = Index::new().await;
    target.publish("9.0", b"nine").await;
    let before = target.catalog.export().await.unwrap();
    let (result, _) = run(&source, &target).await;
    let err = result.unwrap_err();
    assert!(matches!(err, MigrateError::TargetHoldsOther(_)), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("already holds a different registry"),
        "{message}"
    );
    assert!(message.contains("files"), "{message}");
    assert_eq!(target.catalog.export().await.unwrap(), before);
}

#[tokio::test]
async fn a_missing_or_corrupt_blob_stops_before_the_catalog_is_copied() {
    let source = Index::new().await;
    let one = source.publish("1.0", b"one").await;
    source.publish("2.0", b"two").await;
    std::fs::remove_file(source.store.path_of(&one)).unwrap();
    let target = Index::new().await;
    let (result, problems) = run(&source, &target).await;
    assert!(
        matches!(result, Err(MigrateError::Damaged(1))),
        "{result:?}"
    );
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].starts_with("missing: pkg-1.0.tar.gz"),
        "{problems:?}"
    );
    assert!(target.catalog.export().await.unwrap().is_empty());

    // Bytes under a key that hash to something else in the target are reported, not kept.
    let source = Index::new().await;
    let two = source.publish("2.0", b"two").await;
    let target = Index::new().await;
    let path = target.store.path_of(&two);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"not two").unwrap();
    let (result, problems) = run(&source, &target).await;
    assert!(
        matches!(result, Err(MigrateError::Damaged(1))),
        "{result:?}"
    );
    assert!(
        problems[0].contains("(in the target storage)"),
        "{problems:?}"
    );
    assert!(target.catalog.export().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_source_written_during_the_move_stops_it_before_the_catalog() {
    let source = Index::new().await;
    source.publish("1.0", b"one").await;
    let target = Index::new().await;
    let spool = Spool::open_without_cleaning(source.dir.path().join("tmp")).unwrap();
    let from = Side {
        catalog: &source.catalog,
        blobs: Arc::new(WritingStore {
            blobs: source.blobs(),
            catalog: source.catalog.clone(),
            wrote: AtomicBool::new(false),
        }),
    };
    let err = migrate(from, side(&target), spool, &mut Told::default())
        .await
        .unwrap_err();
    assert!(matches!(err, MigrateError::SourceChanged(_)), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("its projects, audit log entries differ"),
        "{message}"
    );
    assert!(message.contains("Stop every server using it"), "{message}");
    assert!(target.catalog.export().await.unwrap().is_empty());
}

/// A source whose catalog someone writes to (a project reserved) when its first blob is read:
/// a server still running during a move.
struct WritingStore {
    blobs: Arc<dyn BlobStore>,
    catalog: SqliteCatalog,
    wrote: AtomicBool,
}

#[async_trait]
impl BlobStore for WritingStore {
    async fn put_spooled(&self, key: &BlobKey, file: SpooledFile) -> Result<(), StorageError> {
        self.blobs.put_spooled(key, file).await
    }
    async fn size(&self, key: &BlobKey) -> Result<Option<u64>, StorageError> {
        self.blobs.size(key).await
    }
    async fn check(&self) -> Result<(), StorageError> {
        self.blobs.check().await
    }
    async fn get(
        &self,
        key: &BlobKey,
        range: Option<ByteRange>,
    ) -> Result<Option<BlobBody>, StorageError> {
        if !self.wrote.swap(true, Ordering::SeqCst) {
            let audit = AuditEntry {
                at: time::OffsetDateTime::now_utc(),
                actor: "cli".into(),
                action: "project.reserve".into(),
                subject: "newcomer".into(),
                address: None,
                detail: None,
            };
            let reserved = self.catalog.reserve_project("newcomer", "newcomer", &audit);
            assert!(reserved.await.unwrap());
        }
        self.blobs.get(key, range).await
    }
    fn list(&self) -> BoxStream<'static, Result<StoredBlob, StorageError>> {
        self.blobs.list()
    }
    async fn delete(&self, key: &BlobKey) -> Result<bool, StorageError> {
        self.blobs.delete(key).await
    }
}

#[tokio::test]
async fn progress_is_told_every_so_many_blobs() {
    let source = Index::new().await;
    // Each file has a metadata file: two blobs per version.
    for n in 0..PROGRESS_EVERY / 2 + 5 {
        source
            .publish(&format!("1.{n}"), format!("content {n}").as_bytes())
            .await;
    }
    let target = Index::new().await;
    let spool = Spool::open_without_cleaning(source.dir.path().join("tmp")).unwrap();
    let mut told = Told::default();
    let report = migrate(side(&source), side(&target), spool, &mut told)
        .await
        .unwrap();
    assert!(told.problems.is_empty(), "{:?}", told.problems);
    assert_eq!(told.progress, [(PROGRESS_EVERY, PROGRESS_EVERY + 10)]);
    assert_eq!(report.copied.0, PROGRESS_EVERY + 10);
}
