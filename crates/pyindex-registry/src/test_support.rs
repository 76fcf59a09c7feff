//! A registry over a real SQLite catalog and local blob store in a temporary directory, for
//! the registry's own tests.

use std::sync::Arc;

use pyindex_catalog::{Accounts, Catalog, NewFile, ReleaseMetadata, SqliteCatalog, Uploader};
use pyindex_packaging::archive::ArchiveLimits;
use pyindex_storage::{LocalBlobStore, Spool};
use time::OffsetDateTime;

use crate::{Identity, Registry};

/// An audit record for set-up writes.
pub fn audit(action: &str, subject: &str) -> pyindex_catalog::AuditEntry {
    pyindex_catalog::AuditEntry {
        at: OffsetDateTime::now_utc(),
        actor: "test".into(),
        action: action.into(),
        subject: subject.into(),
        address: None,
        detail: None,
    }
}

/// A registry and the database under it; the directory lives as long as this does.
pub struct Harness {
    /// The registry under test.
    pub registry: Registry,
    /// Its database, for setting up and inspecting state directly.
    pub database: Arc<SqliteCatalog>,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// An empty registry in the `upload` access mode.
    pub async fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let database = Arc::new(
            SqliteCatalog::open(&dir.path().join("catalog.sqlite3"))
                .await
                .unwrap(),
        );
        let blobs = Arc::new(LocalBlobStore::open(dir.path().join("files")).unwrap());
        let spool = Spool::open(dir.path().join("tmp")).unwrap();
        let registry = Registry::new(database.clone(), blobs, spool, ArchiveLimits::default());
        Harness {
            registry,
            database,
            _dir: dir,
        }
    }

    /// The directory holding the database and the blobs.
    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Creates an account (password hash irrelevant) and returns it as a password login.
    pub async fn user(&self, name: &str, is_admin: bool) -> Identity {
        assert!(
            self.database
                .add_user(name, "x", is_admin, &audit("user.add", name))
                .await
                .unwrap()
        );
        Identity {
            user: self.database.user(name).await.unwrap().unwrap(),
            token: None,
        }
    }

    /// Records a wheel of `project` 1.0 uploaded by `owner`, who becomes its owner. Only the
    /// catalog row is written: no blob.
    pub async fn project_owned_by(&self, project: &str, owner: &Identity) {
        let filename = format!("{}-1.0-py3-none-any.whl", project.replace('-', "_"));
        let parsed = pyindex_packaging::parse_filename(&filename).unwrap();
        let file = NewFile {
            project: parsed.project(),
            display_name: project.into(),
            version: parsed.version.to_string(),
            canonical_version: pyindex_packaging::canonical_version(&parsed.version),
            dist_key: parsed.identity(),
            kind: parsed.kind(),
            filename,
            size: 1,
            sha256: "ab".repeat(32),
            md5: "cd".repeat(16),
            blake2_256: "ef".repeat(32),
            requires_python: None,
            metadata_sha256: None,
            release: ReleaseMetadata::default(),
            uploaded: OffsetDateTime::now_utc(),
            uploader: Some(Uploader {
                user_id: owner.user.id,
            }),
        };
        self.database
            .add_file(&file, &audit("publish", &file.filename))
            .await
            .unwrap();
    }
}
