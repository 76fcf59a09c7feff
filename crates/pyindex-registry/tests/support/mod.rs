//! Shared set-up for the registry's rule tests: a real registry (SQLite catalog, local blob store
//! and spool in a temporary directory), small wheel and sdist builders, upload requests, and
//! accounts authenticated the way a client would be.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::io::{Cursor, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use flate2::Compression;
use flate2::write::GzEncoder;
use pyindex_catalog::{AuditEntry, SqliteCatalog};
use pyindex_packaging::archive::ArchiveLimits;
use pyindex_registry::{
    AccessMode, Actor, Change, ChangeObserver, Credentials, Identity, Published, Registry,
    RegistryError, Rejection, TokenRequest, UploadRequest, UploadedContent,
};
use pyindex_storage::{BlobStore, Hasher, LocalBlobStore, Spool};
use tempfile::TempDir;

/// The client address used in every request.
pub const ADDRESS: &str = "127.0.0.1";
/// The password of every test account.
pub const PASSWORD: &str = "correct horse battery";

/// Records every change the registry reports.
#[derive(Default)]
pub struct Recorder(Mutex<Vec<Change>>);

impl ChangeObserver for Recorder {
    fn changed(&self, change: &Change) {
        self.0.lock().unwrap().push(change.clone());
    }
}

impl Recorder {
    /// The changes reported since the last call.
    pub fn take(&self) -> Vec<Change> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// A registry over a fresh data directory, with a change recorder.
pub struct Index {
    pub registry: Registry,
    pub changes: Arc<Recorder>,
    dir: TempDir,
}

impl Index {
    /// A new, empty index in the given access mode.
    pub async fn new(mode: AccessMode) -> Index {
        let dir = tempfile::tempdir().unwrap();
        let catalog = SqliteCatalog::open(&dir.path().join("catalog.sqlite3"))
            .await
            .unwrap();
        let blobs: Arc<dyn BlobStore> =
            Arc::new(LocalBlobStore::open(dir.path().join("files")).unwrap());
        let spool = Spool::open(dir.path().join("tmp")).unwrap();
        let changes = Arc::new(Recorder::default());
        let registry = Registry::new(Arc::new(catalog), blobs, spool, ArchiveLimits::default())
            .with_access_mode(mode)
            .with_observer(changes.clone());
        Index {
            registry,
            changes,
            dir,
        }
    }

    /// The same data in another access mode (as after a restart with another setting).
    pub fn in_mode(&self, mode: AccessMode) -> Registry {
        self.registry.clone().with_access_mode(mode)
    }

    /// Sends an upload.
    pub async fn upload(&self, upload: Upload) -> Result<Published, RegistryError> {
        let request = upload.request(self.registry.spool()).await;
        self.registry.upload(request).await
    }

    /// Sends an upload that must publish a new file.
    pub async fn publish(&self, upload: Upload) {
        let filename = upload.filename.clone();
        match self.upload(upload).await {
            Ok(Published::Added {
                filename: added, ..
            }) => assert_eq!(added, filename),
            other => panic!("{filename} was not published: {other:?}"),
        }
    }

    /// Creates an account and returns its identity, authenticated with a new unlimited token.
    pub async fn user(&self, name: &str) -> Identity {
        self.account(name, false).await
    }

    /// Creates an admin account, authenticated with a new unlimited token.
    pub async fn admin(&self, name: &str) -> Identity {
        self.account(name, true).await
    }

    async fn account(&self, name: &str, is_admin: bool) -> Identity {
        self.registry
            .add_user(Actor::Cli, name, PASSWORD, is_admin)
            .await
            .unwrap();
        self.token_identity(name, TokenRequest::default()).await
    }

    /// The identity of a client holding a new token of `user` with the given limits.
    pub async fn token_identity(&self, user: &str, request: TokenRequest) -> Identity {
        let token = self
            .registry
            .create_token(Actor::Cli, user, &request)
            .await
            .unwrap();
        self.registry
            .authenticate(&Credentials::Token(token.secret), ADDRESS)
            .await
            .unwrap()
    }

    /// The audit records of `action`, oldest first.
    pub async fn audited(&self, action: &str) -> Vec<AuditEntry> {
        let log = self.registry.audit_log(10_000).await.unwrap();
        log.into_iter().filter(|e| e.action == action).collect()
    }

    /// The filenames the catalog lists for `project` (none if it does not exist).
    pub async fn filenames(&self, project: &str) -> Vec<String> {
        match self
            .registry
            .catalog()
            .project_files(project)
            .await
            .unwrap()
        {
            Some(files) => files.files.into_iter().map(|f| f.filename).collect(),
            None => Vec::new(),
        }
    }

    /// The data directory (catalog and blobs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// How many blobs the store holds.
    pub fn blob_count(&self) -> usize {
        count_files(&self.dir.path().join("files"))
    }

    /// How many files the upload spool holds.
    pub fn spooled_count(&self) -> usize {
        count_files(&self.dir.path().join("tmp"))
    }
}

fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| e.unwrap().path())
        .map(|p| if p.is_dir() { count_files(&p) } else { 1 })
        .sum()
}

/// Refuses the test unless `result` is a refusal of kind `rejection` whose message contains
/// every one of `words`; returns the message.
pub fn assert_refused<T: std::fmt::Debug>(
    result: Result<T, RegistryError>,
    rejection: Rejection,
    words: &[&str],
) -> String {
    match result {
        Err(RegistryError::Rejected {
            rejection: got,
            message,
        }) => {
            assert_eq!(got, rejection, "{message}");
            for word in words {
                assert!(message.contains(word), "{message:?} lacks {word:?}");
            }
            message
        }
        other => panic!("expected a {rejection:?} refusal, got {other:?}"),
    }
}

/// The content of a test distribution.
#[derive(Clone)]
pub struct Dist {
    /// The name as the archive's directory spells it (`Foo.Bar`, `foo_bar`).
    pub dir_name: String,
    /// The version in the directory name.
    pub dir_version: String,
    /// `Name:` in the metadata.
    pub name: String,
    /// `Version:` in the metadata.
    pub version: String,
    /// Distinguishes otherwise identical archives.
    pub payload: String,
    /// `Description-Content-Type` and the description (the metadata's body).
    pub readme: (Option<String>, String),
}

impl Dist {
    /// A distribution whose directory and metadata both say `name` and `version`.
    pub fn new(name: &str, version: &str) -> Dist {
        Dist {
            dir_name: name.to_owned(),
            dir_version: version.to_owned(),
            name: name.to_owned(),
            version: version.to_owned(),
            payload: "print('hello')\n".to_owned(),
            readme: (None, "A description.\n".to_owned()),
        }
    }

    /// The same with another description, of the given content type.
    pub fn readme(mut self, content_type: &str, description: &str) -> Dist {
        self.readme = (Some(content_type.to_owned()), description.to_owned());
        self
    }

    /// The same with other metadata (name, version).
    pub fn metadata(mut self, name: &str, version: &str) -> Dist {
        self.name = name.to_owned();
        self.version = version.to_owned();
        self
    }

    /// The same with other module content, so other bytes.
    pub fn payload(mut self, payload: &str) -> Dist {
        self.payload = payload.to_owned();
        self
    }

    fn metadata_text(&self) -> String {
        let content_type = self
            .readme
            .0
            .as_ref()
            .map_or_else(String::new, |t| format!("Description-Content-Type: {t}\n"));
        format!(
            "Metadata-Version: 2.1\nName: {}\nVersion: {}\nSummary: A test package\n\
             {content_type}\n{}",
            self.name, self.version, self.readme.1
        )
    }

    /// A wheel: one module and `{dir_name}-{dir_version}.dist-info` with METADATA and WHEEL.
    pub fn wheel(&self) -> Vec<u8> {
        let dist_info = format!("{}-{}.dist-info", self.dir_name, self.dir_version);
        let wheel =
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n";
        zip(&[
            ("module.py".to_owned(), self.payload.clone()),
            (format!("{dist_info}/METADATA"), self.metadata_text()),
            (format!("{dist_info}/WHEEL"), wheel.to_owned()),
            (format!("{dist_info}/RECORD"), String::new()),
        ])
    }

    fn sdist_members(&self) -> Vec<(String, String)> {
        let top = format!("{}-{}", self.dir_name, self.dir_version);
        vec![
            (format!("{top}/PKG-INFO"), self.metadata_text()),
            (format!("{top}/pyproject.toml"), "[project]\n".to_owned()),
            (format!("{top}/module.py"), self.payload.clone()),
        ]
    }

    /// A `.tar.gz` source distribution under `{dir_name}-{dir_version}/`.
    pub fn sdist(&self) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, content) in self.sdist_members() {
            let mut header = tar::Header::new_gnu();
            header.set_mode(0o644);
            header.set_size(content.len() as u64);
            builder
                .append_data(&mut header, path, content.as_bytes())
                .unwrap();
        }
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(&builder.into_inner().unwrap()).unwrap();
        gz.finish().unwrap()
    }

    /// A `.zip` source distribution under `{dir_name}-{dir_version}/`.
    pub fn zip_sdist(&self) -> Vec<u8> {
        zip(&self.sdist_members())
    }
}

fn zip(entries: &[(String, String)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    for (name, content) in entries {
        writer.start_file(name.as_str(), options).unwrap();
        writer.write_all(content.as_bytes()).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

/// An upload request under construction, as a client would send it.
#[derive(Clone)]
pub struct Upload {
    pub fields: Vec<(String, String)>,
    /// The content part's filename.
    pub filename: String,
    /// The content part's bytes; `None` for an upload without a content part.
    pub bytes: Option<Vec<u8>>,
    /// The `sha256_digest` sent; the bytes' own when `None`.
    pub sha256: Option<String>,
    pub identity: Option<Identity>,
}

impl Upload {
    /// An anonymous upload of a wheel, with the form a client fills in for it.
    pub fn wheel(name: &str, version: &str, filename: &str, bytes: Vec<u8>) -> Upload {
        Upload::new(name, version, "bdist_wheel", filename, bytes).set("pyversion", "py3")
    }

    /// An anonymous upload of a source distribution.
    pub fn sdist(name: &str, version: &str, filename: &str, bytes: Vec<u8>) -> Upload {
        Upload::new(name, version, "sdist", filename, bytes).set("pyversion", "source")
    }

    fn new(name: &str, version: &str, filetype: &str, filename: &str, bytes: Vec<u8>) -> Upload {
        Upload {
            fields: Vec::new(),
            filename: filename.to_owned(),
            bytes: Some(bytes),
            sha256: None,
            identity: None,
        }
        .set(":action", "file_upload")
        .set("protocol_version", "1")
        .set("metadata_version", "2.1")
        .set("name", name)
        .set("version", version)
        .set("filetype", filetype)
    }

    /// Sets the form field `name` to `value` (replacing what it held).
    pub fn set(mut self, name: &str, value: &str) -> Upload {
        self.fields.retain(|(k, _)| k != name);
        self.fields.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sent by `identity`.
    pub fn by(mut self, identity: &Identity) -> Upload {
        self.identity = Some(identity.clone());
        self
    }

    /// Sent without credentials.
    pub fn anonymous(mut self) -> Upload {
        self.identity = None;
        self
    }

    /// The content part carries `filename`.
    pub fn filename(mut self, filename: &str) -> Upload {
        self.filename = filename.to_owned();
        self
    }

    /// The content part carries `bytes`.
    pub fn bytes(mut self, bytes: Vec<u8>) -> Upload {
        self.bytes = Some(bytes);
        self
    }

    /// No content part.
    pub fn without_content(mut self) -> Upload {
        self.bytes = None;
        self
    }

    /// Sends `sha256` as the file's SHA-256 instead of the real one.
    pub fn claimed_sha256(mut self, sha256: &str) -> Upload {
        self.sha256 = Some(sha256.to_owned());
        self
    }

    /// The request the registry receives, with the bytes spooled as the server spools them.
    pub async fn request(self, spool: &Spool) -> UploadRequest {
        let mut fields = self.fields;
        let content = match self.bytes {
            Some(bytes) => {
                let sha256 = self.sha256.unwrap_or_else(|| Hasher::digest(&bytes).sha256);
                fields.push(("sha256_digest".to_owned(), sha256));
                Some(UploadedContent {
                    filename: self.filename,
                    file: spool.spool_bytes(&bytes).await.unwrap(),
                })
            }
            None => None,
        };
        UploadRequest {
            fields,
            content,
            identity: self.identity,
            address: ADDRESS.to_owned(),
        }
    }
}
